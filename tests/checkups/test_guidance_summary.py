"""特定健診・特定保健指導の集計: a 保健師 sees, for the people whose results she may read, how many were due
a 特定健診 (40-74 at the fiscal year's end, insured through it), how many had one, and how they were
stratified, by age band and sex, counted as the MHLW's 法定報告 counts them."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal as D

import pytest

from accounts.models import Role
from accounts.services import member_create
from audit.models import AuditEvent
from checkups import selectors
from checkups.services import checkup_judge, checkup_record_save
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
        _record(active, dt.date(2024, 6, 3), INFORMATION)  # another fiscal year
        nurse = _staff(world, "nurse", Role.HEALTH_STAFF, "health_staff", "department", department=room)
        nurse.member.birth_date = dt.date(1975, 1, 1)
        nurse.member.save()
        _record(nurse.member, dt.date(2025, 6, 5), ACTIVE)  # her own: never in her figures
        hr = _staff(world, "hr", Role.HR_ADMIN, "hr_staff", "tenant")
    return {"nurse": nurse, "hr": hr}


def _rows(summary) -> dict[str, selectors.GuidanceRow]:
    def key(row) -> str:
        return f"{row.ages[0]}-{row.ages[1]}" if row.ages else row.sex or "all"

    return {key(row): row for row in summary.rows}


def test_people_due_examined_and_stratified_by_age_band_and_sex(world, unit):
    with tenant_context(world.tenant_a):
        summary = selectors.guidance_summary(user=unit["nurse"], fiscal_year=2025)
    rows = _rows(summary)
    assert summary.fiscal_year == 2025 and summary.years == [2025, 2024]
    assert summary.unknown_age == 1
    everyone = rows["all"]
    assert (everyone.eligible, everyone.examined, everyone.rate) == (3, 2, 66.7)
    assert everyone.levels == {"積極的支援": 1, "情報提供": 1}
    assert (everyone.targeted, everyone.targeted_share) == (1, 50.0)
    assert everyone.metabolic == {"基準該当": 1}
    assert (rows["55-59"].eligible, rows["55-59"].examined, rows["55-59"].levels) == (1, 1, {"積極的支援": 1})
    assert (rows["65-69"].eligible, rows["65-69"].levels) == (1, {"情報提供": 1})
    assert (rows["45-49"].eligible, rows["45-49"].examined, rows["45-49"].rate) == (1, 0, 0.0)
    assert (rows["40-44"].eligible, rows["40-44"].rate) == (0, None)
    assert (rows["male"].eligible, rows["female"].eligible, rows["female"].examined) == (1, 2, 1)


def test_an_earlier_year_and_a_record_not_yet_judged(world, unit):
    with tenant_context(world.tenant_a):
        earlier = _rows(selectors.guidance_summary(user=unit["nurse"], fiscal_year=2024))["all"]
        # G-1 54 (checked in FY2025 only), G-2 67, G-3 45, G-5 59 (insured through FY2024)
        assert (earlier.eligible, earlier.examined, earlier.levels) == (4, 1, {"情報提供": 1})
        fresh = member_create(employee_number="G-7", name="対象 G-7", office=world.office_a, sex="female",
                              birth_date=dt.date(1972, 8, 8),
                              department=unit["nurse"].member.department)  # fmt: skip
        checkup_record_save(member=fresh, exam_date=dt.date(2025, 8, 1), program="specific", values=INFORMATION)
        now = _rows(selectors.guidance_summary(user=unit["nurse"], fiscal_year=2025))["all"]
    assert (now.eligible, now.examined, now.levels.get("未判定")) == (4, 3, 1)


def test_the_page_for_a_health_nurse_audited_and_404_without_checkup_view(world, unit):
    nurse = _client("nurse@a.example")
    page = nurse.get("/checkups/guidance/?year=2025")
    assert page.status_code == 200
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.content.decode()))
    assert "特定健診・特定保健指導の集計（2025年度）" in text
    assert "合計 3 2 66.7% 1 0 1 0 0 1 (50.0%) 1 0" in text
    assert "生年月日が名簿にない 1 人は数えていません。" in text
    assert 'data-testid="nav-guidance-summary"' in page.content.decode()
    with tenant_context(world.tenant_a):
        (event,) = AuditEvent.objects.filter(action="checkup.guidance_summary_viewed")
    assert event.actor_id == unit["nurse"].pk and event.details == {"fiscal_year": 2025, "eligible": 3}
    assert _client("hr@a.example").get("/checkups/guidance/").status_code == 404


def test_in_english(world, unit):
    nurse = _client("nurse@a.example")
    nurse.cookies["django_language"] = "en"
    text = nurse.get("/checkups/guidance/").content.decode()
    assert "Specific health checkups and guidance (FY2025)" in text
    assert "Ages 55–59" in text and "Intensive support" in text and "Metabolic syndrome: Meets the criteria" in text
