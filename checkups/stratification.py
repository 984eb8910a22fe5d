"""特定保健指導の階層化 (4th period, FY2024–) and the metabolic-syndrome judgement, as pure functions.

Inputs are one checkup's values; thresholds come from a versioned criteria set (checkups.criteria).
The rules (CHECKUPS.md, MHLW 手引き):

1. Waist at or over the sex's threshold → group "waist"; otherwise BMI at or over 25 → group "bmi";
   otherwise no group (情報提供). Without a waist measurement the level cannot be decided.
2. Risks: ① blood pressure; ② lipids (fasting triglycerides ≥150, random ones ≥175 only without a
   fasting value, or low HDL); ③ glucose, by priority: fasting glucose, else HbA1c, else random glucose,
   never glucose drawn within 3.5 h of a meal (or at an unknown time); ④ smoking, only with one of ①–③.
   A value is fasting when its item says so (the provider coded it 空腹時) or when the blood was drawn
   10 h or more after a meal; the item is kept apart from the timing answer, which may be missing.
3. Group "waist": ≥2 risks 積極的支援, 1 動機付け支援; group "bmi": ≥3 積極的支援, 1–2 動機付け支援.
4. Anyone on blood-pressure, glucose or lipid medication is not a guidance target (情報提供).
   Ages 65–74 are capped at 動機付け支援; outside 40–74 the rules do not apply.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from decimal import Decimal

from checkups import criteria as criteria_data

DEFAULT_CRITERIA = "specific_guidance_fy2024"


class Level(enum.IntEnum):
    """Ordered: a higher value is more support."""

    NOT_TARGET = -2  # 対象外 (age outside the rules)
    UNDETERMINED = -1  # 判定不能
    INFORMATION = 0  # 情報提供
    MOTIVATIONAL = 1  # 動機付け支援
    ACTIVE = 2  # 積極的支援

    @property
    def label(self) -> str:
        return {
            Level.NOT_TARGET: "対象外",
            Level.UNDETERMINED: "判定不能",
            Level.INFORMATION: "情報提供",
            Level.MOTIVATIONAL: "動機付け支援",
            Level.ACTIVE: "積極的支援",
        }[self]


class Risk(enum.StrEnum):
    BLOOD_PRESSURE = "blood_pressure"
    LIPID = "lipid"
    GLUCOSE = "glucose"
    SMOKING = "smoking"


class MetabolicSyndrome(enum.StrEnum):
    MEETS = "基準該当"
    PRELIMINARY = "予備群"
    NO = "非該当"
    UNDETERMINED = "判定不能"


@dataclass(frozen=True)
class Checkup:
    """The values one checkup provides; None = not measured. ``hours_since_meal`` None = unknown."""

    sex: str  # "male" | "female"
    age: int  # age reached within the fiscal year
    waist: Decimal | None = None
    bmi: Decimal | None = None
    systolic: Decimal | None = None
    diastolic: Decimal | None = None
    triglycerides_fasting: Decimal | None = None
    triglycerides_random: Decimal | None = None
    hdl: Decimal | None = None
    glucose_fasting: Decimal | None = None
    glucose_random: Decimal | None = None
    hba1c: Decimal | None = None
    hours_since_meal: Decimal | None = None
    on_bp_medication: bool = False
    on_glucose_medication: bool = False
    on_lipid_medication: bool = False
    smoker: bool = False


@dataclass(frozen=True)
class Stratification:
    level: Level
    group: str | None  # "waist", "bmi" or None
    risks: frozenset[Risk] = field(default_factory=frozenset)
    reason: str = ""


def _at_least(value: Decimal | None, threshold: Decimal) -> bool:
    return value is not None and value >= threshold


def is_fasting(checkup: Checkup, rules: dict) -> bool:
    """Blood drawn 10 hours or more after a meal; an unknown time proves nothing."""
    return _at_least(checkup.hours_since_meal, rules["fasting_hours"])


def _fasting(coded: Decimal | None, other: Decimal | None, fasting: bool) -> Decimal | None:
    """The fasting value: the item coded fasting, else the random-coded one from a fasting draw."""
    return coded if coded is not None else (other if fasting else None)


def risks(checkup: Checkup, rules: dict) -> frozenset[Risk]:
    """Risks ①–④ of the checkup (smoking only counts alongside another risk)."""
    limits = rules["risks"]
    found: set[Risk] = set()
    if _at_least(checkup.systolic, limits["systolic_bp"]) or _at_least(checkup.diastolic, limits["diastolic_bp"]):
        found.add(Risk.BLOOD_PRESSURE)
    fasting = is_fasting(checkup, rules)
    fasting_tg = _fasting(checkup.triglycerides_fasting, checkup.triglycerides_random, fasting)
    if fasting_tg is not None:
        high_tg = fasting_tg >= limits["triglycerides_fasting"]
    else:  # only where a fasting sample was impossible
        high_tg = _at_least(checkup.triglycerides_random, limits["triglycerides_random"])
    low_hdl = checkup.hdl is not None and checkup.hdl < limits["hdl_below"]
    if high_tg or low_hdl:
        found.add(Risk.LIPID)
    if _above(_glucose_measure(checkup, rules, fasting), limits["glucose"], limits["hba1c"]):
        found.add(Risk.GLUCOSE)
    if checkup.smoker and found:
        found.add(Risk.SMOKING)
    return frozenset(found)


def _glucose_measure(
    checkup: Checkup, rules: dict, fasting: bool, *, hba1c_before_random: bool = True
) -> tuple[str, Decimal] | None:
    """("glucose" | "hba1c", value) that decides the glucose criterion, by priority: fasting glucose,
    HbA1c, random glucose drawn 3.5 h or more after a meal; None when nothing usable was measured. The
    metabolic-syndrome judgement puts a usable random glucose before HbA1c (``hba1c_before_random``
    False): there HbA1c counts only where no blood glucose was measured."""
    fasting_glucose = _fasting(checkup.glucose_fasting, checkup.glucose_random, fasting)
    if fasting_glucose is not None:
        return "glucose", fasting_glucose
    usable_random = checkup.glucose_random is not None and _at_least(
        checkup.hours_since_meal, rules["random_glucose_min_hours"]
    )
    if usable_random and not hba1c_before_random:
        return "glucose", checkup.glucose_random
    if checkup.hba1c is not None:
        return "hba1c", checkup.hba1c
    if usable_random:
        return "glucose", checkup.glucose_random
    return None


def _above(measure: tuple[str, Decimal] | None, glucose_limit: Decimal, hba1c_limit: Decimal) -> bool:
    if measure is None:
        return False
    kind, value = measure
    return value >= (glucose_limit if kind == "glucose" else hba1c_limit)


def stratify(checkup: Checkup, criteria: str | dict = DEFAULT_CRITERIA) -> Stratification:
    """The 特定保健指導 level of one checkup under a criteria set (its name, or its parsed data)."""
    rules = criteria if isinstance(criteria, dict) else criteria_data.load(criteria)
    ages, capped = rules["target_ages"], rules["capped_ages"]
    if not ages["min"] <= checkup.age <= ages["max"]:
        return Stratification(Level.NOT_TARGET, None, reason="age")
    if checkup.waist is None:
        return Stratification(Level.UNDETERMINED, None, reason="waist missing")
    if _at_least(checkup.waist, rules["waist_cm"][checkup.sex]):
        group = "waist"
    elif _at_least(checkup.bmi, rules["bmi"]):
        group = "bmi"
    else:
        return Stratification(Level.INFORMATION, None, reason="no obesity")
    found = risks(checkup, rules)
    if checkup.on_bp_medication or checkup.on_glucose_medication or checkup.on_lipid_medication:
        return Stratification(Level.INFORMATION, group, found, reason="on medication")
    counts = rules["groups"][group]
    if len(found) >= counts["active"]:
        level = Level.ACTIVE
    elif len(found) >= counts["motivational"]:
        level = Level.MOTIVATIONAL
    else:
        level = Level.INFORMATION
    if level == Level.ACTIVE and capped["min"] <= checkup.age <= capped["max"]:
        return Stratification(Level.MOTIVATIONAL, group, found, reason="age cap")
    return Stratification(level, group, found)


def metabolic_syndrome(checkup: Checkup, criteria: str | dict = DEFAULT_CRITERIA) -> MetabolicSyndrome:
    """メタボリックシンドローム判定 (9N501): waist plus ≥2 of glucose, lipids, blood pressure → 基準該当;
    one → 予備群. Medication counts as meeting its criterion. Glucose ≥110 from a fasting sample, else from a
    random one (never drawn within 3.5 h of a meal, nor at an unknown time); HbA1c ≥6.0 only where no such
    glucose was measured (unlike the guidance risks, where HbA1c comes before a random glucose)."""
    rules = criteria if isinstance(criteria, dict) else criteria_data.load(criteria)
    limits = rules["metabolic_syndrome"]
    if checkup.waist is None:
        return MetabolicSyndrome.UNDETERMINED
    if not _at_least(checkup.waist, rules["waist_cm"][checkup.sex]):
        return MetabolicSyndrome.NO
    measure = _glucose_measure(checkup, rules, is_fasting(checkup, rules), hba1c_before_random=False)
    glucose = _above(measure, limits["glucose"], limits["hba1c"])
    triglycerides = checkup.triglycerides_fasting
    if triglycerides is None:
        triglycerides = checkup.triglycerides_random
    lipid = _at_least(triglycerides, limits["triglycerides"]) or (
        checkup.hdl is not None and checkup.hdl < limits["hdl_below"]
    )
    pressure = _at_least(checkup.systolic, limits["systolic_bp"]) or _at_least(
        checkup.diastolic, limits["diastolic_bp"]
    )
    met = sum(
        [
            glucose or checkup.on_glucose_medication,
            lipid or checkup.on_lipid_medication,
            pressure or checkup.on_bp_medication,
        ]
    )
    if met >= 2:
        return MetabolicSyndrome.MEETS
    return MetabolicSyndrome.PRELIMINARY if met == 1 else MetabolicSyndrome.NO
