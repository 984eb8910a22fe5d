"""Reads of checkup data, each already narrowed by accounts.policy; anything else is a 404."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db.models import (
    BooleanField,
    DateTimeField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext

from accounts import policy
from accounts.labels import LABELS, ROLE_LABELS, Perm
from accounts.models import LabelGrant, Member
from checkups import criteria as criteria_data
from checkups import disclosure, items, stratification
from checkups import judgement as judgement_module
from checkups.disclosure import MIN_GROUP_SIZE
from checkups.models import (
    CheckupCorrection,
    CheckupRecord,
    FollowUpVisit,
    GuidanceSupport,
    Judgement,
    PhysicianOpinion,
    correction_results,
    interpretation_label,
)
from tenants.models import Department, Office, Tenant

REVIEW_GRADES = {"C", "D", "E"}
REVIEW_GUIDANCE = {"積極的支援", "動機付け支援"}
OPINION_DEADLINE_MONTHS = 3  # 安衛法 66条の4: the physician's opinion within 3 months of the checkup
GUIDANCE_EVALUATION_MONTHS = 3  # 第4期 特定保健指導: the 実績評価 once 3 months have passed since the 初回面接
CHART_ITEMS = ["weight", "bmi", "systolic", "diastolic", "hba1c", "ldl"]
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)  # "before any correction"
PAGE_SIZE = 50  # rows per page of the physician's queue and HR's conclusions
RECENTLY_SIGNED_DAYS = 30  # how far back the physician's list of signed records reaches


def add_months(day: dt.date, months: int) -> dt.date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    last = [31, 29 if year % 4 == 0 and (year % 100 or year % 400 == 0) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30,
            31][month - 1]  # fmt: skip
    return dt.date(year, month, min(day.day, last))


def opinion_deadline(exam_date: dt.date) -> dt.date:
    """The last day for the physician's opinion: within 3 months of the checkup, counted as the Civil Code
    counts periods (民法140条・143条: the exam day itself does not count, and the period ends the day before
    the same date 3 months on, or at the end of that month when it has no such date): an exam on 4/30 has
    until 7/31, one on 5/20 until 8/20."""
    return add_months(exam_date + dt.timedelta(days=1), OPINION_DEADLINE_MONTHS) - dt.timedelta(days=1)


def guidance_evaluation_from(started_on: dt.date) -> dt.date:
    """The first day a 実績評価 may be held: 3 months after the 初回面接 (the same date, or the month's end)."""
    return add_months(started_on, GUIDANCE_EVALUATION_MONTHS)


def _standing(newest: GuidanceSupport | None) -> GuidanceSupport | None:
    """A record's 特定保健指導 as it stands, from its newest entry: None when there is none or it was taken back."""
    return None if newest is None or newest.status == GuidanceSupport.Status.WITHDRAWN else newest


def guidance_current(record: CheckupRecord) -> GuidanceSupport | None:
    """The record's 特定保健指導 as it stands."""
    return _standing(record.guidance_supports.order_by("-recorded_at", "-pk").first())


def guidance_current_by_record(records: QuerySet[CheckupRecord]) -> dict[int, GuidanceSupport]:
    """``guidance_current`` of each of ``records`` that has one, by record id, in one query (with its record)."""
    newest: dict[int, GuidanceSupport] = {}
    supports = GuidanceSupport.objects.filter(record__in=records).select_related("record").defer("record__results")
    for support in supports.order_by("-recorded_at", "-pk"):
        newest.setdefault(support.record_id, support)
    return {pk: support for pk, entry in newest.items() if (support := _standing(entry))}


def guidance_elsewhere(record: CheckupRecord) -> GuidanceSupport | None:
    """The person's 特定保健指導 of the record's fiscal year recorded on another of their checkups (there is one
    guidance per person and year, whichever checkup of the year it was recorded on), if any."""
    others = CheckupRecord.objects.filter(member_id=record.member_id, fiscal_year=record.fiscal_year).exclude(
        pk=record.pk
    )
    return max(guidance_current_by_record(others).values(), key=lambda s: (s.recorded_at, s.pk), default=None)


def guidance_level_of(record: CheckupRecord) -> str:
    """The 保健指導 level of the record's newest judgement ("" before any judgement)."""
    return record.judgements.order_by("-judged_at", "-pk").values_list("guidance_level", flat=True).first() or ""


def _tenant_user(user) -> None:
    """Checkups are tenant data: an operator (no tenant) gets the same 404 as anyone out of scope, not a
    NoTenantError from the tenant-scoped managers."""
    if getattr(user, "tenant_id", None) is None:
        raise Http404


def _latest_judgements():
    return Prefetch(
        "judgements",
        queryset=Judgement.objects.select_related("criteria").order_by("-judged_at", "-pk"),
        to_attr="judgements_newest_first",
    )


def _opinions_newest_first():
    return Prefetch("opinions", queryset=PhysicianOpinion.objects.order_by("-signed_at", "-pk"))


def _visits_newest_first():
    return Prefetch("follow_up_visits", queryset=FollowUpVisit.objects.order_by("-recorded_at", "-pk"))


@dataclass(frozen=True)
class FollowUpState:
    """事後措置の実施状況 of one record whose current opinion asks for a follow-up."""

    kind: str  # PhysicianOpinion.FollowUp value
    label: str
    due: dt.date  # CHECKUP_FOLLOW_UP_DUE_MONTHS after the opinion first asked for it
    visit: FollowUpVisit | None  # the "done" row in force, or None (未受診)
    history: list[FollowUpVisit]  # every row, newest first
    overdue: bool

    @property
    def advice(self) -> str:
        """What the physician asks of the person, as one sentence of its own per kind (the kind's label does
        not fit one sentence frame: 受診勧奨 is itself "see a doctor")."""
        return str(_FOLLOW_UP_ADVICE[self.kind])


_FOLLOW_UP_ADVICE = {
    PhysicianOpinion.FollowUp.RECHECK: gettext_lazy("産業医から、再検査を受けるよう意見が出ています。"),
    PhysicianOpinion.FollowUp.DETAILED: gettext_lazy("産業医から、精密検査を受けるよう意見が出ています。"),
    PhysicianOpinion.FollowUp.CONSULT: gettext_lazy("産業医から、医療機関を受診するよう意見が出ています。"),
}


def follow_up_state(record: CheckupRecord, *, today: dt.date | None = None) -> FollowUpState | None:
    """The follow-up status of a record fetched with its opinions and visits prefetched newest first;
    None when its current opinion asks for no follow-up."""
    opinions = list(record.opinions.all())
    if not opinions or opinions[0].follow_up == PhysicianOpinion.FollowUp.NONE:
        return None
    asked_since = opinions[0]
    for opinion in opinions[1:]:  # an edit of the opinion does not move the due date
        if opinion.follow_up == PhysicianOpinion.FollowUp.NONE:
            break
        asked_since = opinion
    due = add_months(timezone.localtime(asked_since.signed_at).date(), settings.CHECKUP_FOLLOW_UP_DUE_MONTHS)
    history = list(record.follow_up_visits.all())
    visit = history[0] if history and history[0].status == FollowUpVisit.Status.DONE else None
    today = today or timezone.localdate()
    return FollowUpState(
        opinions[0].follow_up, opinions[0].get_follow_up_display(), due, visit, history, visit is None and today > due
    )


@dataclass(frozen=True)
class QueueEntry:
    record: CheckupRecord
    judgement: Judgement
    deadline: dt.date
    recheck: bool = False  # signed before a correction changed the values: to be confirmed again

    @property
    def overdue(self) -> bool:
        return self.deadline < timezone.localdate()


def _newest(model, order: str, field: str = "") -> Subquery:
    """``field`` (default: ``order``) of the record's newest ``model`` row by ``order``."""
    newest = model.objects.filter(record=OuterRef("pk")).order_by(f"-{order}", "-pk")
    return Subquery(newest.values(field or order)[:1])


def with_correction_state(records: QuerySet[CheckupRecord]) -> QuerySet[CheckupRecord]:
    """Annotates ``signed_at`` (newest opinion), ``corrected_at`` (newest correction) and ``stale_opinion``:
    the opinion in force was signed before the values were corrected."""
    return records.annotate(
        signed_at=_newest(PhysicianOpinion, "signed_at"), corrected_at=_newest(CheckupCorrection, "corrected_at")
    ).annotate(
        stale_opinion=ExpressionWrapper(
            Q(signed_at__isnull=False, corrected_at__gt=F("signed_at")), output_field=BooleanField()
        )
    )


def _page(records: QuerySet[CheckupRecord], number: int | str | None) -> Page:
    """One page of ``records`` (a bad or out-of-range number gives the first or last page): a big
    tenant's lists are read, decrypted and rendered a page at a time."""
    return Paginator(records, PAGE_SIZE).get_page(number)


def awaiting_opinion(records: QuerySet[CheckupRecord]) -> QuerySet[CheckupRecord]:
    """``records`` narrowed to those awaiting the physician's opinion: no opinion signed since their values
    last changed, and either graded C or worse or a guidance target by their newest judgement, or signed
    before a correction. The one definition of 判定待ち: the physician's queue and HR's filter both use it."""
    # Each subquery is written once, as the filter runs over every record in scope: "no opinion signed
    # since the values last changed" is one NOT EXISTS. Aliases, not annotations: nothing is selected,
    # and a caller's own annotations (HR's corrected_at…) are left alone.
    since = Coalesce(OuterRef("awaiting_corrected_at"), Value(EPOCH, output_field=DateTimeField()))
    return (
        records.alias(awaiting_corrected_at=_newest(CheckupCorrection, "corrected_at"))
        .filter(~Exists(PhysicianOpinion.objects.filter(record=OuterRef("pk"), signed_at__gt=since)))
        .alias(
            awaiting_overall=_newest(Judgement, "judged_at", "overall"),
            awaiting_guidance=_newest(Judgement, "judged_at", "guidance_level"),
            awaiting_opinion_before=Exists(PhysicianOpinion.objects.filter(record=OuterRef("pk"))),
        )
        # An opinion signed before a correction is out of date whatever the new grade: the physician
        # confirms or changes it (HR shows it as awaiting that re-check meanwhile).
        .filter(
            Q(awaiting_overall__in=REVIEW_GRADES)
            | Q(awaiting_guidance__in=REVIEW_GUIDANCE)
            | Q(awaiting_opinion_before=True)
        )
    )


def employer(user) -> bool:
    """Whether the user's tenant is an employer: 就業判定 and its follow-up are an employer's duties
    (労働安全衛生法66条の4, 66条の5); a health-insurance association reads grades, not fitness for work."""
    return user.tenant_id is not None and user.tenant.kind == Tenant.Kind.COMPANY


def _judge_scope(user) -> QuerySet[CheckupRecord]:
    """The records a physician may judge: an employer's (``employer``), in their checkup.judge scope, and not
    their own (nobody signs their own fitness for work; another physician of the tenant does)."""
    if not employer(user):
        return CheckupRecord.objects.none()
    records = policy.scope(user, Perm.CHECKUP_JUDGE, CheckupRecord.objects.all(), member_path="member__")
    return records.exclude(member__user_id=user.pk)


def _judges() -> list:
    """The logins of the current tenant holding checkup.judge today. It comes with a label: read the few grants
    of such a label (their labels are JSON, filtered here) and the roles whose built-in label has it."""
    codes = {code for code, label in LABELS.items() if Perm.CHECKUP_JUDGE in label.permissions}
    roles = [role for role, (code, _scope) in ROLE_LABELS.items() if code in codes]
    member_ids, department_ids = set(), set()
    for member_id, department_id, labels in LabelGrant.objects.values_list("member_id", "department_id", "labels"):
        if not codes & set(labels or []):
            continue
        if member_id:
            member_ids.add(member_id)
        else:
            department_ids.add(department_id)
    candidates = (
        Member.objects.filter(user__isnull=False, is_active=True)
        .filter(Q(pk__in=member_ids) | Q(department_id__in=department_ids) | Q(user__role__in=roles))
        .select_related("user")
    )
    return [m.user for m in candidates if policy.can(m.user, Perm.CHECKUP_JUDGE)]


@dataclass(frozen=True)
class PhysiciansOwn:
    """判定待ち records of people who are physicians themselves (no physician signs their own), in a reader's
    scope: counts only, never whose."""

    awaiting: int
    unassigned: int  # of those, the ones no other physician has in their checkup.judge scope


def physicians_own_awaiting(*, user) -> PhysiciansOwn:
    """How many of the records awaiting an opinion (``awaiting_opinion``) in the user's
    checkup.view_conclusion scope are a physician's own, and how many of those no other physician may sign:
    why HR's 判定待ち may hold records that are in no queue the physician sees."""
    judges = _judges() if employer(user) else []
    if not judges:
        return PhysiciansOwn(0, 0)
    scope_records = policy.scope(
        user, Perm.CHECKUP_VIEW_CONCLUSION, CheckupRecord.objects.all(), member_path="member__"
    )
    own = list(  # person by person, as HR's rows show them: ids only
        awaiting_opinion(scope_records.filter(member__user__in=[judge.pk for judge in judges])).values_list(
            "member_id", flat=True
        )
    )
    if not own:
        return PhysiciansOwn(0, 0)
    people = set(own)
    signable: set[int] = set()  # people some other physician may sign for
    for judge in judges:
        if not people - signable:
            break
        in_scope = policy.scope(judge, Perm.CHECKUP_JUDGE, Member.objects.filter(pk__in=people - signable))
        signable.update(in_scope.exclude(user_id=judge.pk).values_list("pk", flat=True))
    return PhysiciansOwn(len(own), sum(1 for member_id in own if member_id not in signable))


def review_queue(*, user, page: int | str | None = 1) -> Page:
    """Records in the physician's checkup.judge scope awaiting an opinion (``awaiting_opinion``), oldest
    exam first, with the legal deadline; a page of QueueEntry."""
    records = (
        awaiting_opinion(_judge_scope(user).defer("results"))  # a queue row shows no values
        # whether an older opinion exists (a re-check) is read for the page's rows only
        .annotate(signed_at=_newest(PhysicianOpinion, "signed_at"))
        .select_related("member")
        .prefetch_related(_latest_judgements())
        .order_by("exam_date", "pk")
    )
    found = _page(records, page)
    found.object_list = [
        QueueEntry(
            record,
            record.judgements_newest_first[0],
            opinion_deadline(record.exam_date),
            recheck=record.signed_at is not None,  # signed before the newest correction
        )
        for record in found.object_list
    ]
    return found


@dataclass(frozen=True)
class SignedEntry:
    """A record of the physician's list of recent signatures: its opinion in force and newest grade."""

    record: CheckupRecord
    judgement: Judgement | None
    opinion: PhysicianOpinion
    recheck: bool = False  # corrected since: back in the queue too


def recently_signed(*, user, page: int | str | None = 1, days: int = RECENTLY_SIGNED_DAYS) -> Page:
    """Records in the physician's checkup.judge scope (the queue's) with an opinion signed, by anyone, in
    the last ``days`` days, newest signature first: the way back to a record that left the queue. A page
    of SignedEntry."""
    since = timezone.now() - dt.timedelta(days=days)
    records = (
        with_correction_state(_judge_scope(user).defer("results"))
        # a semi-join: the newest opinion is recent exactly when any opinion is
        .filter(pk__in=PhysicianOpinion.objects.filter(signed_at__gte=since).values("record_id"))
        .select_related("member")
        .prefetch_related(_latest_judgements(), _opinions_newest_first())
        .order_by("-signed_at", "-pk")
    )
    found = _page(records, page)
    found.object_list = [
        SignedEntry(
            record,
            next(iter(record.judgements_newest_first), None),
            next(iter(record.opinions.all())),
            recheck=record.stale_opinion,
        )
        for record in found.object_list
    ]
    return found


def record_for_physician(*, user, record_id: int) -> CheckupRecord:
    """A record with its results and its opinions newest first, inside the user's checkup.judge scope."""
    _tenant_user(user)
    record = (
        with_correction_state(_judge_scope(user))
        .select_related("member")
        .prefetch_related(_latest_judgements(), _opinions_newest_first())
        .filter(pk=record_id)
        .first()
    )
    if record is None:
        raise Http404
    return record


# 健診結果の閲覧 (checkup.view: 保健師・衛生管理者, and physicians too): lab values read only, no 就業判定.
RESULT_GRADES = list(criteria_data.GRADES)
RESULT_GUIDANCE = [level.label for level in sorted(stratification.Level, reverse=True)]  # as stored (the MHLW's words)


def _view_scope(user) -> QuerySet[CheckupRecord]:
    """The records whose results the user may read: in their checkup.view scope, in either tenant kind (a
    健保's 保健師 reads them for 特定保健指導 as an employer's does), and not their own (that is
    自分の健診結果; the physician's pages leave it out the same way)."""
    _tenant_user(user)
    if not policy.can(user, Perm.CHECKUP_VIEW):
        raise Http404
    records = policy.scope(user, Perm.CHECKUP_VIEW, CheckupRecord.objects.all(), member_path="member__")
    return records.exclude(member__user_id=user.pk)


@dataclass(frozen=True)
class ResultEntry:
    """A row of 健診結果の閲覧: the record (without its values) and its newest judgement, if any."""

    record: CheckupRecord
    judgement: Judgement | None


def result_years(*, user) -> list[int]:
    """The fiscal years with records the user may read, newest first (the list's year filter)."""
    return list(_view_scope(user).order_by("-fiscal_year").values_list("fiscal_year", flat=True).distinct())


def checkup_results(
    *,
    user,
    page: int | str | None = 1,
    fiscal_year: int | None = None,
    grade: str = "",
    guidance: str = "",
    program: str = "",
) -> Page:
    """Records in the user's checkup.view scope (not their own), newest exam first, narrowed to a fiscal
    year, a program (特定健診 apart from the employer's checkups of the same people) and to the overall grade
    and 保健指導 level of their newest judgement when given (an unknown grade, level or program narrows
    nothing); a page of ResultEntry. No lab values are loaded: a row shows the grades."""
    records = _view_scope(user).defer("results")
    if fiscal_year is not None:
        records = records.filter(fiscal_year=fiscal_year)
    if program in CheckupRecord.Program.values:
        records = records.filter(program=program)
    if grade in RESULT_GRADES:
        records = records.alias(newest_overall=_newest(Judgement, "judged_at", "overall")).filter(newest_overall=grade)
    if guidance in RESULT_GUIDANCE:
        records = records.alias(newest_guidance=_newest(Judgement, "judged_at", "guidance_level")).filter(
            newest_guidance=guidance
        )
    records = records.select_related("member").prefetch_related(_latest_judgements()).order_by("-exam_date", "-pk")
    found = _page(records, page)
    found.object_list = [
        ResultEntry(record, next(iter(record.judgements_newest_first), None)) for record in found.object_list
    ]
    return found


def record_for_viewer(*, user, record_id: int) -> CheckupRecord:
    """A record with its results, judgements and opinions newest first (and its follow-up visits), inside the
    user's checkup.view scope and not their own; anything else (another tenant's, out of scope, no
    permission) is a 404."""
    record = (
        with_correction_state(_view_scope(user))
        .select_related("member")
        .prefetch_related(_latest_judgements(), _opinions_newest_first(), _visits_newest_first())
        .filter(pk=record_id)
        .first()
    )
    if record is None:
        raise Http404
    return record


def previous_record(record: CheckupRecord) -> CheckupRecord | None:
    """The same person's latest checkup before this one (前回), with its results; the record was already
    read inside the reader's scope (the physician's or checkup.view's), and the person is the same."""
    return (
        CheckupRecord.objects.filter(member_id=record.member_id, exam_date__lt=record.exam_date)
        .order_by("-exam_date", "-pk")
        .first()
    )


@dataclass(frozen=True)
class Correction:
    """One correction of a record as a physician reads it: when, from which file, and what it changed."""

    corrected_at: dt.datetime
    source: str
    source_sha256: str
    job_number: int | None  # the import's number in the tenant (名簿の取り込み #3), as its page shows it
    changes: list[tuple[str, str, str]]  # (what, before, after), as displayed


# Questionnaire keys as the imports store them → the catalogue question that names them.
_ANSWER_QUESTIONS = {"smoker": "smoking", "hours_since_meal": "blood_draw_timing"}


def corrections_of(record: CheckupRecord) -> list[Correction]:
    """The record's corrections, newest first, each with what differs between the values it kept and
    those that replaced them (the next correction's, or the current ones)."""
    catalogue = items.load()
    english = translation.get_language() == "en"

    def item_label(key: str) -> str:
        item = catalogue.items.get(key)
        return (item.label_en if english else item.label) if item else key

    def answer_label(key: str) -> str:
        question = catalogue.questions.get(_ANSWER_QUESTIONS.get(key, key))
        return (question.label_en if english else question.label) if question else key

    def shown(result: dict) -> str:
        value = result.get("value")
        text = catalogue.display(result["item"], None if value is None else Decimal(value), result.get("text", ""))
        flag = result.get("interpretation")  # the provider's own flag: a change of it alone is a change too
        if not flag:
            return text
        return f"{text}{pgettext('bracket', '（')}{interpretation_label(flag)}{pgettext('bracket', '）')}"

    def answer(value: object) -> str:
        if isinstance(value, bool):
            return _("はい") if value else _("いいえ")
        return "—" if value is None else str(value)

    kept = list(CheckupCorrection.objects.filter(record=record).select_related("job").order_by("corrected_at", "pk"))
    if not kept:
        return []
    current = {  # in the form the corrections keep (value as exact text)
        "results": correction_results(record.results or {}),
        "institution": record.institution,
        "questionnaire": record.questionnaire,
    }
    states = [{"results": c.results, "institution": c.institution, "questionnaire": c.questionnaire} for c in kept]
    out: list[Correction] = []
    for correction, before, after in zip(kept, states, [*states[1:], current], strict=True):
        old = {r["item"]: shown(r) for r in before["results"]}
        new = {r["item"]: shown(r) for r in after["results"]}
        changes = [(item_label(key), old.get(key, "—"), new.get(key, "—"))
                   for key in sorted({*old, *new}) if old.get(key) != new.get(key)]  # fmt: skip
        if before["institution"] != after["institution"]:
            changes.append((_("健診機関"), before["institution"] or "—", after["institution"] or "—"))
        answers_before, answers_after = before["questionnaire"] or {}, after["questionnaire"] or {}
        for key in sorted({*answers_before, *answers_after} - {"mhlw"}):  # mhlw: the raw codes of the same answers
            if answers_before.get(key) != answers_after.get(key):
                changes.append((answer_label(key), answer(answers_before.get(key)), answer(answers_after.get(key))))
        job_number = correction.job.label_number if correction.job else None
        out.append(Correction(correction.corrected_at, correction.source, correction.source_sha256, job_number,
                              changes))  # fmt: skip
    return out[::-1]


def my_records(*, user) -> list[CheckupRecord]:
    """The user's own records, newest first, with results and the newest judgement."""
    _tenant_user(user)
    member = Member.objects.filter(user=user).first()
    if member is None:
        return []
    records = list(
        # corrected_at for the note of a correction, stale_opinion for the 就業判定 being checked again
        with_correction_state(CheckupRecord.objects.filter(member=member))
        .prefetch_related(_latest_judgements(), _opinions_newest_first(), _visits_newest_first())
        .order_by("-exam_date")
    )
    rules: dict[int, dict] = {}  # criteria version → its parsed data, read once for all the records
    # Their 特定保健指導 of each year, shown with the year's checkups (one per year, on any of them).
    guidance: dict[int, GuidanceSupport] = {}
    for support in sorted(guidance_current_by_record(CheckupRecord.objects.filter(member=member)).values(),
                          key=lambda s: (s.recorded_at, s.pk)):  # fmt: skip
        guidance[support.record.fiscal_year] = support
    for record in records:
        record.follow_up = follow_up_state(record)
        record.guidance = guidance.get(record.fiscal_year)
        judgement = record.judgements_newest_first[0] if record.judgements_newest_first else None
        if judgement is None:
            record.bands = {}
            continue
        if judgement.criteria_id not in rules:
            rules[judgement.criteria_id] = criteria_data.parse(judgement.criteria.data)
        record.bands = _bands_explained(record, judgement, rules[judgement.criteria_id], member.sex)
    return records


def _bands_explained(record: CheckupRecord, judgement: Judgement, rules: dict, sex: str) -> dict[str, str]:
    """Item → where its value stands, in words: the range of its grade and the range of A, from the
    criteria version it was judged under (an item under treatment, E, is explained by its grade alone)."""
    explained = {}
    for item, value in record.result_values().items():
        grade = judgement.grades.get(item)
        band = judgement_module.band_of(item, value, rules, sex=sex) if grade and grade != "E" else None
        if band is None or band.grade != grade:  # a judgement of the values before a correction: no band to show
            continue
        if band.grade == "A":
            explained[item] = _("%(grade)s の範囲（%(range)s）です。") % {"grade": "A", "range": _range_text(band)}
            continue
        normal = " / ".join(_range_text(b) for b in judgement_module.bands_of(item, rules, sex=sex) if b.grade == "A")
        explained[item] = _("%(grade)s の範囲（%(range)s）です。A（異常なし）は %(normal)s。") % {
            "grade": band.grade, "range": _range_text(band), "normal": normal or "—",
        }  # fmt: skip
    return explained


def _range_text(band: judgement_module.Band) -> str:
    def number(value: Decimal) -> str:
        return format(value, "f")  # as the criteria write it: 6.0, not 6

    if band.lower is not None and band.upper is not None:
        return _("%(lower)s以上%(upper)s未満") % {"lower": number(band.lower), "upper": number(band.upper)}
    if band.lower is not None:
        return _("%(lower)s以上") % {"lower": number(band.lower)}
    return _("%(upper)s未満") % {"upper": number(band.upper)}


def my_record(*, user, record_id: int) -> CheckupRecord:
    """One of the user's own records (for reporting a follow-up visit); anyone else's is a 404."""
    _tenant_user(user)
    record = CheckupRecord.objects.filter(pk=record_id, member__user=user).select_related("member").first()
    if record is None:
        raise Http404
    return record


def record_for_conclusions(*, user, record_id: int) -> CheckupRecord:
    """A record in the user's checkup.view_conclusion scope (for recording a follow-up visit), an employer's."""
    _tenant_user(user)
    if not employer(user):
        raise Http404
    record = (
        policy.scope(user, Perm.CHECKUP_VIEW_CONCLUSION, CheckupRecord.objects.all(), member_path="member__")
        .defer("results")  # the lab values are not for this reader: not even loaded
        .select_related("member")
        .filter(pk=record_id)
        .first()
    )
    if record is None:
        raise Http404
    return record


def trend_series(records: list[CheckupRecord]) -> dict[str, list[tuple[dt.date, float]]]:
    """Per chart item, (exam date, value) in time order, from the records given: by the date, not the
    fiscal year, so that several checkups in one year stay apart."""
    series: dict[str, list[tuple[dt.date, float]]] = {item: [] for item in CHART_ITEMS}
    for record in sorted(records, key=lambda r: r.exam_date):
        day = record.exam_date
        for result in record.results_in_order:
            if result.item in series and result.value is not None:
                series[result.item].append((day, float(result.value)))
    return {item: points for item, points in series.items() if points}


@dataclass(frozen=True)
class Conclusion:
    record_id: int
    member: Member
    exam_date: dt.date
    opinion: PhysicianOpinion | None
    follow_up: FollowUpState | None = None
    recheck: bool = False  # the opinion predates a correction of the values: the physician confirms it again
    awaiting: bool = False  # without an opinion: in the physician's queue (判定待ち), or needing none (判定不要)


_FOLLOW_UP_KINDS = [k for k in PhysicianOpinion.FollowUp.values if k != PhysicianOpinion.FollowUp.NONE]


def _with_opinion(**lookups) -> Q:
    # "IN (records with such an opinion)": a semi-join, so the per-record subqueries after it run only
    # for the few records that have an opinion at all, not for every record of a big tenant.
    return Q(pk__in=PhysicianOpinion.objects.filter(**lookups).values("record_id"))


Narrowing = Callable[[QuerySet[CheckupRecord]], QuerySet[CheckupRecord]]


def _where(condition: Callable[[], Q]) -> Narrowing:
    return lambda records: records.filter(condition())


# What HR can narrow 就業判定の確認 to (?show=…): the key, its label, and how it narrows the records.
CONCLUSION_FILTERS: dict[str, tuple[str, Narrowing]] = {
    "all": (gettext_lazy("すべて"), lambda records: records),
    "pending": (gettext_lazy("判定待ち"), awaiting_opinion),  # what the physicians' queues hold, nothing else
    "signed": (gettext_lazy("就業判定あり"), _where(_with_opinion)),
    "follow_up": (
        gettext_lazy("事後措置が未受診"),
        _where(
            lambda: (
                _with_opinion(follow_up__in=_FOLLOW_UP_KINDS)
                & Q(follow_up__in=_FOLLOW_UP_KINDS)
                & (Q(visit__isnull=True) | ~Q(visit=FollowUpVisit.Status.DONE))
            )
        ),
    ),
    "recheck": (
        gettext_lazy("訂正後の再確認待ち"),
        _where(
            lambda: Q(pk__in=CheckupCorrection.objects.values("record_id")) & _with_opinion() & Q(stale_opinion=True)
        ),
    ),
}


def conclusions(*, user, page: int | str | None = 1, show: str = "all") -> Page:
    """就業判定 and follow-up only (never lab values) for records in the checkup.view_conclusion scope,
    newest exam first, narrowed by ``show`` (a CONCLUSION_FILTERS key; anything else shows all); a page
    of Conclusion."""
    if not policy.can(user, Perm.CHECKUP_VIEW_CONCLUSION) or not employer(user):
        raise Http404
    show = show if show in CONCLUSION_FILTERS else "all"
    records = CONCLUSION_FILTERS[show][1](
        with_correction_state(
            policy.scope(user, Perm.CHECKUP_VIEW_CONCLUSION, CheckupRecord.objects.all(), member_path="member__")
        )
        .defer("results")  # the lab values are not for this reader: not even loaded
        .annotate(  # the opinion in force and the newest visit row decide "follow-up not done yet"
            follow_up=_newest(PhysicianOpinion, "signed_at", "follow_up"),
            visit=_newest(FollowUpVisit, "recorded_at", "status"),
        )
    )
    records = (
        records.select_related("member", "member__office", "member__department")
        .prefetch_related(_opinions_newest_first(), _visits_newest_first())
        .order_by("-exam_date", "pk")
    )
    found = _page(records, page)
    rows = [(r, next(iter(r.opinions.all()), None)) for r in found.object_list]
    # Whether an unsigned row is 判定待ち or 判定不要 is asked of the page's rows only, by the same definition.
    unsigned = [r.pk for r, opinion in rows if opinion is None]
    if show == "pending" or not unsigned:
        awaiting = set(unsigned)
    else:
        awaiting = set(awaiting_opinion(CheckupRecord.objects.filter(pk__in=unsigned)).values_list("pk", flat=True))
    today = timezone.localdate()
    found.object_list = [
        Conclusion(
            r.pk,
            r.member,
            r.exam_date,
            opinion,
            follow_up_state(r, today=today),
            recheck=r.stale_opinion,
            awaiting=r.pk in awaiting,
        )
        for r, opinion in rows
    ]
    return found


@dataclass(frozen=True)
class FollowUpRate:
    """Follow-ups reported done out of those the physicians asked for (records of the fiscal year)."""

    required: int
    done: int

    @property
    def percent(self) -> int | None:
        return round(100 * self.done / self.required) if self.required else None

    @property
    def suppressed(self) -> bool:
        """A rate over fewer than MIN_GROUP_SIZE follow-ups would tell how one person did."""
        return 0 < self.required < MIN_GROUP_SIZE


@dataclass(frozen=True)
class DistributionRow:
    office: str
    department: str
    people: int
    grades: dict[str, int] | None  # None when suppressed; else as last published (checkups.disclosure)
    judged_share: int | None  # % of people whose counted record has a physician's opinion; None when suppressed
    follow_up: FollowUpRate | None = None  # None when suppressed
    graded_people: int | None = None  # the people graded when the counts were published
    grades_as_of: dt.datetime | None = None  # when those counts were published
    grade_classes: dict[str, int] = field(default_factory=dict)  # "AB"/"CDE" → total, where not broken down
    grades_behind: bool = False  # newer checkups or judgements wait to be counted (checkups.disclosure)


@dataclass(frozen=True)
class Distribution:
    fiscal_year: int | None
    rows: list[DistributionRow]
    follow_up: FollowUpRate | None  # overall; None when it would single anyone out (see grade_distribution)
    years: list[int] = field(default_factory=list)  # fiscal years with checkups in scope, newest first


class _Counted(NamedTuple):
    """What the dashboard needs of a record: no model instances, no personal data."""

    pk: int
    member_id: int
    exam_date: dt.date
    overall: str | None  # of its newest judgement
    signed: bool  # has a physician's opinion
    judgement_id: int | None = None  # its newest judgement


def _follow_up_rate(records: list[_Counted], states: dict[int, FollowUpState | None]) -> FollowUpRate:
    asked = [state for record in records if (state := states.get(record.pk)) is not None]
    return FollowUpRate(len(asked), sum(1 for state in asked if state.visit is not None))


def _counted_per_person(records: list[_Counted]) -> list[_Counted]:
    """Each person once, so that the grade columns add up to 人数: their latest judged record of the year
    (latest exam date; read by its newest judgement), or their latest record while none is judged yet."""
    chosen: dict[int, _Counted] = {}

    def rank(record: _Counted) -> tuple[bool, dt.date, int]:
        return (bool(record.overall), record.exam_date, record.pk)

    for record in records:
        if record.member_id not in chosen or rank(record) > rank(chosen[record.member_id]):
            chosen[record.member_id] = record
    return list(chosen.values())


def _group_names(groups) -> dict[str, tuple[str, str]]:
    """Office and department names of the dashboard's group keys ("—" for none)."""
    ids = [disclosure.group_ids(group) for group in groups]
    offices = dict(Office.objects.filter(pk__in={o for o, _d in ids if o}).values_list("pk", "name"))
    departments = dict(Department.objects.filter(pk__in={d for _o, d in ids if d}).values_list("pk", "name"))
    return {
        group: (offices.get(office, "—") if office else "—", departments.get(department, "—") if department else "—")
        for group, (office, department) in zip(groups, ids, strict=True)
    }


def grade_distribution(*, user, fiscal_year: int | None = None) -> Distribution:
    """Counts of overall grades and the follow-up completion rate by office and department for one fiscal
    year (the latest when none, or one without checkups, is asked for), inside the user's
    checkup.view_conclusion scope. People count in the group they were first published in this year, else
    in their department now; groups under MIN_GROUP_SIZE people, or only partly in the scope, are
    suppressed; the grade counts shown are the group's published ones (checkups.disclosure), which change
    only when enough people have. The overall rate is shown only when the suppressed groups together are
    empty or large enough themselves: otherwise overall minus the shown groups would give the figures of a
    group that was hidden."""
    if not policy.can(user, Perm.CHECKUP_VIEW_CONCLUSION):
        raise Http404
    records = policy.scope(user, Perm.CHECKUP_VIEW_CONCLUSION, CheckupRecord.objects.all(), member_path="member__")
    years = list(records.order_by("-fiscal_year").values_list("fiscal_year", flat=True).distinct())
    if not years:
        return Distribution(None, [], None)
    if fiscal_year not in years:
        fiscal_year = years[0]  # the latest (a year with no checkups in scope has nothing to show)
    year = records.filter(fiscal_year=fiscal_year)
    board = disclosure.Board(fiscal_year)
    # One light row per record (a big tenant has 100,000 a year): the newest judgement's grade and whether an
    # opinion exists come from subqueries; only the signed records are loaded whole, for their follow-up.
    has_opinion = Exists(PhysicianOpinion.objects.filter(record=OuterRef("pk")))
    by_group: dict[str, list[_Counted]] = {}
    for pk, member_id, exam_date, overall, judgement_id, signed, office_id, department_id in (
        year.annotate(overall=_newest(Judgement, "judged_at", "overall"), signed=has_opinion,
                      judgement_id=_newest(Judgement, "judged_at", "pk"))
        .values_list("pk", "member_id", "exam_date", "overall", "judgement_id", "signed", "member__office_id",
                     "member__department_id")
    ):  # fmt: skip
        by_group.setdefault(board.group_of(member_id, office_id, department_id), []).append(
            _Counted(pk, member_id, exam_date, overall, signed, judgement_id)
        )
    # Each group's people in the whole tenant (ids only, nothing shown): a group only partly in the scope is
    # suppressed, since its published counts are the whole group's. A scope holding every record of the
    # year (HR of the whole tenant) has read them already.
    tenant_year = CheckupRecord.objects.filter(fiscal_year=fiscal_year)
    whole: dict[str, set[int]] = {}
    if sum(map(len, by_group.values())) == tenant_year.count():
        whole = {group: {r.member_id for r in group_records} for group, group_records in by_group.items()}
    else:
        for member_id, office_id, department_id in tenant_year.values_list(
            "member_id", "member__office_id", "member__department_id"
        ).distinct():
            whole.setdefault(board.group_of(member_id, office_id, department_id), set()).add(member_id)
    names = _group_names(by_group)
    groups = {(*names[group], group): group_records for group, group_records in by_group.items()}
    today = timezone.localdate()
    states = {
        record.pk: follow_up_state(record, today=today)
        for record in year.filter(has_opinion)
        .defer("results")
        .prefetch_related(_opinions_newest_first(), _visits_newest_first())
    }
    counted = {key: _counted_per_person(group_records) for key, group_records in groups.items()}
    full = {key for key, people in counted.items() if {r.member_id for r in people} == whole.get(key[2])}
    published = board.shown(
        {key[2]: {r.member_id: disclosure.Counted(r.overall or "", r.pk, r.judgement_id) for r in counted[key]}
         for key in full}
    )  # fmt: skip
    rows = []
    suppressed_people = total_people = hidden_follow_ups = 0
    for key, group_records in sorted(groups.items()):
        office, department, group = key
        people = len(counted[key])
        total_people += people
        rate = _follow_up_rate(group_records, states)
        shown = published.get(group) if key in full else None
        if shown is None:
            suppressed_people += people
            hidden_follow_ups += rate.required
            rows.append(DistributionRow(office, department, people, None, None))
            continue
        if rate.suppressed:
            hidden_follow_ups += rate.required
        judged = sum(1 for r in counted[key] if r.signed)
        rows.append(
            DistributionRow(
                office,
                department,
                people,
                shown.grades,
                round(100 * judged / people),
                rate,
                shown.people,
                shown.as_of,
                shown.classes,
                shown.behind,
            )
        )
    overall = None
    if total_people >= MIN_GROUP_SIZE and (suppressed_people == 0 or suppressed_people >= MIN_GROUP_SIZE):
        overall = _follow_up_rate([record for group in groups.values() for record in group], states)
        if overall.suppressed or 0 < hidden_follow_ups < MIN_GROUP_SIZE:  # the whole minus what is shown
            overall = None
    return Distribution(fiscal_year, rows, overall, years)


# --- 特定健診の受診率と階層化 -------------------------------------------------------------------------------

GUIDANCE_AGE_BANDS = [(40, 44), (45, 49), (50, 54), (55, 59), (60, 64), (65, 69), (70, 74)]
GUIDANCE_LEVELS = [level.label for level in sorted(stratification.Level, reverse=True)]  # 積極的支援 … 対象外
GUIDANCE_TARGETED = GUIDANCE_LEVELS[:2]  # 特定保健指導の対象者: 積極的支援 and 動機付け支援
NOT_JUDGED = "未判定"
METABOLIC_COUNTED = [stratification.MetabolicSyndrome.MEETS.value, stratification.MetabolicSyndrome.PRELIMINARY.value]
MEDICATION_ANSWERS = ("medication_bp", "medication_glucose", "medication_lipid")


def _year_end(fiscal_year: int) -> dt.date:
    return dt.date(fiscal_year + 1, 3, 31)


@dataclass
class GuidanceRow:
    """One line of the summary: an age band (``ages``), one sex's or one relationship's total, or everyone."""

    ages: tuple[int, int] | None = None
    sex: str = ""
    relationship: str = ""
    eligible: int = 0  # 対象者: insured through the fiscal year, 40-74 at its end
    examined: int = 0  # 受診者: of those, people with a checkup in the fiscal year
    levels: dict[str, int] = field(default_factory=dict)  # 保健指導 level (or 未判定) → people
    metabolic: dict[str, int] = field(default_factory=dict)  # 基準該当 / 予備群 → people
    medicated: int = 0  # of the examined, on blood-pressure, glucose or lipid medication (情報提供 by rule)
    # of the targeted, by 支援の区分 (積極的支援 / 動機付け支援) as the 法定報告 gives them: people whose 特定保健指導
    # began (初回面接: 利用者), and whose 実績評価 was held (終了者)
    started_by_level: dict[str, int] = field(default_factory=dict)
    completed_by_level: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float | None:
        """受診率 in percent, one decimal (None without anyone eligible)."""
        return round(100 * self.examined / self.eligible, 1) if self.eligible else None

    @property
    def unexamined(self) -> int:
        return self.eligible - self.examined

    @property
    def label(self) -> str:
        """The row's name, in the reader's language."""
        if self.ages:
            return _("%(low)s〜%(high)s歳") % {"low": self.ages[0], "high": self.ages[1]}
        names = {"male": _("男性 計"), "female": _("女性 計"), "self": _("本人（被保険者） 計"),
                 "family": _("家族（被扶養者） 計")}  # fmt: skip
        return names.get(self.sex or self.relationship, _("合計"))

    @property
    def targeted(self) -> int:
        """特定保健指導の対象者: 積極的支援 and 動機付け支援."""
        return sum(self.levels.get(level, 0) for level in GUIDANCE_TARGETED)

    @property
    def targeted_share(self) -> float | None:
        return round(100 * self.targeted / self.examined, 1) if self.examined else None

    @property
    def started(self) -> int:
        """利用者: the targeted whose 特定保健指導 began."""
        return sum(self.started_by_level.values())

    @property
    def completed(self) -> int:
        """終了者: the targeted whose 実績評価 was held."""
        return sum(self.completed_by_level.values())

    @property
    def completion_rate(self) -> float | None:
        """特定保健指導の実施率 as the 法定報告 gives it: 終了者 over 対象者, in percent (None without targets)."""
        return round(100 * self.completed / self.targeted, 1) if self.targeted else None

    def count(self, chosen: _Chosen) -> None:
        self.examined += 1
        self.levels[chosen.level] = self.levels.get(chosen.level, 0) + 1
        if chosen.metabolic in METABOLIC_COUNTED:
            self.metabolic[chosen.metabolic] = self.metabolic.get(chosen.metabolic, 0) + 1
        self.medicated += chosen.medicated
        if chosen.level in GUIDANCE_TARGETED and chosen.support is not None:
            self.started_by_level[chosen.level] = self.started_by_level.get(chosen.level, 0) + 1
            if chosen.support.status == GuidanceSupport.Status.COMPLETED:
                self.completed_by_level[chosen.level] = self.completed_by_level.get(chosen.level, 0) + 1


@dataclass(frozen=True)
class GuidanceSummary:
    fiscal_year: int | None
    rows: list[GuidanceRow]  # the age bands, 男性, 女性, 本人, 家族, then everyone
    years: list[int] = field(default_factory=list)
    unknown_age: int = 0  # people in scope whose birth date is not on file: not counted anywhere
    asked_for: int | None = None  # a year asked for that has nothing to count (another one is shown)
    as_of: dt.date | None = None  # the roster as of this day decides who was insured
    by_sex: list[tuple[GuidanceRow, GuidanceRow]] = field(default_factory=list)  # (men, women) per band, then all

    @property
    def year_end(self) -> dt.date | None:
        return _year_end(self.fiscal_year) if self.fiscal_year else None

    @property
    def in_progress(self) -> bool:
        """The year shown has not ended: its 受診者 and 未受診者 are counts so far."""
        return bool(self.as_of and self.year_end and self.as_of <= self.year_end)


class _Chosen(NamedTuple):
    """The checkup a person due in the year is counted by, as read for the summary."""

    rank: tuple  # (a 特定健診, exam date, id): the highest is counted
    level: str  # its newest judgement's 保健指導 level, or 未判定
    metabolic: str
    medicated: bool
    record_id: int
    exam_date: dt.date
    support: GuidanceSupport | None = None  # the person's 特定保健指導 after a checkup of that year, as it stands


@dataclass(frozen=True)
class _Due:
    """Who was due a 特定健診 in a fiscal year (in the user's scope) and the checkup each examined one counts by."""

    fiscal_year: int
    years: list[int]
    asked_for: int | None
    today: dt.date
    people: dict[int, tuple[int, str, str]]  # member → (age at the year's end, sex, relationship)
    chosen: dict[int, _Chosen]  # member → the checkup they count by
    unknown_age: int


def _due(user, fiscal_year: int | None) -> _Due:
    from checkups.services import age_in_fiscal_year, fiscal_year_of
    from healthapp.crypto.fields import open_row

    records = _view_scope(user)
    today = timezone.localdate()
    checked = set(records.order_by().values_list("fiscal_year", flat=True).distinct())
    years = sorted({fiscal_year_of(today), *checked}, reverse=True)  # this year too, to follow it as it fills
    latest = max(checked) if checked else years[0]
    asked_for = None
    if fiscal_year is None:
        fiscal_year = latest
    elif fiscal_year not in years:
        asked_for, fiscal_year = fiscal_year, latest
    year_start, year_end = dt.date(fiscal_year, 4, 1), _year_end(fiscal_year)
    members = policy.scope(user, Perm.CHECKUP_VIEW, Member.objects.all()).exclude(user_id=user.pk)
    members = members.filter(
        Q(qualification_start__isnull=True) | Q(qualification_start__lte=year_start),
        Q(qualification_end__gt=year_end)
        | Q(qualification_end__isnull=True) & (Q(is_active=True) | Q(inactive_since__gt=year_end)),
    )
    fields = [Member._meta.get_field(name) for name in ("birth_date", "sex")]
    tenant_id = user.tenant_id
    people: dict[int, tuple[int, str, str]] = {}
    unknown_age = 0
    for pk, uid, relationship, birth, sex in members.values_list("pk", "uid", "relationship", "birth_date", "sex"):
        if not isinstance(birth, bytes):
            unknown_age += 1
            continue
        sealed = [(f, value) for f, value in zip(fields, (birth, sex), strict=True) if isinstance(value, bytes)]
        opened = open_row(tenant_id, uid.bytes, sealed)
        age = age_in_fiscal_year(opened[0], fiscal_year)
        if 40 <= age <= 74:
            people[pk] = (age, opened[1] if len(opened) > 1 else "", relationship)
    chosen: dict[int, _Chosen] = {}
    for member_id, program, exam_date, pk, answers, level, metabolic in (
        records.filter(fiscal_year=fiscal_year)  # the same scope as the people; matched below, not by a list of ids
        .annotate(level=_newest(Judgement, "judged_at", "guidance_level"),
                  metabolic=_newest(Judgement, "judged_at", "metabolic_syndrome"))
        .values_list("member_id", "program", "exam_date", "pk", "questionnaire", "level", "metabolic")
    ):  # fmt: skip
        if member_id not in people:
            continue  # not due that year (age, coverage) or no birth date on file
        rank = (program == CheckupRecord.Program.SPECIFIC, exam_date, pk)
        if member_id not in chosen or rank > chosen[member_id].rank:
            medicated = any((answers or {}).get(answer) for answer in MEDICATION_ANSWERS)
            chosen[member_id] = _Chosen(rank, level or NOT_JUDGED, metabolic or "", medicated, pk, exam_date)
    # A person's 特定保健指導 of the year is recorded on one of their checkups of the year (the service refuses a
    # second one): the counted checkup's if it has one, else the newest on another.
    by_member: dict[int, list[GuidanceSupport]] = {}
    for support in guidance_current_by_record(records.filter(fiscal_year=fiscal_year)).values():
        by_member.setdefault(support.record.member_id, []).append(support)
    for member_id, supports in by_member.items():
        if member_id in chosen:
            counted = chosen[member_id].record_id
            support = max(supports, key=lambda s: (s.record_id == counted, s.recorded_at, s.pk))
            chosen[member_id] = chosen[member_id]._replace(support=support)
    return _Due(fiscal_year, years, asked_for, today, people, chosen, unknown_age)


def guidance_summary(*, user, fiscal_year: int | None = None) -> GuidanceSummary:
    """特定健診の受診率 and 特定保健指導の階層化 of one fiscal year (the latest with checkups in scope when none,
    or one that is neither that nor the current year, is asked for), over the people whose results the user may
    read (checkup.view scope, not themself), as the MHLW's 法定報告 counts them: 対象者 are insured on 1 April (no
    資格取得日 after it) and through the year (no 資格喪失日 before its end; an entry turned off without one counts
    in the years before that day) and 40-74 at its end (年度末年齢); 受診者 are those of them with a checkup that
    year. Each person is counted once, by their 特定健診 of the year if they had one, else their latest checkup,
    read by its newest judgement (未判定 while there is none). Aggregates of what the user can read person by
    person, so nothing is suppressed."""
    due = _due(user, fiscal_year)
    bands = [GuidanceRow(ages=band) for band in GUIDANCE_AGE_BANDS]
    sexes = (Member.Sex.MALE, Member.Sex.FEMALE)
    by_sex = {sex: GuidanceRow(sex=sex) for sex in sexes}
    # The 法定報告's own table: each age band for men and for women.
    band_sex = {
        (at, sex): GuidanceRow(ages=band, sex=sex) for at, band in enumerate(GUIDANCE_AGE_BANDS) for sex in sexes
    }
    by_relationship = {kind: GuidanceRow(relationship=kind) for kind in Member.Relationship.values}
    everyone = GuidanceRow()
    for member_id, (age, sex, relationship) in due.people.items():
        band = (age - 40) // 5
        rows = [bands[band], everyone, by_relationship[relationship]]
        if sex in by_sex:
            rows += [by_sex[sex], band_sex[band, sex]]
        for row in rows:
            row.eligible += 1
            if member_id in due.chosen:
                row.count(due.chosen[member_id])
    return GuidanceSummary(
        due.fiscal_year, [*bands, *by_sex.values(), *by_relationship.values(), everyone], due.years,
        due.unknown_age, due.asked_for, due.today,
        [(band_sex[at, sexes[0]], band_sex[at, sexes[1]]) for at in range(len(GUIDANCE_AGE_BANDS))]
        + [(by_sex[sexes[0]], by_sex[sexes[1]])],
    )  # fmt: skip


@dataclass(frozen=True)
class UnexaminedEntry:
    member: Member
    age: int  # at the fiscal year's end


@dataclass(frozen=True)
class Unexamined:
    fiscal_year: int
    years: list[int]
    page: Page  # of UnexaminedEntry, oldest first (the order a 保健師 calls them in makes no difference here)
    asked_for: int | None = None
    as_of: dt.date | None = None

    year_end = GuidanceSummary.year_end
    in_progress = GuidanceSummary.in_progress


def unexamined(*, user, fiscal_year: int | None = None, page: int | str | None = 1) -> Unexamined:
    """未受診者: the people due a 特定健診 in the fiscal year (as ``guidance_summary`` counts them) with no checkup
    in it, a page at a time, for 受診勧奨: by age at the year's end, oldest first, then roster order."""
    due = _due(user, fiscal_year)
    missing = sorted((pk for pk in due.people if pk not in due.chosen), key=lambda pk: (-due.people[pk][0], pk))
    found = Paginator(missing, PAGE_SIZE).get_page(page)
    loaded = Member.objects.select_related("office", "department").in_bulk(list(found.object_list))
    found.object_list = [UnexaminedEntry(loaded[pk], due.people[pk][0]) for pk in found.object_list if pk in loaded]
    return Unexamined(due.fiscal_year, due.years, found, due.asked_for, due.today)


GUIDANCE_STATUS_FILTERS = {
    "none": gettext_lazy("未実施"),
    GuidanceSupport.Status.IN_PROGRESS: GuidanceSupport.Status.IN_PROGRESS.label,
    GuidanceSupport.Status.COMPLETED: GuidanceSupport.Status.COMPLETED.label,
    GuidanceSupport.Status.DROPPED: GuidanceSupport.Status.DROPPED.label,
}


@dataclass(frozen=True)
class GuidanceTarget:
    member: Member
    age: int  # at the fiscal year's end
    level: str  # 積極的支援 / 動機付け支援
    record_id: int  # the checkup its 特定保健指導 is recorded on
    exam_date: dt.date
    support: GuidanceSupport | None  # as it stands; None: 未実施

    @property
    def evaluation_due(self) -> bool:
        """Under way, and 3 months have passed since the 初回面接: the 実績評価 may be held now."""
        support = self.support
        return bool(
            support
            and support.status == GuidanceSupport.Status.IN_PROGRESS
            and guidance_evaluation_from(support.started_on) <= timezone.localdate()
        )


@dataclass(frozen=True)
class GuidanceTargets:
    fiscal_year: int
    years: list[int]
    page: Page  # of GuidanceTarget
    status: str  # the filter applied ("" for all)
    counts: dict[str, int]  # status filter → people (before the filter)
    asked_for: int | None = None
    as_of: dt.date | None = None

    year_end = GuidanceSummary.year_end
    in_progress = GuidanceSummary.in_progress

    @property
    def total(self) -> int:
        """Every target of the year, whatever their status."""
        return sum(self.counts.values())


def guidance_targets(
    *, user, fiscal_year: int | None = None, status: str = "", page: int | str | None = 1, everyone: bool = False
) -> GuidanceTargets:
    """特定保健指導の対象者 of a fiscal year (the people ``guidance_summary`` counts as 積極的支援 or 動機付け支援)
    with their 特定保健指導 as it stands, narrowed to one state (``GUIDANCE_STATUS_FILTERS``; anything else
    narrows nothing), a page at a time (``everyone``: all on one page, for a download): the earliest checkups
    first, as they have waited longest."""
    due = _due(user, fiscal_year)
    targeted = [(pk, chosen) for pk, chosen in due.chosen.items() if chosen.level in GUIDANCE_TARGETED]

    def state(chosen: _Chosen) -> str:
        return chosen.support.status if chosen.support else "none"

    counts = {key: 0 for key in GUIDANCE_STATUS_FILTERS}
    for _pk, chosen in targeted:
        counts[state(chosen)] += 1
    if status in GUIDANCE_STATUS_FILTERS:
        targeted = [(pk, chosen) for pk, chosen in targeted if state(chosen) == status]
    else:
        status = ""
    targeted.sort(key=lambda entry: (entry[1].exam_date, entry[0]))
    found = Paginator(targeted, max(len(targeted), 1) if everyone else PAGE_SIZE).get_page(1 if everyone else page)
    loaded = Member.objects.select_related("office", "department").in_bulk([pk for pk, _c in found.object_list])
    found.object_list = [
        GuidanceTarget(
            loaded[pk],
            due.people[pk][0],
            chosen.level,
            chosen.support.record_id if chosen.support else chosen.record_id,
            chosen.exam_date,
            chosen.support,
        )
        for pk, chosen in found.object_list
        if pk in loaded
    ]
    return GuidanceTargets(due.fiscal_year, due.years, found, status, counts, due.asked_for, due.today)


@dataclass(frozen=True)
class GuidanceRecord:
    record: CheckupRecord  # with its member
    level: str  # the newest judgement's 保健指導 level ("" before any judgement)
    current: GuidanceSupport | None
    history: list[GuidanceSupport]  # every entry, newest first
    may_record: bool  # guidance.record for this person
    elsewhere: GuidanceSupport | None = None  # the person's guidance of the year, recorded on another checkup

    @property
    def evaluation_from(self) -> dt.date | None:
        return guidance_evaluation_from(self.current.started_on) if self.current else None

    @property
    def open_to_guidance(self) -> bool:
        """A target of 特定保健指導 by its judgement, or one whose guidance is under way (a re-judging does not
        take back the support given): what the form may record."""
        return (self.level in GUIDANCE_TARGETED or self.current is not None) and self.elsewhere is None


def guidance_record(*, user, record_id: int) -> GuidanceRecord:
    """One checkup's 特定保健指導: the record in the user's checkup.view scope (not their own; else a 404), its
    level, the guidance as it stands and every entry made, and whether the user may record it."""
    record = (
        _view_scope(user)
        .defer("results")
        .select_related("member", "member__office", "member__department")
        .filter(pk=record_id)
        .first()
    )
    if record is None:
        raise Http404
    history = list(record.guidance_supports.select_related("recorded_by").order_by("-recorded_at", "-pk"))
    current = _standing(history[0] if history else None)
    may_record = policy.can(user, Perm.GUIDANCE_RECORD, record.member)
    return GuidanceRecord(record, guidance_level_of(record), current, history, may_record, guidance_elsewhere(record))
