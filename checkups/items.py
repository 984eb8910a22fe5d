"""The checkup item catalogue: our item keys ↔ JLAC10-based 17-digit codes, units, plausible ranges.

The data lives in ``checkups/criteria/items_v1.json`` (versioned, editable by a physician or operator);
this module only loads it into typed, immutable objects and answers four questions: which item does a
code belong to, which canonical unit does a given unit spelling mean, is a value physically plausible, and
how does a stored result read (a coded answer by its label).
Pure Python: no Django, no database.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

CATALOGUE_DIR = Path(__file__).resolve().parent / "criteria"
DEFAULT_CATALOGUE = "items_v1"
_CODE = re.compile(r"[0-9A-Z]{17}")


@dataclass(frozen=True)
class Code:
    """One 17-digit code of an item, with its role in choosing the representative value."""

    code: str
    item: str
    role: str  # representative | reading1 | reading2 | measured | method | …
    label: str = ""


@dataclass(frozen=True)
class Item:
    key: str
    label: str
    label_en: str
    type: str  # "PQ" (quantity) or "CO" (coded answer)
    codes: tuple[Code, ...]
    unit: str = ""
    precision: Decimal | None = None
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    answers: tuple[tuple[str, str], ...] = ()  # (code, label) for CO items
    code_system: str = ""

    def answer_label(self, code: str) -> str | None:
        return dict(self.answers).get(code)


@dataclass(frozen=True)
class Question:
    key: str
    label: str
    label_en: str
    type: str  # "CO" or "ST"
    code: str
    code_system: str = ""
    answers: tuple[tuple[str, str], ...] = ()
    max_length: int = 0

    def answer_label(self, code: str) -> str | None:
        return dict(self.answers).get(code)


@dataclass(frozen=True)
class Legacy:
    """Codes of an old scale recognised by prefix (HbA1c JDS 3D045…), converted by ``offset``."""

    prefix: str
    item: str
    scale: str
    offset: Decimal
    note: str


@dataclass(frozen=True)
class Catalogue:
    name: str
    default_code_system: str
    items: dict[str, Item]
    questions: dict[str, Question]
    legacy: tuple[Legacy, ...]
    programs: dict[str, str]
    _units: dict[str, str]  # normalised spelling → canonical unit
    _codes: dict[str, Code | Question]

    def lookup(self, code: str) -> Code | Question | Legacy | None:
        """What a 17-digit code means here: an item reading, a questionnaire answer, a legacy code, or nothing."""
        found = self._codes.get(code)
        if found is not None:
            return found
        return next((legacy for legacy in self.legacy if self._is_legacy(code, legacy)), None)

    def _is_legacy(self, code: str, legacy: Legacy) -> bool:
        """An old-scale code (3D045… JDS) is the twin of one of its item's codes: the same method and
        specimen digits after the prefix. Not any text that starts with the prefix."""
        if len(code) != 17 or not code.startswith(legacy.prefix):
            return False
        tail = code[len(legacy.prefix) :]
        return any(c.code[len(legacy.prefix) :] == tail for c in self.items[legacy.item].codes)

    def unit_of(self, key: str) -> str:
        """The normalised unit results of item ``key`` are stored in; "" for a key not in the catalogue."""
        item = self.items.get(key)
        return item.unit if item is not None else ""

    def canonical_unit(self, item: Item, unit: str | None) -> str | None:
        """The item's canonical unit if ``unit`` is one of its accepted spellings, else None."""
        if not unit:
            return None
        return item.unit if self._units.get(unit_key(unit)) == item.unit else None

    def codes(self) -> set[str]:
        return set(self._codes)

    def display(self, key: str, value: Decimal | None, text: str = "") -> str:
        """A stored result as a person reads it: 1.500 → 1.5, 120.000 → 120, with at least the item's own
        decimals (BMI 18.000 → 18.0; never rounded: 115.500 of an item read in whole numbers stays 115.5),
        and a coded answer as its label (尿糖 1 → −) rather than its code; free text as stored."""
        if value is None:
            return text
        number = value.normalize()
        item = self.items.get(key)
        if item is not None and item.type == "CO":
            code = format(number, "f")
            return item.answer_label(code) or code
        if (
            item is not None
            and item.precision is not None
            and number.as_tuple().exponent > item.precision.as_tuple().exponent
        ):
            number = number.quantize(item.precision)  # only adds zeros: the value has fewer decimals
        return format(number, "f")


def unit_key(unit: str) -> str:
    """Compare unit spellings loosely: full-width → half-width (NFKC: ㎏→kg, kg/m²→kg/m2), no spaces, no case."""
    return "".join(unicodedata.normalize("NFKC", unit).split()).casefold()


def round_half_up(value: Decimal, precision: Decimal | None) -> Decimal:
    """Round to the item's precision (e.g. 1 or 0.1), halves away from zero, as a person would."""
    return value if precision is None else value.quantize(precision, rounding=ROUND_HALF_UP)


def plausibility_problem(item: Item, value: Decimal) -> str | None:
    """A plain reason (ja / en) when ``value`` cannot be a real measurement of ``item``, else None."""
    if value < 0:
        return f"{item.label}: 負の値は不正です / {item.label_en}: negative value"
    if (item.minimum is not None and value < item.minimum) or (item.maximum is not None and value > item.maximum):
        span = f"{item.minimum}–{item.maximum} {item.unit}"
        return (
            f"{item.label}: 値が妥当な範囲（{span}）外です / {item.label_en}: value outside the plausible range {span}"
        )
    return None


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _answers(raw: dict[str, str] | None) -> tuple[tuple[str, str], ...]:
    return tuple((raw or {}).items())


@lru_cache(maxsize=4)
def load(name: str = DEFAULT_CATALOGUE) -> Catalogue:
    """The catalogue ``name`` (a file in checkups/criteria), checked for duplicate or malformed codes."""
    path = CATALOGUE_DIR / f"{name}.json"
    if not path.is_file() or path.parent != CATALOGUE_DIR:
        raise LookupError(f"no item catalogue {name!r}")
    return build(json.loads(path.read_text(encoding="utf-8")))


def build(raw: dict[str, Any]) -> Catalogue:
    """Turn catalogue data into a Catalogue; raises ValueError on inconsistent data (caught by the tests)."""
    units: dict[str, str] = {}
    for canonical, spellings in raw["units"].items():
        for spelling in [canonical, *spellings]:
            if units.setdefault(unit_key(spelling), canonical) != canonical:
                raise ValueError(f"unit spelling {spelling!r} maps to two units")
    codes: dict[str, Code | Question] = {}

    def register(code: str, target: Code | Question) -> None:
        if not _CODE.fullmatch(code):
            raise ValueError(f"{target!r}: code {code!r} is not 17 characters")
        if code in codes:
            raise ValueError(f"code {code} listed twice")
        codes[code] = target

    items: dict[str, Item] = {}
    for key, spec in raw["items"].items():
        item_codes = tuple(Code(c["code"], key, c["role"], c.get("label", "")) for c in spec["codes"])
        plausible = spec.get("plausible", {})
        item = Item(
            key=key,
            label=spec["label"],
            label_en=spec["label_en"],
            type=spec["type"],
            codes=item_codes,
            unit=spec.get("unit", ""),
            precision=_dec(spec.get("precision")),
            minimum=_dec(plausible.get("min")),
            maximum=_dec(plausible.get("max")),
            answers=_answers(spec.get("answers")),
            code_system=spec.get("code_system", ""),
        )
        if item.type == "PQ" and (item.unit not in raw["units"] or item.minimum is None or item.maximum is None):
            raise ValueError(f"{key}: a quantity needs a known unit and a plausible range")
        if item.type == "CO" and not item.answers:
            raise ValueError(f"{key}: a coded item needs its answers")
        for code in item_codes:
            register(code.code, code)
        items[key] = item
    questions: dict[str, Question] = {}
    for key, spec in raw["questionnaire"].items():
        question = Question(
            key=key,
            label=spec["label"],
            label_en=spec["label_en"],
            type=spec["type"],
            code=spec["code"],
            code_system=spec.get("code_system", ""),
            answers=_answers(spec.get("answers")),
            max_length=int(spec.get("max_length", 0)),
        )
        register(question.code, question)
        questions[key] = question
    legacy = tuple(
        Legacy(prefix, spec["item"], spec["scale"], Decimal(spec["offset"]), spec["note"])
        for prefix, spec in raw.get("legacy", {}).items()
    )
    for entry in legacy:
        if entry.item not in items or any(code.startswith(entry.prefix) for code in codes):
            raise ValueError(f"legacy prefix {entry.prefix}: unknown item or overlaps a current code")
    return Catalogue(
        name=raw["name"],
        default_code_system=raw["default_code_system"],
        items=items,
        questions=questions,
        legacy=legacy,
        programs=dict(raw.get("programs", {})),
        _units=units,
        _codes=codes,
    )
