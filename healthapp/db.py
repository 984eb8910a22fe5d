"""Switching a process between the application role and the owner role (PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dj_database_url
from django.conf import settings
from django.db import connections


def is_postgres(alias: str = "default") -> bool:
    return connections[alias].vendor == "postgresql"


def use_owner_role(alias: str = "default") -> None:
    """Reconnect ``alias`` as the table-owner role from DATABASE_OWNER_URL.

    Only migrations and operator commands call this; web requests and workers stay on the
    application role, which row-level security applies to.
    """
    _reconnect(alias, dj_database_url.parse(settings.DATABASE_OWNER_URL))


@contextmanager
def owner_role(alias: str = "default") -> Iterator[None]:
    """Run the block as the owner role, then return to the application role.

    Inside a caller's open transaction (``call_command`` from code or a test) the block joins that
    transaction on the caller's connection instead: switching would silently split the work in two.
    """
    if connections[alias].in_atomic_block:
        yield
        return
    use_owner_role(alias)
    try:
        yield
    finally:
        use_app_role(alias)


def use_app_role(alias: str = "default") -> None:
    _reconnect(alias, dj_database_url.parse(settings.DATABASE_URL))


def app_role_name() -> str:
    return dj_database_url.parse(settings.DATABASE_URL).get("USER") or ""


def owner_role_name() -> str:
    return dj_database_url.parse(settings.DATABASE_OWNER_URL).get("USER") or ""


def _reconnect(alias: str, parsed: dict) -> None:
    conn = connections[alias]
    if conn.vendor != "postgresql":
        return
    conn.close()
    conn.settings_dict["USER"] = parsed.get("USER", "")
    conn.settings_dict["PASSWORD"] = parsed.get("PASSWORD", "")
