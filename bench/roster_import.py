"""Benchmark: the roster import end to end on PostgreSQL against its floor, measured in the same run.

    DATABASE_URL=postgres://healthapp_app@127.0.0.1:5432/healthapp \\
    DATABASE_OWNER_URL=postgres://healthapp_owner@127.0.0.1:5432/healthapp \\
    .venv/bin/python bench/roster_import.py [--rows 100000] [--memory-rows 10000]

Generates a realistic CP932 roster (Japanese names, kana, era and Gregorian dates, offices and
departments, e-mail addresses), then in a scratch database ``bench_roster_import`` (created and
dropped by the owner role, like the test database):

- floor (best of three runs): PostgreSQL ``COPY`` of the same file into a plain table, plus the bare AES-256-GCM
  encryption of every value the file carries and the bare HMAC-SHA-256 of every blind index; measured
  again just before each run of the import;
- ours: the import as a worker runs it, as the application role under row-level security: store
  the upload, validate (the dry run), apply chunk by chunk (encrypt, blind-index, insert); two runs,
  each into a new tenant against the floor measured just before it, and the lower ratio counts;
- the CPU the import used, in this process and in the PostgreSQL server (bench/cpu.py): the least time
  that work could take on this machine's cores, however well it overlapped;
- a re-import of the unchanged file (validate + apply, nothing to write);
- memory: the peak of Python allocations (tracemalloc) for validate + apply of two file sizes, which
  stays flat when rows stream (a list of the file's rows would grow ~1.5 KB per row).

Target: full import <= 5x the floor; the re-import faster than the import.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import hmac
import os
import random
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cpu import cpu_use, report  # noqa: E402  (bench/ is the script's folder)
from scratchdb import setup_database, teardown_database  # noqa: E402

LAST = "佐藤:サトウ 鈴木:スズキ 高橋:タカハシ 田中:タナカ 伊藤:イトウ 渡辺:ワタナベ 山本:ヤマモト 中村:ナカムラ"
LAST += " 小林:コバヤシ 加藤:カトウ 吉田:ヨシダ 山田:ヤマダ 佐々木:ササキ 山口:ヤマグチ 松本:マツモト"
LAST += " 髙橋:タカハシ 齋藤:サイトウ"
FIRST = "太郎:タロウ 花子:ハナコ 翔太:ショウタ 美咲:ミサキ 大輔:ダイスケ 陽菜:ヒナ 健一:ケンイチ 由美:ユミ 拓也:タクヤ"
FIRST += " さくら:サクラ 﨑子:サキコ"
LAST_NAMES = [tuple(pair.split(":")) for pair in LAST.split()]
FIRST_NAMES = [tuple(pair.split(":")) for pair in FIRST.split()]
OFFICES = {
    "東京本社": ["営業部", "人事部", "経理部"],
    "大阪支社": ["営業部", "総務部"],
    "名古屋工場": ["製造部", "品質管理部"],
}
HEADER = ["社員番号", "氏名", "フリガナ", "生年月日", "性別", "事業所", "部署", "資格喪失日", "メールアドレス"]


def era(date: dt.date) -> str:
    if date >= dt.date(2019, 5, 1):
        return f"R{date.year - 2018}.{date.month}.{date.day}"
    if date >= dt.date(1989, 1, 8):
        return f"平成{date.year - 1988}年{date.month}月{date.day}日"
    return f"S{date.year - 1925}.{date.month}.{date.day}"


def generate(path: Path, rows: int) -> None:
    rng = random.Random(4)
    offices = list(OFFICES.items())
    with path.open("w", encoding="cp932", newline="") as f:
        writer = csv.writer(f, lineterminator="\r\n")
        writer.writerow(HEADER)
        for i in range(rows):
            (last, last_kana), (first, first_kana) = rng.choice(LAST_NAMES), rng.choice(FIRST_NAMES)
            birth = dt.date(1958, 1, 1) + dt.timedelta(days=rng.randint(0, 365 * 45))
            office, departments = offices[i % len(offices)]
            end = dt.date(2030, 3, 31).isoformat() if i % 50 == 0 else ""
            writer.writerow([
                f"E{i + 1:06d}", f"{last} {first}", f"{last_kana} {first_kana}",
                era(birth) if i % 3 == 0 else birth.strftime("%Y/%m/%d" if i % 3 == 1 else "%Y-%m-%d"),
                "男" if i % 2 else "女", office, departments[i % len(departments)], end,
                f"user{i + 1}@example.co.jp",
            ])  # fmt: skip


def floor(path: Path, tenant) -> tuple[float, float]:
    """COPY of the file into a plain table; bare AES-GCM of every value and HMAC of every index."""
    import psycopg
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from django.db import connection

    from healthapp.crypto import keyring
    from healthapp.crypto.blind_index import normalise
    from tenants.context import tenant_context

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE roster_floor (" + ", ".join(f"c{i} text" for i in range(len(HEADER))) + ")")
        start = time.perf_counter()
        with cur.copy("COPY roster_floor FROM STDIN WITH (FORMAT csv, HEADER true, ENCODING 'SJIS')") as copy:
            with path.open("rb") as f:
                while block := f.read(1 << 16):
                    copy.write(block)
        copy_seconds = time.perf_counter() - start
        cur.execute("SELECT count(*) FROM roster_floor")
        assert cur.fetchone()[0] > 0

    with tenant_context(tenant):
        key = keyring.key_bytes(tenant.pk, "data", keyring.active_version(tenant.pk))
        aead, index_key = AESGCM(key), hashlib.sha256(keyring.key_bytes(tenant.pk, "index", 1)).digest()
    aad = b"%d|accounts.member|field|" % tenant.pk + os.urandom(16)
    with path.open(encoding="cp932", newline="") as f:
        reader = csv.reader(f)
        next(reader)
        # Inputs prepared outside the timing (the floor is the primitives only).
        values = [(row[0], row[1], row[2], row[3], row[4], row[8]) for row in reader]
    normalised = [(normalise(v[0]), normalise(v[1], kana=True), normalise(v[5])) for v in values]
    start = time.perf_counter()
    for row in values:  # a fresh 96-bit nonce per value, drawn in one read per row (as the import does)
        nonces = os.urandom(12 * len(row))
        for at, value in enumerate(row):
            aead.encrypt(nonces[12 * at : 12 * at + 12], value.encode(), aad)
    for row in normalised:
        for value in row:
            hmac.digest(index_key, value.encode(), "sha256")
    crypto_seconds = time.perf_counter() - start
    return copy_seconds, crypto_seconds


def import_file(path: Path, tenant, cpu: list | None = None) -> tuple[float, float, object]:
    """The import as the worker runs it: store + validate (one transaction), apply per chunk.
    ``cpu``: receives the CpuUse of the validation and of the apply."""

    from accounts import roster_import
    from tenants.context import tenant_context

    start = time.perf_counter()
    with cpu_use() as validating, tenant_context(tenant), path.open("rb") as upload:
        job = roster_import.roster_import_start(
            upload=upload, file_name=path.name, mode="full", create_offices=True, acting_user=None, enqueue=False
        )
        job = roster_import.roster_import_validate(job_id=job.pk)
        assert job.state == "validated", (job.error_code, job.errors[:5])
        roster_import.roster_import_confirm(job=job, acting_user=None, enqueue=False)
    validated = time.perf_counter() - start
    with cpu_use() as applying:
        roster_import.roster_import_apply(tenant=tenant, job_id=job.pk)
    total = time.perf_counter() - start
    with tenant_context(tenant):
        job.refresh_from_db()
    if cpu is not None:
        cpu += [validating, applying]
    return validated, total, job


def server_share(tenant) -> float:
    """PostgreSQL's part of writing new members, alone: the imported rows (already sealed and indexed)
    copied once more into the member table, under the same indexes, foreign keys and row-level
    security, by the application role; deferred foreign keys checked; rolled back. No import can
    write its rows for less."""
    from django.db import connection, transaction

    from accounts.models import Member
    from tenants.context import tenant_context

    table = Member._meta.db_table
    columns = [f.column for f in Member._meta.concrete_fields if not f.primary_key]
    fresh = {  # new uids and keys: the copies must not collide with the rows they copy
        "uid": "md5(uid::text)::uuid",
        "employee_number_index": "md5(employee_number_index) || md5(employee_number_index || 'x')",
    }
    select = ", ".join(fresh.get(c, c) for c in columns)
    with tenant_context(tenant), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMP TABLE member_again ON COMMIT DROP AS SELECT {select} FROM {table}")  # noqa: S608
        start = time.perf_counter()
        cursor.execute(f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM member_again")  # noqa: S608
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the deferred foreign-key checks, as at commit
        seconds = time.perf_counter() - start
        transaction.set_rollback(True)
    return seconds


def memory_peak(path: Path, tenant) -> float:
    """Python's allocations in this process (the dry run's helper, if any, is another process: both sizes
    are measured with it, so that the two figures compare the same work)."""
    from django.conf import settings

    settings.ROSTER_IMPORT_HELPER_MIN_BYTES = 0
    tracemalloc.start()
    import_file(path, tenant)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--memory-rows", type=int, default=10_000, help="small size of the memory probe")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-roster-"))
    os.environ.setdefault("HEALTHAPP_VAR_DIR", str(tmp / "var"))
    csv_path = tmp / "roster.csv"
    generate(csv_path, args.rows)
    config = setup_database("bench_roster_import")
    try:
        from tenants.services import tenant_create

        # Two runs, each into a new tenant, each with its floor measured just before it, and the run with
        # the lower ratio counts: on a shared machine the speed drifts by a tenth or more within a minute,
        # and a floor taken at another moment than its import skews the ratio either way. The floor is the
        # best of three runs (its crypto part varies most), which makes each ratio the higher one.
        runs = []
        for run in range(2):
            into = tenant_create(kind="company", name=f"ベンチ{run + 1}", slug=f"bench-{run}")
            copy_s, crypto_s = min((floor(csv_path, into) for _ in range(3)), key=sum)
            cpu: list = []
            validated_s, import_s, job = import_file(csv_path, into, cpu)
            assert job.counts["applied"]["added"] == args.rows, job.counts
            runs.append((import_s / (copy_s + crypto_s), import_s, validated_s, copy_s, crypto_s, cpu, into))
        _ratio, import_s, validated_s, copy_s, crypto_s, cpu, tenant = min(runs, key=lambda r: r[0])
        floor_s = copy_s + crypto_s
        all_runs = ", ".join(f"{r[1]:.2f}s / {r[3] + r[4]:.2f}s = {r[0]:.2f}x" for r in runs)
        revalidated_s, reimport_s, again = import_file(csv_path, tenant)
        assert again.counts["applied"]["unchanged"] == args.rows, again.counts
        server_s = server_share(tenant)

        small, large = tmp / "small.csv", tmp / "large.csv"
        generate(small, args.memory_rows)
        generate(large, args.memory_rows * 5)
        other = tenant_create(kind="company", name="メモリ計測", slug="bench-memory")
        peak_small, peak_large = memory_peak(small, other), memory_peak(large, other)
    finally:
        teardown_database(config)

    size_mb = csv_path.stat().st_size / 2**20
    print(f"rows: {args.rows:,} (CP932, {size_mb:.1f} MB), PostgreSQL, application role with RLS")
    print(f"floor: COPY {copy_s:.2f}s + bare AES-GCM/HMAC {crypto_s:.2f}s = {floor_s:.2f}s "
          f"({args.rows / floor_s:,.0f} rows/s)")  # fmt: skip
    ratio = import_s / floor_s
    print(f"import: {import_s:.2f}s (validate {validated_s:.2f}s + apply {import_s - validated_s:.2f}s), "
          f"{args.rows / import_s:,.0f} rows/s, {ratio:.2f}x floor (target <= 5x) "
          f"{'OK' if ratio <= 5 else 'OVER TARGET'} (the better of two runs: {all_runs})")  # fmt: skip
    print(f"  of which PostgreSQL alone must spend: inserting the same sealed rows again from a temp table (indexes, "
          f"foreign keys, row-level security) {server_s:.2f}s = {server_s / floor_s:.2f}x floor")  # fmt: skip
    for line in report([("validate", cpu[0]), ("apply", cpu[1])], floor_s):
        print(line)
    print(f"re-import unchanged: {reimport_s:.2f}s (validate {revalidated_s:.2f}s), {args.rows / reimport_s:,.0f} "
          f"rows/s, {reimport_s / floor_s:.2f}x floor, {'faster' if reimport_s < import_s else 'NOT FASTER'} "
          f"than the import")  # fmt: skip
    growth = peak_large / peak_small
    print(f"memory (tracemalloc peak): {args.memory_rows:,} rows {peak_small:.1f} MB, {args.memory_rows * 5:,} rows "
          f"{peak_large:.1f} MB ({growth:.2f}x for 5x the rows; "
          f"{(peak_large - peak_small) * 2**20 / (args.memory_rows * 4):.0f} bytes per extra row)")  # fmt: skip


if __name__ == "__main__":
    main()
