"""Judging checkup results on one uniform standard (Ailes+): grades A–E per item and overall, and the
MHLW judgement values (保健指導判定値 / 受診勧奨判定値). Pure functions over a criteria set's data.

Bands are ``[grade, lower bound inclusive]`` in ascending order, so a value takes the grade of the last
band whose lower bound it reaches; items treated by medication are graded E (治療中).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from decimal import Decimal

GRADE_ORDER = {"A": 0, "B": 1, "C": 2, "D": 3, "E": 4}


class MhlwLevel(enum.StrEnum):
    NORMAL = "normal"  # 基準範囲内
    GUIDANCE = "guidance"  # 保健指導判定値以上
    REFERRAL = "referral"  # 受診勧奨判定値以上


@dataclass(frozen=True)
class JudgementResult:
    grades: dict[str, str]
    overall: str | None
    mhlw: dict[str, str] = field(default_factory=dict)


def grade_item(item: str, value: Decimal, rules: dict, *, medications: frozenset[str] = frozenset()) -> str | None:
    """The grade of one value, or None for an item the criteria do not grade."""
    spec = rules["items"].get(item)
    if spec is None:
        return None
    if spec["treated_by"] and spec["treated_by"] in medications:
        return "E"
    grade = spec["bands"][0][0]
    for band_grade, lower in spec["bands"][1:]:
        if value >= lower:
            grade = band_grade
    return grade


def mhlw_level(item: str, value: Decimal, rules: dict, *, sex: str) -> MhlwLevel | None:
    spec = rules["mhlw"].get(item)
    if spec is None:
        return None
    guidance, referral = spec["guidance"], spec["referral"]
    if isinstance(guidance, dict):
        if sex not in guidance:
            return None  # a sex-specific value cannot be judged without the sex
        guidance = guidance[sex]
    if spec["direction"] == "high":
        if referral is not None and value >= referral:
            return MhlwLevel.REFERRAL
        return MhlwLevel.GUIDANCE if value >= guidance else MhlwLevel.NORMAL
    if referral is not None and value <= referral:
        return MhlwLevel.REFERRAL
    return MhlwLevel.GUIDANCE if value <= guidance else MhlwLevel.NORMAL


def judge(
    values: dict[str, Decimal], rules: dict, *, sex: str, medications: frozenset[str] = frozenset()
) -> JudgementResult:
    """Grades for every graded item present, the overall grade (the worst item; E whenever an item is
    under treatment) and the MHLW level of every item that has judgement values."""
    grades = {
        item: grade
        for item, value in values.items()
        if value is not None and (grade := grade_item(item, value, rules, medications=medications))
    }
    overall = max(grades.values(), key=GRADE_ORDER.__getitem__) if grades else None
    mhlw = {
        item: str(level)
        for item, value in values.items()
        if value is not None and (level := mhlw_level(item, value, rules, sex=sex)) is not None
    }
    return JudgementResult(grades=grades, overall=overall, mhlw=mhlw)
