"""Registering, enrolling MFA and resetting a password in a real browser, with the demo data set.

E-mails go to a mail folder as in the embedded default (file backend), and the journeys read the links
out of those files, as a newcomer on a fresh machine would.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from django_otp.oath import totp
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

NEW_PASSWORD = "Kenko-Daiichi-42"


@pytest.fixture
def mail_dir(settings, tmp_path) -> Path:
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = tmp_path
    from django.core.cache import cache

    cache.clear()  # rate-limit counters
    return tmp_path


def watch_csp(page: Page) -> list[str]:
    seen: list[str] = []
    page.on("console", lambda m: seen.append(m.text) if "content security policy" in m.text.lower() else None)
    return seen


def link_in_mail(mail_dir: Path, pattern: str) -> str:
    texts = [path.read_text(encoding="utf-8", errors="replace") for path in sorted(mail_dir.iterdir())]
    for text in reversed(texts):
        found = re.search(pattern, text)
        if found:
            return found.group(0)
    raise AssertionError(f"no mail with {pattern!r} in {mail_dir}")


def click(page: Page, name: str, role: str = "button") -> None:
    with page.expect_navigation():
        page.get_by_role(role, name=name, exact=True).click()


def enrol_totp_in_browser(page: Page) -> None:
    """What a privileged user does at the first login: scan (here: read) the key, type the code."""
    expect(page.get_by_role("heading", name="多要素認証の設定", exact=True)).to_be_visible()
    expect(page.get_by_test_id("mfa-required")).to_be_visible()
    expect(page.get_by_test_id("totp-qr").locator("svg")).to_be_visible()
    secret = page.get_by_test_id("totp-secret").inner_text().replace(" ", "")
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    page.get_by_label("確認コード").fill(f"{totp(key):06d}")
    click(page, "設定を完了する")
    expect(page.get_by_role("heading", name="バックアップコード", exact=True)).to_be_visible()
    expect(page.get_by_test_id("backup-codes").locator("li")).to_have_count(10)
    click(page, "続ける", role="link")


def test_newcomer_registers_with_card_data_confirms_logs_in_and_out(page: Page, live_server, demo_logins, mail_dir):
    from healthapp.demo import demo_registration_samples

    card = next(s for s in demo_registration_samples() if s.kind == "card").fields
    violations = watch_csp(page)
    page.goto("/accounts/login/")
    click(page, "はじめてログインされる方は、こちらからアカウント登録をお願いします", role="link")
    expect(page.get_by_role("heading", name="アカウント登録", exact=True)).to_be_visible()
    page.get_by_label("記号").fill(card["記号 / symbol"])
    page.get_by_label("番号").fill(card["番号 / number"])
    page.get_by_label("枝番").fill(card["枝番 / branch"])
    page.get_by_label("続柄").select_option(label=card["続柄 / relationship"])
    page.get_by_label("性別").select_option(label=card["性別 / sex"])
    page.get_by_label("生まれた年").select_option(card["生まれた年 / birth year"])
    page.get_by_label("生まれた月").select_option(card["生まれた月 / birth month"])
    page.get_by_label("ログインに使うメールアドレス").fill("newcomer@example.jp")
    page.get_by_label("パスワード", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("パスワード（確認）").fill(NEW_PASSWORD)
    click(page, "確認メールを送る")
    expect(page.get_by_test_id("register-sent")).to_contain_text("確認メールを送信しました")

    link = link_in_mail(mail_dir, re.escape(live_server.url) + r"/accounts/register/confirm/[^\s/]+/")
    page.goto(link)
    click(page, "登録を完了する")
    expect(page.get_by_text("アカウント登録が完了しました。")).to_be_visible()
    page.locator('input[name="username"]').fill("newcomer@example.jp")
    page.locator('input[name="password"]').fill(NEW_PASSWORD)
    click(page, "ログイン")
    expect(page.get_by_test_id("email")).to_have_text("newcomer@example.jp")
    expect(page.get_by_test_id("role")).to_have_text("従業員・加入者")
    expect(page.get_by_test_id("tenant")).to_have_text("デモ健康保険組合（健康保険組合）")
    click(page, "ログアウト")
    expect(page.get_by_role("heading", name="ログアウトしました", exact=True)).to_be_visible()

    # The link was single-use.
    page.goto(link)
    expect(page.get_by_role("alert")).to_contain_text("すでに使われています")
    assert violations == [], "\n".join(violations)


def test_physician_is_forced_through_totp_enrolment_then_reaches_home(page: Page, live_server, demo_logins, mail_dir):
    account = demo_logins[("demo-corp", "physician")]
    violations = watch_csp(page)
    page.goto("/accounts/login/")
    page.locator('input[name="username"]').fill(account.email)
    page.locator('input[name="password"]').fill(account.password)
    click(page, "ログイン")
    # Typing another address does not get around enrolment.
    page.goto("/accounts/mfa/")
    expect(page).to_have_url(re.compile(r"/accounts/mfa/setup/"))
    enrol_totp_in_browser(page)
    # … and afterwards lands where it was heading, with the app now on record.
    expect(page.get_by_role("heading", name="多要素認証", exact=True)).to_be_visible()
    expect(page.get_by_test_id("mfa-totp")).to_have_text("設定済み")
    expect(page.get_by_test_id("mfa-backup-count")).to_have_text("10")
    page.goto("/")
    expect(page.get_by_role("heading", name="ホーム", exact=True)).to_be_visible()
    expect(page.get_by_test_id("role")).to_have_text("産業医")
    click(page, "ログアウト")
    expect(page.get_by_role("heading", name="ログアウトしました", exact=True)).to_be_visible()
    assert violations == [], "\n".join(violations)


def test_password_reset_in_the_browser(page: Page, live_server, demo_logins, mail_dir):
    account = demo_logins[("demo-corp", "employee")]
    violations = watch_csp(page)
    page.goto("/accounts/login/")
    click(page, "パスワードを忘れた方", role="link")
    page.get_by_label("登録したメールアドレス").fill(account.email)
    click(page, "再設定メールを送る")
    expect(page.get_by_test_id("reset-sent")).to_be_visible()

    link = link_in_mail(mail_dir, re.escape(live_server.url) + r"/accounts/password/reset/[^\s/]+/[^\s/]+/")
    page.goto(link)
    page.locator('input[name="new_password1"]').fill(NEW_PASSWORD)
    page.locator('input[name="new_password2"]').fill(NEW_PASSWORD)
    click(page, "パスワードを変更する")
    expect(page.get_by_test_id("reset-complete")).to_contain_text("パスワードを変更しました")

    click(page, "ログインする", role="link")
    page.locator('input[name="username"]').fill(account.email)
    page.locator('input[name="password"]').fill(NEW_PASSWORD)
    click(page, "ログイン")
    expect(page.get_by_test_id("email")).to_have_text(account.email)
    page.goto(link)  # used once already
    expect(page.get_by_role("alert")).to_contain_text("すでに使われています")
    assert violations == [], "\n".join(violations)
