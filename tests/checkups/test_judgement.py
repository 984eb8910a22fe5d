"""One uniform standard: grades A–E from the versioned criteria data, and the MHLW judgement values."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from checkups import criteria
from checkups.judgement import MhlwLevel, grade_item, judge, mhlw_level

RULES = criteria.load("uniform_grades_v1")


@pytest.mark.parametrize(
    ("item", "value", "grade"),
    [
        ("systolic", "129", "A"), ("systolic", "130", "B"), ("systolic", "139", "B"), ("systolic", "140", "C"),
        ("systolic", "159", "C"), ("systolic", "160", "D"),
        ("diastolic", "84", "A"), ("diastolic", "85", "B"), ("diastolic", "90", "C"), ("diastolic", "100", "D"),
        ("bmi", "18.4", "C"), ("bmi", "18.5", "A"), ("bmi", "24.9", "A"), ("bmi", "25.0", "C"),
        ("hdl", "34", "D"), ("hdl", "35", "C"), ("hdl", "39", "C"), ("hdl", "40", "A"),
        ("ldl", "59", "B"), ("ldl", "60", "A"), ("ldl", "119", "A"), ("ldl", "120", "B"), ("ldl", "140", "C"),
        ("ldl", "180", "D"),
        ("triglycerides_fasting", "149", "A"), ("triglycerides_fasting", "150", "C"),
        ("triglycerides_fasting", "300", "D"),
        ("ast", "30", "A"), ("ast", "31", "B"), ("ast", "36", "C"), ("ast", "51", "D"),
        ("alt", "30", "A"), ("alt", "31", "B"), ("alt", "41", "C"), ("alt", "51", "D"),
        ("ggt", "50", "A"), ("ggt", "51", "B"), ("ggt", "81", "C"), ("ggt", "101", "D"),
        ("glucose_fasting", "99", "A"), ("glucose_fasting", "100", "B"), ("glucose_fasting", "110", "C"),
        ("glucose_fasting", "126", "D"),
        ("hba1c", "5.5", "A"), ("hba1c", "5.6", "B"), ("hba1c", "5.9", "B"), ("hba1c", "6.0", "C"),
        ("hba1c", "6.4", "C"), ("hba1c", "6.5", "D"),
    ],
)  # fmt: skip
def test_grade_bands_at_every_boundary(item, value, grade):
    assert grade_item(item, D(value), RULES) == grade


def test_items_under_treatment_are_graded_e():
    assert grade_item("systolic", D("150"), RULES, medications=frozenset({"bp"})) == "E"
    assert grade_item("hba1c", D("7.0"), RULES, medications=frozenset({"bp"})) == "D"  # not that medication
    assert grade_item("height", D("170"), RULES) is None  # not graded


def test_overall_grade_is_the_worst_item_and_e_when_treated():
    values = {"systolic": D("125"), "ldl": D("150"), "hba1c": D("5.7"), "height": D("170")}
    result = judge(values, RULES, sex="male")
    assert result.grades == {"systolic": "A", "ldl": "C", "hba1c": "B"}
    assert result.overall == "C"
    assert judge(values, RULES, sex="male", medications=frozenset({"lipid"})).overall == "E"
    assert judge({}, RULES, sex="male").overall is None


def test_a_person_under_treatment_is_e_overall_even_without_that_value():
    # Lipid medication, no lipid measured (定期健診 may leave blood tests out): still 治療中, not A.
    values = {"systolic": D("120"), "height": D("170")}
    result = judge(values, RULES, sex="female", medications=frozenset({"lipid"}))
    assert result.grades == {"systolic": "A"}  # no grade invented for an item not measured
    assert result.overall == "E"
    assert judge(values, RULES, sex="female").overall == "A"


@pytest.mark.parametrize(
    ("item", "value", "sex", "level"),
    [
        ("systolic", "129", "male", MhlwLevel.NORMAL), ("systolic", "130", "male", MhlwLevel.GUIDANCE),
        ("systolic", "140", "male", MhlwLevel.REFERRAL),
        ("hdl", "40", "male", MhlwLevel.NORMAL), ("hdl", "39", "male", MhlwLevel.GUIDANCE),
        ("hdl", "34", "male", MhlwLevel.REFERRAL),
        # "39 or below" in whole mg/dL: a result with decimals under 40 is there too (stratification: HDL < 40)
        ("hdl", "39.5", "male", MhlwLevel.GUIDANCE), ("hdl", "39.99", "male", MhlwLevel.GUIDANCE),
        ("hdl", "34.5", "male", MhlwLevel.REFERRAL), ("hdl", "35", "male", MhlwLevel.GUIDANCE),
        ("systolic", "129.5", "male", MhlwLevel.NORMAL),
        ("waist", "84", "male", MhlwLevel.NORMAL), ("waist", "85", "male", MhlwLevel.GUIDANCE),
        ("waist", "89", "female", MhlwLevel.NORMAL), ("waist", "90", "female", MhlwLevel.GUIDANCE),
        ("hba1c", "5.6", "female", MhlwLevel.GUIDANCE), ("hba1c", "6.5", "female", MhlwLevel.REFERRAL),
        ("triglycerides_random", "174", "male", MhlwLevel.NORMAL),
        ("triglycerides_random", "175", "male", MhlwLevel.GUIDANCE),
        ("bmi", "30", "male", MhlwLevel.GUIDANCE),  # BMI has no referral value
    ],
)  # fmt: skip
def test_mhlw_judgement_values(item, value, sex, level):
    assert mhlw_level(item, D(value), RULES, sex=sex) == level


def test_sex_specific_values_are_not_judged_without_a_sex():
    assert mhlw_level("waist", D("100"), RULES, sex="") is None
    assert judge({"waist": D("100"), "systolic": D("150")}, RULES, sex="").mhlw == {"systolic": "referral"}


def test_an_item_with_bands_by_sex_is_graded_by_the_persons_sex():
    """A criteria version may band an item by sex (e.g. 腹囲: 85 cm for men, 90 cm for women); without a
    sex such an item is not graded, the others still are."""
    rules = {**RULES, "items": {**RULES["items"], "waist": {"treated_by": None, "bands": {
        "male": [["A", None], ["C", D("85")]], "female": [["A", None], ["C", D("90")]]}}}}  # fmt: skip
    assert grade_item("waist", D("87"), rules, sex="male") == "C"
    assert grade_item("waist", D("87"), rules, sex="female") == "A"
    assert grade_item("waist", D("90"), rules, sex="female") == "C"
    assert judge({"waist": D("87"), "systolic": D("150")}, rules, sex="").grades == {"systolic": "C"}
    assert judge({"waist": D("87")}, rules, sex="male").overall == "C"


def test_a_corrected_criteria_document_is_judged_by_its_own_bands():
    """Judging reads each document's own bands, also after an earlier document was judged with."""
    systolic = {"treated_by": "bp", "bands": [["A", None], ["D", D("120")]]}
    stricter = {**RULES, "items": {**RULES["items"], "systolic": systolic}}
    assert grade_item("systolic", D("125"), RULES) == "A"
    assert grade_item("systolic", D("125"), stricter) == "D"
    assert grade_item("systolic", D("125"), RULES) == "A"
