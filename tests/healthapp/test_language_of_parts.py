"""Language of parts (WCAG 3.1.2): on an English page, what people typed in Japanese (names, offices,
departments, an opinion's text) is marked lang="ja", so that a screen reader reads it with Japanese rules
instead of spelling it out; on a Japanese page nothing needs marking."""

from __future__ import annotations

import re

import pytest
from django.template import Context, Template
from django.utils import translation

from tests.checkups.test_checkup_pages import _client, clinic  # noqa: F401  (the fixture)

pytestmark = pytest.mark.usefixtures("private_storage")


def _render(value: str, language: str) -> str:
    with translation.override(language):
        return Template("{{ value|ja }}").render(Context({"value": value}))


def test_japanese_text_is_marked_on_english_pages_only_and_stays_escaped():
    assert _render("山田 太郎", "en") == '<span lang="ja">山田 太郎</span>'
    assert _render("ヤマダ", "en") == '<span lang="ja">ヤマダ</span>'
    assert _render("ＡＢＣ商事", "en") == '<span lang="ja">ＡＢＣ商事</span>'  # full-width forms
    assert _render("山田 太郎", "ja") == "山田 太郎"
    assert _render("Sales", "en") == "Sales"  # nothing Japanese: the page's own language is right
    assert _render("<b>山田</b>", "en") == '<span lang="ja">&lt;b&gt;山田&lt;/b&gt;</span>'
    assert _render("<b>山田</b>", "ja") == "&lt;b&gt;山田&lt;/b&gt;"


def test_text_rendered_without_autoescaping_gets_no_markup():
    """A plain-text template (a mail body) has no HTML to mark a language in: the name as typed."""
    with translation.override("en"):
        text = Template("{% autoescape off %}{{ value|ja }}{% endautoescape %}").render(Context({"value": "<山田>"}))
    assert text == "<山田>"


def _english(email: str):
    client = _client(email)
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    return client


def test_names_on_the_english_pages_are_marked_japanese(world, clinic):  # noqa: F811
    from accounts.models import Role
    from checkups.services import physician_opinion_record
    from tenants.context import tenant_context

    with tenant_context(world.tenant_a):
        doctor = type(clinic["doc"]).objects.get(pk=clinic["doc"].pk)
        assert doctor.role == Role.PHYSICIAN
        physician_opinion_record(record=clinic["record"], fitness="normal", follow_up="recheck", restrictions=[],
                                 opinion="残業を控える。\n三か月後に再検査。", acting_user=doctor)  # fmt: skip
    conclusions = _english("hr@a.example").get("/checkups/conclusions/").content.decode()
    assert '<html lang="en">' in conclusions
    assert '<span lang="ja">甲野 0</span>' in conclusions
    review = _english("doc@a.example").get(f"/checkups/review/{clinic['record'].pk}/").content.decode()
    assert re.search(r'<h1><span lang="ja">甲野 0</span>', review)
    assert '<span lang="ja">残業を控える。<br>三か月後に再検査。</span>' in review  # line breaks kept
    roster = _english("hr@a.example").get("/roster/").content.decode()
    assert '<span lang="ja">甲野 0</span>' in roster

    japanese = _client("hr@a.example").get("/checkups/conclusions/").content.decode()
    assert '<html lang="ja">' in japanese and "甲野 0" in japanese
    assert 'lang="ja">甲野' not in japanese  # the whole page is Japanese already


def test_a_teams_description_and_the_grant_forms_office_are_marked_japanese(client, world, settings):
    from accounts.services import team_create
    from tenants.context import tenant_context
    from tests.conftest import TEST_PASSWORD, log_in

    with tenant_context(world.tenant_a):
        team = team_create(name="歩こう会", description="昼休みに歩きます。\n誰でもどうぞ。", join_policy="open",
                           display_name="かめ", acting_user=world.admin_a)  # fmt: skip
    assert log_in(client, "admin@a.example", TEST_PASSWORD + "!x").status_code == 302
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    page = client.get(f"/teams/{team.pk}/").content.decode()
    assert '<span lang="ja">昼休みに歩きます。<br>誰でもどうぞ。</span>' in page
    form = client.get(f"/settings/access/office/{world.office_a.pk}/new/").content.decode()
    assert re.search(r'<h1>Grant labels\s*\(<span lang="ja">東京本社</span>\)</h1>', form), form[:3000]
