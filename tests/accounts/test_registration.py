"""Self-registration as a newcomer experiences it: card data in, one e-mail out, one link that works
once, then a login. And what an attacker gets: the same answer whatever exists, and a rate limit."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core import mail
from django.test import Client

from accounts.models import Member, User
from accounts.services import member_create
from audit.models import AuditEvent, chain_key
from audit.services import chain_scope
from tenants.context import tenant_context
from tenants.models import TenantSecurityPolicy
from tests.conftest import log_in

NEW_PASSWORD = "Kenko-Daiichi-42"
LINK_RE = re.compile(r"http://testserver(/accounts/register/confirm/[^/\s]+/)")
SENT = "確認メールを送信しました"

CARD = {
    "insurance_symbol": "1234",
    "insurance_number": "56",
    "relationship": "family",
    "sex": "female",
    "birth_year": "2012",
    "birth_month": "4",
}


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    from django.core.cache import cache

    cache.clear()  # rate-limit counters live in the cache, which outlives a test


@pytest.fixture
def dependant(world):
    """An unregistered dependant on tenant B's (健保) roster."""
    with tenant_context(world.tenant_b):
        return member_create(
            name="乙山 花子",
            relationship=Member.Relationship.FAMILY,
            sex=Member.Sex.FEMALE,
            birth_date=dt.date(2012, 4, 17),
            insurance_symbol="1234",
            insurance_number="56",
        )


def register(client, email="hanako@example.jp", password=NEW_PASSWORD, **overrides):
    data = {**CARD, "email": email, "password": password, "password_confirm": password, **overrides}
    return client.post("/accounts/register/", data)


def confirm_link(message) -> str:
    found = LINK_RE.search(message.body)
    assert found, "no confirmation link in the e-mail"
    return found.group(1)


def events(tenant, action):
    with chain_scope(tenant):
        qs = AuditEvent.objects.filter(chain=chain_key(tenant.pk if tenant else None), action=action)
        return list(qs.order_by("seq"))


def test_login_page_links_to_registration_and_reset(client, db):
    page = client.get("/accounts/login/").content.decode()
    assert "はじめてログインされる方は、こちらからアカウント登録をお願いします" in page
    assert 'href="/accounts/register/"' in page
    assert "パスワードを忘れた方" in page and 'href="/accounts/password/reset/"' in page


def test_dependant_registers_confirms_by_email_and_logs_in(client, world, dependant):
    response = register(client, email="Hanako@Example.jp")
    assert response.status_code == 302 and response.url == "/accounts/register/sent/"
    assert SENT in client.get(response.url).content.decode()
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["hanako@example.jp"]
    assert "アカウント登録の確認" in message.subject and "Confirm your registration" in message.subject
    assert "登録を完了する" in message.body and "valid for 24 hours" in message.body
    link = confirm_link(message)

    # Nothing exists until the link is used, and merely opening it (a mail scanner) changes nothing.
    assert not User.objects.filter(email="hanako@example.jp").exists()
    assert "登録を完了する" in client.get(link).content.decode()
    assert not User.objects.filter(email="hanako@example.jp").exists()

    done = client.post(link)
    assert done.status_code == 302 and done.url == "/accounts/login/"
    assert "アカウント登録が完了しました" in client.get(done.url).content.decode()

    user = User.objects.get(email="hanako@example.jp")
    assert user.role == "employee" and user.tenant == world.tenant_b
    with tenant_context(world.tenant_b):
        dependant.refresh_from_db()
        assert dependant.user == user
    assert log_in(client, "hanako@example.jp", NEW_PASSWORD).status_code == 302
    assert "乙山 花子" in client.get("/").content.decode()


def test_confirmation_link_works_once(client, world, dependant):
    register(client)
    link = confirm_link(mail.outbox[0])
    assert client.post(link).status_code == 302
    again = client.post(link)
    assert again.status_code == 400
    assert "このリンクは無効か、有効期限が切れているか、すでに使われています。" in again.content.decode()
    reopened = client.get(link).content.decode()  # the e-mail opened again after registering: log in, not register
    assert "このリンクは無効か" in reopened
    assert "登録をすでに完了した方は、ログイン画面からログインしてください。" in reopened
    assert User.objects.filter(email="hanako@example.jp").count() == 1


def test_expired_confirmation_link_is_refused(client, world, dependant, settings):
    settings.REGISTRATION_LINK_HOURS = 0  # the link is already out of time when it arrives
    register(client)
    assert client.post(confirm_link(mail.outbox[0])).status_code == 400
    assert not User.objects.filter(email="hanako@example.jp").exists()


def test_tampered_link_is_refused(client, world, dependant):
    register(client)
    link = confirm_link(mail.outbox[0])
    assert client.post(link[:-3] + "xx/").status_code == 400
    assert client.post("/accounts/register/confirm/999.not-a-real-token-at-all-here/").status_code == 400
    assert not User.objects.filter(email="hanako@example.jp").exists()


def test_answers_are_the_same_whatever_exists(client, world, dependant):
    """Wrong card data, an e-mail already in use and a correct card give the visitor the same answer;
    the difference only reaches the mailbox of the address typed."""
    wrong = register(client, email="a@example.jp", insurance_number="57")
    taken = register(client, email="member@a.example")
    right = register(client, email="b@example.jp")
    assert wrong.status_code == taken.status_code == right.status_code == 302
    assert wrong.url == taken.url == right.url == "/accounts/register/sent/"
    assert [m.to for m in mail.outbox] == [["a@example.jp"], ["member@a.example"], ["b@example.jp"]]
    assert not LINK_RE.search(mail.outbox[0].body) and not LINK_RE.search(mail.outbox[1].body)
    assert "入力された情報では登録できませんでした" in mail.outbox[0].body
    assert "すでに登録されています" in mail.outbox[1].body
    assert LINK_RE.search(mail.outbox[2].body)


def test_member_already_linked_to_an_account_cannot_be_claimed(client, world, dependant):
    register(client, email="first@example.jp")
    client.post(confirm_link(mail.outbox[0]))
    mail.outbox.clear()
    register(client, email="second@example.jp")
    assert not LINK_RE.search(mail.outbox[0].body)
    assert not User.objects.filter(email="second@example.jp").exists()


def test_two_pending_registrations_for_one_person_only_the_first_confirmed_wins(client, world, dependant):
    register(client, email="first@example.jp")
    register(client, email="second@example.jp")
    first, second = (confirm_link(m) for m in mail.outbox)
    assert client.post(second).status_code == 302
    assert client.post(first).status_code == 400
    assert not User.objects.filter(email="first@example.jp").exists()


def test_card_data_is_matched_after_width_and_space_normalisation(client, world, dependant):
    register(client, insurance_symbol="１２ ３４", insurance_number="５６")  # full-width, as typed on a phone
    assert LINK_RE.search(mail.outbox[0].body)


def test_the_card_form_makes_the_person_choose_relationship_and_sex(client, world, dependant):
    page = client.get("/accounts/register/").content.decode()
    assert '<h2 data-testid="register-mode">保険証の情報で登録</h2>' in page  # which way this page registers
    assert (
        '<h2 data-testid="register-mode">社員番号で登録</h2>'
        in client.get("/accounts/register/employee/").content.decode()
    )
    for name in ("relationship", "sex"):
        select = page.split(f'name="{name}"')[1].split("</select>")[0]
        assert '<option value="" selected>---</option>' in select, name
    unchosen = register(client, relationship="", sex="")
    assert unchosen.status_code == 200 and unchosen.content.decode().count("この項目は必須です。") == 2


def test_weak_password_is_refused_with_the_rule(client, world, dependant):
    response = register(client, password="short", password_confirm="short")
    assert response.status_code == 200
    assert "パスワードは8文字以上にしてください。" in response.content.decode()
    assert mail.outbox == []


def test_a_short_password_typed_twice_differently_gets_both_reasons_at_once(client, world, dependant):
    response = register(client, password="short", password_confirm="shorter")
    assert response.status_code == 200
    form = response.context["form"]
    assert "パスワードは8文字以上にしてください。" in " ".join(form.errors["password"])  # not held back
    assert form.errors["password_confirm"] == ["パスワードが一致しません。"]


def test_rate_limit_per_roster_entry_even_from_many_addresses(world, dependant, settings):
    settings.REGISTRATION_RATE_LIMIT_PER_ENTRY = 3
    for i in range(3):
        assert register(Client(REMOTE_ADDR=f"198.51.100.{i}"), insurance_number="99").status_code == 302
    blocked = register(Client(REMOTE_ADDR="198.51.100.50"), insurance_number="99")
    assert blocked.status_code == 429
    assert "試行が多すぎます" in blocked.content.decode()
    # Another card from that address is still served.
    assert register(Client(REMOTE_ADDR="198.51.100.50")).status_code == 302


def test_guessing_sex_and_birth_month_under_one_card_spends_that_cards_attempts(world, dependant, settings):
    """Someone who has seen a card's 記号・番号 tries each sex and month from many addresses: the attempts are
    the card's, whatever is typed beside it."""
    settings.REGISTRATION_RATE_LIMIT_PER_ENTRY = 3
    guesses = [("male", "1"), ("male", "2"), ("female", "1")]
    for i, (sex, month) in enumerate(guesses):
        client = Client(REMOTE_ADDR=f"198.51.100.{i}")
        assert register(client, sex=sex, birth_month=month).status_code == 302
    right = register(Client(REMOTE_ADDR="198.51.100.60"))  # the true data, fourth try within the hour
    assert right.status_code == 429 and mail.outbox and not any(LINK_RE.search(m.body) for m in mail.outbox)


def test_rate_limit_per_address(world, dependant, settings):
    settings.REGISTRATION_RATE_LIMIT_PER_IP = 3
    visitor = Client(REMOTE_ADDR="203.0.113.9")
    for number in ("1", "2", "3"):
        assert register(visitor, insurance_number=number).status_code == 302
    assert register(visitor).status_code == 429
    assert len(mail.outbox) == 3  # the blocked attempt sent nothing, not even to a right card
    assert register(Client(REMOTE_ADDR="203.0.113.10")).status_code == 302


@pytest.fixture
def employee_entry(world):
    with tenant_context(world.tenant_a):
        TenantSecurityPolicy.objects.create(registration_attribute="phone")
        return member_create(
            employee_number="A900", name="甲野 次郎", birth_date=dt.date(1980, 2, 29), phone="03-1234-5678"
        )


def register_employee(client, **overrides):
    data = {
        "employee_number": "a900",
        "birth_date": "1980-02-29",
        "attribute_value": "0312345678",
        "email": "jiro@example.jp",
        "password": NEW_PASSWORD,
        "password_confirm": NEW_PASSWORD,
        **overrides,
    }
    return client.post("/accounts/register/employee/", data)


def test_employee_registers_with_number_birth_date_and_the_attribute_the_company_chose(client, world, employee_entry):
    assert register_employee(client).url == "/accounts/register/sent/"
    assert client.post(confirm_link(mail.outbox[0])).status_code == 302
    user = User.objects.get(email="jiro@example.jp")
    assert user.tenant == world.tenant_a and user.role == "employee"


@pytest.mark.parametrize(
    "overrides",
    [{"attribute_value": "0312345679"}, {"birth_date": "1980-03-01"}, {"employee_number": "A901"}],
    ids=["wrong-attribute", "wrong-birth-date", "wrong-number"],
)
def test_employee_with_one_wrong_attribute_gets_no_link(client, world, employee_entry, overrides):
    assert register_employee(client, **overrides).url == "/accounts/register/sent/"
    assert len(mail.outbox) == 1 and not LINK_RE.search(mail.outbox[0].body)


def test_registration_is_audited_without_personal_data(client, world, dependant):
    register(client, email="nobody-here@example.jp", insurance_number="99")
    register(client)
    client.post(confirm_link(mail.outbox[1]))
    failed = events(None, "auth.registration.requested")
    assert failed and failed[-1].outcome == "failure" and failed[-1].details["reason"] == "no_match"
    requested = events(world.tenant_b, "auth.registration.requested")
    confirmed = events(world.tenant_b, "auth.registration.confirmed")
    assert requested[-1].target_id == str(dependant.uid)
    assert confirmed[-1].outcome == "success"
    for event in [*failed, *requested, *confirmed]:
        text = f"{event.target_id} {event.details}"
        assert "@" not in text and "乙山" not in text
        assert "1234" not in str(event.details)  # (target_id is a random uid: four digits may turn up in it)


def test_card_lookup_uses_the_blind_index_and_decrypts_no_roster_entry(client, world, dependant, monkeypatch):
    from healthapp.crypto import fields
    from healthapp.crypto.fields import EncryptedMixin

    decrypted: list[str] = []
    original, original_row = EncryptedMixin.decrypt_for, fields.open_row

    def counting(self, instance, sealed):
        decrypted.append(self.name)
        return original(self, instance, sealed)

    monkeypatch.setattr(EncryptedMixin, "decrypt_for", counting)
    monkeypatch.setattr(fields, "open_row", lambda *a: decrypted.append("row") or original_row(*a))
    register(client)  # the dependant's card, found in tenant B among every tenant's roster
    register(client, email="other@example.jp", insurance_number="99")  # nobody's card
    assert LINK_RE.search(mail.outbox[0].body) and not LINK_RE.search(mail.outbox[1].body)
    assert decrypted == []


def test_twins_on_one_card_register_each_as_themselves_by_the_branch(client, world, dependant):
    """Twins of one sex under one card share every other field a card registration asks for: without
    the 枝番 neither gets an account (not the first one found), with it each gets their own."""
    with tenant_context(world.tenant_b):
        dependant.insurance_branch = "01"
        dependant.save()
        twin = member_create(
            name="乙山 桃子", relationship=Member.Relationship.FAMILY, sex=Member.Sex.FEMALE,
            birth_date=dt.date(2012, 4, 17), insurance_symbol="1234", insurance_number="56", insurance_branch="02",
        )  # fmt: skip
    register(client, email="either@example.jp")
    assert not LINK_RE.search(mail.outbox[-1].body) and "枝番" in mail.outbox[-1].body
    register(client, email="momoko@example.jp", insurance_branch="2")  # as written without the zero
    client.post(confirm_link(mail.outbox[-1]))
    with tenant_context(world.tenant_b):
        twin.refresh_from_db()
        dependant.refresh_from_db()
        assert twin.user.email == "momoko@example.jp" and dependant.user is None


def test_another_persons_branch_is_never_a_match(client, world, dependant):
    with tenant_context(world.tenant_b):
        dependant.insurance_branch = "01"
        dependant.save()
    register(client, insurance_branch="02")  # the twin who is not on the roster
    assert not LINK_RE.search(mail.outbox[-1].body)
    response = register(client, insurance_branch="x1")
    assert response.status_code == 200 and "枝番は2桁までの数字" in response.content.decode()
    register(client, insurance_branch="01")
    assert LINK_RE.search(mail.outbox[-1].body)


def test_a_twin_who_leaves_out_the_branch_never_gets_the_other_twins_entry(client, world, dependant):
    """One twin's entry has no 枝番 (a blank cell), the other's has: without a typed 枝番, that is still two
    people under one card, and nobody gets an account."""
    with tenant_context(world.tenant_b):
        member_create(
            name="乙山 桃子", relationship=Member.Relationship.FAMILY, sex=Member.Sex.FEMALE,
            birth_date=dt.date(2012, 4, 17), insurance_symbol="1234", insurance_number="56", insurance_branch="02",
        )  # fmt: skip
    register(client, email="momoko@example.jp")
    assert not LINK_RE.search(mail.outbox[-1].body)
    register(client, email="momoko@example.jp", insurance_branch="03")  # nobody's 枝番: not the one without
    assert not LINK_RE.search(mail.outbox[-1].body)


def test_a_look_alike_address_is_not_told_that_an_account_exists(client, world, dependant):
    """admın@ (dotless ı) is not admin@: PostgreSQL's case-insensitive match would fold it onto the org admin's
    address and mail the look-alike's owner that an account exists there. Addresses are stored lower-case and
    compared exactly."""
    assert register(client, email="admın@a.example").status_code == 302
    (sent,) = mail.outbox
    assert sent.to == ["admın@a.example"] and "すでに登録されています" not in sent.body
