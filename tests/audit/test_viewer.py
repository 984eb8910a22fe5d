"""The audit log page and the disclosure export, as an HR admin, an employee and an outsider see them."""

from __future__ import annotations

import csv
import io
import json
import re
import zoneinfo
from pathlib import Path

import pytest
from django.utils import timezone

import audit
from audit.actions import ACTION_LABELS
from tenants.context import tenant_context
from tests.conftest import TEST_PASSWORD, log_in

from .conftest import events_of

ADMIN_PASSWORD = TEST_PASSWORD + "!x"
JST = zoneinfo.ZoneInfo("Asia/Tokyo")


@pytest.fixture
def admin_client(client, world):
    assert log_in(client, "admin@a.example", ADMIN_PASSWORD).status_code == 302
    return client


def test_admin_sees_own_tenants_events_in_jst_and_none_of_another_tenant(admin_client, world):
    with tenant_context(world.tenant_b):
        audit.record(action="checkup.viewed", target_type="checkup", target_id=424242)
    page = admin_client.get("/audit/").content.decode()
    (login,) = events_of(world.tenant_a, action="auth.login.succeeded")
    assert f"{login.occurred_at.astimezone(JST):%Y-%m-%d %H:%M:%S} JST" in page
    assert "ログイン成功" in page and "auth.login.succeeded" in page
    assert "424242" not in page


@pytest.mark.parametrize("email", ["member@a.example", "outsider@b.example"])
def test_an_employee_gets_404_and_an_outsider_only_their_own_tenant(client, world, email):
    password = TEST_PASSWORD if email.startswith("member") else ADMIN_PASSWORD
    log_in(client, email, password)
    response = client.get("/audit/")
    if email.startswith("member"):
        assert response.status_code == 404
        assert client.post("/audit/export/", {"since": "2020-01-01", "until": "2020-01-02"}).status_code == 404
    else:
        assert response.status_code == 200
        assert f"#{world.admin_a.pk} " not in response.content.decode()


def test_the_nav_link_shows_only_for_viewers(client, world):
    log_in(client, "member@a.example", TEST_PASSWORD)
    assert 'data-testid="nav-audit"' not in client.get("/").content.decode()
    client.logout()
    log_in(client, "admin@a.example", ADMIN_PASSWORD)
    assert 'data-testid="nav-audit"' in client.get("/").content.decode()


def test_filter_by_action_prefix_actor_and_target(admin_client, world):
    with tenant_context(world.tenant_a):
        audit.record(action="member.viewed", target_type="member", target_id=31, actor=world.admin_a)
        audit.record(action="member.viewed", target_type="member", target_id=32, actor=world.member_a)
    page = admin_client.get("/audit/", {"action": "member."}).content.decode()
    assert page.count('data-action="member.viewed"') == 2 and 'data-action="auth.' not in page
    page = admin_client.get("/audit/", {"actor": world.member_a.pk, "action": "member."}).content.decode()
    assert "member #32" in page and "member #31" not in page
    page = admin_client.get("/audit/", {"target_type": "member", "target_id": "31"}).content.decode()
    assert page.count('data-testid="audit-event"') == 1


def test_a_bad_filter_shows_its_error_and_no_unfiltered_list(admin_client, world):
    with tenant_context(world.tenant_a):
        audit.record(action="member.viewed", target_type="member", target_id=31, actor=world.admin_a)
    for query in ({"actor": "abc"}, {"since": "2026-12-02", "until": "2026-12-01"}):
        page = admin_client.get("/audit/", query).content.decode()
        assert 'data-testid="filter-invalid"' in page and 'data-testid="audit-event"' not in page, query
    assert "終了日は開始日以降にしてください。" in page  # said as the export says it, not "no records"


def test_keyset_pages_cover_everything_once_newest_first_at_constant_cost(
    admin_client, world, django_assert_max_num_queries
):
    with tenant_context(world.tenant_a):
        for i in range(120):
            audit.record(action="member.viewed", target_type="member", target_id=1000 + i)
    seen, url, queries = [], "/audit/?action=member.viewed", []
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    while url:
        with CaptureQueriesContext(connection) as ctx:
            response = admin_client.get(url)
        queries.append(len(ctx.captured_queries))
        page = response.content.decode()
        seen += [int(x) for x in __import__("re").findall(r"member #(\d+)", page)]
        marker = 'data-testid="next-page" href="'
        url = ("/audit/" + page.split(marker)[1].split('"')[0].replace("&amp;", "&")) if marker in page else ""
    assert seen == list(range(1119, 999, -1))
    assert len(queries) == 3 and len(set(queries)) == 1  # page 3 costs what page 1 costs


def test_csv_export_is_formula_safe_and_is_itself_recorded(admin_client, world):
    with tenant_context(world.tenant_a):
        audit.record(
            action="roster.imported",
            target_type="upload",
            target_id='=HYPERLINK("x")',
            details={"file": "+cmd|' /C calc'!A0"},
        )
    today = timezone.localdate()
    response = admin_client.post("/audit/export/", {"since": today, "until": today, "format": "csv"})
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="audit-')
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    imported = next(r for r in rows if r["action"] == "roster.imported")
    assert imported["target_id"] == '\'=HYPERLINK("x")'
    assert json.loads(imported["details"]) == {"file": "+cmd|' /C calc'!A0"}  # JSON text starts with "{"
    assert imported["occurred_at_jst"].endswith("+09:00")
    (exported,) = events_of(world.tenant_a, action="audit.exported")
    assert exported.actor_id == world.admin_a.pk
    assert exported.details == {"format": "csv", "since": str(today), "until": str(today), "events": len(rows)}


def test_jsonl_export_lines_carry_seq_and_hashes(admin_client, world):
    today = timezone.localdate()
    response = admin_client.post("/audit/export/", {"since": today, "until": today, "format": "jsonl"})
    lines = [json.loads(line) for line in response.content.decode().splitlines()]
    stored = {e.seq: e.hash for e in events_of(world.tenant_a)}
    assert lines and all(stored[line["seq"]] == line["hash"] for line in lines)


def test_reads_of_checkups_show_who_and_when_but_not_whose_to_readers_without_checkup_access(
    admin_client, client, world
):
    """Which records a physician opens or finds in the queue (graded C or worse) says something about the
    grades: HR and log auditors see the read, not the records; whoever may see checkups sees them."""
    from accounts.models import Role
    from accounts.services import label_grant_create, member_create, user_create

    with tenant_context(world.tenant_a):
        audit.record(action="checkup.queue_viewed", target_type="checkup", details={"page": 1, "records": [71, 72]})
        audit.record(action="checkup.viewed", target_type="checkup", target_id=77)
        audit.record(action="member.viewed", target_type="member", target_id=78)
    page = admin_client.get("/audit/", {"action": "checkup."}).content.decode()  # 組織管理者: no checkup access
    assert page.count('data-testid="withheld"') == 2 and "#77" not in page
    assert "member #78" in admin_client.get("/audit/").content.decode()  # other events as they are
    probe = admin_client.get("/audit/", {"target_type": "checkup", "target_id": "77"}).content.decode()
    assert 'data-testid="audit-event"' not in probe  # "was record 77 read?" cannot be asked either
    today = timezone.localdate()
    lines = admin_client.post("/audit/export/", {"since": today, "until": today, "format": "jsonl"})
    exported = {row["action"]: row for row in map(json.loads, lines.content.decode().splitlines())}
    assert exported["checkup.queue_viewed"]["details"] == {} and exported["checkup.viewed"]["target_id"] == ""
    assert exported["member.viewed"]["target_id"] == "78"
    with tenant_context(world.tenant_a):  # a log auditor who is also 保健師 may see checkups: sees all
        nurse = member_create(employee_number="AUD-1", name="監査 保健師", office=world.office_a)
        user_create(email="nurse@a.example", role=Role.HR_ADMIN, tenant=world.tenant_a, password=ADMIN_PASSWORD,
                    member=nurse)  # fmt: skip
        label_grant_create(office=world.office_a, target_kind="employee", target="AUD-1",
                           labels=["auditor", "health_staff"], scope_="tenant", acting_user=world.admin_a)  # fmt: skip
    client.logout()
    assert log_in(client, "nurse@a.example", ADMIN_PASSWORD).status_code == 302
    page = client.get("/audit/", {"action": "checkup."}).content.decode()
    assert "checkup #77" in page and 'data-testid="withheld"' not in page


def test_a_follow_up_a_person_reported_themself_does_not_name_them_to_readers_without_checkup_access(
    admin_client, world
):
    """「受診しました」 says the physician asked that person to see a doctor: a log auditor without checkup
    access sees that it happened, not who (nor from where), cannot ask "did person X report one?", and sees
    which records HR's 就業判定 page listed no more than which the queue did."""
    employee, hr = world.member_a, world.admin_a
    with tenant_context(world.tenant_a):
        audit.record(action="checkup.follow_up_recorded", target_type="checkup", target_id=91,
                     details={"visit": 5, "replaces": None, "by_self": True}, actor=employee)  # fmt: skip
        audit.record(action="checkup.follow_up_recorded", target_type="checkup", target_id=92,
                     details={"visit": 6, "replaces": None, "by_self": False}, actor=hr)  # fmt: skip
        audit.record(action="checkup.conclusions_viewed", target_type="checkup",
                     details={"show": "pending", "records": [93, 94]}, actor=hr)  # fmt: skip
    page = admin_client.get("/audit/", {"action": "checkup."}).content.decode()
    assert page.count('data-testid="withheld"') == 3 and "checkup #91" not in page and "checkup #92" not in page
    assert page.count('data-testid="actor-withheld"') == 1 and f"#{employee.pk} " not in page
    assert f"#{hr.pk} " in page  # HR recording a visit for someone: who recorded it stays
    probe = admin_client.get("/audit/", {"actor": employee.pk, "action": "checkup."}).content.decode()
    assert 'data-testid="audit-event"' not in probe
    today = timezone.localdate()
    lines = admin_client.post("/audit/export/", {"since": today, "until": today, "format": "jsonl"})
    reported = [row for row in map(json.loads, lines.content.decode().splitlines())
                if row["action"] == "checkup.follow_up_recorded"]  # fmt: skip
    assert [(row["actor_id"], row["target_id"], row["details"]) for row in reported] == [
        (None, "", {}),
        (hr.pk, "", {}),
    ], reported  # oldest first


def test_an_export_period_ending_before_it_starts_is_refused(admin_client, world):
    response = admin_client.post("/audit/export/", {"since": "2026-02-01", "until": "2026-01-01", "format": "csv"})
    assert response.status_code == 400
    assert events_of(world.tenant_a, action="audit.exported") == []


def test_the_page_is_in_english_when_chosen(admin_client, settings):
    admin_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    page = admin_client.get("/audit/").content.decode()
    assert "Audit log" in page and "Login succeeded" in page and "Time (JST)" in page


def test_every_action_the_code_records_has_a_name_in_the_viewer():
    """An HR admin reading the log sees 「ログイン成功」, not ``auth.login.succeeded``: every action
    recorded anywhere in the code base (literal names and the rate-limit scopes) has a label."""
    root = Path(__file__).resolve().parents[2]
    recorded = set()
    for path in (p for app in root.iterdir() if (app / "apps.py").exists() for p in app.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        recorded |= set(re.findall(r'action="([a-z_]+(?:\.[a-z_]+)+)"', text))
        for scope in re.findall(r'_check_rate\(scope="([a-z_]+)"', text):
            recorded.add(f"auth.{scope}.rate_limited")
    assert {"auth.login.succeeded", "checkup.judged", "auth.registration.rate_limited"} <= recorded
    assert sorted(recorded - set(ACTION_LABELS)) == []


def test_an_import_job_is_named_as_its_pages_name_it(admin_client, world):
    """Job events carry the job's global id; the log shows 名簿の取り込み #n, the tenant's own count, beside it."""
    import io as _io

    from healthapp import jobs

    with tenant_context(world.tenant_a):
        job = jobs.job_create(kind="roster", upload=_io.BytesIO(b"a\n1\n"), file_name="r.csv", max_bytes=10**6,
                              options={}, acting_user=None)  # fmt: skip
        audit.record(action="roster.imported", target_type="job", target_id=job.pk, details={"rows": 1})
    assert job.number == 1
    page = admin_client.get("/audit/?target_type=job").content.decode()
    label = re.search(r'data-testid="job-label">([^<]+)</span> <span class="muted">([^<]+)<', page)
    assert label and label.groups() == ("名簿の取り込み #1", f"（ID {job.pk}）")
