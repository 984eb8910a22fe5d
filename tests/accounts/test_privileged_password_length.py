"""The 12-character rule follows accounts.policy.privileged, not the role alone: an employee login given a
label over others' data (産業医, 人事 by a LabelGrant) after choosing an 8-character password must change it
at its next login, and cannot set a shorter one again."""

from __future__ import annotations

from contextlib import nullcontext

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import Client

from accounts.models import Role, User
from accounts.services import label_grant_create, member_create, user_create
from tenants.context import tenant_context
from tests.conftest import log_in

SHORT = "Kenko2026"  # 9 characters: enough for an employee, short for anyone privileged
ELEVEN = "Kenko2026Ka"
LONG = "Kenko2026Sangyoi"
CHANGE_PAGE = "/accounts/password/change/"
MESSAGE = "権限ラベルが付与されたため、パスワードを12文字以上に変更してください。"


pytestmark = pytest.mark.usefixtures("fresh_cache")


def employee(world, email: str, employee_number: str) -> User:
    """An employee login with a short password, linked to a new roster entry of tenant A."""
    with tenant_context(world.tenant_a):
        entry = member_create(
            employee_number=employee_number, name=f"丙川 {employee_number}", office=world.office_a,
            department=world.department_a,
        )  # fmt: skip
    return user_create(email=email, role=Role.EMPLOYEE, tenant=world.tenant_a, password=SHORT, member=entry)


def grant(world, employee_number: str, label: str, scope_: str) -> None:
    with tenant_context(world.tenant_a):
        label_grant_create(office=world.office_a, target_kind="employee", target=employee_number, labels=[label],
                           scope_=scope_, acting_user=world.admin_a)  # fmt: skip


@pytest.fixture
def doctor(world) -> User:
    """An employee login given 産業医 over the office after choosing a 9-character password."""
    user = employee(world, "sangyoi@a.example", "N1")
    grant(world, "N1", "physician", "office")
    return user


def logged_in(email: str) -> Client:
    client = Client()
    assert log_in(client, email, SHORT).status_code == 302  # password, then the second factor if owed
    return client


def test_label_holder_with_a_short_password_must_change_it_before_anything_else(doctor):
    client = logged_in("sangyoi@a.example")

    for path in ("/", "/roster/", "/checkups/review/"):
        response = client.get(path)
        assert response.status_code == 302 and response.url == CHANGE_PAGE, path
    api = client.get("/api/v1/me/")
    assert api.status_code == 403 and api.json()["error"]["code"] == "password_change_required"
    page = client.get(client.get("/").url)
    assert page.status_code == 200 and MESSAGE in page.content.decode()
    # Only a boolean is kept: neither the password nor its length.
    assert client.session["_password_short"] is True
    assert not any(SHORT in str(value) for value in client.session.values())

    too_short = client.post(CHANGE_PAGE, {"old_password": SHORT, "new_password1": ELEVEN, "new_password2": ELEVEN})
    assert too_short.status_code == 200 and "パスワードは12文字以上にしてください。" in too_short.content.decode()
    assert client.get("/").status_code == 302

    changed = client.post(CHANGE_PAGE, {"old_password": SHORT, "new_password1": LONG, "new_password2": LONG})
    assert changed.status_code == 302
    assert "_password_short" not in client.session
    assert client.get("/").status_code == 200
    assert client.get("/roster/").status_code == 200
    doctor.refresh_from_db()
    assert doctor.check_password(LONG)


def test_employee_without_a_label_over_others_keeps_the_short_password(world, doctor):
    """The same 9-character password asks nothing more of an employee with no label, or with a label over
    their own data only; only the colleague with 産業医 over the office is sent to change it."""
    employee(world, "plain@a.example", "N2")
    employee(world, "self@a.example", "N3")
    grant(world, "N3", "roster_viewer", "self")

    for email in ("plain@a.example", "self@a.example"):
        client = logged_in(email)
        assert client.get("/").status_code == 200, email
    labelled = logged_in("sangyoi@a.example")
    response = labelled.get("/")
    assert response.status_code == 302 and response.url == CHANGE_PAGE


def test_a_label_given_during_the_session_asks_for_the_new_password_at_the_next_page(world):
    """Logged in with the employee's 9 characters (and an authenticator of their own, so the second factor
    is passed already); the org admin then gives 人事 over the office: the next page asks for a longer
    password."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    user = employee(world, "later@a.example", "N4")
    TOTPDevice.objects.create(user=user, name="own", confirmed=True)
    client = logged_in("later@a.example")
    assert client.get("/").status_code == 200
    grant(world, "N4", "hr_staff", "office")
    response = client.get("/")
    assert response.status_code == 302 and response.url == CHANGE_PAGE


def test_a_user_who_must_change_the_password_can_still_log_out(doctor):
    client = logged_in("sangyoi@a.example")
    response = client.get("/")
    assert response.status_code == 302 and response.url == CHANGE_PAGE
    assert client.post("/accounts/logout/").status_code == 200
    response = client.get("/")
    assert response.status_code == 302 and response.url.startswith("/accounts/login/")


@pytest.mark.parametrize("in_tenant", [False, True], ids=["reset-link", "logged-in"])
def test_an_eleven_character_password_is_refused_for_a_label_holder(world, doctor, in_tenant):
    """Outside any tenant context too: the reset link sets a password before anyone is logged in. A label
    over one's own data only, or no saved login yet (self-registration), leaves the employee's 8."""
    own_only = employee(world, "self@a.example", "N3")
    grant(world, "N3", "roster_viewer", "self")
    unsaved = User(email="new@a.example", role=Role.EMPLOYEE, tenant=world.tenant_a)
    with tenant_context(world.tenant_a) if in_tenant else nullcontext():
        with pytest.raises(ValidationError) as refused:
            validate_password(ELEVEN, doctor)
        assert "パスワードは12文字以上にしてください。" in refused.value.messages
        validate_password("Kenko2026Kan", doctor)  # exactly 12
        validate_password(ELEVEN, own_only)
        validate_password(ELEVEN, unsaved)
