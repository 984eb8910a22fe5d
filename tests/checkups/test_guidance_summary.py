"""特定健診の受診率と階層化: a 保健師 sees, for the people whose results she may read, how many were due a
特定健診 (40-74 at the fiscal year's end, insured from its 1 April through its end), how many had one, and how
they were stratified, by age band, sex and 本人/家族, counted as the MHLW's 法定報告 counts them."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal as D

import pytest
from django.utils import timezone

from accounts.models import Member, Role, member_indexes
from accounts.services import member_create
from audit.models import AuditEvent
from checkups import selectors
from checkups.services import checkup_judge, checkup_record_save, fiscal_year_of
from tenants.context import tenant_context
from tenants.services import department_create
from tests.checkups.test_results_for_health_staff import MILD, VALUES, _client, _staff

# Waist over the male limit with high blood pressure, low HDL and HbA1c 5.8: 積極的支援 and 基準該当.
ACTIVE = {**VALUES, "waist": D("92")}
INFORMATION = {**MILD, "waist": D("70"), "bmi": D("21.5")}


def _record(member, exam_date: dt.date, values, program: str = "specific"):
    record = checkup_record_save(member=member, exam_date=exam_date, program=program, values=values)
    checkup_judge(record=record)
    return record


@pytest.fixture
def unit(world):
    """健康推進室 of 東京本社: the people a department-scoped 保健師 reads, and nobody else."""
    with tenant_context(world.tenant_a):
        room = department_create(office=world.office_a, name="健康推進室")

        def person(key: str, **fields):
            return member_create(employee_number=key, name=f"対象 {key}", office=world.office_a, department=room,
                                 **fields)  # fmt: skip

        active = person("G-1", sex="male", birth_date=dt.date(1970, 6, 1))  # 55 at the end of FY2025
        _record(active, dt.date(2025, 6, 2), ACTIVE)
        _record(active, dt.date(2025, 10, 1), MILD, program="regular")  # the 特定健診 counts, not this later one
        informed = person("G-2", sex="female", birth_date=dt.date(1958, 3, 1))  # 68
        _record(informed, dt.date(2025, 7, 1), INFORMATION)
        person("G-3", sex="female", birth_date=dt.date(1980, 1, 1))  # 46, no checkup this year
        young = person("G-4", sex="male", birth_date=dt.date(1990, 5, 5))  # 35: not due
        _record(young, dt.date(2025, 6, 3), ACTIVE, program="regular")
        left = person("G-5", sex="male", birth_date=dt.date(1965, 5, 5), is_active=False,
                      qualification_end=dt.date(2025, 12, 31))  # fmt: skip  # left during the year
        _record(left, dt.date(2025, 6, 4), ACTIVE)
        person("G-6", sex="male")  # no birth date on file
        # Joined in the middle of FY2025: due from FY2026 on. Turned off by a full import in May 2026 (no
        # 資格喪失日): still due in FY2025. A dependant on medication.
        person("G-8", sex="male", birth_date=dt.date(1970, 1, 1), qualification_start=dt.date(2025, 10, 1))
        dropped = person("G-9", sex="female", birth_date=dt.date(1960, 1, 1))
        dropped.is_active = False
        dropped.save()
        Member.objects.filter(pk=dropped.pk).update(inactive_since=dt.date(2026, 5, 1))
        family = person("G-10", sex="female", birth_date=dt.date(1966, 2, 2), relationship="family")
        record = checkup_record_save(member=family, exam_date=dt.date(2025, 9, 1), program="specific",
                                     values=ACTIVE, questionnaire={"medication_bp": True})  # fmt: skip
        checkup_judge(record=record)
        _record(active, dt.date(2024, 6, 3), INFORMATION)  # another fiscal year
        nurse = _staff(world, "nurse", Role.HEALTH_STAFF, "health_staff", "department", department=room)
        nurse.member.birth_date = dt.date(1975, 1, 1)
        nurse.member.save()
        _record(nurse.member, dt.date(2025, 6, 5), ACTIVE)  # her own: never in her figures
        hr = _staff(world, "hr", Role.HR_ADMIN, "hr_staff", "tenant")
    return {"nurse": nurse, "hr": hr}


def _rows(summary) -> dict[str, selectors.GuidanceRow]:
    def key(row) -> str:
        return f"{row.ages[0]}-{row.ages[1]}" if row.ages else row.sex or row.relationship or "all"

    return {key(row): row for row in summary.rows}


def test_people_due_examined_and_stratified_by_age_band_and_sex(world, unit):
    with tenant_context(world.tenant_a):
        summary = selectors.guidance_summary(user=unit["nurse"], fiscal_year=2025)
    rows = _rows(summary)
    current = fiscal_year_of(timezone.localdate())
    assert summary.fiscal_year == 2025 and summary.years == sorted({current, 2025, 2024}, reverse=True)
    assert summary.unknown_age == 1
    everyone = rows["all"]
    # G-1, G-2, G-3, G-9 (turned off after the year), G-10; not G-8 (joined in October)
    assert (everyone.eligible, everyone.examined, everyone.rate) == (5, 3, 60.0)
    assert everyone.levels == {"積極的支援": 1, "情報提供": 2}  # G-10 on medication: 情報提供 by rule
    assert (everyone.targeted, everyone.targeted_share, everyone.medicated) == (1, 33.3, 1)
    assert everyone.metabolic == {"基準該当": 2}
    assert (rows["55-59"].eligible, rows["55-59"].examined, rows["55-59"].levels) == (1, 1, {"積極的支援": 1})
    assert (rows["65-69"].eligible, rows["65-69"].levels) == (2, {"情報提供": 1})
    assert (rows["45-49"].eligible, rows["45-49"].examined, rows["45-49"].rate) == (1, 0, 0.0)
    assert (rows["40-44"].eligible, rows["40-44"].rate) == (0, None)
    assert (rows["male"].eligible, rows["female"].eligible, rows["female"].examined) == (1, 4, 2)
    assert (rows["self"].eligible, rows["family"].eligible, rows["family"].medicated) == (4, 1, 1)


def test_an_earlier_year_and_a_record_not_yet_judged(world, unit):
    with tenant_context(world.tenant_a):
        earlier = _rows(selectors.guidance_summary(user=unit["nurse"], fiscal_year=2024))["all"]
        # G-1 54 (checked in FY2025 only), G-2 67, G-3 45, G-5 59 (insured through FY2024), G-9 65, G-10 59
        assert (earlier.eligible, earlier.examined, earlier.levels) == (6, 1, {"情報提供": 1})
        later = _rows(selectors.guidance_summary(user=unit["nurse"], fiscal_year=2026))["all"]
        assert (later.eligible, later.examined, later.rate) == (5, 0, 0.0)  # G-8 due now, G-9 no longer
        fresh = member_create(employee_number="G-7", name="対象 G-7", office=world.office_a, sex="female",
                              birth_date=dt.date(1972, 8, 8),
                              department=unit["nurse"].member.department)  # fmt: skip
        checkup_record_save(member=fresh, exam_date=dt.date(2025, 8, 1), program="specific", values=INFORMATION)
        now = _rows(selectors.guidance_summary(user=unit["nurse"], fiscal_year=2025))["all"]
    assert (now.eligible, now.examined, now.levels.get("未判定")) == (6, 4, 1)


def test_the_page_for_a_health_nurse_audited_and_404_without_checkup_view(world, unit):
    nurse = _client("nurse@a.example")
    page = nurse.get("/checkups/guidance/?year=2025")
    assert page.status_code == 200
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.content.decode()))
    assert "特定健診の受診率と階層化（2025年度）" in text
    # 対象者 受診者 受診率 | 積極的 動機付け 情報提供 判定不能 対象外 未判定 | 指導の対象者 利用者 終了者 実施率 |
    # 服薬中 | 該当 予備群
    assert "合計 5 3 60.0 1 0 2 0 0 0 1 (33.3%) 0 0 0.0 1 2 0" in text
    assert "家族（被扶養者） 計 1 1 100.0 " in text
    assert "生年月日が名簿にない 1 人は数えていません。" in text
    assert 'data-testid="year-in-progress"' not in page.content.decode()  # FY2025 has ended
    current = fiscal_year_of(timezone.localdate())
    ongoing = nurse.get(f"/checkups/guidance/?year={current}").content.decode()
    assert f"{current}年度は年度の途中です（{current + 1}-03-31 まで）。" in ongoing
    assert "まだ受診していない対象者" in ongoing
    fallback = nurse.get("/checkups/guidance/?year=2019").content.decode()
    assert "2019年度の健診はないため、2025年度を表示しています。" in fallback
    assert "特定健診の受診率と階層化（2025年度）" in nurse.get("/checkups/guidance/").content.decode()  # the latest
    assert 'data-testid="nav-guidance-summary"' in page.content.decode()
    with tenant_context(world.tenant_a):
        event = AuditEvent.objects.filter(action="checkup.guidance_summary_viewed").order_by("seq").first()
    assert event.actor_id == unit["nurse"].pk
    assert event.details == {"fiscal_year": 2025, "eligible": 5, "format": "page"}
    assert _client("hr@a.example").get("/checkups/guidance/").status_code == 404


def test_in_english(world, unit):
    nurse = _client("nurse@a.example")
    nurse.cookies["django_language"] = "en"
    text = nurse.get("/checkups/guidance/?year=2025").content.decode()
    assert "Checkup rate and stratification (FY2025)" in text
    assert "Ages 55–59" in text and "Intensive support" in text and "Dependants, total" in text
    assert '<th scope="col" rowspan="2">Due</th>' in text


def test_the_people_due_and_not_examined_are_listed_oldest_first_as_a_health_read(world, unit):
    nurse = _client("nurse@a.example")
    summary = nurse.get("/checkups/guidance/?year=2025").content.decode()
    assert "未受診の対象者 2 人の一覧" in summary
    page = nurse.get("/checkups/guidance/unexamined/?year=2025").content.decode()
    rows = page.split('data-testid="unexamined"', 1)[1].split("</table>")[0]
    names = re.findall(r">(対象 G-\d+)<", rows)
    assert names == ["対象 G-9", "対象 G-3"]  # 66 and 46 at the end of FY2025
    assert "66歳" in rows and "女性" in rows
    with tenant_context(world.tenant_a):
        event = AuditEvent.objects.filter(action="checkup.unexamined_listed").get()
        g3 = Member.objects.get(employee_number_index=member_indexes(world.tenant_a.pk, {"employee_number": "G-3"})[
            "employee_number_index"])  # fmt: skip
    assert g3.pk in event.details["members"] and event.details["fiscal_year"] == 2025
    from audit.actions import HEALTH_READS

    assert "checkup.unexamined_listed" in HEALTH_READS
    assert _client("hr@a.example").get("/checkups/guidance/unexamined/").status_code == 404


def test_the_summary_as_csv_for_a_spreadsheet(world, unit):
    import csv as _csv
    import io

    response = _client("nurse@a.example").get("/checkups/guidance/?year=2025&format=csv")
    assert (
        response["Content-Type"].startswith("text/csv") and "checkup-rate-2025.csv" in response["Content-Disposition"]
    )
    rows = list(_csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:6] == ["年度", "集計日", "区分", "対象者", "受診者", "受診率（%）"]
    assert "積極的支援" in rows[0] and rows[0][-2:] == ["メタボ 基準該当", "メタボ 予備群"]
    today = timezone.localdate().isoformat()
    assert rows[-1][:6] == ["2025", today, "合計", "5", "3", "60.0"] and rows[4][2] == "55〜59歳"
    with tenant_context(world.tenant_a):
        formats = list(AuditEvent.objects.filter(action="checkup.guidance_summary_viewed").values_list(
            "details__format", flat=True))  # fmt: skip
    assert formats == ["csv"]


def test_the_statutory_table_by_sex_and_age_band(world, unit):
    """The 法定報告 counts 対象者 and 受診者 for men and women apart in each five-year band."""
    with tenant_context(world.tenant_a):
        summary = selectors.guidance_summary(user=unit["nurse"], fiscal_year=2025)
    table = {(men.ages or "all"): ((men.eligible, men.examined), (women.eligible, women.examined))
             for men, women in summary.by_sex}  # fmt: skip
    # G-1 man 55 examined; G-2 woman 68 examined, G-9 woman 66 not; G-3 woman 46 not; G-10 woman 60 examined
    assert table[(55, 59)] == ((1, 1), (0, 0)) and table[(60, 64)] == ((0, 0), (1, 1))
    assert table[(65, 69)] == ((0, 0), (2, 1))
    assert table[(45, 49)] == ((0, 0), (1, 0)) and table["all"] == ((1, 1), (4, 2))
    page = _client("nurse@a.example").get("/checkups/guidance/?year=2025").content.decode()
    rows = page.split('data-testid="by-sex"', 1)[1].split("</table>")[0]
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", rows))
    assert "65〜69歳 0 0 — 2 1 50.0" in text and "合計 1 1 100.0 4 2 50.0" in text
