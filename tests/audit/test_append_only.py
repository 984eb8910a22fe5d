"""Append-only in the database itself: UPDATE, DELETE (and on PostgreSQL TRUNCATE) are refused,
whether through the ORM as the application role or in raw SQL as the table owner."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

import audit
from audit.models import AuditEvent
from tenants.context import tenant_context

from .conftest import pg_connect


@pytest.fixture
def one_event(fresh_tenant):
    with tenant_context(fresh_tenant):
        return audit.record(action="member.viewed", target_type="member", target_id=1)


def test_update_through_the_orm_is_refused(one_event, fresh_tenant):
    with tenant_context(fresh_tenant), pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=one_event.pk).update(action="member.forgotten")


def test_delete_through_the_orm_is_refused(one_event, fresh_tenant):
    with tenant_context(fresh_tenant), pytest.raises(DatabaseError), transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("DELETE FROM audit_auditevent WHERE id = %s", [one_event.pk])


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite triggers (PostgreSQL: see below)")
def test_sqlite_triggers_refuse_update_and_delete_of_any_row(one_event):
    with connection.cursor() as cur:
        for statement in ("UPDATE audit_auditevent SET outcome = 'failure'", "DELETE FROM audit_auditevent"):
            with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
                cur.execute(statement)


# --- PostgreSQL: privileges of the application role, triggers against the owner ---------------------


@pytest.mark.postgres
def test_application_role_holds_no_update_delete_or_truncate_on_events(transactional_db):
    with pg_connect() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT has_table_privilege('audit_auditevent', p) FROM unnest(ARRAY['SELECT','INSERT','UPDATE',"
            "'DELETE','TRUNCATE']) AS p"
        )
        assert [row[0] for row in cur.fetchall()] == [True, True, False, False, False]


@pytest.mark.postgres
def test_application_role_update_delete_truncate_are_refused(committed_world):
    from psycopg import errors

    tenant = committed_world.tenant_a.pk
    with pg_connect() as conn:
        for statement in (
            "UPDATE audit_auditevent SET outcome = 'failure'",
            "DELETE FROM audit_auditevent",
            "TRUNCATE audit_auditevent",
        ):
            with pytest.raises(errors.InsufficientPrivilege), conn.transaction(), conn.cursor() as cur:
                cur.execute("SELECT set_config('app.tenant_id', %s, true)", [str(tenant)])
                cur.execute(statement)


@pytest.mark.postgres
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_auditevent SET outcome = 'failure'",
        "DELETE FROM audit_auditevent",
        "TRUNCATE audit_auditevent",
        # The pruning path needs audit.prune AND rows below the chain's pruning point; this has neither.
        "SELECT set_config('audit.prune', 'on', true); DELETE FROM audit_auditevent",
    ],
)
def test_triggers_refuse_even_the_table_owner(committed_world, statement):
    from psycopg import errors

    with pg_connect("owner") as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM audit_auditevent")
        before = cur.fetchone()[0]
        assert before > 0
        with pytest.raises(errors.RaiseException, match="append-only"), conn.transaction():
            for part in statement.split("; "):
                cur.execute(part)
        cur.execute("SELECT count(*) FROM audit_auditevent")
        assert cur.fetchone()[0] == before


@pytest.mark.postgres
def test_a_later_migrate_does_not_give_the_privileges_back(transactional_db):
    """The post-migrate grants run after every migrate; the audit table's revoke must follow them."""
    from django.apps import apps

    from healthapp.db import owner_role
    from tenants.rls import apply_after_migrate

    with owner_role():
        apply_after_migrate(apps.get_app_config("accounts"))
    with pg_connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT has_table_privilege('audit_auditevent', 'UPDATE')")
        assert cur.fetchone()[0] is False
