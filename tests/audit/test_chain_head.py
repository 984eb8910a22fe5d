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
    """The owner (or anyone past the guard) marks everything shipped and pruned, and deletes the events: the
    database alone agrees."""
    hashes = _hashes(tamperable)
    tamper(
        "UPDATE audit_auditchain SET shipped_seq = 5, shipped_hash = %s, pruned_seq = 5, pruned_hash = %s "
        "WHERE chain = %s",
        [hashes[5], hashes[5], str(tamperable.pk)],
    )
    tamper("DELETE FROM audit_auditevent WHERE chain = %s", [str(tamperable.pk)])
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


_EVENT = (
    "INSERT INTO audit_auditevent (chain, seq, occurred_at, tenant_id, actor_role, action, target_type, target_id, "
    "outcome, client_ip, user_agent, request_id, details, prev_hash, hash) VALUES "
    "(%(c)s, {seq}, '2026-12-05 00:00:00', %(t)s, '', 'member.viewed', '', '', 'success', '', '', '', '{{}}', "
    "{prev}, %(g)s)"
)


@pytest.mark.parametrize(
    "statement",
    [
        _EVENT.format(seq=0, prev="%(g)s"),  # verify_audit starts above the pruning point: never read, yet listed
        _EVENT.format(seq=-7, prev="%(g)s"),
        _EVENT.format(seq=6, prev="%(g)s"),  # the next seq, but not linked to the head
        _EVENT.format(seq=9, prev="%(h5)s"),  # linked, but not the next seq
        "INSERT INTO audit_auditchain (chain, tenant_id, seq, hash, shipped_seq, shipped_hash, pruned_seq, "
        "pruned_hash) VALUES ('999999', NULL, 0, %(g)s, 0, %(g)s, 0, %(g)s)",  # a head for a tenant to come
    ],
    ids=["seq-0", "negative", "unlinked", "gap", "planted-head"],
)
def test_the_application_cannot_insert_beside_the_chain(tamperable, statement):
    hashes = _hashes(tamperable)
    values = {"c": str(tamperable.pk), "t": tamperable.pk, "g": "0" * 64, "h5": hashes[5]}
    with pytest.raises(DatabaseError, match="audit_audit"):
        _as_app(tamperable, statement, values)
    assert sorted(_hashes(tamperable)) == [1, 2, 3, 4, 5]


def test_an_event_below_the_pruning_point_is_reported(tamperable):
    """Put there past the guards (the owner): verification walks from the pruning point up and must not
    leave what the log page and the export would still show unchecked."""
    tamper(_EVENT.format(seq=0, prev="%(g)s"), {"c": str(tamperable.pk), "t": tamperable.pk, "g": "0" * 64})
    assert "BROKEN at seq 0: events at or below the pruning point" in _verify(tamperable, "--no-archive")


# --- the archive checked as a chain of its own ----------------------------------------------------------------


def _archived(settings, chain: str) -> list:
    return sorted((settings.AUDIT_ARCHIVE_DIR / "audit" / chain).rglob("*.jsonl.gz"))


def _forge(settings, chain: str, name: str, lines: list[dict]) -> None:
    import gzip
    import json

    path = settings.AUDIT_ARCHIVE_DIR / "audit" / chain / "2099" / "12" / "31" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(b"".join(json.dumps(line).encode() + b"\n" for line in lines)))


def _lines(path) -> list[dict]:
    import gzip
    import json

    return [json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()]


def test_a_batch_holding_less_than_its_name_says_cannot_vouch_for_a_shipping_point(tamperable, settings):
    """The application marks seqs 6-10 shipped (the head guard allows it: it is the shipper) and writes one
    batch named 6-10 holding seq 10 alone; pruning would then delete 6-9 archived nowhere."""
    chain = str(tamperable.pk)
    ship_pending()
    with tenant_context(tamperable):
        for i in range(5):
            audit.record(action="member.viewed", target_type="member", target_id=100 + i)
    with chain_scope(tamperable):
        rows = {row["seq"]: row for row in iter_chain_rows(chain)}
    _as_app(
        tamperable,
        "UPDATE audit_auditchain SET shipped_seq = 10, shipped_hash = %(h)s WHERE chain = %(c)s",
        {"h": rows[10]["hash"], "c": chain},
    )
    from audit.canonical import event_document

    _forge(
        settings, chain, "000000000006-000000000010.jsonl.gz", [{**event_document(rows[10]), "hash": rows[10]["hash"]}]
    )
    assert "BROKEN at seq 6: an archived batch does not hold the seqs its name says" in _verify(tamperable)


def test_a_second_copy_of_a_batch_with_other_content_is_reported(tamperable, settings):
    chain = str(tamperable.pk)
    ship_pending()
    (shipped,) = _archived(settings, chain)
    lines = _lines(shipped)
    lines[2]["target_id"] = "999"  # what the owner would like seq 3 to have said
    _forge(settings, chain, shipped.name, lines)
    assert "BROKEN at seq 1: two archived copies of one batch differ" in _verify(tamperable)


def test_a_missing_or_unreadable_batch_is_reported_not_a_crash(tamperable, settings):
    chain = str(tamperable.pk)
    ship_pending(batch_size=2)  # 1-2, 3-4, 5
    batches = _archived(settings, chain)
    assert [p.name[:25] for p in batches] == ["000000000001-000000000002", "000000000003-000000000004",
                                              "000000000005-000000000005"]  # fmt: skip
    batches[0].chmod(0o644)
    batches[0].write_bytes(b"not gzip")  # opened by no check: neither the newest batch nor the one before it
    assert f"chain {chain}: OK (5 events, last seq 5)" in _verify(tamperable)
    batches[1].chmod(0o644)
    batches[1].write_bytes(b"not gzip")  # the one before the newest: its last hash links the newest batch
    assert "BROKEN at seq 3: an archived batch cannot be read (error)" in _verify(tamperable)  # zlib.error
    batches[1].unlink()
    assert "BROKEN at seq 3: archived batches leave a gap" in _verify(tamperable)


def test_a_longer_batch_shipped_again_after_a_crash_agrees_with_the_first_and_passes(tamperable, settings):
    """The worker died after writing batch 1-5, before moving the shipping point; its retry ships 1-6."""
    chain = str(tamperable.pk)
    ship_pending()
    with tenant_context(tamperable):
        audit.record(action="member.viewed", target_type="member", target_id=6)
    tamper("UPDATE audit_auditchain SET shipped_seq = 0, shipped_hash = %s WHERE chain = %s", ["0" * 64, chain])
    ship_pending()
    assert [p.name[:25] for p in _archived(settings, chain)] == [
        "000000000001-000000000005",
        "000000000001-000000000006",
    ]
    assert f"chain {chain}: OK (6 events, last seq 6)" in _verify(tamperable)
    assert f"chain {chain}: archive OK (6 events archived)" in _verify(tamperable, "--full-archive")


def test_prune_opens_every_batch_it_would_leave_as_the_only_record(tamperable, settings):
    """The shipper wrote batch 1-2 as it liked; verification reads the newest batches only, so it passes. The
    events 1-2 are not deleted: the archive does not hold them as they are."""
    chain = str(tamperable.pk)
    settings.AUDIT_RETENTION_MONTHS = 0
    ship_pending(batch_size=2)
    first = _archived(settings, chain)[0]
    lines = _lines(first)
    lines[0]["target_id"] = "rewritten"
    from audit.canonical import event_hash

    for line in lines:  # a consistent forgery: each hash recomputed, the second linked to the first
        line.pop("hash")
    lines[0]["hash"] = event_hash(lines[0])
    lines[1]["prev_hash"] = lines[0]["hash"]
    lines[1]["hash"] = event_hash({k: v for k, v in lines[1].items() if k != "hash"})
    first.chmod(0o644)
    import gzip
    import json

    first.write_bytes(gzip.compress(b"".join(json.dumps(line).encode() + b"\n" for line in lines)))
    assert f"chain {chain}: OK (5 events, last seq 5)" in _verify(tamperable)
    assert "does not link to the event before it" in _verify(tamperable, "--full-archive")  # every batch read
    err = StringIO()
    call_command("prune_audit", stdout=StringIO(), stderr=err)
    assert (
        f"chain {chain}: refused: the archive does not hold seq 3 as shipped: an archived batch does not link to "
        "the event before it" in err.getvalue()
    )
    assert sorted(_hashes(tamperable)) == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("name", ["000000000006-999999999999.jsonl.gz", "000000000004-000000000003.jsonl.gz"])
def test_a_batch_name_giving_an_impossible_range_is_reported_not_a_crash(tamperable, settings, name):
    ship_pending()
    _forge(settings, str(tamperable.pk), name, [])
    assert "BROKEN at seq" in _verify(tamperable) and "impossible range" in _verify(tamperable)
