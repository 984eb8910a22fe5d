"""Checkup records, their results and their judgements.

Health data links to the roster entry by id only (``member``): no name or other identity is stored
with it. Judgements are never overwritten: judging again (e.g. under a new criteria version) adds a row.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from checkups import items
from healthapp.crypto.fields import EncryptedTextField
from tenants.models import SameTenantForeignKey, Tenant, TenantScopedModel

# Index-free tenant key for the import's big tables: their composite indexes start with the tenant (or the
# rows are reached only through their record), and every index costs each of an import's inserts.
_TENANT_NO_INDEX = {"on_delete": models.PROTECT, "related_name": "+", "editable": False, "db_index": False}


class CriteriaSet(models.Model):
    """A versioned set of judgement criteria (one uniform standard for every tenant), shipped as data
    (checkups/criteria/*.json) and corrected by operators as new versions, never edited in place."""

    name = models.CharField(_("判定基準の名前"), max_length=100)
    version = models.PositiveIntegerField(_("版"))
    title = models.CharField(_("表題"), max_length=200)
    effective_from = models.DateField(_("適用開始日"))
    data = models.JSONField(_("判定基準（JSON）"))
    is_active = models.BooleanField(_("有効"), default=True)  # new judgements use the newest active version
    created_at = models.DateTimeField(_("登録日時"), auto_now_add=True)

    class Meta:
        verbose_name = _("判定基準")
        verbose_name_plural = _("判定基準")
        constraints = [models.UniqueConstraint(fields=["name", "version"], name="criteriaset_unique_version")]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class CheckupRecord(TenantScopedModel):
    class Program(models.TextChoices):
        REGULAR = "regular", _("定期健診")
        SPECIFIC = "specific", _("特定健診")
        DOCK = "dock", _("人間ドック")
        HIRING = "hiring", _("雇入時健診")

    # The same-tenant key to the member, (tenant, member) → the member's (tenant, id), proves the tenant;
    # the unique (tenant, member, exam_date, program) index serves that key.
    tenant = models.ForeignKey(Tenant, db_constraint=False, **_TENANT_NO_INDEX)
    member = SameTenantForeignKey("accounts.Member", on_delete=models.PROTECT, related_name="checkups", db_index=False)
    exam_date = models.DateField(_("受診日"))
    fiscal_year = models.PositiveSmallIntegerField(_("年度"))
    program = models.CharField(_("健診種別"), max_length=10, choices=Program.choices)
    institution = models.CharField(_("健診機関"), max_length=100, blank=True)
    questionnaire = models.JSONField(_("問診"), default=dict, blank=True)  # medication, smoking, fasting…
    # The results, one entry per catalogue item (``result_json``): in the record, not a row per item. An
    # exam's results are read and written together, and an import of 100,000 exams wrote 1.8 M rows
    # with an index entry and a foreign-key check each.
    results = models.JSONField(_("検査結果"), default=dict, blank=True)
    source = models.CharField(max_length=20, default="manual")  # csv, mhlw_xml, manual
    source_sha256 = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("健診記録")
        verbose_name_plural = _("健診記録")
        # (tenant, member, exam_date…) is the unique constraint's index: no second index of its prefix.
        indexes = [models.Index(fields=["tenant", "fiscal_year"])]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "member", "exam_date", "program"], name="checkup_unique_exam")
        ]

    def __str__(self) -> str:
        return f"CheckupRecord #{self.pk}"

    @property
    def results_in_order(self) -> list[Result]:
        """The results in the catalogue's order (身長, 体重, BMI, …), however they were stored."""
        position = {key: at for at, key in enumerate(items.load().items)}
        found = [Result.of(item, data) for item, data in (self.results or {}).items()]
        return sorted(found, key=lambda r: (position.get(r.item, len(position)), r.item))

    def result_values(self) -> dict[str, Decimal]:
        """Item → value of the results that have one (what judging reads)."""
        return {
            item: Decimal(data["value"]) for item, data in (self.results or {}).items() if data.get("value") is not None
        }


_MILLI = Decimal("0.001")
RESULT_DETAILS = ("text", "unit_as_given", "code", "interpretation")


def value_text(value: Decimal) -> str:
    """A result value as stored: exact decimal text with three places (what numeric(9,3) kept), so that
    the same value always reads the same text and a re-import compares texts, not numbers."""
    return format(value.quantize(_MILLI, ROUND_HALF_UP), "f")


def result_json(value: Decimal | None, unit: str = "", **details: str) -> dict[str, Any]:
    """One stored result: its value (``value_text``, or None for a free-text result), the normalised unit,
    and, when the source gave them, ``text``, ``unit_as_given``, ``code`` (JLAC10-based) and
    ``interpretation`` (H / N / L); empty details are left out."""
    data: dict[str, Any] = {"value": None if value is None else value_text(value), "unit": unit}
    for name in RESULT_DETAILS:
        if details.get(name):
            data[name] = details[name]
    return data


def correction_results(results: dict[str, dict]) -> list[dict]:
    """A record's results in the form its corrections keep them: a list in item order, each with its
    item, value (exact text or None) and every detail (empty when the source gave none)."""
    kept = []
    for item in sorted(results):
        data = results[item]
        kept.append({"item": item, "value": data.get("value"), "unit": data.get("unit") or "",
                     **{name: data.get(name) or "" for name in RESULT_DETAILS}})  # fmt: skip
    return kept


# The interpretation flag a checkup provider put on a result (HL7 ObservationInterpretation), in words.
_INTERPRETATIONS = {
    "H": _("高値"), "HH": _("著しい高値"), "L": _("低値"), "LL": _("著しい低値"), "A": _("異常"), "AA": _("著しい異常"),
    "N": _("基準範囲内"),
}  # fmt: skip


def interpretation_label(code: str | None) -> str:
    """H → 高値; a code we do not know, as given."""
    return str(_INTERPRETATIONS.get(code or "", code or ""))


@dataclass(frozen=True)
class Result:
    """One result of a record, as read from it."""

    item: str  # our catalogue key, e.g. "hba1c"
    value: Decimal | None
    unit: str = ""  # normalised
    text: str = ""  # coded or free-text results
    unit_as_given: str = ""
    code: str = ""  # the JLAC10-based code it came with
    interpretation: str = ""  # H / N / L from the source

    @classmethod
    def of(cls, item: str, data: dict[str, Any]) -> Result:
        value = data.get("value")
        details = {name: data.get(name) or "" for name in RESULT_DETAILS}
        return cls(item, None if value is None else Decimal(value), data.get("unit") or "", **details)

    @property
    def display(self) -> str:
        """The result as a person reads it: 5.8, not 5.800; a coded answer (尿糖) as −/±, not its code."""
        return items.load().display(self.item, self.value, self.text)

    @property
    def converted_from(self) -> str:
        """ "JDS 5.2" for a value the import converted from an old scale's code (HbA1c under 3D045…, +0.4 %):
        the stored code says which, the catalogue by how much; "" for a value as given."""
        if self.value is None or not self.code:
            return ""
        catalogue = items.load()
        legacy = catalogue.lookup(self.code)
        if not isinstance(legacy, items.Legacy) or legacy.item != self.item:
            return ""
        return f"{legacy.scale} {catalogue.display(self.item, self.value - legacy.offset)}"


class CheckupCorrection(TenantScopedModel):
    """訂正履歴: what a record held (results and record fields) before a corrected file or a new save
    replaced it. Written only when something changed; the newest correction of a record is the state just
    before the current one. Judgements made before it stay too, so every old grade can be read beside
    the values it was given on."""

    record = SameTenantForeignKey(CheckupRecord, on_delete=models.CASCADE, related_name="corrections")
    # [{"item", "value" (decimal as text or null), "text", "unit", "unit_as_given", "code", "interpretation"}]
    results = models.JSONField(default=list)
    institution = models.CharField(max_length=100, blank=True)
    questionnaire = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=20, blank=True)
    source_sha256 = models.CharField(max_length=64, blank=True)  # the file the replaced values came from
    job = SameTenantForeignKey("healthapp.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    corrected_by = SameTenantForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    corrected_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("健診結果の訂正履歴")
        verbose_name_plural = _("健診結果の訂正履歴")
        indexes = [models.Index(fields=["tenant", "record", "-corrected_at"])]

    def __str__(self) -> str:
        return f"CheckupCorrection #{self.pk}"


class Judgement(TenantScopedModel):
    # No key of its own to the tenant: the same-tenant key to the record, (tenant, record) → the record's
    # (tenant, id), proves the tenant too; the (tenant, record, -judged_at) index serves that key.
    tenant = models.ForeignKey(Tenant, db_constraint=False, **_TENANT_NO_INDEX)
    record = SameTenantForeignKey(CheckupRecord, on_delete=models.CASCADE, related_name="judgements", db_index=False)
    criteria = models.ForeignKey(CriteriaSet, on_delete=models.PROTECT, related_name="+")
    grades = models.JSONField(default=dict)
    overall = models.CharField(max_length=1, blank=True)
    mhlw = models.JSONField(default=dict)
    metabolic_syndrome = models.CharField(max_length=10, blank=True)
    guidance_level = models.CharField(max_length=10, blank=True)
    judged_at = models.DateTimeField(auto_now_add=True)
    judged_by = SameTenantForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")

    class Meta:
        indexes = [models.Index(fields=["tenant", "record", "-judged_at"])]

    def __str__(self) -> str:
        return f"Judgement #{self.pk}"


class PhysicianOpinion(TenantScopedModel):
    """就業判定 (Industrial Safety and Health Act art. 66-4): the physician's opinion on a checkup,
    signed with their identity and time. An edit adds a row; the newest row is the current opinion."""

    class Fitness(models.TextChoices):
        NORMAL = "normal", _("通常勤務")
        RESTRICTED = "restricted", _("就業制限")
        LEAVE = "leave", _("要休業")

    class FollowUp(models.TextChoices):
        NONE = "none", _("なし")
        RECHECK = "recheck", _("再検査")
        DETAILED = "detailed", _("精密検査")
        CONSULT = "consult", _("受診勧奨")

    RESTRICTIONS = [
        ("shorter_hours", _("労働時間の短縮")),
        ("no_overtime", _("時間外労働の制限")),
        ("no_business_trips", _("出張の制限")),
        ("lighter_work", _("作業の転換・軽減")),
        ("job_change", _("就業場所の変更")),
        ("fewer_night_shifts", _("深夜業の回数の減少")),
    ]

    record = SameTenantForeignKey(CheckupRecord, on_delete=models.CASCADE, related_name="opinions")
    # In the associated data of the sealed opinion: an opinion copied onto another record's row does not open.
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    fitness = models.CharField(_("就業判定"), max_length=12, choices=Fitness.choices)
    restrictions = models.JSONField(_("就業制限の内容"), default=list, blank=True)
    follow_up = models.CharField(_("事後措置"), max_length=10, choices=FollowUp.choices, default=FollowUp.NONE)
    # The physician's own words may name people or conditions: sealed like the roster's personal fields, so
    # crypto-shredding a tenant leaves them unreadable too (results are pseudonymised, this is free text).
    opinion = EncryptedTextField(_("意見"), null=True, default="", blank=True)
    signed_by = SameTenantForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    signed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("就業判定")
        verbose_name_plural = _("就業判定")
        indexes = [models.Index(fields=["tenant", "record", "-signed_at"])]

    def __str__(self) -> str:
        return f"PhysicianOpinion #{self.pk}"

    @classmethod
    def restrictions_in_order(cls, codes: list[str]) -> list[str]:
        """``codes`` in the order the form lists them (not alphabetically); an unknown code last."""
        position = {code: at for at, (code, _label) in enumerate(cls.RESTRICTIONS)}
        return sorted(codes, key=lambda code: (position.get(code, len(position)), code))

    @property
    def restriction_labels(self) -> list[str]:
        """The restrictions as words (時間外労働の制限), not their stored codes, in the form's order; an
        unknown code as is."""
        labels = dict(self.RESTRICTIONS)
        return [str(labels.get(code, code)) for code in self.restrictions_in_order(self.restrictions or [])]


class FollowUpVisit(TenantScopedModel):
    """事後措置の実施状況: that the person saw a doctor for the follow-up an opinion asked for. Append-only:
    a correction or an undo adds a row, and the newest row of a record is its current state."""

    class Status(models.TextChoices):
        DONE = "done", _("受診済み")
        UNDONE = "undone", _("未受診")  # an undo of an earlier "done"

    record = SameTenantForeignKey(CheckupRecord, on_delete=models.CASCADE, related_name="follow_up_visits")
    opinion = SameTenantForeignKey(PhysicianOpinion, on_delete=models.PROTECT, related_name="+")  # the one in force
    status = models.CharField(_("受診状況"), max_length=10, choices=Status.choices)
    visited_on = models.DateField(_("受診日"), null=True, blank=True)
    by_self = models.BooleanField(default=False)  # reported by the person themself
    recorded_by = SameTenantForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("事後措置の実施状況")
        verbose_name_plural = _("事後措置の実施状況")
        indexes = [models.Index(fields=["tenant", "record", "-recorded_at"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status="undone") | models.Q(visited_on__isnull=False),
                name="followupvisit_done_has_date",
            )
        ]

    def __str__(self) -> str:
        return f"FollowUpVisit #{self.pk}"


class GuidanceSupport(TenantScopedModel):
    """特定保健指導の実施記録: the state of one person's 特定保健指導 after the checkup that made them a target.
    Append-only: every save adds a row with the whole state, the newest row of a record is its current
    state, and a mistaken entry is taken back by a ``withdrawn`` row (the earlier ones stay)."""

    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress", _("実施中")  # 初回面接 held, 実績評価 not yet
        COMPLETED = "completed", _("終了")  # 実績評価 held: counts as 終了者 in the 法定報告
        DROPPED = "dropped", _("途中終了")  # started, then ended before the evaluation (脱落)
        WITHDRAWN = "withdrawn", _("取消")  # the earlier entry was a mistake: back to 未実施

    class Method(models.TextChoices):
        INDIVIDUAL = "individual", _("個別支援")
        GROUP = "group", _("グループ支援")
        REMOTE = "remote", _("ICT・遠隔")

    record = SameTenantForeignKey(CheckupRecord, on_delete=models.CASCADE, related_name="guidance_supports")
    level = models.CharField(_("支援の区分"), max_length=10)  # 積極的支援 / 動機付け支援, as judged at the time
    status = models.CharField(_("実施状況"), max_length=12, choices=Status.choices)
    started_on = models.DateField(_("初回面接日"), null=True, blank=True)
    method = models.CharField(_("初回面接の形態"), max_length=10, choices=Method.choices, blank=True)
    ended_on = models.DateField(_("実績評価日・終了日"), null=True, blank=True)
    goal_met = models.BooleanField(_("腹囲2cm・体重2kg減の達成"), null=True, blank=True)  # None: not recorded
    recorded_by = SameTenantForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("特定保健指導の実施記録")
        verbose_name_plural = _("特定保健指導の実施記録")
        indexes = [models.Index(fields=["tenant", "record", "-recorded_at"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status="withdrawn") | models.Q(started_on__isnull=False),
                name="guidancesupport_started",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["in_progress", "withdrawn"]) | models.Q(ended_on__isnull=False),
                name="guidancesupport_ended",
            ),
        ]

    def __str__(self) -> str:
        return f"GuidanceSupport #{self.pk}"


class CheckupCsvMapping(TenantScopedModel):
    """How one checkup provider's CSV reads: ``mapping`` is {column header: item key or identity field}
    (``employee_number``, ``exam_date``, ``program``, ``institution``, questionnaire keys, or a catalogue item)."""

    provider = models.CharField(_("健診機関名"), max_length=100)
    mapping = models.JSONField(_("列の対応"), default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("健診CSVの列対応")
        verbose_name_plural = _("健診CSVの列対応")
        constraints = [models.UniqueConstraint(fields=["tenant", "provider"], name="checkupcsvmapping_unique_provider")]

    def __str__(self) -> str:
        return f"CheckupCsvMapping #{self.pk}"


class GradeSnapshot(TenantScopedModel):
    """The overall-grade counts of one group (office, department) for one fiscal year as 健診の集計 last
    showed them, shown again until enough people have changed (checkups.disclosure): otherwise the page read
    before and after one person's checkup arrives would give that person's grade away, however large the
    group."""

    fiscal_year = models.PositiveSmallIntegerField(_("年度"))
    group = models.CharField(max_length=41)  # "office id:department id", either empty for none
    people = models.PositiveIntegerField()
    grades = models.JSONField(default=dict)  # grade → people
    # member id → what a viewer sees of them (grade class, counted record and judgement ids): who changed
    members = models.JSONField(default=dict)
    # grade classes ("AB", "CDE") shown as their total for the rest of the year: once shown whole because
    # one grade held all of them, a later breakdown would tell which grade that was
    merged = models.JSONField(default=list)
    published_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "fiscal_year", "group"], name="gradesnapshot_unique_group")
        ]

    def __str__(self) -> str:
        return f"GradeSnapshot #{self.pk}"
