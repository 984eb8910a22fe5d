"""Celery tasks take tenant_id and run inside that tenant."""

import os

import pytest

from accounts.tasks import roster_summary_task
from tenants.context import current_tenant


def test_task_runs_in_the_tenant_it_was_given(world):
    result = roster_summary_task.delay(world.tenant_b.pk).get()
    assert result["members"] == 5 and result["offices"] == 1
    assert current_tenant() is None  # nothing leaks out of the task


@pytest.mark.redis
def test_a_real_worker_on_redis_runs_tenant_tasks_in_isolation(committed_world):
    """A worker thread consuming from Redis (not eager), reading as the application role."""
    from celery.contrib.testing.worker import start_worker

    from healthapp.celery import app

    assert os.environ["REDIS_URL"].startswith("redis://")
    app.conf.task_always_eager = False
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        a = roster_summary_task.delay(committed_world.tenant_a.pk)
        b = roster_summary_task.delay(committed_world.tenant_b.pk)
        assert a.get(timeout=30)["members"] == 3
        assert b.get(timeout=30)["members"] == 5
