"""Operators reset a login's second factors and lift its lockout from the login's page in the ops admin:
asked first, recorded in the login's tenant chain. The libraries' raw device and lockout tables (whose rows
an operator could delete without a trace) are not in the ops admin."""

from __future__ import annotations

import re

from django.test import Client
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import mfa
from accounts.models import User
from tests.audit.conftest import events_of
from tests.conftest import TEST_PASSWORD, log_in

ADMIN_PASSWORD = TEST_PASSWORD + "!x"


def _enrolled_admin(world) -> Client:
    """The tenant's 組織管理者, logged in once (with an authenticator) and holding backup codes."""
    client = Client()
    assert log_in(client, "admin@a.example", ADMIN_PASSWORD).status_code == 302
    mfa.backup_codes_generate(user=world.admin_a)
    return client


def _log_in_with_password():
    return Client().post("/accounts/login/", {"username": "member@a.example", "password": TEST_PASSWORD})


def test_resetting_a_logins_second_factors_asks_first_then_removes_them_all_and_is_audited(operator, world):
    ops_user, ops = operator
    admin_client = _enrolled_admin(world)
    page = ops.get(f"/ops/admin/accounts/user/{world.admin_a.pk}/change/").content.decode()
    assert (
        "認証アプリ：登録済み" in page and "バックアップコード：残り10件" in page and 'data-testid="mfa-reset"' in page
    )

    asked = ops.get(f"/ops/admin/accounts/user/{world.admin_a.pk}/mfa-reset/")
    assert asked.status_code == 200 and "多要素認証をリセットする" in asked.content.decode()
    assert TOTPDevice.objects.filter(user=world.admin_a).exists()  # asking changes nothing

    done = ops.post(f"/ops/admin/accounts/user/{world.admin_a.pk}/mfa-reset/")
    assert done.status_code == 302 and done.url.endswith(f"/accounts/user/{world.admin_a.pk}/change/")
    assert not TOTPDevice.objects.filter(user=world.admin_a).exists()
    assert not StaticDevice.objects.filter(user=world.admin_a).exists()
    (event,) = events_of(world.tenant_a, action="auth.mfa.reset")
    assert event.actor_id == ops_user.pk and event.target_id == str(world.admin_a.pk)
    assert event.details == {"methods": ["totp", "backup"], "devices": 2}

    # The admin's session was verified with the removed authenticator: it must enrol again.
    assert admin_client.get("/").status_code == 302
    assert admin_client.get("/").url.startswith("/accounts/mfa/")


def test_a_login_without_second_factors_offers_no_reset_and_an_operator_cannot_reset_their_own(operator, world):
    ops_user, ops = operator
    page = ops.get(f"/ops/admin/accounts/user/{world.member_a.pk}/change/").content.decode()
    assert "認証アプリ：なし" in page and 'data-testid="mfa-reset"' not in page
    own = ops.post(f"/ops/admin/accounts/user/{ops_user.pk}/mfa-reset/", follow=True)
    assert "ご自身のログインには使えません" in own.content.decode()
    assert TOTPDevice.objects.filter(user=ops_user).exists()
    assert events_of(None, action="auth.mfa.reset") == []


def test_an_operator_lifts_a_lockout_after_confirming_and_the_person_can_log_in_again(operator, world):
    ops_user, ops = operator
    for _ in range(5):
        Client().post("/accounts/login/", {"username": "member@a.example", "password": "wrong password"})
    assert (
        Client().post("/accounts/login/", {"username": "member@a.example", "password": TEST_PASSWORD}).status_code
        != 302
    )

    page = ops.get(f"/ops/admin/accounts/user/{world.member_a.pk}/change/").content.decode()
    assert re.search(r"ロック中（[56]回失敗）", page) and 'data-testid="unlock"' in page
    assert ops.get(f"/ops/admin/accounts/user/{world.member_a.pk}/unlock/").status_code == 200
    assert ops.post(f"/ops/admin/accounts/user/{world.member_a.pk}/unlock/").status_code == 302

    assert (
        Client().post("/accounts/login/", {"username": "member@a.example", "password": TEST_PASSWORD}).status_code
        == 302
    )
    (event,) = events_of(world.tenant_a, action="auth.lockout.cleared")
    assert event.actor_id == ops_user.pk and event.target_id == str(world.member_a.pk)
    assert "member@a.example" not in str(event.details)
    page = ops.get(f"/ops/admin/accounts/user/{world.member_a.pk}/change/").content.decode()
    assert 'data-testid="unlock"' not in page


def test_a_tenant_user_cannot_reach_the_reset_and_the_raw_tables_are_gone(operator, world):
    _ops_user, ops = operator
    admin_client = _enrolled_admin(world)
    assert admin_client.post(f"/ops/admin/accounts/user/{world.member_a.pk}/mfa-reset/").status_code == 404
    for url in ["/ops/admin/otp_totp/totpdevice/", "/ops/admin/otp_static/staticdevice/",
                "/ops/admin/otp_email/emaildevice/", "/ops/admin/axes/accessattempt/",
                "/ops/admin/axes/accessfailurelog/", "/ops/admin/auth/group/"]:  # fmt: skip
        assert ops.get(url).status_code == 404, url
    index = ops.get("/ops/admin/").content.decode()
    assert "TOTP device" not in index and "Access attempt" not in index


def test_the_ops_admin_login_asks_for_the_code_in_japanese():
    page = Client().get("/ops/admin/login/").content.decode()
    assert "確認コード:" in page and "OTP Token" not in page


def test_the_login_heads_its_pages_by_a_label_without_personal_data(operator, world):
    assert str(User.objects.get(pk=world.member_a.pk)) == f"ログイン #{world.member_a.pk}"
    _ops_user, ops = operator
    page = ops.get(f"/ops/admin/accounts/user/{world.member_a.pk}/change/").content.decode()
    assert f"ログイン #{world.member_a.pk}" in page and "User #" not in page


def test_a_code_from_a_reset_authenticator_no_longer_opens_the_ops_admin(operator, world):
    """The reset is not for operators' own logins; another operator's is reset like anyone's."""
    from accounts.models import Role
    from accounts.services import user_create
    from tests.conftest import OPS_PASSWORD

    _ops_user, ops = operator
    other = user_create(email="ops2@ops.example", role=Role.OPERATOR, tenant=None, password=OPS_PASSWORD)
    client = Client()
    assert log_in(client, "ops2@ops.example", OPS_PASSWORD).status_code == 302
    device = TOTPDevice.objects.get(user=other)
    assert ops.post(f"/ops/admin/accounts/user/{other.pk}/mfa-reset/").status_code == 302
    assert client.get("/ops/admin/").status_code == 302  # back to enrolment / login
    assert not TOTPDevice.objects.filter(pk=device.pk).exists()
    (event,) = events_of(None, action="auth.mfa.reset")
    assert event.details == {"methods": ["totp"], "devices": 1}
