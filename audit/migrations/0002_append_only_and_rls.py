"""Append-only triggers and row-level security for the audit tables; then mark them unmanaged.

PostgreSQL: UPDATE, DELETE and TRUNCATE on audit_auditevent raise, except a DELETE by the table owner
with ``audit.prune = on`` set in its transaction for rows already shipped and below the chain's pruning
point (audit.services.prune_expired). The application role additionally loses UPDATE/DELETE/TRUNCATE on
the table after every migrate (tenants.rls). SQLite: UPDATE and DELETE raise, with the same pruning
exception (SQLite has no roles).

Row-level security: a tenant's rows when app.tenant_id is set; the tenant-less chain ("-") only when
app.audit_chain = '-' is set too (audit.services does so for the one append), so a connection without
either setting sees no audit row at all.
"""

from django.db import migrations

from audit.migrations._vendor_sql import run_for_vendor

_TENANT = "nullif((select current_setting('app.tenant_id', true)), '')::bigint"
_NO_TENANT = "(select current_setting('app.audit_chain', true)) = '-'"
PREDICATE = f"(tenant_id = {_TENANT} OR (tenant_id IS NULL AND {_NO_TENANT}))"
TABLES = ("audit_auditevent", "audit_auditchain")

PG_FORWARD = [
    """
    CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        table_owner name;
    BEGIN
        IF TG_OP = 'DELETE' THEN
            SELECT r.rolname INTO table_owner
              FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE c.oid = TG_RELID;
            IF current_user = table_owner
               AND coalesce(current_setting('audit.prune', true), '') = 'on'
               AND OLD.seq <= (SELECT least(h.pruned_seq, h.shipped_seq)
                                 FROM audit_auditchain h WHERE h.chain = OLD.chain) THEN
                RETURN OLD;
            END IF;
        END IF;
        RAISE EXCEPTION 'audit_auditevent is append-only: % refused', TG_OP;
    END
    $$
    """,
    """
    CREATE TRIGGER audit_event_no_update_delete BEFORE UPDATE OR DELETE ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()
    """,
    """
    CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only()
    """,
]
for _table in TABLES:
    PG_FORWARD += [
        f"ALTER TABLE {_table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {_table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY audit_tenant_isolation ON {_table} USING {PREDICATE} WITH CHECK {PREDICATE}",
    ]

PG_BACKWARD = [
    "DROP TRIGGER IF EXISTS audit_event_no_update_delete ON audit_auditevent",
    "DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_auditevent",
    "DROP FUNCTION IF EXISTS audit_event_append_only()",
] + [f"DROP POLICY IF EXISTS audit_tenant_isolation ON {t}" for t in TABLES]

SQLITE_FORWARD = [
    """
    CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_auditevent
    BEGIN SELECT RAISE(ABORT, 'audit_auditevent is append-only: UPDATE refused'); END
    """,
    """
    CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_auditevent
    WHEN OLD.seq > coalesce(
        (SELECT min(h.pruned_seq, h.shipped_seq) FROM audit_auditchain h WHERE h.chain = OLD.chain), 0)
    BEGIN SELECT RAISE(ABORT, 'audit_auditevent is append-only: DELETE refused'); END
    """,
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS audit_event_no_update",
    "DROP TRIGGER IF EXISTS audit_event_no_delete",
]


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [
        migrations.RunPython(
            run_for_vendor({"postgresql": PG_FORWARD, "sqlite": SQLITE_FORWARD}),
            run_for_vendor({"postgresql": PG_BACKWARD, "sqlite": SQLITE_BACKWARD}),
        ),
        migrations.AlterModelOptions(
            name="auditchain",
            options={"managed": False},
        ),
        migrations.AlterModelOptions(
            name="auditevent",
            options={"managed": False, "verbose_name": "監査ログ", "verbose_name_plural": "監査ログ"},
        ),
    ]
