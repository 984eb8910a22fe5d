"""Operators change logins in the ops admin (/ops/admin/): every change of role or flags is audited in
the login's tenant chain, and a login never moves to another tenant."""

from __future__ import annotations

from django.test import Client

from accounts.models import Role, User
from tests.audit.conftest import events_of


def _change(client: Client, user: User, **fields):
    form = {"email": user.email, "role": user.role, "is_active": "on", "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00", **fields}  # fmt: skip
    form = {k: v for k, v in form.items() if v is not None}
    return client.post(f"/ops/admin/accounts/user/{user.pk}/change/", form)


def test_an_operator_giving_a_tenant_login_a_role_is_audited_in_that_tenant(operator, world):
    ops_user, client = operator
    employee = User.objects.get(email="member@a.example")
    response = _change(client, employee, role=Role.ORG_ADMIN, tenant=world.tenant_b.pk)
    assert response.status_code == 302, response.content.decode()[:2000]
    employee.refresh_from_db()
    assert employee.role == Role.ORG_ADMIN and employee.tenant_id == world.tenant_a.pk  # the tenant cannot move
    (event,) = events_of(world.tenant_a, action="user.changed")
    assert event.actor_id == ops_user.pk and event.target_id == str(employee.pk)
    assert event.details == {"changed": {"role": [Role.EMPLOYEE, Role.ORG_ADMIN]}, "login_address_changed": False}
    assert "member@a.example" not in str(event.details)


def test_a_save_that_changes_nothing_records_nothing(operator, world):
    _operator, client = operator
    employee = User.objects.get(email="member@a.example")
    assert _change(client, employee).status_code == 302
    assert events_of(world.tenant_a, action="user.changed") == []


def test_the_ops_admin_shows_no_password_hash_and_deletes_no_login(operator, world):
    _operator, client = operator
    employee = User.objects.get(email="member@a.example")
    page = client.get(f"/ops/admin/accounts/user/{employee.pk}/change/").content.decode()
    assert "argon2" not in page and employee.password.split("$")[-1] not in page
    assert client.post(f"/ops/admin/accounts/user/{employee.pk}/delete/", {"post": "yes"}).status_code == 403
    assert User.objects.filter(pk=employee.pk).exists()


def test_an_operators_change_of_a_tenant_is_audited_in_its_chain_and_its_kind_stays(operator, world):
    ops_user, client = operator
    tenant = world.tenant_a
    form = {"slug": tenant.slug, "name": tenant.name, "kind": "insurer", "status": "suspended",
            "contract_start": tenant.contract_start.isoformat(), "contract_end": "", "insurer_number": ""}  # fmt: skip
    response = client.post(f"/ops/admin/tenants/tenant/{tenant.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    tenant.refresh_from_db()
    assert tenant.status == "suspended" and tenant.kind == "company"
    (event,) = events_of(tenant, action="tenant.changed")
    assert event.actor_id == ops_user.pk and event.details == {"changed": {"status": ["active", "suspended"]}}
    assert client.post(f"/ops/admin/tenants/tenant/{tenant.pk}/delete/", {"post": "yes"}).status_code == 403
