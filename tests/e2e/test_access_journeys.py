"""Access rights in a real browser: the org admin grants a department label, the department sees its
roster and nothing more, the access review shows it, and a team join request is approved."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e


def _log_in(page: Page, base: str, email: str, password: str) -> None:
    """Password, then (for privileged users) the TOTP code of a device the test enrolled beforehand."""
    from django_otp.oath import totp
    from django_otp.plugins.otp_totp.models import TOTPDevice

    page.goto(f"{base}/accounts/login/")
    page.locator('input[name="username"]').fill(email)
    page.locator('input[name="password"]').fill(password)
    page.get_by_role("button", name="ログイン", exact=True).click()
    page.wait_for_load_state()
    if "/accounts/mfa/" in page.url:
        device = TOTPDevice.objects.filter(user__email=email, confirmed=True).first()
        page.locator('input[name="code"]').fill(f"{totp(device.bin_key):06d}")
        page.get_by_role("button", name="確認する", exact=True).click()
        page.wait_for_load_state()
    expect(page.get_by_test_id("header-email")).to_have_text(email)


def _log_out(page: Page) -> None:
    page.get_by_role("button", name="ログアウト", exact=True).click()
    page.wait_for_load_state()


@pytest.fixture
def demo(demo_logins):
    """Demo logins, with a TOTP device ready for the org admin (privileged users must pass MFA)."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.models import User

    admin = demo_logins[("demo-corp", "org_admin")]
    TOTPDevice.objects.create(user=User.objects.get(email=admin.email), name="e2e", confirmed=True)
    return demo_logins


def test_department_label_grant_shows_that_department_its_roster(page: Page, live_server, demo):
    from accounts.models import Member
    from tenants.context import tenant_context
    from tenants.models import Office, Tenant

    corp = Tenant.objects.get(slug="demo-corp")
    with tenant_context(corp):
        sales_names = {m.name for m in Member.objects.filter(office__name="東京本社", department__name="営業部")}
        total = Member.objects.count()
        tokyo = Office.objects.get(name="東京本社")
    assert 0 < len(sales_names) < total

    admin, employee = demo[("demo-corp", "org_admin")], demo[("demo-corp", "employee")]
    # The employee (東京本社/営業部) has no roster menu before the grant.
    _log_in(page, live_server.url, employee.email, employee.password)
    expect(page.get_by_test_id("app-nav").get_by_role("link", name="名簿")).to_have_count(0)
    _log_out(page)

    _log_in(page, live_server.url, admin.email, admin.password)
    page.get_by_test_id("app-nav").get_by_role("link", name="権限設定").click()
    office_select = page.get_by_test_id("office-select")
    expect(office_select.locator(f'option[value="{tokyo.pk}"]')).to_have_text(re.compile(r"^東京本社（付与 \d+ 件）$"))
    office_select.select_option(value=str(tokyo.pk))
    page.get_by_role("button", name="表示").click()
    page.get_by_test_id("grant-new").click()
    page.get_by_role("radio", name="部署名").check()
    page.locator('input[name="target"]').fill("営業部")
    page.get_by_role("checkbox", name="名簿閲覧").check()
    page.locator('select[name="scope"]').select_option(label="所属部署")
    page.get_by_role("button", name="保存").click()
    page.wait_for_load_state()
    expect(page.get_by_text("ラベルを付与しました。")).to_be_visible()
    expect(page.get_by_test_id("grants")).to_contain_text("部署: 営業部")

    page.get_by_test_id("app-nav").get_by_role("link", name="権限の棚卸し").click()
    expect(page.get_by_test_id("review").locator("tr", has_text=employee.email)).to_contain_text("名簿閲覧")
    _log_out(page)

    # A label over others' data binds the employee to a second factor, as it binds the privileged roles.
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.models import User

    TOTPDevice.objects.create(user=User.objects.get(email=employee.email), name="e2e", confirmed=True)
    _log_in(page, live_server.url, employee.email, employee.password)
    page.get_by_test_id("app-nav").get_by_role("link", name="名簿").click()
    shown = set(page.get_by_test_id("roster").locator("tbody tr td:nth-child(2)").all_inner_texts())
    assert shown == sales_names


def test_team_join_request_is_approved_in_the_browser(page: Page, live_server, demo):
    employee, physician = demo[("demo-corp", "employee")], demo[("demo-corp", "physician")]
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.models import User

    TOTPDevice.objects.create(user=User.objects.get(email=physician.email), name="e2e", confirmed=True)

    _log_in(page, live_server.url, employee.email, employee.password)
    page.goto(f"{live_server.url}/teams/")
    page.locator('input[name="name"]').fill("昼休みウォーキング")
    page.locator('select[name="join_policy"]').select_option("approval")
    page.locator('input[name="display_name"]').fill("ひるあるき")
    page.get_by_role("button", name="作成").click()
    page.wait_for_load_state()
    team_url = page.url
    _log_out(page)

    _log_in(page, live_server.url, physician.email, physician.password)
    page.goto(f"{live_server.url}/teams/")
    page.get_by_role("link", name="昼休みウォーキング").click()
    page.locator('input[name="display_name"]').fill("産業医の先生")
    page.get_by_test_id("join").click()
    page.wait_for_load_state()
    expect(page.get_by_text("参加を申請しました。")).to_be_visible()
    _log_out(page)

    _log_in(page, live_server.url, employee.email, employee.password)
    page.goto(team_url)
    expect(page.get_by_test_id("pending")).to_contain_text("産業医の先生")
    expect(page.locator("main")).not_to_contain_text(physician.email)
    page.get_by_test_id("approve").click()
    page.wait_for_load_state()
    expect(page.get_by_text("承認しました。")).to_be_visible()
    expect(page.get_by_test_id("pending")).not_to_contain_text("産業医の先生")
    expect(page.get_by_test_id("members")).to_contain_text("産業医の先生")
    page.goto(f"{live_server.url}/")
    expect(page.get_by_test_id("my-teams")).to_contain_text("昼休みウォーキング")
