"""Benchmark: the checkup import (provider CSV) end to end on PostgreSQL against its floor, same run.

    DATABASE_URL=postgres://healthapp_app@127.0.0.1:5432/healthapp \\
    DATABASE_OWNER_URL=postgres://healthapp_owner@127.0.0.1:5432/healthapp \\
    .venv/bin/python bench/checkup_import.py [--records 100000]

Generates a roster of ``--records`` people (employee number, name, birth date, sex) and a CP932
provider CSV with one checkup per person: employee number and exam date, then 25 values (the 18 result
items of the catalogue, 5 questionnaire answers, program and institution). In a scratch database
``bench_checkup_import`` (created and dropped by the owner role, like the test database):

- setup, not timed: the roster (members written in bulk), the provider's column mapping;
- floor: PostgreSQL ``COPY`` of the same values into a plain table, one row per value (25 per record);
- ours: the import as a worker runs it, as the application role under row-level security: store the
  upload, validate (the dry run), confirm, apply chunk by chunk, each chunk in its own transaction
  (match by blind index, write records and results, judge every record, audit), each chunk written
  while the next one is prepared;
- for reference, what this schema itself costs: the imported rows COPYed by the owner into copies of
  their tables with their indexes and foreign keys, committed;
- the CPU the import used, in this process and in the PostgreSQL server (bench/cpu.py): the least time
  that work could take on this machine's cores, however well it overlapped;
- a re-import of the unchanged file (validate + apply, nothing to write), after an ANALYZE (untimed).

Target: import and judging <= 8x the floor.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import dj_database_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cpu import cpu_use, report  # noqa: E402  (bench/ is the script's folder)
from scratchdb import setup_database, teardown_database  # noqa: E402

TARGET = 8
# Provider column → our mapping target: the 18 catalogue items, 5 questionnaire answers, 2 header fields.
COLUMNS = {
    "社員番号": "employee_number", "受診日": "exam_date", "健診種別": "program", "健診機関": "institution",
    "身長": "height", "体重": "weight", "BMI": "bmi", "腹囲": "waist", "収縮期血圧": "systolic",
    "拡張期血圧": "diastolic", "中性脂肪（空腹時）": "triglycerides_fasting",
    "中性脂肪（随時）": "triglycerides_random",
    "HDLコレステロール": "hdl", "LDLコレステロール": "ldl", "AST": "ast", "ALT": "alt", "γ-GT": "ggt",
    "空腹時血糖": "glucose_fasting", "随時血糖": "glucose_random", "HbA1c": "hba1c", "尿糖": "urine_sugar",
    "尿蛋白": "urine_protein", "服薬_血圧": "medication_bp", "服薬_血糖": "medication_glucose",
    "服薬_脂質": "medication_lipid", "喫煙": "smoker", "食後時間": "hours_since_meal",
}  # fmt: skip
VALUE_COLUMNS = list(COLUMNS)[2:]  # the 25 values per record (employee number and date identify it)
INSTITUTIONS = ["さくら健診クリニック", "東京健康管理センター", "大阪予防医学協会"]
URINE = ["－", "－", "－", "±", "＋"]
# Ranges of the integer items, in column order: BP, lipids, liver enzymes, glucose.
SPANS = [(95, 170), (55, 105), (40, 400), (50, 450), (30, 95), (60, 200), (12, 60), (8, 80), (10, 150), (75, 140),
         (80, 200)]  # fmt: skip  # as CP932 writes them (NFKC: -, ±, +)


def generate(tmp: Path, records: int) -> tuple[Path, Path, list[list[str]]]:
    """The roster CSV, the checkup CSV and the checkup rows (for the floor)."""
    rng = random.Random(8)
    roster, checkups = tmp / "roster.csv", tmp / "checkups.csv"
    rows: list[list[str]] = []
    with roster.open("w", encoding="cp932", newline="") as r, checkups.open("w", encoding="cp932", newline="") as c:
        roster_writer, writer = csv.writer(r, lineterminator="\r\n"), csv.writer(c, lineterminator="\r\n")
        roster_writer.writerow(["社員番号", "氏名", "生年月日", "性別", "事業所"])
        writer.writerow(list(COLUMNS))
        for i in range(records):
            number, male = f"E{i + 1:06d}", i % 2 == 0
            birth = dt.date(1958, 1, 1) + dt.timedelta(days=rng.randint(0, 365 * 45))
            roster_writer.writerow([number, f"健診 {i + 1}", birth.isoformat(), "男" if male else "女", "本社"])
            height = min(max(rng.gauss(171 if male else 158, 6), 140), 200)
            weight = min(max(rng.gauss(68 if male else 54, 9), 38), 140)
            waist = min(max(rng.gauss(84 if male else 78, 9), 55), 130)
            values = [
                "定期健診", INSTITUTIONS[i % 3], f"{height:.1f}", f"{weight:.1f}",
                f"{weight / (height / 100) ** 2:.1f}", f"{waist:.1f}", *(str(rng.randint(*span)) for span in SPANS),
                f"{rng.uniform(4.6, 7.5):.1f}", rng.choice(URINE), rng.choice(URINE),
                *(rng.choice(["あり"] + ["なし"] * odds) for odds in (5, 9, 6, 2)), str(rng.choice([2, 12, 14])),
            ]  # fmt: skip
            exam = dt.date(2025, 4, 1) + dt.timedelta(days=i % 300)
            writer.writerow([number, exam.strftime("%Y/%m/%d"), *values])
            rows.append(values)
    return roster, checkups, rows


def load_roster(path: Path, tenant) -> None:
    """The roster written in bulk (not timed): encrypted and blind-indexed as any member row."""
    from django.db import transaction

    from accounts.models import Member
    from tenants.context import tenant_context

    sexes = {"男": Member.Sex.MALE, "女": Member.Sex.FEMALE}
    with path.open(encoding="cp932", newline="") as f:
        reader = csv.reader(f)
        next(reader)
        rows = list(reader)
    for start in range(0, len(rows), 2000):
        with transaction.atomic(), tenant_context(tenant):
            members = []
            for number, name, birth, sex, _office in rows[start : start + 2000]:
                member = Member(
                    tenant=tenant, employee_number=number, name=name, birth_date=dt.date.fromisoformat(birth),
                    sex=sexes[sex],
                )  # fmt: skip
                member.before_save()  # bulk_create skips save(): derive the blind indexes here
                members.append(member)
            Member.objects.bulk_create(members)
    analyze()


def analyze() -> None:
    """Planner statistics for the freshly loaded tables, as autovacuum keeps them on a live server (the
    test server runs without autovacuum; without statistics the lookups by member scan the tenant)."""
    from django.db import connection

    from healthapp.db import owner_role

    with owner_role(), connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def _owner_connect():
    import psycopg
    from django.conf import settings
    from django.db import connection

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params["user"] = dj_database_url.parse(settings.DATABASE_OWNER_URL).get("USER") or params.get("user")
    return psycopg.connect(**params)


def floor(rows: list[list[str]]) -> float:
    """COPY of the same values into a plain table, one row per value (the data prepared untimed); the
    best of three runs, as the machine is shared."""
    buffer = io.StringIO()
    for record, values in enumerate(rows, start=1):
        for column, value in zip(VALUE_COLUMNS, values, strict=True):
            buffer.write(f"{record}\t{COLUMNS[column]}\t{value}\n")
    data = buffer.getvalue().encode()
    best = float("inf")
    with _owner_connect() as conn, conn.cursor() as cur:
        conn.autocommit = True
        for _ in range(3):
            cur.execute("CREATE TEMP TABLE checkup_floor (record integer, item text, value text)")
            start = time.perf_counter()
            with cur.copy("COPY checkup_floor FROM STDIN") as copy:
                for offset in range(0, len(data), 1 << 16):
                    copy.write(data[offset : offset + (1 << 16)])
            best = min(best, time.perf_counter() - start)
            cur.execute("SELECT count(*) FROM checkup_floor")
            assert cur.fetchone()[0] == len(rows) * len(VALUE_COLUMNS)
            cur.execute("DROP TABLE checkup_floor")
    return best


def schema_floor() -> dict[str, tuple[float, int]]:
    """For reference, not the target: what writing the import's own rows costs this schema here, with
    no application at all. Each table's rows, as imported, COPYed by the owner role (no row-level
    security) into a copy of the table with its indexes and foreign keys (checked row by row at the
    commit), committed. (seconds, rows) per table."""
    with _owner_connect() as conn, conn.cursor() as cur:
        records, judgements = _export(cur, "checkups_checkuprecord"), _export(cur, "checkups_judgement")
        return {
            "records": _copy_into_copy(conn, cur, "checkups_checkuprecord", records),
            "judgements": _copy_into_copy(conn, cur, "checkups_judgement", judgements),
            # Where that goes: the same rows without the foreign keys (the same-tenant keys prove the tenant).
            "records_no_fk": _copy_into_copy(conn, cur, "checkups_checkuprecord", records, foreign_keys=False),
            "judgements_no_fk": _copy_into_copy(conn, cur, "checkups_judgement", judgements, foreign_keys=False),
        }


def _export(cur, table: str) -> bytes:
    data = io.BytesIO()
    with cur.copy(f"COPY {table} TO STDOUT") as copy:
        for block in copy:
            data.write(block)
    return data.getvalue()


def _copy_into_copy(conn, cur, table: str, data: bytes, *, foreign_keys: bool = True) -> tuple[float, int]:
    """COPY ``data`` into a copy of ``table`` (LIKE … INCLUDING ALL: its indexes and defaults) with, if
    asked, the table's own foreign keys, committed; (seconds, rows)."""
    cur.execute(f"CREATE TABLE bench_copy (LIKE {table} INCLUDING ALL)")
    if foreign_keys:
        foreign = "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'"
        cur.execute(foreign, [table])
        for (definition,) in cur.fetchall():
            cur.execute(f"ALTER TABLE bench_copy ADD {definition}")
    conn.commit()
    start = time.perf_counter()
    with cur.copy("COPY bench_copy FROM STDIN") as copy:
        view = memoryview(data)
        for offset in range(0, len(view), 1 << 16):
            copy.write(view[offset : offset + (1 << 16)])
    conn.commit()
    seconds = time.perf_counter() - start
    cur.execute("SELECT count(*) FROM bench_copy")
    count = cur.fetchone()[0]
    cur.execute("DROP TABLE bench_copy")
    conn.commit()
    return seconds, count


def import_file(path: Path, tenant, mapping_id: int, cpu: list | None = None) -> tuple[float, float, object]:
    """The import as the workers run it: store + validate (one transaction), confirm, apply (one
    transaction per chunk, written while the next chunk is prepared). ``cpu``: receives the CpuUse of
    the validation and of the apply."""
    from django.db import transaction

    from checkups import imports
    from tenants.context import tenant_context

    start = time.perf_counter()
    with cpu_use() as validating:
        with transaction.atomic(), tenant_context(tenant), path.open("rb") as upload:
            job = imports.checkup_import_start(
                upload=upload, file_name=path.name, source="csv", mapping_id=mapping_id, acting_user=None, enqueue=False
            )
        with transaction.atomic(), tenant_context(tenant):
            job = imports.checkup_import_validate(job_id=job.pk)
            assert job.state == "validated" and not job.counts["errors"], (job.error_code, job.errors[:5])
    validated = time.perf_counter() - start
    with cpu_use() as applying:
        with transaction.atomic(), tenant_context(tenant):
            imports.checkup_import_confirm(job=job, acting_user=None, enqueue=False)
        imports.checkup_import_apply(tenant=tenant, job_id=job.pk)
    total = time.perf_counter() - start
    with tenant_context(tenant):
        job.refresh_from_db()
    if cpu is not None:
        cpu += [validating, applying]
    return validated, total, job


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-checkup-"))
    os.environ.setdefault("HEALTHAPP_VAR_DIR", str(tmp / "var"))
    roster_csv, checkup_csv, rows = generate(tmp, args.records)
    config = setup_database("bench_checkup_import")
    try:
        from checkups import imports
        from checkups.models import CheckupRecord, Judgement
        from tenants.context import tenant_context
        from tenants.services import tenant_create

        tenant = tenant_create(kind="company", name="ベンチ株式会社", slug="bench")
        start = time.perf_counter()
        load_roster(roster_csv, tenant)
        with tenant_context(tenant):
            mapping = imports.mapping_save(provider="ベンチ健診", mapping=COLUMNS, acting_user=None)
        setup_s = time.perf_counter() - start
        floor_s = floor(rows)
        cpu: list = []
        validated_s, import_s, job = import_file(checkup_csv, tenant, mapping.pk, cpu)
        applied = job.counts["applied"]
        assert job.state == "done" and applied["added"] == args.records == applied["judged"], job.counts
        with tenant_context(tenant):
            records, judgements = CheckupRecord.objects.count(), Judgement.objects.count()
            assert records == args.records, records
            results = sum(len(r) for r in CheckupRecord.objects.values_list("results", flat=True).iterator())
        assert judgements == args.records, judgements
        schema = schema_floor()
        analyze()  # between the runs, as autovacuum would after 100,000 new records (it is off here)
        revalidated_s, reimport_s, again = import_file(checkup_csv, tenant, mapping.pk)
        assert again.counts["applied"]["unchanged"] == args.records, again.counts
    finally:
        teardown_database(config)

    size_mb = checkup_csv.stat().st_size / 2**20
    values = args.records * len(VALUE_COLUMNS)
    print(f"records: {args.records:,} x {len(VALUE_COLUMNS)} values (18 result items, 5 questionnaire answers, "
          f"program, institution; CP932 CSV {size_mb:.1f} MB), PostgreSQL, application role with RLS")  # fmt: skip
    print(f"setup (not timed): roster + mapping {setup_s:.2f}s")
    print(
        f"floor: COPY of {values:,} values into a plain table {floor_s:.2f}s ({args.records / floor_s:,.0f} records/s)"
    )
    (records_s, records_n), (judgements_s, judgements_n) = schema["records"], schema["judgements"]
    own_floor_s = records_s + judgements_s
    print("reference (not the target): the import's own rows COPYed by the owner role (no row-level security, no "
          "application) into copies of their tables with their indexes and foreign keys, committed:")  # fmt: skip
    print(f"  {records_n:,} records (results included) {records_s:.2f}s + {judgements_n:,} judgements "
          f"{judgements_s:.2f}s = {own_floor_s:.2f}s = {own_floor_s / floor_s:.1f}x floor "
          "(the least any import writing these rows into this schema takes here)")  # fmt: skip
    no_fk_s = schema["records_no_fk"][0] + schema["judgements_no_fk"][0]
    print(f"  of which the foreign-key checks at the commit: {own_floor_s - no_fk_s:.2f}s (without them "
          f"{no_fk_s:.2f}s = {no_fk_s / floor_s:.1f}x floor)")  # fmt: skip
    ratio = import_s / floor_s
    print(f"import + judging: {import_s:.2f}s (validate {validated_s:.2f}s + apply {import_s - validated_s:.2f}s), "
          f"{args.records / import_s:,.0f} records/s, {results:,} results, {judgements:,} judgements, "
          f"{ratio:.2f}x floor (target <= {TARGET}x) {'OK' if ratio <= TARGET else 'OVER TARGET'}, "
          f"{import_s / own_floor_s:.2f}x the schema's own write floor above")  # fmt: skip
    for line in report([("validate", cpu[0]), ("apply", cpu[1])], floor_s):
        print(line)
    print(f"re-import unchanged: {reimport_s:.2f}s (validate {revalidated_s:.2f}s), "
          f"{args.records / reimport_s:,.0f} records/s, {reimport_s / floor_s:.2f}x floor")  # fmt: skip


if __name__ == "__main__":
    main()
