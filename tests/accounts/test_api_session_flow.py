"""The API as README "Using the API" tells an integrator to call it: a session cookie from the login page,
the second factor on the MFA page, then X-CSRFToken on every unsafe call. CSRF is enforced here as a real
server enforces it (Client(enforce_csrf_checks=True)); nothing is logged in behind the script's back."""

from __future__ import annotations

import re
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.middleware import SESSION_LAST_SEEN
from tests.accounts.test_roster_import import EN, person, roster_csv
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.usefixtures("private_storage", "fresh_cache")
HR_PASSWORD = TEST_PASSWORD + "!x"


@pytest.fixture
def device(hr_admin):
    """The HR admin enrolled an authenticator app in the browser beforehand (a script cannot enrol)."""
    return TOTPDevice.objects.create(user=hr_admin, name="app", confirmed=True)


def code_from_app(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, t0=device.t0, step=device.step, digits=device.digits):06d}"


def csrf(client: Client) -> str:
    """What a script reads from its cookie jar before each unsafe request (the token changes at login)."""
    return client.cookies["csrftoken"].value


def password_step(client: Client, email: str, password: str, **extra):
    page = client.get("/accounts/login/", **extra)
    assert page.status_code == 200
    data = {"username": email, "password": password}  # the token as header (or as field csrfmiddlewaretoken)
    return client.post("/accounts/login/", data, HTTP_X_CSRFTOKEN=csrf(client), **extra)


def mfa_step(client: Client, code: str, *, token: str | None = None, **extra):
    return client.post("/accounts/mfa/verify/", {"code": code}, HTTP_X_CSRFTOKEN=token or csrf(client), **extra)


def upload(client: Client, **headers):
    data = roster_csv([person("API1")], header=EN, encoding="utf-8")
    payload = {"file": SimpleUploadedFile("roster.csv", data, content_type="text/csv"), "mode": "partial"}
    return client.post("/api/v1/roster-imports/", payload, **headers)  # multipart, as requests' files=


def test_login_page_hands_out_the_csrf_token_as_cookie_and_hidden_input():
    client = Client(enforce_csrf_checks=True)
    page = client.get("/accounts/login/")
    body = page.content.decode()
    assert page.status_code == 200 and "csrftoken" in client.cookies
    for field in ("csrfmiddlewaretoken", "username", "password", "next"):
        assert re.search(rf'name="{field}"', body), field


def test_a_login_post_without_the_csrf_token_is_refused(hr_admin):
    client = Client(enforce_csrf_checks=True)
    client.get("/accounts/login/")
    credentials = {"username": hr_admin.email, "password": HR_PASSWORD}
    refused = client.post("/accounts/login/", credentials)
    assert refused.status_code == 403
    assert client.get("/api/v1/me/").json()["error"]["code"] == "not_authenticated"
    # The form's hidden input serves as well as the cookie (sent as field rather than header).
    page = client.get("/accounts/login/").content.decode()
    hidden = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    accepted = client.post("/accounts/login/", {**credentials, "csrfmiddlewaretoken": hidden})
    assert accepted.status_code == 302
    assert client.get("/api/v1/me/").json()["error"]["code"] == "mfa_required"


def test_wrong_password_shows_the_form_again_instead_of_redirecting(hr_admin):
    client = Client(enforce_csrf_checks=True)
    response = password_step(client, hr_admin.email, "not-the-password")
    assert response.status_code == 200 and 'name="password"' in response.content.decode()


def test_the_documented_flow_login_mfa_list_upload_poll(hr_admin, device, world, django_capture_on_commit_callbacks):
    client = Client(enforce_csrf_checks=True)
    before_login = client.get("/api/v1/members/")
    assert before_login.status_code == 403 and before_login.json()["error"]["code"] == "not_authenticated"

    client.get("/accounts/login/")
    token_before_login = csrf(client)
    logged_in = password_step(client, hr_admin.email, HR_PASSWORD)
    assert logged_in.status_code == 302 and logged_in.url == "/"
    # Password accepted, second factor still owed: the API refuses, pages lead to the code page.
    owed = client.get("/api/v1/members/")
    assert owed.status_code == 403
    assert owed.json()["error"]["code"] == "mfa_required" and owed.json()["error"]["message"]
    assert owed.json()["error"]["details"] == {}  # the API's one error shape, from the middleware too
    home = client.get("/")
    assert home.status_code == 302 and home.url.startswith("/accounts/mfa/verify/")

    # Logging in gave the session a new CSRF token: the one read before it no longer works.
    assert csrf(client) != token_before_login
    assert mfa_step(client, code_from_app(device), token=token_before_login).status_code == 403
    verified = mfa_step(client, code_from_app(device))
    assert verified.status_code == 302 and verified.url == "/"
    me = client.get("/api/v1/me/")
    assert me.status_code == 200 and me.json()["email"] == hr_admin.email

    # Lists are paged: {count, next, previous, results}, ?page_size= up to 500, ?page= from 1.
    page = client.get("/api/v1/members/", {"page_size": 2})
    body = page.json()
    assert page.status_code == 200 and set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 4 and len(body["results"]) == 2 and body["previous"] is None  # A0–A2 and HR1
    assert "page=2" in body["next"] and "page_size=2" in body["next"]
    last = client.get("/api/v1/members/", {"page_size": 2, "page": 2}).json()
    assert last["next"] is None and len(last["results"]) == 2
    beyond = client.get("/api/v1/members/", {"page": 9})
    assert beyond.status_code == 404 and beyond.json()["error"]["code"] == "invalid_page"

    # An unsafe call without X-CSRFToken is refused and changes nothing.
    no_token = upload(client)
    assert no_token.status_code == 403
    assert no_token.json()["error"]["code"] == "permission_denied" and "CSRF" in no_token.json()["error"]["message"]
    assert client.get("/api/v1/roster-imports/").json()["count"] == 0

    with django_capture_on_commit_callbacks(execute=True):  # the worker validates once the upload commits
        created = upload(client, HTTP_X_CSRFTOKEN=csrf(client))
    assert created.status_code == 201, created.content
    job_id = created.json()["id"]
    progress = client.get(f"/api/v1/roster-imports/{job_id}/progress/").json()
    assert progress["state"] == "validated" and progress["finished"] is False  # a preview awaiting its apply
    preview = client.get(f"/api/v1/roster-imports/{job_id}/").json()
    assert preview["counts"]["added"] == 1 and preview["can_apply"] is True

    with django_capture_on_commit_callbacks(execute=True):
        applied = client.post(
            f"/api/v1/roster-imports/{job_id}/apply/",
            {"acknowledge": False},
            content_type="application/json",
            HTTP_X_CSRFTOKEN=csrf(client),
        )
    assert applied.status_code == 202, applied.content
    done = client.get(f"/api/v1/roster-imports/{job_id}/progress/").json()
    assert done["state"] == "done" and done["finished"] is True and done["percent"] == 100
    assert client.get("/api/v1/members/").json()["count"] == 5


def test_what_an_employee_may_not_see_answers_404_not_403(world):
    client = Client(enforce_csrf_checks=True)
    assert password_step(client, "member@a.example", TEST_PASSWORD).status_code == 302  # no MFA for employees
    listed = client.get("/api/v1/roster-imports/")
    assert listed.status_code == 404 and listed.json()["error"]["code"] == "not_found"


def test_over_https_an_unsafe_call_needs_a_referer_of_the_same_site(hr_admin, device, world):
    client = Client(enforce_csrf_checks=True)
    https = {"secure": True, "HTTP_REFERER": "https://testserver/"}
    assert password_step(client, hr_admin.email, HR_PASSWORD, **https).status_code == 302
    assert mfa_step(client, code_from_app(device), **https).status_code == 302

    no_referer = upload(client, secure=True, HTTP_X_CSRFTOKEN=csrf(client))
    assert no_referer.status_code == 403 and "Referer" in no_referer.json()["error"]["message"]
    elsewhere = upload(client, HTTP_X_CSRFTOKEN=csrf(client), secure=True, HTTP_REFERER="https://evil.example/")
    assert elsewhere.status_code == 403
    assert upload(client, HTTP_X_CSRFTOKEN=csrf(client), **https).status_code == 201


def test_an_idle_session_ends_after_15_minutes_with_401_then_asks_for_a_new_login(hr_admin, device, world):
    client = Client(enforce_csrf_checks=True)
    password_step(client, hr_admin.email, HR_PASSWORD)
    mfa_step(client, code_from_app(device))
    assert client.get("/api/v1/members/").status_code == 200
    session = client.session
    session[SESSION_LAST_SEEN] = time.time() - 16 * 60
    session.save()

    expired = client.get("/api/v1/members/")
    assert expired.status_code == 401 and expired.json()["error"]["code"] == "session_expired"
    after = client.get("/api/v1/members/")  # the session is gone: logging in again (password and code) is the way
    assert after.status_code == 403 and after.json()["error"]["code"] == "not_authenticated"
