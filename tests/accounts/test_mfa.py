"""Multi-factor authentication as users meet it: privileged roles cannot get past enrolment, codes work
once, wrong codes slow down, e-mailed and backup codes stand in for the app, the admin asks too."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Role
from accounts.services import user_create
from tenants.context import tenant_context
from tenants.models import TenantSecurityPolicy
from tests.conftest import TEST_PASSWORD, log_in

PHYSICIAN_PASSWORD = TEST_PASSWORD + "!x"


pytestmark = pytest.mark.usefixtures("fresh_cache")


@pytest.fixture
def physician(world):
    return user_create(
        email="doctor@a.example", role=Role.PHYSICIAN, tenant=world.tenant_a, password=PHYSICIAN_PASSWORD
    )


def password_login(client, email, password):
    """Only the password step (tests.conftest.log_in would complete MFA for us)."""
    response = client.post("/accounts/login/", {"username": email, "password": password})
    assert response.status_code == 302
    return response


def code_for(device: TOTPDevice, offset: int = 0) -> str:
    return f"{totp(device.bin_key, t0=device.t0, step=device.step, digits=device.digits, drift=offset):06d}"


def enrol_totp(client) -> tuple[TOTPDevice, str]:
    page = client.get("/accounts/mfa/setup/?next=/")
    assert page.status_code == 200
    device = TOTPDevice.objects.get(user__email="doctor@a.example", confirmed=False)
    code = code_for(device)
    done = client.post("/accounts/mfa/setup/", {"code": code, "next": "/"})
    assert done.status_code == 302 and done.url.startswith("/accounts/mfa/backup-codes/")
    return device, code


def test_privileged_user_cannot_reach_anything_before_enrolling(client, physician):
    password_login(client, "doctor@a.example", PHYSICIAN_PASSWORD)
    home = client.get("/")
    assert home.status_code == 302 and home.url == "/accounts/mfa/setup/?next=%2F"
    api = client.get("/api/v1/me/")
    assert api.status_code == 403 and api.json()["error"]["code"] == "mfa_required"
    assert client.get("/accounts/mfa/").status_code == 302
    assert client.get("/accounts/password/change/").status_code == 302
    page = client.get(home.url).content.decode()
    assert "このアカウントでは多要素認証が必須です。" in page
    assert "産業医 のロールは、ほかの人の情報を扱うためです。" in page  # why, in words
    assert 'data-testid="app-nav"' not in page  # no menu to pages that would only send them back here


def test_enrolment_shows_a_local_qr_code_then_backup_codes_then_the_app_opens(client, physician):
    password_login(client, "doctor@a.example", PHYSICIAN_PASSWORD)
    page = client.get("/accounts/mfa/setup/?next=/").content.decode()
    svg = re.search(r"<svg.*?</svg>", page, re.S).group(0)
    inline_script = re.search(r"<script(?![^>]*\bsrc=)", page)  # scripts from /static/ are allowed ('self')
    assert "<path" in svg and "style=" not in svg and inline_script is None  # CSP: no inline style/script
    assert "http" not in svg.replace("http://www.w3.org/2000/svg", "")  # drawn here, nothing fetched
    enrol_totp(client)
    codes_page = client.get("/accounts/mfa/backup-codes/?next=/").content.decode()
    assert len(re.findall(r"<li><code>[a-z0-9]{10}</code></li>", codes_page)) == 10
    assert "<code>" not in client.get("/accounts/mfa/backup-codes/").content.decode()  # shown once only
    home = client.get("/")
    assert home.status_code == 200 and 'data-testid="app-nav"' in home.content.decode()
    assert client.get("/api/v1/me/").status_code == 200


def test_wrong_enrolment_code_is_explained_and_enrols_nothing(client, physician, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 60  # the hold after a wrong code outlasts a slow test run
    password_login(client, "doctor@a.example", PHYSICIAN_PASSWORD)
    client.get("/accounts/mfa/setup/")
    wrong = client.post("/accounts/mfa/setup/", {"code": "000000", "next": "/"})
    assert wrong.status_code == 200
    assert "コードが正しくありません。アプリに表示されている最新の6桁を入力してください。" in wrong.content.decode()
    assert not TOTPDevice.objects.filter(user=physician, confirmed=True).exists()
    assert client.get("/").status_code == 302
    # Right after a wrong code even the right one is held back a moment (django-otp): the page says to wait.
    device = TOTPDevice.objects.get(user=physician, confirmed=False)
    held = client.post("/accounts/mfa/setup/", {"code": code_for(device), "next": "/"}).content.decode()
    assert "数秒待ってから" in held and "コードが正しくありません" not in held


def test_next_login_asks_for_a_code_and_a_used_code_is_refused(client, physician):
    password_login(client, "doctor@a.example", PHYSICIAN_PASSWORD)
    _device, used_code = enrol_totp(client)
    client.post("/accounts/logout/")

    password_login(client, "doctor@a.example", PHYSICIAN_PASSWORD)
    assert client.get("/").url == "/accounts/mfa/verify/?next=%2F"
    assert 'data-testid="app-nav"' not in client.get("/accounts/mfa/verify/?next=%2F").content.decode()
    # The app still shows the code used at enrolment: it must not open the door a second time.
    replay = client.post("/accounts/mfa/verify/", {"code": used_code, "next": "/"})
    assert replay.status_code == 200 and "コードが正しくありません。" in replay.content.decode()
    assert client.get("/").status_code == 302


def test_enrolling_another_app_needs_the_existing_factor(client, physician):
    password_login(client, "doctor@a.example", PHYSICIAN_PASSWORD)
    enrol_totp(client)
    client.post("/accounts/logout/")
    password_login(client, "doctor@a.example", PHYSICIAN_PASSWORD)
    response = client.get("/accounts/mfa/setup/")
    assert response.status_code == 302 and response.url.startswith("/accounts/mfa/verify/")


def test_wrong_codes_slow_down_even_the_right_one(client, physician, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 60  # a minute per wrong code: no race with a slow test machine
    password_login(client, "doctor@a.example", PHYSICIAN_PASSWORD)
    device, _ = enrol_totp(client)
    client.post("/accounts/logout/")
    password_login(client, "doctor@a.example", PHYSICIAN_PASSWORD)
    for _ in range(3):
        client.post("/accounts/mfa/verify/", {"code": "123456", "next": "/"})
    device.refresh_from_db()
    right_but_too_soon = client.post("/accounts/mfa/verify/", {"code": code_for(device, offset=1), "next": "/"})
    assert "しばらく待ってから" in right_but_too_soon.content.decode()
    assert client.get("/").status_code == 302


def test_backup_code_works_once(physician):
    first = Client()
    password_login(first, "doctor@a.example", PHYSICIAN_PASSWORD)
    enrol_totp(first)
    code = re.search(r"<code>([a-z0-9]{10})</code>", first.get("/accounts/mfa/backup-codes/").content.decode())[1]

    second = Client()
    password_login(second, "doctor@a.example", PHYSICIAN_PASSWORD)
    assert second.post("/accounts/mfa/verify/", {"code": code.upper(), "next": "/"}).status_code == 302
    assert second.get("/").status_code == 200
    third = Client()
    password_login(third, "doctor@a.example", PHYSICIAN_PASSWORD)
    assert third.post("/accounts/mfa/verify/", {"code": code, "next": "/"}).status_code == 200
    assert third.get("/").status_code == 302


def test_backup_codes_alone_switch_nothing_on(client, world):
    """An employee without an authenticator asking for backup codes gets none: codes alone would switch MFA
    on with no factor to list, to remove, or to make more codes from."""
    from accounts import mfa

    log_in(client, "member@a.example", TEST_PASSWORD)
    page = client.get("/accounts/mfa/backup-codes/").content.decode()
    assert 'data-testid="backup-codes-need-factor"' in page and "backup-codes-regenerate" not in page
    refused = client.post("/accounts/mfa/backup-codes/", follow=True).content.decode()
    assert "先に認証アプリかメールの確認コードを設定してください。" in refused and "<code>" not in refused
    assert not mfa.has_confirmed_device(world.member_a)
    client.post("/accounts/logout/")
    log_in(client, "member@a.example", TEST_PASSWORD)
    assert client.get("/").status_code == 200  # still no second factor asked for


def test_emailed_codes_as_the_second_method(client, physician, settings):
    settings.OTP_EMAIL_COOLDOWN_DURATION = 0  # the second code follows the first within seconds here
    password_login(client, "doctor@a.example", PHYSICIAN_PASSWORD)
    client.post("/accounts/mfa/setup/email/", {"send": "1", "next": "/"})
    assert mail.outbox[-1].to == ["doctor@a.example"]
    assert "確認コード" in mail.outbox[-1].subject
    code = re.search(r"確認コード: (\d{6})", mail.outbox[-1].body)[1]
    assert client.post("/accounts/mfa/setup/email/", {"code": code, "next": "/"}).status_code == 302
    assert client.get("/").status_code == 200
    client.post("/accounts/logout/")

    password_login(client, "doctor@a.example", PHYSICIAN_PASSWORD)
    verify = client.get("/accounts/mfa/verify/?next=/").content.decode()
    assert "確認コードをメールで受け取る" in verify
    client.post("/accounts/mfa/email/", {"next": "/"})
    fresh = re.search(r"確認コード: (\d{6})", mail.outbox[-1].body)[1]
    assert client.post("/accounts/mfa/verify/", {"code": fresh, "next": "/"}).status_code == 302
    assert client.get("/").status_code == 200


def test_a_second_factor_keeps_the_backup_codes_already_given(client, physician, settings):
    settings.OTP_EMAIL_COOLDOWN_DURATION = 0
    password_login(client, "doctor@a.example", PHYSICIAN_PASSWORD)
    enrol_totp(client)
    first = re.findall(r"<code>([a-z0-9]{10})</code>", client.get("/accounts/mfa/backup-codes/").content.decode())
    assert len(first) == 10
    client.post("/accounts/mfa/setup/email/", {"send": "1", "next": "/"})
    code = re.search(r"確認コード: (\d{6})", mail.outbox[-1].body)[1]
    added = client.post("/accounts/mfa/setup/email/", {"code": code, "next": "/"}, follow=True).content.decode()
    assert "バックアップコードは、これまでのものがそのまま使えます。" in added and "<code>" not in added
    other = Client()  # a printed code from the first enrolment still opens the door
    password_login(other, "doctor@a.example", PHYSICIAN_PASSWORD)
    assert other.post("/accounts/mfa/verify/", {"code": first[0], "next": "/"}).status_code == 302


def test_employee_is_not_asked_unless_the_tenant_requires_it(world):
    employee = Client()
    password_login(employee, "member@a.example", TEST_PASSWORD)
    assert employee.get("/").status_code == 200
    with tenant_context(world.tenant_a):
        TenantSecurityPolicy.objects.create(mfa_required_for_all=True)
    later = Client()
    password_login(later, "member@a.example", TEST_PASSWORD)
    response = later.get("/")
    assert response.status_code == 302 and response.url.startswith("/accounts/mfa/setup/")
    assert "組織の設定で、全員に必須になっているためです。" in later.get(response.url).content.decode()


def test_an_employee_given_a_label_over_others_is_told_why_a_second_factor_is_now_needed(world):
    from accounts.services import label_grant_create

    with tenant_context(world.tenant_a):
        label_grant_create(office=world.office_a, target_kind="employee", target="A0", labels=["roster_viewer"],
                           scope_="department", acting_user=world.admin_a)  # fmt: skip
    employee = Client()
    password_login(employee, "member@a.example", TEST_PASSWORD)
    response = employee.get("/")
    assert response.status_code == 302 and response.url.startswith("/accounts/mfa/setup/")
    page = employee.get(response.url).content.decode()
    assert "ほかの人の情報を扱える権限（名簿閲覧）が付与されているためです。" in page


def test_employee_who_enrolled_optional_mfa_is_asked_for_it(world):
    employee = Client()
    password_login(employee, "member@a.example", TEST_PASSWORD)
    assert employee.get("/accounts/mfa/").status_code == 200
    employee.get("/accounts/mfa/setup/")
    device = TOTPDevice.objects.get(user=world.member_a)
    assert employee.post("/accounts/mfa/setup/", {"code": code_for(device), "next": "/"}).status_code == 302
    again = Client()
    password_login(again, "member@a.example", TEST_PASSWORD)
    assert again.get("/").url.startswith("/accounts/mfa/verify/")


def test_operator_admin_site_needs_a_verified_second_factor(db):
    user_create(email="ops@ops.example", role=Role.OPERATOR, tenant=None, password=PHYSICIAN_PASSWORD)
    client = Client()
    password_login(client, "ops@ops.example", PHYSICIAN_PASSWORD)
    blocked = client.get("/ops/admin/")
    assert blocked.status_code == 302 and blocked.url.startswith("/accounts/mfa/setup/")
    client.get("/accounts/mfa/setup/")
    device = TOTPDevice.objects.get(user__email="ops@ops.example")
    client.post("/accounts/mfa/setup/", {"code": code_for(device), "next": "/ops/admin/"})
    assert client.get("/ops/admin/").status_code == 200


def test_mfa_events_are_audited(client, physician, world):
    from audit.models import AuditEvent, chain_key
    from audit.services import chain_scope

    password_login(client, "doctor@a.example", PHYSICIAN_PASSWORD)
    enrol_totp(client)
    client.post("/accounts/logout/")
    password_login(client, "doctor@a.example", PHYSICIAN_PASSWORD)
    client.post("/accounts/mfa/verify/", {"code": "000000", "next": "/"})
    with chain_scope(world.tenant_a):
        actions = list(
            AuditEvent.objects.filter(chain=chain_key(world.tenant_a.pk), target_id=str(physician.pk))
            .order_by("seq")
            .values_list("action", flat=True)
        )
    assert "auth.mfa.enrolled" in actions and "auth.mfa.backup_codes_generated" in actions
    assert actions[-1] == "auth.mfa.failed"


def test_org_admin_makes_mfa_mandatory_for_everyone_on_the_settings_page(world):
    from tests.conftest import log_in

    admin = Client()
    log_in(admin, "admin@a.example", PHYSICIAN_PASSWORD)
    page = admin.get("/settings/security/").content.decode()
    assert "全員に多要素認証を必須にする" in page and "従業員登録の確認項目" in page
    saved = admin.post(
        "/settings/security/", {"mfa_required_for_all": "on", "registration_attribute": "insurance_number"}
    )
    assert saved.status_code == 302
    employee = Client()
    password_login(employee, "member@a.example", TEST_PASSWORD)
    assert employee.get("/").url.startswith("/accounts/mfa/setup/")
    # Tenant B's policy is its own.
    with tenant_context(world.tenant_b):
        assert not TenantSecurityPolicy.objects.filter(mfa_required_for_all=True).exists()


def test_an_employee_given_a_label_over_others_needs_a_second_factor(world):
    """Rights come from labels, not roles: an employee login given 産業医 by a grant reads lab values and
    signs 就業判定 like a physician, so it is bound to a second factor like one."""
    from accounts.services import label_grant_create

    with tenant_context(world.tenant_a):
        label_grant_create(office=world.office_a, target_kind="employee", target="A0", labels=["physician"],
                           scope_="office", acting_user=world.admin_a)  # fmt: skip
    employee = Client()
    password_login(employee, "member@a.example", TEST_PASSWORD)
    for path in ("/", "/checkups/review/"):
        response = employee.get(path)
        assert response.status_code == 302 and response.url.startswith("/accounts/mfa/setup/")


def test_a_label_over_ones_own_data_only_asks_for_nothing_more(world):
    from accounts.services import label_grant_create

    with tenant_context(world.tenant_a):
        label_grant_create(office=world.office_a, target_kind="employee", target="A0", labels=["roster_viewer"],
                           scope_="self", acting_user=world.admin_a)  # fmt: skip
    employee = Client()
    password_login(employee, "member@a.example", TEST_PASSWORD)
    assert employee.get("/").status_code == 200


def test_an_employee_given_a_label_mid_session_is_asked_for_a_second_factor_at_once(world):
    """The "no second factor needed" answer an employee's session keeps for a few minutes does not
    outlive a label given meanwhile."""
    from accounts.services import label_grant_create

    employee = Client()
    password_login(employee, "member@a.example", TEST_PASSWORD)
    assert employee.get("/").status_code == 200
    with tenant_context(world.tenant_a):
        label_grant_create(office=world.office_a, target_kind="employee", target="A0", labels=["physician"],
                           scope_="office", acting_user=world.admin_a)  # fmt: skip
    response = employee.get("/checkups/review/")
    assert response.status_code == 302 and response.url.startswith("/accounts/mfa/setup/")
