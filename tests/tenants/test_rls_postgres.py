"""The database half of tenant isolation: PostgreSQL row-level security, seen as the application role.

These tests connect with the *application* role (DATABASE_URL); a superuser or the table owner would
pass them falsely, so (a) first proves the role is neither.
"""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection
from django.test import Client
from psycopg import errors, sql

from accounts.models import Member
from tenants.context import database_tenant_id, tenant_context
from tenants.rls import GLOBAL_TABLES_WITH_TENANT_ID, rls_violations

pytestmark = pytest.mark.postgres


def _connect(role: str = "app") -> psycopg.Connection:
    """A fresh psycopg connection to the test database as the application or the owner role."""
    from healthapp.db import app_role_name, owner_role_name

    params = connection.get_connection_params()
    params["user"] = app_role_name() if role == "app" else owner_role_name()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**params, autocommit=True)


def _tenant_tables(cur) -> list[str]:
    cur.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema() "
        "WHERE a.attname = 'tenant_id' AND c.relkind = 'r' ORDER BY 1"
    )
    return [row[0] for row in cur.fetchall() if row[0] not in GLOBAL_TABLES_WITH_TENANT_ID]


# (a) catalogue ------------------------------------------------------------------------------------


def test_application_role_is_not_superuser_has_no_bypassrls_and_owns_nothing(transactional_db):
    with _connect() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT rolsuper, rolbypassrls, "
            "(SELECT count(*) FROM pg_class c WHERE c.relowner = r.oid), current_user = session_user "
            "FROM pg_roles r WHERE rolname = current_user"
        )
        superuser, bypass, owned, plain = cur.fetchone()
    assert (superuser, bypass, owned, plain) == (False, False, 0, True)
    # The Django connection the suite uses is that same role.
    with connection.cursor() as cur:
        cur.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
        assert cur.fetchone() == (False, False)


def test_every_tenant_table_has_forced_rls_and_a_policy(transactional_db):
    with _connect() as conn, conn.cursor() as cur:
        tables = _tenant_tables(cur)
        assert {"accounts_member", "tenants_office", "tenants_department"} <= set(tables)
        assert rls_violations(cur) == []


def test_a_new_tenant_table_without_a_policy_is_reported(transactional_db):
    with _connect("owner") as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE rls_canary (id serial primary key, tenant_id bigint not null)")
        try:
            assert rls_violations(cur) == [
                "rls_canary: row-level security not enabled",
                "rls_canary: row-level security not forced",
                "rls_canary: no policy with USING and WITH CHECK on app.tenant_id",
            ]
        finally:
            cur.execute("DROP TABLE rls_canary")


def test_application_role_cannot_truncate(committed_world):
    with _connect() as conn, conn.cursor() as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute("TRUNCATE accounts_member")


# (b) no tenant set → nothing ---------------------------------------------------------------------------


def test_raw_sql_without_tenant_sees_zero_rows_on_every_tenant_table(committed_world):
    with _connect() as app, app.cursor() as cur, _connect("owner") as owner, owner.cursor() as ocur:
        for table in _tenant_tables(cur):
            ocur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
            assert ocur.fetchone()[0] > 0, f"fixture should put rows in {table}"
            cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
            assert cur.fetchone()[0] == 0, f"{table} leaked rows with no tenant set"


def test_orm_escape_hatch_outside_a_tenant_still_sees_nothing(committed_world):
    assert Member.all_tenants.count() == 0


# (c) tenant A set → nothing of B, cannot write B -------------------------------------------------------


def _set_tenant(cur, tenant_id: int) -> None:
    cur.execute("SELECT set_config('app.tenant_id', %s, true)", [str(tenant_id)])


def test_with_tenant_a_set_no_row_of_b_is_visible(committed_world):
    a, b = committed_world.tenant_a.pk, committed_world.tenant_b.pk
    with _connect() as conn, conn.transaction(), conn.cursor() as cur:
        _set_tenant(cur, a)
        for table in _tenant_tables(cur):
            cur.execute(
                sql.SQL("SELECT count(*) FILTER (WHERE tenant_id = %s), count(*) FROM {}").format(
                    sql.Identifier(table)
                ),
                [b],
            )
            of_b, _total = cur.fetchone()
            assert of_b == 0, table
        cur.execute("SELECT count(*) FROM accounts_member")
        assert cur.fetchone()[0] == 3


def test_with_tenant_a_set_inserting_a_row_of_b_fails(committed_world):
    a, b = committed_world.tenant_a.pk, committed_world.tenant_b.pk
    with _connect() as conn:
        with pytest.raises(errors.InsufficientPrivilege), conn.transaction(), conn.cursor() as cur:
            _set_tenant(cur, a)
            cur.execute("INSERT INTO tenants_office (tenant_id, name, code) VALUES (%s, 'x', '')", [b])
        with pytest.raises(errors.InsufficientPrivilege), conn.transaction(), conn.cursor() as cur:
            _set_tenant(cur, a)
            cur.execute("UPDATE tenants_office SET tenant_id = %s", [b])
        with conn.transaction(), conn.cursor() as cur:
            _set_tenant(cur, a)
            cur.execute("DELETE FROM accounts_member WHERE tenant_id = %s", [b])
            assert cur.rowcount == 0


def test_the_setting_dies_with_the_transaction(committed_world):
    with _connect() as conn, conn.cursor() as cur:
        with conn.transaction():
            _set_tenant(cur, committed_world.tenant_a.pk)
            cur.execute("SELECT count(*) FROM accounts_member")
            assert cur.fetchone()[0] == 3
        cur.execute("SELECT coalesce(current_setting('app.tenant_id', true), ''), count(*) FROM accounts_member")
        assert cur.fetchone() == ("", 0)


def test_tenant_context_sets_the_database_tenant_only_inside(committed_world):
    with tenant_context(committed_world.tenant_b):
        assert database_tenant_id() == str(committed_world.tenant_b.pk)
        assert Member.all_tenants.count() == 5
    assert database_tenant_id() == ""


# (d) interleaved requests on a reused connection ------------------------------------------------------


def test_interleaved_requests_for_two_tenants_on_one_connection_leak_nothing(committed_world):
    from tests.conftest import TEST_PASSWORD, log_in

    client_a, client_b = Client(), Client()
    assert log_in(client_a, "admin@a.example", TEST_PASSWORD + "!x").status_code == 302
    assert log_in(client_b, "outsider@b.example", TEST_PASSWORD + "!x").status_code == 302
    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        pid = cur.fetchone()[0]
    for _ in range(3):
        for client, own, other in (
            (client_a, "テナントA", "テナントB"),
            (client_b, "テナントB", "テナントA"),
        ):
            page = client.get("/").content.decode()
            assert own in page and other not in page
            expected_count = "3" if client is client_a else "5"
            assert f'data-testid="member-count">{expected_count}<' in page
            # Nothing of the request's tenant survives on the pooled connection.
            assert database_tenant_id() == ""
            assert Member.all_tenants.count() == 0
    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        assert cur.fetchone()[0] == pid, "the test must really reuse one server connection"


def test_operator_commands_switch_to_the_owner_role_and_back(transactional_db):
    from healthapp.db import owner_role, owner_role_name

    def whoami() -> str:
        with connection.cursor() as cur:
            cur.execute("SELECT current_user")
            return cur.fetchone()[0]

    app_user = whoami()
    with owner_role():
        assert whoami() == owner_role_name() != app_user
    assert whoami() == app_user
