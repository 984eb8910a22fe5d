"""Celery tasks of the roster import: thin, each calls one service (accounts.roster_import)."""

from __future__ import annotations

import logging

from celery import shared_task

from accounts import roster_import
from healthapp import jobs
from healthapp.models import Job
from tenants.models import Tenant
from tenants.tasks import tenant_task

logger = logging.getLogger(__name__)


@tenant_task()
def roster_validate_task(tenant: Tenant, job_id: int) -> None:
    """The dry run: one transaction, writes only the job."""
    roster_import.roster_import_validate(job_id=job_id)


@shared_task(name="accounts.roster_tasks.roster_apply_task", acks_late=True, reject_on_worker_lost=True)
def roster_apply_task(tenant_id: int, job_id: int) -> None:
    """Apply a confirmed job chunk by chunk.

    Not ``tenant_task``: that runs the body in one transaction, and the apply must commit per chunk so
    progress is visible and a killed worker loses at most the chunk in flight. Each step enters the
    tenant itself (same isolation: ORM context + RLS setting per transaction). A redelivered message
    (acks_late) resumes at ``Job.next_chunk``.
    """
    tenant = Tenant.objects.get(pk=tenant_id)
    try:
        roster_import.roster_import_apply(tenant=tenant, job_id=job_id)
    except Exception:
        logger.exception("roster import job %s: apply step failed", job_id)
        jobs.job_apply_failed(tenant=tenant, job_id=job_id, action="roster.import_failed")
        raise


@tenant_task()
def roster_expire_qualifications_task(tenant: Tenant) -> int:
    return roster_import.members_expire_qualifications()


@shared_task(name="accounts.roster_tasks.roster_expire_qualifications_all")
def roster_expire_qualifications_all() -> None:
    """Daily (beat): one task per active tenant deactivates members whose 資格喪失日 has come."""
    for tenant_id in Tenant.objects.filter(status=Tenant.Status.ACTIVE).values_list("pk", flat=True):
        roster_expire_qualifications_task.delay(tenant_id)


jobs.register_tasks(Job.Kind.ROSTER, validate=roster_validate_task, apply=roster_apply_task)
