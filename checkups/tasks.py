"""Celery tasks of the checkup import: thin, each calls one service (checkups.imports)."""

from __future__ import annotations

import logging

from celery import shared_task

from checkups import imports
from healthapp import jobs
from healthapp.models import Job
from tenants.models import Tenant
from tenants.tasks import tenant_task

logger = logging.getLogger(__name__)


@tenant_task()
def checkup_validate_task(tenant: Tenant, job_id: int) -> None:
    """The dry run: one transaction, writes only the job."""
    imports.checkup_import_validate(job_id=job_id)


@shared_task(name="checkups.tasks.checkup_apply_task", acks_late=True, reject_on_worker_lost=True)
def checkup_apply_task(tenant_id: int, job_id: int) -> None:
    """Apply a confirmed job chunk by chunk, committing per chunk (see accounts.roster_tasks for why this
    is not a ``tenant_task``); a redelivered message resumes at ``Job.next_chunk``."""
    tenant = Tenant.objects.get(pk=tenant_id)
    try:
        imports.checkup_import_apply(tenant=tenant, job_id=job_id)
    except Exception:
        logger.exception("checkup import job %s: apply step failed", job_id)
        jobs.job_apply_failed(tenant=tenant, job_id=job_id, action="checkup.import_failed")
        raise


jobs.register_tasks(Job.Kind.CHECKUP, validate=checkup_validate_task, apply=checkup_apply_task)
