"""Logging in and out in a real browser, as each kind of user sees it.

Every journey starts from a fresh browser profile that asks for Japanese (the product's first
language) and talks to the live server over HTTP; the demo data set supplies the accounts.
"""

from __future__ import annotations

import base64
import re

import pytest
from django_otp.oath import totp
from playwright.sync_api import Page, Response, expect

pytestmark = pytest.mark.e2e

LOGIN_PATH = "/accounts/login/"
WRONG_PASSWORD = "Wr0ng-Password-!"  # never a demo password: those are random

# What the home page should say, written out as a user reads it (not taken from the code).
ROLE_LABELS = {
    "employee": "従業員・加入者",
    "physician": "産業医",
    "health_staff": "保健師・衛生管理者",
    "hr_admin": "人事担当者",
    "insurer_admin": "健保担当者",
    "org_admin": "組織管理者",
    "operator": "運用担当者",
}
TENANT_LABELS = {
    "demo-corp": "デモ商事株式会社（企業）",
    "demo-kenpo": "デモ健康保険組合（健康保険組合）",
    "-": "運用担当（テナントなし）",
}
ROSTER_SIZES = {"demo-corp": 30, "demo-kenpo": 20}
ADMIN_ROLES = {"hr_admin", "insurer_admin", "org_admin"}
# Every role but employee must enrol a second factor (TOTP) before any page opens.
MFA_ROLES = {"physician", "health_staff", "hr_admin", "insurer_admin", "org_admin", "operator"}
DEMO_ACCOUNTS = [
    ("demo-corp", "employee"),
    ("demo-corp", "physician"),
    ("demo-corp", "health_staff"),
    ("demo-corp", "hr_admin"),
    ("demo-corp", "org_admin"),
    ("demo-kenpo", "employee"),
    ("demo-kenpo", "health_staff"),
    ("demo-kenpo", "insurer_admin"),
    ("demo-kenpo", "org_admin"),
    ("-", "operator"),
]
LOGIN_ERROR = "メールアドレスまたはパスワードが正しくありません。"
LOCKED_HEADING = "ログインが一時的に制限されています"


# --- helpers ---------------------------------------------------------------------------------------


def login_url_re(live_server) -> re.Pattern:
    return re.compile(re.escape(live_server.url + LOGIN_PATH) + r"(\?.*)?$")


def submit_login(page: Page, email: str, password: str, *, button: str = "ログイン") -> Response:
    """Fill the login form and press its button; returns the response the browser ended up on."""
    page.locator('input[name="username"]').fill(email)
    page.locator('input[name="password"]').fill(password)
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name=button, exact=True).click()
    response = navigation.value
    assert response is not None
    return response


def click_and_wait(page: Page, button: str) -> Response:
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name=button, exact=True).click()
    response = navigation.value
    assert response is not None
    return response


def enrol_totp(page: Page, live_server) -> None:
    """The first login of a privileged user: the enrolment page, a code from the (simulated) app,
    the backup codes once, then on to the home page."""
    expect(page).to_have_url(re.compile(re.escape(live_server.url) + r"/accounts/mfa/setup/\?next=%2F$"))
    expect(page.get_by_role("heading", name="多要素認証の設定", exact=True)).to_be_visible()
    expect(page.get_by_test_id("totp-qr").locator("svg")).to_be_visible()
    page.goto("/")  # nothing else opens before enrolment
    expect(page.get_by_role("heading", name="多要素認証の設定", exact=True)).to_be_visible()
    secret = page.get_by_test_id("totp-secret").inner_text().replace(" ", "")
    code = f"{totp(base64.b32decode(secret + '=' * (-len(secret) % 8))):06d}"
    page.get_by_label("確認コード").fill(code)
    click_and_wait(page, "設定を完了する")
    expect(page.get_by_test_id("backup-codes").locator("li")).to_have_count(10)
    with page.expect_navigation():
        page.get_by_role("link", name="続ける", exact=True).click()


def expect_logged_out_header(page: Page) -> None:
    expect(page.get_by_test_id("header-email")).to_have_count(0)
    expect(page.get_by_role("button", name="ログアウト", exact=True)).to_have_count(0)


# --- 1. every demo login ---------------------------------------------------------------------------


@pytest.mark.parametrize(("tenant", "role"), DEMO_ACCOUNTS, ids=[f"{t}:{r}" for t, r in DEMO_ACCOUNTS])
def test_demo_user_logs_in_sees_who_they_are_and_logs_out(page: Page, live_server, demo_logins, tenant, role):
    assert set(demo_logins) == set(DEMO_ACCOUNTS), "the demo data set changed: update DEMO_ACCOUNTS"
    account = demo_logins[(tenant, role)]

    # A visitor who opens the home page is sent to the login page first.
    page.goto("/")
    expect(page).to_have_url(login_url_re(live_server))
    expect(page.get_by_role("heading", name="ログイン", exact=True)).to_be_visible()
    expect_logged_out_header(page)

    response = submit_login(page, account.email, account.password)
    assert response.status == 200
    if role in MFA_ROLES:
        enrol_totp(page, live_server)
    expect(page).to_have_url(live_server.url + "/")
    expect(page.get_by_role("heading", name="ホーム", exact=True)).to_be_visible()
    expect(page.get_by_test_id("email")).to_have_text(account.email)
    expect(page.get_by_test_id("header-email")).to_have_text(account.email)
    expect(page.get_by_test_id("role")).to_have_text(ROLE_LABELS[role])
    expect(page.get_by_test_id("tenant")).to_have_text(TENANT_LABELS[tenant])
    expect(page.get_by_test_id("no-notices")).to_have_text("お知らせはありません。")

    summary = page.get_by_test_id("roster-summary")
    if role in ADMIN_ROLES:
        expect(summary).to_be_visible()
        expect(page.get_by_test_id("member-count")).to_have_text(str(ROSTER_SIZES[tenant]))
    else:
        expect(summary).to_have_count(0)
        expect(page.get_by_test_id("member-count")).to_have_count(0)

    # Logging out lands on a page for logged-out visitors, and the home page is closed again.
    click_and_wait(page, "ログアウト")
    expect(page.get_by_role("heading", name="ログアウトしました", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="もう一度ログインする")).to_be_visible()
    expect_logged_out_header(page)
    expect(page.get_by_text(account.email)).to_have_count(0)

    page.goto("/")
    expect(page).to_have_url(login_url_re(live_server))
    expect(page.get_by_role("heading", name="ログイン", exact=True)).to_be_visible()


# --- 2. wrong passwords and the lock ---------------------------------------------------------------


def test_wrong_password_then_lockout_refuses_even_the_right_password(page: Page, live_server, demo_logins):
    account = demo_logins[("demo-corp", "employee")]
    page.goto(LOGIN_PATH)

    # One wrong password: a plain error, still on the login page, still logged out.
    response = submit_login(page, account.email, WRONG_PASSWORD)
    assert response.status == 200
    expect(page).to_have_url(login_url_re(live_server))
    expect(page.get_by_role("alert")).to_have_text(re.compile("^" + re.escape(LOGIN_ERROR)))
    expect(page.get_by_role("heading", name="ログイン", exact=True)).to_be_visible()
    expect(page.locator('input[name="username"]')).to_have_value(account.email)
    expect(page.locator('input[name="password"]')).to_have_value("")
    expect_logged_out_header(page)

    # Wrong passwords 2–4: the same error each time, no lock yet.
    for attempt in range(2, 5):
        response = submit_login(page, account.email, WRONG_PASSWORD)
        assert response.status == 200, f"attempt {attempt}"
        expect(page.get_by_role("alert")).to_have_text(re.compile("^" + re.escape(LOGIN_ERROR)))

    # The 5th wrong password in a row locks the account: the page explains it in plain words
    # (429, the lock-out page, not the login form with yet another error).
    response = submit_login(page, account.email, WRONG_PASSWORD)
    assert response.status == 429
    locked = page.get_by_test_id("locked")
    expect(locked).to_be_visible()
    expect(locked.get_by_role("heading", name=LOCKED_HEADING, exact=True)).to_be_visible()
    expect(locked).to_contain_text("パスワードを5回続けて間違えたため")
    expect(locked).to_contain_text("30分ほど待ってから、もう一度お試しください。")
    # The way out they can take themselves: a password reset lifts the lock (tests/accounts/test_password_reset.py).
    expect(locked).to_contain_text(
        "お急ぎの場合は、パスワードを再設定してください。再設定が終わると、すぐにログインできます。"
    )
    expect(locked.get_by_role("link", name="パスワードを再設定する", exact=True)).to_have_attribute(
        "href", "/accounts/password/reset/"
    )
    expect(page.get_by_role("alert")).to_have_count(0)
    expect_logged_out_header(page)

    # A 6th try from a fresh login page is refused the same way.
    page.goto(LOGIN_PATH)
    response = submit_login(page, account.email, WRONG_PASSWORD)
    assert response.status == 429
    expect(page.get_by_test_id("locked")).to_be_visible()

    # While locked, even the correct password does not get in.
    page.get_by_role("link", name="ログイン画面に戻る").click()
    expect(page).to_have_url(login_url_re(live_server))
    response = submit_login(page, account.email, account.password)
    assert response.status == 429
    expect(page.get_by_test_id("locked")).to_be_visible()
    expect_logged_out_header(page)
    page.goto("/")
    expect(page).to_have_url(login_url_re(live_server))

    # The lock is on that account only: a colleague logs in from the same browser as usual.
    colleague = demo_logins[("demo-corp", "physician")]
    response = submit_login(page, colleague.email, colleague.password)
    assert response.status == 200
    enrol_totp(page, live_server)
    expect(page.get_by_test_id("email")).to_have_text(colleague.email)


# --- 3. English ----------------------------------------------------------------------------------


def test_user_switches_to_english_logs_in_and_back_to_japanese(page: Page, live_server, demo_logins):
    account = demo_logins[("demo-corp", "employee")]
    page.goto(LOGIN_PATH)
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    expect(page.get_by_role("heading", name="ログイン", exact=True)).to_be_visible()

    click_and_wait(page, "English")
    expect(page).to_have_url(login_url_re(live_server))
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", name="Log in", exact=True)).to_be_visible()

    submit_login(page, account.email, account.password, button="Log in")
    expect(page).to_have_url(live_server.url + "/")
    expect(page.get_by_role("heading", name="Home", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Notices", exact=True)).to_be_visible()
    expect(page.get_by_test_id("no-notices")).to_have_text("There are no notices.")
    expect(page.get_by_role("button", name="Log out", exact=True)).to_be_visible()

    click_and_wait(page, "日本語")
    expect(page).to_have_url(live_server.url + "/")
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    expect(page.get_by_role("heading", name="ホーム", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="お知らせ", exact=True)).to_be_visible()
    expect(page.get_by_test_id("no-notices")).to_have_text("お知らせはありません。")
    expect(page.get_by_role("button", name="ログアウト", exact=True)).to_be_visible()


# --- 4. Content Security Policy, and a screenshot for a human -----------------------------------


def watch_csp(page: Page) -> list[str]:
    """Collect every console message that mentions the Content Security Policy."""
    seen: list[str] = []

    def on_console(message) -> None:
        if "content security policy" in message.text.lower():
            seen.append(f"[{message.type}] {message.text}")

    page.on("console", on_console)
    return seen


def expect_security_headers(response: Response) -> None:
    headers = response.headers
    csp = headers.get("content-security-policy", "")
    directives = {part.strip().split(" ", 1)[0]: part.strip() for part in csp.split(";") if part.strip()}
    assert directives.get("default-src") == "default-src 'self'", csp
    assert "'unsafe-inline'" not in directives.get("script-src", ""), csp
    assert headers.get("x-frame-options") == "DENY"


def test_login_and_home_raise_no_csp_violations_and_home_is_screenshotted(
    page: Page, context, live_server, demo_logins, screenshot_dir
):
    account = demo_logins[("demo-corp", "org_admin")]
    violations = watch_csp(page)

    response = page.goto(LOGIN_PATH)
    assert response is not None and response.status == 200
    expect_security_headers(response)
    expect(page.get_by_role("heading", name="ログイン", exact=True)).to_be_visible()

    response = submit_login(page, account.email, account.password)
    expect_security_headers(response)
    enrol_totp(page, live_server)  # the enrolment page (inline SVG QR code) is checked for CSP too
    expect(page.get_by_test_id("member-count")).to_have_text("30")
    page.wait_for_load_state("load")
    # The stylesheet is served from 'self' and actually applies (not blocked, not a 404).
    assert page.evaluate("() => [...document.styleSheets].some((s) => s.href && s.cssRules.length > 0)")

    shot = screenshot_dir / "home.png"
    shot.unlink(missing_ok=True)
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 0

    assert violations == [], "CSP violations on the login or home page:\n" + "\n".join(violations)

    # Control: the listener does see a violation when there is one (an injected inline script).
    probe = context.new_page()
    probe_violations = watch_csp(probe)
    probe.goto("/")
    with probe.expect_console_message(lambda message: "content security policy" in message.text.lower()):
        probe.evaluate(
            "() => { const s = document.createElement('script'); s.textContent = 'window.__inline = 1';"
            " document.head.appendChild(s); }"
        )
    assert probe_violations, "an inline script ran or was blocked silently: the CSP check would miss violations"
    assert probe.evaluate("() => window.__inline") is None
