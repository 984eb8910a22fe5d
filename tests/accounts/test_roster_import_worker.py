"""A real Celery worker on Redis is SIGKILLed in the middle of a roster import; a second worker finishes
it. Proves the per-chunk transactions and acks_late: no member is lost, none is created twice, and no
chunk is ever half applied."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count

from accounts import roster_import
from accounts.models import Member
from accounts.roster_tasks import roster_apply_task
from healthapp.models import Job
from tenants.context import tenant_context
from tests.accounts.test_roster_import import person, roster_csv

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

ROWS, CHUNK = 1500, 10
REPO = Path(__file__).resolve().parents[2]


def _test_db_url(variable: str) -> str:
    """The role of ``variable`` (app or owner) pointed at the test database."""
    parts = urlsplit(os.environ[variable])
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


def start_worker(queue: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": _test_db_url("DATABASE_URL"),
        "DATABASE_OWNER_URL": _test_db_url("DATABASE_OWNER_URL"),
        "HEALTHAPP_VAR_DIR": str(settings.VAR_DIR),  # the same private files and keys as this process
        "ROSTER_IMPORT_CHUNK_ROWS": str(CHUNK),
        # The killed worker's unacknowledged task comes back after 3 s, looked for every second.
        "CELERY_VISIBILITY_TIMEOUT_SECONDS": "3",
        "CELERY_UNACKED_RESTORE_INTERVAL_SECONDS": "1",
        "CELERY_UNACKED_RESTORE_THROTTLE": "1",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    celery = str(Path(sys.executable).with_name("celery"))
    return subprocess.Popen(
        [celery, "-A", "healthapp", "worker", "--pool", "solo", "-Q", queue, "--without-gossip",
         "--without-mingle", "--without-heartbeat", "--loglevel", "WARNING"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


def job_state(tenant, job_id: int) -> tuple[str, int, int]:
    with tenant_context(tenant):
        job = Job.objects.get(pk=job_id)
        members = Member.objects.filter(employee_number_index__isnull=False).count()
        return job.state, job.next_chunk, members


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_killed_worker_mid_import_resumes_without_duplicates_or_lost_rows(committed_world, settings):
    from healthapp.celery import app

    tenant = committed_world.tenant_a
    settings.ROSTER_IMPORT_CHUNK_ROWS = CHUNK
    data = roster_csv([person(f"K{i:05d}", f"試験 {i}") for i in range(ROWS)])
    with tenant_context(tenant):
        job = roster_import.roster_import_start(
            upload=io.BytesIO(data), file_name="kill.csv", mode="partial", create_offices=False, acting_user=None,
            enqueue=False,
        )  # fmt: skip
        job = roster_import.roster_import_validate(job_id=job.pk)
    assert job.state == Job.State.VALIDATED and len(job.plan["chunks"]) == ROWS // CHUNK
    before = job_state(tenant, job.pk)[2]

    queue = f"roster-kill-{uuid.uuid4().hex[:8]}"  # our own queue: other test runs share this Redis
    app.conf.task_always_eager = False
    first = second = None
    try:
        with transaction.atomic(), tenant_context(tenant):
            roster_import.roster_import_confirm(job=job, acting_user=None, enqueue=False)
        # What the confirmation enqueues, sent to our queue (the app's default routing stays untouched).
        roster_apply_task.apply_async((tenant.pk, job.pk), queue=queue)
        first = start_worker(queue)
        wait_for(lambda: job_state(tenant, job.pk)[1] >= 3, 60, "the first worker to apply a few chunks")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)

        state, next_chunk, members = job_state(tenant, job.pk)
        assert state == Job.State.APPLYING and 3 <= next_chunk < ROWS // CHUNK, "killed mid-import"
        assert members - before == next_chunk * CHUNK  # committed chunks only, never half a chunk

        second = start_worker(queue)
        wait_for(lambda: job_state(tenant, job.pk)[0] == Job.State.DONE, 120, "the second worker to finish")
    finally:
        app.conf.task_always_eager = True
        for worker in (first, second):
            if worker is not None and worker.poll() is None:
                worker.terminate()
                worker.wait(timeout=30)

    with tenant_context(tenant):
        job.refresh_from_db()
        imported = Member.objects.filter(employee_number_index__isnull=False).exclude(
            pk__in=[m.pk for m in committed_world.roster_a]
        )
        assert imported.count() == ROWS
        duplicates = imported.values("employee_number_index").annotate(n=Count("pk")).filter(n__gt=1)
        assert not duplicates.exists()
        assert {str(m.employee_number) for m in imported} == {f"K{i:05d}" for i in range(ROWS)}
    assert job.rows_done == job.rows_total == ROWS and job.counts["applied"]["added"] == ROWS
