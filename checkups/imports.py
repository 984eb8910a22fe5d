"""Checkup import (健診結果の取り込み): the MHLW XML format (one ClinicalDocument or the ZIP bundle) and
provider CSV files read through a per-provider column mapping (``CheckupCsvMapping``).

Built on the generic job machinery (``healthapp.jobs``, ``Job.Kind.CHECKUP``): upload → validate (dry
run, writes only the job) → preview → confirm → apply in chunks on a worker, with progress and an error
report. Every file is read into a list of *entries* (one person's exam each) by the same pure function
in the dry run and in each apply step, so the preview and what is applied cannot drift apart.

Rules:
- Members are found only through blind indexes: XML by insurance card data (記号 + 番号 + sex + birth
  year-month; the relationship is not in the file, so 本人 is tried, then 家族; two hits is an error),
  CSV by employee number.
- An entry with any problem (unmatched person, missing header field, unknown unit, implausible value,
  unreadable answer) is not imported at all: a partial checkup could hide the value that matters.
  Unknown codes in XML are reported as warnings; the rest of the document is imported.
- Re-importing the same data changes nothing (``unchanged``); a corrected file replaces the record's
  results (``checkup_record_save``), earlier judgements stay as history and every written record is
  judged again (``checkup_judge``).
- Errors carry the entry number, the item/column and a reason code: never a value.
"""

from __future__ import annotations

import csv
import io
import logging
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import IO, Any

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

import audit
from accounts.models import Member, User
from accounts.roster_import import FileError, detect_encoding, parse_date
from accounts.selectors import member_get_by_employee_number
from checkups import items as catalogue_module
from checkups.mhlw_xml import ParsedCheckup, ParseError, parse_document, parse_zip
from checkups.models import CheckupCsvMapping, CheckupRecord
from checkups.services import checkup_judge, checkup_record_save
from healthapp import jobs
from healthapp.crypto.blind_index import insurance_card_index
from healthapp.errors import AppError
from healthapp.models import Job
from tenants.context import require_tenant

logger = logging.getLogger(__name__)

SOURCE_XML = "mhlw_xml"
SOURCE_CSV = "csv"
SOURCES = (SOURCE_XML, SOURCE_CSV)
CHUNK_SIZE = 200
DEFAULT_MAX_BYTES = 100 * 2**20

# CSV mapping targets besides catalogue items.
IDENTITY_TARGETS = ("employee_number", "exam_date", "program", "institution")
QUESTION_TARGETS = ("medication_bp", "medication_glucose", "medication_lipid", "smoker", "hours_since_meal")
TARGET_LABELS: dict[str, Any] = {
    "employee_number": gettext_lazy("社員番号"),
    "exam_date": gettext_lazy("受診日"),
    "program": gettext_lazy("健診種別"),
    "institution": gettext_lazy("健診機関"),
    "medication_bp": gettext_lazy("服薬（血圧）"),
    "medication_glucose": gettext_lazy("服薬（血糖）"),
    "medication_lipid": gettext_lazy("服薬（脂質）"),
    "smoker": gettext_lazy("喫煙"),
    "hours_since_meal": gettext_lazy("食後経過時間"),
}
PROGRAM_WORDS = {
    "regular": "regular", "定期健診": "regular", "定期健康診断": "regular", "事業者健診": "regular",
    "specific": "specific", "特定健診": "specific", "特定健康診査": "specific",
    "dock": "dock", "人間ドック": "dock", "ドック": "dock",
    "hiring": "hiring", "雇入時健診": "hiring", "雇入時": "hiring",
}  # fmt: skip
YES_WORDS = {"1", "はい", "有", "あり", "yes", "y", "true", "○", "〇"}
NO_WORDS = {"0", "2", "いいえ", "無", "なし", "no", "n", "false", "×", "3"}
TIMING_HOURS = {"2": "10", "3": "3.5", "4": "0"}  # MHLW 9N141 answer → hours since the last meal
CO_SYMBOLS = {"−": "1", "-": "1", "±": "2", "+": "3", "1+": "3", "++": "4", "2+": "4", "+++": "5", "3+": "5"}

# The mapping of checkups/samples/sample_checkups.csv, offered when an admin creates a mapping.
SAMPLE_MAPPING = {
    "社員番号": "employee_number", "受診日": "exam_date", "健診種別": "program", "健診機関": "institution",
    "身長": "height", "体重": "weight", "BMI": "bmi", "腹囲": "waist", "収縮期血圧": "systolic",
    "拡張期血圧": "diastolic", "中性脂肪": "triglycerides_fasting", "HDL": "hdl", "LDL": "ldl",
    "AST": "ast", "ALT": "alt", "γ-GT": "ggt", "空腹時血糖": "glucose_fasting", "HbA1c": "hba1c",
    "尿糖": "urine_sugar", "尿蛋白": "urine_protein", "服薬_血圧": "medication_bp", "服薬_血糖": "medication_glucose",
    "服薬_脂質": "medication_lipid", "喫煙": "smoker", "食後時間": "hours_since_meal",
}  # fmt: skip

ERROR_MESSAGES: dict[str, Any] = {
    "member_not_found": gettext_lazy("該当する名簿の人が見つかりません。"),
    "member_ambiguous": gettext_lazy("名簿の複数の人に該当するため特定できません。"),
    "identity_missing": gettext_lazy("本人を特定する項目（記号・番号・性別・生年月日、または社員番号）がありません。"),
    "exam_date_missing": gettext_lazy("受診日がありません。"),
    "bad_date": gettext_lazy("日付として読めません。"),
    "bad_program": gettext_lazy("健診種別が正しくありません。"),
    "program_missing": gettext_lazy("健診種別がありません。"),
    "bad_number": gettext_lazy("数値として読めません。"),
    "implausible": gettext_lazy("値が妥当な範囲外です。"),
    "bad_answer": gettext_lazy("回答が正しくありません。"),
    "bad_value": gettext_lazy("値が正しくありません。"),
    "unit_unknown": gettext_lazy("単位が不明です。"),
    "unit_missing": gettext_lazy("単位がありません。"),
    "conflict": gettext_lazy("同じ項目に異なる値があります。"),
    "missing": gettext_lazy("必要な要素がありません。"),
    "no_results": gettext_lazy("取り込める検査結果がありません。"),
    "sex_missing": gettext_lazy(
        "名簿に性別が登録されていないため判定できません。名簿に性別を登録してから取り込んでください。"
    ),
    "duplicate": gettext_lazy("同じ人・同じ受診日の結果がファイル内に重複しています。"),
    "unknown_code": gettext_lazy("不明な項目コードです（この項目は取り込みません）。"),
    "parse_error": gettext_lazy("XML ファイルとして読めません。"),
    "malformed": gettext_lazy("XML ファイルとして読めません。"),
    "dtd_forbidden": gettext_lazy("DTD・外部実体を含む XML は受け付けません。"),
    "wrong_root": gettext_lazy("特定健診の XML（名前空間 urn:hl7-org:v3 の ClinicalDocument）ではありません。"),
    "unsafe_name": gettext_lazy("ZIP 内に不正なパス名の項目があります（読み飛ばしました）。"),
    "encrypted": gettext_lazy("暗号化された ZIP 項目は読めません。"),
    "bad_entry": gettext_lazy("ZIP の項目が壊れています。"),
    "unknown": gettext_lazy("値を読み取れません。"),
    "columns_missing": gettext_lazy("列の対応にある列がファイルにありません。"),
    "mapping_missing": gettext_lazy("列の対応が見つかりません。"),
    "encoding": gettext_lazy("文字コードを判別できません（UTF-8 または Shift_JIS で保存してください）。"),
    "binary": gettext_lazy("CSV ファイルではありません。"),
    "csv_format": gettext_lazy("CSV の形式が正しくありません。"),
    "empty": gettext_lazy("データがありません。"),
    "not_zip": gettext_lazy("ZIP ファイルとして読めません。"),
    "too_large": gettext_lazy("ファイルが大きすぎます。"),
    "too_many_entries": gettext_lazy("ZIP の項目数が多すぎます。"),
    "file_missing": gettext_lazy("アップロードされたファイルが見つかりません。もう一度アップロードしてください。"),
    "internal": gettext_lazy("処理中にエラーが発生しました。管理者に連絡してください。"),
}
WARNINGS = frozenset({"unknown_code"})


def error_message(code: str) -> str:
    return str(ERROR_MESSAGES.get(code, gettext_lazy("エラーがあります。")))


def column_label(column: str) -> str:
    if column in TARGET_LABELS:
        return str(TARGET_LABELS[column])
    item = catalogue_module.load().items.get(column)
    return item.label if item else column


@dataclass
class Entry:
    """One person's exam read from the file; ``member`` is None until matched."""

    row: int
    source: str = ""
    member: Member | None = None
    exam_date: date | None = None
    program: str = ""
    institution: str = ""
    values: dict[str, Decimal] = field(default_factory=dict)
    questionnaire: dict[str, Any] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (column, reason)
    warnings: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and self.member is not None

    def key(self) -> tuple[int, date | None, str]:
        return (self.member.pk if self.member else 0, self.exam_date, self.program)


# ------------------------------------------------------------------------------------------ MHLW XML


def _is_zip(data: bytes) -> bool:
    return data[:4] == b"PK\x03\x04"


def xml_entries(data: bytes) -> Iterator[Entry]:
    """Entries of one ClinicalDocument or a ZIP bundle, matched to members. Raises FileError for a
    bundle that cannot be read at all."""
    if _is_zip(data):
        try:
            parsed_all: Iterator[ParsedCheckup | ParseError] = parse_zip(data)
        except ParseError as exc:
            raise FileError(exc.code if exc.code in ERROR_MESSAGES else "not_zip") from None
    else:
        try:
            parsed_all = iter([parse_document(data)])
        except ParseError as exc:
            raise FileError(exc.code if exc.code in ERROR_MESSAGES else "parse_error") from None
    for number, parsed in enumerate(parsed_all, start=1):
        if isinstance(parsed, ParseError):
            code = parsed.code if parsed.code in ERROR_MESSAGES else "parse_error"
            yield Entry(row=number, source=parsed.source, problems=[("", code)])
            continue
        yield _xml_entry(number, parsed)


def _xml_entry(number: int, parsed: ParsedCheckup) -> Entry:
    entry = Entry(row=number, source=parsed.source, exam_date=parsed.exam_date, institution=parsed.institution or "")
    entry.program = parsed.program or ""
    for error in parsed.errors:
        entry.problems.append((error.item, error.reason))
    entry.warnings.extend((code, "unknown_code") for code in parsed.unknown_codes)
    if not parsed.exam_date:
        entry.problems.append(("exam_date", "exam_date_missing"))
    if not entry.program:
        entry.problems.append(("program", "program_missing"))
    for key, result in parsed.items.items():
        try:
            entry.values[key] = result.value if isinstance(result.value, Decimal) else Decimal(result.value)
        except InvalidOperation:
            entry.problems.append((key, "bad_value"))
    if not entry.values:
        entry.problems.append(("", "no_results"))
    entry.questionnaire = _xml_questionnaire(parsed.questionnaire)
    if not (parsed.symbol and parsed.number and parsed.sex and parsed.birth_date):
        entry.problems.append(("", "identity_missing"))
    elif not entry.problems:
        entry.member, reason = _match_card(parsed)
        if reason:
            entry.problems.append(("", reason))
    return entry


def _xml_questionnaire(answers: dict[str, str]) -> dict[str, Any]:
    """MHLW answer codes → what judgement reads (booleans, hours since meal); the raw codes are kept."""
    out: dict[str, Any] = {}
    for key in ("medication_bp", "medication_glucose", "medication_lipid"):
        if key in answers:
            out[key] = answers[key] == "1"
    if "smoking" in answers:
        out["smoker"] = answers["smoking"] == "1"
    if answers.get("blood_draw_timing") in TIMING_HOURS:
        out["hours_since_meal"] = TIMING_HOURS[answers["blood_draw_timing"]]
    if answers:
        out["mhlw"] = dict(sorted(answers.items()))
    return out


def _match_card(parsed: ParsedCheckup) -> tuple[Member | None, str]:
    """本人 first, then 家族 (the file does not say which); more than one hit is ambiguous."""
    tenant = require_tenant()
    assert parsed.birth_date is not None  # noqa: S101 - checked by the caller
    indexes = [
        insurance_card_index(
            tenant.pk,
            symbol=parsed.symbol or "",
            number=parsed.number or "",
            relationship=relationship,
            sex=parsed.sex or "",
            birth_year_month=f"{parsed.birth_date.year:04d}-{parsed.birth_date.month:02d}",
        )
        for relationship in (Member.Relationship.SELF, Member.Relationship.FAMILY)
    ]
    for index in indexes:
        found = list(Member.objects.filter(insurance_card_index=index)[:2])
        if len(found) > 1:
            return None, "member_ambiguous"
        if found:
            return found[0], ""
    return None, "member_not_found"


# ----------------------------------------------------------------------------------------------- CSV


def mapping_problems(mapping: dict[str, str]) -> list[str]:
    """Targets that are neither an identity field, a questionnaire key nor a catalogue item; and the
    required targets that are missing. Empty when the mapping is usable."""
    known = {*IDENTITY_TARGETS, *QUESTION_TARGETS, *catalogue_module.load().items}
    problems = [f"{column} → {target}" for column, target in mapping.items() if target not in known]
    targets = set(mapping.values())
    problems += [str(TARGET_LABELS[t]) for t in ("employee_number", "exam_date") if t not in targets]
    return problems


def mapping_save(*, provider: str, mapping: dict[str, str], acting_user: User | None) -> CheckupCsvMapping:
    provider = provider.strip()
    if not provider:
        raise AppError("provider_missing", _("健診機関名を入力してください。"))
    clean = {_nfkc(column): target.strip() for column, target in mapping.items() if column.strip() and target.strip()}
    if problems := mapping_problems(clean):
        raise AppError("invalid_mapping", _("列の対応が正しくありません: %(p)s") % {"p": "、".join(problems)})
    saved, _created = CheckupCsvMapping.objects.update_or_create(provider=provider, defaults={"mapping": clean})
    audit.record(
        action="checkup.csv_mapping_saved", target_type="checkup_csv_mapping", target_id=saved.pk,
        details={"columns": len(clean)}, actor=acting_user,
    )  # fmt: skip
    return saved


def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()


def csv_entries(data: bytes, mapping: dict[str, str]) -> Iterator[Entry]:
    """Entries of a provider CSV read through ``mapping``. Raises FileError for an unreadable file."""
    f = io.BytesIO(data)
    encoding = detect_encoding(f)
    text = data.decode(encoding)
    first = text.split("\n", 1)[0]
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
        if not header:
            raise FileError("empty")
        columns = [mapping.get(_nfkc(cell)) for cell in header]
        if set(mapping.values()) - set(filter(None, columns)):
            raise FileError("columns_missing", row=1)
        catalogue = catalogue_module.load()
        for line, cells in enumerate(reader, start=2):
            if not any(cell.strip() for cell in cells):
                continue
            yield _csv_entry(line, cells, columns, catalogue)
    except csv.Error:
        raise FileError("csv_format") from None


def _csv_entry(line: int, cells: list[str], columns: list[str | None], catalogue: catalogue_module.Catalogue) -> Entry:
    entry = Entry(row=line, program="regular")
    employee_number = ""
    for target, raw in zip(columns, cells, strict=False):
        value = _nfkc(raw)
        if target is None or not value:
            continue
        if target == "employee_number":
            employee_number = value
        elif target == "exam_date":
            try:
                entry.exam_date = parse_date(value)
            except ValueError:
                entry.problems.append((target, "bad_date"))
        elif target == "program":
            program = PROGRAM_WORDS.get(value.casefold())
            if program is None:
                entry.problems.append((target, "bad_program"))
            else:
                entry.program = program
        elif target == "institution":
            entry.institution = value[:100]
        elif target == "hours_since_meal":
            try:
                hours = Decimal(value)
            except InvalidOperation:
                entry.problems.append((target, "bad_number"))
                continue
            if not Decimal(0) <= hours <= Decimal(72):
                entry.problems.append((target, "implausible"))
            else:
                entry.questionnaire[target] = str(hours)
        elif target in QUESTION_TARGETS:
            word = value.casefold()
            if word in YES_WORDS or word in NO_WORDS:
                entry.questionnaire[target] = word in YES_WORDS
            else:
                entry.problems.append((target, "bad_answer"))
        else:
            _csv_item(entry, catalogue.items[target], value)
    if entry.exam_date is None and not any(column == "exam_date" for column, _r in entry.problems):
        entry.problems.append(("exam_date", "exam_date_missing"))
    if not entry.values and not entry.problems:
        entry.problems.append(("", "no_results"))
    if not employee_number:
        entry.problems.append(("employee_number", "identity_missing"))
    else:
        entry.member = member_get_by_employee_number(employee_number)
        if entry.member is None:
            entry.problems.append(("employee_number", "member_not_found"))
    return entry


def _csv_item(entry: Entry, item: catalogue_module.Item, value: str) -> None:
    if item.type != "PQ":
        code = CO_SYMBOLS.get(value, value)
        labels = {label: answer for answer, label in item.answers}
        code = labels.get(code, code)
        if item.answer_label(code) is None:
            entry.problems.append((item.key, "bad_answer"))
        else:
            entry.values[item.key] = Decimal(code)
        return
    try:
        number = Decimal(value.replace(",", ""))
    except InvalidOperation:
        entry.problems.append((item.key, "bad_number"))
        return
    if not number.is_finite():
        entry.problems.append((item.key, "bad_number"))
    elif catalogue_module.plausibility_problem(item, number):
        entry.problems.append((item.key, "implausible"))
    else:
        entry.values[item.key] = catalogue_module.round_half_up(number, item.precision)


# ------------------------------------------------------------------------------------------ the job


def _read_entries(job: Job) -> Iterator[Entry]:
    with jobs.job_open(job) as f:
        data = f.read()
    if job.options.get("source") == SOURCE_CSV:
        mapping = CheckupCsvMapping.objects.filter(pk=job.options.get("mapping_id")).first()
        if mapping is None:
            raise FileError("mapping_missing")
        return csv_entries(data, mapping.mapping)
    return xml_entries(data)


def _checked(entries: Iterator[Entry]) -> Iterator[Entry]:
    """Duplicates of one person's exam within the file are errors (the later ones); a member without a
    recorded sex cannot be judged (sex-specific bands), so is not imported either."""
    seen: set[tuple[int, date | None, str]] = set()
    for entry in entries:
        if entry.ok and entry.member is not None and entry.member.sex not in Member.Sex.values:
            entry.problems.append(("", "sex_missing"))
        if entry.ok:
            if entry.key() in seen:
                entry.problems.append(("", "duplicate"))
            seen.add(entry.key())
        yield entry


def _outcome(entry: Entry) -> str:
    """added / updated / unchanged for a valid entry, against what is stored now."""
    record = (
        CheckupRecord.objects.filter(member=entry.member, exam_date=entry.exam_date, program=entry.program)
        .prefetch_related("results")
        .first()
    )
    if record is None:
        return "added"
    stored = {r.item: r.value for r in record.results.all() if r.value is not None}
    same = (
        stored == entry.values
        and (record.questionnaire or {}) == entry.questionnaire
        and record.institution == entry.institution
    )
    return "unchanged" if same else "updated"


def _errors_of(entry: Entry) -> list[dict]:
    out = []
    for column, reason in [*entry.problems, *entry.warnings]:
        out.append({"row": entry.row, "source": entry.source, "column": column, "code": reason})
    if not entry.problems and entry.member is None:
        out.append({"row": entry.row, "source": entry.source, "column": "", "code": "member_not_found"})
    return out


def checkup_import_start(
    *, upload: IO[bytes], file_name: str, source: str, mapping_id: int | None, acting_user: User | None,
    enqueue: bool = True,
) -> Job:  # fmt: skip
    """Store the upload and queue the dry run."""
    if source not in SOURCES:
        raise AppError("invalid_source", _("取り込む形式を選んでください。"))
    if source == SOURCE_CSV and not CheckupCsvMapping.objects.filter(pk=mapping_id).exists():
        raise AppError("mapping_missing", _("CSV の列の対応（健診機関）を選んでください。"))
    job = jobs.job_create(
        kind=Job.Kind.CHECKUP,
        upload=upload,
        file_name=file_name,
        max_bytes=getattr(settings, "CHECKUP_IMPORT_MAX_BYTES", DEFAULT_MAX_BYTES),
        options={"source": source, "mapping_id": mapping_id if source == SOURCE_CSV else None},
        acting_user=acting_user,
    )
    if enqueue:
        from checkups.tasks import checkup_validate_task

        jobs.on_commit(checkup_validate_task.delay, job.tenant_id, job.pk)
    return job


def checkup_import_validate(*, job_id: int) -> Job | None:
    """Dry run: read every entry, match it, count what applying would do; writes only the job."""
    job = jobs.job_lock(job_id=job_id)
    if job is None or job.state not in (Job.State.UPLOADED, Job.State.VALIDATING):
        return job
    job.state, job.errors, job.counts, job.rows_done = Job.State.VALIDATING, [], {}, 0
    job.save()
    counts = {"rows": 0, "added": 0, "updated": 0, "unchanged": 0, "errors": 0, "warnings": 0}
    errors: list[dict] = []
    try:
        for entry in _checked(_read_entries(job)):
            counts["rows"] += 1
            errors += _errors_of(entry)
            counts["warnings"] += len(entry.warnings)
            if entry.ok:
                counts[_outcome(entry)] += 1
            else:
                counts["errors"] += 1
    except FileError as exc:
        job.errors = [{"row": exc.row, "source": "", "column": "", "code": exc.code}] if exc.row else []
        jobs.job_fail(job, code=exc.code)
        return job
    except FileNotFoundError:
        jobs.job_fail(job, code="file_missing")
        return job
    except Exception:
        logger.exception("checkup import job %s: validation failed", job.pk)  # never a value in the log
        jobs.job_fail(job, code="internal")
        return job
    if not counts["rows"]:
        jobs.job_fail(job, code="empty")
        return job
    job.counts, job.errors = counts, errors
    job.rows_total, job.rows_done = counts["rows"], counts["rows"]
    job.plan = {"chunk_size": CHUNK_SIZE}
    job.state = Job.State.VALIDATED
    job.save()
    return job


def can_apply(job: Job) -> bool:
    return job.state == Job.State.VALIDATED and bool(
        job.counts.get("added") or job.counts.get("updated") or job.counts.get("unchanged")
    )


def checkup_import_confirm(*, job: Job, acting_user: User | None, enqueue: bool = True) -> Job:
    """The admin accepts the preview: apply in chunks on a worker."""
    locked = jobs.job_lock(job_id=job.pk)
    if locked is None or not can_apply(locked):
        raise AppError("not_applicable", _("この取り込みは反映できません。"))
    if Job.objects.filter(kind=Job.Kind.CHECKUP, state=Job.State.APPLYING).exclude(pk=locked.pk).exists():
        raise AppError("busy", _("別の健診結果の取り込みを反映中です。完了してからもう一度お試しください。"))
    locked.state, locked.rows_done, locked.next_chunk = Job.State.APPLYING, 0, 0
    locked.confirmed_by = acting_user if getattr(acting_user, "pk", None) else None
    locked.counts = {
        **locked.counts,
        "applied": {"added": 0, "updated": 0, "unchanged": 0, "errors": 0, "judged": 0},
    }
    locked.save()
    if enqueue:
        from checkups.tasks import checkup_apply_task

        jobs.on_commit(checkup_apply_task.delay, locked.tenant_id, locked.pk)
    return locked


def checkup_import_apply_step(*, job_id: int) -> bool:
    """Apply the next chunk of entries (or finish) inside the caller's transaction; True while steps
    remain. The chunk's records and the advanced ``next_chunk`` commit together."""
    job = jobs.job_lock(job_id=job_id)
    if job is None or job.state != Job.State.APPLYING:
        return False
    size = job.plan.get("chunk_size", CHUNK_SIZE)
    applied = job.counts["applied"]
    start = job.next_chunk * size
    if start < job.rows_total:
        for index, entry in enumerate(_checked(_read_entries(job))):
            if index < start:
                continue
            if index >= start + size:
                break
            if not entry.ok:
                applied["errors"] += 1
                continue
            outcome = _outcome(entry)
            applied[outcome] += 1
            if outcome == "unchanged":
                continue
            assert entry.member is not None and entry.exam_date is not None  # noqa: S101 - entry.ok
            record = checkup_record_save(
                member=entry.member, exam_date=entry.exam_date, program=entry.program, values=entry.values,
                questionnaire=entry.questionnaire, institution=entry.institution,
                source=job.options.get("source", ""), source_sha256=job.file_sha256,
            )  # fmt: skip
            checkup_judge(record=record, acting_user=job.confirmed_by)
            applied["judged"] += 1
        job.next_chunk += 1
        job.rows_done = min(job.rows_total, start + size)
        job.save()
        return True
    jobs.job_finish(job)
    audit.record(
        action="checkup.imported",
        target_type="job",
        target_id=job.pk,
        actor=job.confirmed_by,
        details={
            "source": job.options.get("source"),
            "rows": job.rows_total,
            **{k: applied[k] for k in ("added", "updated", "unchanged", "judged")},
            "errors": job.counts.get("errors", 0),
            "sha256": job.file_sha256,
            "file_size": job.file_size,
        },
    )
    return False


def checkup_import_run(*, job_id: int) -> Job:
    """Validate, confirm and apply in-process (tests and operator use); the caller is in the tenant."""
    from django.db import transaction

    with transaction.atomic():
        job = checkup_import_validate(job_id=job_id)
    assert job is not None  # noqa: S101
    if can_apply(job):
        with transaction.atomic():
            checkup_import_confirm(job=job, acting_user=job.created_by, enqueue=False)
        while True:
            with transaction.atomic():
                if not checkup_import_apply_step(job_id=job_id):
                    break
    return Job.objects.get(pk=job_id)


def error_report_header() -> list[str]:
    return [_("番号"), _("ファイル内の項目"), _("列・項目"), _("コード"), _("内容")]


def error_report_rows(job: Job) -> Iterator[list[object]]:
    """Entry number, ZIP entry name, column, reason: never a value."""
    for error in job.errors:
        yield [
            error.get("row") or "",
            error.get("source") or "",
            column_label(error.get("column") or ""),
            error["code"],
            error_message(error["code"]),
        ]
