"""Pages with personal or health data are never kept by a browser's cache (a shared PC's back button) or
a proxy: every response to a signed-in user, or that sets or depends on the session, is ``no-store``."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory

from healthapp.middleware import PrivateNoStoreMiddleware
from tenants.context import tenant_context
from tests.checkups import test_checkup_pages as checkup_pages
from tests.conftest import TEST_PASSWORD, log_in

clinic = checkup_pages.clinic  # the fixture: an employee with checkups, physician doc@, HR hr@


def _signed_in(email: str, password: str = checkup_pages.STAFF_PASSWORD) -> Client:
    client = Client()
    assert log_in(client, email, password).status_code == 302
    return client


def _no_store(response: HttpResponse) -> bool:
    directives = {part.strip() for part in response.get("Cache-Control", "").split(",")}
    return {"no-store", "private"} <= directives


def test_pages_and_api_with_personal_or_health_data_are_not_stored(world, clinic):
    employee = _signed_in("member@a.example", TEST_PASSWORD)
    doc, hr = _signed_in("doc@a.example"), _signed_in("hr@a.example")
    with tenant_context(world.tenant_a):
        member_id = world.roster_a[1].pk
    responses = {
        "mine": employee.get("/checkups/mine/"),
        "review": doc.get(f"/checkups/review/{clinic['record'].pk}/"),
        "queue": doc.get("/checkups/review/"),
        "roster": hr.get("/roster/"),
        "roster member": hr.get(f"/roster/{member_id}/"),
        "api me": employee.get("/api/v1/me/"),
        "api 404": employee.get("/api/v1/no-such-thing/"),
    }
    assert {name: r.status_code for name, r in responses.items()} == {
        **{name: 200 for name in responses},
        "api 404": 404,
    }
    assert [name for name, r in responses.items() if not _no_store(r)] == []


def test_the_audit_viewer_is_not_stored_and_the_export_keeps_its_own_header(world):
    admin = _signed_in("admin@a.example", TEST_PASSWORD + "!x")
    assert _no_store(admin.get("/audit/"))
    exported = admin.post("/audit/export/", {"since": "2026-01-01", "until": "2026-01-01", "format": "csv"})
    assert exported["Cache-Control"] == "no-store"  # set by audit.views.export: left as it is


def test_the_login_page_which_sets_the_csrf_cookie_stays_never_cache(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200 and _no_store(response)


@pytest.mark.parametrize("signed_in", [False, True])
def test_static_files_stay_cacheable(client, world, signed_in):
    if signed_in:
        assert log_in(client, "member@a.example", TEST_PASSWORD).status_code == 302
    response = client.get("/static/css/app.css")
    assert response.status_code == 200
    assert "no-store" not in response.get("Cache-Control", "") and "private" not in response.get("Cache-Control", "")


def _run(request: HttpRequest, view: Callable[[HttpRequest], HttpResponse]) -> HttpResponse:
    return PrivateNoStoreMiddleware(view)(request)


def test_an_anonymous_response_that_neither_reads_nor_sets_the_session_is_left_alone():
    request = RequestFactory().get("/healthz")
    request.user = AnonymousUser()
    assert "Cache-Control" not in _run(request, lambda r: HttpResponse("ok"))


def test_a_response_setting_a_cookie_or_varying_on_it_is_not_stored():
    factory = RequestFactory()

    def sets_cookie(request: HttpRequest) -> HttpResponse:
        response = HttpResponse("ok")
        response.set_cookie("healthapp_session", "x")
        return response

    def varies(request: HttpRequest) -> HttpResponse:
        response = HttpResponse("ok")
        response["Vary"] = "Accept-Language, Cookie"
        return response

    assert _no_store(_run(factory.get("/"), sets_cookie))
    assert _no_store(_run(factory.get("/"), varies))
    assert _no_store(_run(factory.get("/", HTTP_AUTHORIZATION="Bearer t"), lambda r: HttpResponse("ok")))
