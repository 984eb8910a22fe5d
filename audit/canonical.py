"""Canonical JSON of an audit event and its SHA-256: the one definition every writer and verifier uses.

Canonical = the fields below (everything but ``hash`` and the database id; chain + seq identify an
event), keys sorted, no whitespace, UTF-8, times as UTC ISO-8601 with microseconds and a ``Z``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

HASHED_FIELDS = (
    "chain",
    "seq",
    "occurred_at",
    "tenant_id",
    "actor_id",
    "actor_role",
    "action",
    "target_type",
    "target_id",
    "outcome",
    "client_ip",
    "user_agent",
    "request_id",
    "details",
    "prev_hash",
)


def utc_iso(value: dt.datetime) -> str:
    """``2026-04-01T00:00:00.000000Z``. A naive value is UTC already (SQLite hands those back)."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds") + "Z"


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_bytes(document: dict[str, Any]) -> bytes:
    return _ENCODER.encode(document).encode()


def event_document(values: dict[str, Any]) -> dict[str, Any]:
    """The hashed document from field values (``occurred_at`` a datetime or canonical text already,
    ``details`` a dict)."""
    document = {name: values[name] for name in HASHED_FIELDS}
    occurred = values["occurred_at"]
    if not isinstance(occurred, str):
        document["occurred_at"] = utc_iso(occurred)
    return document


def event_hash(document: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(document)).hexdigest()
