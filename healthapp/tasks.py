"""Celery tasks of the shared import-job machinery (healthapp.jobs): thin, each calls one service."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from healthapp import jobs
from tenants.models import Tenant
from tenants.tasks import tenant_task


@tenant_task()
def jobs_resume_stalled_task(tenant: Tenant) -> int:
    # Twice the broker's redelivery delay: by then a message that still exists has been handed out again.
    return jobs.jobs_resume_stalled(idle_seconds=2 * settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"])


@shared_task(name="healthapp.tasks.jobs_resume_stalled_all")
def jobs_resume_stalled_all() -> None:
    """Every 15 minutes (beat): one task per active tenant hands stalled imports to a worker again."""
    for tenant_id in Tenant.objects.filter(status=Tenant.Status.ACTIVE).values_list("pk", flat=True):
        jobs_resume_stalled_task.delay(tenant_id)
