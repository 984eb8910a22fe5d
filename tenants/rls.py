"""PostgreSQL row-level security for every TenantScopedModel table, and the application role's grants.

Applied after every ``migrate`` (post_migrate), idempotently, by the owner role. A new tenant table
therefore gets its policy without anyone remembering to; tests/tenants/test_rls_postgres.py checks the
catalogue so a tenant table that escaped this (e.g. raw DDL) fails CI.
"""

from __future__ import annotations

from django.apps import AppConfig, apps
from django.db import connections
from psycopg import sql

from healthapp.db import app_role_name
from tenants.context import GUC_NAME
from tenants.models import TenantScopedModel

POLICY_NAME = "tenant_isolation"

# The sub-select makes PostgreSQL evaluate the setting once per statement (an InitPlan), not per row;
# nullif maps "unset" to NULL so no row matches instead of a cast error.
_TENANT_EXPR = f"nullif((select current_setting('{GUC_NAME}', true)), '')::bigint"


def tenant_models(app_config: AppConfig | None = None) -> list[type[TenantScopedModel]]:
    models = app_config.get_models() if app_config else apps.get_models()
    return [m for m in models if issubclass(m, TenantScopedModel) and not m._meta.proxy]


def policy_statements(table: str) -> list[sql.Composed]:
    ident = sql.Identifier(table)
    policy = sql.Identifier(POLICY_NAME)
    predicate = sql.SQL(f"tenant_id = {_TENANT_EXPR}")
    return [
        sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(ident),
        sql.SQL("ALTER TABLE {} FORCE ROW LEVEL SECURITY").format(ident),
        sql.SQL("DROP POLICY IF EXISTS {} ON {}").format(policy, ident),
        sql.SQL("CREATE POLICY {} ON {} USING ({}) WITH CHECK ({})").format(policy, ident, predicate, predicate),
    ]


def grant_statements(role: str) -> list[sql.Composed]:
    ident = sql.Identifier(role)
    return [
        sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(ident),
        sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}").format(ident),
        sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(ident),
        # TRUNCATE ignores row-level security: the application role must never hold it.
        sql.SQL("REVOKE TRUNCATE ON ALL TABLES IN SCHEMA public FROM {}").format(ident),
    ]


def append_only_tables() -> list[str]:
    """Tables of models that declare ``append_only = True`` (the audit log): never updated or deleted."""
    return [m._meta.db_table for m in apps.get_models() if getattr(m, "append_only", False)]


def revoke_append_only_statements(role: str, tables: list[str]) -> list[sql.Composed]:
    # The blanket GRANT above re-grants UPDATE/DELETE after every migrate: take them back each time.
    return [
        sql.SQL("REVOKE UPDATE, DELETE, TRUNCATE ON {} FROM {}").format(sql.Identifier(t), sql.Identifier(role))
        for t in tables
    ]


def apply_after_migrate(sender: AppConfig, using: str = "default", **kwargs) -> None:
    conn = connections[using]
    if conn.vendor != "postgresql":
        return
    with conn.cursor() as cur:
        for model in tenant_models(sender):
            for statement in policy_statements(model._meta.db_table):
                cur.execute(statement)
        role = app_role_name()
        cur.execute("SELECT current_user")
        if role and role != cur.fetchone()[0]:
            for statement in grant_statements(role):
                cur.execute(statement)
            existing = set(conn.introspection.table_names(cur))
            for statement in revoke_append_only_statements(role, [t for t in append_only_tables() if t in existing]):
                cur.execute(statement)


# Tables that carry a tenant_id but are read before any tenant is known (the login directory).
# Each entry needs a reason; everything else with a tenant_id column must be row-level secured.
GLOBAL_TABLES_WITH_TENANT_ID = {
    "accounts_user": "login directory: looked up by e-mail at login, holds no personal data beyond it",
}


def rls_violations(cursor) -> list[str]:
    """Return one line per table in the current schema that has a ``tenant_id`` column but lacks
    ENABLE + FORCE row-level security or a policy whose USING and WITH CHECK read app.tenant_id."""
    cursor.execute(
        """
        SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
               count(p.policyname) FILTER (
                   WHERE p.qual LIKE %(guc)s AND p.with_check LIKE %(guc)s
               )
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
        LEFT JOIN pg_policies p ON p.schemaname = n.nspname AND p.tablename = c.relname
        WHERE c.relkind IN ('r', 'p')
        GROUP BY c.relname, c.relrowsecurity, c.relforcerowsecurity
        ORDER BY c.relname
        """,
        {"guc": f"%{GUC_NAME}%"},
    )
    problems = []
    for table, enabled, forced, policies in cursor.fetchall():
        if table in GLOBAL_TABLES_WITH_TENANT_ID:
            continue
        if not enabled:
            problems.append(f"{table}: row-level security not enabled")
        if not forced:
            problems.append(f"{table}: row-level security not forced")
        if not policies:
            problems.append(f"{table}: no policy with USING and WITH CHECK on {GUC_NAME}")
    return problems
