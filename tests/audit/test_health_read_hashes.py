"""A withheld read of checkup results cannot be recovered from its hash.

HR (audit.view, no checkup.view) gets ``checkup.viewed`` / ``checkup.queue_viewed`` without target and
details but with the hash. Every other hashed field is in the export or guessable and record ids are
small, so without a secret in the hashed document HR could try each id until the SHA-256 matches and
learn which records a physician opened (graded C or worse).
"""

from __future__ import annotations

import datetime as dt
import json
from hashlib import sha256
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

import audit
from audit.canonical import canonical_bytes, event_document, event_hash
from audit.models import AuditEvent
from audit.services import chain_scope, verify_all
from tenants.context import tenant_context
from tests.checkups import test_checkup_pages as checkup_pages
from tests.conftest import log_in

from .conftest import events_of

clinic = checkup_pages.clinic  # the fixture: an employee with two checkups, physician doc@, HR hr@
PASSWORD = checkup_pages.STAFF_PASSWORD


def _signed_in(email: str) -> Client:
    client = Client()
    assert log_in(client, email, PASSWORD).status_code == 302
    return client


def _export(client: Client) -> list[dict[str, Any]]:
    today = timezone.localdate()
    response = client.post("/audit/export/", {"since": today, "until": today, "format": "jsonl"})
    assert response.status_code == 200
    return [json.loads(line) for line in response.content.decode().splitlines()]


def _document(line: dict[str, Any], tenant_id: int, **guess: Any) -> dict[str, Any]:
    """The hashed document as an export reader can rebuild it: the line's fields, the tenant (the chain
    key), the physician's user agent (the test client sends none) and a guess at what was withheld."""
    return {
        "chain": str(tenant_id),
        "seq": line["seq"],
        "occurred_at": line["occurred_at_utc"],
        "tenant_id": tenant_id,
        "actor_id": line["actor_id"],
        "actor_role": line["actor_role"],
        "action": line["action"],
        "target_type": line["target_type"],
        "target_id": line["target_id"],
        "outcome": line["outcome"],
        "client_ip": line["client_ip"],
        "user_agent": "",
        "request_id": line["request_id"],
        "details": line["details"],
        "prev_hash": line["prev_hash"],
        **guess,
    }


def _brute_force(line: dict[str, Any], tenant_id: int) -> list[int]:
    return [
        target
        for target in range(1, 2000)
        if sha256(canonical_bytes(_document(line, tenant_id, target_id=str(target), details={}))).hexdigest()
        == line["hash"]
    ]


def _nurse_auditor(world) -> None:
    """A log auditor who is also 保健師: holds checkup.view, so sees health reads whole."""
    from accounts.models import Role
    from accounts.services import label_grant_create, member_create, user_create

    with tenant_context(world.tenant_a):
        nurse = member_create(employee_number="AUD-N", name="監査 保健師", office=world.office_a)
        user_create(email="nurse@a.example", role=Role.HR_ADMIN, tenant=world.tenant_a, password=PASSWORD,
                    member=nurse)  # fmt: skip
        label_grant_create(office=world.office_a, target_kind="employee", target="AUD-N",
                           labels=["auditor", "health_staff"], scope_="tenant", acting_user=world.admin_a)  # fmt: skip


def test_hr_cannot_recover_which_record_a_physician_opened_from_the_exported_hash(world, clinic):
    record = clinic["record"]
    with tenant_context(world.tenant_a):
        earlier = record.member.checkups.get(exam_date=dt.date(2024, 5, 20))
    assert record.pk < 2000 and earlier.pk < 2000  # inside the search: a miss is not a too-small range
    assert _signed_in("doc@a.example").get(f"/checkups/review/{record.pk}/").status_code == 200

    hr = _signed_in("hr@a.example")
    withheld = [line for line in _export(hr) if line["action"] == "checkup.viewed"]
    assert len(withheld) == 2 and all(line["target_id"] == "" and line["details"] == {} for line in withheld)
    recovered = [_brute_force(line, world.tenant_a.pk) for line in withheld]
    assert recovered == [[], []]

    # The attack is modelled right: with the stored details, the same document does hash to the line's hash.
    for line in withheld:
        with tenant_context(world.tenant_a):
            stored = AuditEvent.objects.get(tenant_id=world.tenant_a.pk, seq=line["seq"])
        rebuilt = _document(line, world.tenant_a.pk, target_id=stored.target_id, details=stored.details)
        assert sha256(canonical_bytes(rebuilt)).hexdigest() == line["hash"]
        assert stored.target_id in {str(record.pk), str(earlier.pk)}


def test_the_queue_read_is_salted_too_and_a_reader_with_checkup_access_gets_the_nonce(world, clinic):
    assert _signed_in("doc@a.example").get("/checkups/review/").status_code == 200
    _nurse_auditor(world)
    (line,) = [line for line in _export(_signed_in("nurse@a.example")) if line["action"] == "checkup.queue_viewed"]
    nonce = line["details"]["nonce"]
    assert len(bytes.fromhex(nonce)) == 16  # 128 bits, part of the hashed document
    assert sha256(canonical_bytes(_document(line, world.tenant_a.pk))).hexdigest() == line["hash"]
    (hr_line,) = [row for row in _export(_signed_in("hr@a.example")) if row["action"] == "checkup.queue_viewed"]
    assert hr_line["hash"] == line["hash"] and hr_line["details"] == {} and nonce not in json.dumps(hr_line)
    with chain_scope(world.tenant_a):  # row-level security shows a chain inside its tenant's scope only
        assert all(report.ok for report in verify_all(tenant=world.tenant_a))


def test_every_health_read_gets_its_own_nonce_and_other_events_none(fresh_tenant):
    with tenant_context(fresh_tenant):
        first = audit.record(action="checkup.viewed", target_type="checkup", target_id=5)
        second = audit.record(action="checkup.viewed", target_type="checkup", target_id=5)
        queue = audit.record(action="checkup.queue_viewed", target_type="checkup", details={"page": 1, "records": []})
        other = audit.record(action="member.viewed", target_type="member", target_id=5)
    assert first.details["nonce"] != second.details["nonce"]
    assert set(queue.details) == {"page", "records", "nonce"} and other.details == {}
    stored = {e.seq: e for e in events_of(fresh_tenant)}
    assert stored[first.seq].details == first.details  # stored exactly as hashed
    assert event_hash(event_document(stored[first.seq].__dict__)) == first.hash


def test_a_caller_cannot_choose_the_nonce(fresh_tenant):
    with tenant_context(fresh_tenant), pytest.raises(ValueError, match="nonce"):
        audit.record(action="checkup.viewed", target_type="checkup", target_id=5, details={"nonce": "00"})


def test_health_reads_recorded_before_the_nonce_still_verify(fresh_tenant, monkeypatch):
    import audit.services

    with tenant_context(fresh_tenant):
        monkeypatch.setattr(audit.services, "SALTED_ACTIONS", frozenset())  # as the code recorded them before
        old = audit.record(action="checkup.viewed", target_type="checkup", target_id=5)
        monkeypatch.undo()
        new = audit.record(action="checkup.viewed", target_type="checkup", target_id=6)
    assert old.details == {} and "nonce" in new.details
    with chain_scope(fresh_tenant):
        assert all(report.ok for report in verify_all(tenant=fresh_tenant))
