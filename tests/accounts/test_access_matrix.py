"""Every admin endpoint × every role × an in-scope, an out-of-scope and a foreign-tenant object.

Expected answers are derived from the grants each role is given here (200 where the policy allows,
otherwise 404 — never 403, so nothing reveals that an object exists).
"""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.labels import Scope
from accounts.models import LabelGrant, Role
from accounts.services import label_grant_create, member_create, user_create
from tenants.context import tenant_context
from tenants.services import department_create, office_create
from tests.conftest import TEST_PASSWORD, log_in

PASSWORD = TEST_PASSWORD + "!x"
# role → (label, scope) granted to that role's own employee number (None: nothing granted)
ROLE_GRANTS = {
    Role.EMPLOYEE: None,
    Role.PHYSICIAN: ("physician", Scope.DEPARTMENT),
    Role.HEALTH_STAFF: ("health_staff", Scope.OFFICE),
    Role.HR_ADMIN: ("hr_staff", Scope.TENANT),
    Role.INSURER_ADMIN: ("auditor", Scope.TENANT),  # a label without member.view
    Role.ORG_ADMIN: None,  # the role itself carries the organisation-admin label (tenant scope)
}
ROSTER_SCOPE = {
    Role.EMPLOYEE: None, Role.PHYSICIAN: Scope.DEPARTMENT, Role.HEALTH_STAFF: Scope.OFFICE,
    Role.HR_ADMIN: Scope.TENANT, Role.INSURER_ADMIN: None, Role.ORG_ADMIN: Scope.TENANT,
}  # fmt: skip
ACCESS_MANAGERS = {Role.ORG_ADMIN}


@pytest.fixture
def matrix(world):
    """Tenant A: 東京本社/営業部 (the staff's department), 大阪支社/製造部; tenant B: a foreign entry."""
    with tenant_context(world.tenant_a):
        osaka = office_create(name="大阪支社")
        factory = department_create(office=osaka, name="製造部")
        in_scope = member_create(
            employee_number="IN-1", name="範囲 内", office=world.office_a, department=world.department_a
        )
        out_of_scope = member_create(employee_number="OUT-1", name="範囲 外", office=osaka, department=factory)
        users = {}
        for i, role in enumerate(ROLE_GRANTS):
            member = member_create(
                employee_number=f"STAFF-{i}", name=f"担当 {i}", office=world.office_a, department=world.department_a
            )
            users[role] = user_create(
                email=f"{role}@matrix.example", role=role, tenant=world.tenant_a, password=PASSWORD, member=member
            )
            if ROLE_GRANTS[role]:
                label, scope_ = ROLE_GRANTS[role]
                label_grant_create(
                    office=world.office_a, target_kind="employee", target=f"STAFF-{i}", labels=[label],
                    scope_=scope_, acting_user=world.admin_a,
                )  # fmt: skip
        grant_in = LabelGrant.objects.order_by("pk").first()
    with tenant_context(world.tenant_b):
        from tenants.models import Office

        office_b = Office.objects.first()
        foreign_grant = label_grant_create(
            office=office_b, target_kind="employee", target="B1", labels=["roster_viewer"], scope_=Scope.SELF,
            acting_user=world.outsider_b,
        )  # fmt: skip
    return {
        "users": users,
        "members": {"in": in_scope, "out": out_of_scope, "foreign": world.roster_b[1]},
        "offices": {"in": world.office_a, "out": osaka, "foreign": office_b},
        "grants": {"in": grant_in, "out": grant_in, "foreign": foreign_grant},
    }


def _member_visible(role: str, which: str) -> bool:
    scope_ = ROSTER_SCOPE[role]
    if scope_ is None or which == "foreign":
        return False
    return which == "in" or scope_ == Scope.TENANT


ENDPOINTS = [
    # (name, url template, kind of object, rule)
    ("roster page", "/roster/{member}/", "members", "member"),
    ("members api", "/api/v1/members/{member}/", "members", "member"),
    ("grant new page", "/settings/access/office/{office}/new/", "offices", "access"),
    ("access settings", "/settings/access/?office={office}", "offices", "access"),
    ("grant edit page", "/settings/access/{grant}/edit/", "grants", "access"),
    ("grant delete page", "/settings/access/{grant}/delete/", "grants", "access"),
    ("grants api", "/api/v1/grants/{grant}/", "grants", "access"),
]


@pytest.mark.parametrize("role", list(ROLE_GRANTS))
def test_every_admin_endpoint_for_every_role(matrix, role):
    client = Client()
    assert log_in(client, f"{role}@matrix.example", PASSWORD).status_code == 302
    failures = []
    for name, template, kind, rule in ENDPOINTS:
        for which in ("in", "out", "foreign"):
            obj = matrix[kind][which]
            url = template.format(**{kind[:-1]: obj.pk})
            allowed = (
                _member_visible(role, which) if rule == "member" else role in ACCESS_MANAGERS and which != "foreign"
            )
            expected = 200 if allowed else 404
            got = client.get(url).status_code
            if got != expected:
                failures.append(f"{name} {which}: expected {expected}, got {got}")
    assert failures == []


@pytest.mark.parametrize("role", list(ROLE_GRANTS))
def test_list_endpoints_show_exactly_the_scope(matrix, role):
    client = Client()
    log_in(client, f"{role}@matrix.example", PASSWORD)
    response = client.get("/api/v1/members/")
    if ROSTER_SCOPE[role] is None:
        assert response.status_code == 404
        assert client.get("/roster/").status_code == 404
        return
    numbers = {row["employee_number"] for row in response.json()["results"]}
    assert "IN-1" in numbers and "B1" not in numbers
    assert ("OUT-1" in numbers) is (ROSTER_SCOPE[role] == Scope.TENANT)
    page = client.get("/roster/").content.decode()
    assert "範囲 内" in page and "乙山" not in page
