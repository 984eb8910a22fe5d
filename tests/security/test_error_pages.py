"""A refused action and a form sent without its CSRF token get the site's own pages, in the user's language,
with no internals (Django's bare 403 was English; its CSRF page pointed at DEBUG=True)."""

from __future__ import annotations

from django.test import Client

from tests.conftest import TEST_PASSWORD, log_in


def test_a_refused_page_is_the_sites_own_in_japanese_and_english(world):
    client = Client()
    log_in(client, "member@a.example", TEST_PASSWORD)
    page = client.get("/settings/allowlist/")
    body = page.content.decode()
    assert page.status_code == 403 and 'data-testid="forbidden"' in body and "この操作はできません" in body
    assert "403 Forbidden" not in body
    client.cookies["django_language"] = "en"
    assert "You cannot do this" in client.get("/settings/allowlist/").content.decode()


def test_a_form_sent_without_its_token_says_what_to_do_and_nothing_of_debug(world):
    client = Client(enforce_csrf_checks=True)
    page = client.post("/accounts/login/", {"username": "member@a.example", "password": "x"})
    body = page.content.decode()
    assert page.status_code == 403 and 'data-testid="csrf-failure"' in body and "もう一度送信してください" in body
    assert "DEBUG" not in body and 'lang="ja"' in body
