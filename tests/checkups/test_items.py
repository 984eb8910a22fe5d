"""The item catalogue is data (checkups/criteria/items_v1.json): every code of the domain reference maps
to the right key, units normalise to one canonical unit, and plausible ranges catch impossible values."""

from __future__ import annotations

import copy
import json
from decimal import Decimal as D

import pytest

from checkups import items
from checkups.items import Code, Legacy, Question

CAT = items.load()

# The codes of ../shared/domain/CHECKUPS.md, copied by hand so that a slip in the data file shows up here.
REFERENCE = {
    "height": ["9N001000000000001"],
    "weight": ["9N006000000000001"],
    "bmi": ["9N011000000000001"],
    "waist": ["9N016160100000001", "9N016160200000001", "9N016160300000001"],
    "systolic": ["9A751000000000001", "9A752000000000001", "9A755000000000001"],
    "diastolic": ["9A761000000000001", "9A762000000000001", "9A765000000000001"],
    "triglycerides_fasting": ["3F015000002327101", "3F015000002327201", "3F015000002399901"],
    "triglycerides_random": ["3F015129902327101", "3F015129902327201", "3F015129902399901"],
    "hdl": ["3F070000002327101", "3F070000002327201", "3F070000002399901"],
    "ldl": ["3F077000002327101", "3F077000002327201", "3F077000002399901"],
    "ast": ["3B035000002327201", "3B035000002399901"],
    "alt": ["3B045000002327201", "3B045000002399901"],
    "ggt": ["3B090000002327101", "3B090000002399901"],
    "glucose_fasting": ["3D010000001926101", "3D010000002227101", "3D010000001927201", "3D010000001999901"],
    "glucose_random": ["3D010129901926101", "3D010129902227101", "3D010129901927201", "3D010129901999901"],
    "hba1c": ["3D046000001906202", "3D046000001920402", "3D046000001927102", "3D046000001999902"],
    "urine_sugar": ["1A020000000191111", "1A020000000190111"],
    "urine_protein": ["1A010000000191111", "1A010000000190111"],
}
QUESTIONS = {
    "blood_draw_timing": "9N141000000000011",
    "medication_bp": "9N701000000000011",
    "medication_glucose": "9N706000000000011",
    "medication_lipid": "9N711000000000011",
    "smoking": "9N736000000000011",
    "metabolic_syndrome": "9N501000000000011",
    "guidance_level": "9N506000000000011",
    "physician_judgement": "9N511000000000049",
}
UNITS = {
    "height": "cm", "weight": "kg", "bmi": "kg/m2", "waist": "cm", "systolic": "mm[Hg]", "diastolic": "mm[Hg]",
    "triglycerides_fasting": "mg/dL", "triglycerides_random": "mg/dL", "hdl": "mg/dL", "ldl": "mg/dL",
    "ast": "U/L", "alt": "U/L", "ggt": "U/L", "glucose_fasting": "mg/dL", "glucose_random": "mg/dL", "hba1c": "%",
}  # fmt: skip


def test_catalogue_holds_exactly_the_reference_codes():
    assert {key: sorted(c.code for c in item.codes) for key, item in CAT.items.items()} == {
        key: sorted(codes) for key, codes in REFERENCE.items()
    }
    assert {key: q.code for key, q in CAT.questions.items()} == QUESTIONS


@pytest.mark.parametrize(("key", "codes"), REFERENCE.items())
def test_every_code_looks_up_to_its_item(key, codes):
    for code in codes:
        found = CAT.lookup(code)
        assert isinstance(found, Code) and found.item == key


def test_questionnaire_codes_look_up_to_questions():
    for key, code in QUESTIONS.items():
        found = CAT.lookup(code)
        assert isinstance(found, Question) and found.key == key


def test_quantities_have_one_canonical_unit_and_a_plausible_range():
    assert {key: item.unit for key, item in CAT.items.items() if item.type == "PQ"} == UNITS
    for item in CAT.items.values():
        if item.type == "PQ":
            assert D(0) <= item.minimum < item.maximum
            assert item.precision in (D("1"), D("0.1"))


def test_blood_pressure_roles_drive_the_representative_value():
    roles = {c.role: c.code for c in CAT.items["systolic"].codes}
    assert roles == {
        "representative": "9A755000000000001",
        "reading1": "9A751000000000001",
        "reading2": "9A752000000000001",
    }
    roles = {c.role: c.code for c in CAT.items["diastolic"].codes}
    assert roles["representative"] == "9A765000000000001"


@pytest.mark.parametrize(
    ("key", "given", "canonical"),
    [
        ("systolic", "mm[Hg]", "mm[Hg]"),
        ("systolic", "mmHg", "mm[Hg]"),
        ("diastolic", "mm Hg", "mm[Hg]"),
        ("systolic", "ｍｍＨｇ", "mm[Hg]"),  # full-width, as some Japanese writers emit
        ("ldl", "mg/dl", "mg/dL"),
        ("hdl", "MG/DL", "mg/dL"),
        ("ast", "IU/l", "U/L"),
        ("alt", "IU/L", "U/L"),
        ("ggt", "U/L", "U/L"),
        ("hba1c", "%", "%"),
        ("weight", "㎏", "kg"),
        ("bmi", "kg/m²", "kg/m2"),
        ("height", "cm", "cm"),
    ],
)
def test_unit_spellings_normalise(key, given, canonical):
    assert CAT.canonical_unit(CAT.items[key], given) == canonical


@pytest.mark.parametrize(
    ("key", "given"),
    [
        ("glucose_fasting", "mmol/L"),
        ("systolic", "cm"),
        ("height", "m"),
        ("hba1c", "mmol/mol"),
        ("weight", ""),
        ("weight", None),
    ],
)
def test_unknown_or_foreign_units_are_refused(key, given):
    assert CAT.canonical_unit(CAT.items[key], given) is None


@pytest.mark.parametrize(
    ("key", "value", "plausible"),
    [
        ("height", D("1700"), False),
        ("height", D("170.0"), True),
        ("systolic", D("900"), False),
        ("systolic", D("128"), True),
        ("weight", D("-60"), False),
        ("hba1c", D("56"), False),
        ("hba1c", D("5.6"), True),
        ("ast", D("3000"), True),  # acute hepatitis: high but real
    ],
)
def test_plausibility(key, value, plausible):
    problem = items.plausibility_problem(CAT.items[key], value)
    assert (problem is None) is plausible
    if problem:
        assert CAT.items[key].label in problem and CAT.items[key].label_en in problem


def test_round_half_up_to_the_item_precision():
    assert items.round_half_up(D("132.5"), D("1")) == D("133")
    assert items.round_half_up(D("5.65"), D("0.1")) == D("5.7")
    assert items.round_half_up(D("131.49"), D("1")) == D("131")


def test_old_jds_hba1c_codes_are_recognised_by_prefix():
    legacy = CAT.lookup("3D045000001906202")
    assert isinstance(legacy, Legacy) and legacy.item == "hba1c" and legacy.offset == D("0.4")
    assert CAT.lookup("9Z999000000000001") is None


def _raw():
    path = items.CATALOGUE_DIR / "items_v1.json"
    return json.loads(path.read_text(encoding="utf-8"))


def test_duplicate_codes_in_the_data_are_rejected():
    raw = _raw()
    raw["items"]["weight"]["codes"].append(copy.deepcopy(raw["items"]["height"]["codes"][0]))
    with pytest.raises(ValueError, match="listed twice"):
        items.build(raw)


def test_malformed_codes_and_missing_ranges_are_rejected():
    raw = _raw()
    raw["items"]["height"]["codes"][0]["code"] = "9N001"
    with pytest.raises(ValueError, match="17"):
        items.build(raw)
    raw = _raw()
    del raw["items"]["height"]["plausible"]
    with pytest.raises(ValueError, match="plausible"):
        items.build(raw)


def test_unknown_catalogue_name():
    with pytest.raises(LookupError):
        items.load("../settings")


@pytest.mark.parametrize(
    ("item", "value", "shown"),
    [
        ("bmi", "18.000", "18.0"),  # the item's own decimal is kept
        ("hba1c", "5.600", "5.6"),
        ("systolic", "120.000", "120"),
        ("systolic", "115.500", "115.5"),  # more decimals than the item reads are shown, never rounded away
        ("urine_sugar", "2.000", "±"),  # a coded answer by its label
        ("no_such_item", "1.500", "1.5"),
    ],
)
def test_a_stored_value_reads_with_its_items_decimals(item, value, shown):
    assert items.load().display(item, D(value)) == shown
