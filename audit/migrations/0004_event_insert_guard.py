"""Every new event continues its chain's head; every new head is its tenant's chain.

Before this, the application role could insert an event at seq 0, or below the chain's pruning point, which
verify_audit never reads but the audit log page and the disclosure export show; and it could create the head
of a tenant that does not exist yet under that tenant's chain key. Now, for every role:

- an event's seq is its chain head's seq + 1 and its prev_hash the head's hash (audit.services.record locks
  the head, inserts the event, then moves the head onto it), and its chain is its tenant's ("-" for none);
- a head's chain is its tenant's.

The event check reads the head as the table owner (SECURITY DEFINER), so that a write into another tenant's
chain is still refused by row-level security, not by a head this session cannot see.
"""

from django.db import migrations

from audit.migrations._vendor_sql import run_for_vendor

PG_FORWARD = [
    """
    CREATE OR REPLACE FUNCTION audit_event_continues_head() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    BEGIN
        IF NEW.chain IS DISTINCT FROM coalesce(NEW.tenant_id::text, '-') OR NOT EXISTS (
            SELECT 1 FROM audit_auditchain h
             WHERE h.chain = NEW.chain AND h.seq + 1 = NEW.seq AND h.hash = NEW.prev_hash)
        THEN
            RAISE EXCEPTION 'audit_auditevent: a new event continues its chain head';
        END IF;
        RETURN NEW;
    END
    $$
    """,
    """
    CREATE TRIGGER audit_event_continues_head BEFORE INSERT ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_event_continues_head()
    """,
    """
    CREATE OR REPLACE FUNCTION audit_chain_is_its_tenants() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.chain IS DISTINCT FROM coalesce(NEW.tenant_id::text, '-') THEN
            RAISE EXCEPTION 'audit_auditchain: a chain head is its tenant''s chain';
        END IF;
        RETURN NEW;
    END
    $$
    """,
    """
    CREATE TRIGGER audit_chain_is_its_tenants BEFORE INSERT ON audit_auditchain
    FOR EACH ROW EXECUTE FUNCTION audit_chain_is_its_tenants()
    """,
]
PG_BACKWARD = [
    "DROP TRIGGER IF EXISTS audit_event_continues_head ON audit_auditevent",
    "DROP FUNCTION IF EXISTS audit_event_continues_head()",
    "DROP TRIGGER IF EXISTS audit_chain_is_its_tenants ON audit_auditchain",
    "DROP FUNCTION IF EXISTS audit_chain_is_its_tenants()",
]

_CHAIN_OF_TENANT = "NEW.chain IS NOT coalesce(CAST(NEW.tenant_id AS TEXT), '-')"
SQLITE_FORWARD = [
    f"""
    CREATE TRIGGER audit_event_continues_head BEFORE INSERT ON audit_auditevent
    WHEN {_CHAIN_OF_TENANT} OR NOT EXISTS (
        SELECT 1 FROM audit_auditchain h WHERE h.chain = NEW.chain AND h.seq + 1 = NEW.seq AND h.hash = NEW.prev_hash)
    BEGIN SELECT RAISE(ABORT, 'audit_auditevent: a new event continues its chain head'); END
    """,
    f"""
    CREATE TRIGGER audit_chain_is_its_tenants BEFORE INSERT ON audit_auditchain
    WHEN {_CHAIN_OF_TENANT}
    BEGIN SELECT RAISE(ABORT, 'audit_auditchain: a chain head is its tenant''s chain'); END
    """,
]
SQLITE_BACKWARD = ["DROP TRIGGER IF EXISTS audit_event_continues_head", "DROP TRIGGER IF EXISTS audit_chain_is_its_tenants"]


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_chain_head_guard")]

    operations = [
        migrations.RunPython(
            run_for_vendor({"postgresql": PG_FORWARD, "sqlite": SQLITE_FORWARD}),
            run_for_vendor({"postgresql": PG_BACKWARD, "sqlite": SQLITE_BACKWARD}),
        ),
    ]
