"""名簿の検索: HR finds people by part of their name, their フリガナ (hiragana, katakana, half-width) or part of
their employee number, inside their own scope and tenant only; an exact number or full name shows just that
person; a scope too large to open every name says so instead of answering slowly."""

from __future__ import annotations

import secrets

import pytest
from django.test import Client

from accounts import selectors
from accounts.models import Role
from accounts.services import label_grant_create, member_create, user_create
from tenants.context import tenant_context
from tenants.services import department_create
from tests.conftest import TEST_PASSWORD, log_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(world):
    with tenant_context(world.tenant_a):
        general = department_create(office=world.office_a, name="総務部")
        made = {
            "taro": member_create(employee_number="A10", name="山田 太郎", kana_name="ヤマダ タロウ",
                                  office=world.office_a, department=world.department_a),
            "hanako": member_create(employee_number="A20", name="山田 花子", kana_name="やまだ はなこ",
                                    office=world.office_a, department=general),
            "ichiro": member_create(employee_number="X-777", name="田中 一郎", kana_name="タナカ イチロウ",
                                    office=world.office_a, department=world.department_a),
        }  # fmt: skip
    return made


def _names(world, user, query: str) -> tuple[list[str], selectors.RosterSearch]:
    with tenant_context(world.tenant_a):
        search = selectors.members_search(user=user, query=query)
        return [m.name for m in search.page], search


def test_part_of_a_name_kana_or_number_finds_people(world, people):
    names, search = _names(world, world.admin_a, "山田")
    assert names == ["山田 太郎", "山田 花子"] and search.partial
    assert _names(world, world.admin_a, "ﾔﾏﾀﾞ")[0] == ["山田 太郎", "山田 花子"]  # half-width katakana
    assert _names(world, world.admin_a, "タロウ")[0] == ["山田 太郎"]  # katakana finds a hiragana フリガナ too
    assert _names(world, world.admin_a, "はなこ")[0] == ["山田 花子"]
    assert _names(world, world.admin_a, "ｘ－７７")[0] == ["田中 一郎"]  # full-width, case-folded
    assert _names(world, world.admin_a, "佐藤")[0] == []


def test_an_exact_number_or_full_name_shows_only_that_person(world, people):
    names, search = _names(world, world.admin_a, "A1")  # 甲野 1's number; A10 contains it but is not it
    assert names == ["甲野 1"] and not search.partial
    assert _names(world, world.admin_a, "山田太郎")[0] == ["山田 太郎"]


def test_the_search_stays_inside_the_scope_and_the_tenant(world, people):
    assert _names(world, world.admin_a, "乙山")[0] == []  # tenant B's people
    with tenant_context(world.tenant_a):
        label_grant_create(office=world.office_a, target_kind="department", target="営業部", labels=["roster_viewer"],
                           scope_="department", acting_user=world.admin_a)  # fmt: skip
        sales = user_create(email="sales@a.example", role=Role.EMPLOYEE, tenant=world.tenant_a,
                            password=TEST_PASSWORD, member=world.roster_a[1])  # fmt: skip  # in 営業部
    assert _names(world, sales, "山田")[0] == ["山田 太郎"]  # 山田 花子 is in 総務部
    assert _names(world, sales, "山田花子")[0] == []  # not even by her exact name


def test_a_scope_too_large_to_open_every_name_says_so(world, people, monkeypatch):
    monkeypatch.setattr(selectors, "PARTIAL_SEARCH_LIMIT", 3)
    names, search = _names(world, world.admin_a, "山田")
    assert names == [] and search.too_many
    assert _names(world, world.admin_a, "X-777")[0] == ["田中 一郎"]  # an exact match still answers


def test_the_page_tells_how_the_people_were_found(world, people, monkeypatch):
    client = Client()
    log_in(client, "admin@a.example", TEST_PASSWORD + "!x")
    found = client.get(client.post("/roster/", {"q": "やまだ"}).url).content.decode()
    assert "「やまだ」を含む人 2 人" in found and "山田 花子" in found and "田中 一郎" not in found
    monkeypatch.setattr(selectors, "PARTIAL_SEARCH_LIMIT", 3)
    refused = client.get(client.post("/roster/", {"q": "やまだ"}).url).content.decode()
    assert 'data-testid="search-too-many"' in refused and "山田 花子" not in refused


def test_the_next_pages_of_a_search_open_nothing_again_and_still_keep_to_the_scope(world, people, monkeypatch):
    token = secrets.token_urlsafe(9)  # as the page makes one: nothing kept under it by an earlier run
    opened = []
    containing = selectors._containing
    monkeypatch.setattr(selectors, "_containing", lambda *args: opened.append(1) or containing(*args))
    with tenant_context(world.tenant_a):
        label_grant_create(office=world.office_a, target_kind="department", target="営業部", labels=["roster_viewer"],
                           scope_="department", acting_user=world.admin_a)  # fmt: skip
        sales = user_create(email="sales@a.example", role=Role.EMPLOYEE, tenant=world.tenant_a,
                            password=TEST_PASSWORD, member=world.roster_a[1])  # fmt: skip
        first = selectors.members_search(user=world.admin_a, query="山田", search_id=token)
        again = selectors.members_search(user=world.admin_a, query="山田", search_id=token, page=1)
        assert [m.name for m in first.page] == [m.name for m in again.page] == ["山田 太郎", "山田 花子"]
        assert len(opened) == 1  # the second read used the kept ids
        # Another user with the same token keeps nothing of the first one's: their own scope, opened anew.
        assert [m.name for m in selectors.members_search(user=sales, query="山田", search_id=token).page] == [
            "山田 太郎"
        ]
        assert len(opened) == 2
        people["taro"].department = None  # moved out of 営業部 after the search
        people["taro"].save()
        assert [m.name for m in selectors.members_search(user=sales, query="山田", search_id=token).page] == []
