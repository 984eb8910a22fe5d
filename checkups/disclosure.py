"""Disclosure control for 健診の集計: grade counts that single out nobody, in one view or across views.

Groups under MIN_GROUP_SIZE people are never shown. That alone holds for one look at the page; but an HR
user who reads the page before and after one person's checkup arrives (or who watches one person join or
leave a department) would read that person's grade from the difference. So each group's grade counts
are published as a snapshot (GradeSnapshot) and shown until at least MIN_GROUP_SIZE people of the group
have changed since: added, gone, or graded anew. Any difference between two views then mixes that many
people's grades, as the first view mixed that many.

Snapshots are per group (office, department) of the whole tenant and shared by every viewer whose scope
holds the whole group, so two viewers comparing screens learn no more than one (a viewer whose scope holds
only part of a group sees it suppressed: see selectors.grade_distribution). Which people changed is known
from a keyed digest of each person's grade at publication, not from a second copy of the grades.
"""

from __future__ import annotations

import datetime as dt
import hmac
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from checkups.models import GradeSnapshot
from healthapp.crypto import keyring
from tenants.context import require_tenant

MIN_GROUP_SIZE = 5  # aggregates over fewer people are suppressed, and change by no fewer people
GRADES = "ABCDE"


@dataclass(frozen=True)
class Published:
    """A group's grade counts as shown: ``people`` counted then, and ``as_of`` when they lag behind the
    group as it is now (None while they are current)."""

    people: int
    grades: dict[str, int]
    as_of: dt.datetime | None


def group_key(office_id: int | None, department_id: int | None) -> str:
    return f"{office_id or ''}:{department_id or ''}"


def published_grades(fiscal_year: int, groups: dict[str, dict[int, str]]) -> dict[str, Published]:
    """What to show of each group's grades. ``groups``: group key → {member id: their counted overall
    grade, "" while not judged} of the whole group now. Groups absent from the result are shown
    suppressed: under MIN_GROUP_SIZE people, and never published at that size."""
    tenant = require_tenant()
    key = keyring.index_key(tenant.pk, "grade-snapshot")

    def digests(people: dict[int, str]) -> dict[str, str]:
        return {str(m): hmac.digest(key, f"{m}|{g}".encode(), "sha256")[:8].hex() for m, g in people.items()}

    stored = {s.group: s for s in GradeSnapshot.objects.filter(fiscal_year=fiscal_year, group__in=list(groups))}
    shown: dict[str, Published] = {}
    for group, people in groups.items():
        now = digests(people)
        snapshot = stored.get(group)
        changed = _changed(snapshot.members, now) if snapshot is not None else len(now)
        if changed >= MIN_GROUP_SIZE and len(people) >= MIN_GROUP_SIZE:
            snapshot = _publish(fiscal_year, group, people, now)
            changed = 0
        if snapshot is not None and len(people) >= MIN_GROUP_SIZE:
            as_of = snapshot.published_at if changed else None
            shown[group] = Published(snapshot.people, dict(snapshot.grades), as_of)
    return shown


def _changed(before: dict[str, str], now: dict[str, str]) -> int:
    """People added, gone or graded differently since ``before``."""
    return sum(1 for m in before.keys() | now.keys() if before.get(m) != now.get(m))


def _publish(fiscal_year: int, group: str, people: dict[int, str], digests: dict[str, str]) -> GradeSnapshot:
    grades = {grade: 0 for grade in GRADES}
    for grade in people.values():
        if grade in grades:
            grades[grade] += 1
    values = {"people": len(people), "grades": grades, "members": digests, "published_at": timezone.now()}
    with transaction.atomic():
        updated = GradeSnapshot.objects.filter(fiscal_year=fiscal_year, group=group).update(**values)
        if not updated:
            try:
                with transaction.atomic():  # a concurrent first view may publish the same group
                    GradeSnapshot.objects.create(fiscal_year=fiscal_year, group=group, **values)
            except IntegrityError:
                GradeSnapshot.objects.filter(fiscal_year=fiscal_year, group=group).update(**values)
    return GradeSnapshot(fiscal_year=fiscal_year, group=group, **values)
