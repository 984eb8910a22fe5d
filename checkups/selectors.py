"""Reads of checkup data, each already narrowed by accounts.policy; anything else is a 404."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Prefetch
from django.http import Http404

from accounts import policy
from accounts.labels import Perm
from accounts.models import Member
from checkups.models import CheckupRecord, Judgement, PhysicianOpinion

REVIEW_GRADES = {"C", "D", "E"}
REVIEW_GUIDANCE = {"積極的支援", "動機付け支援"}
OPINION_DEADLINE_MONTHS = 3  # 安衛法 66条の4: the physician's opinion within 3 months of the checkup
CHART_ITEMS = ["weight", "bmi", "systolic", "diastolic", "hba1c", "ldl"]


def add_months(day: dt.date, months: int) -> dt.date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    last = [31, 29 if year % 4 == 0 and (year % 100 or year % 400 == 0) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30,
            31][month - 1]  # fmt: skip
    return dt.date(year, month, min(day.day, last))


def _latest_judgements():
    return Prefetch("judgements", queryset=Judgement.objects.order_by("-judged_at"), to_attr="judgements_newest_first")


@dataclass(frozen=True)
class QueueEntry:
    record: CheckupRecord
    judgement: Judgement
    deadline: dt.date


def review_queue(*, user) -> list[QueueEntry]:
    """Records in the physician's checkup.judge scope that need an opinion (grade C or worse, or a
    guidance target) and have none yet, oldest exam first, with the legal deadline."""
    records = (
        policy.scope(user, Perm.CHECKUP_JUDGE, CheckupRecord.objects.all(), member_path="member__")
        .annotate(has_opinion=Exists(PhysicianOpinion.objects.filter(record=OuterRef("pk"))))
        .filter(has_opinion=False)
        .select_related("member")
        .prefetch_related(_latest_judgements())
        .order_by("exam_date", "pk")
    )
    queue = []
    for record in records:
        latest = record.judgements_newest_first[0] if record.judgements_newest_first else None
        if latest and (latest.overall in REVIEW_GRADES or latest.guidance_level in REVIEW_GUIDANCE):
            queue.append(QueueEntry(record, latest, add_months(record.exam_date, OPINION_DEADLINE_MONTHS)))
    return queue


def record_for_physician(*, user, record_id: int) -> CheckupRecord:
    """A record with its results, inside the user's checkup.judge scope."""
    record = (
        policy.scope(user, Perm.CHECKUP_JUDGE, CheckupRecord.objects.all(), member_path="member__")
        .select_related("member")
        .prefetch_related("results", _latest_judgements(), "opinions")
        .filter(pk=record_id)
        .first()
    )
    if record is None:
        raise Http404
    return record


def my_records(*, user) -> list[CheckupRecord]:
    """The user's own records, newest first, with results and the newest judgement."""
    member = Member.objects.filter(user=user).first()
    if member is None:
        return []
    return list(
        CheckupRecord.objects.filter(member=member)
        .prefetch_related("results", _latest_judgements(), "opinions")
        .order_by("-exam_date")
    )


def trend_series(records: list[CheckupRecord]) -> dict[str, list[tuple[str, float]]]:
    """Per chart item, (fiscal year, value) in time order, from the records given."""
    series: dict[str, list[tuple[str, float]]] = {item: [] for item in CHART_ITEMS}
    for record in sorted(records, key=lambda r: r.exam_date):
        for result in record.results.all():
            if result.item in series and result.value is not None:
                series[result.item].append((str(record.fiscal_year), float(result.value)))
    return {item: points for item, points in series.items() if points}


@dataclass(frozen=True)
class Conclusion:
    record_id: int
    member: Member
    exam_date: dt.date
    opinion: PhysicianOpinion | None


def conclusions(*, user) -> list[Conclusion]:
    """就業判定 and follow-up only (never lab values) for records in the checkup.view_conclusion scope."""
    if not policy.can(user, Perm.CHECKUP_VIEW_CONCLUSION):
        raise Http404
    records = (
        policy.scope(user, Perm.CHECKUP_VIEW_CONCLUSION, CheckupRecord.objects.all(), member_path="member__")
        .select_related("member", "member__office", "member__department")
        .prefetch_related(Prefetch("opinions", queryset=PhysicianOpinion.objects.order_by("-signed_at")))
        .order_by("-exam_date", "pk")
    )
    return [Conclusion(r.pk, r.member, r.exam_date, next(iter(r.opinions.all()), None)) for r in records]


MIN_GROUP_SIZE = 5  # aggregates over fewer people are suppressed, so nobody can be singled out


@dataclass(frozen=True)
class DistributionRow:
    office: str
    department: str
    people: int
    grades: dict[str, int] | None  # None when suppressed
    judged_share: int | None  # % of records with a physician's opinion; None when suppressed


def grade_distribution(*, user, fiscal_year: int | None = None) -> tuple[int | None, list[DistributionRow]]:
    """Counts of overall grades by office and department for one fiscal year (the latest by default),
    inside the user's checkup.view_conclusion scope; groups under MIN_GROUP_SIZE people are suppressed."""
    if not policy.can(user, Perm.CHECKUP_VIEW_CONCLUSION):
        raise Http404
    records = policy.scope(user, Perm.CHECKUP_VIEW_CONCLUSION, CheckupRecord.objects.all(), member_path="member__")
    if fiscal_year is None:
        fiscal_year = records.order_by("-fiscal_year").values_list("fiscal_year", flat=True).first()
        if fiscal_year is None:
            return None, []
    groups: dict[tuple[str, str], list[CheckupRecord]] = {}
    for record in (
        records.filter(fiscal_year=fiscal_year)
        .select_related("member__office", "member__department")
        .prefetch_related(_latest_judgements(), "opinions")
    ):
        office = record.member.office.name if record.member.office_id else "—"
        department = record.member.department.name if record.member.department_id else "—"
        groups.setdefault((office, department), []).append(record)
    rows = []
    for (office, department), members_records in sorted(groups.items()):
        people = len({r.member_id for r in members_records})
        if people < MIN_GROUP_SIZE:
            rows.append(DistributionRow(office, department, people, None, None))
            continue
        grades = {grade: 0 for grade in "ABCDE"}
        for record in members_records:
            latest = record.judgements_newest_first[0] if record.judgements_newest_first else None
            if latest and latest.overall:
                grades[latest.overall] += 1
        judged = sum(1 for r in members_records if r.opinions.all())
        rows.append(DistributionRow(office, department, people, grades, round(100 * judged / len(members_records))))
    return fiscal_year, rows
