"""事後措置の実施状況: recording that a follow-up visit happened (HR in scope, or the person themself),
its status and due date on 就業判定の確認, and the completion rate on 健診の集計."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import Role
from accounts.services import label_grant_create, member_create, user_create
from audit.models import AuditEvent
from checkups import selectors
from checkups.models import CheckupRecord, FollowUpVisit, PhysicianOpinion
from checkups.services import (
    checkup_judge,
    checkup_record_save,
    follow_up_visit_record,
    follow_up_visit_undo,
    physician_opinion_record,
)
from healthapp.errors import AppError
from tenants.context import tenant_context
from tenants.services import office_create
from tests.conftest import TEST_PASSWORD, log_in

STAFF_PASSWORD = TEST_PASSWORD + "!x"
EXAM = dt.date(2025, 5, 20)
VALUES = {"systolic": D("162"), "diastolic": D("92"), "ldl": D("150"), "hba1c": D("5.8")}


def _staff(world, key: str, role: str, label: str, scope: str):
    """A login in 東京本社/営業部 holding ``label`` with ``scope``."""
    member = member_create(
        employee_number=f"S-{key}", name=f"職員 {key}", office=world.office_a, department=world.department_a
    )
    user = user_create(email=f"{key}@a.example", role=role, tenant=world.tenant_a, password=STAFF_PASSWORD,
                       member=member)  # fmt: skip
    label_grant_create(office=world.office_a, target_kind="employee", target=f"S-{key}", labels=[label],
                       scope_=scope, acting_user=world.admin_a)  # fmt: skip
    return user


def _checkup(member, exam_date=EXAM) -> CheckupRecord:
    record = checkup_record_save(member=member, exam_date=exam_date, program="regular", values=VALUES)
    checkup_judge(record=record)
    return record


@pytest.fixture
def ward(world):
    """The employee (営業部) and a person in 札幌支店 each with a 2025 checkup the physician asked a
    follow-up for; a physician, an HR person for 営業部 only and one for the whole tenant."""
    with tenant_context(world.tenant_a):
        doc = _staff(world, "doc", Role.PHYSICIAN, "physician", "tenant")
        hr = _staff(world, "hr", Role.HR_ADMIN, "hr_staff", "department")
        hr_all = _staff(world, "hrall", Role.HR_ADMIN, "hr_staff", "tenant")
        patient = world.roster_a[0]  # member@a.example
        far = member_create(employee_number="O-1", name="他 事業所", office=office_create(name="札幌支店"))
        record, far_record = _checkup(patient), _checkup(far)
        for each, follow_up in ((record, "recheck"), (far_record, "consult")):
            physician_opinion_record(record=each, fitness="normal", follow_up=follow_up, opinion="", restrictions=[],
                                     acting_user=doc)  # fmt: skip
    return {"doc": doc, "hr": hr, "hr_all": hr_all, "record": record, "far_record": far_record}


def _client(email, password=STAFF_PASSWORD) -> Client:
    client = Client()
    assert log_in(client, email, password).status_code == 302
    return client


def _state(record: CheckupRecord, today: dt.date | None = None) -> selectors.FollowUpState | None:
    fresh = (
        CheckupRecord.objects.prefetch_related(selectors._opinions_newest_first(), selectors._visits_newest_first())
        .get(pk=record.pk)
    )  # fmt: skip
    return selectors.follow_up_state(fresh, today=today)


# --- services --------------------------------------------------------------------------------------


def test_recording_correcting_and_undoing_append_rows_and_are_audited(world, ward):
    record, hr = ward["record"], ward["hr"]
    with tenant_context(world.tenant_a):
        assert _state(record).visit is None
        first = follow_up_visit_record(record=record, visited_on=dt.date(2025, 7, 1), acting_user=hr)
        corrected = follow_up_visit_record(record=record, visited_on=dt.date(2025, 7, 2), acting_user=hr)
        assert _state(record).visit.visited_on == dt.date(2025, 7, 2)
        follow_up_visit_undo(record=record, acting_user=hr)
        state = _state(record)
        assert state.visit is None  # back to 未受診
        assert [(v.status, v.visited_on) for v in state.history] == [
            ("undone", None), ("done", dt.date(2025, 7, 2)), ("done", dt.date(2025, 7, 1))
        ]  # fmt: skip
        assert FollowUpVisit.objects.get(pk=first.pk).visited_on == dt.date(2025, 7, 1)  # never updated
        assert all(v.recorded_by_id == hr.pk and not v.by_self for v in state.history)
        events = list(
            AuditEvent.objects.filter(action__startswith="checkup.follow_up", target_id=str(record.pk)).order_by("seq")
        )
    assert [e.action for e in events] == ["checkup.follow_up_recorded"] * 2 + ["checkup.follow_up_undone"]
    salted = {name: value for name, value in events[1].details.items() if name != "nonce"}
    assert salted == {"visit": corrected.pk, "replaces": first.pk, "by_self": False}
    unsalted = [{k: v for k, v in e.details.items() if k != "nonce"} for e in events]  # a random hex may hold "2025"
    assert all(e.actor_id == hr.pk for e in events) and "2025" not in str(unsalted)  # no visit date, no names


def test_a_visit_needs_a_follow_up_and_a_sensible_date(world, ward):
    record, hr, doc = ward["record"], ward["hr"], ward["doc"]
    with tenant_context(world.tenant_a):
        with pytest.raises(AppError, match="未来"):
            follow_up_visit_record(
                record=record, visited_on=timezone.localdate() + dt.timedelta(days=1), acting_user=hr
            )
        with pytest.raises(AppError, match="健診の受診日以降"):
            follow_up_visit_record(record=record, visited_on=EXAM - dt.timedelta(days=1), acting_user=hr)
        with pytest.raises(AppError, match="取り消す受診の記録がありません"):
            follow_up_visit_undo(record=record, acting_user=hr)
        physician_opinion_record(
            record=record, fitness="normal", follow_up="none", opinion="", restrictions=[], acting_user=doc
        )  # fmt: skip  (the physician withdrew the follow-up)
        with pytest.raises(AppError, match="事後措置の指示がありません"):
            follow_up_visit_record(record=record, visited_on=dt.date(2025, 7, 1), acting_user=hr)
        assert _state(record) is None
        assert not FollowUpVisit.objects.exists()


def test_due_date_counts_from_the_first_opinion_asking_and_comes_from_settings(world, ward, settings):
    record, doc = ward["record"], ward["doc"]
    with tenant_context(world.tenant_a):
        PhysicianOpinion.objects.filter(record=record).update(signed_at=dt.datetime(2025, 6, 10, 3, tzinfo=dt.UTC))
        physician_opinion_record(
            record=record, fitness="normal", follow_up="detailed", opinion="追記", restrictions=[], acting_user=doc
        )  # fmt: skip  (an edit today)
        state = _state(record, today=dt.date(2025, 9, 11))
        assert (state.kind, state.due, state.overdue) == ("detailed", dt.date(2025, 9, 10), True)
        assert _state(record, today=dt.date(2025, 9, 10)).overdue is False
        settings.CHECKUP_FOLLOW_UP_DUE_MONTHS = 6
        assert _state(record, today=dt.date(2025, 9, 11)).due == dt.date(2025, 12, 10)
        follow_up_visit_record(record=record, visited_on=dt.date(2025, 9, 1), acting_user=ward["hr"])
        assert _state(record, today=dt.date(2026, 1, 1)).overdue is False  # done is never overdue


# --- permission and scope --------------------------------------------------------------------------


def test_hr_records_a_visit_on_the_conclusions_page(world, ward):
    record = ward["record"]
    with tenant_context(world.tenant_a):
        PhysicianOpinion.objects.filter(record=record).update(signed_at=dt.datetime(2025, 6, 1, 3, tzinfo=dt.UTC))
    hr = _client("hr@a.example")
    cell = hr.get("/checkups/conclusions/").content.decode().split(f'data-testid="follow-up-{record.pk}"')[1]
    cell = cell.split("</td>")[0]
    assert "未受診" in cell and "期限超過" in cell and "2025-09-01" in cell  # 3 months after the opinion
    response = hr.post(f"/checkups/conclusions/{record.pk}/follow-up/", {"visited_on": "2025-07-03"})
    assert response.status_code == 302 and response.url == "/checkups/conclusions/"
    page = hr.get("/checkups/conclusions/").content.decode()
    cell = page.split(f'data-testid="follow-up-{record.pk}"')[1].split("</td>")[0]
    assert "受診済み（2025-07-03）" in cell and "期限超過" not in cell and "受診を記録しました。" in page
    # Taking it back asks first (a second button inside 記録を取り消す), naming the visit it withdraws.
    assert "2025-07-03 の受診の記録を取り消して「未受診」に戻します。よろしいですか？" in cell
    hr.post(f"/checkups/conclusions/{record.pk}/follow-up/", {"undo": "1"})
    cell = hr.get("/checkups/conclusions/").content.decode().split(f'data-testid="follow-up-{record.pk}"')[1]
    assert "未受診" in cell.split("</td>")[0] and "取り消し" in cell.split("</td>")[0]  # history kept
    # A refused date is shown at the form's address, whose pager, filter and language switch come back to it
    # by GET: on to the list, their query kept (not a blank 405).
    back = hr.get(f"/checkups/conclusions/{record.pk}/follow-up/?show=follow_up&page=2")
    assert back.status_code == 302 and back.url == "/checkups/conclusions/?show=follow_up&page=2"
    assert hr.get(f"/checkups/conclusions/{record.pk}/follow-up/", follow=True).status_code == 200


def test_out_of_scope_foreign_tenant_and_unpermitted_users_get_404(world, ward):
    far_record = ward["far_record"]
    hr = _client("hr@a.example")  # 営業部 only
    assert hr.post(f"/checkups/conclusions/{far_record.pk}/follow-up/", {"visited_on": "2025-07-03"}).status_code == 404
    outsider = _client("outsider@b.example")  # org admin of tenant B: view_conclusion, other tenant
    url = f"/checkups/conclusions/{ward['record'].pk}/follow-up/"
    assert outsider.post(url, {"visited_on": "2025-07-03"}).status_code == 404
    employee = _client("member@a.example", TEST_PASSWORD)  # no checkup.view_conclusion
    assert employee.post(url, {"visited_on": "2025-07-03"}).status_code == 404
    with tenant_context(world.tenant_b):
        foreign = CheckupRecord.objects.get()  # tenant B's own record (tests/conftest.py)
    assert (
        _client("hrall@a.example").post(f"/checkups/conclusions/{foreign.pk}/follow-up/", {"undo": "1"}).status_code
        == 404
    )
    with tenant_context(world.tenant_a):
        assert not FollowUpVisit.objects.exists()
    with tenant_context(world.tenant_b):
        assert FollowUpVisit.objects.count() == 1  # only the row conftest put there


def test_employee_reports_their_own_visit_and_nobody_elses(world, ward):
    record, far_record = ward["record"], ward["far_record"]
    employee = _client("member@a.example", TEST_PASSWORD)
    page = employee.get("/checkups/mine/").content.decode()
    assert "受診しました" in page and "再検査" in page and "受診日を記録してください。" in page
    assert employee.post(f"/checkups/mine/{record.pk}/follow-up/", {"visited_on": "2025-08-01"}).status_code == 302
    page = employee.get("/checkups/mine/").content.decode()
    mine = page.split(f'data-testid="follow-up-{record.pk}"')[1]
    assert "受診済み（2025-08-01）" in mine and "受診日を記録してください。" not in mine  # asked no more
    assert employee.post(f"/checkups/mine/{far_record.pk}/follow-up/", {"visited_on": "2025-08-01"}).status_code == 404
    back = employee.get(f"/checkups/mine/{record.pk}/follow-up/?year=2025")  # the language switch after a refusal
    assert back.status_code == 302 and back.url == "/checkups/mine/?year=2025"
    with tenant_context(world.tenant_a):
        visit = FollowUpVisit.objects.get()
        assert (visit.record_id, visit.by_self, visit.recorded_by_id) == (record.pk, True, world.member_a.pk)
        event = AuditEvent.objects.get(action="checkup.follow_up_recorded")
        assert event.details["by_self"] is True and event.actor_id == world.member_a.pk
    # HR, too, reports through the conclusions page only: /mine/ holds your own records
    hr_all = _client("hrall@a.example")
    assert hr_all.post(f"/checkups/mine/{record.pk}/follow-up/", {"undo": "1"}).status_code == 404
    # and the service itself refuses a colleague who is neither the person nor in scope
    with tenant_context(world.tenant_a):
        colleague = user_create(email="colleague@a.example", role=Role.EMPLOYEE, tenant=world.tenant_a,
                                password=TEST_PASSWORD, member=world.roster_a[1])  # fmt: skip
        from django.http import Http404

        with pytest.raises(Http404):
            follow_up_visit_record(record=record, visited_on=dt.date(2025, 8, 2), acting_user=colleague)


# --- dashboard -------------------------------------------------------------------------------------


def _sales_group_with_follow_ups(world, ward, *, done: int) -> None:
    """Five more people in 営業部 (six with the employee), five with a follow-up asked, ``done`` done."""
    with tenant_context(world.tenant_a):
        records = [ward["record"]]
        for i in range(5):
            person = member_create(employee_number=f"G-{i}", name=f"集計 {i}", office=world.office_a,
                                   department=world.department_a)  # fmt: skip
            records.append(_checkup(person, dt.date(2025, 7, 1)))
        for record in records[1:5]:
            physician_opinion_record(record=record, fitness="normal", follow_up="detailed", opinion="",
                                     restrictions=[], acting_user=ward["doc"])  # fmt: skip
        for record in records[:done]:
            follow_up_visit_record(record=record, visited_on=dt.date(2025, 8, 1), acting_user=ward["hr_all"])


def test_dashboard_shows_the_completion_rate_by_group_and_hides_small_groups(world, ward):
    _sales_group_with_follow_ups(world, ward, done=3)
    with tenant_context(world.tenant_a):  # the one person in 札幌支店 reported too: must stay invisible
        follow_up_visit_record(record=ward["far_record"], visited_on=dt.date(2025, 8, 1), acting_user=ward["hr_all"])
    page = _client("hrall@a.example").get("/checkups/dashboard/").content.decode()
    sales_row = page.split("営業部")[1].split("</tr>")[0]
    assert "60%（3 / 5件）" in sales_row
    sapporo_row = page.split("札幌支店")[1].split("</tr>")[0]
    assert "5人未満のため非表示" in sapporo_row and "100%" not in sapporo_row
    # overall minus 営業部 would give 札幌支店's one person: the overall is hidden as well
    overall = page.split('data-testid="follow-up-overall"')[1].split("</p>")[0]
    assert "非表示" in overall and "%" not in overall


def test_dashboard_overall_rate_when_no_small_group_could_be_worked_out(world, ward):
    _sales_group_with_follow_ups(world, ward, done=1)
    page = _client("hr@a.example").get("/checkups/dashboard/").content.decode()  # scope: 営業部 only
    assert "札幌支店" not in page
    overall = page.split('data-testid="follow-up-overall"')[1].split("</p>")[0]
    assert "20%（1 / 5件）" in overall
    with tenant_context(world.tenant_a):
        follow_up_visit_undo(record=ward["record"], acting_user=ward["hr"])
    overall = _client("hr@a.example").get("/checkups/dashboard/").content.decode()
    assert "0%（0 / 5件）" in overall.split('data-testid="follow-up-overall"')[1].split("</p>")[0]


def test_a_rate_over_fewer_than_five_follow_ups_is_not_shown(world, ward):
    """Six people in 営業部, one follow-up asked (the employee's): 0 / 1 would tell how that one person did."""
    with tenant_context(world.tenant_a):
        for i in range(5):
            person = member_create(employee_number=f"G-{i}", name=f"集計 {i}", office=world.office_a,
                                   department=world.department_a)  # fmt: skip
            _checkup(person, dt.date(2025, 7, 1))
    page = _client("hr@a.example").get("/checkups/dashboard/").content.decode()  # scope: 営業部 only
    sales_row = page.split("営業部")[1].split("</tr>")[0]
    assert 'data-testid="follow-up-suppressed"' in sales_row and "%" not in sales_row.split("follow-up-rate")[1]
    overall = page.split('data-testid="follow-up-overall"')[1].split("</p>")[0]
    assert "%" not in overall  # the whole would be that one follow-up again
