"""Judging checkup results on one uniform standard (Ailes+): grades A–E per item and overall, and the
MHLW judgement values (保健指導判定値 / 受診勧奨判定値). Pure functions over a criteria set's data.

Bands are ``[grade, lower bound inclusive]`` in ascending order, so a value takes the grade of the last
band whose lower bound it reaches; an item's bands may differ by sex (``{"male": [...], "female": [...]}``),
and such an item is not graded without the person's sex; items treated by medication are graded E (治療中).
"""

from __future__ import annotations

import enum
from bisect import bisect_right
from dataclasses import dataclass, field
from decimal import Decimal

GRADE_ORDER = {"A": 0, "B": 1, "C": 2, "D": 3, "E": 4}


class MhlwLevel(enum.StrEnum):
    NORMAL = "normal"  # 基準範囲内
    GUIDANCE = "guidance"  # 保健指導判定値に該当 (at or above it; at or below for a low limit such as HDL)
    REFERRAL = "referral"  # 受診勧奨判定値に該当


@dataclass(frozen=True)
class JudgementResult:
    grades: dict[str, str]
    overall: str | None
    mhlw: dict[str, str] = field(default_factory=dict)


def grade_item(
    item: str, value: Decimal, rules: dict, *, medications: frozenset[str] = frozenset(), sex: str = ""
) -> str | None:
    """The grade of one value, or None for an item the criteria do not grade (or grade by sex, when the
    sex is not known)."""
    spec = _compiled(rules)[0].get(item)
    return None if spec is None else _grade(spec, value, medications, sex)


def mhlw_level(item: str, value: Decimal, rules: dict, *, sex: str) -> MhlwLevel | None:
    spec = _compiled(rules)[1].get(item)
    return None if spec is None else _level(spec, value, sex)


def judge(
    values: dict[str, Decimal], rules: dict, *, sex: str, medications: frozenset[str] = frozenset()
) -> JudgementResult:
    """Grades for every graded item present, the overall grade (the worst item; E whenever the person is
    under treatment for something the criteria grade, measured this time or not) and the MHLW level of
    every item that has judgement values."""
    grading, levels = _compiled(rules)
    grades: dict[str, str] = {}
    mhlw: dict[str, str] = {}
    for item, value in values.items():
        if value is None:
            continue
        spec = grading.get(item)
        if spec is not None and (grade := _grade(spec, value, medications, sex)):
            grades[item] = grade
        limits = levels.get(item)
        if limits is not None and (level := _level(limits, value, sex)) is not None:
            mhlw[item] = level.value
    overall = max(grades.values(), key=GRADE_ORDER.__getitem__) if grades else None
    if medications & {treated_by for treated_by, _bands in grading.values()}:
        overall = "E"  # under treatment for what the criteria grade, even when this checkup did not measure it
    return JudgementResult(grades=grades, overall=overall, mhlw=mhlw)


@dataclass(frozen=True)
class Band:
    """A grade's range of one item: ``lower`` inclusive, ``upper`` exclusive, None where open."""

    grade: str
    lower: Decimal | None
    upper: Decimal | None


def bands_of(item: str, rules: dict, *, sex: str = "") -> list[Band]:
    """The item's grade bands in ascending order (by the person's sex where the criteria differ by sex);
    empty for an item the criteria do not grade, or grade by sex when the sex is not known."""
    spec = _compiled(rules)[0].get(item)
    if spec is None:
        return []
    by_sex = spec[1]
    found = by_sex.get("") or by_sex.get(sex)
    if found is None:
        return []
    lowers, grades = found
    bounds = (None, *lowers, None)
    return [Band(grade, bounds[at], bounds[at + 1]) for at, grade in enumerate(grades)]


def band_of(item: str, value: Decimal, rules: dict, *, sex: str = "") -> Band | None:
    """The band ``value`` falls in (its grade before any medication makes it E)."""
    return next((b for b in bands_of(item, rules, sex=sex) if _within(b, value)), None)


def _within(band: Band, value: Decimal) -> bool:
    return (band.lower is None or value >= band.lower) and (band.upper is None or value < band.upper)


# --- The criteria compiled for judging: read once per criteria document, not once per value ----------

# item → (treated_by, bands by sex ("" when the same for both): (lower bounds, grades))
_Bands = tuple[tuple[Decimal, ...], tuple[str, ...]]
_Grading = dict[str, tuple[str | None, dict[str, _Bands]]]
# item → (direction is high, guidance by sex ("" when the same for both), referral)
_Levels = dict[str, tuple[bool, dict[str, Decimal], Decimal | None]]
_COMPILED: dict[int, tuple[dict, _Grading, _Levels]] = {}


def _compiled(rules: dict) -> tuple[_Grading, _Levels]:
    found = _COMPILED.get(id(rules))
    if found is None or found[0] is not rules:  # the same id may be a new document after the old one is gone
        if len(_COMPILED) > 32:
            _COMPILED.clear()
        found = _COMPILED[id(rules)] = (rules, *_compile(rules))
    return found[1], found[2]


def _compile(rules: dict) -> tuple[_Grading, _Levels]:
    def bands_of(bands: list) -> _Bands:
        return tuple(lower for _grade, lower in bands[1:]), tuple(grade for grade, _lower in bands)

    grading: _Grading = {}
    for item, spec in rules["items"].items():
        bands = spec["bands"]
        by_sex = {sex: bands_of(b) for sex, b in bands.items()} if isinstance(bands, dict) else {"": bands_of(bands)}
        grading[item] = (spec["treated_by"], by_sex)
    levels: _Levels = {}
    for item, spec in rules["mhlw"].items():
        high, guidance, referral = spec["direction"] == "high", spec["guidance"], spec["referral"]
        guidance = guidance if isinstance(guidance, dict) else {"": guidance}
        if not high:  # kept as the strict limit each "or below" means: values below it are at the level
            guidance = {sex: _below(limit) for sex, limit in guidance.items()}
            referral = _below(referral)
        levels[item] = (high, guidance, referral)
    return grading, levels


def _below(limit: Decimal | str | None) -> Decimal | None:
    """A low limit "39 or below", written in whole mg/dL like the results it was made for, covers
    everything under 40: a value reported with more decimals (39.5) is at the level too, as the
    stratification's "HDL under 40" and the grade bands count it. So the strict limit is the written one
    plus one unit of its last digit."""
    if limit is None:
        return None
    limit = Decimal(limit)
    return limit + Decimal(1).scaleb(limit.as_tuple().exponent)


def _grade(spec: tuple[str | None, dict[str, _Bands]], value: Decimal, medications: frozenset[str], sex: str):
    treated_by, by_sex = spec
    if treated_by and treated_by in medications:
        return "E"
    bands = by_sex.get("") or by_sex.get(sex)
    if bands is None:
        return None  # sex-specific bands cannot grade a value without the sex
    lowers, grades = bands
    return grades[bisect_right(lowers, value)]  # the last band whose lower bound the value reaches


def _level(spec: tuple[bool, dict[str, Decimal], Decimal | None], value: Decimal, sex: str) -> MhlwLevel | None:
    high, guidance_by_sex, referral = spec
    guidance = guidance_by_sex.get("", guidance_by_sex.get(sex))
    if guidance is None:
        return None  # a sex-specific value cannot be judged without the sex
    if high:
        if referral is not None and value >= referral:
            return MhlwLevel.REFERRAL
        return MhlwLevel.GUIDANCE if value >= guidance else MhlwLevel.NORMAL
    if referral is not None and value < referral:
        return MhlwLevel.REFERRAL
    return MhlwLevel.GUIDANCE if value < guidance else MhlwLevel.NORMAL
