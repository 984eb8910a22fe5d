"""Saving and judging checkup records inside a tenant."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest

from accounts.models import Member
from accounts.services import member_create
from checkups.models import CheckupRecord, CriteriaSet, Judgement
from checkups.services import age_in_fiscal_year, checkup_judge, checkup_record_save, fiscal_year_of
from tenants.context import tenant_context


def _person(world) -> Member:
    return member_create(
        employee_number="K-1", name="健診 太郎", office=world.office_a, sex="male", birth_date=dt.date(1975, 6, 1)
    )


VALUES = {
    "waist": D("92"), "bmi": D("26.1"), "systolic": D("142"), "diastolic": D("88"), "hdl": D("38"),
    "triglycerides_fasting": D("160"), "glucose_fasting": D("98"), "hba1c": D("5.8"), "ldl": D("125"),
}  # fmt: skip


def test_fiscal_year_and_age_as_the_rules_count_them():
    assert fiscal_year_of(dt.date(2025, 3, 31)) == 2024 and fiscal_year_of(dt.date(2025, 4, 1)) == 2025
    # An age is reached at the end of the day before the birthday: FY2024's 40–74 are those born
    # 1950-04-02 … 1985-04-01, as the municipalities' notices of 特定健診 print them.
    assert age_in_fiscal_year(dt.date(1960, 3, 31), 2024) == 65
    assert age_in_fiscal_year(dt.date(1960, 4, 1), 2024) == 65  # reaches 65 at the end of 31 March 2025
    assert age_in_fiscal_year(dt.date(1960, 4, 2), 2024) == 64
    assert age_in_fiscal_year(dt.date(1985, 4, 1), 2024) == 40  # a target of FY2024's guidance
    assert age_in_fiscal_year(dt.date(1985, 4, 2), 2024) == 39
    assert age_in_fiscal_year(dt.date(1950, 4, 2), 2024) == 74
    assert age_in_fiscal_year(dt.date(1950, 4, 1), 2024) == 75


def test_record_is_judged_on_the_uniform_standard_and_stratified(world):
    with tenant_context(world.tenant_a):
        record = checkup_record_save(
            member=_person(world), exam_date=dt.date(2025, 5, 20), program="specific", values=VALUES,
            questionnaire={"hours_since_meal": "12", "smoker": True},
        )  # fmt: skip
        judgement = checkup_judge(record=record, acting_user=world.admin_a)
    assert judgement.grades["systolic"] == "C" and judgement.grades["hdl"] == "C" and judgement.overall == "C"
    assert judgement.mhlw["systolic"] == "referral" and judgement.mhlw["hba1c"] == "guidance"
    assert judgement.metabolic_syndrome == "基準該当"  # waist + blood pressure + lipids
    assert judgement.guidance_level == "積極的支援"  # waist group, 3 risks + smoking
    assert record.fiscal_year == 2025


def test_without_the_draw_time_the_fasting_items_still_count(world):
    """A provider file without the 採血時間 answer: fasting-coded triglycerides and glucose are fasting
    values by their code (150 and 100 apply), not random samples to be set aside."""
    values = {"waist": D("90"), "bmi": D("24"), "systolic": D("135"), "hdl": D("60"),
              "triglycerides_fasting": D("160"), "glucose_fasting": D("130")}  # fmt: skip
    with tenant_context(world.tenant_a):
        record = checkup_record_save(member=_person(world), exam_date=dt.date(2025, 5, 20), program="specific",
                                     values=values, questionnaire={})  # fmt: skip
        judgement = checkup_judge(record=record)
    assert judgement.guidance_level == "積極的支援"  # waist group: blood pressure, lipids, glucose
    assert judgement.metabolic_syndrome == "基準該当"


def test_glucose_drawn_after_a_meal_does_not_decide_the_metabolic_syndrome(world):
    values = {"waist": D("90"), "systolic": D("135"), "hdl": D("60"), "triglycerides_random": D("120"),
              "glucose_random": D("140"), "hba1c": D("5.4")}  # fmt: skip
    with tenant_context(world.tenant_a):
        record = checkup_record_save(member=_person(world), exam_date=dt.date(2025, 5, 20), program="specific",
                                     values=values, questionnaire={"hours_since_meal": "0"})  # fmt: skip
        judgement = checkup_judge(record=record)
    assert judgement.metabolic_syndrome == "予備群"  # blood pressure only: HbA1c 5.4 decides, not the glucose
    assert judgement.guidance_level == "動機付け支援"


@pytest.mark.parametrize(
    ("answer", "level"), [("1", "normal"), ("2", "guidance"), ("3", "referral"), ("5", "referral")]
)
def test_urine_protein_gets_the_mhlw_judgement_values(world, answer, level):
    """尿蛋白 (−, ±, +, ++, +++ as answer codes 1-5): ± is 保健指導判定値, + 受診勧奨判定値 (shipped as version 2)."""
    with tenant_context(world.tenant_a):
        record = checkup_record_save(member=_person(world), exam_date=dt.date(2025, 5, 20), program="regular",
                                     values={"urine_protein": D(answer)})  # fmt: skip
        judgement = checkup_judge(record=record)
    assert judgement.mhlw.get("urine_protein") == level and judgement.criteria.version == 2


def test_the_shipped_correction_builds_on_the_newest_stored_version(db):
    """Migration 0011 copies whatever version an operator stored last, and adds urine protein to it."""
    import importlib

    from django.apps import apps

    migration = importlib.import_module("checkups.migrations.0011_mhlw_urine_protein")
    newest = CriteriaSet.objects.filter(name="uniform_grades_v1").latest("version")
    operators = {**newest.data, "mhlw": {k: v for k, v in newest.data["mhlw"].items() if k != "urine_protein"}}
    operators["items"] = {**operators["items"], "ldl": {"bands": [["A", None], ["D", "130"]], "treated_by": "lipid"}}
    CriteriaSet.objects.create(name="uniform_grades_v1", version=newest.version + 1, title="訂正",
                               effective_from=dt.date(2025, 4, 1), data=operators)  # fmt: skip
    migration.add(apps, None)
    shipped = CriteriaSet.objects.filter(name="uniform_grades_v1").latest("version")
    assert shipped.version == newest.version + 2 and shipped.title == "訂正"
    assert shipped.data["items"]["ldl"]["bands"] == [["A", None], ["D", "130"]]  # the operator's change kept
    assert shipped.data["mhlw"]["urine_protein"] == {"direction": "high", "guidance": "2", "referral": "3"}
    migration.add(apps, None)  # once only
    assert CriteriaSet.objects.filter(name="uniform_grades_v1").latest("version").pk == shipped.pk


def test_medication_grades_e_and_excludes_from_guidance(world):
    with tenant_context(world.tenant_a):
        record = checkup_record_save(
            member=_person(world), exam_date=dt.date(2025, 5, 20), program="specific", values=VALUES,
            questionnaire={"medication_bp": True, "hours_since_meal": "12"},
        )  # fmt: skip
        judgement = checkup_judge(record=record)
    assert judgement.grades["systolic"] == "E" and judgement.overall == "E"
    assert judgement.guidance_level == "情報提供"


def test_rejudging_under_a_new_criteria_version_keeps_the_old_judgement(world):
    old = CriteriaSet.objects.filter(name="uniform_grades_v1").latest("version")
    with tenant_context(world.tenant_a):
        record = checkup_record_save(
            member=_person(world), exam_date=dt.date(2025, 5, 20), program="regular", values=VALUES
        )
        first = checkup_judge(record=record)
    stricter = dict(old.data)
    stricter["items"] = {**old.data["items"], "ldl": {"bands": [["A", None], ["D", "120"]], "treated_by": "lipid"}}
    CriteriaSet.objects.create(
        name="uniform_grades_v1",
        version=old.version + 1,
        title=old.title,
        effective_from=dt.date(2026, 4, 1),
        data=stricter,
    )
    with tenant_context(world.tenant_a):
        second = checkup_judge(record=record)
        assert Judgement.objects.filter(record=record).count() == 2
        assert Judgement.objects.get(pk=first.pk).grades["ldl"] == "B"
    assert second.grades["ldl"] == "D" and second.criteria.version == old.version + 1


def test_saving_the_same_exam_again_replaces_results_not_history(world):
    with tenant_context(world.tenant_a):
        person = _person(world)
        record = checkup_record_save(member=person, exam_date=dt.date(2025, 5, 20), program="regular", values=VALUES)
        checkup_judge(record=record)
        again = checkup_record_save(
            member=person, exam_date=dt.date(2025, 5, 20), program="regular", values={**VALUES, "ldl": D("100")}
        )
        assert again.pk == record.pk and CheckupRecord.objects.count() == 1
        again.refresh_from_db()
        assert again.result_values()["ldl"] == D("100")
        assert Judgement.objects.filter(record=record).count() == 1  # the earlier judgement is kept
        kept = record.corrections.get()  # and the values it was made on
        assert {r["item"]: D(r["value"]) for r in kept.results} == {k: v for k, v in VALUES.items() if v is not None}
        checkup_record_save(
            member=person, exam_date=dt.date(2025, 5, 20), program="regular", values={**VALUES, "ldl": D("100")}
        )
        assert record.corrections.count() == 1  # saving the same values again corrects nothing


def test_checkups_of_another_tenant_are_invisible(world):
    with tenant_context(world.tenant_a):
        record = checkup_record_save(
            member=_person(world), exam_date=dt.date(2025, 5, 20), program="regular", values=VALUES
        )
    with tenant_context(world.tenant_b):
        assert not CheckupRecord.objects.filter(pk=record.pk).exists()


def test_judging_reads_the_stored_values_not_a_stale_instance(world):
    """An instance held from before a correction: the judgement is of the values stored now."""
    with tenant_context(world.tenant_a):
        person = _person(world)
        held = checkup_record_save(member=person, exam_date=dt.date(2025, 5, 20), program="regular",
                                   values={"systolic": D("118")})  # fmt: skip
        checkup_record_save(member=person, exam_date=dt.date(2025, 5, 20), program="regular",
                            values={"systolic": D("165")})  # fmt: skip
        assert checkup_judge(record=held).grades == {"systolic": "D"}
