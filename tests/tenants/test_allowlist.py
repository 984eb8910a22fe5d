"""IP allowlists: admins and medical staff only from the tenant's networks, employees from anywhere;
the org admin edits the list and is warned before locking themselves out."""

from __future__ import annotations

import io
import re

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from accounts.models import Role
from accounts.services import user_create
from audit.models import AuditEvent, chain_key
from audit.services import chain_scope
from tenants.allowlist import address_permitted, parse_networks
from tenants.context import tenant_context
from tenants.models import IpAllowlistEntry
from tests.conftest import TEST_PASSWORD, log_in

ADMIN_PASSWORD = TEST_PASSWORD + "!x"
OFFICE = "203.0.113.10"
HOME = "198.51.100.20"


@pytest.fixture
def hr_admin(world):
    return user_create(email="hr@a.example", role=Role.HR_ADMIN, tenant=world.tenant_a, password=ADMIN_PASSWORD)


@pytest.fixture
def office_only(world):
    with tenant_context(world.tenant_a):
        IpAllowlistEntry.objects.create(cidr="203.0.113.0/24")
        IpAllowlistEntry.objects.create(cidr="2001:db8::/32")


def events(tenant, action):
    with chain_scope(tenant):
        return list(AuditEvent.objects.filter(chain=chain_key(tenant.pk), action=action).order_by("seq"))


def test_parse_accepts_ipv4_ipv6_and_single_addresses_and_names_bad_lines():
    nets = parse_networks("203.0.113.0/24\n2001:db8::/32  # Tokyo office\n\n192.0.2.7\n")
    assert [str(n) for n in nets] == ["203.0.113.0/24", "2001:db8::/32", "192.0.2.7/32"]
    with pytest.raises(ValidationError) as bad:
        parse_networks("203.0.113.5/24\nnot-an-address")
    messages = bad.value.messages
    assert "1行目: ホスト部が0ではありません。203.0.113.0/24 のことですか？" in messages
    assert "2行目: 「not-an-address」はIPアドレスまたはCIDRではありません。" in messages


def test_address_matching_ipv4_ipv6_and_mapped_addresses():
    nets = parse_networks("203.0.113.0/24\n2001:db8::/32")
    assert address_permitted("203.0.113.200", nets)
    assert address_permitted("2001:db8:1::5", nets)
    assert address_permitted("::ffff:203.0.113.9", nets)
    assert not address_permitted("198.51.100.1", nets)
    assert not address_permitted("", nets)
    assert address_permitted("198.51.100.1", [])  # empty list: no restriction


def test_hr_admin_outside_the_list_is_refused_on_pages_and_api_but_not_the_employee(world, hr_admin, office_only):
    outside = Client(REMOTE_ADDR=HOME)
    log_in(outside, "hr@a.example", ADMIN_PASSWORD)
    page = outside.get("/")
    assert page.status_code == 403
    assert "このIPアドレスからは利用できません。" in page.content.decode()
    api = outside.get("/api/v1/me/")
    assert api.status_code == 403 and api.json()["error"]["code"] == "ip_not_allowed"
    assert set(api.json()["error"]) == {"code", "message", "details"}
    assert outside.post("/accounts/logout/").status_code == 200  # leaving is always possible

    inside = Client(REMOTE_ADDR=OFFICE)
    log_in(inside, "hr@a.example", ADMIN_PASSWORD)
    assert inside.get("/").status_code == 200

    employee = Client(REMOTE_ADDR=HOME)
    log_in(employee, "member@a.example", TEST_PASSWORD)
    assert employee.get("/").status_code == 200

    denials = events(world.tenant_a, "tenant.allowlist.denied")
    assert {e.details["area"] for e in denials} == {"page", "api"}
    assert {(e.client_ip, e.target_id, e.outcome) for e in denials} == {(HOME, str(hr_admin.pk), "denied")}


def test_ipv6_office_network_lets_the_admin_in(world, hr_admin, office_only):
    client = Client(REMOTE_ADDR="2001:db8:10::7")
    log_in(client, "hr@a.example", ADMIN_PASSWORD)
    assert client.get("/").status_code == 200


def test_forged_forwarded_for_does_not_get_past_the_list(world, hr_admin, office_only, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    client = Client(REMOTE_ADDR="10.0.0.2")  # our proxy
    log_in(client, "hr@a.example", ADMIN_PASSWORD, HTTP_X_FORWARDED_FOR=OFFICE)
    assert client.get("/", HTTP_X_FORWARDED_FOR=OFFICE).status_code == 200
    # From home, the client writes the office address itself; our proxy appends the real one.
    assert client.get("/", HTTP_X_FORWARDED_FOR=f"{OFFICE}, {HOME}").status_code == 403


def test_other_tenants_list_does_not_apply(world, office_only):
    client = Client(REMOTE_ADDR=HOME)
    log_in(client, "outsider@b.example", ADMIN_PASSWORD)
    assert client.get("/").status_code == 200


def test_org_admin_is_warned_before_saving_a_list_without_their_own_address(world):
    admin = Client(REMOTE_ADDR=HOME)
    log_in(admin, "admin@a.example", ADMIN_PASSWORD)
    page = admin.get("/settings/allowlist/").content.decode()
    assert HOME in page
    first = admin.post("/settings/allowlist/", {"networks": "203.0.113.0/24"})
    assert first.status_code == 200
    text = first.content.decode()
    assert "このリストには、あなたの現在の接続元（198.51.100.20）が含まれていません。" in text
    with tenant_context(world.tenant_a):
        assert not IpAllowlistEntry.objects.exists()
    digest = re.search(r'name="confirm_exclude_self" value="([0-9a-f]{64})"', text)[1]
    # The yes holds for the list it was about only: another list typed after the warning is warned about anew.
    other = admin.post("/settings/allowlist/", {"networks": "10.1.0.0/16", "confirm_exclude_self": digest})
    assert other.status_code == 200 and "含まれていません" in other.content.decode()
    with tenant_context(world.tenant_a):
        assert not IpAllowlistEntry.objects.exists()
    confirmed = admin.post("/settings/allowlist/", {"networks": "203.0.113.0/24", "confirm_exclude_self": digest})
    assert confirmed.status_code == 302
    with tenant_context(world.tenant_a):
        assert list(IpAllowlistEntry.objects.values_list("cidr", flat=True)) == ["203.0.113.0/24"]
    assert admin.get("/").status_code == 403  # as they were warned
    changed = events(world.tenant_a, "tenant.allowlist.changed")
    assert changed[-1].details["added"] == ["203.0.113.0/24"] and changed[-1].details["excludes_own_address"]


def test_list_that_includes_the_admin_saves_at_once_and_bad_lines_are_explained(world):
    admin = Client(REMOTE_ADDR=OFFICE)
    log_in(admin, "admin@a.example", ADMIN_PASSWORD)
    bad = admin.post("/settings/allowlist/", {"networks": "203.0.113.0/33"})
    assert "IPアドレスまたはCIDRではありません" in bad.content.decode()
    assert admin.post("/settings/allowlist/", {"networks": "203.0.113.0/24\n2001:db8::/32"}).status_code == 302
    assert admin.post("/settings/allowlist/", {"networks": ""}).status_code == 302  # empty: no restriction
    with tenant_context(world.tenant_a):
        assert not IpAllowlistEntry.objects.exists()


@pytest.mark.parametrize("email", ["hr@a.example", "member@a.example"])
def test_only_the_org_admin_manages_the_list(world, hr_admin, email):
    client = Client()
    log_in(client, email, ADMIN_PASSWORD if email.startswith("hr") else TEST_PASSWORD)
    assert client.get("/settings/allowlist/").status_code == 403
    assert client.post("/settings/allowlist/", {"networks": "10.0.0.0/8"}).status_code == 403
    assert client.get("/settings/security/").status_code == 403


def test_an_employee_given_a_label_over_others_is_bound_to_the_list(world, office_only):
    from accounts.services import label_grant_create

    with tenant_context(world.tenant_a):
        label_grant_create(office=world.office_a, target_kind="department", target="営業部",
                           labels=["manager"], scope_="department", acting_user=world.admin_a)  # fmt: skip
    outside = Client(REMOTE_ADDR=HOME)
    log_in(outside, "member@a.example", TEST_PASSWORD)
    assert outside.get("/").status_code == 403
    inside = Client(REMOTE_ADDR=OFFICE)
    log_in(inside, "member@a.example", TEST_PASSWORD)
    assert inside.get("/").status_code == 200


def test_an_operator_clears_a_list_that_locked_the_admins_out(world):
    """The way back in when the org admins saved a list without their own address: an operator command,
    audited like any change of the list."""
    from django.core.management import call_command

    with tenant_context(world.tenant_a):
        IpAllowlistEntry.objects.create(cidr="203.0.113.0/24")
    admin = Client(REMOTE_ADDR=HOME)
    log_in(admin, "admin@a.example", ADMIN_PASSWORD)
    assert admin.get("/").status_code == 403
    out = io.StringIO()
    call_command("clear_allowlist", "--tenant", world.tenant_a.slug, stdout=out)
    assert "1 entries removed" in out.getvalue()
    assert admin.get("/").url.startswith("/accounts/mfa/")  # let in again: on to their second factor
    changed = events(world.tenant_a, "tenant.allowlist.changed")
    assert changed[-1].details["removed"] == ["203.0.113.0/24"] and changed[-1].details["entries"] == 0
