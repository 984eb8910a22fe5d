"""Mail header injection (IPA checklist): a CR or LF in any user-supplied value never reaches a header.

Every field of every form that sends mail is tried with CR, LF and CRLF followed by a forged header;
the form refuses it with a plain message and no mail leaves."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.mail import BadHeaderError

from accounts.registration import send_templated_mail

INJECTIONS = ["\r\nBcc: victim@example.org", "\nBcc: victim@example.org", "\rSubject: pwned"]

CARD_FORM = {
    "insurance_symbol": "1234",
    "insurance_number": "56",
    "relationship": "family",
    "sex": "female",
    "birth_year": "2012",
    "birth_month": "4",
    "email": "hanako@example.jp",
    "password": "Kenko-Daiichi-42",
    "password_confirm": "Kenko-Daiichi-42",
}
EMPLOYEE_FORM = {
    "employee_number": "A900",
    "birth_date": "1980-02-29",
    "attribute_value": "0312345678",
    "email": "jiro@example.jp",
    "password": "Kenko-Daiichi-42",
    "password_confirm": "Kenko-Daiichi-42",
}
RESET_FORM = {"email": "member@a.example"}
CASES = (
    [("/accounts/register/", CARD_FORM, field) for field in CARD_FORM]
    + [("/accounts/register/employee/", EMPLOYEE_FORM, field) for field in EMPLOYEE_FORM]
    + [("/accounts/password/reset/", RESET_FORM, "email")]
)


@pytest.fixture(autouse=True)
def _fresh_cache():
    from django.core.cache import cache

    cache.clear()


@pytest.mark.parametrize("injection", INJECTIONS, ids=["crlf", "lf", "cr"])
@pytest.mark.parametrize(("url", "form", "field"), CASES, ids=[f"{u.split('/')[-2]}-{f}" for u, _, f in CASES])
def test_line_breaks_in_any_field_send_no_mail(client, world, url, form, field, injection):
    data = {**form, field: form[field] + injection}
    if field == "password":
        data["password_confirm"] = data["password"]
    response = client.post(url, data)
    if field.startswith("password"):
        # A password never reaches a header: whatever is sent carries none of the injected text.
        for message in mail.outbox:
            assert "victim" not in str(message.message()) and "pwned" not in str(message.message())
        return
    assert mail.outbox == [], f"{field}: a mail was sent"
    assert response.status_code == 200
    assert "field-error" in response.content.decode()


def test_every_mail_we_send_has_single_line_headers_and_our_sender(client, world, settings):
    client.post("/accounts/password/reset/", RESET_FORM)
    client.post("/accounts/register/", CARD_FORM)
    assert len(mail.outbox) == 2
    for message in mail.outbox:
        assert message.from_email == settings.DEFAULT_FROM_EMAIL
        raw = message.message()
        assert set(raw.keys()) == {
            "Content-Type",
            "MIME-Version",
            "Content-Transfer-Encoding",
            "Subject",
            "From",
            "To",
            "Date",
            "Message-ID",
        }
        assert "\n" not in message.subject and "\r" not in message.subject
        assert raw["To"] in {"member@a.example", "hanako@example.jp"}


def test_the_mail_helper_itself_refuses_a_line_break_in_the_recipient(db):
    with pytest.raises(BadHeaderError):
        send_templated_mail(
            to="a@example.jp\r\nBcc: victim@example.org",
            template="password_reset_unknown",
            context={"register_link": "x"},
        )
    assert mail.outbox == []
