"""Row-level security on the audit tables, seen as the application role."""

from __future__ import annotations

import pytest

from tenants.rls import rls_violations

from .conftest import pg_connect

pytestmark = pytest.mark.postgres


def test_audit_tables_pass_the_rls_catalogue_check(transactional_db):
    with pg_connect() as conn, conn.cursor() as cur:
        problems = rls_violations(cur)
    assert [p for p in problems if p.startswith("audit_")] == []


def test_no_setting_no_rows_tenant_a_set_only_a_rows(committed_world):
    a, b = committed_world.tenant_a.pk, committed_world.tenant_b.pk
    with pg_connect() as conn, conn.cursor() as cur:
        for table in ("audit_auditevent", "audit_auditchain"):
            cur.execute(f"SELECT count(*) FROM {table}")
            assert cur.fetchone()[0] == 0, table
        with conn.transaction():
            cur.execute("SELECT set_config('app.tenant_id', %s, true)", [str(a)])
            cur.execute("SELECT DISTINCT tenant_id FROM audit_auditevent")
            assert [row[0] for row in cur.fetchall()] == [a]
            cur.execute("SELECT count(*) FROM audit_auditevent WHERE tenant_id = %s OR tenant_id IS NULL", [b])
            assert cur.fetchone()[0] == 0


def test_the_tenantless_chain_is_visible_only_when_asked_for(committed_world):
    from audit.services import record

    record(action="auth.login.failed", outcome="failure", tenant=None)
    with pg_connect() as conn, conn.cursor() as cur:
        with conn.transaction():
            cur.execute("SELECT set_config('app.tenant_id', %s, true)", [str(committed_world.tenant_a.pk)])
            cur.execute("SELECT count(*) FROM audit_auditevent WHERE tenant_id IS NULL")
            assert cur.fetchone()[0] == 0
        with conn.transaction():
            cur.execute("SELECT set_config('app.audit_chain', '-', true)")
            cur.execute("SELECT count(*), count(*) FILTER (WHERE tenant_id IS NOT NULL) FROM audit_auditevent")
            total, with_tenant = cur.fetchone()
            assert total > 0 and with_tenant == 0


def test_with_tenant_a_set_an_event_of_b_cannot_be_written(committed_world):
    from psycopg import errors

    a, b = committed_world.tenant_a.pk, committed_world.tenant_b.pk
    with pg_connect("owner") as owner:  # an event that continues b's chain, so only row-level security refuses it
        seq, head = owner.execute("SELECT seq, hash FROM audit_auditchain WHERE chain = %s", [str(b)]).fetchone()
    with pg_connect() as conn:
        with pytest.raises(errors.InsufficientPrivilege), conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT set_config('app.tenant_id', %s, true)", [str(a)])
            cur.execute(
                "INSERT INTO audit_auditevent (chain, seq, occurred_at, tenant_id, actor_role, action, target_type, "
                "target_id, outcome, client_ip, user_agent, request_id, details, prev_hash, hash) VALUES "
                "(%s, %s, now(), %s, '', 'x.y', '', '', 'success', '', '', '', '{}', %s, '')",
                [str(b), seq + 1, b, head],
            )
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT set_config('app.tenant_id', %s, true)", [str(a)])
            cur.execute("UPDATE audit_auditchain SET seq = 0 WHERE chain = %s", [str(b)])
            assert cur.rowcount == 0
