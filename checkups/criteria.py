"""Versioned judgement criteria shipped as data (checkups/criteria/*.json), never as constants in code.

Numbers are kept as decimal strings so that a threshold such as HbA1c 5.6 % compares exactly.
The files seed the CriteriaSet rows; operators correct criteria as new versions, checked by ``validate``.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.utils.translation import gettext as _

CRITERIA_DIR = Path(__file__).resolve().parent / "criteria"


def _decimals(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _decimals(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decimals(item) for item in value]
    if isinstance(value, str):
        try:
            return Decimal(value)
        except ArithmeticError:
            return value
    return value


def parse(raw: dict[str, Any]) -> dict[str, Any]:
    """A criteria document (file or CriteriaSet.data) with every numeric string as a Decimal."""
    data = _decimals(raw)
    data["name"], data["title"], data["effective_from"] = raw["name"], raw["title"], raw["effective_from"]
    return data


@lru_cache(maxsize=16)
def load(name: str) -> dict[str, Any]:
    """The criteria set ``name`` as shipped in checkups/criteria/ (the database copies start from these)."""
    path = CRITERIA_DIR / f"{name}.json"
    if not path.is_file() or path.parent != CRITERIA_DIR:
        raise LookupError(f"no criteria set {name!r}")
    return parse(json.loads(path.read_text(encoding="utf-8")))


def dumps(document: dict[str, Any]) -> str:
    """A criteria document as JSON for people: indented, with each band or small object on one line."""
    text = json.dumps(document, ensure_ascii=False, indent=2)
    return re.sub(r"([\[{])\s+([^\[\]{}]*?)\s+([\]}])", lambda m: m[1] + re.sub(r"\s*\n\s*", " ", m[2]) + m[3], text)


# --- Checking a criteria document before it is stored (operators' corrections) ----------------------

GRADES = ("A", "B", "C", "D", "E")
TREATMENTS = frozenset({"bp", "glucose", "lipid"})  # the kinds services.MEDICATIONS reads from the questionnaire
SEXES = ("male", "female")
SHIPPED_GUIDANCE = "specific_guidance_fy2024"  # the shape of a guidance set when no version is given


class CriteriaError(ValueError):
    """A criteria document the judging could not use. ``messages`` are for the operator (Japanese)."""

    def __init__(self, messages: str | list[str]) -> None:
        self.messages = [messages] if isinstance(messages, str) else list(messages)
        super().__init__("; ".join(str(message) for message in self.messages))


def kind_of(document: dict[str, Any]) -> str | None:
    """The kind of a criteria document: "grades" (uniform grades and MHLW values), "guidance" or None."""
    if "items" in document or "mhlw" in document:
        return "grades"
    if "risks" in document or "groups" in document:
        return "guidance"
    return None


def validate(document: Any, *, like: dict[str, Any] | None = None) -> dict[str, Any]:
    """Check a criteria document the way the judging will read it and return it parsed.

    ``like`` is the version being corrected: the new document must be of the same kind. Besides the
    structure (bands in ascending order, grades A–E, decimal strings), the document is run through the
    judging functions themselves on sample values, so a version that would fail at judging time is
    refused here. Raises CriteriaError listing every problem found.
    """
    if not isinstance(document, dict):
        raise CriteriaError(_("判定基準は JSON のオブジェクト（{ … }）で入力してください。"))
    kind = kind_of(like) if like is not None else kind_of(document)
    if kind is None:
        raise CriteriaError(_("判定基準の種類がわかりません（items と mhlw、または risks が必要です）。"))
    problems: list[str] = []
    for key in ("name", "title", "effective_from"):
        if not isinstance(document.get(key), str) or not document[key].strip():
            problems.append(_("%(path)s: 空でない文字列を指定してください。") % {"path": key})
    if kind == "grades":
        _check_grades(document, problems)
    else:
        _check_guidance(document, like, problems)
    if problems:
        raise CriteriaError(problems)
    parsed = parse(document)
    _dry_run(kind, parsed)
    return parsed


def _decimal(value: Any, path: str, problems: list[str], *, allow_none: bool = False) -> Decimal | None:
    if value is None and allow_none:
        return None
    if isinstance(value, str):
        try:
            number = Decimal(value)
        except ArithmeticError:
            number = None
        if number is not None and number.is_finite():
            return number
    problems.append(_('%(path)s: 数値は "5.6" のように文字列で書いてください。') % {"path": path})
    return None


def _check_grades(document: dict[str, Any], problems: list[str]) -> None:
    from checkups import items as catalogue

    known = catalogue.load().items
    labels = document.get("grade_labels", {})
    if not isinstance(labels, dict) or set(labels) - set(GRADES):
        problems.append(_("grade_labels: 区分は A〜E のいずれかにしてください。"))
    graded = document.get("items")
    if not isinstance(graded, dict) or not graded:
        problems.append(_("items: 判定する項目を1つ以上指定してください。"))
        graded = {}
    for item, spec in graded.items():
        path = f"items.{item}"
        if item not in known:
            problems.append(_("%(path)s: 項目カタログにない項目です。") % {"path": path})
        if not isinstance(spec, dict):
            problems.append(_("%(path)s: オブジェクト（{ … }）にしてください。") % {"path": path})
            continue
        if spec.get("treated_by") not in {None, *TREATMENTS}:
            problems.append(_("%(path)s.treated_by: null, \"bp\", \"glucose\", \"lipid\" のいずれかにしてください。")
                            % {"path": path})  # fmt: skip
        bands = spec.get("bands")
        if isinstance(bands, dict) and bands and not set(bands) - set(SEXES):  # sex-specific bands
            for sex, sex_bands in bands.items():
                _check_bands(sex_bands, f"{path}.bands.{sex}", problems)
        else:
            _check_bands(bands, f"{path}.bands", problems)
    mhlw = document.get("mhlw")
    if not isinstance(mhlw, dict):
        problems.append(_("mhlw: 保健指導判定値・受診勧奨判定値を指定してください。"))
        mhlw = {}
    for item, spec in mhlw.items():
        path = f"mhlw.{item}"
        if item not in known:
            problems.append(_("%(path)s: 項目カタログにない項目です。") % {"path": path})
        if not isinstance(spec, dict) or spec.get("direction") not in {"high", "low"}:
            problems.append(_('%(path)s.direction: "high" か "low" にしてください。') % {"path": path})
            continue
        guidance = spec.get("guidance")
        if isinstance(guidance, dict):
            if set(guidance) - set(SEXES) or not guidance:
                message = _("%(path)s.guidance: 男女別の値は male と female で指定してください。")
                problems.append(message % {"path": path})
                continue
            bounds = [_decimal(value, f"{path}.guidance.{sex}", problems) for sex, value in guidance.items()]
        else:
            bounds = [_decimal(guidance, f"{path}.guidance", problems)]
        referral = _decimal(spec.get("referral"), f"{path}.referral", problems, allow_none=True)
        if referral is None or None in bounds:
            continue
        high = spec["direction"] == "high"
        if any((referral < bound) if high else (referral > bound) for bound in bounds):
            problems.append(_("%(path)s: 受診勧奨判定値は保健指導判定値より重い側にしてください。") % {"path": path})


def _check_bands(bands: Any, path: str, problems: list[str]) -> None:
    if not isinstance(bands, list) or not bands:
        problems.append(_("%(path)s: [区分, 下限値] の並びを1つ以上指定してください。") % {"path": path})
        return
    previous = None
    for index, band in enumerate(bands):
        where = f"{path}[{index}]"
        if not isinstance(band, list) or len(band) != 2 or band[0] not in GRADES:
            problems.append(_('%(path)s: ["A"〜"E", 下限値] の形にしてください。') % {"path": where})
            continue
        if index == 0:
            if band[1] is not None:
                problems.append(_("%(path)s: 最初の区分の下限値は null にしてください。") % {"path": where})
            continue
        lower = _decimal(band[1], where, problems)
        if lower is not None and previous is not None and lower <= previous:
            problems.append(_("%(path)s: 下限値は小さい順に並べてください。") % {"path": where})
        previous = lower if lower is not None else previous


def _check_guidance(document: dict[str, Any], like: dict[str, Any] | None, problems: list[str]) -> None:
    """The 特定保健指導 rules read fixed keys: the same keys as the version corrected (or the shipped
    set), each a decimal string, or an integer for ages and risk counts."""
    shape = like if like is not None else json.loads((CRITERIA_DIR / f"{SHIPPED_GUIDANCE}.json").read_text("utf-8"))

    def walk(value: Any, template: Any, path: str) -> None:
        if isinstance(template, dict):
            if not isinstance(value, dict):
                problems.append(_("%(path)s: オブジェクト（{ … }）にしてください。") % {"path": path})
                return
            for key in template:
                if key not in value:
                    problems.append(_("%(path)s: %(key)s がありません。") % {"path": path or "(root)", "key": key})
                else:
                    walk(value[key], template[key], f"{path}.{key}" if path else key)
        elif isinstance(template, bool) or template is None:
            return
        elif isinstance(template, int):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                problems.append(_("%(path)s: 0 以上の整数にしてください。") % {"path": path})
        elif isinstance(template, str) and path not in {"name", "title", "effective_from"}:
            if _is_number(template):
                _decimal(value, path, problems)

    walk(document, {key: value for key, value in shape.items() if key not in {"sources", "note"}}, "")
    ages = document.get("target_ages"), document.get("capped_ages")
    if all(isinstance(pair, dict) and isinstance(pair.get("min"), int) and isinstance(pair.get("max"), int)
           for pair in ages):  # fmt: skip
        if any(pair["min"] > pair["max"] for pair in ages):
            problems.append(_("target_ages / capped_ages: min は max 以下にしてください。"))


def _is_number(text: str) -> bool:
    try:
        return Decimal(text).is_finite()
    except ArithmeticError:
        return False


def _dry_run(kind: str, rules: dict[str, Any]) -> None:
    """Judge sample values with the very functions the judging uses; any failure refuses the document."""
    from checkups.judgement import judge
    from checkups.stratification import Checkup, metabolic_syndrome, stratify

    try:
        if kind == "grades":
            samples: set[Decimal] = {Decimal(0), Decimal(1000)}
            for spec in rules["items"].values():
                bands = spec["bands"]
                for sex_bands in bands.values() if isinstance(bands, dict) else [bands]:
                    samples.update(lower for _grade, lower in sex_bands[1:])
            for value in samples:
                for sex in SEXES:
                    for medications in (frozenset(), TREATMENTS):
                        values = {item: value for item in {*rules["items"], *rules["mhlw"]}}
                        judge(values, rules, sex=sex, medications=frozenset(medications))
        else:
            for sex in SEXES:
                for age in (39, 45, 70):
                    for level in (Decimal(0), Decimal(500)):
                        checkup = Checkup(
                            sex=sex, age=age, waist=level, bmi=level, systolic=level, diastolic=level,
                            triglycerides_fasting=level, triglycerides_random=level, hdl=level,
                            glucose_fasting=level, glucose_random=level, hba1c=level, hours_since_meal=level,
                            smoker=True,
                        )  # fmt: skip
                        stratify(checkup, rules)
                        metabolic_syndrome(checkup, rules)
    except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError, IndexError) as exc:
        raise CriteriaError(
            _("この判定基準では判定できません（%(error)s）。") % {"error": f"{type(exc).__name__}: {exc}"}
        ) from exc
