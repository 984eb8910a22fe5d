"""The audit log. Record an event with ``import audit; audit.record(action=..., ...)``."""

from __future__ import annotations

from typing import Any


def record(**kwargs: Any) -> Any:
    """Lazy wrapper of audit.services.record (importable before the app registry is ready)."""
    from audit.services import record as _record

    return _record(**kwargs)
