"""The operators' admin (/ops/admin/) as people see it: tenants' users find nothing there (the site's own
404, not an admin login that names them), operators still log in there with a second factor, and every
label an operator reads on the pages of our models is Japanese."""

from __future__ import annotations

import html
import re

import pytest
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Role
from accounts.services import user_create
from checkups.models import CriteriaSet
from tests.conftest import OPS_PASSWORD, TEST_PASSWORD, log_in

JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def _title_and_heading(page: str) -> tuple[str, str]:
    title = re.search(r"<title>(.*?)</title>", page, re.S).group(1)
    heading = re.search(r"<h1>(.*?)</h1>", page, re.S).group(1)
    return html.unescape(title.strip()), html.unescape(heading.strip())


@pytest.mark.parametrize(
    ("email", "password"),
    [("member@a.example", TEST_PASSWORD), ("admin@a.example", TEST_PASSWORD + "!x")],  # employee; org admin + MFA
)
def test_a_tenant_user_gets_the_sites_404_on_every_ops_admin_page(world, email, password):
    client = Client()
    log_in(client, email, password)
    not_found = _title_and_heading(client.get("/no-such-page/").content.decode())
    assert not_found[1] == "ページが見つかりません"
    for url in ("/ops/admin/", "/ops/admin/login/", "/ops/admin/accounts/user/", "/ops/admin/tenants/tenant/1/change/",
                "/ops/admin/logout/", "/ops/admin/no-such-page/"):  # fmt: skip
        response = client.get(url)
        page = response.content.decode()
        assert response.status_code == 404, url
        assert _title_and_heading(page) == not_found, url  # the same page as for any address that does not exist
        assert "運用管理" not in page and 'name="otp_token"' not in page and "認証されました" not in page
    # Nor can the login form be used from inside a tenant session.
    refused = client.post("/ops/admin/login/", {"username": "ops@ops.example", "password": OPS_PASSWORD})
    assert refused.status_code == 404


def test_an_anonymous_visitor_gets_the_admin_login_where_an_operator_logs_in_with_a_code(db):
    operator = user_create(email="ops@ops.example", role=Role.OPERATOR, tenant=None, password=OPS_PASSWORD)
    device = TOTPDevice.objects.create(user=operator, name="app", confirmed=True)
    client = Client()
    response = client.get("/ops/admin/")
    assert response.status_code == 302 and response.url == "/ops/admin/login/?next=/ops/admin/"
    login = client.get(response.url).content.decode()
    assert 'name="otp_token"' in login and "healthapp 運用管理" in login
    logged_in = client.post(
        "/ops/admin/login/?next=/ops/admin/",
        {"username": "ops@ops.example", "password": OPS_PASSWORD, "otp_device": device.persistent_id,
         "otp_token": f"{totp(device.bin_key):06d}", "next": "/ops/admin/"},
    )  # fmt: skip
    assert logged_in.status_code == 302 and logged_in.url == "/ops/admin/"
    index = client.get("/ops/admin/")
    assert index.status_code == 200
    assert _title_and_heading(index.content.decode()) == ("運用管理 | healthapp 運用管理", "運用管理")


def test_a_password_without_its_second_factor_does_not_open_the_admin(db):
    user_create(email="ops@ops.example", role=Role.OPERATOR, tenant=None, password=OPS_PASSWORD)
    client = Client()
    refused = client.post("/ops/admin/login/", {"username": "ops@ops.example", "password": OPS_PASSWORD})
    assert refused.status_code == 200 and 'name="otp_token"' in refused.content.decode()
    assert client.get("/ops/admin/").status_code == 302


def test_the_admins_password_link_leads_to_the_sites_audited_password_change(operator):
    _user, client = operator
    response = client.get("/ops/admin/password_change/")
    assert response.status_code == 302 and response.url == "/accounts/password/change/"


def _labels(page: str) -> list[str]:
    """What names a column, a filter, a form field or a group of fields on an admin page."""
    found = [
        *re.findall(r'<div class="text">(?:<a [^>]*>|<span>)?([^<]+)<', page),  # column headers
        *re.findall(r'data-filter-title="([^"]+)"', page),  # list filters
        *re.findall(r"<label[^>]*>([^<]+)</label>", page),  # form fields, read-only fields
        *re.findall(r'class="fieldset-heading">([^<]+)<', page),
        *re.findall(r'<div class="help"[^>]*>\s*<div>([^<]+)<', page),  # help texts
    ]
    return [html.unescape(text).strip() for text in found if text.strip()]


def _pages(world) -> dict[str, str]:
    user = world.member_a
    criteria = CriteriaSet.objects.order_by("pk").first()
    return {
        "users": "/ops/admin/accounts/user/",
        "user": f"/ops/admin/accounts/user/{user.pk}/change/",
        "new user": "/ops/admin/accounts/user/add/",
        "tenants": "/ops/admin/tenants/tenant/",
        "tenant": f"/ops/admin/tenants/tenant/{world.tenant_a.pk}/change/",
        "new tenant": "/ops/admin/tenants/tenant/add/",
        "criteria": "/ops/admin/checkups/criteriaset/",
        "criteria version": f"/ops/admin/checkups/criteriaset/{criteria.pk}/change/",
        "new criteria version": "/ops/admin/checkups/criteriaset/add/",
    }


def test_every_label_on_the_pages_of_users_tenants_and_criteria_is_japanese(operator, world):
    _user, client = operator
    for name, url in _pages(world).items():
        response = client.get(url)
        assert response.status_code == 200, name
        labels = _labels(response.content.decode())
        assert labels, name
        english = [label for label in labels if label != "ID" and not JAPANESE.search(label)]
        assert english == [], f"{name}: {english}"


def test_the_lists_name_their_columns_and_filters_in_japanese_and_say_what_is_empty(operator, world):
    _user, client = operator
    users = _labels(client.get("/ops/admin/accounts/user/").content.decode())
    assert {"テナント", "有効", "最終ログイン"} <= set(users)  # were "Tenant", "Is active" and "is active"
    tenants = client.get("/ops/admin/tenants/tenant/").content.decode()
    assert "識別子・名称で検索します。" in tenants
    assert '<td class="field-contract_end nowrap">（なし）</td>' in tenants  # no contract end: not a bare "-"


def test_the_site_is_named_in_japanese_not_django(operator):
    _user, client = operator
    page = client.get("/ops/admin/accounts/user/").content.decode()
    assert "healthapp 運用管理" in page
    assert "Django" not in _title_and_heading(page)[0] and "Django 管理サイト" not in page


def test_an_operator_finds_the_ops_admin_from_home_and_tenant_pages_are_not_found(operator):
    """An operator has no tenant: its home links to the ops admin (not to teams), and a tenant's page
    opened anyway (/teams/ crashed with a system error) is not found."""
    _user, client = operator
    home = client.get("/").content.decode()
    assert 'data-testid="ops-admin"' in home and "/teams/" not in home
    for path in ("/teams/", "/checkups/mine/", "/roster/"):
        response = client.get(path)
        assert response.status_code in (403, 404), path
