"""The current tenant: a context variable for the ORM, a transaction-local setting for PostgreSQL.

Requests (tenants.middleware), Celery tasks (tenants.tasks.tenant_task) and operator commands
(tenants.management.base.TenantCommand) all enter ``tenant_context``; nothing else sets the tenant.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from django.db import connections, transaction

if TYPE_CHECKING:
    from tenants.models import Tenant

GUC_NAME = "app.tenant_id"

_current: contextvars.ContextVar[Tenant | None] = contextvars.ContextVar("current_tenant", default=None)


class NoTenantError(RuntimeError):
    """Tenant data was queried with no tenant in context. This is a bug, never 'all rows'."""


class CrossTenantError(RuntimeError):
    """A row of one tenant was about to be written while another tenant is current."""


def current_tenant() -> Tenant | None:
    return _current.get()


def require_tenant() -> Tenant:
    tenant = _current.get()
    if tenant is None:
        raise NoTenantError(
            "No current tenant: enter tenants.context.tenant_context(tenant) first, "
            "or use Model.all_tenants in operator code."
        )
    return tenant


@contextmanager
def tenant_context(tenant: Tenant, *, using: str = "default") -> Iterator[Tenant]:
    """Make ``tenant`` current for the ORM and, on PostgreSQL, for row-level security.

    On PostgreSQL this opens (or joins) a transaction and sets ``app.tenant_id`` with
    ``set_config(..., is_local => true)`` as a bound parameter: the value dies with the transaction,
    so a pooled connection (PgBouncer in transaction mode too) cannot carry it to the next request.
    """
    if tenant is None or tenant.pk is None:
        raise NoTenantError("tenant_context needs a saved tenant")
    token = _current.set(tenant)
    try:
        conn = connections[using]
        if conn.vendor != "postgresql":
            yield tenant
            return
        with transaction.atomic(using=using):
            previous = _set_guc(conn, str(tenant.pk))
            yield tenant
            # Nested inside an outer transaction: put the outer tenant back. (On an exception the
            # savepoint rollback has already undone our set_config.)
            _set_guc(conn, previous)
    finally:
        _current.reset(token)


def database_tenant_id(using: str = "default") -> str:
    """What PostgreSQL currently holds for app.tenant_id on this connection ('' when unset)."""
    conn = connections[using]
    if conn.vendor != "postgresql":
        return ""
    with conn.cursor() as cur:
        cur.execute("SELECT coalesce(current_setting(%s, true), '')", [GUC_NAME])
        return cur.fetchone()[0]


def _set_guc(conn, value: str) -> str:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT coalesce(current_setting(%s, true), ''), set_config(%s, %s, true)",
            [GUC_NAME, GUC_NAME, value],
        )
        return cur.fetchone()[0]
