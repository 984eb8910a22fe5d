"""Celery: ship the audit log every minute (CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

from celery import shared_task

from audit.archive import ArchiveUnavailable
from audit.services import ship_pending


@shared_task(
    name="audit.tasks.ship_audit_log",
    acks_late=True,
    autoretry_for=(ArchiveUnavailable,),
    retry_backoff=30,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=5,
)
def ship_audit_log() -> dict:
    """Ship every chain. Not tenant-scoped: it walks all chains, entering each tenant's context."""
    report = ship_pending()
    return {"objects": len(report.objects), "events": report.events}
