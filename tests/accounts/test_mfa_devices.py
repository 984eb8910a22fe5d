"""A user sees their own second factors and removes one: after a confirmation with the password typed
again, audited, and never the last one where MFA is required (every role but employee, or the tenant's
policy). Where MFA is optional, removing the last factor turns it off, backup codes included."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_email.models import EmailDevice
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import mfa
from audit.models import AuditEvent, chain_key
from audit.services import chain_scope
from tenants.context import tenant_context
from tenants.models import TenantSecurityPolicy
from tests.accounts.conftest import DOCTOR_PASSWORD
from tests.conftest import TEST_PASSWORD

WRONG_PASSWORD = "パスワードが正しくありません。"
LAST_FACTOR = "このアカウントでは多要素認証が必須のため、最後の認証方法は削除できません。"
MFA_OFF_WARNING = "これは最後の認証方法です。削除すると多要素認証が無効になり、バックアップコードも使えなくなります。"


pytestmark = pytest.mark.usefixtures("fresh_cache")


def code_for(device: TOTPDevice, offset: int = 0) -> str:
    return f"{totp(device.bin_key, t0=device.t0, step=device.step, digits=device.digits, drift=offset):06d}"


def sign_in(client, email: str, password: str, device: TOTPDevice | None = None, offset: int = 0) -> None:
    """The password step, then (with ``device``) the code step, both through the real pages."""
    assert client.post("/accounts/login/", {"username": email, "password": password}).status_code == 302
    if device is not None:
        verified = client.post("/accounts/mfa/verify/", {"code": code_for(device, offset), "next": "/"})
        assert verified.status_code == 302 and verified.url == "/"


def remove_url(device) -> str:
    method = "totp" if isinstance(device, TOTPDevice) else "email"
    return f"/accounts/mfa/devices/{method}/{device.pk}/remove/"


def removal_events(tenant, user) -> list[AuditEvent]:
    with chain_scope(tenant):
        events = AuditEvent.objects.filter(
            chain=chain_key(tenant.pk), action="auth.mfa.device_removed", target_id=str(user.pk)
        )
        return list(events.order_by("seq"))


def test_overview_lists_each_factor_with_a_remove_link(client, physician):
    app = TOTPDevice.objects.create(user=physician, name="totp", confirmed=True)
    email = EmailDevice.objects.create(user=physician, name="email", confirmed=True)
    TOTPDevice.objects.create(user=physician, name="totp", confirmed=False)  # an abandoned enrolment
    sign_in(client, "doctor@a.example", DOCTOR_PASSWORD, app)
    page = client.get("/accounts/mfa/").content.decode()
    rows = re.findall(r'<tr data-testid="mfa-factor">(.*?)</tr>', page, re.S)
    assert len(rows) == 2
    assert "認証アプリ" in rows[0] and f'href="{remove_url(app)}"' in rows[0]
    assert "メールの確認コード" in rows[1] and f'href="{remove_url(email)}"' in rows[1]
    assert "未使用" in rows[1]  # the e-mail device was never used to sign in; the app just was


def test_removing_a_factor_asks_for_the_password_then_removes_it_and_audits(client, world, physician):
    app = TOTPDevice.objects.create(user=physician, name="totp", confirmed=True)
    email = EmailDevice.objects.create(user=physician, name="email", confirmed=True)
    sign_in(client, "doctor@a.example", DOCTOR_PASSWORD, app)

    confirm = client.get(remove_url(email)).content.decode()
    assert "この認証方法を削除しますか？" in confirm and "確認のため、現在のパスワードを入力してください。" in confirm
    assert 'autocomplete="current-password"' in confirm
    assert EmailDevice.objects.filter(pk=email.pk).exists()  # opening the page changes nothing

    wrong = client.post(remove_url(email), {"password": "not-my-password"})
    assert wrong.status_code == 200 and WRONG_PASSWORD in wrong.content.decode()
    assert EmailDevice.objects.filter(pk=email.pk).exists()

    done = client.post(remove_url(email), {"password": DOCTOR_PASSWORD})
    assert done.status_code == 302 and done.url == "/accounts/mfa/"
    overview = client.get(done.url).content.decode()
    assert "認証方法を削除しました。" in overview
    assert not EmailDevice.objects.filter(user=physician).exists()
    assert TOTPDevice.objects.filter(pk=app.pk, confirmed=True).exists()

    failed, removed = removal_events(world.tenant_a, physician)
    assert (failed.outcome, failed.details) == ("failure", {"method": "email", "reason": "password"})
    assert removed.outcome == "success" and removed.actor_id == physician.pk
    assert removed.details == {"method": "email", "device": email.pk, "mfa_off": False}


def test_privileged_user_cannot_remove_their_last_factor(client, world, physician):
    app = TOTPDevice.objects.create(user=physician, name="totp", confirmed=True)
    sign_in(client, "doctor@a.example", DOCTOR_PASSWORD, app)

    overview = client.get("/accounts/mfa/").content.decode()
    assert LAST_FACTOR in overview and 'data-testid="mfa-factor-remove"' not in overview
    page = client.get(remove_url(app)).content.decode()
    assert LAST_FACTOR in page and 'name="password"' not in page

    # Posting anyway (an old tab, a crafted request) is refused the same way.
    refused = client.post(remove_url(app), {"password": DOCTOR_PASSWORD})
    assert refused.status_code == 200 and LAST_FACTOR in refused.content.decode()
    assert TOTPDevice.objects.filter(pk=app.pk, confirmed=True).exists()
    assert client.get("/").status_code == 200  # still signed in and verified
    [event] = removal_events(world.tenant_a, physician)
    assert (event.outcome, event.details) == ("denied", {"method": "totp", "reason": "last_factor"})


def test_backup_codes_do_not_count_as_the_factor_left(client, physician):
    app = TOTPDevice.objects.create(user=physician, name="totp", confirmed=True)
    mfa.backup_codes_generate(user=physician)
    sign_in(client, "doctor@a.example", DOCTOR_PASSWORD, app)
    refused = client.post(remove_url(app), {"password": DOCTOR_PASSWORD})
    assert LAST_FACTOR in refused.content.decode()
    assert TOTPDevice.objects.filter(pk=app.pk).exists()


def test_employee_removing_their_only_factor_turns_mfa_off(client, world):
    app = TOTPDevice.objects.create(user=world.member_a, name="totp", confirmed=True)
    mfa.backup_codes_generate(user=world.member_a)
    sign_in(client, "member@a.example", TEST_PASSWORD, app)

    confirm = client.get(remove_url(app)).content.decode()
    assert MFA_OFF_WARNING in confirm
    done = client.post(remove_url(app), {"password": TEST_PASSWORD})
    assert done.status_code == 302
    assert "多要素認証は無効になり、バックアップコードも削除しました。" in client.get(done.url).content.decode()
    assert not TOTPDevice.objects.filter(user=world.member_a).exists()
    assert not StaticDevice.objects.filter(user=world.member_a).exists()
    [event] = removal_events(world.tenant_a, world.member_a)
    assert event.details == {"method": "totp", "device": app.pk, "mfa_off": True}

    later = Client()
    sign_in(later, "member@a.example", TEST_PASSWORD)
    assert later.get("/").status_code == 200  # no code asked any more


def test_employee_keeps_the_last_factor_when_the_tenant_requires_mfa_for_everyone(client, world):
    with tenant_context(world.tenant_a):
        TenantSecurityPolicy.objects.create(mfa_required_for_all=True)
    app = TOTPDevice.objects.create(user=world.member_a, name="totp", confirmed=True)
    sign_in(client, "member@a.example", TEST_PASSWORD, app)
    refused = client.post(remove_url(app), {"password": TEST_PASSWORD})
    assert LAST_FACTOR in refused.content.decode()
    assert TOTPDevice.objects.filter(pk=app.pk).exists()


def test_removing_the_factor_this_session_used_keeps_this_session_only(physician):
    app = TOTPDevice.objects.create(user=physician, name="totp", confirmed=True)
    EmailDevice.objects.create(user=physician, name="email", confirmed=True)
    here, elsewhere = Client(), Client()
    sign_in(here, "doctor@a.example", DOCTOR_PASSWORD, app)
    sign_in(elsewhere, "doctor@a.example", DOCTOR_PASSWORD, app, offset=1)  # next step: no replay

    assert here.post(remove_url(app), {"password": DOCTOR_PASSWORD}).status_code == 302
    assert here.get("/").status_code == 200
    # A session verified with the removed app (a lost phone, say) has to verify again.
    again = elsewhere.get("/")
    assert again.status_code == 302 and again.url.startswith("/accounts/mfa/verify/")


def test_someone_elses_device_is_404(client, world, physician):
    theirs = TOTPDevice.objects.create(user=physician, name="totp", confirmed=True)
    mine = TOTPDevice.objects.create(user=world.member_a, name="totp", confirmed=True)
    EmailDevice.objects.create(user=world.member_a, name="email", confirmed=True)
    sign_in(client, "member@a.example", TEST_PASSWORD, mine)
    assert client.get(remove_url(theirs)).status_code == 404
    assert client.post(remove_url(theirs), {"password": TEST_PASSWORD}).status_code == 404
    assert TOTPDevice.objects.filter(pk=theirs.pk).exists()
    pending = TOTPDevice.objects.create(user=world.member_a, name="totp", confirmed=False)
    assert client.get(remove_url(pending)).status_code == 404
    assert client.get(f"/accounts/mfa/devices/backup/{mine.pk}/remove/").status_code == 404


def test_outsider_of_another_tenant_gets_404(client, world, physician):
    theirs = TOTPDevice.objects.create(user=physician, name="totp", confirmed=True)
    outsider_app = TOTPDevice.objects.create(user=world.outsider_b, name="totp", confirmed=True)
    EmailDevice.objects.create(user=world.outsider_b, name="email", confirmed=True)
    sign_in(client, "outsider@b.example", DOCTOR_PASSWORD, outsider_app)
    assert client.post(remove_url(theirs), {"password": DOCTOR_PASSWORD}).status_code == 404
    assert TOTPDevice.objects.filter(pk=theirs.pk).exists()


def test_a_session_that_has_not_passed_its_second_factor_cannot_remove_one(client, physician):
    app = TOTPDevice.objects.create(user=physician, name="totp", confirmed=True)
    EmailDevice.objects.create(user=physician, name="email", confirmed=True)
    sign_in(client, "doctor@a.example", DOCTOR_PASSWORD)  # password only
    response = client.post(remove_url(app), {"password": DOCTOR_PASSWORD})
    assert response.status_code == 302 and response.url.startswith("/accounts/mfa/verify/")
    assert TOTPDevice.objects.filter(pk=app.pk).exists()
