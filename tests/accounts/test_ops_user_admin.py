"""Operators change logins in the ops admin (/ops/admin/): every change of role or flags is audited in
the login's tenant chain, and a login never moves to another tenant."""

from __future__ import annotations

import html
import re

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


def test_an_operator_renames_a_tenant_and_the_new_name_is_audited(operator, world):
    """A merger or a typo: the organisation's name is not a person's, so it is saved and recorded."""
    _ops_user, client = operator
    tenant = world.tenant_a
    form = {"slug": tenant.slug, "name": "テナントA（新社名）", "kind": tenant.kind, "status": tenant.status,
            "contract_start": tenant.contract_start.isoformat(), "contract_end": "", "insurer_number": ""}  # fmt: skip
    assert client.post(f"/ops/admin/tenants/tenant/{tenant.pk}/change/", form).status_code == 302
    tenant.refresh_from_db()
    assert tenant.name == "テナントA（新社名）"
    (event,) = events_of(tenant, action="tenant.changed")
    assert event.details == {"changed": {"tenant_name": ["テナントA", "テナントA（新社名）"]}}


def _title_and_heading(page: str) -> tuple[str, str]:
    """The browser tab's title and the heading naming the object (h2 on a change page, h1 on its history)."""
    title = re.search(r"<title>(.*?)</title>", page, re.S).group(1)
    content = page[page.index('<div id="content"') :]
    heading = re.search(r"<h2>(.*?)</h2>", content, re.S) or re.search(r"<h1>(.*?)</h1>", content, re.S)
    return html.unescape(title), html.unescape(heading.group(1))


def test_a_logins_pages_are_titled_by_its_number_role_and_tenant_never_its_address(operator, world):
    ops_user, client = operator
    employee = world.member_a
    named = f"ログイン #{employee.pk}（従業員・加入者／テナントA）"
    for url, heading in [
        (f"/ops/admin/accounts/user/{employee.pk}/change/", named),
        (f"/ops/admin/accounts/user/{employee.pk}/history/", f"変更履歴: {named}"),
        (f"/ops/admin/accounts/user/{ops_user.pk}/change/", f"ログイン #{ops_user.pk}（運用担当者）"),
    ]:
        title, shown = _title_and_heading(client.get(url).content.decode())
        assert shown == heading and title.startswith(heading), url
        assert "User #" not in title and "@" not in title, url  # was "User #3"; never the e-mail address


def test_a_logins_page_labels_its_fields_in_japanese_and_shows_no_password_for_one_added_here(operator, world):
    _ops_user, client = operator
    page = client.get(f"/ops/admin/accounts/user/{world.member_a.pk}/change/").content.decode()
    for label in ("テナント:", ">有効<", ">スタッフ権限<", "パスワード:", "登録日時:", "状態と権限"):
        assert label in page, label
    for english in ("Is active", "Is staff", "Date joined", "Tenant:", "Password:", ">set<"):
        assert english not in page, english
    assert '<div class="readonly">設定済み</div>' in page
    added = client.post("/ops/admin/accounts/user/add/", {"email": "new@a.example", "tenant": world.tenant_a.pk,
                                                         "role": Role.EMPLOYEE, "is_active": "on"})  # fmt: skip
    assert added.status_code == 302, added.content.decode()[:2000]
    new = User.objects.get(email="new@a.example")
    page = client.get(f"/ops/admin/accounts/user/{new.pk}/change/").content.decode()
    assert '<div class="readonly">未設定</div>' in page  # no password until a reset, not "set"


def test_staff_rights_are_for_operators_logins_only(operator, world):
    """Ticking スタッフ権限 on a tenant's login would open the ops admin (every tenant) to it: refused."""
    _ops_user, client = operator
    employee = User.objects.get(email="member@a.example")
    for flag in ("is_staff", "is_superuser"):
        response = _change(client, employee, **{flag: "on"})
        assert response.status_code == 200
        assert (
            "スタッフ権限とスーパーユーザー権限は、運用担当者のログインにだけ付けられます。"
            in response.content.decode()
        )
        employee.refresh_from_db()
        assert not employee.is_staff and not employee.is_superuser
