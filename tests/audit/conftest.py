"""Helpers for the audit tests: read a chain as the application role sees it, connect as either role."""

from __future__ import annotations

import re

import psycopg
import pytest
from django.db import connection

from audit.models import AuditEvent, chain_key
from audit.services import chain_scope


def events_of(tenant, **filters) -> list[AuditEvent]:
    """The events of ``tenant``'s chain (None = the tenant-less chain), oldest first, read through RLS."""
    with chain_scope(tenant):
        qs = AuditEvent.objects.filter(chain=chain_key(tenant.pk if tenant else None), **filters)
        return list(qs.order_by("seq"))


def pg_connect(role: str = "app", *, autocommit: bool = True) -> psycopg.Connection:
    """A fresh psycopg connection to the test database as the application or the owner role."""
    from healthapp.db import app_role_name, owner_role_name

    params = connection.get_connection_params()
    params["user"] = app_role_name() if role == "app" else owner_role_name()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**params, autocommit=autocommit)


@pytest.fixture
def fresh_tenant(db):
    """A tenant of its own, so chain contents are exactly what the test wrote."""
    from tenants.services import tenant_create

    counter = fresh_tenant.counter = getattr(fresh_tenant, "counter", 0) + 1
    return tenant_create(kind="company", name="監査テスト", slug=f"audit-test-{counter}")


ON_POSTGRES = connection.vendor == "postgresql"


@pytest.fixture
def tamperable(request, transactional_db):
    """A tenant with five events of its own that the test may tamper with through ``tamper(sql, params)``.

    Committed data, changed by the owner role with the triggers disabled for the moment (PostgreSQL) or
    dropped and recreated around the change (SQLite); the whole chain is removed afterwards, since the
    audit tables are never flushed.
    """
    import audit
    from tenants.context import tenant_context
    from tenants.services import tenant_create

    tenant = tenant_create(
        kind="company",
        name="改ざんテスト",
        slug=re.sub(r"[^a-z0-9_-]", "-", f"tamper-{request.node.name[-24:]}".lower()),
    )
    with tenant_context(tenant):
        for i in range(4):
            audit.record(action="member.viewed", target_type="member", target_id=i)
    yield tenant
    for statement in ("DELETE FROM audit_auditevent WHERE chain = %s", "DELETE FROM audit_auditchain WHERE chain = %s"):
        _owner_execute([statement], [str(tenant.pk)])


def tamper(statement: str, params: list) -> None:
    _owner_execute([statement], params)


def _owner_execute(statements: list[str], params: list) -> None:
    if ON_POSTGRES:
        with pg_connect("owner", autocommit=False) as conn, conn.cursor() as cur:
            cur.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_no_update_delete")
            cur.execute("ALTER TABLE audit_auditchain DISABLE TRIGGER audit_chain_guard")
            cur.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_continues_head")
            for statement in statements:
                cur.execute(statement, params)
            cur.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_event_no_update_delete")
            cur.execute("ALTER TABLE audit_auditchain ENABLE TRIGGER audit_chain_guard")
            cur.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_event_continues_head")
        return
    import importlib

    migrations = [
        importlib.import_module(f"audit.migrations.{name}")
        for name in ("0002_append_only_and_rls", "0003_chain_head_guard", "0004_event_insert_guard")
    ]
    with connection.cursor() as cur:
        for migration in migrations:
            for drop in migration.SQLITE_BACKWARD:
                cur.execute(drop)
        for statement in statements:
            cur.execute(statement, params)
        for migration in migrations:
            for create in migration.SQLITE_FORWARD:
                cur.execute(create)
