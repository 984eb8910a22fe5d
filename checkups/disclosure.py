"""Disclosure control for 健診の集計: grade counts that single out nobody, in one view or across views.

Whom it protects against: viewers of the dashboard who cannot add checkups or move people, such as 所属長
and HR holding checkup.view_conclusion alone. They see, person by person, who had a checkup, the
physician's opinion and follow-up, and (判定待ち / 判定不要 on 就業判定の確認) roughly whether someone's grade
is C–E or A–B: the grade class. What they must not learn is a person's grade within the class. (Holders
of roster.manage upload the providers' files and move people on the roster: they have had the values in
hand, and no dashboard rule can keep from them what they imported.)

The rules, per fiscal year and group (office, department):

- a group is shown only with at least MIN_GROUP_SIZE people graded; within a class (A–B, C–E) the count
  of each grade is shown only when the class holds at least MIN_GROUP_SIZE graded people of at least two
  grades, else the class's total alone (which the viewer knows anyway);
- the counts are published (GradeSnapshot) and shown, with their day, until they may change: among the
  people of each class whose counted record or its judgement changed (newcomers included) nobody or at
  least MIN_GROUP_SIZE people, and those still in the class graded in at least two grades. What counts as
  a change is what the viewer sees happen (a record, a judgement, the class), never the grade itself, so
  whether the counts move tells nothing the viewer does not know;
- people stay in the group they were first published in, wherever the roster moves them later;
- two views at the same moment never publish counts one person apart (the row is locked and the rule
  checked again).

Snapshots belong to the whole tenant; every viewer whose scope holds the whole group sees the same one (a
group only partly in a viewer's scope is suppressed: see selectors.grade_distribution).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from checkups.models import GradeSnapshot

MIN_GROUP_SIZE = 5  # aggregates over fewer people are suppressed, and change by no fewer people
GRADES = "ABCDE"
CLASSES = {"l": "AB", "h": "CDE"}  # the grade classes a viewer tells apart person by person
_CLASS_OF = {grade: mark for mark, grades in CLASSES.items() for grade in grades}


@dataclass(frozen=True)
class Counted:
    """A person as counted in their group: the grade of their counted record's newest judgement ("" when
    none), and the ids a viewer sees change."""

    grade: str
    record_id: int
    judgement_id: int | None


@dataclass(frozen=True)
class Published:
    """A group's grade counts as shown: ``grades`` per grade where its class may be broken down, and
    ``classes`` the totals of the classes that may not (key "AB" or "CDE"); for ``people`` graded on
    ``as_of``."""

    people: int
    grades: dict[str, int]
    classes: dict[str, int]
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
        self.snapshots = {s.group: s for s in GradeSnapshot.objects.filter(fiscal_year=fiscal_year).order_by("pk")}
        self._published_in = {int(m): s.group for s in self.snapshots.values() for m in s.members}

    def group_of(self, member_id: int, office_id: int | None, department_id: int | None) -> str:
        """The group a person counts in: where they were first published this year, else where the roster
        has them now."""
        return self._published_in.get(member_id) or group_key(office_id, department_id)

    def shown(self, groups: Mapping[str, Mapping[int, Counted]]) -> dict[str, Published]:
        """What to show of each group's grades. ``groups``: group key → {member id: Counted} of the whole
        group now. A group absent from the result is suppressed."""
        shown: dict[str, Published] = {}
        for group, people in groups.items():
            snapshot = self.snapshots.get(group)
            if snapshot is None:
                if _graded(people) < MIN_GROUP_SIZE:
                    continue
                snapshot = self._publish(group, people)
            elif _may_change(snapshot, people):
                snapshot = self._publish(group, people)
            if snapshot.people >= MIN_GROUP_SIZE:
                shown[group] = _published(snapshot)
        return shown

    def _publish(self, group: str, people: Mapping[int, Counted]) -> GradeSnapshot:
        """Publish ``group`` as it is now, unless a concurrent view published it meanwhile and what it
        published may not change yet (then that one stands)."""
        grades = {grade: 0 for grade in GRADES}
        for person in people.values():
            if person.grade in grades:
                grades[person.grade] += 1
        values = {
            "people": sum(grades.values()), "grades": grades, "members": _states(people),
            "published_at": timezone.now(),
        }  # fmt: skip
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
            if current is not None and not _may_change(current, people):
                return current
            locked.update(**values)
        return GradeSnapshot(fiscal_year=self.fiscal_year, group=group, **values)


def _graded(people: Mapping[int, Counted]) -> int:
    return sum(1 for person in people.values() if person.grade in _CLASS_OF)


def _states(people: Mapping[int, Counted]) -> dict[str, str]:
    """Member id → what a viewer sees of them: the class of their grade and the ids of their counted record
    and its judgement ("" while not graded). No grade."""
    return {
        str(member): f"{_CLASS_OF[p.grade]}{p.record_id}.{p.judgement_id}" if p.grade in _CLASS_OF else ""
        for member, p in people.items()
    }


def _may_change(snapshot: GradeSnapshot, people: Mapping[int, Counted]) -> bool:
    """True when the counts may move from ``snapshot`` to ``people``: in each class, the people who came,
    went or were judged anew number none or at least MIN_GROUP_SIZE, those of them in the class now hold at
    least two grades, and not nobody in both classes."""
    before, now = snapshot.members, _states(people)
    changed = {mark: 0 for mark in CLASSES}
    grades_now: dict[str, set[str]] = {mark: set() for mark in CLASSES}
    for member in before.keys() | now.keys():
        old, new = before.get(member, ""), now.get(member, "")
        if old == new:
            continue
        for mark in {state[0] for state in (old, new) if state}:  # a person once per class
            changed[mark] += 1
        if new:
            grades_now[new[0]].add(people[int(member)].grade)
    if not any(changed.values()):
        return False
    return all(
        n == 0 or (n >= MIN_GROUP_SIZE and (len(grades_now[mark]) >= 2 or not grades_now[mark]))
        for mark, n in changed.items()
    )


def _published(snapshot: GradeSnapshot) -> Published:
    """The snapshot as shown: each class broken down only with MIN_GROUP_SIZE graded people of two grades."""
    grades, classes = {}, {}
    for members in CLASSES.values():
        counts = {grade: snapshot.grades.get(grade, 0) for grade in members}
        if sum(counts.values()) >= MIN_GROUP_SIZE and sum(1 for n in counts.values() if n) >= 2:
            grades.update(counts)
        else:
            classes[members] = sum(counts.values())
    return Published(snapshot.people, grades, classes, snapshot.published_at)
