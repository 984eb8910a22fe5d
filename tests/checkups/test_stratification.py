"""特定保健指導 stratification (4th period) and the metabolic-syndrome judgement: every boundary from
the rules, plus properties over random checkups."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checkups import criteria
from checkups.stratification import Checkup, Level, MetabolicSyndrome, Risk, metabolic_syndrome, risks, stratify

RULES = criteria.load("specific_guidance_fy2024")
# A healthy, fasting 50-year-old man with a large waist: no risk at all.
BASE = Checkup(
    sex="male", age=50, waist=D("90"), bmi=D("24"), systolic=D("120"), diastolic=D("70"),
    triglycerides_fasting=D("100"), hdl=D("60"), glucose_fasting=D("90"), hba1c=D("5.2"), hours_since_meal=D("12"),
)  # fmt: skip


def random_tg(value: str, hours: D | None) -> dict:
    """Triglycerides coded as a random (non-fasting) sample, drawn ``hours`` after a meal."""
    return {"triglycerides_fasting": None, "triglycerides_random": D(value), "hours_since_meal": hours}


def random_glucose(value: str, hours: D | None, *, hba1c: D | None = None) -> dict:
    """Glucose coded as a random sample, drawn ``hours`` after a meal, beside ``hba1c``."""
    return {"glucose_fasting": None, "glucose_random": D(value), "hours_since_meal": hours, "hba1c": hba1c}


def level(**changes) -> Level:
    return stratify(replace(BASE, **changes)).level


def test_thresholds_come_from_the_versioned_data():
    assert RULES["effective_from"] == "2024-04-01"
    assert RULES["risks"]["hba1c"] == D("5.6") and RULES["waist_cm"] == {"male": D("85"), "female": D("90")}


@pytest.mark.parametrize(
    ("sex", "waist", "bmi", "group"),
    [
        ("male", "84.9", "24.9", None), ("male", "85", "20", "waist"), ("male", "84.9", "25", "bmi"),
        ("female", "89.9", "24.9", None), ("female", "90", "20", "waist"), ("female", "89.9", "25.0", "bmi"),
    ],
)  # fmt: skip
def test_obesity_groups_at_their_boundaries(sex, waist, bmi, group):
    result = stratify(replace(BASE, sex=sex, waist=D(waist), bmi=D(bmi), systolic=D("140")))
    assert result.group == group
    assert result.level == (Level.INFORMATION if group is None else Level.MOTIVATIONAL)


@pytest.mark.parametrize(
    ("changes", "risk", "present"),
    [
        ({"systolic": D("129")}, Risk.BLOOD_PRESSURE, False),
        ({"systolic": D("130")}, Risk.BLOOD_PRESSURE, True),
        ({"diastolic": D("84")}, Risk.BLOOD_PRESSURE, False),
        ({"diastolic": D("85")}, Risk.BLOOD_PRESSURE, True),
        ({"triglycerides_fasting": D("149")}, Risk.LIPID, False),
        ({"triglycerides_fasting": D("150")}, Risk.LIPID, True),
        # a fasting-coded value is fasting even when the draw time is unknown
        ({"triglycerides_fasting": D("160"), "hours_since_meal": None}, Risk.LIPID, True),
        (random_tg("174", D("9.9")), Risk.LIPID, False),  # random: 175
        (random_tg("175", D("9.9")), Risk.LIPID, True),
        (random_tg("174", None), Risk.LIPID, False),
        # a random-coded value drawn 10 h or more after a meal is a fasting one
        (random_tg("160", D("10")), Risk.LIPID, True),
        ({"hdl": D("40")}, Risk.LIPID, False),
        ({"hdl": D("39")}, Risk.LIPID, True),
        ({"glucose_fasting": D("99")}, Risk.GLUCOSE, False),
        ({"glucose_fasting": D("100")}, Risk.GLUCOSE, True),
        ({"glucose_fasting": D("99"), "hba1c": D("6.5")}, Risk.GLUCOSE, False),  # fasting glucose decides
        ({"glucose_fasting": D("130"), "hba1c": None, "hours_since_meal": None}, Risk.GLUCOSE, True),  # time unknown
        ({"glucose_fasting": None, "hba1c": D("5.5")}, Risk.GLUCOSE, False),
        ({"glucose_fasting": None, "hba1c": D("5.6")}, Risk.GLUCOSE, True),
        ({"glucose_fasting": None, "glucose_random": D("99"), "hba1c": D("6.5")}, Risk.GLUCOSE, False),  # drawn at 12 h
        (random_glucose("130", D("5"), hba1c=D("5.5")), Risk.GLUCOSE, False),  # HbA1c decides
        (random_glucose("100", D("5"), hba1c=None), Risk.GLUCOSE, True),
        (random_glucose("100", D("3.5"), hba1c=None), Risk.GLUCOSE, True),
        (random_glucose("300", D("3.4"), hba1c=None), Risk.GLUCOSE, False),  # too soon
        (random_glucose("300", None, hba1c=None), Risk.GLUCOSE, False),  # timing unknown
    ],
)
def test_each_risk_at_its_boundary(changes, risk, present):
    assert (risk in risks(replace(BASE, **changes), RULES)) is present


def test_smoking_counts_only_with_another_risk():
    assert risks(replace(BASE, smoker=True), RULES) == frozenset()
    assert risks(replace(BASE, smoker=True, systolic=D("130")), RULES) == {Risk.BLOOD_PRESSURE, Risk.SMOKING}
    assert level(smoker=True) == Level.INFORMATION
    assert level(smoker=True, systolic=D("130")) == Level.ACTIVE  # waist group: 2 risks


@pytest.mark.parametrize(
    ("group_changes", "risk_changes", "expected"),
    [
        ({}, {}, Level.INFORMATION),
        ({}, {"systolic": D("130")}, Level.MOTIVATIONAL),
        ({}, {"systolic": D("130"), "hdl": D("39")}, Level.ACTIVE),
        ({"waist": D("80"), "bmi": D("26")}, {"systolic": D("130")}, Level.MOTIVATIONAL),
        ({"waist": D("80"), "bmi": D("26")}, {"systolic": D("130"), "hdl": D("39")}, Level.MOTIVATIONAL),
        (
            {"waist": D("80"), "bmi": D("26")},
            {"systolic": D("130"), "hdl": D("39"), "glucose_fasting": D("100")},
            Level.ACTIVE,
        ),
        ({"waist": D("80"), "bmi": D("26")}, {"systolic": D("130"), "hdl": D("39"), "smoker": True}, Level.ACTIVE),
    ],
)
def test_levels_by_group_and_number_of_risks(group_changes, risk_changes, expected):
    assert level(**group_changes, **risk_changes) == expected


@pytest.mark.parametrize("medication", ["on_bp_medication", "on_glucose_medication", "on_lipid_medication"])
def test_medication_excludes_from_guidance(medication):
    assert level(systolic=D("160"), hdl=D("30"), **{medication: True}) == Level.INFORMATION


AGES = [(39, Level.NOT_TARGET), (40, Level.ACTIVE), (64, Level.ACTIVE), (65, Level.MOTIVATIONAL),
        (74, Level.MOTIVATIONAL), (75, Level.NOT_TARGET)]  # fmt: skip


@pytest.mark.parametrize(("age", "expected"), AGES)
def test_age_range_and_the_65_to_74_cap(age, expected):
    assert level(age=age, systolic=D("140"), hdl=D("30")) == expected


def test_without_waist_the_level_cannot_be_decided():
    assert level(waist=None).label == "判定不能"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"waist": D("84")}, MetabolicSyndrome.NO),
        ({}, MetabolicSyndrome.NO),
        ({"systolic": D("130")}, MetabolicSyndrome.PRELIMINARY),
        ({"systolic": D("130"), "glucose_fasting": D("110")}, MetabolicSyndrome.MEETS),
        ({"systolic": D("130"), "glucose_fasting": D("109")}, MetabolicSyndrome.PRELIMINARY),
        ({"systolic": D("130"), "glucose_fasting": None, "hba1c": D("6.0")}, MetabolicSyndrome.MEETS),
        ({"systolic": D("130"), "glucose_fasting": D("100"), "hba1c": D("7.0")}, MetabolicSyndrome.PRELIMINARY),
        # glucose drawn right after a meal, or at an unknown time, does not decide: HbA1c does
        ({"systolic": D("130"), **random_glucose("140", D("0"), hba1c=D("5.4"))}, MetabolicSyndrome.PRELIMINARY),
        ({"systolic": D("130"), **random_glucose("140", None, hba1c=D("5.4"))}, MetabolicSyndrome.PRELIMINARY),
        ({"systolic": D("130"), **random_glucose("110", D("4"))}, MetabolicSyndrome.MEETS),
        # a usable random glucose comes before HbA1c here (HbA1c only where no glucose was measured)
        ({"systolic": D("130"), **random_glucose("115", D("5"), hba1c=D("5.8"))}, MetabolicSyndrome.MEETS),
        ({"systolic": D("130"), **random_glucose("100", D("5"), hba1c=D("6.1"))}, MetabolicSyndrome.PRELIMINARY),
        (
            {"triglycerides_fasting": D("150"), "hours_since_meal": None, "hdl": D("60"), "systolic": D("130")},
            MetabolicSyndrome.MEETS,
        ),
        ({"on_bp_medication": True, "hdl": D("39")}, MetabolicSyndrome.MEETS),
        ({"waist": None}, MetabolicSyndrome.UNDETERMINED),
    ],
)
def test_metabolic_syndrome_judgement(changes, expected):
    assert metabolic_syndrome(replace(BASE, **changes)) == expected


# --- properties ---------------------------------------------------------------------------------------

values = st.decimals(min_value=0, max_value=400, places=1, allow_nan=False, allow_infinity=False)
maybe = st.one_of(st.none(), values)
checkups = st.builds(
    Checkup,
    sex=st.sampled_from(["male", "female"]),
    age=st.integers(min_value=30, max_value=80),
    waist=maybe, bmi=st.one_of(st.none(), st.decimals(min_value=10, max_value=45, places=1)),
    systolic=maybe, diastolic=maybe, triglycerides_fasting=maybe, triglycerides_random=maybe, hdl=maybe,
    glucose_fasting=maybe, glucose_random=maybe,
    hba1c=st.one_of(st.none(), st.decimals(min_value=3, max_value=15, places=1)),
    hours_since_meal=st.one_of(st.none(), st.decimals(min_value=0, max_value=24, places=1)),
    on_bp_medication=st.booleans(), on_glucose_medication=st.booleans(), on_lipid_medication=st.booleans(),
    smoker=st.booleans(),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(checkups)
def test_property_medication_and_age_caps_always_hold(checkup):
    result = stratify(checkup)
    if checkup.on_bp_medication or checkup.on_glucose_medication or checkup.on_lipid_medication:
        assert result.level <= Level.INFORMATION
    if 65 <= checkup.age <= 74:
        assert result.level != Level.ACTIVE
    if result.group is None:
        assert result.level <= Level.INFORMATION
    if Risk.SMOKING in result.risks:
        assert len(result.risks) >= 2


@settings(max_examples=300, deadline=None)
@given(checkups, st.sampled_from(["systolic", "diastolic", "triglycerides_fasting", "triglycerides_random",
                                  "glucose_fasting", "glucose_random", "hba1c", "waist", "bmi"]),
       st.decimals(min_value=0, max_value=50, places=1))  # fmt: skip
def test_property_a_worse_value_never_lowers_the_level(checkup, name, increase):
    before = getattr(checkup, name)
    if before is None:
        return
    worse = replace(checkup, **{name: before + increase})
    assert stratify(worse).level >= stratify(checkup).level


@settings(max_examples=300, deadline=None)
@given(checkups, st.decimals(min_value=0, max_value=50, places=1))
def test_property_lower_hdl_never_lowers_the_level(checkup, decrease):
    if checkup.hdl is None:
        return
    assert stratify(replace(checkup, hdl=checkup.hdl - decrease)).level >= stratify(checkup).level


@settings(max_examples=200, deadline=None)
@given(checkups)
def test_property_smoking_adds_at_most_one_risk(checkup):
    with_smoking = risks(replace(checkup, smoker=True), RULES)
    without = risks(replace(checkup, smoker=False), RULES)
    assert with_smoking - without <= {Risk.SMOKING} and len(with_smoking) - len(without) <= 1
