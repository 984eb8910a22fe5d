"""Disclosure control for 健診の集計: grade counts that single out nobody, in one view or across views.

Whom it protects against: viewers of the dashboard who cannot add checkups or move people, such as 所属長
and HR holding checkup.view_conclusion alone. They see, person by person, who had a checkup, the
physician's opinion and follow-up, and (判定待ち / 判定不要 on 就業判定の確認) roughly whether someone's grade
is C–E or A–B: the grade class. What they must not learn is a person's grade within the class. (Holders
of roster.manage upload the providers' files and move people on the roster: they have had the values in
hand, and no dashboard rule can keep from them what they imported.)

The rules, per fiscal year and group (office, department):

- a group is shown only with at least MIN_GROUP_SIZE people graded;
- its counts are published (GradeSnapshot) and shown, with their day, until, in each class (A–B, C–E), the
  people whose counted record or its judgement changed since (newcomers included) number none or at
  least MIN_GROUP_SIZE, and not none in both. That is decided on what the viewer sees happen (a record, a
  judgement, the class), never on the grades, so whether the counts move tells nothing new;
- within a class the count of each grade is shown only when the class holds at least MIN_GROUP_SIZE
  graded people of at least two grades, and the people who changed since the last publication, as they
  were graded before and as they are graded now, each held at least two grades. Otherwise the class shows
  its total (which the viewer knows anyway); when that is because one grade held everyone concerned, it
  stays a total for the rest of the fiscal year (``GradeSnapshot.merged``), since a later breakdown would
  tell which grade it was. What remains: a viewer can learn that some people share a grade, never which;
- people stay in the group they were first published in, wherever the roster moves them later;
- two views at the same moment never publish counts one person apart (the row is locked and the rule
  checked again).

Snapshots belong to the whole tenant; every viewer whose scope holds the whole group sees the same one (a
group only partly in a viewer's scope is suppressed: see selectors.grade_distribution).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from checkups.models import GradeSnapshot, Judgement

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
    # Some checkup or judgement of the group is newer than these counts (they wait for enough changes):
    # said, not counted, so the page does not pass old counts off as today's. Which class, how many, is not.
    behind: bool = False


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
            snapshot, now = self.snapshots.get(group), _states(people)
            if snapshot is None:
                if _graded(people) < MIN_GROUP_SIZE:
                    continue
                snapshot = self._publish(group, people, now)
            elif _may_change(snapshot.members, now):
                snapshot = self._publish(group, people, now)
            if snapshot.people >= MIN_GROUP_SIZE:
                shown[group] = _published(snapshot, behind=snapshot.members != now)
        return shown

    def _publish(self, group: str, people: Mapping[int, Counted], now: dict[str, str]) -> GradeSnapshot:
        """Publish ``group`` as it is now, unless a concurrent view published it meanwhile and what it
        published may not change yet (then that one stands)."""
        grades = {grade: 0 for grade in GRADES}
        for person in people.values():
            if person.grade in grades:
                grades[person.grade] += 1
        values = {
            "people": sum(grades.values()), "grades": grades, "members": now,
            "merged": _merged(None, now, people, grades), "published_at": timezone.now(),
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
            if current is not None and not _may_change(current.members, now):
                return current
            values["merged"] = _merged(current, now, people, grades)
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


def _may_change(before: Mapping[str, str], now: Mapping[str, str]) -> bool:
    """True when the counts may move from a snapshot's ``before`` to ``now`` (``_states``): in each class, the people
    who came, went or were judged anew number none or at least MIN_GROUP_SIZE, and not none in both. Only
    what the viewer sees happen counts, never the grades."""
    changed = {mark: 0 for mark in CLASSES}
    for _member, old, new in _changes(before, now):
        for mark in {state[0] for state in (old, new) if state}:  # a person once per class
            changed[mark] += 1
    return any(changed.values()) and all(n == 0 or n >= MIN_GROUP_SIZE for n in changed.values())


def _changes(before: Mapping[str, str], now: Mapping[str, str]) -> Iterator[tuple[str, str, str]]:
    for member in before.keys() | now.keys():
        old, new = before.get(member, ""), now.get(member, "")
        if old != new:
            yield member, old, new


def _merged(
    snapshot: GradeSnapshot | None, now: Mapping[str, str], people: Mapping[int, Counted], grades: Mapping[str, int]
) -> list[str]:
    """The classes to show as their total from this publication on: those already so, and those in which
    one grade holds the whole class (of MIN_GROUP_SIZE or more), or, since the last publication, every person
    who changed as graded then, or as graded now (the difference would tell their grade). A first
    publication has no difference: a class under MIN_GROUP_SIZE shows its total then for its size alone,
    and may be broken down once it has grown."""
    merged = set(snapshot.merged) if snapshot is not None else set()
    before = snapshot.members if snapshot is not None else {}
    was: dict[str, set[str]] = {mark: set() for mark in CLASSES}  # the changed people's grades before …
    became: dict[str, set[str]] = {mark: set() for mark in CLASSES}  # … and now, per class
    old_judgements: dict[int, str] = {}
    changes = list(_changes(before, now))
    if snapshot is not None:
        ids = [int(old.split(".")[1]) for _m, old, _new in changes if old and old.split(".")[1] != "None"]
        for start in range(0, len(ids), 10_000):  # a new criteria version judges everyone again
            judged = Judgement.objects.filter(pk__in=ids[start : start + 10_000]).values_list("pk", "overall")
            old_judgements.update(judged)
    for member, old, new in changes:
        if old:
            judgement = old.split(".")[1]
            was[old[0]].add(old_judgements.get(int(judgement), "?") if judgement != "None" else "?")
        if new:
            became[new[0]].add(people[int(member)].grade)
    for mark, members in CLASSES.items():
        in_class = [grades.get(grade, 0) for grade in members]
        whole_uniform = sum(in_class) >= MIN_GROUP_SIZE and sum(1 for n in in_class if n) == 1
        if whole_uniform or (snapshot is not None and (len(was[mark]) == 1 or len(became[mark]) == 1)):
            merged.add(members)
    return sorted(merged)


def _published(snapshot: GradeSnapshot, *, behind: bool = False) -> Published:
    """The snapshot as shown: each class broken down only with MIN_GROUP_SIZE graded people of two grades,
    and unless it is kept whole for the year (``merged``)."""
    grades, classes = {}, {}
    for members in CLASSES.values():
        counts = {grade: snapshot.grades.get(grade, 0) for grade in members}
        if (
            members not in snapshot.merged
            and sum(counts.values()) >= MIN_GROUP_SIZE
            and sum(1 for n in counts.values() if n) >= 2
        ):
            grades.update(counts)
        else:
            classes[members] = sum(counts.values())
    return Published(snapshot.people, grades, classes, snapshot.published_at, behind)
