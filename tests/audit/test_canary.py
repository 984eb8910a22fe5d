"""No personal data in any audit event nor in any shipped object: canary values go through every
recorded path, then the whole audit table and the archive are searched for them."""

from __future__ import annotations

import gzip
import json

from django.utils import timezone

from accounts.models import Role
from accounts.services import label_grant_create, member_create, user_create
from audit.archive import LocalArchive
from audit.models import AuditChain, AuditEvent
from audit.services import chain_scope, ship_pending
from tenants.context import tenant_context
from tenants.models import Tenant
from tests.conftest import TEST_PASSWORD, log_in

CANARY_EMAIL = "canary-pii@canary.example"
CANARY_ADMIN_EMAIL = "canary-hr@canary.example"
CANARY_UNKNOWN_EMAIL = "canary-nobody@canary.example"
CANARIES = {
    "name": "カナリア太郎",
    "kana_name": "カナリアタロウ",
    "phone": "090-5550-1234",
    "address": "東京都カナリア区1-2-3",
    "insurance_number": "CANARY778899",
}
CANARY_VALUES = [*CANARIES.values(), CANARY_EMAIL, CANARY_ADMIN_EMAIL, CANARY_UNKNOWN_EMAIL, "canary-pii", "canary-hr"]


def test_no_canary_value_reaches_the_audit_log_or_the_archive(client, world, tmp_path):
    with tenant_context(world.tenant_a):
        person = member_create(employee_number="C1", office=world.office_a, **CANARIES)
        hr_person = member_create(employee_number="C2", office=world.office_a, name="カナリア花子")
    user_create(email=CANARY_EMAIL, role=Role.EMPLOYEE, tenant=world.tenant_a, password=TEST_PASSWORD, member=person)
    user_create(
        email=CANARY_ADMIN_EMAIL, role=Role.HR_ADMIN, tenant=world.tenant_a, password=TEST_PASSWORD + "!x",
        member=hr_person,
    )  # fmt: skip
    with tenant_context(world.tenant_a):  # the HR label (audit.view among it), itself an audited path
        label_grant_create(
            office=world.office_a, target_kind="employee", target="C2", labels=["hr_staff"], scope_="tenant",
            acting_user=world.admin_a,
        )  # fmt: skip

    # Logins: good, wrong password, unknown address, lockout; logout.
    assert log_in(client, CANARY_EMAIL, TEST_PASSWORD, HTTP_USER_AGENT=f"UA {CANARY_EMAIL}").status_code == 302
    client.post("/accounts/logout/")
    log_in(client, CANARY_UNKNOWN_EMAIL, "wrong-password-1A")
    for _ in range(6):
        log_in(client, CANARY_EMAIL, "wrong-password-1A")
    # The viewer and both exports, by the canary HR admin.
    assert log_in(client, CANARY_ADMIN_EMAIL, TEST_PASSWORD + "!x").status_code == 302
    assert client.get("/audit/").status_code == 200
    today = timezone.localdate()
    for fmt in ("csv", "jsonl"):
        export = client.post("/audit/export/", {"since": today, "until": today, "format": fmt})
        assert export.status_code == 200
        assert not [v for v in CANARY_VALUES if v in export.content.decode("utf-8-sig")]
    client.post("/accounts/logout/")
    # Shipping.
    ship_pending(archive=LocalArchive(tmp_path))

    dumped = []
    for tenant in [None, *Tenant.objects.all()]:
        with chain_scope(tenant):
            dumped += [json.dumps(row, default=str, ensure_ascii=False) for row in AuditEvent.objects.values()]
            dumped += [json.dumps(row, default=str) for row in AuditChain.objects.values()]
    text = "\n".join(dumped)
    actions = {json.loads(line)["action"] for line in dumped if '"action"' in line}
    assert {"auth.login.succeeded", "auth.login.failed", "auth.lockout", "auth.logout", "audit.exported"} <= actions
    assert {"user.created", "tenant.created"} <= actions
    shipped = "\n".join(gzip.decompress(p.read_bytes()).decode() for p in tmp_path.rglob("*.jsonl.gz"))
    assert '"auth.lockout"' in shipped
    for value in CANARY_VALUES:
        assert value not in text, f"canary value #{CANARY_VALUES.index(value)} found in the audit table"
        assert value not in shipped, f"canary value #{CANARY_VALUES.index(value)} found in the archive"
