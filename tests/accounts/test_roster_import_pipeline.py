"""On PostgreSQL the worker applies a roster import with two threads: chunk n is written while chunk
n + 1 is read and sealed. Each chunk still commits alone with the job's pointer."""

from __future__ import annotations

import io
import json

import pytest
from django.db import connection
from django.db.models import Count
from django.test.utils import CaptureQueriesContext

from accounts import roster_import
from accounts.models import Member
from healthapp.crypto.blind_index import blind_index
from healthapp.lookups import rows_by_keys
from healthapp.models import Job
from tenants.context import tenant_context
from tests.accounts.test_roster_import import person, roster_csv

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("private_storage")]


def _confirmed(tenant, rows, **csv_options) -> Job:
    with tenant_context(tenant):
        job = roster_import.roster_import_start(
            upload=io.BytesIO(roster_csv(rows, **csv_options)), file_name="roster.csv", mode="partial",
            create_offices=True, acting_user=None, enqueue=False,
        )  # fmt: skip
        job = roster_import.roster_import_validate(job_id=job.pk)
        return roster_import.roster_import_confirm(job=job, acting_user=None, enqueue=False)


def _duplicates(tenant) -> int:
    with tenant_context(tenant):
        return Member.objects.values("employee_number_index").annotate(n=Count("pk")).filter(n__gt=1).count()


def test_two_threads_apply_every_chunk_once_with_progress(committed_world, settings):
    settings.ROSTER_IMPORT_CHUNK_ROWS = 7
    tenant = committed_world.tenant_a
    job = _confirmed(tenant, [person(f"P{i:03d}", office=f"支店{i % 3}") for i in range(50)])
    seen: list[int] = []
    roster_import.roster_import_apply(tenant=tenant, job_id=job.pk, progress=lambda j: seen.append(j.rows_done))
    with tenant_context(tenant):
        job.refresh_from_db()
        numbers = {str(m.employee_number) for m in Member.objects.filter(office__name__startswith="支店")}
    assert job.state == Job.State.DONE and job.counts["applied"]["added"] == 50
    assert numbers == {f"P{i:03d}" for i in range(50)} and _duplicates(tenant) == 0
    assert seen == sorted(seen) and seen[-1] == 50 and len(seen) >= 7  # the bar moves chunk by chunk


def test_a_failed_write_stops_the_import_at_that_chunk_and_a_rerun_finishes_it(committed_world, settings, monkeypatch):
    settings.ROSTER_IMPORT_CHUNK_ROWS = 5
    tenant = committed_world.tenant_a
    job = _confirmed(tenant, [person(f"F{i:02d}") for i in range(30)])
    real_insert, calls = roster_import._insert_members, []

    def failing(new, fields):
        calls.append(len(new))
        if len(calls) == 3:
            raise RuntimeError("connection lost")
        return real_insert(new, fields)

    monkeypatch.setattr(roster_import, "_insert_members", failing)
    with pytest.raises(RuntimeError):
        roster_import.roster_import_apply(tenant=tenant, job_id=job.pk)
    with tenant_context(tenant):
        stopped = Job.objects.get(pk=job.pk)
        assert stopped.next_chunk == 2 and Member.objects.filter(employee_number_index__isnull=False).count() == 3 + 10
    monkeypatch.setattr(roster_import, "_insert_members", real_insert)
    roster_import.roster_import_apply(tenant=tenant, job_id=job.pk)  # the redelivered task
    with tenant_context(tenant):
        done = Job.objects.get(pk=job.pk)
    assert done.state == Job.State.DONE and done.counts["applied"]["added"] == 30 and _duplicates(tenant) == 0


def test_a_chunks_member_lookup_probes_the_key_index_on_a_table_without_statistics(world):
    """The test database is never analysed, like a new tenant's first big import: the lookup of a
    chunk's keys must still go through the key index, not scan the tenant's rows once per chunk (which
    made a 100k-row import quadratic)."""
    tenant = world.tenant_a
    with tenant_context(tenant):
        numbers = [f"S{i:05d}" for i in range(3000)]
        index = {n: blind_index(tenant.pk, "employee-number", n) for n in numbers}
        Member.objects.bulk_create(  # bulk_create skips save(): the key index is given here
            [Member(tenant=tenant, employee_number=n, employee_number_index=index[n], name="統計") for n in numbers],
            batch_size=1000,
        )
        keys = [index[n] for n in numbers[::3]]
        with CaptureQueriesContext(connection) as captured:
            found = list(rows_by_keys(Member, "employee_number_index", keys, ["pk"]))
        (query,) = [q["sql"] for q in captured.captured_queries if "unnest" in q["sql"]]
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (FORMAT JSON) " + query)
            plan = json.dumps(cursor.fetchone()[0])
    assert len(found) == 1000 and {key for key, _pk in found} == set(keys)
    assert "member_unique_employee_number" in plan
    assert '"Seq Scan"' not in plan and '"Bitmap Heap Scan"' not in plan


def test_two_jobs_confirmed_at_once_leave_one_applying_and_the_other_told_busy(committed_world):
    """Two tabs confirm two previews at the same moment: one apply at a time per tenant still holds."""
    import threading

    from django.db import connections, transaction

    from healthapp.errors import AppError

    tenant = committed_world.tenant_a
    previews = []
    for number in ("C1", "C2"):
        with tenant_context(tenant):
            job = roster_import.roster_import_start(
                upload=io.BytesIO(roster_csv([person(number)])), file_name="roster.csv", mode="partial",
                create_offices=True, acting_user=None, enqueue=False,
            )  # fmt: skip
            previews.append(roster_import.roster_import_validate(job_id=job.pk))
    barrier, outcomes = threading.Barrier(2), []

    def confirm(job: Job) -> None:
        try:
            with transaction.atomic(), tenant_context(tenant):
                barrier.wait()
                roster_import.roster_import_confirm(job=job, acting_user=None, enqueue=False)
            outcomes.append("applying")
        except AppError as exc:
            outcomes.append(exc.code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=confirm, args=(job,)) for job in previews]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["applying", "busy"]
    with tenant_context(tenant):
        assert Job.objects.filter(pk__in=[p.pk for p in previews], state=Job.State.APPLYING).count() == 1


def test_twins_in_two_chunks_become_two_entries_on_the_two_thread_apply(committed_world, settings):
    """The one entry on file without a 枝番 is the twin with its name; the other twin is added, even when
    the worker prepares the second twin's chunk before the first one's is written."""
    from tests.accounts.test_roster_import import CARD_HEADER, TWINS

    settings.ROSTER_IMPORT_CHUNK_ROWS = 1
    tenant = committed_world.tenant_b
    header = [c for c in CARD_HEADER if c != "枝番"]
    first = _confirmed(tenant, [[*TWINS[0][:2], *TWINS[0][3:]]], header=header)
    roster_import.roster_import_apply(tenant=tenant, job_id=first.pk)
    job = _confirmed(tenant, TWINS, header=CARD_HEADER)
    assert (job.counts["added"], job.counts["updated"]) == (1, 1)
    roster_import.roster_import_apply(tenant=tenant, job_id=job.pk)
    with tenant_context(tenant):
        on_card = sorted((m.insurance_branch, m.name) for m in Member.objects.all() if m.insurance_number == "345")
        assert on_card == [("01", "乙山 一子"), ("02", "乙山 二子")]


def test_a_number_entered_after_the_preview_is_updated_on_the_two_thread_apply(committed_world, settings):
    """The trusted insert of a row new at the preview fails on the unique key in the writer thread; that
    chunk alone is prepared again with the roster looked up, and nothing is written twice."""
    settings.ROSTER_IMPORT_CHUNK_ROWS = 4
    tenant = committed_world.tenant_a
    job = _confirmed(tenant, [person(f"T{i:02d}") for i in range(12)])
    with tenant_context(tenant):
        Member.objects.create(employee_number="T05", name="手入力 五")
    roster_import.roster_import_apply(tenant=tenant, job_id=job.pk)
    with tenant_context(tenant):
        job.refresh_from_db()
        t05 = [m for m in Member.objects.all() if str(m.employee_number) == "T05"]
    assert job.state == Job.State.DONE and _duplicates(tenant) == 0
    assert (job.counts["applied"]["added"], job.counts["applied"]["updated"]) == (11, 1)
    assert len(t05) == 1 and t05[0].name != "手入力 五"
