"""Benchmark: the checkup pages of a big tenant on PostgreSQL against a floor measured in the same run.

    DATABASE_URL=postgres://healthapp_app@127.0.0.1:5432/healthapp \\
    DATABASE_OWNER_URL=postgres://healthapp_owner@127.0.0.1:5432/healthapp \\
    .venv/bin/python bench/checkup_pages.py [--records 100000]

In a scratch database ``bench_checkup_pages`` (created and dropped by the owner role), as the application
role under row-level security: one tenant with ``--records`` people in 9 departments, one judged checkup
each for the fiscal year (grades A-E), physician's opinions on a tenth of the C-E records (most asking
for a follow-up, half of those done), a physician and an HR user with tenant-wide labels. Then, each the
best of three runs:

- floor: one SELECT of every record of the year (id, member, exam date): the least the dashboard, which
  counts every person, must read;
- the physician's queue (first page), HR's 就業判定の確認 (first page, and narrowed to follow-ups not done)
  and 健診の集計, each as its view reads it (the selector, the page's rows and names decrypted).

There is no target in the issue for these pages; the point is that a page's cost stays near the floor
instead of growing with everything the tenant holds (before paging: 11-23 s at 20,000 records).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scratchdb import setup_database, teardown_database  # noqa: E402  (bench/ is the script's folder)

BATCH = 5000


def populate(records: int):
    """The tenant, its people, checkups, judgements, opinions and visits (not timed); returns
    (tenant, physician, hr)."""
    from django.db import connection, transaction

    from checkups.services import GRADES_SET, criteria_current
    from healthapp.db import owner_role
    from tenants.context import tenant_context
    from tenants.services import department_create, office_create, tenant_create

    rng = random.Random(9)
    tenant = tenant_create(kind="company", name="ベンチ株式会社", slug="bench-pages")
    with tenant_context(tenant):
        offices = [office_create(name=name) for name in ("東京本社", "大阪支社", "名古屋工場")]
        departments = [
            (office, department_create(office=office, name=name))
            for office in offices
            for name in ("営業部", "総務部", "製造部")
        ]
        physician, hr = _staff(tenant, offices[0])
        criteria = criteria_current(GRADES_SET)
    for start in range(0, records, BATCH):
        with transaction.atomic(), tenant_context(tenant):
            _checkups(range(start, min(start + BATCH, records)), departments, criteria, physician, hr, rng)
    with owner_role(), connection.cursor() as cur:  # statistics, as autovacuum keeps them on a live server
        cur.execute("ANALYZE")
    return tenant, physician, hr


def _staff(tenant, office):
    """An org admin, then a physician and an HR user with tenant-wide labels given by that admin."""
    import secrets

    from accounts.models import Role
    from accounts.services import label_grant_create, member_create, user_create

    def login(key: str, role: str):
        member = member_create(employee_number=f"S-{key}", name=f"職員 {key}", office=office)
        return user_create(email=f"{key}@bench.example", role=role, tenant=tenant, member=member,
                           password=secrets.token_urlsafe(16) + "aA1!")  # fmt: skip

    admin = login("admin", Role.ORG_ADMIN)
    staff = []
    for key, role, label in (("doc", Role.PHYSICIAN, "physician"), ("hr", Role.HR_ADMIN, "hr_staff")):
        staff.append(login(key, role))
        label_grant_create(office=office, target_kind="employee", target=f"S-{key}", labels=[label], scope_="tenant",
                           acting_user=admin)  # fmt: skip
    return staff


def _checkups(numbers: range, departments, criteria, physician, hr, rng: random.Random) -> None:
    """People with one judged checkup each; opinions on a tenth of C-E, half of their follow-ups done."""
    from accounts.models import Member
    from checkups.models import CheckupRecord, FollowUpVisit, Judgement, PhysicianOpinion

    people = Member.objects.bulk_create(
        [
            Member(employee_number=f"E{i:06d}", name=f"頁 {i}", office=departments[i % 9][0],
                   department=departments[i % 9][1], sex="male", birth_date=dt.date(1980, 1, 1))
            for i in numbers
        ]
    )  # fmt: skip
    first = dt.date(2025, 5, 1)
    records = CheckupRecord.objects.bulk_create(
        [
            CheckupRecord(member_id=person.pk, exam_date=first + dt.timedelta(days=rng.randint(0, 180)),
                          fiscal_year=2025, program="regular")
            for person in people
        ]
    )  # fmt: skip
    grades = [rng.choice("AABBCCDE") for _ in records]
    Judgement.objects.bulk_create(
        [
            Judgement(record_id=record.pk, criteria=criteria, overall=grade, grades={"ldl": grade})
            for record, grade in zip(records, grades, strict=True)
        ]
    )
    signed = [record for record, grade in zip(records, grades, strict=True) if grade in "CDE" and rng.random() < 0.1]
    opinions = PhysicianOpinion.objects.bulk_create(
        [
            PhysicianOpinion(record_id=record.pk, fitness="normal", signed_by=physician,
                             follow_up=rng.choice(["none", "recheck", "consult"]))
            for record in signed
        ]
    )  # fmt: skip
    FollowUpVisit.objects.bulk_create(
        [
            FollowUpVisit(record_id=o.record_id, opinion=o, status="done", visited_on=dt.date(2025, 12, 1),
                          recorded_by=hr)
            for o in opinions
            if o.follow_up != "none" and rng.random() < 0.5
        ]
    )  # fmt: skip


def best_of_three(work) -> float:
    times = []
    for _ in range(3):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    os.environ.setdefault("HEALTHAPP_VAR_DIR", str(Path(tempfile.mkdtemp(prefix="bench-pages-")) / "var"))
    config = setup_database("bench_checkup_pages")
    try:
        from django.db import connection

        from checkups import selectors
        from tenants.context import tenant_context

        start = time.perf_counter()
        tenant, physician, hr = populate(args.records)
        setup_s = time.perf_counter() - start
        with tenant_context(tenant):

            def floor() -> None:
                with connection.cursor() as cur:
                    cur.execute("SELECT id, member_id, exam_date FROM checkups_checkuprecord WHERE fiscal_year = 2025")
                    assert len(cur.fetchall()) == args.records

            def queue() -> None:
                page = selectors.review_queue(user=physician, page=1)
                assert page.paginator.count > 0 and all(entry.record.member.name for entry in page)

            def conclusions(show: str):
                def run() -> None:
                    page = selectors.conclusions(user=hr, page=1, show=show)
                    assert page.paginator.count > 0 and all(row.member.name for row in page)

                return run

            def dashboard() -> None:
                distribution = selectors.grade_distribution(user=hr)
                assert sum(row.people for row in distribution.rows) == args.records  # everyone with a checkup

            floor_s = best_of_three(floor)
            timings = [
                ("physician's queue, first page", best_of_three(queue)),
                ("就業判定の確認, first page", best_of_three(conclusions("all"))),
                ("就業判定の確認, follow-ups not done", best_of_three(conclusions("follow_up"))),
                ("健診の集計", best_of_three(dashboard)),
            ]
    finally:
        teardown_database(config)
    print(f"records: {args.records:,} judged checkups of one tenant, PostgreSQL, application role with RLS "
          f"(setup, not timed: {setup_s:.1f}s)")  # fmt: skip
    print(f"floor: one SELECT of every record of the year {floor_s:.3f}s")
    for name, seconds in timings:
        print(f"{name}: {seconds:.3f}s = {seconds / floor_s:.1f}x floor")


if __name__ == "__main__":
    main()
