"""Forgotten and changed passwords, as the user (and an attacker at the same form) sees them."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.tokens import PasswordResetTokenGenerator, default_token_generator
from django.core import mail
from django.test import Client
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from tests.conftest import TEST_PASSWORD, log_in

NEW_PASSWORD = "Brand-New-Pass-77"
LINK_RE = re.compile(r"http://testserver(/accounts/password/reset/[^/\s]+/[^/\s]+/)")
INVALID = "このリンクは無効か、有効期限が切れているか、すでに使われています。"


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    from django.core.cache import cache

    cache.clear()


def request_reset(client, email="member@a.example"):
    return client.post("/accounts/password/reset/", {"email": email})


def reset_link() -> str:
    found = LINK_RE.search(mail.outbox[-1].body)
    assert found, "no reset link in the e-mail"
    return found.group(1)


def set_new_password(client, link: str, password: str = NEW_PASSWORD):
    landing = client.get(link)  # Django moves the token into the session and out of the URL
    assert landing.status_code == 302
    return client.post(landing.url, {"new_password1": password, "new_password2": password})


def test_reset_by_email_link_then_log_in_with_the_new_password(client, world):
    response = request_reset(client, "Member@A.example")
    assert response.status_code == 302 and response.url == "/accounts/password/reset/sent/"
    assert "再設定メールを送信しました" in client.get(response.url).content.decode()
    assert mail.outbox[0].to == ["member@a.example"]
    assert "有効期限 60 分" in mail.outbox[0].body and "Reset your password" in mail.outbox[0].subject

    done = set_new_password(client, reset_link())
    assert done.status_code == 302 and done.url == "/accounts/password/reset/done/"
    assert "パスワードを変更しました" in client.get(done.url).content.decode()
    assert log_in(Client(), "member@a.example", TEST_PASSWORD).status_code == 200  # old one refused
    assert log_in(Client(), "member@a.example", NEW_PASSWORD).status_code == 302


def test_reset_link_works_once(client, world):
    request_reset(client)
    link = reset_link()
    set_new_password(client, link)
    again = client.get(link, follow=True)
    assert INVALID in again.content.decode()


def test_reset_link_expires_after_an_hour(client, world):
    user = world.member_a
    generator = PasswordResetTokenGenerator()
    stale = generator._make_token_with_timestamp(
        user, generator._num_seconds(generator._now()) - 3601, generator.secret
    )
    link = f"/accounts/password/reset/{urlsafe_base64_encode(force_bytes(user.pk))}/{stale}/"
    assert INVALID in client.get(link, follow=True).content.decode()
    fresh = default_token_generator.make_token(user)
    assert (
        client.get(f"/accounts/password/reset/{urlsafe_base64_encode(force_bytes(user.pk))}/{fresh}/").status_code
        == 302
    )


def test_reset_ends_every_other_session(world):
    elsewhere = Client()
    log_in(elsewhere, "member@a.example", TEST_PASSWORD)
    assert elsewhere.get("/").status_code == 200
    helper = Client()
    request_reset(helper)
    set_new_password(helper, reset_link())
    response = elsewhere.get("/")
    assert response.status_code == 302 and response.url.startswith("/accounts/login/")


def test_reset_password_follows_the_role_policy(client, world):
    request_reset(client, "admin@a.example")
    response = set_new_password(client, reset_link(), password="Short-Pass1")  # 11 < 12 for admins
    assert response.status_code == 200
    assert "パスワードは12文字以上にしてください。" in response.content.decode()


def test_unknown_address_gets_the_same_answer_and_no_link(client, world):
    known = request_reset(client, "member@a.example")
    unknown = request_reset(client, "nobody@a.example")
    assert known.status_code == unknown.status_code == 302 and known.url == unknown.url
    assert [m.to for m in mail.outbox] == [["member@a.example"], ["nobody@a.example"]]
    assert not LINK_RE.search(mail.outbox[1].body)
    assert "登録されたアカウントはありません" in mail.outbox[1].body


def test_reset_requests_are_rate_limited_per_address(world, settings):
    settings.REGISTRATION_RATE_LIMIT_PER_ENTRY = 2
    for i in range(2):
        assert request_reset(Client(REMOTE_ADDR=f"192.0.2.{i}")).status_code == 302
    blocked = request_reset(Client(REMOTE_ADDR="192.0.2.99"))
    assert blocked.status_code == 429 and "試行が多すぎます" in blocked.content.decode()
    assert len(mail.outbox) == 2


def test_reset_lifts_a_lockout(client, world):
    for _ in range(5):
        log_in(Client(), "member@a.example", "wrong-password-1A")
    assert log_in(Client(), "member@a.example", TEST_PASSWORD).status_code == 429
    request_reset(client)
    set_new_password(client, reset_link())
    assert log_in(Client(), "member@a.example", NEW_PASSWORD).status_code == 302


def test_change_password_inside_the_app_keeps_this_session_and_ends_the_others(client, world):
    other = Client()
    log_in(other, "member@a.example", TEST_PASSWORD)
    log_in(client, "member@a.example", TEST_PASSWORD)
    wrong_old = client.post(
        "/accounts/password/change/",
        {"old_password": "not-it-A1!", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert wrong_old.status_code == 200
    response = client.post(
        "/accounts/password/change/",
        {"old_password": TEST_PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert client.get("/").status_code == 200
    assert other.get("/").status_code == 302


def test_a_new_password_the_policy_refuses_is_said_under_the_password_field(client, world):
    request_reset(client)
    landing = client.get(reset_link())
    refused = client.post(landing.url, {"new_password1": "short", "new_password2": "short"})
    form = refused.context["form"]
    assert "パスワードは8文字以上にしてください。" in " ".join(form.errors["new_password1"])
    assert "new_password2" not in form.errors  # the confirmation matched: nothing to fix there
