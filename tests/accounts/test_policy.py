"""The access policy: deny by default, grants add up, expiry, and scope boundaries."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from accounts import policy
from accounts.labels import Perm, Scope
from accounts.models import LabelGrant, Member, Role
from accounts.services import label_grant_create, label_grant_delete, label_grant_update, member_create, user_create
from healthapp.errors import AppError
from tenants.context import tenant_context
from tenants.services import department_create, office_create
from tests.conftest import TEST_PASSWORD


@pytest.fixture
def org(world):
    """Tenant A with two offices and three departments, a member in each, each with a login."""
    with tenant_context(world.tenant_a):
        osaka = office_create(name="大阪支社")
        sales = world.department_a  # 東京本社 / 営業部
        general = department_create(office=world.office_a, name="総務部")
        factory = department_create(office=osaka, name="製造部")
        people = {}
        for key, office, department in [
            ("sales", world.office_a, sales),
            ("sales2", world.office_a, sales),
            ("general", world.office_a, general),
            ("factory", osaka, factory),
        ]:
            member = member_create(employee_number=f"P-{key}", name=f"社員 {key}", office=office, department=department)
            user_create(
                email=f"{key}@a.example", role=Role.EMPLOYEE, tenant=world.tenant_a, password=TEST_PASSWORD,
                member=member,
            )  # fmt: skip
            people[key] = member
    return {"world": world, "osaka": osaka, "d_sales": sales, "d_general": general, "d_factory": factory, **people}


def _user(member: Member):
    from accounts.models import User

    return User.objects.get(pk=member.user_id)


def _grant(org, *, target_kind, target, labels, scope_, office=None, **kw):
    world = org["world"]
    return label_grant_create(
        office=office or world.office_a, target_kind=target_kind, target=target, labels=labels, scope_=scope_,
        acting_user=world.admin_a, **kw,
    )  # fmt: skip


def _visible(user) -> set[str]:
    return {m.employee_number for m in policy.scope(user, Perm.MEMBER_VIEW, Member.objects.all())}


def test_nothing_is_allowed_by_default(org):
    with tenant_context(org["world"].tenant_a):
        user = _user(org["sales"])
        assert policy.permissions(user) == set()
        assert _visible(user) == set()
        assert not policy.can(user, Perm.MEMBER_VIEW)


def test_org_admin_role_carries_the_organisation_admin_label(org):
    with tenant_context(org["world"].tenant_a):
        admin = org["world"].admin_a
        assert policy.can(admin, Perm.ACCESS_MANAGE) and policy.can(admin, Perm.AUDIT_VIEW)
        assert not policy.can(admin, Perm.CHECKUP_VIEW)  # raw results need a medical label
        assert len(_visible(admin)) == Member.objects.count()


def test_department_grant_to_sales_shows_sales_members_only(org):
    with tenant_context(org["world"].tenant_a):
        _grant(org, target_kind="department", target="営業部", labels=["roster_viewer"], scope_=Scope.DEPARTMENT)
        sales_user = _user(org["sales"])
        assert _visible(sales_user) == {"A0", "A1", "A2", "P-sales", "P-sales2"}
        assert _visible(_user(org["general"])) == set()  # other departments got nothing


def test_department_grant_follows_people_who_move(org):
    with tenant_context(org["world"].tenant_a):
        _grant(org, target_kind="department", target="営業部", labels=["roster_viewer"], scope_=Scope.DEPARTMENT)
        mover = Member.objects.get(pk=org["general"].pk)
        mover.department = org["d_sales"]
        mover.save()
        assert "P-sales" in _visible(_user(mover))
        leaver = Member.objects.get(pk=org["sales2"].pk)
        leaver.department = org["d_general"]
        leaver.save()
        assert _visible(_user(leaver)) == set()


@pytest.mark.parametrize(
    ("scope_", "expected"),
    [
        (Scope.SELF, {"P-general"}),
        (Scope.DEPARTMENT, {"P-general"}),
        (Scope.OFFICE, {"A0", "A1", "A2", "P-sales", "P-sales2", "P-general"}),
        (Scope.TENANT, {"A0", "A1", "A2", "P-sales", "P-sales2", "P-general", "P-factory"}),
    ],
)
def test_scope_boundaries_of_an_employee_grant(org, scope_, expected):
    with tenant_context(org["world"].tenant_a):
        _grant(org, target_kind="employee", target="P-general", labels=["roster_viewer"], scope_=scope_)
        assert _visible(_user(org["general"])) == expected


def test_office_scope_is_the_office_the_grant_was_entered_under(org):
    with tenant_context(org["world"].tenant_a):
        _grant(
            org, target_kind="employee", target="P-general", labels=["roster_viewer"], scope_=Scope.OFFICE,
            office=org["osaka"],
        )  # fmt: skip
        assert _visible(_user(org["general"])) == {"P-factory"}


def test_grants_add_up_and_the_widest_scope_wins(org):
    with tenant_context(org["world"].tenant_a):
        _grant(org, target_kind="employee", target="P-factory", labels=["roster_viewer"], scope_=Scope.SELF)
        _grant(org, target_kind="employee", target="P-factory", labels=["manager"], scope_=Scope.TENANT)
        user = _user(org["factory"])
        assert len(_visible(user)) == Member.objects.count()
        assert policy.can(user, Perm.CHECKUP_VIEW_CONCLUSION) and not policy.can(user, Perm.CHECKUP_VIEW)


def test_expired_and_future_grants_give_nothing(org):
    today = timezone.localdate()
    with tenant_context(org["world"].tenant_a):
        _grant(
            org, target_kind="employee", target="P-sales", labels=["roster_viewer"], scope_=Scope.TENANT,
            valid_until=today - dt.timedelta(days=1),
        )  # fmt: skip
        _grant(
            org, target_kind="employee", target="P-sales", labels=["auditor"], scope_=Scope.TENANT,
            valid_from=today + dt.timedelta(days=1),
        )  # fmt: skip
        user = _user(org["sales"])
        assert policy.permissions(user) == set()
        assert policy.effective_grants(user, on=today + dt.timedelta(days=1))[0].label == "auditor"


def test_inactive_roster_entry_loses_its_grants(org):
    with tenant_context(org["world"].tenant_a):
        _grant(org, target_kind="employee", target="P-sales", labels=["roster_viewer"], scope_=Scope.TENANT)
        member = Member.objects.get(pk=org["sales"].pk)
        member.is_active = False
        member.save()
        assert policy.permissions(_user(member)) == set()


def test_can_with_an_object_checks_the_scope_and_the_tenant(org):
    world = org["world"]
    with tenant_context(world.tenant_a):
        _grant(org, target_kind="employee", target="P-sales", labels=["roster_viewer"], scope_=Scope.DEPARTMENT)
        user = _user(org["sales"])
        assert policy.can(user, Perm.MEMBER_VIEW, org["sales2"])
        assert not policy.can(user, Perm.MEMBER_VIEW, org["factory"])
    foreign = world.roster_b[0]
    with tenant_context(world.tenant_a):
        assert not policy.can(world.admin_a, Perm.MEMBER_VIEW, foreign)


def test_grant_input_errors_are_clear(org):
    with tenant_context(org["world"].tenant_a):
        with pytest.raises(AppError, match="社員番号"):
            _grant(org, target_kind="employee", target="NOPE", labels=["roster_viewer"], scope_=Scope.SELF)
        with pytest.raises(AppError, match="部署"):
            _grant(
                org, target_kind="department", target="製造部", labels=["roster_viewer"], scope_=Scope.SELF
            )  # Osaka's
        with pytest.raises(AppError, match="ラベル"):
            _grant(org, target_kind="employee", target="P-sales", labels=["superuser"], scope_=Scope.SELF)
        with pytest.raises(AppError, match="有効終了日"):
            _grant(
                org, target_kind="employee", target="P-sales", labels=["roster_viewer"], scope_=Scope.SELF,
                valid_from=dt.date(2030, 1, 2), valid_until=dt.date(2030, 1, 1),
            )  # fmt: skip


def test_nobody_grants_labels_to_themselves(org):
    world = org["world"]
    with tenant_context(world.tenant_a):
        admin_member = member_create(employee_number="ADM-1", name="管理 者", office=world.office_a)
        admin_member.user = world.admin_a
        admin_member.save()
        with pytest.raises(AppError, match="自分自身"):
            _grant(org, target_kind="employee", target="ADM-1", labels=["physician"], scope_=Scope.TENANT)


def test_grant_changes_are_audited_with_old_and_new_values(org):
    from audit.models import AuditEvent

    with tenant_context(org["world"].tenant_a):
        grant = _grant(org, target_kind="employee", target="P-sales", labels=["roster_viewer"], scope_=Scope.SELF)
        label_grant_update(
            grant=grant, labels=["manager", "roster_viewer"], scope_=Scope.OFFICE, acting_user=org["world"].admin_a
        )
        label_grant_delete(grant=LabelGrant.objects.get(pk=grant.pk), acting_user=org["world"].admin_a)
        events = list(
            AuditEvent.objects.filter(tenant=org["world"].tenant_a, target_type="label_grant").order_by("seq")
        )
    assert [e.action for e in events] == ["label.granted", "label.grant_changed", "label.revoked"]
    changed = events[1].details
    assert changed["old"]["labels"] == ["roster_viewer"] and changed["new"]["labels"] == ["manager", "roster_viewer"]
    assert changed["old"]["scope"] == "self" and changed["new"]["scope"] == "office"
    assert all("P-sales" not in str(e.details) for e in events)  # ids only, no employee numbers


def test_a_label_no_feature_uses_is_refused_by_its_own_name(org):
    with tenant_context(org["world"].tenant_a), pytest.raises(AppError) as refused:
        _grant(org, target_kind="employee", target="P-sales", labels=["auditor", "points_admin"], scope_=Scope.SELF)
    assert (
        refused.value.code == "label_unused"
        and refused.value.message == "「ポイント管理」で使える機能はまだありません。"
    )
