"""Logging in, locking out, and sessions ending — as a user notices them."""

from __future__ import annotations

import time

import pytest
from django.test import Client

from accounts.middleware import SESSION_LAST_SEEN, SESSION_STARTED
from tenants.context import tenant_context
from tests.conftest import TEST_PASSWORD, log_in

ADMIN_PASSWORD = TEST_PASSWORD + "!x"


def test_login_page_is_japanese_by_default(client):
    page = client.get("/accounts/login/")
    assert page.status_code == 200
    assert "ログイン" in page.content.decode()
    assert page.headers["Content-Language"] == "ja"


def test_login_page_in_english_when_chosen(client):
    client.post("/i18n/setlang/", {"language": "en", "next": "/accounts/login/"})
    page = client.get("/accounts/login/").content.decode()
    assert "Log in" in page and "E-mail address" in page


def test_anonymous_visitor_is_sent_to_login(client):
    response = client.get("/")
    assert response.status_code == 302 and response.url.startswith("/accounts/login/")


def test_employee_logs_in_and_sees_who_they_are(client, world):
    response = log_in(client, "member@a.example", TEST_PASSWORD)
    assert response.status_code == 302 and response.url == "/"
    page = client.get("/").content.decode()
    assert "member@a.example" in page
    assert "従業員・加入者" in page
    assert "テナントA" in page
    assert "甲野 0" in page  # the linked roster entry
    assert "お知らせはありません。" in page
    assert 'data-testid="roster-summary"' not in page


def test_admin_home_counts_own_tenant_only(client, world):
    log_in(client, "admin@a.example", ADMIN_PASSWORD)
    page = client.get("/").content.decode()
    assert 'data-testid="member-count">3<' in page
    assert "テナントB" not in page


def test_login_with_mixed_case_email(client, world):
    assert log_in(client, "Member@A.Example", TEST_PASSWORD).status_code == 302


def test_login_rotates_the_session_id(client, world):
    client.get("/accounts/login/")
    client.session["probe"] = 1  # creates a pre-login session
    session = client.session
    session.save()
    before = session.session_key
    client.cookies["healthapp_session"] = before
    log_in(client, "member@a.example", TEST_PASSWORD)
    after = client.cookies["healthapp_session"].value
    assert after and after != before


def test_wrong_password_says_so_without_revealing_whether_the_account_exists(client, world):
    wrong = log_in(client, "member@a.example", "wrong-password-1A").content.decode()
    unknown = log_in(client, "nobody@a.example", "wrong-password-1A").content.decode()
    message = "メールアドレスまたはパスワードが正しくありません。"
    assert message in wrong and message in unknown


def test_five_wrong_passwords_lock_the_account_and_explain_why(client, world):
    for _ in range(5):
        log_in(client, "member@a.example", "wrong-password-1A")
    locked = log_in(client, "member@a.example", TEST_PASSWORD)
    assert locked.status_code == 429
    text = locked.content.decode()
    assert "ログインが一時的に制限されています" in text
    assert "5回続けて間違えた" in text and "30分" in text
    assert "_auth_user_id" not in client.session


def test_lockout_is_per_account_so_others_behind_the_same_address_can_log_in(client, world):
    for _ in range(5):
        log_in(client, "member@a.example", "wrong-password-1A")
    other = Client()
    assert log_in(other, "admin@a.example", ADMIN_PASSWORD).status_code == 302


def test_forged_forwarded_for_neither_lifts_a_lock_nor_locks_others(settings, world):
    settings.TRUSTED_PROXY_COUNT = 1  # one proxy of ours appends the real address
    attacker = Client()
    for i in range(5):
        # The client forges the left-most entries; our proxy appends the real address 198.51.100.7.
        log_in(
            attacker,
            "member@a.example",
            "wrong-password-1A",
            HTTP_X_FORWARDED_FOR=f"10.0.0.{i}, 198.51.100.7",
            REMOTE_ADDR="127.0.0.1",
        )
    retry = log_in(
        attacker,
        "member@a.example",
        TEST_PASSWORD,
        HTTP_X_FORWARDED_FOR="203.0.113.99, 192.0.2.1",
        REMOTE_ADDR="127.0.0.1",
    )
    assert retry.status_code == 429  # a new forged address does not lift the lock
    colleague = Client()
    ok = log_in(
        colleague,
        "admin@a.example",
        ADMIN_PASSWORD,
        HTTP_X_FORWARDED_FOR="198.51.100.7",
        REMOTE_ADDR="127.0.0.1",
    )
    assert ok.status_code == 302  # same real address, other account: not locked


def test_successful_login_resets_the_failure_count(client, world):
    for _ in range(4):
        log_in(client, "member@a.example", "wrong-password-1A")
    assert log_in(client, "member@a.example", TEST_PASSWORD).status_code == 302
    client.post("/accounts/logout/")
    for _ in range(4):
        log_in(client, "member@a.example", "wrong-password-1A")
    assert log_in(client, "member@a.example", TEST_PASSWORD).status_code == 302


def test_logout_needs_post_and_ends_the_session(client, world):
    log_in(client, "member@a.example", TEST_PASSWORD)
    assert client.get("/accounts/logout/").status_code == 405
    assert client.post("/accounts/logout/").status_code == 200
    assert client.get("/").status_code == 302


def test_inactive_user_cannot_log_in(client, world):
    world.member_a.is_active = False
    world.member_a.save()
    assert log_in(client, "member@a.example", TEST_PASSWORD).status_code == 200
    assert client.get("/").status_code == 302


def test_user_of_a_suspended_tenant_is_logged_out(client, world):
    log_in(client, "member@a.example", TEST_PASSWORD)
    world.tenant_a.status = "suspended"
    world.tenant_a.save()
    assert client.get("/").status_code == 302
    assert "_auth_user_id" not in client.session


def test_an_api_call_of_a_suspended_tenants_user_says_why_in_the_apis_shape(client, world):
    log_in(client, "member@a.example", TEST_PASSWORD)
    world.tenant_a.status = "terminated"
    world.tenant_a.save()
    response = client.get("/api/v1/me/")
    assert response.status_code == 403  # not a redirect to the login page a script cannot read
    assert response.json()["error"] == {"code": "tenant_inactive", "message": response.json()["error"]["message"],
                                        "details": {}}  # fmt: skip
    assert "停止" in response.json()["error"]["message"] and "_auth_user_id" not in client.session


def _age_session(client, *, idle_minutes: float = 0, age_hours: float = 0) -> None:
    session = client.session
    now = time.time()
    session[SESSION_LAST_SEEN] = now - idle_minutes * 60
    session[SESSION_STARTED] = now - age_hours * 3600
    session.save()


@pytest.mark.parametrize(
    ("email", "password", "idle_minutes", "still_in"),
    [
        ("member@a.example", TEST_PASSWORD, 29, True),
        ("member@a.example", TEST_PASSWORD, 31, False),
        ("admin@a.example", ADMIN_PASSWORD, 14, True),
        ("admin@a.example", ADMIN_PASSWORD, 16, False),
    ],
)
def test_idle_timeout_is_shorter_for_privileged_roles(client, world, email, password, idle_minutes, still_in):
    log_in(client, email, password)
    client.get("/")
    _age_session(client, idle_minutes=idle_minutes)
    response = client.get("/")
    assert (response.status_code == 200) is still_in
    if not still_in:
        assert "/accounts/login/" in response.url
        follow = client.get(response.url).content.decode()
        assert "一定時間操作がなかったため、ログアウトしました。" in follow


def test_absolute_timeout_ends_even_an_active_session(client, world):
    log_in(client, "member@a.example", TEST_PASSWORD)
    client.get("/")
    _age_session(client, idle_minutes=1, age_hours=12.1)
    assert client.get("/").status_code == 302


def test_timeouts_are_configurable(client, world, settings):
    from datetime import timedelta

    settings.SESSION_IDLE_TIMEOUT = timedelta(minutes=60)
    log_in(client, "member@a.example", TEST_PASSWORD)
    client.get("/")
    _age_session(client, idle_minutes=45)
    assert client.get("/").status_code == 200


def test_expired_session_on_the_api_answers_401_json(client, world):
    log_in(client, "member@a.example", TEST_PASSWORD)
    client.get("/")
    _age_session(client, idle_minutes=31)
    response = client.get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "session_expired"


def test_japanese_even_when_the_browser_asks_for_english(client):
    page = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    assert page.headers["Content-Language"] == "ja"
    assert "メールアドレス" in page.content.decode()


def test_an_employee_holding_a_label_over_others_gets_the_privileged_idle_limit(client, world):
    """Bound to MFA like the privileged roles, and to their 15-minute idle limit too."""
    from accounts.services import label_grant_create

    with tenant_context(world.tenant_a):
        label_grant_create(office=world.office_a, target_kind="employee", target="A0", labels=["manager"],
                           scope_="department", acting_user=world.admin_a)  # fmt: skip
    log_in(client, "member@a.example", TEST_PASSWORD)  # through the second factor it now needs
    assert client.get("/").status_code == 200
    _age_session(client, idle_minutes=16)
    response = client.get("/")
    assert response.status_code == 302 and "/accounts/login/" in response.url
