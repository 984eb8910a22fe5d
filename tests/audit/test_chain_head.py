"""The chain heads (audit_auditchain): the database lets them move forward onto their own events only,
and verify_audit checks their shipping and pruning points against the archive itself."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

import audit
from audit.services import chain_scope, iter_chain_rows, ship_pending
from tenants.context import tenant_context

from .conftest import ON_POSTGRES, pg_connect, tamper


def _hashes(tenant) -> dict[int, str]:
    with chain_scope(tenant):
        return {row["seq"]: row["hash"] for row in iter_chain_rows(str(tenant.pk))}


def _as_app(tenant, statement: str, params: list) -> None:
    """Run one statement as the application role inside the tenant's context; raise what it raises."""
    if ON_POSTGRES:
        from psycopg import Error

        with pg_connect() as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT set_config('app.tenant_id', %s, true)", [str(tenant.pk)])
            try:
                cur.execute(statement, params)
            except Error as exc:
                raise DatabaseError(str(exc)) from exc
        return
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(statement, params)


def _head(tenant) -> tuple:
    query = (
        "SELECT seq, hash, shipped_seq, shipped_hash, pruned_seq, pruned_hash FROM audit_auditchain WHERE chain = %s"
    )
    if ON_POSTGRES:
        with pg_connect("owner") as conn:
            return conn.execute(query, [str(tenant.pk)]).fetchone()
    with connection.cursor() as cur:
        cur.execute(query, [str(tenant.pk)])
        return tuple(cur.fetchone())


@pytest.mark.parametrize(
    ("statement", "params"),
    [
        # shipping rewound, or set onto a hash no event has
        ("UPDATE audit_auditchain SET shipped_seq = 0, shipped_hash = %(g)s WHERE chain = %(c)s", {"ship": 2}),
        ("UPDATE audit_auditchain SET shipped_seq = 4, shipped_hash = %(g)s WHERE chain = %(c)s", {"ship": 2}),
        # verification would start past the events (SQLite has no roles: there prune_audit is whoever runs it)
        pytest.param(
            "UPDATE audit_auditchain SET pruned_seq = 5, pruned_hash = %(h5)s WHERE chain = %(c)s",
            {"ship": 5},
            marks=pytest.mark.postgres,
        ),
        # the head rewound onto an earlier event, or forward onto nothing
        ("UPDATE audit_auditchain SET seq = 3, hash = %(h3)s WHERE chain = %(c)s", {}),
        ("UPDATE audit_auditchain SET seq = 6, hash = %(h5)s WHERE chain = %(c)s", {}),
        ("UPDATE audit_auditchain SET tenant_id = NULL WHERE chain = %(c)s", {}),
        ("DELETE FROM audit_auditchain WHERE chain = %(c)s", {}),
    ],
    ids=["ship-back", "ship-forged", "prune", "head-back", "head-forged", "tenant", "delete"],
)
def test_the_application_cannot_move_a_head_off_its_events(tamperable, statement, params):
    """Moving shipping forward onto a real event it cannot be refused (the shipper is the application):
    verify_audit catches that against the archive, below."""
    chain = str(tamperable.pk)
    hashes = _hashes(tamperable)
    if "ship" in params:
        ship_pending()
        tamper(
            "UPDATE audit_auditchain SET shipped_seq = %s, shipped_hash = %s WHERE chain = %s",
            [params["ship"], hashes[params["ship"]], chain],
        )
    before = _head(tamperable)
    values = {"c": chain, "g": "0" * 64, "h3": hashes[3], "h5": hashes[5]}
    with pytest.raises(DatabaseError, match="audit_auditchain"):
        _as_app(tamperable, statement, values)
    assert _head(tamperable) == before


@pytest.mark.postgres
def test_even_the_owner_moves_the_pruning_point_only_while_pruning(tamperable):
    from psycopg import errors

    ship_pending()
    hashes = _hashes(tamperable)
    with pg_connect("owner") as conn, conn.cursor() as cur:
        with pytest.raises(errors.RaiseException, match="only prune_audit"), conn.transaction():
            cur.execute(
                "UPDATE audit_auditchain SET pruned_seq = 3, pruned_hash = %s WHERE chain = %s",
                [hashes[3], str(tamperable.pk)],
            )
        with conn.transaction():
            cur.execute("SELECT set_config('audit.prune', 'on', true)")
            cur.execute(
                "UPDATE audit_auditchain SET pruned_seq = 3, pruned_hash = %s WHERE chain = %s",
                [hashes[3], str(tamperable.pk)],
            )
    assert _head(tamperable)[4] == 3


def test_recording_and_shipping_still_move_the_head(tamperable):
    ship_pending()
    with tenant_context(tamperable):
        audit.record(action="member.viewed", target_type="member", target_id=9)
    ship_pending()
    seq, hash_, shipped_seq, shipped_hash, *_ = _head(tamperable)
    assert (seq, shipped_seq) == (6, 6) and hash_ == shipped_hash == _hashes(tamperable)[6]


# --- verify_audit against the archive -----------------------------------------------------------------


def _verify(tenant, *flags: str) -> str:
    out, err = StringIO(), StringIO()
    try:
        call_command("verify_audit", "--tenant", tenant.slug, *flags, stdout=out, stderr=err)
    except CommandError:
        return "FAILED " + err.getvalue()
    return out.getvalue()


def test_a_head_marked_shipped_without_shipping_is_caught_by_the_archive(tamperable):
    """The owner (or anyone past the guard) marks everything shipped and pruned: the database alone agrees."""
    hashes = _hashes(tamperable)
    tamper(
        "UPDATE audit_auditchain SET shipped_seq = 5, shipped_hash = %s, pruned_seq = 5, pruned_hash = %s "
        "WHERE chain = %s",
        [hashes[5], hashes[5], str(tamperable.pk)],
    )
    assert "OK (0 events, last seq 5)" in _verify(tamperable, "--no-archive")
    report = _verify(tamperable)
    assert "BROKEN at seq 1: head says shipped through seq 5 but the archive ends at seq 0" in report


def test_a_chain_cut_back_after_shipping_is_caught_by_the_archive(tamperable):
    """The last two events deleted and the head set back onto the third: a consistent chain of three."""
    ship_pending()
    hashes = _hashes(tamperable)
    chain = str(tamperable.pk)
    tamper("DELETE FROM audit_auditevent WHERE chain = %s AND seq > 3", [chain])
    tamper(
        "UPDATE audit_auditchain SET seq = 3, hash = %s, shipped_seq = 3, shipped_hash = %s WHERE chain = %s",
        [hashes[3], hashes[3], chain],
    )
    assert "OK (3 events, last seq 3)" in _verify(tamperable, "--no-archive")
    assert "BROKEN at seq 4: the archive holds events through seq 5, past the head (3)" in _verify(tamperable)


def test_a_pruning_point_that_the_archive_does_not_hold_is_reported(tamperable, settings):
    ship_pending()
    hashes = _hashes(tamperable)
    chain = str(tamperable.pk)
    tamper("DELETE FROM audit_auditevent WHERE chain = %s AND seq <= 2", [chain])
    tamper("UPDATE audit_auditchain SET pruned_seq = 2, pruned_hash = %s WHERE chain = %s", [hashes[2], chain])
    assert "OK (3 events, last seq 5)" in _verify(tamperable)  # a genuine prune through seq 2
    for path in (settings.AUDIT_ARCHIVE_DIR / "audit" / chain).rglob("*.jsonl.gz"):
        path.chmod(0o644)
        path.unlink()
    assert "BROKEN at seq 1: head says shipped through seq 5 but the archive ends at seq 0" in _verify(tamperable)


def test_an_unreachable_archive_fails_verification_rather_than_passing_it(tamperable, settings):
    from tests.conftest import _free_port

    ship_pending()
    settings.AUDIT_S3_BUCKET = "audit"
    settings.AUDIT_S3_ENDPOINT_URL = f"http://127.0.0.1:{_free_port()}"
    assert "BROKEN at seq 5: archive unreadable (ArchiveUnavailable)" in _verify(tamperable)


def test_prune_refuses_a_chain_the_archive_does_not_hold(tamperable, settings):
    settings.AUDIT_RETENTION_MONTHS = 0
    hashes = _hashes(tamperable)
    tamper(
        "UPDATE audit_auditchain SET shipped_seq = 5, shipped_hash = %s WHERE chain = %s",
        [hashes[5], str(tamperable.pk)],
    )
    err = StringIO()
    call_command("prune_audit", stdout=StringIO(), stderr=err)
    assert f"chain {tamperable.pk}: refused: chain does not verify at seq 1" in err.getvalue()
    assert sorted(_hashes(tamperable)) == [1, 2, 3, 4, 5]
