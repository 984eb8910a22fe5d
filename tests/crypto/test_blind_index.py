"""Blind indexes find the same person however the input was typed, and only inside one tenant."""

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from accounts.models import Member
from accounts.selectors import member_get_by_employee_number, members_find_by_name
from accounts.services import member_create
from healthapp.crypto.blind_index import blind_index, indexer, insurance_card_index, normalise
from tenants.context import tenant_context


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("ＡＢＣ１２３", "abc123"),  # full-width → half-width, case-folded
        (" 12 34\u3000", "1234"),  # spaces of every width removed
        ("ﾔﾏﾀﾞ ﾀﾛｳ", "ヤマダタロウ"),  # half-width kana → full-width (NFKC composes the dakuten)
    ],
)
def test_normalise(typed, stored):
    assert normalise(typed) == normalise(stored)


def test_kana_folding_only_when_asked():
    assert normalise("ヤマダ", kana=True) == normalise("やまだ", kana=True)
    assert normalise("ヤマダ") != normalise("やまだ")


@given(st.text(max_size=30))
def test_normalising_twice_changes_nothing(text):
    assert normalise(normalise(text, kana=True), kana=True) == normalise(text, kana=True)


@pytest.mark.parametrize(("purpose", "kana"), [("employee-number", False), ("name", True), ("email", False)])
def test_a_batch_indexer_gives_the_same_index_as_blind_index(world, purpose, kana):
    index = indexer(world.tenant_a.pk, purpose, kana=kana)
    for value in ("ab-0042", "ＡＢ－００４２", "ヤマダ タロウ", "やまだたろう", "Hanako@Example.jp"):
        assert index(value) == blind_index(world.tenant_a.pk, purpose, value, kana=kana), value
    assert index("X1") != indexer(world.tenant_b.pk, purpose, kana=kana)("X1")


def test_a_batch_card_indexer_gives_the_same_insurance_card_index(world):
    card = {"symbol": "ｱ12", "number": "３４５", "relationship": "self", "sex": "female", "birth_year_month": "1980-04"}
    once = insurance_card_index(world.tenant_a.pk, **card)
    assert insurance_card_index(world.tenant_a.pk, **card, index=indexer(world.tenant_a.pk, "insurance-card")) == once
    assert once == blind_index(world.tenant_a.pk, "insurance-card", "ア12", "345", "self", "female", "1980-04")


def test_employee_number_lookup_ignores_width_case_and_spaces(world):
    with tenant_context(world.tenant_a):
        member = member_create(employee_number="ab-0042", name="検索 一郎")
        for typed in ("AB-0042", "ＡＢ－００４２", " ab-0042 ", "ａｂ-００４２"):
            assert member_get_by_employee_number(typed) == member, typed
        assert member_get_by_employee_number("ab-0043") is None


def test_employee_number_lookup_stays_inside_the_tenant(world):
    with tenant_context(world.tenant_b):
        assert member_get_by_employee_number("A1") is None  # A1 exists in tenant A only
    assert blind_index(world.tenant_a.pk, "employee-number", "X1") != blind_index(
        world.tenant_b.pk, "employee-number", "X1"
    )


def test_name_search_finds_full_width_half_width_and_kana_variants(world):
    with tenant_context(world.tenant_a):
        kanji = member_create(name="山田 太郎")
        kana = member_create(name="ヤマダ タロウ")
        member_create(name="山田 花子")
        assert members_find_by_name("山田太郎") == [kanji]
        assert members_find_by_name("山田\u3000太郎") == [kanji]
        assert members_find_by_name("やまだ たろう") == [kana]
        assert members_find_by_name("ﾔﾏﾀﾞ ﾀﾛｳ") == [kana]


def test_insurance_card_lookup_for_self_registration(world):
    with tenant_context(world.tenant_b):
        member = member_create(
            name="被保険 者",
            insurance_symbol="１２３４",
            insurance_number="５６７",
            relationship="self",
            sex="female",
            birth_date=dt.date(1990, 4, 15),
        )
        typed = insurance_card_index(
            world.tenant_b.pk, symbol="1234", number="567", relationship="self", sex="female",
            birth_year_month="1990-04",
        )  # fmt: skip
        assert Member.objects.get(insurance_card_index=typed) == member
        wrong_month = insurance_card_index(
            world.tenant_b.pk, symbol="1234", number="567", relationship="self", sex="female",
            birth_year_month="1990-05",
        )  # fmt: skip
        assert not Member.objects.filter(insurance_card_index=wrong_month).exists()


def test_index_follows_an_edit(world):
    with tenant_context(world.tenant_a):
        member = Member.objects.get(pk=world.roster_a[2].pk)
        member.employee_number = "NEW-9"
        member.save()
        assert member_get_by_employee_number("new-9") == member
        assert member_get_by_employee_number("A2") is None
