"""Rights that reach the whole tenant need the permission over the whole tenant: a label scoped to one
department (or to oneself) never manages grants, security settings, the audit log, the access review, any
team or the insurer's card columns of others, and nobody grants labels to the department they are in."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

import audit
from accounts import policy, selectors
from accounts.labels import Perm
from accounts.models import LabelGrant, Member, Role, Team
from accounts.services import label_grant_create, member_create, team_create, user_create
from healthapp.errors import AppError
from tenants.context import tenant_context
from tenants.models import IpAllowlistEntry, TenantSecurityPolicy
from tenants.services import department_create, office_create
from tests.conftest import TEST_PASSWORD, log_in

PW = TEST_PASSWORD + "!x"


class Org:
    pass


@pytest.fixture
def org(world):
    """Tenant A: 東京本社/営業部 (world) and 大阪支店/経理部. ``mgr`` (営業部) holds the org_admin label for
    their department only; ``osaka_hr`` (経理部) holds hr_staff over the tenant."""
    o = Org()
    with tenant_context(world.tenant_a):
        o.osaka = office_create(name="大阪支店")
        o.keiri = department_create(office=o.osaka, name="経理部")
        o.mgr_member = member_create(employee_number="MGR1", name="部門 管理", office=world.office_a,
                                     department=world.department_a)  # fmt: skip
        o.accomplice_member = member_create(employee_number="ACC1", name="共犯 者", office=world.office_a,
                                            department=world.department_a)  # fmt: skip
        o.osaka_member = member_create(employee_number="OSK1", name="大阪 人事", office=o.osaka, department=o.keiri)
        o.osaka_other = member_create(employee_number="OSK2", name="大阪 花子", office=o.osaka, department=o.keiri)
    o.mgr = user_create(email="mgr@a.example", role=Role.EMPLOYEE, tenant=world.tenant_a, password=PW,
                        member=o.mgr_member)  # fmt: skip
    o.accomplice = user_create(email="acc@a.example", role=Role.EMPLOYEE, tenant=world.tenant_a, password=PW,
                               member=o.accomplice_member)  # fmt: skip
    o.osaka_hr = user_create(email="osaka-hr@a.example", role=Role.HR_ADMIN, tenant=world.tenant_a, password=PW,
                             member=o.osaka_member)  # fmt: skip
    with tenant_context(world.tenant_a):
        label_grant_create(office=world.office_a, target_kind="employee", target="MGR1", labels=["org_admin"],
                           scope_="department", acting_user=world.admin_a)  # fmt: skip
        o.osaka_grant = label_grant_create(office=o.osaka, target_kind="employee", target="OSK1",
                                           labels=["hr_staff"], scope_="tenant", acting_user=world.admin_a)  # fmt: skip
        policy.forget(o.mgr)
        assert policy.can(o.mgr, Perm.ACCESS_MANAGE) and not policy.can_tenant_wide(o.mgr, Perm.ACCESS_MANAGE)
    o.client = Client()
    assert log_in(o.client, "mgr@a.example", PW).status_code == 302
    return o


def _client(email: str) -> Client:
    client = Client()
    assert log_in(client, email, PW).status_code == 302
    return client


def test_a_departments_access_manager_manages_no_grants(world, org):
    c = org.client
    assert b"accounts:access-settings" not in c.get("/").content and "権限設定" not in c.get("/").content.decode()
    assert c.get("/settings/access/").status_code == 404
    assert c.get(f"/settings/access/?office={org.osaka.pk}").status_code == 404
    grant = {"target_kind": "employee", "target": "ACC1", "labels": ["org_admin"], "scope": "tenant"}
    given = c.post(f"/settings/access/office/{org.osaka.pk}/new/", grant)
    assert given.status_code == 404
    assert (
        c.post(f"/settings/access/{org.osaka_grant.pk}/edit/", {"labels": ["auditor"], "scope": "self"}).status_code
        == 404
    )
    assert c.post(f"/settings/access/{org.osaka_grant.pk}/delete/").status_code == 404
    assert c.get("/api/v1/grants/").status_code == 404
    api_grant = {"office": org.osaka.pk, "target_kind": "employee", "target": "OSK2", "labels": ["physician"],
                 "scope": "tenant"}  # fmt: skip
    created = c.post("/api/v1/grants/", api_grant, content_type="application/json")
    assert created.status_code == 404
    assert c.delete(f"/api/v1/grants/{org.osaka_grant.pk}/").status_code == 404
    with tenant_context(world.tenant_a):
        assert LabelGrant.objects.get(pk=org.osaka_grant.pk).labels == ["hr_staff"]
        assert not LabelGrant.objects.filter(member=org.accomplice_member).exists()
        policy.forget(org.accomplice)
        assert not policy.can(org.accomplice, Perm.ACCESS_MANAGE)


def test_nobody_grants_labels_to_the_department_they_are_in(world):
    """A grant to one's department is a grant to oneself: refused, by create and by edit, when it gives
    anything they do not already hold over the tenant (an org admin may not make themselves 産業医 that way);
    to one's employee number always."""
    with tenant_context(world.tenant_a):
        theirs = label_grant_create(
            office=world.office_a, target_kind="department", target="営業部", labels=["roster_viewer"],
            scope_="department", acting_user=world.admin_a,
        )  # fmt: skip
        me = member_create(employee_number="ADM1", name="管理 者", office=world.office_a, department=world.department_a)
        me.user = world.admin_a  # the org admin now works in 営業部 too
        me.save()
    c = _client("admin@a.example")
    for target_kind, target in (("employee", "ADM1"), ("department", "営業部")):
        grant = {"target_kind": target_kind, "target": target, "labels": ["physician"], "scope": "tenant"}
        refused = c.post(f"/settings/access/office/{world.office_a.pk}/new/", grant)
        assert refused.status_code == 200 and "自分自身" in refused.content.decode(), target_kind
    edited = c.post(f"/settings/access/{theirs.pk}/edit/", {"labels": ["physician"], "scope": "tenant"})
    assert edited.status_code == 200 and "自分自身" in edited.content.decode()
    # What they already hold over the whole tenant widens nothing: an org admin's 名簿閲覧 for 営業部 is fine.
    same = {"target_kind": "department", "target": "営業部", "labels": ["roster_viewer"], "scope": "department"}
    assert c.post(f"/settings/access/office/{world.office_a.pk}/new/", same).status_code == 302
    policy.forget(world.admin_a)
    with tenant_context(world.tenant_a):
        assert not policy.can(world.admin_a, Perm.CHECKUP_JUDGE)
        assert LabelGrant.objects.get(pk=theirs.pk).labels == ["roster_viewer"]
        other = label_grant_create(office=world.office_a, target_kind="employee", target="A1",
                                   labels=["roster_viewer"], scope_="self", acting_user=world.admin_a)  # fmt: skip
        assert other.pk  # granting to someone else in another's name still works


def test_a_departments_access_manager_changes_no_security_setting_and_reads_no_access_review(world, org):
    c = org.client
    policy_change = {"mfa_required_for_all": "on", "registration_attribute": "phone"}
    assert c.post("/settings/security/", policy_change).status_code == 403  # as for anyone without access.manage
    allowlist = {"networks": "203.0.113.0/24", "confirm_exclude_self": "on"}
    assert c.post("/settings/allowlist/", allowlist).status_code == 403
    with tenant_context(world.tenant_a):
        assert not TenantSecurityPolicy.objects.filter(registration_attribute="phone").exists()
        assert not IpAllowlistEntry.objects.exists()
    assert c.get("/settings/access-review/").status_code == 404
    assert c.get("/settings/access-review/?format=csv").status_code == 404


def _legacy_grant(world, employee_number: str, labels: list[str]) -> None:
    """A self-scoped grant of tenant-wide labels, as stored before the grant form refused them (it still
    must give nothing)."""
    with pytest.raises(AppError, match="範囲「全体」のときだけ働きます"):
        label_grant_create(office=world.office_a, target_kind="employee", target=employee_number, labels=labels,
                           scope_="self", acting_user=world.admin_a)  # fmt: skip
    member = selectors.member_get_by_employee_number(employee_number)
    LabelGrant.objects.create(office=world.office_a, target_kind="employee", member=member, labels=labels, scope="self")


def test_the_audit_log_is_for_auditors_of_the_whole_tenant(world, org):
    with tenant_context(world.tenant_a):
        _legacy_grant(world, "ACC1", ["auditor", "health_staff"])
        audit.record(action="checkup.viewed", target_type="checkup", target_id=4242, actor=org.osaka_hr)
    c = _client("acc@a.example")
    today = dt.date.today()
    assert c.get("/audit/").status_code == 404
    days = {"since": (today - dt.timedelta(days=1)).isoformat(), "until": (today + dt.timedelta(days=1)).isoformat()}
    export = c.post("/audit/export/", {**days, "format": "csv"})
    assert export.status_code == 404
    from audit.selectors import sees_health_reads

    policy.forget(org.accomplice)
    with tenant_context(world.tenant_a):
        assert not sees_health_reads(org.accomplice)  # whose results were read: not from a self-scoped label


def test_a_self_scoped_team_admin_dissolves_no_team(world, org):
    with tenant_context(world.tenant_a):
        _legacy_grant(world, "ACC1", ["team_admin"])
        team = team_create(
            name="大阪の会", description="", join_policy="open", display_name="大阪", acting_user=org.osaka_hr
        )
    c = _client("acc@a.example")
    c.post(f"/teams/{team.pk}/dissolve/")
    with tenant_context(world.tenant_a):
        assert Team.objects.get(pk=team.pk).dissolved_at is None
    assert f"/teams/{team.pk}/dissolve/" not in c.get(f"/teams/{team.pk}/").content.decode()  # no button either


def test_a_departments_hr_sees_no_tenant_wide_roster_counts(world, org):
    with tenant_context(world.tenant_a):
        label_grant_create(office=world.office_a, target_kind="employee", target="ACC1", labels=["hr_staff"],
                           scope_="department", acting_user=world.admin_a)  # fmt: skip
    assert 'data-testid="member-count"' not in _client("acc@a.example").get("/").content.decode()
    assert 'data-testid="member-count"' in _client("osaka-hr@a.example").get("/").content.decode()


def test_insurer_card_columns_need_roster_manage_over_the_whole_tenant(world):
    with tenant_context(world.tenant_b):
        office = world.roster_b[0].office
        dept = department_create(office=office, name="総務")
        member_create(employee_number="B-CARD", name="被扶養 花子", office=office, insurance_symbol="健12",
                      insurance_number="34567", insurance_branch="02")  # fmt: skip
        me = member_create(employee_number="KEN2", name="健保 三郎", office=office, department=dept)
    user_create(email="k2@b.example", role=Role.INSURER_ADMIN, tenant=world.tenant_b, password=PW, member=me)
    with tenant_context(world.tenant_b):
        label_grant_create(office=office, target_kind="employee", target="KEN2", labels=["roster_viewer"],
                           scope_="tenant", acting_user=world.outsider_b)  # fmt: skip
        label_grant_create(office=office, target_kind="employee", target="KEN2", labels=["hr_staff"],
                           scope_="self", acting_user=world.outsider_b)  # fmt: skip
    page = _client("k2@b.example").get("/roster/").content.decode()
    assert "被扶養 花子" in page and "健12" not in page and "34567" not in page


def test_a_departments_hr_still_works_in_their_department(world, org):
    """The scoped rights keep working: roster, conclusions and the dashboard of their own department."""
    with tenant_context(world.tenant_a):
        label_grant_create(office=world.office_a, target_kind="employee", target="ACC1", labels=["hr_staff"],
                           scope_="department", acting_user=world.admin_a)  # fmt: skip
        assert Member.objects.filter(department=world.department_a).exists()
    c = _client("acc@a.example")
    roster = c.get("/roster/").content.decode()
    assert "甲野 0" in roster and "大阪 花子" not in roster
    assert c.get(f"/roster/{org.osaka_other.pk}/").status_code == 404
    assert c.get("/checkups/conclusions/").status_code == 200 and c.get("/checkups/dashboard/").status_code == 200


def test_own_department_grants_may_narrow_but_never_outlast_or_outgrow_the_role(world):
    """Rights held through an expiring grant are not the holder's to extend; narrowing one's own department's
    grant is always fine (an admin may drop a label they should not have)."""
    from accounts.services import label_grant_update
    from healthapp.errors import AppError

    until = dt.date.today() + dt.timedelta(days=30)
    with tenant_context(world.tenant_a):
        # Given by the org admin while they have no roster entry (so none of this is their own yet).
        expiring = label_grant_create(office=world.office_a, target_kind="department", target="営業部",
                                      labels=["org_admin"], scope_="tenant", valid_until=until,
                                      acting_user=world.admin_a)  # fmt: skip
        clinical = label_grant_create(office=world.office_a, target_kind="department", target="営業部",
                                      labels=["health_staff", "physician"], scope_="department",
                                      acting_user=world.admin_a)  # fmt: skip
        temp = member_create(employee_number="TMP1", name="期間 管理", office=world.office_a,
                             department=world.department_a)  # fmt: skip
    temp_user = user_create(email="temp@a.example", role=Role.EMPLOYEE, tenant=world.tenant_a, password=PW,
                            member=temp)  # fmt: skip
    with tenant_context(world.tenant_a):
        policy.forget(temp_user)
        assert policy.can_tenant_wide(temp_user, Perm.ACCESS_MANAGE)  # org_admin until `until`, via 営業部
        with pytest.raises(AppError, match="自分自身"):  # the end date dropped: longer than it was given
            label_grant_update(grant=expiring, labels=["org_admin"], scope_="tenant", acting_user=temp_user)
        with pytest.raises(AppError, match="自分自身"):  # a second grant without an end, to the same end
            label_grant_create(office=world.office_a, target_kind="department", target="営業部",
                               labels=["org_admin"], scope_="tenant", acting_user=temp_user)  # fmt: skip
        narrowed = label_grant_update(grant=clinical, labels=["health_staff"], scope_="self", acting_user=temp_user)
        assert narrowed.labels == ["health_staff"] and narrowed.scope == "self"
        with pytest.raises(AppError, match="自分自身"):  # and back again is widening
            label_grant_update(grant=clinical, labels=["health_staff", "physician"], scope_="self",
                               acting_user=temp_user)  # fmt: skip
        assert LabelGrant.objects.get(pk=expiring.pk).valid_until == until
