"""The roster of a health-insurance association shows each person's insurance card (記号, 番号, 枝番,
続柄); a company's roster keeps its columns."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client

from accounts.models import Member, Role
from accounts.services import label_grant_create, member_create, user_create
from tenants.context import tenant_context
from tests.conftest import TEST_PASSWORD, log_in

PASSWORD = TEST_PASSWORD + "!x"
CARD_HEADERS = ("<th>保険証の記号</th>", "<th>保険証の番号</th>", "<th>枝番</th>", "<th>続柄</th>")


@pytest.fixture
def insured(world):
    """A dependant on tenant B's (an insurer's) roster, with a full insurance card."""
    with tenant_context(world.tenant_b):
        return member_create(
            employee_number="B-CARD", name="被扶養 花子", office=world.roster_b[0].office,
            relationship=Member.Relationship.FAMILY, insurance_symbol="健12", insurance_number="34567",
            insurance_branch="02",
        )  # fmt: skip


@pytest.fixture
def insurer_client(world):
    """An insurer_admin of tenant B holding member.view through an hr_staff grant (as the demo does it)."""
    with tenant_context(world.tenant_b):
        member = member_create(employee_number="KENPO1", name="健保 次郎", office=world.roster_b[0].office)
    user_create(email="kenpo@b.example", role=Role.INSURER_ADMIN, tenant=world.tenant_b, password=PASSWORD,
                member=member)  # fmt: skip
    with tenant_context(world.tenant_b):
        label_grant_create(
            office=world.roster_b[0].office, target_kind="employee", target="KENPO1", labels=["hr_staff"],
            scope_="tenant", acting_user=world.outsider_b,
        )  # fmt: skip
    client = Client()
    assert log_in(client, "kenpo@b.example", PASSWORD).status_code == 302  # password + TOTP
    return client


def _card_headers_shown(page: str) -> list[bool]:
    return [header in page for header in CARD_HEADERS]


def test_an_insurer_admin_sees_each_persons_insurance_card_on_the_roster(insurer_client, insured):
    page = insurer_client.get("/roster/").content.decode()
    assert _card_headers_shown(page) == [True] * 4
    assert "被扶養 花子" in page
    assert '<td data-label="保険証の記号">健12</td>' in page  # each value named by its column (a phone's card)
    page = re.sub(r"<td [^>]*>", "<td>", page)  # the cells' values in order, whatever their attributes
    assert "<td>健12</td><td>34567</td><td>02</td><td>家族</td>" in page
    # a person entered without a card shows dashes, not empty cells; 続柄 defaults to 本人
    assert "<td>—</td><td>—</td><td>—</td><td>本人</td>" in page


def test_a_company_roster_keeps_its_columns_while_an_insurer_roster_gets_the_card(
    client, world, hr_admin, insurer_client, insured
):
    """The company's page is the contrast: the same page, the same template, no card columns."""
    with tenant_context(world.tenant_a):
        member_create(employee_number="A-CARD", name="会社 三郎", office=world.office_a, insurance_symbol="社99",
                      insurance_number="11111", insurance_branch="03")  # fmt: skip
    log_in(client, "hr@a.example", PASSWORD)
    company = client.get("/roster/").content.decode()
    assert "会社 三郎" in company  # the roster itself is there
    assert _card_headers_shown(company) == [False] * 4
    assert "社99" not in company and "11111" not in company
    insurer = insurer_client.get("/roster/").content.decode()
    assert _card_headers_shown(insurer) == [True] * 4


def test_the_insurer_roster_with_nobody_found_spans_every_column(insurer_client, insured):
    page = insurer_client.post("/roster/", {"q": "存在しない"}, follow=True).content.decode()
    assert '<td colspan="9" class="muted">' in page


def test_an_insurer_admin_sees_the_branch_number_on_a_persons_page(world, insurer_client, insured):
    page = insurer_client.get(f"/roster/{insured.pk}/").content.decode()
    assert '<dt>枝番</dt><dd data-testid="member-branch">02</dd>' in page
    assert '<dd data-testid="member-relationship">家族</dd>' in page
    assert insurer_client.get(f"/api/v1/members/{insured.pk}/").json()["relationship"] == insured.relationship
    assert "<dd>健12</dd>" in page and "<dd>34567</dd>" in page
    # what the roster import stored, for the roster's keepers to check (an era date read as 1985-04-01)
    with tenant_context(world.tenant_b):
        insured.birth_date, insured.sex = dt.date(1985, 4, 1), Member.Sex.FEMALE
        insured.save()
    page = insurer_client.get(f"/roster/{insured.pk}/").content.decode()
    assert (
        '<dd data-testid="member-birth-date">1985-04-01</dd>' in page
        and '<dd data-testid="member-sex">女性</dd>' in page
    )
    body = insurer_client.get(f"/api/v1/members/{insured.pk}/").json()
    assert (body["birth_date"], body["sex"]) == ("1985-04-01", "female")  # the API says what the page says


def test_a_roster_viewer_of_the_insurer_sees_no_card_numbers(world, insured):
    """名簿閲覧 (member.view without roster.manage): names and offices, not the card data that, with a sex
    and a birth month, registers an account for the person."""
    with tenant_context(world.tenant_b):
        insured.birth_date, insured.sex = dt.date(1985, 4, 1), Member.Sex.FEMALE  # stored, yet not shown here
        insured.save()
        member = member_create(employee_number="VIEW1", name="閲覧 三郎", office=world.roster_b[0].office)
        user_create(email="viewer@b.example", role=Role.EMPLOYEE, tenant=world.tenant_b, password=PASSWORD,
                    member=member)  # fmt: skip
        label_grant_create(
            office=world.roster_b[0].office, target_kind="employee", target="VIEW1", labels=["roster_viewer"],
            scope_="tenant", acting_user=world.outsider_b,
        )  # fmt: skip
    client = Client()
    assert log_in(client, "viewer@b.example", PASSWORD).status_code == 302
    page = client.get("/roster/").content.decode()
    assert "被扶養 花子" in page and _card_headers_shown(page) == [False] * 4
    assert "34567" not in page
    detail = client.get(f"/roster/{insured.pk}/").content.decode()
    assert "被扶養 花子" in detail and "34567" not in detail and "member-branch" not in detail
    assert "member-relationship" not in detail and "家族" not in detail  # 続柄 is on the card too
    assert "member-birth-date" not in detail and "member-sex" not in detail  # nor what registration asks with it
    api = client.get(f"/api/v1/members/{insured.pk}/").json()
    assert api["name"] == "被扶養 花子" and api["relationship"] is None
    assert api["birth_date"] is None and api["sex"] is None
