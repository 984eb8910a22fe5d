"""The API gives the same answers as the pages, through the same services and policy."""

import pytest
from django.test import Client

from accounts.api import TenantScopedViewSet
from accounts.models import LabelGrant, TeamMembership
from tenants.context import tenant_context
from tests.conftest import TEST_PASSWORD, log_in


@pytest.fixture
def admin(world):
    client = Client()
    log_in(client, "admin@a.example", TEST_PASSWORD + "!x")
    return client


def test_grants_api_create_change_delete(admin, world):
    created = admin.post(
        "/api/v1/grants/",
        {"office": world.office_a.pk, "target_kind": "department", "target": "営業部", "labels": ["roster_viewer"],
         "scope": "department"},
        content_type="application/json",
    )  # fmt: skip
    assert created.status_code == 201, created.content
    grant_id = created.json()["id"]
    assert created.json()["target"] == "営業部"
    changed = admin.patch(f"/api/v1/grants/{grant_id}/", {"scope": "office"}, content_type="application/json")
    assert changed.status_code == 200 and changed.json()["scope"] == "office"
    assert [g["id"] for g in admin.get(f"/api/v1/grants/?office={world.office_a.pk}").json()["results"]] == [grant_id]
    assert admin.delete(f"/api/v1/grants/{grant_id}/").status_code == 204
    with tenant_context(world.tenant_a):
        assert not LabelGrant.objects.exists()


def test_grants_api_errors_have_one_shape(admin, world):
    bad = admin.post(
        "/api/v1/grants/",
        {"office": world.office_a.pk, "target_kind": "employee", "target": "NOPE", "labels": ["auditor"],
         "scope": "self"},
        content_type="application/json",
    )  # fmt: skip
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "unknown_employee"
    invalid = admin.post("/api/v1/grants/", {"office": world.office_a.pk}, content_type="application/json")
    assert invalid.status_code == 400 and invalid.json()["error"]["code"] == "invalid"
    foreign_office = admin.post(
        "/api/v1/grants/",
        {"office": 999999, "target_kind": "employee", "target": "A1", "labels": ["auditor"], "scope": "self"},
        content_type="application/json",
    )
    assert foreign_office.status_code == 404


def test_teams_api_flow(world):
    creator, joiner = Client(), Client()
    log_in(creator, "member@a.example", TEST_PASSWORD)
    log_in(joiner, "admin@a.example", TEST_PASSWORD + "!x")
    team = creator.post(
        "/api/v1/teams/",
        {"name": "API部", "description": "", "join_policy": "approval", "display_name": "部長"},
        content_type="application/json",
    ).json()
    assert "display_name" not in team  # the team's members are not listed by the API
    nameless = joiner.post(f"/api/v1/teams/{team['id']}/join/", {}, content_type="application/json")
    assert nameless.status_code == 400
    taken = joiner.post(f"/api/v1/teams/{team['id']}/join/", {"display_name": "部長"}, content_type="application/json")
    assert taken.status_code == 400 and taken.json()["error"]["code"] == "display_name_taken"
    joined = joiner.post(f"/api/v1/teams/{team['id']}/join/", {"display_name": "新人"}, content_type="application/json")
    assert joined.status_code == 200
    with tenant_context(world.tenant_a):
        pending = TeamMembership.objects.get(team_id=team["id"], user=world.admin_a)
    denied = joiner.post(
        f"/api/v1/teams/{team['id']}/decide/",
        {"membership": pending.pk, "approve": True},
        content_type="application/json",
    )
    assert denied.status_code == 400 and denied.json()["error"]["code"] == "not_team_admin"
    ok = creator.post(
        f"/api/v1/teams/{team['id']}/decide/",
        {"membership": pending.pk, "approve": True},
        content_type="application/json",
    )
    assert ok.status_code == 200
    with tenant_context(world.tenant_a):
        assert TeamMembership.objects.get(pk=pending.pk).status == "member"


def test_member_list_api_does_not_grow_queries_with_rows(admin, world, django_assert_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from accounts.services import member_create

    with CaptureQueriesContext(connection) as small:
        assert admin.get("/api/v1/members/").json()["count"] == 3
    with tenant_context(world.tenant_a):
        for i in range(7):
            member_create(
                employee_number=f"N{i}", name=f"追加 {i}", office=world.office_a, department=world.department_a
            )
    with django_assert_num_queries(len(small.captured_queries)):
        assert len(admin.get("/api/v1/members/").json()["results"]) == 10


def test_the_api_base_class_cannot_be_bypassed():
    with pytest.raises(TypeError, match="must not override"):

        class Sneaky(TenantScopedViewSet):
            permission = "member.view"

            def get_queryset(self):  # pragma: no cover - never reached
                return None

    with pytest.raises(TypeError, match="must name the permission"):

        class Careless(TenantScopedViewSet):
            pass


def test_openapi_schema_lists_grants_teams_and_members(admin):
    schema = admin.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    for path in ("/api/v1/grants/", "/api/v1/teams/{id}/decide/", "/api/v1/members/{id}/"):
        assert path in schema


def test_lists_come_in_pages(admin, world):
    """A roster of 100,000 is never answered whole: ``{count, next, previous, results}``, a page at a time
    (``page_size``), in a stable order."""
    first = admin.get("/api/v1/members/?page_size=2").json()
    assert first["count"] == 3 and len(first["results"]) == 2 and first["previous"] is None
    assert "page=2" in first["next"] and "page_size=2" in first["next"]
    second = admin.get("/api/v1/members/?page_size=2&page=2").json()
    assert len(second["results"]) == 1 and second["next"] is None
    ids = [m["id"] for m in first["results"] + second["results"]]
    assert ids == sorted(ids) and len(set(ids)) == 3  # every entry once, none twice across pages
    beyond = admin.get("/api/v1/members/?page=9")
    assert beyond.status_code == 404 and beyond.json()["error"]["code"] == "invalid_page"
