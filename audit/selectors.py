"""Reads of the audit log for the people of a tenant: who may see it, and its pages and exports.

Every read is limited to the viewer's own tenant (here, and again by row-level security on PostgreSQL);
anyone else gets 404, not 403, so the page does not confirm it exists to them.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.db.models import Q, QuerySet
from django.http import Http404

from accounts import policy
from accounts.labels import Perm
from audit.actions import HEALTH_READS, SELF_REPORTS
from audit.models import AuditEvent

JST = zoneinfo.ZoneInfo("Asia/Tokyo")
PAGE_SIZE = 50
# Until permission labels grant audit.view, these roles read their tenant's log.


def can_view_audit(user) -> bool:
    """Reading the audit log needs the audit.view permission (labels 組織管理者, 人事担当, ログ監査) over the
    whole tenant: events are not tied to roster entries, so no narrower scope can be honoured."""
    return policy.can_tenant_wide(user, Perm.AUDIT_VIEW)


@dataclass(frozen=True)
class EventFilter:
    since: dt.date | None = None  # JST calendar days, inclusive
    until: dt.date | None = None
    actor_id: int | None = None
    action: str = ""  # a dotted prefix: "auth." matches every authentication event
    target_type: str = ""
    target_id: str = ""


def jst_day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=JST)


# Reads of checkup results name the records read, and which records a physician opens or finds in the
# queue (graded C or worse) says something about their grades. A reader of the log who may not see
# checkups (HR, a log auditor) sees who read and when, not whose: target and details are withheld, and
# these events cannot be searched by target. (Their hash stays visible: audit.services puts a random
# nonce into their details, so it cannot be brute-forced back to the record ids.)


def sees_health_reads(user) -> bool:
    return policy.can_tenant_wide(user, Perm.CHECKUP_VIEW)  # whose results were read, for the whole tenant


def _withheld(event: AuditEvent) -> AuditEvent:
    """The event as such a reader gets it (in memory only: stored events never change)."""
    if _self_report(event):
        event.actor_id, event.actor_role, event.client_ip, event.actor_withheld = None, "", "", True
    event.target_id, event.details, event.withheld = "", {}, True
    return event


def _self_report(event: AuditEvent) -> bool:
    return event.action in SELF_REPORTS and (event.details or {}).get("by_self") is True


def _for_reader(events: Iterable[AuditEvent], user) -> Iterator[AuditEvent]:
    sees = sees_health_reads(user)
    for event in events:
        yield event if sees or event.action not in HEALTH_READS else _withheld(event)


def _events_of_viewer(user, f: EventFilter | None = None) -> QuerySet[AuditEvent]:
    if not can_view_audit(user):
        raise Http404
    qs = AuditEvent.objects.filter(tenant_id=user.tenant_id)
    if f is not None and f.target_id and not sees_health_reads(user):
        qs = qs.exclude(action__in=HEALTH_READS)  # "was record X read?" is the same question
    if f is not None and f.actor_id is not None and not sees_health_reads(user):
        qs = qs.exclude(action__in=SELF_REPORTS, details__by_self=True)  # "did person X report a visit?"
    return qs


def _filtered(qs: QuerySet[AuditEvent], f: EventFilter) -> QuerySet[AuditEvent]:
    if f.since:
        qs = qs.filter(occurred_at__gte=jst_day_start(f.since))
    if f.until:
        qs = qs.filter(occurred_at__lt=jst_day_start(f.until + dt.timedelta(days=1)))
    if f.actor_id is not None:
        qs = qs.filter(actor_id=f.actor_id)
    if f.action:
        qs = qs.filter(action__startswith=f.action)
    if f.target_type:
        qs = qs.filter(target_type=f.target_type)
    if f.target_id:
        qs = qs.filter(target_id=f.target_id)
    return qs


def encode_cursor(event: AuditEvent) -> str:
    return f"{event.occurred_at.astimezone(dt.UTC).strftime('%Y%m%dT%H%M%S%f')}_{event.pk}"


def decode_cursor(value: str) -> tuple[dt.datetime, int] | None:
    """Invalid cursors mean "first page": they come from a URL anyone can edit."""
    try:
        stamp, pk = value.split("_", 1)
        return dt.datetime.strptime(stamp, "%Y%m%dT%H%M%S%f").replace(tzinfo=dt.UTC), int(pk)
    except ValueError:
        return None


def events_page(
    *, user, filters: EventFilter, cursor: str = "", limit: int = PAGE_SIZE
) -> tuple[list[AuditEvent], str]:
    """One page of the tenant's events, newest first, and the cursor of the next page ('' at the end).

    Keyset pagination on (occurred_at, id), served by the (tenant, occurred_at, id) index: page 1000
    costs what page 1 costs, at a million events too.
    """
    qs = _filtered(_events_of_viewer(user, filters), filters)
    position = decode_cursor(cursor) if cursor else None
    if position is not None:
        at, pk = position
        qs = qs.filter(Q(occurred_at__lt=at) | Q(occurred_at=at, id__lt=pk))
    rows = list(qs.order_by("-occurred_at", "-id")[: limit + 1])
    next_cursor = encode_cursor(rows[limit - 1]) if len(rows) > limit else ""
    return _with_job_labels(list(_for_reader(rows[:limit], user))), next_cursor


def _with_job_labels(events: list[AuditEvent]) -> list[AuditEvent]:
    """Events about an import job get ``job_label``: the job as its pages name it (名簿の取り込み #3, the
    tenant's own count), since the target id is the job's global primary key."""
    from healthapp.models import Job

    ids = {int(e.target_id) for e in events if e.target_type == "job" and e.target_id.isdigit()}
    if ids:
        jobs = {
            pk: (kind, number)
            for pk, kind, number in Job.objects.filter(pk__in=ids).values_list("pk", "kind", "number")
        }
        for event in events:
            if event.target_type == "job" and event.target_id.isdigit() and int(event.target_id) in jobs:
                kind, number = jobs[int(event.target_id)]
                event.job_label = f"{Job.Kind(kind).label} #{number or event.target_id}"
    return events


def events_for_export(*, user, since: dt.date, until: dt.date) -> Iterator[AuditEvent]:
    """The tenant's events of a period (JST days, inclusive), oldest first, for a disclosure export."""
    qs = _filtered(_events_of_viewer(user), EventFilter(since=since, until=until))
    return _for_reader(qs.order_by("occurred_at", "id").iterator(chunk_size=2000), user)
