"""What a stolen password or a hijacked session can no longer do: see the authenticator key another session
is enrolling, guess the current password without limit on the pages that ask for it again, or spray
passwords from one address across accounts. (Found in a security review, 2026-12-04.)"""

from __future__ import annotations

from base64 import b32decode

import pytest
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_email.models import EmailDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.accounts.conftest import DOCTOR_PASSWORD
from tests.conftest import TEST_PASSWORD, log_in

NEW_PASSWORD = "N3w-Passw0rd-Long!"


pytestmark = pytest.mark.usefixtures("fresh_cache")


def _code(device) -> str:
    return f"{totp(device.bin_key, t0=device.t0, step=device.step, digits=device.digits):06d}"


def _password_step(client: Client, email: str, password: str) -> None:
    assert client.post("/accounts/login/", {"username": email, "password": password}).status_code == 302


def test_the_authenticator_key_one_session_saw_is_never_the_one_another_session_enrols(world, physician):
    """Someone with only the password of a login that has not enrolled yet opens the enrolment page and notes
    the key. The owner enrolling later gets a key of their own: the noted one opens nothing."""
    intruder, owner = Client(), Client()
    _password_step(intruder, "doctor@a.example", DOCTOR_PASSWORD)
    seen = intruder.get("/accounts/mfa/setup/?next=/").context["secret"].replace(" ", "")
    _password_step(owner, "doctor@a.example", DOCTOR_PASSWORD)
    page = owner.get("/accounts/mfa/setup/?next=/")
    assert page.context["secret"].replace(" ", "") != seen
    assert owner.get("/accounts/mfa/setup/?next=/").context["secret"] == page.context["secret"]  # a reload keeps it
    (shown,) = [d for d in TOTPDevice.objects.filter(user=physician, confirmed=False) if _secret(d) == _flat(page)]
    assert owner.post("/accounts/mfa/setup/", {"code": _code(shown), "next": "/"}).status_code == 302
    assert list(TOTPDevice.objects.filter(user=physician).values_list("confirmed", flat=True)) == [True]
    later = Client()  # the intruder, with the key they noted
    _password_step(later, "doctor@a.example", DOCTOR_PASSWORD)
    noted = b32decode(seen + "=" * (-len(seen) % 8))
    assert later.post("/accounts/mfa/verify/", {"code": f"{totp(noted):06d}", "next": "/"}).status_code == 200


def _secret(device: TOTPDevice) -> str:
    from accounts.mfa import totp_secret_text

    return totp_secret_text(device).replace(" ", "")


def _flat(page) -> str:
    return page.context["secret"].replace(" ", "")


def test_the_password_change_page_counts_wrong_current_passwords_toward_the_lockout(client, world):
    assert log_in(client, "member@a.example", TEST_PASSWORD).status_code == 302
    change = {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    for i in range(5):
        wrong = client.post("/accounts/password/change/", {"old_password": f"Guess-{i}-wrong!", **change})
        assert wrong.status_code in (200, 429)
    right = client.post("/accounts/password/change/", {"old_password": TEST_PASSWORD, **change})
    assert right.status_code != 302  # locked: even the right password changes nothing now
    assert log_in(Client(), "member@a.example", TEST_PASSWORD).status_code == 429  # the login page is locked too


def test_the_password_change_page_still_changes_the_password(client, world):
    assert log_in(client, "member@a.example", TEST_PASSWORD).status_code == 302
    done = client.post(
        "/accounts/password/change/",
        {"old_password": TEST_PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert done.status_code == 302
    assert log_in(Client(), "member@a.example", NEW_PASSWORD).status_code == 302


def test_removing_a_factor_counts_wrong_passwords_toward_the_lockout(client, world, physician):
    app = TOTPDevice.objects.create(user=physician, name="totp", confirmed=True)
    email = EmailDevice.objects.create(user=physician, name="email", confirmed=True)
    _password_step(client, "doctor@a.example", DOCTOR_PASSWORD)
    assert client.post("/accounts/mfa/verify/", {"code": _code(app), "next": "/"}).status_code == 302
    url = f"/accounts/mfa/devices/email/{email.pk}/remove/"
    for i in range(5):
        assert client.post(url, {"password": f"Guess-{i}-wrong!"}).status_code in (200, 429)
    assert client.post(url, {"password": DOCTOR_PASSWORD}).status_code != 302
    assert EmailDevice.objects.filter(pk=email.pk).exists()


def test_an_office_filter_that_is_not_a_number_is_a_clean_error(client, world):
    assert log_in(client, "admin@a.example", TEST_PASSWORD + "!x").status_code == 302
    client.raise_request_exception = False
    api = client.get("/api/v1/grants/?office=abc")
    assert api.status_code == 400 and api.json()["error"]["details"]["office"]
    assert client.get("/settings/access/?office=abc").status_code == 404


def test_one_address_spraying_passwords_over_many_accounts_must_wait(world, settings):
    """Four guesses per account stay under each account's lockout; thirty failures from one address, whatever
    the accounts, and that address waits out the window, even with a right password. Another address does not."""
    from tests.audit.conftest import events_of

    settings.LOGIN_FAILURES_PER_IP = 30
    sprayer = Client(REMOTE_ADDR="203.0.113.7")
    accounts = ["member@a.example", "admin@a.example", "outsider@b.example"] + [f"u{i}@a.example" for i in range(5)]
    statuses = [
        sprayer.post("/accounts/login/", {"username": accounts[n % 8], "password": f"Spring2025!{n}"}).status_code
        for n in range(30)
    ]
    assert set(statuses) == {200}  # each refused as a wrong password; no account reached its own lock
    failed_before = len(events_of(world.tenant_a, action="auth.login.failed"))
    refused = sprayer.post("/accounts/login/", {"username": "member@a.example", "password": TEST_PASSWORD})
    assert refused.status_code == 429 and "この接続元からのログインの失敗が多い" in refused.content.decode()
    wrong = sprayer.post("/accounts/login/", {"username": "member@a.example", "password": "Spring2025!x"})
    assert wrong.status_code == 429  # refused before the password is read: neither checked nor counted
    assert len(events_of(world.tenant_a, action="auth.login.failed")) == failed_before
    assert log_in(Client(REMOTE_ADDR="198.51.100.9"), "member@a.example", TEST_PASSWORD).status_code == 302
    assert len(events_of(None, action="auth.login.rate_limited")) == 1  # once, not per refused attempt


def _verified(client: Client, physician) -> TOTPDevice:
    app = TOTPDevice.objects.create(user=physician, name="totp", confirmed=True)
    _password_step(client, "doctor@a.example", DOCTOR_PASSWORD)
    assert client.post("/accounts/mfa/verify/", {"code": _code(app), "next": "/"}).status_code == 302
    return app


def test_new_backup_codes_ask_for_the_password_again(client, world, physician):
    from accounts import mfa

    _verified(client, physician)
    printed = mfa.backup_codes_generate(user=physician)
    for data in ({}, {"password": "Guess-wrong-1!"}):
        page = client.post("/accounts/mfa/backup-codes/", data)
        assert page.status_code == 200 and page.context["codes"] is None
        assert page.context["form"].errors["password"]
    assert mfa.backup_codes_remaining(physician) == len(printed)  # the printed codes still work
    done = client.post("/accounts/mfa/backup-codes/", {"password": DOCTOR_PASSWORD})
    assert done.status_code == 302
    fresh = client.get(done.url).context["codes"]
    assert len(fresh) == 10 and not set(fresh) & set(printed)


def test_adding_an_authenticator_beside_an_existing_factor_asks_for_the_password_again(client, world, physician):
    _verified(client, physician)
    page = client.get("/accounts/mfa/setup/")
    assert 'data-testid="password-again"' in page.content.decode()
    (pending,) = TOTPDevice.objects.filter(user=physician, confirmed=False)
    refused = client.post("/accounts/mfa/setup/", {"code": _code(pending)})
    assert refused.status_code == 200 and not TOTPDevice.objects.get(pk=pending.pk).confirmed
    wrong = client.post("/accounts/mfa/setup/", {"code": _code(pending), "password": "Guess-wrong-1!"})
    assert wrong.status_code == 200 and wrong.context["password_form"].errors["password"]
    done = client.post("/accounts/mfa/setup/", {"code": _code(pending), "password": DOCTOR_PASSWORD})
    assert done.status_code == 302 and TOTPDevice.objects.get(pk=pending.pk).confirmed
