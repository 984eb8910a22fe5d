"""特定保健指導の実施記録: a 保健師 records, for the people a checkup made targets of 特定保健指導, the 初回面接
and then the 実績評価 (at least 3 months later, 第4期) or an early end; the checkup-rate summary counts 利用者,
終了者 and the 実施率 from them as the 法定報告 does. Every entry is kept; a mistaken one is taken back."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal as D

import pytest
from django.http import Http404
from django.utils import timezone

from accounts.services import member_create
from audit.models import AuditEvent
from checkups import selectors
from checkups.models import CheckupRecord, GuidanceSupport
from checkups.services import guidance_support_record, guidance_support_withdraw
from healthapp.errors import AppError
from tenants.context import tenant_context
from tests.checkups.test_guidance_summary import ACTIVE, _record, _rows, unit  # noqa: F401  (fixture)
from tests.checkups.test_results_for_health_staff import _client

pytestmark = pytest.mark.django_db


@pytest.fixture
def targets(world, unit):  # noqa: F811
    """Two targets in the nurse's department in FY2025: G-1 (積極的支援, checkup 2025-06-02) and G-11, a woman of
    50 with the same findings (2025-08-01); G-2 was stratified 情報提供."""
    with tenant_context(world.tenant_a):
        g1 = CheckupRecord.objects.get(exam_date=dt.date(2025, 6, 2))  # G-1's 特定健診
        room = g1.member.department
        woman = member_create(employee_number="G-11", name="対象 G-11", office=world.office_a, department=room,
                              sex="female", birth_date=dt.date(1975, 4, 4))  # fmt: skip
        g11 = _record(woman, dt.date(2025, 8, 1), {**ACTIVE, "waist": D("95")})
        informed = CheckupRecord.objects.get(exam_date=dt.date(2025, 7, 1))  # G-2's
    return {**unit, "g1": g1, "g11": g11, "informed": informed}


def _summary(world, user):
    with tenant_context(world.tenant_a):
        return _rows(selectors.guidance_summary(user=user, fiscal_year=2025))


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def test_the_nurse_records_the_first_interview_then_the_evaluation_and_the_rate_follows(world, targets):
    everyone = _summary(world, targets["nurse"])["all"]
    assert (everyone.targeted, everyone.started, everyone.completed, everyone.completion_rate) == (2, 0, 0, 0.0)
    nurse = _client("nurse@a.example")
    assert 'data-testid="nav-guidance-targets"' in nurse.get("/").content.decode()  # in her menu
    assert 'data-testid="nav-guidance-targets"' not in _client("hr@a.example").get("/").content.decode()
    summary_page = nurse.get("/checkups/guidance/?year=2025").content.decode()
    assert "/checkups/guidance/targets/?year=2025" in summary_page  # the way in from the summary
    listing = nurse.get("/checkups/guidance/targets/?year=2025").content.decode()
    assert listing.index("対象 G-1") < listing.index("対象 G-11")  # the longest waiting first
    assert "対象 G-2" not in listing and _text(listing).count("未実施") >= 2

    page = f"/checkups/guidance/targets/{targets['g1'].pk}/"
    assert "積極的支援" in _text(nurse.get(page).content.decode())
    started = nurse.post(page, {"status": "in_progress", "started_on": "2025-07-01", "method": "individual",
                                "goal_met": "unknown"})  # fmt: skip
    assert started.status_code == 302
    shown = _text(nurse.get(page).content.decode())
    assert "実施中" in shown and "初回面接 2025-07-01（個別支援）" in shown
    assert "実績評価は 2025-10-01 以降" in shown  # 3 months on

    # An evaluation before 3 months have passed is refused beside the date, and nothing is written.
    early = nurse.post(page, {"status": "completed", "started_on": "2025-07-01", "method": "individual",
                              "ended_on": "2025-09-30", "goal_met": "true"})  # fmt: skip
    assert early.status_code == 200
    assert "3か月以上後（2025-10-01 以降）の日付を指定してください" in early.content.decode()
    assert 'id="id_ended_on_error"' in early.content.decode()
    done = nurse.post(page, {"status": "completed", "started_on": "2025-07-01", "method": "individual",
                             "ended_on": "2025-10-01", "goal_met": "true"})  # fmt: skip
    assert done.status_code == 302
    with tenant_context(world.tenant_a):
        rows = list(GuidanceSupport.objects.filter(record=targets["g1"]).order_by("pk").values_list(
            "status", "ended_on", "goal_met", "level"))  # fmt: skip
    assert rows == [("in_progress", None, None, "積極的支援"), ("completed", dt.date(2025, 10, 1), True, "積極的支援")]

    everyone = _summary(world, targets["nurse"])["all"]
    assert (everyone.targeted, everyone.started, everyone.completed, everyone.completion_rate) == (2, 1, 1, 50.0)
    assert _summary(world, targets["nurse"])["female"].started == 0
    table = list(
        csv.reader(io.StringIO(nurse.get("/checkups/guidance/?year=2025&format=csv").content.decode("utf-8-sig")))
    )
    at = table[0].index("特定保健指導の実施率（%）")
    assert table[0][at - 2 : at] == ["特定保健指導の利用者（初回面接）", "特定保健指導の終了者"]
    assert table[-1][at - 2 : at + 1] == ["1", "1", "50.0"]
    by_level = table[0].index("積極的支援 利用者")  # the 法定報告 gives each level apart
    assert table[0][by_level : by_level + 4] == ["積極的支援 利用者", "積極的支援 終了者", "動機付け支援 利用者",
                                                 "動機付け支援 終了者"]  # fmt: skip
    assert table[-1][by_level : by_level + 4] == ["1", "1", "0", "0"]
    assert everyone.started_by_level == everyone.completed_by_level == {"積極的支援": 1}
    history = nurse.get(page).content.decode().split('data-testid="guidance-history"')[1]
    assert _text(history).count("nurse@a.example") == 2 and "達成" in history
    filtered = _text(nurse.get("/checkups/guidance/targets/?year=2025&status=completed").content.decode())
    assert "対象 G-1 " in filtered and "対象 G-11" not in filtered and "終了（ 実績評価 2025-10-01 ）" in filtered

    with tenant_context(world.tenant_a):
        events = list(AuditEvent.objects.filter(action="checkup.guidance_recorded").order_by("seq").values_list(
            "target_id", "details__status", "details__replaces"))  # fmt: skip
        first = GuidanceSupport.objects.filter(record=targets["g1"]).order_by("pk").first()
        listed = AuditEvent.objects.filter(action="checkup.guidance_targets_listed").values_list("details__members")
    assert events == [(str(targets["g1"].pk), "in_progress", None), (str(targets["g1"].pk), "completed", first.pk)]
    assert all(targets["g1"].member_id in members for (members,) in listed)


def test_a_mistaken_entry_is_taken_back_and_the_history_stays(world, targets):
    nurse = targets["nurse"]
    with tenant_context(world.tenant_a):
        record = targets["g11"]
        guidance_support_record(record=record, acting_user=nurse, status="dropped", started_on=dt.date(2025, 8, 20),
                                method="remote", ended_on=dt.date(2025, 9, 1))  # fmt: skip
        assert _summary(world, nurse)["all"].started == 1  # 途中終了 is 利用者, not 終了者
        assert _summary(world, nurse)["all"].completed == 0
        with pytest.raises(AppError) as same:
            guidance_support_record(record=record, acting_user=nurse, status="dropped", started_on=dt.date(2025, 8, 20),
                                    method="remote", ended_on=dt.date(2025, 9, 1))  # fmt: skip
        assert same.value.code == "guidance_unchanged"
    client = _client("nurse@a.example")
    page = f"/checkups/guidance/targets/{record.pk}/"
    assert "記録を取り消す" in client.get(page).content.decode()  # behind a confirmation
    assert client.post(page, {"withdraw": "1"}).status_code == 302
    shown = _text(client.get(page).content.decode())
    assert "実施状況: 未実施" in shown and "取消" in shown and "途中終了" in shown  # the history keeps both
    assert _summary(world, nurse)["all"].started == 0
    with tenant_context(world.tenant_a):
        assert GuidanceSupport.objects.filter(record=record).count() == 2
        assert AuditEvent.objects.filter(action="checkup.guidance_withdrawn", target_id=str(record.pk)).count() == 1
        with pytest.raises(AppError) as nothing:
            guidance_support_withdraw(record=record, acting_user=nurse)
    assert nothing.value.code == "nothing_to_withdraw"


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"status": "in_progress", "started_on": dt.date(2025, 6, 1)}, "start_before_exam"),  # exam 2025-06-02
        ({"status": "in_progress", "started_on": None}, "start_required"),
        ({"status": "in_progress", "started_on": dt.date(2099, 1, 1)}, "start_in_future"),
        ({"status": "dropped", "started_on": dt.date(2025, 7, 1), "ended_on": dt.date(2099, 1, 1)}, "end_in_future"),
        ({"status": "completed", "started_on": dt.date(2025, 7, 1)}, "end_required"),
        ({"status": "dropped", "started_on": dt.date(2025, 7, 1), "ended_on": dt.date(2025, 6, 30)},
         "end_before_start"),
        ({"status": "completed", "started_on": dt.date(2025, 7, 31), "ended_on": dt.date(2025, 10, 30)},
         "evaluation_too_early"),
        ({"status": "in_progress", "started_on": dt.date(2025, 7, 1), "method": ""}, "method_required"),
        ({"status": "in_progress", "started_on": dt.date(2025, 7, 1), "ended_on": dt.date(2025, 10, 1)},
         "end_while_in_progress"),
        ({"status": "withdrawn", "started_on": dt.date(2025, 7, 1)}, "invalid_status"),
    ],
)  # fmt: skip
def test_refused_entries_write_nothing(world, targets, fields, code):
    with tenant_context(world.tenant_a), pytest.raises(AppError) as refused:
        guidance_support_record(record=targets["g1"], acting_user=targets["nurse"], **{"method": "group", **fields})
    assert refused.value.code == code and refused.value.message
    with tenant_context(world.tenant_a):
        assert not GuidanceSupport.objects.filter(record=targets["g1"]).exists()


def test_the_evaluation_on_the_day_three_months_have_passed(world, targets):
    """7/31 + 3 months: 10/31 (the same date); 11/30 + 3 months: the end of February."""
    assert selectors.guidance_evaluation_from(dt.date(2025, 7, 31)) == dt.date(2025, 10, 31)
    assert selectors.guidance_evaluation_from(dt.date(2025, 11, 30)) == dt.date(2026, 2, 28)
    with tenant_context(world.tenant_a):
        support = guidance_support_record(record=targets["g1"], acting_user=targets["nurse"], status="completed",
                                          started_on=dt.date(2025, 7, 31), method="group",
                                          ended_on=dt.date(2025, 10, 31), goal_met=False)  # fmt: skip
    assert support.status == "completed" and support.goal_met is False


def test_only_targets_of_guidance(world, targets):
    with tenant_context(world.tenant_a), pytest.raises(AppError) as refused:
        guidance_support_record(record=targets["informed"], acting_user=targets["nurse"], status="in_progress",
                                started_on=dt.date(2025, 7, 2), method="individual")  # fmt: skip
    assert refused.value.code == "not_targeted"


def test_who_may_see_and_record_it(world, targets):
    g1 = targets["g1"]
    page = f"/checkups/guidance/targets/{g1.pk}/"
    post = {"status": "in_progress", "started_on": "2025-07-01", "method": "individual"}
    hr = _client("hr@a.example")  # 人事担当 for the whole tenant: no health data, no guidance
    assert hr.get(page).status_code == 404 and hr.post(page, post).status_code == 404
    assert hr.get("/checkups/guidance/targets/").status_code == 404
    with tenant_context(world.tenant_b):
        foreign = CheckupRecord.objects.first()
    nurse = _client("nurse@a.example")
    assert nurse.get(f"/checkups/guidance/targets/{foreign.pk}/").status_code == 404  # another tenant's id
    with tenant_context(world.tenant_a):
        own = CheckupRecord.objects.get(member=targets["nurse"].member)
        outside = _record(world.roster_a[0], dt.date(2025, 6, 9), ACTIVE)  # 営業部: outside her department
        with pytest.raises(Http404):
            guidance_support_record(record=own, acting_user=targets["nurse"], status="in_progress",
                                    started_on=dt.date(2025, 7, 1), method="individual")  # fmt: skip
        with pytest.raises(Http404):
            guidance_support_record(record=outside, acting_user=targets["nurse"], status="in_progress",
                                    started_on=dt.date(2025, 7, 1), method="individual")  # fmt: skip
        assert not GuidanceSupport.objects.filter(record__in=[own, outside]).exists()
    assert nurse.get(f"/checkups/guidance/targets/{own.pk}/").status_code == 404
    assert nurse.post(f"/checkups/guidance/targets/{outside.pk}/", post).status_code == 404


def test_the_list_filters_by_state_in_english_too(world, targets):
    with tenant_context(world.tenant_a):
        guidance_support_record(record=targets["g11"], acting_user=targets["nurse"], status="in_progress",
                                started_on=dt.date(2025, 8, 5), method="group")  # fmt: skip
    nurse = _client("nurse@a.example")
    nurse.cookies["django_language"] = "en"
    listing = _text(nurse.get("/checkups/guidance/targets/?year=2025&status=none").content.decode())
    assert "Not started 1" in listing and "In progress 1" in listing
    assert "G-1 " in listing and "G-11" not in listing
    with tenant_context(world.tenant_a):
        found = selectors.guidance_targets(user=targets["nurse"], fiscal_year=2025, status="in_progress")
        everyone = selectors.guidance_targets(user=targets["nurse"], fiscal_year=2025, status="bogus")
    assert [entry.member.employee_number for entry in found.page] == ["G-11"]
    assert found.counts == {"none": 1, "in_progress": 1, "completed": 0, "dropped": 0}
    assert everyone.status == "" and len(everyone.page) == 2


def test_a_checkup_that_made_nobody_a_target_offers_no_form(world, targets):
    page = _client("nurse@a.example").get(f"/checkups/guidance/targets/{targets['informed'].pk}/").content.decode()
    assert 'data-testid="not-targeted"' in page and 'data-testid="guidance-form"' not in page
    assert "情報提供" in _text(page)


def test_the_targets_as_csv_for_an_entrusted_provider(world, targets):
    with tenant_context(world.tenant_a):
        guidance_support_record(record=targets["g11"], acting_user=targets["nurse"], status="in_progress",
                                started_on=dt.date(2025, 8, 5), method="group")  # fmt: skip
    nurse = _client("nurse@a.example")
    response = nurse.get("/checkups/guidance/targets/?year=2025&format=csv")
    assert "guidance-targets-2025.csv" in response["Content-Disposition"]
    table = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert table[0][:2] == ["年度", "氏名"] and len(table) == 3  # both targets, not a page of them
    assert table[1][1] == "対象 G-1" and table[1][8:10] == ["積極的支援", "未実施"]
    assert table[2][1] == "対象 G-11" and table[2][9:12] == ["実施中", "2025-08-05", "グループ支援"]
    only = list(csv.reader(io.StringIO(nurse.get("/checkups/guidance/targets/?year=2025&status=none&format=csv")
                                       .content.decode("utf-8-sig"))))  # fmt: skip
    assert [row[1] for row in only[1:]] == ["対象 G-1"]
    with tenant_context(world.tenant_a):
        event = AuditEvent.objects.filter(action="checkup.guidance_targets_listed").order_by("seq").first()
    assert event.details["format"] == "csv" and len(event.details["members"]) == 2
    assert "対象" not in str(event.details)  # ids, never names


def test_a_saved_record_reads_back_as_it_was_and_saving_it_again_changes_nothing(world, targets):
    """The form shows 達成 as stored (not 記録しない), so pressing 保存 untouched neither erases it nor adds a row."""
    with tenant_context(world.tenant_a):
        guidance_support_record(record=targets["g1"], acting_user=targets["nurse"], status="completed",
                                started_on=dt.date(2025, 7, 1), method="remote", ended_on=dt.date(2025, 10, 2),
                                goal_met=True)  # fmt: skip
    nurse = _client("nurse@a.example")
    page = f"/checkups/guidance/targets/{targets['g1'].pk}/?status=completed"
    form = nurse.get(page).content.decode().split('data-testid="guidance-form"')[1].split("</form>")[0]
    assert re.search(r'<option value="true" selected>', form) and 'value="2025-10-02"' in form
    assert re.search(r'<option value="remote" selected>', form)
    again = nurse.post(page, {"status": "completed", "started_on": "2025-07-01", "method": "remote",
                              "ended_on": "2025-10-02", "goal_met": "true"})  # fmt: skip
    assert again.status_code == 200 and "記録されている内容と同じです" in again.content.decode()
    with tenant_context(world.tenant_a):
        assert GuidanceSupport.objects.filter(record=targets["g1"]).count() == 1
    # The way back leads to the filtered list it came from.
    assert 'href="/checkups/guidance/targets/?year=2025&amp;status=completed"' in again.content.decode()
    summary = _text(nurse.get("/checkups/guidance/?year=2025").content.decode())
    assert "（利用者 1 人・終了者 1 人・実施率 50.0%）" in summary


def test_one_guidance_per_person_and_year_whichever_checkup_it_was_recorded_on(world, targets):
    """G-11 has a 定期健診 after her 特定健診: her guidance, recorded on the one, is not started again (or taken
    back) on the other, and counts once."""
    nurse = targets["nurse"]
    with tenant_context(world.tenant_a):
        g11 = targets["g11"]
        sibling = _record(g11.member, dt.date(2025, 9, 1), {**ACTIVE, "waist": D("95")}, program="regular")
        guidance_support_record(record=sibling, acting_user=nurse, status="completed", started_on=dt.date(2025, 9, 5),
                                method="individual", ended_on=dt.date(2025, 12, 5), goal_met=True)  # fmt: skip
        with pytest.raises(AppError) as refused:
            guidance_support_record(record=g11, acting_user=nurse, status="in_progress",
                                    started_on=dt.date(2025, 9, 10), method="group")  # fmt: skip
        assert refused.value.code == "guidance_elsewhere" and "2025-09-01" in refused.value.message
        with pytest.raises(AppError):
            guidance_support_withdraw(record=g11, acting_user=nurse)  # nothing of hers to take back there
        everyone = _rows(selectors.guidance_summary(user=nurse, fiscal_year=2025))["all"]
        target = next(t for t in selectors.guidance_targets(user=nurse, fiscal_year=2025).page if t.record_id in
                      (g11.pk, sibling.pk))  # fmt: skip
    assert (everyone.started, everyone.completed) == (1, 1)  # counted by her 特定健診, guided after the other
    assert target.record_id == sibling.pk and target.support.status == "completed"
    page = _client("nurse@a.example").get(f"/checkups/guidance/targets/{g11.pk}/").content.decode()
    assert 'data-testid="guidance-elsewhere"' in page and 'data-testid="guidance-form"' not in page
    assert f'href="/checkups/guidance/targets/{sibling.pk}/"' in page


def test_a_taken_back_entry_on_one_checkup_leaves_the_guidance_on_another(world, targets):
    """Counting does not lean on the service's rule: an entry taken back on one checkup (written after the
    guidance on another, as rows made before the rule could be) never hides that guidance."""
    nurse = targets["nurse"]
    with tenant_context(world.tenant_a):
        g11 = targets["g11"]
        sibling = _record(g11.member, dt.date(2025, 9, 1), {**ACTIVE, "waist": D("95")}, program="regular")
        guidance_support_record(record=g11, acting_user=nurse, status="completed", started_on=dt.date(2025, 8, 5),
                                method="individual", ended_on=dt.date(2025, 11, 5))  # fmt: skip
        for status, started in (("in_progress", dt.date(2025, 9, 10)), ("withdrawn", None)):
            GuidanceSupport.objects.create(record=sibling, level="積極的支援", status=status, started_on=started,
                                           method="group" if started else "", recorded_by=nurse)  # fmt: skip
        everyone = _rows(selectors.guidance_summary(user=nurse, fiscal_year=2025))["all"]
    assert (everyone.started, everyone.completed) == (1, 1)


def test_the_list_marks_who_is_due_an_evaluation(world, targets):
    today = timezone.localdate()
    with tenant_context(world.tenant_a):
        guidance_support_record(record=targets["g1"], acting_user=targets["nurse"], status="in_progress",
                                started_on=dt.date(2025, 7, 1), method="group")  # fmt: skip
        guidance_support_record(record=targets["g11"], acting_user=targets["nurse"], status="in_progress",
                                started_on=today, method="group")  # fmt: skip
    rows = _client("nurse@a.example").get("/checkups/guidance/targets/?year=2025").content.decode()
    rows = rows.split('data-testid="target-row"')[1:]
    assert 'data-testid="evaluation-due"' in rows[0] and "実績評価の時期です" in rows[0]  # 3 months on
    assert 'data-testid="evaluation-due"' not in rows[1]  # started today


def test_the_person_reads_that_they_are_a_target_and_how_far_their_guidance_went(world, targets):
    """マイ健診結果: the checkup that made them a target says so in plain words, with their guidance's status."""
    from tests.conftest import TEST_PASSWORD

    with tenant_context(world.tenant_a):
        patient = world.roster_a[0]  # member@a.example
        patient.sex, patient.birth_date = "male", dt.date(1970, 1, 1)
        patient.save()
        record = _record(patient, dt.date(2025, 6, 20), ACTIVE)
        _record(patient, dt.date(2024, 6, 20), {**ACTIVE, "waist": D("70"), "bmi": D("21")})  # not a target
        nurse = _client("nurse@a.example")  # her department does not hold him: HR's 保健師 for the tenant does
    employee = _client("member@a.example", TEST_PASSWORD)
    page = employee.get("/checkups/mine/").content.decode()
    assert page.count('data-testid="my-guidance"') == 1 and "特定保健指導（積極的支援）の対象になりました" in page
    assert "まだ始まっていません" in page
    with tenant_context(world.tenant_a):
        GuidanceSupport.objects.create(record=record, level="積極的支援", status="in_progress",
                                       started_on=dt.date(2025, 7, 10), method="individual",
                                       recorded_by=targets["nurse"])  # fmt: skip
    shown = _text(employee.get("/checkups/mine/").content.decode())
    assert "実施状況: 実施中（初回面接 2025-07-10）" in shown
    assert nurse.get(f"/checkups/guidance/targets/{record.pk}/").status_code == 404  # outside her department
