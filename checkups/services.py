"""Writing checkup records and judging them."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from django.db import transaction
from django.http import Http404
from django.utils.translation import gettext as _

import audit
from accounts import policy
from accounts.labels import Perm
from accounts.models import Member
from checkups import criteria as criteria_data
from checkups import items
from checkups.judgement import judge
from checkups.models import CheckupRecord, CheckupResult, CriteriaSet, Judgement, PhysicianOpinion
from checkups.stratification import Checkup, metabolic_syndrome, stratify
from healthapp.errors import AppError

GRADES_SET = "uniform_grades_v1"
GUIDANCE_SET = "specific_guidance_fy2024"
MEDICATIONS = {"medication_bp": "bp", "medication_glucose": "glucose", "medication_lipid": "lipid"}


def fiscal_year_of(day: dt.date) -> int:
    """Japanese fiscal year: April to March."""
    return day.year if day.month >= 4 else day.year - 1


def age_in_fiscal_year(birth: dt.date, fiscal_year: int) -> int:
    """The age reached by the end of the fiscal year (31 March), as the guidance rules count it."""
    end = dt.date(fiscal_year + 1, 3, 31)
    return end.year - birth.year - ((end.month, end.day) < (birth.month, birth.day))


def criteria_current(name: str) -> CriteriaSet:
    """The newest active version of a criteria set; the shipped version 1 if none is stored yet."""
    found = CriteriaSet.objects.filter(name=name, is_active=True).order_by("-version").first()
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
    record, _ = CheckupRecord.objects.update_or_create(
        member=member, exam_date=exam_date, program=program,
        defaults={
            "fiscal_year": fiscal_year_of(exam_date), "institution": institution,
            "questionnaire": questionnaire or {}, "source": source, "source_sha256": source_sha256,
        },
    )  # fmt: skip
    record.results.all().delete()
    catalogue = items.load().items
    CheckupResult.objects.bulk_create(
        [
            CheckupResult(record=record, item=item, value=value, unit=catalogue[item].unit if item in catalogue else "")
            for item, value in values.items()
            if value is not None
        ]
    )
    return record


@transaction.atomic
def checkup_judge(*, record: CheckupRecord, acting_user=None) -> Judgement:
    """Judge a record under the current criteria versions; adds a Judgement (old ones are kept)."""
    grades_set, guidance_set = criteria_current(GRADES_SET), criteria_current(GUIDANCE_SET)
    values = {r.item: r.value for r in record.results.all() if r.value is not None}
    answers = record.questionnaire or {}
    medications = frozenset(kind for key, kind in MEDICATIONS.items() if answers.get(key))
    member = record.member
    result = judge(values, criteria_data.parse(grades_set.data), sex=member.sex, medications=medications)
    checkup = _stratification_input(record, member, values, answers)
    guidance_rules = criteria_data.parse(guidance_set.data)
    judgement = Judgement(
        record=record, criteria=grades_set, grades=result.grades, overall=result.overall or "", mhlw=result.mhlw,
        metabolic_syndrome=str(metabolic_syndrome(checkup, guidance_rules)) if checkup else "",
        guidance_level=stratify(checkup, guidance_rules).level.label if checkup else "",
        judged_by=acting_user,
    )  # fmt: skip
    judgement.save()
    audit.record(
        action="checkup.judged", target_type="checkup", target_id=record.pk,
        details={"judgement": judgement.pk, "criteria": f"{grades_set.name} v{grades_set.version}"},
        actor=acting_user,
    )  # fmt: skip
    return judgement


def _stratification_input(record: CheckupRecord, member: Member, values: dict, answers: dict) -> Checkup | None:
    if not member.birth_date or member.sex not in {"male", "female"}:
        return None
    hours = answers.get("hours_since_meal")
    fasting_tg, random_tg = values.get("triglycerides_fasting"), values.get("triglycerides_random")
    return Checkup(
        sex=member.sex,
        age=age_in_fiscal_year(member.birth_date, record.fiscal_year),
        waist=values.get("waist"),
        bmi=values.get("bmi"),
        systolic=values.get("systolic"),
        diastolic=values.get("diastolic"),
        triglycerides=fasting_tg if fasting_tg is not None else random_tg,
        hdl=values.get("hdl"),
        glucose=values.get("glucose_fasting", values.get("glucose_random")),
        hba1c=values.get("hba1c"),
        hours_since_meal=Decimal(str(hours)) if hours is not None else None,
        on_bp_medication=bool(answers.get("medication_bp")),
        on_glucose_medication=bool(answers.get("medication_glucose")),
        on_lipid_medication=bool(answers.get("medication_lipid")),
        smoker=bool(answers.get("smoker")),
    )


@transaction.atomic
def physician_opinion_record(
    *, record: CheckupRecord, fitness: str, follow_up: str, opinion: str, restrictions: list[str], acting_user
) -> PhysicianOpinion:
    """Sign a 就業判定 for a record in the physician's checkup.judge scope (an edit adds a new row)."""
    if not policy.can(acting_user, Perm.CHECKUP_JUDGE, record.member):
        raise Http404
    if fitness not in PhysicianOpinion.Fitness.values or follow_up not in PhysicianOpinion.FollowUp.values:
        raise AppError("invalid_opinion", _("就業判定と事後措置を選んでください。"))
    allowed = {code for code, _label in PhysicianOpinion.RESTRICTIONS}
    if fitness == PhysicianOpinion.Fitness.RESTRICTED and not restrictions:
        raise AppError("restrictions_missing", _("就業制限の内容を1つ以上選んでください。"))
    if fitness != PhysicianOpinion.Fitness.RESTRICTED:
        restrictions = []
    if set(restrictions) - allowed:
        raise AppError("invalid_restriction", _("就業制限の内容が正しくありません。"))
    previous = record.opinions.order_by("-signed_at").first()
    signed = PhysicianOpinion(
        record=record, fitness=fitness, restrictions=sorted(restrictions), follow_up=follow_up,
        opinion=opinion.strip(), signed_by=acting_user,
    )  # fmt: skip
    signed.save()
    audit.record(
        action="checkup.opinion_signed", target_type="checkup", target_id=record.pk,
        details={"opinion": signed.pk, "replaces": previous.pk if previous else None}, actor=acting_user,
    )  # fmt: skip
    return signed
