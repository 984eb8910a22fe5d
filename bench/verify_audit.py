"""Benchmark: verify a chain of 1,000,000 audit events (target < 30 s), against a floor.

    .venv/bin/python bench/verify_audit.py [--events 1000000]

Builds a throw-away SQLite database in a temp folder (migrated like production), bulk-inserts a valid
chain with executemany, then times ``audit.services.verify_chain`` (the code behind ``verify_audit``)
and, as the floor, bare ``hashlib.sha256`` over the same canonical JSON bytes. Prints both and the
ratio. Not run by the test suite.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 30.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-audit-"))
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'bench.sqlite3'}"
    os.environ.pop("DATABASE_OWNER_URL", None)
    os.environ["HEALTHAPP_VAR_DIR"] = str(tmp)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthapp.settings")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from audit.canonical import canonical_bytes, event_document, event_hash
    from audit.models import GENESIS_HASH
    from audit.services import verify_chain

    call_command("migrate", verbosity=0)
    chain, n = "1", args.events
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    floor_bytes: list[bytes] = []

    t0 = time.perf_counter()
    prev = GENESIS_HASH
    rows = []
    columns = (
        "chain, seq, occurred_at, tenant_id, actor_id, actor_role, action, target_type, target_id, outcome, "
        "client_ip, user_agent, request_id, details, prev_hash, hash"
    )
    names = [c.strip() for c in columns.split(",")]
    insert = f"INSERT INTO audit_auditevent ({columns}) VALUES ({', '.join(['%s'] * 16)})"  # noqa: S608
    with transaction.atomic(), connection.cursor() as cur:
        # Written in bulk, not appended one by one: the scratch database drops the guard that makes each new
        # event continue its head (audit/migrations/0004_event_insert_guard.py); verification is what is timed.
        cur.execute("DROP TRIGGER IF EXISTS audit_event_continues_head")
        for seq in range(1, n + 1):
            values = {
                "chain": chain,
                "seq": seq,
                "occurred_at": start + dt.timedelta(milliseconds=seq * 37),
                "tenant_id": 1,
                "actor_id": 1000 + seq % 500,
                "actor_role": "hr_admin",
                "action": "member.viewed" if seq % 3 else "checkup.viewed",
                "target_type": "member",
                "target_id": str(seq % 20000),
                "outcome": "success",
                "client_ip": "203.0.113.10",
                "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0",
                "request_id": f"{seq:032x}",
                "details": {"page": seq % 7, "via": "web"},
                "prev_hash": prev,
            }
            document = event_document(values)
            floor_bytes.append(canonical_bytes(document))
            prev = event_hash(document)
            row = [values[name] for name in names[:-1]]
            row[names.index("details")] = json.dumps(values["details"])
            row[names.index("occurred_at")] = connection.ops.adapt_datetimefield_value(values["occurred_at"])
            rows.append([*row, prev])
            if len(rows) == 50_000:
                cur.executemany(insert, rows)
                rows.clear()
        if rows:
            cur.executemany(insert, rows)
        # A head starts empty and moves onto its newest event (audit/migrations/0003_chain_head_guard.py).
        cur.execute(
            "INSERT INTO audit_auditchain (chain, tenant_id, seq, hash, shipped_seq, shipped_hash, pruned_seq, "
            "pruned_hash) VALUES (%s, 1, 0, %s, 0, %s, 0, %s)",
            [chain, GENESIS_HASH, GENESIS_HASH, GENESIS_HASH],
        )
        cur.execute("UPDATE audit_auditchain SET seq = %s, hash = %s WHERE chain = %s", [n, prev, chain])
    generated = time.perf_counter() - t0

    t0 = time.perf_counter()
    for data in floor_bytes:
        hashlib.sha256(data).hexdigest()
    floor = time.perf_counter() - t0
    del floor_bytes

    if os.environ.get("BENCH_PROFILE"):
        import cProfile
        import pstats

        cProfile.runctx("verify_chain(chain)", globals(), locals(), str(tmp / "prof"))
        pstats.Stats(str(tmp / "prof")).sort_stats("tottime").print_stats(12)
    t0 = time.perf_counter()
    report = verify_chain(chain)
    verify = time.perf_counter() - t0
    assert report.ok and report.events == n, report

    print(f"events:                 {n:,}")
    print(f"generate + insert:      {generated:6.1f} s")
    print(f"floor (bare sha256):    {floor:6.2f} s")
    print(f"verify_chain:           {verify:6.1f} s   ({n / verify:,.0f} events/s)")
    print(f"ratio verify / floor:   {verify / floor:6.1f}x")
    scaled = verify * 1_000_000 / n
    verdict = "OK" if scaled < TARGET_SECONDS else "TOO SLOW"
    print(f"target: 1M in < {TARGET_SECONDS:.0f} s -> {scaled:.1f} s per 1M: {verdict}")
    return 0 if scaled < TARGET_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
