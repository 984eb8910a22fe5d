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


@tenant_task()
def jobs_expire_unconfirmed_task(tenant: Tenant) -> int:
    # Previews nobody confirmed, of every import: the uploads (personal or health data) do not stay around.
    return jobs.jobs_expire_unconfirmed(keep_days=settings.ROSTER_IMPORT_KEEP_DAYS)


@shared_task(name="healthapp.tasks.jobs_sweep_all")
def jobs_sweep_all() -> None:
    """Every 15 minutes (beat), per active tenant: unconfirmed uploads expire, stalled imports move again."""
    for tenant_id in Tenant.objects.filter(status=Tenant.Status.ACTIVE).values_list("pk", flat=True):
        jobs_expire_unconfirmed_task.delay(tenant_id)
        jobs_resume_stalled_task.delay(tenant_id)
