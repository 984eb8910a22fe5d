"""Celery tasks of accounts: thin, each calls one service."""

from __future__ import annotations

from dataclasses import asdict

from celery import shared_task

from accounts import registration
from accounts.selectors import roster_summary
from tenants.models import Tenant
from tenants.tasks import tenant_task


@tenant_task()
def roster_summary_task(tenant) -> dict:
    """Counts of the tenant's roster, computed on a worker."""
    return asdict(roster_summary())


@tenant_task()
def registration_purge_task(tenant: Tenant) -> int:
    return registration.pending_registrations_purge()


@shared_task(name="accounts.tasks.registration_purge_all")
def registration_purge_all() -> None:
    """Daily (beat): one task per tenant deletes its expired self-registrations. Every tenant, not only
    active ones: the rows of a suspended tenant hold e-mail addresses just the same."""
    for tenant_id in Tenant.objects.order_by("pk").values_list("pk", flat=True):
        registration_purge_task.delay(tenant_id)
