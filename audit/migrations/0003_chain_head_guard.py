"""Guard the chain heads (audit_auditchain) in the database, as 0002 guards the events.

The application role appends, so it must move a head's seq and hash; before this it could also move the
shipping and pruning points anywhere (stop shipping, or make verify_audit start past the events) or delete
a head. Now, for every role:

- a new head starts empty (seq 0, genesis hashes);
- seq/hash, and shipped_seq/shipped_hash, only move forward, onto an event that exists with that hash
  (shipping never past the head);
- pruned_seq/pruned_hash only move forward, onto a shipped event, and on PostgreSQL only for the table
  owner with ``audit.prune = on`` (the operator's prune_audit);
- chain and tenant never change; DELETE and TRUNCATE are refused.

The owner could still disable the trigger (it owns the table), and the application, which ships, could mark
events shipped that it never shipped: verify_audit compares the shipping and pruning points with the archive
itself (an Object Lock bucket of its own, under credentials of its own: deploy check healthapp.W010), and
prune_audit deletes only what the archive holds as the database does.
"""

from django.db import migrations

from audit.migrations._vendor_sql import run_for_vendor

_GENESIS = "repeat('0', 64)"

PG_FORWARD = [
    f"""
    CREATE OR REPLACE FUNCTION audit_chain_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        table_owner name;
    BEGIN
        IF TG_OP = 'INSERT' THEN
            IF NEW.seq <> 0 OR NEW.hash <> {_GENESIS} OR NEW.shipped_seq <> 0 OR NEW.shipped_hash <> {_GENESIS}
               OR NEW.pruned_seq <> 0 OR NEW.pruned_hash <> {_GENESIS} THEN
                RAISE EXCEPTION 'audit_auditchain: a new chain head starts at seq 0';
            END IF;
            RETURN NEW;
        END IF;
        IF TG_OP <> 'UPDATE' THEN
            RAISE EXCEPTION 'audit_auditchain: % of a chain head refused', TG_OP;
        END IF;
        IF NEW.chain <> OLD.chain OR NEW.tenant_id IS DISTINCT FROM OLD.tenant_id THEN
            RAISE EXCEPTION 'audit_auditchain: a head keeps its chain and tenant';
        END IF;
        IF (NEW.seq, NEW.hash) IS DISTINCT FROM (OLD.seq, OLD.hash) AND (
            NEW.seq <= OLD.seq OR NOT EXISTS (
                SELECT 1 FROM audit_auditevent e WHERE e.chain = NEW.chain AND e.seq = NEW.seq AND e.hash = NEW.hash))
        THEN
            RAISE EXCEPTION 'audit_auditchain: the head moves forward onto its newest event only';
        END IF;
        IF (NEW.shipped_seq, NEW.shipped_hash) IS DISTINCT FROM (OLD.shipped_seq, OLD.shipped_hash) AND (
            NEW.shipped_seq <= OLD.shipped_seq OR NEW.shipped_seq > NEW.seq OR NOT EXISTS (
                SELECT 1 FROM audit_auditevent e
                 WHERE e.chain = NEW.chain AND e.seq = NEW.shipped_seq AND e.hash = NEW.shipped_hash))
        THEN
            RAISE EXCEPTION 'audit_auditchain: shipping moves forward onto an event only';
        END IF;
        IF (NEW.pruned_seq, NEW.pruned_hash) IS DISTINCT FROM (OLD.pruned_seq, OLD.pruned_hash) THEN
            SELECT r.rolname INTO table_owner
              FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE c.oid = TG_RELID;
            IF current_user <> table_owner OR coalesce(current_setting('audit.prune', true), '') <> 'on'
               OR NEW.pruned_seq <= OLD.pruned_seq OR NEW.pruned_seq > NEW.shipped_seq OR NOT EXISTS (
                   SELECT 1 FROM audit_auditevent e
                    WHERE e.chain = NEW.chain AND e.seq = NEW.pruned_seq AND e.hash = NEW.pruned_hash)
            THEN
                RAISE EXCEPTION 'audit_auditchain: only prune_audit moves the pruning point';
            END IF;
        END IF;
        RETURN NEW;
    END
    $$
    """,
    """
    CREATE TRIGGER audit_chain_guard BEFORE INSERT OR UPDATE OR DELETE ON audit_auditchain
    FOR EACH ROW EXECUTE FUNCTION audit_chain_guard()
    """,
    """
    CREATE TRIGGER audit_chain_no_truncate BEFORE TRUNCATE ON audit_auditchain
    FOR EACH STATEMENT EXECUTE FUNCTION audit_chain_guard()
    """,
]
PG_BACKWARD = [
    "DROP TRIGGER IF EXISTS audit_chain_guard ON audit_auditchain",
    "DROP TRIGGER IF EXISTS audit_chain_no_truncate ON audit_auditchain",
    "DROP FUNCTION IF EXISTS audit_chain_guard()",
]

# SQLite has no roles: the same rules, with pruning allowed to whoever runs prune_audit.
_EVENT = "EXISTS (SELECT 1 FROM audit_auditevent e WHERE e.chain = NEW.chain AND e.seq = NEW.{0}seq AND e.hash = NEW.{0}hash)"
SQLITE_FORWARD = [
    f"""
    CREATE TRIGGER audit_chain_starts_empty BEFORE INSERT ON audit_auditchain
    WHEN NEW.seq <> 0 OR NEW.shipped_seq <> 0 OR NEW.pruned_seq <> 0
      OR NEW.hash <> NEW.shipped_hash OR NEW.hash <> NEW.pruned_hash OR NEW.hash <> printf('%064d', 0)
    BEGIN SELECT RAISE(ABORT, 'audit_auditchain: a new chain head starts at seq 0'); END
    """,
    """
    CREATE TRIGGER audit_chain_no_delete BEFORE DELETE ON audit_auditchain
    BEGIN SELECT RAISE(ABORT, 'audit_auditchain: DELETE of a chain head refused'); END
    """,
    f"""
    CREATE TRIGGER audit_chain_forward_only BEFORE UPDATE ON audit_auditchain
    WHEN NEW.chain <> OLD.chain OR NEW.tenant_id IS NOT OLD.tenant_id
      OR ((NEW.seq <> OLD.seq OR NEW.hash <> OLD.hash) AND (NEW.seq <= OLD.seq OR NOT {_EVENT.format("")}))
      OR ((NEW.shipped_seq <> OLD.shipped_seq OR NEW.shipped_hash <> OLD.shipped_hash)
          AND (NEW.shipped_seq <= OLD.shipped_seq OR NEW.shipped_seq > NEW.seq OR NOT {_EVENT.format("shipped_")}))
      OR ((NEW.pruned_seq <> OLD.pruned_seq OR NEW.pruned_hash <> OLD.pruned_hash)
          AND (NEW.pruned_seq <= OLD.pruned_seq OR NEW.pruned_seq > NEW.shipped_seq
               OR NOT {_EVENT.format("pruned_")}))
    BEGIN SELECT RAISE(ABORT, 'audit_auditchain: a chain head only moves forward onto its events'); END
    """,
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS audit_chain_starts_empty",
    "DROP TRIGGER IF EXISTS audit_chain_no_delete",
    "DROP TRIGGER IF EXISTS audit_chain_forward_only",
]


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_append_only_and_rls")]

    operations = [
        migrations.RunPython(
            run_for_vendor({"postgresql": PG_FORWARD, "sqlite": SQLITE_FORWARD}),
            run_for_vendor({"postgresql": PG_BACKWARD, "sqlite": SQLITE_BACKWARD}),
        ),
    ]
