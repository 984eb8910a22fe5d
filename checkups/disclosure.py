"""Disclosure control for 健診の集計: grade counts that single out nobody, in one view or across views.

Groups under MIN_GROUP_SIZE people are never shown. That alone holds for one look at the page; but an HR
user who reads the page before and after one person's checkup arrives (or who moves people between
departments) would read that person's grade from the difference. So, per fiscal year:

- each group's grade counts are published as a snapshot (GradeSnapshot) and shown until they may change
  by MIN_GROUP_SIZE people at least: among the people graded A–B, and among those graded C–E, either
  nobody changed or at least MIN_GROUP_SIZE did (added, or graded anew). The two classes are counted
  apart because HR can tell them apart person by person (判定待ち on 就業判定の確認 is, mostly, C–E);
- people stay in the group they were first published in, wherever the roster moves them later, so no
  sequence of moves makes two overlapping groups whose difference is one person;
- the counts show the day they were published, always, so nothing on the page depends on whether one
  person changed.

Snapshots belong to the whole tenant and every viewer whose scope holds the whole group sees the same
one (a group only partly in a viewer's scope is suppressed: see selectors.grade_distribution). Who
changed is known from a keyed digest per person and the class of their grade (the fact HR sees anyway),
not from a second copy of the grades.
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
_HIGH = frozenset("CDE")  # the class 判定待ち mostly tells HR about


@dataclass(frozen=True)
class Published:
    """A group's grade counts as shown: for the ``people`` of the group on ``as_of``."""

    people: int
    grades: dict[str, int]
    as_of: dt.datetime


def group_key(office_id: int | None, department_id: int | None) -> str:
    return f"{office_id or ''}:{department_id or ''}"


def group_ids(key: str) -> tuple[int | None, int | None]:
    office, department = key.split(":")
    return (int(office) if office else None), (int(department) if department else None)


class Board:
    """One fiscal year's published grade counts of the current tenant."""

    def __init__(self, fiscal_year: int) -> None:
        self.fiscal_year = fiscal_year
        self.tenant_id = require_tenant().pk
        self.snapshots = {s.group: s for s in GradeSnapshot.objects.filter(fiscal_year=fiscal_year).order_by("pk")}
        self._published_in = {int(m): s.group for s in self.snapshots.values() for m in s.members}
        self._key = keyring.index_key(self.tenant_id, "grade-snapshot")

    def group_of(self, member_id: int, office_id: int | None, department_id: int | None) -> str:
        """The group a person counts in: where they were first published this year, else where the roster
        has them now."""
        return self._published_in.get(member_id) or group_key(office_id, department_id)

    def shown(self, groups: dict[str, dict[int, str]]) -> dict[str, Published]:
        """What to show of each group's grades. ``groups``: group key → {member id: their counted overall
        grade, "" while not judged} of the whole group now, for the groups of at least MIN_GROUP_SIZE
        people. A group absent from the result is suppressed (never published)."""
        shown: dict[str, Published] = {}
        for group, people in groups.items():
            if len(people) < MIN_GROUP_SIZE:
                continue
            now = self._states(group, people)
            snapshot = self.snapshots.get(group)
            if snapshot is None or _may_change(snapshot.members, now):
                snapshot = self._publish(group, people, now)
            shown[group] = Published(snapshot.people, dict(snapshot.grades), snapshot.published_at)
        return shown

    def _states(self, group: str, people: dict[int, str]) -> dict[str, str]:
        """Member id → the class of their grade ("h" C–E, "l" A–B, "" none) and a digest of the grade,
        keyed, and bound to the year and group (equal grades of one person elsewhere do not match)."""
        states = {}
        for member_id, grade in people.items():
            if not grade:
                states[str(member_id)] = ""
                continue
            message = f"{self.fiscal_year}|{group}|{member_id}|{grade}".encode()
            mark = "h" if grade in _HIGH else "l"
            states[str(member_id)] = mark + hmac.digest(self._key, message, "sha256")[:8].hex()
        return states

    def _publish(self, group: str, people: dict[int, str], states: dict[str, str]) -> GradeSnapshot:
        """Publish ``group`` as it is now, unless a concurrent view published it meanwhile and what it
        published may not change yet (then that one stands: two views never publish counts one person
        apart)."""
        grades = {grade: 0 for grade in GRADES}
        for grade in people.values():
            if grade in grades:
                grades[grade] += 1
        values = {"people": len(people), "grades": grades, "members": states, "published_at": timezone.now()}
        with transaction.atomic():
            locked = GradeSnapshot.objects.select_for_update().filter(fiscal_year=self.fiscal_year, group=group)
            current = locked.first()
            if current is None:
                try:
                    with transaction.atomic():
                        current = GradeSnapshot.objects.create(fiscal_year=self.fiscal_year, group=group, **values)
                except IntegrityError:  # a concurrent first view published it: judge against that one
                    current = locked.first()
                else:
                    return current
            if current is not None and not _may_change(current.members, states):
                return current
            locked.update(**values)
        return GradeSnapshot(fiscal_year=self.fiscal_year, group=group, **values)


def _may_change(before: dict[str, str], now: dict[str, str]) -> bool:
    """True when the counts may move from ``before`` to ``now``: in each class of grades (A–B, C–E), the
    people who entered, left or changed grade number none or at least MIN_GROUP_SIZE, and not none in both."""
    changed = {"h": 0, "l": 0}
    for member in before.keys() | now.keys():
        old, new = before.get(member, ""), now.get(member, "")
        if old != new:
            for grade_class in {state[0] for state in (old, new) if state}:  # a person once per class
                changed[grade_class] += 1
    return any(changed.values()) and all(n == 0 or n >= MIN_GROUP_SIZE for n in changed.values())
