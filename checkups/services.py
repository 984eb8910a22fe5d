"""Writing checkup records and judging them."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from django.db import transaction
from django.db.models import Max, OuterRef, Q, Subquery
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

import audit
from accounts import policy
from accounts.labels import Perm
from accounts.models import Member
from checkups import criteria as criteria_data
from checkups import items, selectors
from checkups.judgement import judge
from checkups.models import (
    CheckupCorrection,
    CheckupRecord,
    CriteriaSet,
    FollowUpVisit,
    GuidanceSupport,
    Judgement,
    PhysicianOpinion,
    correction_results,
    result_json,
)
from checkups.stratification import Checkup, metabolic_syndrome, stratify
from healthapp.errors import AppError
from healthapp.models import Job
from tenants.context import tenant_context
from tenants.models import Tenant

GRADES_SET = "uniform_grades_v1"
GUIDANCE_SET = "specific_guidance_fy2024"
MEDICATIONS = {"medication_bp": "bp", "medication_glucose": "glucose", "medication_lipid": "lipid"}


def fiscal_year_of(day: dt.date) -> int:
    """Japanese fiscal year: April to March."""
    return day.year if day.month >= 4 else day.year - 1


def age_on(birth: dt.date, day: dt.date) -> int:
    """Full years of age on ``day``."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def age_in_fiscal_year(birth: dt.date, fiscal_year: int) -> int:
    """The age reached by the end of the fiscal year (年度末年齢), as the guidance rules count it. By law
    (年齢計算ニ関スル法律, 民法 143 条) an age is reached at the end of the day before the birthday: someone
    born on 1 April reaches it on 31 March, within the fiscal year (FY2024's 40–74 are those born
    1950-04-02 … 1985-04-01). Hence full years on 1 April after the fiscal year."""
    return age_on(birth, dt.date(fiscal_year + 1, 4, 1))


def criteria_current(name: str, *, on: dt.date | None = None) -> CriteriaSet:
    """The newest active version of a criteria set in effect on ``on`` (today): a version an operator
    dated ahead waits for its day. The shipped version 1 if none is stored yet."""
    day = on or timezone.localdate()
    found = CriteriaSet.objects.filter(name=name, is_active=True, effective_from__lte=day).order_by("-version").first()
    if found is None:
        raw = json.loads((criteria_data.CRITERIA_DIR / f"{name}.json").read_text(encoding="utf-8"))
        found, _ = CriteriaSet.objects.get_or_create(
            name=name, version=1,
            defaults={"title": raw["title"], "effective_from": raw["effective_from"], "data": raw},
        )  # fmt: skip
    return found


@transaction.atomic
def checkup_record_save(
    *,
    member: Member,
    exam_date: dt.date,
    program: str,
    values: dict[str, Decimal | None],
    questionnaire: dict | None = None,
    institution: str = "",
    source: str = "manual",
    source_sha256: str = "",
) -> CheckupRecord:
    """Create or replace the record of ``member``'s exam on ``exam_date``; results are replaced, the
    earlier judgements stay as they were."""
    catalogue = items.load()
    results = {item: result_json(value, catalogue.unit_of(item)) for item, value in values.items() if value is not None}
    stored = CheckupRecord.objects.filter(member=member, exam_date=exam_date, program=program).first()
    if stored is not None and (stored.results, stored.institution, stored.questionnaire) != (
        results,
        institution,
        questionnaire or {},
    ):
        checkup_corrections_keep(record_ids=[stored.pk])
    record, _ = CheckupRecord.objects.update_or_create(
        member=member, exam_date=exam_date, program=program,
        defaults={
            "fiscal_year": fiscal_year_of(exam_date), "institution": institution, "results": results,
            "questionnaire": questionnaire or {}, "source": source, "source_sha256": source_sha256,
        },
    )  # fmt: skip
    return record


def checkup_corrections_keep(*, record_ids: list[int], job: Job | None = None, acting_user=None) -> list[int]:
    """Keep what the records hold now (results and record fields) as one CheckupCorrection each, before
    a correction replaces it: health data is corrected, never overwritten. Returns the corrections' ids."""
    if not record_ids:
        return []
    corrections = [
        CheckupCorrection(
            record_id=pk,
            results=correction_results(results),
            institution=institution,
            questionnaire=questionnaire,
            source=source,
            source_sha256=sha256,
            job=job,
            corrected_by=acting_user,
        )
        for pk, results, institution, questionnaire, source, sha256 in CheckupRecord.objects.filter(pk__in=record_ids)
        .order_by("pk")
        .values_list("pk", "results", "institution", "questionnaire", "source", "source_sha256")
    ]
    CheckupCorrection.objects.bulk_create(corrections)
    kept = [c.pk for c in corrections]
    target = ("job", job.pk) if job is not None else ("checkup", record_ids[0] if len(record_ids) == 1 else None)
    audit.record(
        action="checkup.corrected", target_type=target[0], target_id=target[1],
        details={"records": [c.record_id for c in corrections], "corrections": kept},
        **({"actor": acting_user} if acting_user is not None else {}),
    )  # fmt: skip
    return kept


@transaction.atomic
def checkup_judge(*, record: CheckupRecord, acting_user=None) -> Judgement:
    """Judge a record under the current criteria versions; adds a Judgement (old ones are kept). What is
    judged is what is stored now: a caller's instance from before a correction would judge old values."""
    criteria = JudgingCriteria.current()
    record.refresh_from_db(fields=["results", "questionnaire", "fiscal_year"])
    judgement = _judgement_of(record, criteria, acting_user)
    judgement.save()
    audit.record(
        action="checkup.judged", target_type="checkup", target_id=record.pk,
        details={"judgement": judgement.pk, "criteria": criteria.label}, actor=acting_user,
    )  # fmt: skip
    return judgement


def _judgement_of(record: CheckupRecord, criteria: JudgingCriteria, acting_user) -> Judgement:
    """The (unsaved) judgement of a stored record from its stored results."""
    judgement = judgement_build(record=record, member=record.member, values=record.result_values(), criteria=criteria)
    judgement.judged_by = acting_user
    return judgement


REJUDGE_CHUNK = 500


def checkup_rejudge_pending(*, fiscal_year: int | None = None, everything: bool = False) -> list[int]:
    """Ids of the current tenant's records to judge again: those whose newest judgement was not made under
    the current grading version (or that have none), or with ``everything`` all of them; by fiscal year."""
    records = CheckupRecord.objects.all()
    if fiscal_year is not None:
        records = records.filter(fiscal_year=fiscal_year)
    if not everything:
        current = JudgingCriteria.current().grades_set.pk
        newest = Judgement.objects.filter(record=OuterRef("pk")).order_by("-judged_at", "-pk").values("criteria_id")
        records = records.annotate(judged_under=Subquery(newest[:1])).filter(
            Q(judged_under__isnull=True) | ~Q(judged_under=current)
        )
    return list(records.order_by("pk").values_list("pk", flat=True))


def checkup_rejudge(
    *, tenant: Tenant, record_ids: list[int], acting_user=None, progress: Callable[[int], None] | None = None
) -> int:
    """Judge ``tenant``'s records again under the current criteria versions, each chunk in a transaction
    of its own (an interrupted run is finished by running it again: judged records are no longer
    pending); earlier judgements stay. One audit event per chunk lists the records and their judgements."""
    criteria = JudgingCriteria.current()
    for start in range(0, len(record_ids), REJUDGE_CHUNK):
        with tenant_context(tenant), transaction.atomic():
            records = (
                CheckupRecord.objects.filter(pk__in=record_ids[start : start + REJUDGE_CHUNK])
                .select_related("member")
                .order_by("pk")
            )
            judgements = [_judgement_of(record, criteria, acting_user) for record in records]
            Judgement.objects.bulk_create(judgements)
            audit.record(
                action="checkup.judged", target_type="checkup",
                details={
                    "criteria": criteria.label, "rejudged": True,
                    "records": [j.record_id for j in judgements], "judgements": [j.pk for j in judgements],
                },
                **({"actor": acting_user} if acting_user is not None else {}),
            )  # fmt: skip
        if progress is not None:
            progress(min(start + REJUDGE_CHUNK, len(record_ids)))
    return len(record_ids)


@dataclass(frozen=True)
class JudgingCriteria:
    """The current criteria versions, parsed once (an import judges thousands of records with them)."""

    grades_set: CriteriaSet
    grades: dict
    guidance: dict

    @classmethod
    def current(cls) -> JudgingCriteria:
        grades_set, guidance_set = criteria_current(GRADES_SET), criteria_current(GUIDANCE_SET)
        return cls(grades_set, criteria_data.parse(grades_set.data), criteria_data.parse(guidance_set.data))

    @property
    def label(self) -> str:
        return f"{self.grades_set.name} v{self.grades_set.version}"


class JudgedPerson(Protocol):
    """What judging reads of the person: a Member, or the import's matched roster entry."""

    sex: str
    birth_date: dt.date | None


def judgement_build(
    *, record: CheckupRecord, member: Member, values: dict[str, Decimal], criteria: JudgingCriteria
) -> Judgement:
    """The (unsaved) judgement of ``record`` with these result values."""
    fields = judgement_fields(
        fiscal_year=record.fiscal_year, questionnaire=record.questionnaire, member=member, values=values,
        criteria=criteria,
    )  # fmt: skip
    return Judgement(record=record, criteria=criteria.grades_set, **fields)


def judgement_fields(
    *,
    fiscal_year: int,
    questionnaire: dict | None,
    member: JudgedPerson,
    values: dict[str, Decimal],
    criteria: JudgingCriteria,
) -> dict:
    """Grades, overall grade, MHLW levels, metabolic syndrome and guidance level of one checkup: pure
    apart from reading the member's sex and birth date (the import judges batches with it)."""  # fmt: skip
    answers = questionnaire or {}
    medications = frozenset(kind for key, kind in MEDICATIONS.items() if answers.get(key))
    result = judge(values, criteria.grades, sex=member.sex, medications=medications)
    checkup = _stratification_input(fiscal_year, member, values, answers)
    return {
        "grades": result.grades, "overall": result.overall or "", "mhlw": result.mhlw,
        "metabolic_syndrome": str(metabolic_syndrome(checkup, criteria.guidance)) if checkup else "",
        "guidance_level": stratify(checkup, criteria.guidance).level.label if checkup else "",
    }  # fmt: skip


def _stratification_input(fiscal_year: int, member: JudgedPerson, values: dict, answers: dict) -> Checkup | None:
    if not member.birth_date or member.sex not in {"male", "female"}:
        return None
    hours = answers.get("hours_since_meal")
    return Checkup(
        sex=member.sex,
        age=age_in_fiscal_year(member.birth_date, fiscal_year),
        waist=values.get("waist"),
        bmi=values.get("bmi"),
        systolic=values.get("systolic"),
        diastolic=values.get("diastolic"),
        triglycerides_fasting=values.get("triglycerides_fasting"),
        triglycerides_random=values.get("triglycerides_random"),
        hdl=values.get("hdl"),
        glucose_fasting=values.get("glucose_fasting"),
        glucose_random=values.get("glucose_random"),
        hba1c=values.get("hba1c"),
        hours_since_meal=Decimal(str(hours)) if hours is not None else None,
        on_bp_medication=bool(answers.get("medication_bp")),
        on_glucose_medication=bool(answers.get("medication_glucose")),
        on_lipid_medication=bool(answers.get("medication_lipid")),
        smoker=bool(answers.get("smoker")),
    )


def physician_opinion_check(*, fitness: str, follow_up: str, restrictions: list[str]) -> None:
    """The rules a 就業判定 must meet (AppError otherwise), for the form and the service alike: restriction
    kinds go with 就業制限 only, at least one of them, and nothing is dropped silently."""
    if fitness not in PhysicianOpinion.Fitness.values or follow_up not in PhysicianOpinion.FollowUp.values:
        raise AppError("invalid_opinion", _("就業判定と事後措置を選んでください。"))
    if fitness == PhysicianOpinion.Fitness.RESTRICTED and not restrictions:
        raise AppError("restrictions_missing", _("就業制限の内容を1つ以上選んでください。"))
    if fitness != PhysicianOpinion.Fitness.RESTRICTED and restrictions:
        message = _("就業制限の内容は「就業制限」のときだけ選べます。通常勤務・要休業なら、チェックを外してください。")
        raise AppError("restrictions_not_allowed", message)
    if set(restrictions) - {code for code, _label in PhysicianOpinion.RESTRICTIONS}:
        raise AppError("invalid_restriction", _("就業制限の内容が正しくありません。"))


@transaction.atomic
def physician_opinion_record(
    *, record: CheckupRecord, fitness: str, follow_up: str, opinion: str, restrictions: list[str], acting_user
) -> PhysicianOpinion:
    """Sign a 就業判定 for a record in the physician's checkup.judge scope (an edit adds a new row)."""
    own = record.member.user_id == acting_user.pk
    if own or not selectors.employer(acting_user) or not policy.can(acting_user, Perm.CHECKUP_JUDGE, record.member):
        raise Http404  # their own checkup, an insurer's, or not in scope (see selectors._judge_scope)
    physician_opinion_check(fitness=fitness, follow_up=follow_up, restrictions=restrictions)
    previous = record.opinions.order_by("-signed_at").first()
    signed = PhysicianOpinion(
        record=record, fitness=fitness, restrictions=PhysicianOpinion.restrictions_in_order(restrictions),
        follow_up=follow_up, opinion=opinion.strip(), signed_by=acting_user,
    )  # fmt: skip
    signed.save()
    audit.record(
        action="checkup.opinion_signed", target_type="checkup", target_id=record.pk,
        details={"opinion": signed.pk, "replaces": previous.pk if previous else None}, actor=acting_user,
    )  # fmt: skip
    return signed


# --- 事後措置の実施状況 (follow-up completion) ------------------------------------------------------


def _follow_up_reporter(record: CheckupRecord, acting_user) -> bool:
    """True when the person reports their own follow-up; HR needs checkup.view_conclusion for the
    record's roster entry. Anyone else gets a 404 (the record is not theirs to see)."""
    member = record.member
    if member.user_id is not None and member.user_id == acting_user.pk:
        return True
    if policy.can(acting_user, Perm.CHECKUP_VIEW_CONCLUSION, member):
        return False
    raise Http404


def _opinion_asking_follow_up(record: CheckupRecord) -> PhysicianOpinion:
    current = record.opinions.order_by("-signed_at", "-pk").first()
    if current is None or current.follow_up == PhysicianOpinion.FollowUp.NONE:
        raise AppError("no_follow_up", _("この健診には事後措置の指示がありません。"))
    return current


@transaction.atomic
def follow_up_visit_record(*, record: CheckupRecord, visited_on: dt.date, acting_user) -> FollowUpVisit:
    """Record that the follow-up the current opinion asks for was done on ``visited_on``, by HR in their
    checkup.view_conclusion scope or by the person themself. A correction adds a row (history kept)."""
    by_self = _follow_up_reporter(record, acting_user)
    opinion = _opinion_asking_follow_up(record)
    if visited_on > timezone.localdate():
        raise AppError("visit_in_future", _("受診日に未来の日付は指定できません。"))
    if visited_on < record.exam_date:
        raise AppError("visit_before_exam", _("受診日は健診の受診日以降の日付を指定してください。"))
    previous = record.follow_up_visits.order_by("-recorded_at", "-pk").first()
    visit = FollowUpVisit.objects.create(
        record=record, opinion=opinion, status=FollowUpVisit.Status.DONE, visited_on=visited_on, by_self=by_self,
        recorded_by=acting_user,
    )  # fmt: skip
    audit.record(
        action="checkup.follow_up_recorded", target_type="checkup", target_id=record.pk,
        details={"visit": visit.pk, "replaces": previous.pk if previous else None, "by_self": by_self},
        actor=acting_user,
    )  # fmt: skip
    return visit


@transaction.atomic
def follow_up_visit_undo(*, record: CheckupRecord, acting_user) -> FollowUpVisit:
    """Take back a recorded visit (entered by mistake): adds an "undone" row, the earlier one stays."""
    by_self = _follow_up_reporter(record, acting_user)
    previous = record.follow_up_visits.order_by("-recorded_at", "-pk").first()
    if previous is None or previous.status != FollowUpVisit.Status.DONE:
        raise AppError("nothing_to_undo", _("取り消す受診の記録がありません。"))
    visit = FollowUpVisit.objects.create(
        record=record, opinion=previous.opinion, status=FollowUpVisit.Status.UNDONE, by_self=by_self,
        recorded_by=acting_user,
    )  # fmt: skip
    audit.record(
        action="checkup.follow_up_undone", target_type="checkup", target_id=record.pk,
        details={"visit": visit.pk, "replaces": previous.pk, "by_self": by_self}, actor=acting_user,
    )  # fmt: skip
    return visit


# --- 特定保健指導の実施記録 ---------------------------------------------------------------------------


def _guidance_recorder(record: CheckupRecord, acting_user) -> None:
    """Only a holder of guidance.record for the record's roster entry, never for their own checkup; anyone
    else gets a 404 (the record is not theirs to see or to write)."""
    member = record.member
    if member.user_id is not None and member.user_id == acting_user.pk:
        raise Http404
    if not policy.can(acting_user, Perm.GUIDANCE_RECORD, member):
        raise Http404


def _guidance_lock(record: CheckupRecord) -> None:
    """One writer at a time per person: their guidance of a year may be recorded on any of that year's checkups,
    and a second one must see the first."""
    Member.objects.select_for_update().filter(pk=record.member_id).first()


def _guidance_not_elsewhere(record: CheckupRecord) -> None:
    """There is one 特定保健指導 per person and fiscal year: refused on a second checkup of the year while one
    recorded on another stands (it is continued there)."""
    other = selectors.guidance_elsewhere(record)
    if other is not None:
        raise AppError(
            "guidance_elsewhere",
            _("この人のこの年度の特定保健指導は、別の健診（%(day)s）で記録されています。そちらで記録してください。")
            % {"day": other.record.exam_date.isoformat()},
        )


def _guidance_level(record: CheckupRecord, current: GuidanceSupport | None) -> str:
    """The support level a new entry carries: the record's newest judgement's, when it makes the person a
    target; else that of the guidance already under way (a re-judging does not erase the support given)."""
    newest = selectors.guidance_level_of(record)
    if newest in selectors.GUIDANCE_TARGETED:
        return newest
    if current is not None:
        return current.level
    raise AppError("not_targeted", _("この健診は特定保健指導の対象（積極的支援・動機付け支援）ではありません。"))


def _guidance_dates(record: CheckupRecord, status: str, started_on: dt.date | None, ended_on: dt.date | None) -> None:
    today = timezone.localdate()
    if started_on is None:
        raise AppError("start_required", _("初回面接日を入力してください。"))
    if started_on < record.exam_date:
        raise AppError("start_before_exam", _("初回面接日は健診の受診日以降の日付を指定してください。"))
    if started_on > today:
        raise AppError("start_in_future", _("未来の日付は指定できません。"))
    if ended_on is not None and ended_on > today:
        raise AppError("end_in_future", _("未来の日付は指定できません。"))
    if status == GuidanceSupport.Status.IN_PROGRESS:
        return
    if ended_on is None:
        raise AppError("end_required", _("実績評価日（途中終了の場合は終了日）を入力してください。"))
    earliest = selectors.guidance_evaluation_from(started_on)
    if status == GuidanceSupport.Status.COMPLETED and ended_on < earliest:
        raise AppError(
            "evaluation_too_early",
            _("実績評価日は初回面接日から3か月以上後（%(day)s 以降）の日付を指定してください。")
            % {"day": earliest.isoformat()},
        )
    if ended_on < started_on:
        raise AppError("end_before_start", _("終了日は初回面接日以降の日付を指定してください。"))


@transaction.atomic
def guidance_support_record(
    *,
    record: CheckupRecord,
    acting_user,
    status: str,
    started_on: dt.date | None,
    method: str = "",
    ended_on: dt.date | None = None,
    goal_met: bool | None = None,
) -> GuidanceSupport:
    """Record the state of the person's 特定保健指導 after ``record``: 実施中 from the 初回面接 (its date and
    form), 終了 at the 実績評価 (at least 3 months after the 初回面接, 第4期; with whether 腹囲2cm・体重2kg減 was
    met, when known) or 途中終了. A change adds a row; the earlier ones stay (history)."""
    _guidance_recorder(record, acting_user)
    _guidance_lock(record)
    current = selectors.guidance_current(record)
    if status not in (GuidanceSupport.Status.IN_PROGRESS, GuidanceSupport.Status.COMPLETED,
                      GuidanceSupport.Status.DROPPED):  # fmt: skip
        raise AppError("invalid_status", _("実施状況を選んでください。"))
    if method not in GuidanceSupport.Method.values:
        raise AppError("method_required", _("初回面接の形態を選んでください。"))
    _guidance_not_elsewhere(record)
    level = _guidance_level(record, current)
    if status == GuidanceSupport.Status.IN_PROGRESS and ended_on is not None:
        raise AppError(
            "end_while_in_progress",
            _("実績評価日・終了日を記録するときは、実施状況を「終了」か「途中終了」にしてください。"),
        )
    if status != GuidanceSupport.Status.COMPLETED:
        goal_met = None
    _guidance_dates(record, status, started_on, ended_on)
    state = (level, status, started_on, method, ended_on, goal_met)
    if current is not None and state == (current.level, current.status, current.started_on, current.method,
                                         current.ended_on, current.goal_met):  # fmt: skip
        raise AppError("guidance_unchanged", _("記録されている内容と同じです。"))
    support = GuidanceSupport.objects.create(
        record=record, level=level, status=status, started_on=started_on, method=method, ended_on=ended_on,
        goal_met=goal_met, recorded_by=acting_user,
    )  # fmt: skip
    audit.record(
        action="checkup.guidance_recorded", target_type="checkup", target_id=record.pk,
        details={"support": support.pk, "replaces": current.pk if current else None, "status": status},
        actor=acting_user,
    )  # fmt: skip
    return support


@transaction.atomic
def guidance_support_withdraw(*, record: CheckupRecord, acting_user) -> GuidanceSupport:
    """Take back the recorded 特定保健指導 (entered for the wrong person, say): adds a 取消 row, the person is
    未実施 again, and the earlier rows stay."""
    _guidance_recorder(record, acting_user)
    _guidance_lock(record)
    current = selectors.guidance_current(record)
    if current is None:
        raise AppError("nothing_to_withdraw", _("取り消す特定保健指導の記録がありません。"))
    support = GuidanceSupport.objects.create(
        record=record, level=current.level, status=GuidanceSupport.Status.WITHDRAWN, recorded_by=acting_user
    )
    audit.record(
        action="checkup.guidance_withdrawn", target_type="checkup", target_id=record.pk,
        details={"support": support.pk, "replaces": current.pk}, actor=acting_user,
    )  # fmt: skip
    return support


# --- Criteria versions (operators) ----------------------------------------------------------------


def criteria_version_check(
    *, name: str, title: str, effective_from: dt.date, data: dict, newest: CriteriaSet | None = None
) -> dict:
    """The document a new version of ``name`` would store (the form's name, title and date win over
    the JSON's), checked like the judging reads it; CriteriaError with every problem otherwise."""
    newest = newest or CriteriaSet.objects.filter(name=name).order_by("-version").first()
    if newest is None:
        raise criteria_data.CriteriaError(_("判定基準「%(name)s」はありません。") % {"name": name})
    document = {**data, "name": name, "title": title, "effective_from": effective_from.isoformat()}
    criteria_data.validate(document, like=newest.data)
    return document


@transaction.atomic
def criteria_version_create(
    *, name: str, title: str, effective_from: dt.date, data: dict, acting_user, is_active: bool = True
) -> CriteriaSet:
    """Store corrected criteria as a NEW version of the set ``name`` (version = newest + 1); stored
    versions are never changed, so existing judgements keep the criteria they were made under.

    ``data`` is checked by the same loader the judging uses (criteria.validate); CriteriaError if unusable.
    """
    newest = CriteriaSet.objects.select_for_update().filter(name=name).order_by("-version").first()
    document = criteria_version_check(name=name, title=title, effective_from=effective_from, data=data, newest=newest)
    version = (CriteriaSet.objects.filter(name=name).aggregate(top=Max("version"))["top"] or 0) + 1
    created = CriteriaSet.objects.create(
        name=name, version=version, title=title, effective_from=effective_from, data=document, is_active=is_active
    )
    audit.record(
        action="criteria.version_created", target_type="criteria_set", target_id=created.pk,
        details={"criteria": name, "version": version, "based_on": newest.pk, "active": is_active},
        tenant=None, actor=acting_user,
    )  # fmt: skip
    return created


@transaction.atomic
def criteria_version_set_active(*, criteria_set: CriteriaSet, active: bool, acting_user) -> CriteriaSet:
    """Switch whether a version may be chosen for new judgements; its data and the judgements already
    made under it are left alone."""
    if criteria_set.is_active != active:
        criteria_set.is_active = active
        criteria_set.save(update_fields=["is_active"])
        audit.record(
            action="criteria.version_activated" if active else "criteria.version_deactivated",
            target_type="criteria_set", target_id=criteria_set.pk,
            details={"criteria": criteria_set.name, "version": criteria_set.version}, tenant=None, actor=acting_user,
        )  # fmt: skip
    return criteria_set
