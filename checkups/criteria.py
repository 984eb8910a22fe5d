"""Versioned judgement criteria shipped as data (checkups/criteria/*.json), never as constants in code.

Numbers are kept as decimal strings so that a threshold such as HbA1c 5.6 % compares exactly.
(The checkups issue turns these files into the operator-editable CriteriaSet model they seed.)
"""

from __future__ import annotations

import json
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

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
