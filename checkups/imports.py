"""Checkup import (健診結果の取り込み): the MHLW XML format (one ClinicalDocument or the ZIP bundle) and
provider CSV files read through a per-provider column mapping (``CheckupCsvMapping``).

Built on the generic job machinery (``healthapp.jobs``, ``Job.Kind.CHECKUP``): upload → validate (dry
run, writes only the job) → preview → confirm → apply in chunks on a worker, with progress and an error
report. Every file is read into a list of *entries* (one person's exam each) by the same pure function
in the dry run and in each apply step, so the preview and what is applied cannot drift apart.

Rules:
- Members are found only through blind indexes, a chunk of entries per query: XML by insurance card
  data (記号 + 番号 + sex + birth year-month; the relationship is not in the file, so 本人 is tried, then
  家族; two hits is an error), CSV by employee number. An insurer tenant with its 保険者番号 set refuses
  documents of another insurer (``other_insurer``).
- An entry with any problem (unmatched person, missing header field, unknown unit, implausible value,
  unreadable answer) is not imported at all: a partial checkup could hide the value that matters.
  Unknown codes in XML are reported as warnings; the rest of the document is imported.
- Re-importing the same data changes nothing (``unchanged``); a corrected file replaces the record's
  results (as ``checkup_record_save`` does), earlier judgements stay as history and every written record
  is judged again, a chunk at a time (``checkup_judge_many``: criteria loaded once, one audit event per
  chunk listing every record and its judgement).
- Errors carry the entry number, the item/column and a reason code: never a value.
"""

from __future__ import annotations

import base64
import json
import logging
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from typing import IO, Any, NamedTuple

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import BooleanField, Model, Q
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy
from psycopg import sql as pgsql
from psycopg.types.json import Jsonb

import audit
from accounts.models import Member, User
from accounts.roster_import import FileError, detect_encoding, parse_date, records
from checkups import items as catalogue_module
from checkups.mhlw_xml import ParsedCheckup, ParseError, parse_document, parse_zip
from checkups.models import CheckupCsvMapping, CheckupRecord, CheckupResult, Judgement
from checkups.services import JudgingCriteria, fiscal_year_of, judgement_fields
from healthapp import jobs
from healthapp.crypto.blind_index import blind_index, insurance_card_index
from healthapp.errors import AppError
from healthapp.models import Job
from tenants.context import require_tenant
from tenants.models import Tenant

logger = logging.getLogger(__name__)

SOURCE_XML = "mhlw_xml"
SOURCE_CSV = "csv"
SOURCES = (SOURCE_XML, SOURCE_CSV)
CHUNK_SIZE = 1000
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
    "insurer_number": pgettext_lazy("insurer", "保険者番号"),  # XML only: reported, never a mapping target
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
    "other_insurer": gettext_lazy("この保険者の保険者番号ではありません（他の保険者の健診結果です）。"),
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
    # Who to look for, kept until the batch match (one query per chunk): CSV employee number, or the
    # XML card (記号, 番号, sex, birth date). Never stored, never reported.
    employee_number: str = field(default="", repr=False)
    card: tuple[str, str, str, date] | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return not self.problems and self.member is not None

    def key(self) -> tuple[int, date | None, str]:
        return (self.member.pk if self.member else 0, self.exam_date, self.program)


# ------------------------------------------------------------------------------------------ MHLW XML


def _is_zip(data: bytes) -> bool:
    return data[:4] == b"PK\x03\x04"


def xml_entries(data: bytes, wanted: Callable[[int], bool] | None = None) -> Iterator[Entry | None]:
    """Entries of one ClinicalDocument or a ZIP bundle, not yet matched (``match_members``). Raises
    FileError for a bundle that cannot be read at all. ``wanted`` as for ``parse_zip``: the bundle's
    other documents are not parsed and yield None."""
    if _is_zip(data):
        try:
            parsed_all: Iterator[ParsedCheckup | ParseError | None] = parse_zip(data, wanted=wanted)
        except ParseError as exc:
            raise FileError(exc.code if exc.code in ERROR_MESSAGES else "not_zip") from None
    else:
        try:
            parsed_all = iter([parse_document(data)])
        except ParseError as exc:
            raise FileError(exc.code if exc.code in ERROR_MESSAGES else "parse_error") from None
    insurer_number = _tenant_insurer_number()
    for number, parsed in enumerate(parsed_all, start=1):
        if parsed is None:
            yield None
            continue
        if isinstance(parsed, ParseError):
            code = parsed.code if parsed.code in ERROR_MESSAGES else "parse_error"
            yield Entry(row=number, source=parsed.source, problems=[("", code)])
            continue
        yield _xml_entry(number, parsed, insurer_number)


def _xml_entry(number: int, parsed: ParsedCheckup, insurer_number: str = "") -> Entry:
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
    if insurer_number and parsed.insurer_number and insurer_key(parsed.insurer_number) != insurer_number:
        # An insurer's tenant holds its own insured people only: another insurer's document is not theirs.
        entry.problems.append(("insurer_number", "other_insurer"))
    if not (parsed.symbol and parsed.number and parsed.sex and parsed.birth_date):
        entry.problems.append(("", "identity_missing"))
    elif not entry.problems:
        entry.card = (parsed.symbol, parsed.number, parsed.sex, parsed.birth_date)
    return entry


def insurer_key(number: str) -> str:
    """保険者番号 compared as digits: full-width folded, spaces dropped, zero-padded to 8 (国保 numbers
    have 6 digits and are often written without the leading zeros)."""
    return "".join(unicodedata.normalize("NFKC", number).split()).zfill(8)


def _tenant_insurer_number() -> str:
    tenant = require_tenant()
    number = getattr(tenant, "insurer_number", "") if tenant.kind == Tenant.Kind.INSURER else ""
    return insurer_key(number) if number else ""


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


def match_members(entries: list[Entry]) -> None:
    """Find the members of a batch of entries with one query per kind of key (blind indexes only).

    CSV: by employee number. XML: by insurance card, 本人 first, then 家族 (the file does not say
    which); more than one hit is ambiguous. Sets ``member`` or adds the problem."""
    tenant = require_tenant()
    by_number: dict[str, list[Entry]] = {}
    cards: list[tuple[Entry, list[str]]] = []
    for entry in entries:
        if entry.employee_number:
            by_number.setdefault(blind_index(tenant.pk, "employee-number", entry.employee_number), []).append(entry)
        elif entry.card is not None:
            symbol, number, sex, birth = entry.card
            indexes = [
                insurance_card_index(
                    tenant.pk,
                    symbol=symbol,
                    number=number,
                    relationship=relationship,
                    sex=sex,
                    birth_year_month=f"{birth.year:04d}-{birth.month:02d}",
                )
                for relationship in (Member.Relationship.SELF, Member.Relationship.FAMILY)
            ]
            cards.append((entry, indexes))
    if by_number:
        found: dict[str, Member] = {}
        for member in _members().filter(_any(Member, "employee_number_index", "text", list(by_number))):
            found.setdefault(member.employee_number_index, member)
        for index, matched in by_number.items():
            for entry in matched:
                entry.member = found.get(index)
                if entry.member is None:
                    entry.problems.append(("employee_number", "member_not_found"))
    if cards:
        hits: dict[str, list[Member]] = {}
        wanted = [index for _entry, indexes in cards for index in indexes]
        for member in _members().filter(_any(Member, "insurance_card_index", "text", wanted)):
            hits.setdefault(member.insurance_card_index, []).append(member)
        for entry, indexes in cards:
            reason = "member_not_found"
            for index in indexes:
                if len(hits.get(index, ())) > 1:
                    reason = "member_ambiguous"
                    break
                if hits.get(index):
                    entry.member, reason = hits[index][0], ""
                    break
            if reason:
                entry.problems.append(("", reason))


def _any(model: type[Model], column: str, sql_type: str, values: list) -> RawSQL | Q:
    """``column IN values``; on PostgreSQL as ``= ANY(%s)`` with ONE array parameter: an ``__in`` lookup
    with a thousand placeholders costs more to build and bind than the query costs to run."""
    if connections[DEFAULT_DB_ALIAS].vendor != "postgresql":
        return Q(**{f"{column}__in": values})
    table = model._meta.db_table
    return RawSQL(f'"{table}"."{column}" = ANY(%s::{sql_type}[])', [values], output_field=BooleanField())  # noqa: S611


def _members():
    """Only what matching and judging read (sex and birth date decrypt lazily; uid is their AAD)."""
    return Member.objects.only(
        "pk", "uid", "tenant_id", "sex", "birth_date", "employee_number_index", "insurance_card_index"
    ).order_by("pk")


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


@dataclass(frozen=True)
class CsvLayout:
    """How a provider CSV reads, decided once in the dry run and kept in the job's plan."""

    encoding: str
    delimiter: str
    columns: list[str | None]  # mapping target per column
    body_start: int  # byte offset of the first record after the header


def csv_layout(f: IO[bytes], mapping: dict[str, str]) -> CsvLayout:
    """Encoding, delimiter and the header read through ``mapping``; FileError for an unreadable file."""
    encoding = detect_encoding(f)
    f.seek(0)
    first = f.readline().decode(encoding, errors="replace")
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    header_end, header = next(records(f, start=0, encoding=encoding, delimiter=delimiter), (0, []))
    if not header:
        raise FileError("empty")
    columns = [mapping.get(_nfkc(cell)) for cell in header]
    if set(mapping.values()) - set(filter(None, columns)):
        raise FileError("columns_missing", row=1)
    return CsvLayout(encoding, delimiter, columns, header_end)


def csv_entries(
    f: IO[bytes], layout: CsvLayout, *, start: int | None = None, first_row: int = 2
) -> Iterator[tuple[int, Entry]]:
    """(byte offset just past the record, entry) for each non-blank record from byte ``start`` (the
    body by default), not yet matched; the row number counts records from the header's 1."""
    catalogue = catalogue_module.load()
    number = first_row - 1
    stream = records(
        f, start=layout.body_start if start is None else start, encoding=layout.encoding, delimiter=layout.delimiter
    )
    for end, cells in stream:
        number += 1
        if not any(cell.strip() for cell in cells):
            continue
        yield end, _csv_entry(number, cells, layout.columns, catalogue)


def _csv_entry(line: int, cells: list[str], columns: list[str | None], catalogue: catalogue_module.Catalogue) -> Entry:
    entry = Entry(row=line, program="regular")
    employee_number = ""
    items = catalogue.items
    for target, raw in zip(columns, cells, strict=False):
        if target is None:
            continue
        value = raw.strip() if raw.isascii() else _nfkc(raw)  # NFKC leaves ASCII as it is
        if not value:
            continue
        item = items.get(target)  # most columns are items: looked up first
        if item is not None:
            _csv_item(entry, item, value)
        elif target == "employee_number":
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
    if entry.exam_date is None and not any(column == "exam_date" for column, _r in entry.problems):
        entry.problems.append(("exam_date", "exam_date_missing"))
    if not entry.values and not entry.problems:
        entry.problems.append(("", "no_results"))
    if not employee_number:
        entry.problems.append(("employee_number", "identity_missing"))
    entry.employee_number = employee_number
    return entry


def _csv_item(entry: Entry, item: catalogue_module.Item, value: str) -> None:
    if item.type != "PQ":
        labels, codes = _answers(item)
        code = CO_SYMBOLS.get(value, value)
        code = labels.get(code, code)
        if code not in codes:
            entry.problems.append((item.key, "bad_answer"))
        else:
            entry.values[item.key] = Decimal(code)
        return
    try:
        number = Decimal(value.replace(",", "") if "," in value else value)
    except InvalidOperation:
        entry.problems.append((item.key, "bad_number"))
        return
    if not number.is_finite():
        entry.problems.append((item.key, "bad_number"))
    elif catalogue_module.plausibility_problem(item, number):
        entry.problems.append((item.key, "implausible"))
    elif item.precision is not None:
        entry.values[item.key] = number.quantize(item.precision, rounding=ROUND_HALF_UP)  # as round_half_up
    else:
        entry.values[item.key] = number


@lru_cache(maxsize=64)
def _answers(item: catalogue_module.Item) -> tuple[dict[str, str], frozenset[str]]:
    """A coded item's answer labels → codes, and its codes (built once, not per value)."""
    return {label: answer for answer, label in item.answers}, frozenset(answer for answer, _label in item.answers)


# ------------------------------------------------------------------------------------------ the job
#
# The dry run reads the whole file once, in chunks of CHUNK_SIZE entries, and leaves a plan: per chunk
# [where it starts (CSV: byte offset; XML: entry index), its first row number, entries, a bit mask of
# the entries to write, how many are unchanged]. An apply step reads only its chunk (CSV: that byte
# range), parses only the entries to write, matches them with one query, compares them with what is
# stored with two, and writes records, results and judgements in bulk.


def _mapping_of(job: Job) -> dict[str, str]:
    mapping = CheckupCsvMapping.objects.filter(pk=job.options.get("mapping_id")).first()
    if mapping is None:
        raise FileError("mapping_missing")
    return mapping.mapping


def _chunks(stream: Iterator[tuple[int, Entry]], size: int) -> Iterator[list[tuple[int, Entry]]]:
    chunk: list[tuple[int, Entry]] = []
    for item in stream:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _check(entries: list[Entry], seen: set[tuple[int, date | None, str]]) -> None:
    """Duplicates of one person's exam within the file are errors (the later ones); a member without a
    recorded sex cannot be judged (sex-specific bands), so is not imported either."""
    for entry in entries:
        if entry.ok and entry.member is not None and entry.member.sex not in Member.Sex.values:
            entry.problems.append(("", "sex_missing"))
        if entry.ok:
            if entry.key() in seen:
                entry.problems.append(("", "duplicate"))
            seen.add(entry.key())


# A stored record with its result values: a dict, or on PostgreSQL their fingerprint (``_fingerprint``).
Stored = dict[tuple[int, date | None, str], tuple[CheckupRecord, dict[str, Decimal] | str]]
_MILLI = Decimal("0.001")  # the scale of CheckupResult.value: numeric(9,3)


def _stored(entries: list[Entry]) -> Stored:
    """The stored records of the valid entries (with their result values), in two queries."""
    valid = [entry for entry in entries if entry.ok]
    if not valid:
        return {}
    wanted = {entry.key() for entry in valid}
    found = [
        record
        for record in CheckupRecord.objects.filter(
            _any(CheckupRecord, "member_id", "bigint", list({key[0] for key in wanted})),
            _any(CheckupRecord, "exam_date", "date", list({key[1] for key in wanted})),
        )
        if (record.member_id, record.exam_date, record.program) in wanted
    ]
    if not found:
        return {}
    values: dict[int, dict[str, Decimal] | str] = {}
    if connections[DEFAULT_DB_ALIAS].vendor == "postgresql":
        # One text per record, built by the server: a re-import compares 18 values per record without
        # turning each into a Python Decimal (most of a re-import's time otherwise).
        values = {record.pk: "" for record in found}
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute(FINGERPRINTS, [require_tenant().pk, list(values)])
            values.update(cursor.fetchall())
    else:
        values = {record.pk: {} for record in found}
        results = CheckupResult.objects.filter(record_id__in=list(values), value__isnull=False)
        for record_id, item, value in results.values_list("record_id", "item", "value"):
            values[record_id][item] = value  # type: ignore[index]
    return {(r.member_id, r.exam_date, r.program): (r, values[r.pk]) for r in found}


FINGERPRINTS = (
    "SELECT record_id, string_agg(item || '=' || value::text, ',' ORDER BY item COLLATE \"C\") "
    "FROM checkups_checkupresult WHERE tenant_id = %s AND record_id = ANY(%s::bigint[]) AND value IS NOT NULL "
    "GROUP BY record_id"
)


def _fingerprint(values: dict[str, Decimal]) -> str:
    """The values as FINGERPRINTS writes them: items in code-point order, numeric(9,3) as text."""
    return ",".join(f"{item}={values[item].quantize(_MILLI)}" for item in sorted(values) if values[item] is not None)


def _outcome(entry: Entry, stored: Stored) -> str:
    """added / updated / unchanged for a valid entry, against what is stored now."""
    found = stored.get(entry.key())
    if found is None:
        return "added"
    record, values = found
    same = (
        (values == _fingerprint(entry.values) if isinstance(values, str) else values == entry.values)
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
    try:
        with jobs.job_open(job) as f:
            counts, errors, plan = _validate(job, f)
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
    job.counts, job.errors, job.plan = counts, errors, plan
    job.rows_total, job.rows_done = counts["rows"], counts["rows"]
    job.state = Job.State.VALIDATED
    job.save()
    return job


def _validate(job: Job, f: IO[bytes]) -> tuple[dict, list[dict], dict]:
    counts = {"rows": 0, "added": 0, "updated": 0, "unchanged": 0, "errors": 0, "warnings": 0}
    errors: list[dict] = []
    plan: dict[str, Any] = {"chunk_size": CHUNK_SIZE, "chunks": []}
    stream: Iterator[tuple[int, Entry]]
    if job.options.get("source") == SOURCE_CSV:
        layout = csv_layout(f, _mapping_of(job))
        plan.update(encoding=layout.encoding, delimiter=layout.delimiter, columns=layout.columns)
        stream, start = csv_entries(f, layout), layout.body_start
    else:
        stream, start = ((index, entry) for index, entry in enumerate(xml_entries(f.read()), start=1)), 0
    seen: set[tuple[int, date | None, str]] = set()
    for chunk in _chunks(stream, CHUNK_SIZE):
        entries = [entry for _end, entry in chunk]
        match_members(entries)
        _check(entries, seen)
        stored = _stored(entries)
        todo = unchanged = 0
        for index, entry in enumerate(entries):
            counts["rows"] += 1
            errors += _errors_of(entry)
            counts["warnings"] += len(entry.warnings)
            if not entry.ok:
                counts["errors"] += 1
                continue
            outcome = _outcome(entry, stored)
            counts[outcome] += 1
            if outcome == "unchanged":
                unchanged += 1
            else:
                todo |= 1 << index
        mask = base64.b64encode(todo.to_bytes((len(entries) + 7) // 8, "little")).decode()
        plan["chunks"].append([start, entries[0].row, len(entries), mask, unchanged])
        start = chunk[-1][0]
    return counts, errors, plan


def can_apply(job: Job) -> bool:
    return job.state == Job.State.VALIDATED and bool(
        job.counts.get("added") or job.counts.get("updated") or job.counts.get("unchanged")
    )


def checkup_import_confirm(*, job: Job, acting_user: User | None, enqueue: bool = True) -> Job:
    """The admin accepts the preview: apply in chunks on a worker."""
    locked = jobs.job_confirm(
        job=job,
        acting_user=acting_user,
        can_apply=can_apply,
        busy_message=_("別の健診結果の取り込みを反映中です。完了してからもう一度お試しください。"),
        applied={"added": 0, "updated": 0, "unchanged": 0, "errors": 0, "judged": 0},
    )
    if enqueue:
        from checkups.tasks import checkup_apply_task

        jobs.on_commit(checkup_apply_task.delay, locked.tenant_id, locked.pk)
    return locked


def checkup_import_apply_step(*, job_id: int) -> bool:
    """Apply the next chunk (or finish) inside the caller's transaction; True while steps remain. The
    chunk's records, results, judgements and the advanced ``next_chunk`` commit together, so a crashed
    step leaves nothing behind and a step delivered twice finds its chunk done."""
    job = jobs.job_lock(job_id=job_id)
    if job is None or job.state != Job.State.APPLYING:
        return False
    applied = job.counts["applied"]
    chunks = job.plan.get("chunks", [])
    if job.next_chunk < len(chunks):
        start, first_row, size, mask, unchanged = chunks[job.next_chunk]
        todo = int.from_bytes(base64.b64decode(mask), "little")
        applied["unchanged"] += unchanged
        applied["errors"] += size - unchanged - todo.bit_count()  # the dry run's errors and duplicates
        if todo:
            entries = _chunk_entries(job, start=start, first_row=first_row, size=size, todo=todo)
            match_members(entries)
            _check(entries, set())  # checked again: the roster may have changed since the preview
            stored = _stored(entries)
            work: list[tuple[Entry, CheckupRecord | None]] = []
            for entry in entries:
                if not entry.ok:
                    applied["errors"] += 1
                    continue
                outcome = _outcome(entry, stored)
                applied[outcome] += 1
                if outcome != "unchanged":
                    work.append((entry, stored[entry.key()][0] if outcome == "updated" else None))
            judged = _save_records(work, source=job.options.get("source", ""), source_sha256=job.file_sha256)
            applied["judged"] += checkup_judge_many(judged=judged, acting_user=job.confirmed_by, job_id=job.pk)
        job.next_chunk += 1
        job.rows_done = min(job.rows_total, job.rows_done + size)
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


def _chunk_entries(job: Job, *, start: int, first_row: int, size: int, todo: int) -> list[Entry]:
    """The chunk's entries marked to write, read again from the file (CSV: only the chunk's bytes)."""
    entries: list[Entry] = []
    with jobs.job_open(job) as f:
        if job.options.get("source") == SOURCE_CSV:
            plan = job.plan
            layout = CsvLayout(plan["encoding"], plan["delimiter"], plan["columns"], start)
            stream: Iterator[tuple[int, Entry]] = csv_entries(f, layout, start=start, first_row=first_row)
            index = 0
        else:

            def wanted(position: int) -> bool:  # only the chunk's documents marked to write are parsed again
                return 0 <= position - start < size and bool(todo >> (position - start) & 1)

            stream, index = ((0, entry) for entry in xml_entries(f.read(), wanted)), -start
        for _end, entry in stream:
            if index >= size:
                break
            if index >= 0 and todo >> index & 1:
                entries.append(entry)
            index += 1
    return entries


class Judged(NamedTuple):
    """A written record, as its judging needs it (no model instance: an import writes many thousands)."""

    record_id: int
    fiscal_year: int
    questionnaire: dict
    member: Member
    values: dict[str, Decimal]


RECORD_COLUMNS = ("member_id", "exam_date", "fiscal_year", "program", "institution", "questionnaire", "source",
                  "source_sha256", "created_at")  # fmt: skip
JUDGEMENT_COLUMNS = ("record_id", "criteria_id", "grades", "overall", "mhlw", "metabolic_syndrome", "guidance_level",
                     "judged_at", "judged_by_id")  # fmt: skip


def _save_records(work: list[tuple[Entry, CheckupRecord | None]], *, source: str, source_sha256: str) -> list[Judged]:
    """Create or replace the records of a chunk in bulk (as ``checkup_record_save`` does one by one):
    an updated record's results are replaced, its judgements stay as history."""
    now = timezone.now()
    ids: dict[tuple[int, date | None, str], int] = {}
    rows: list[tuple] = []
    updates: list[CheckupRecord] = []
    for entry, record in work:
        assert entry.member is not None and entry.exam_date is not None  # noqa: S101 - entry.ok
        fields = (fiscal_year_of(entry.exam_date), entry.institution, entry.questionnaire, source, source_sha256)
        if record is None:
            rows.append((entry.member.pk, entry.exam_date, fields[0], entry.program, *fields[1:], now))
            continue
        record.fiscal_year, record.institution, record.questionnaire, record.source, record.source_sha256 = fields
        updates.append(record)
        ids[entry.key()] = record.pk
    returned = _bulk_insert(CheckupRecord, RECORD_COLUMNS, rows, returning=("id", "member_id", "exam_date", "program"))
    for pk, member_id, exam_date, program in returned:
        ids[(member_id, exam_date, program)] = pk
    if updates:
        fields = ["fiscal_year", "institution", "questionnaire", "source", "source_sha256"]
        CheckupRecord.objects.bulk_update(updates, fields, batch_size=500)
        CheckupResult.objects.filter(record_id__in=[record.pk for record in updates]).delete()
    units = {key: item.unit for key, item in catalogue_module.load().items.items()}
    judged = [
        Judged(ids[entry.key()], fiscal_year_of(entry.exam_date), entry.questionnaire, entry.member, entry.values)  # type: ignore[arg-type]
        for entry, _record in work
    ]
    results = [
        (one.record_id, item, value, units.get(item, ""))
        for one in judged
        for item, value in one.values.items()
        if value is not None
    ]
    _bulk_insert(CheckupResult, ("record_id", "item", "value", "unit"), results)
    return judged


def checkup_judge_many(*, judged: list[Judged], acting_user: User | None, job_id: int) -> int:
    """Judge a batch of imported records under the current criteria versions, loaded once: one bulk
    insert of the judgements and ONE audit event for the batch listing every record with its judgement
    (an event per record would be most of a large import's time). Earlier judgements stay as history."""
    if not judged:
        return 0
    criteria = JudgingCriteria.current()
    now, judge_id = timezone.now(), acting_user.pk if acting_user is not None else None
    rows = []
    for one in judged:
        fields = judgement_fields(
            fiscal_year=one.fiscal_year, questionnaire=one.questionnaire, member=one.member, values=one.values,
            criteria=criteria,
        )  # fmt: skip
        rows.append((
            one.record_id, criteria.grades_set.pk, fields["grades"], fields["overall"], fields["mhlw"],
            fields["metabolic_syndrome"], fields["guidance_level"], now, judge_id,
        ))  # fmt: skip
    returned = sorted(_bulk_insert(Judgement, JUDGEMENT_COLUMNS, rows, returning=("record_id", "id")))
    audit.record(
        action="checkup.judged", target_type="job", target_id=job_id,
        details={
            "criteria": criteria.label,
            "records": [record_id for record_id, _pk in returned],
            "judgements": [pk for _record_id, pk in returned],
        },
        actor=acting_user,
    )  # fmt: skip
    return len(returned)


def _bulk_insert(model: type[Model], columns: tuple[str, ...], rows: list[tuple], *, returning=()) -> list[tuple]:
    """Insert ``rows`` (values for ``columns``, attnames) into the current tenant's ``model`` table;
    the ``returning`` columns of the new rows come back, in no particular order.

    PostgreSQL: COPY into a temporary table, then one INSERT … SELECT: COPY FROM is refused on a table
    under row-level security, the INSERT is checked by it like any other, and the pair costs a fraction
    of the ORM's per-row work. Other databases: the ORM's bulk_create."""
    if not rows:
        return []
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.vendor != "postgresql":
        objects = [model(**dict(zip(columns, row, strict=True))) for row in rows]
        model.objects.bulk_create(objects, batch_size=500)
        return [tuple(getattr(obj, "pk" if name == "id" else name) for name in returning) for obj in objects]
    create, copy_sql, insert, clear = _bulk_statements(model, columns, returning)
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(create)
        with cursor.copy(copy_sql) as copy:
            copy.write("".join("\t".join(map(_copy_value, row)) + "\n" for row in rows))
        cursor.execute(insert, [require_tenant().pk])
        found = cursor.fetchall() if returning else []
        cursor.execute(clear)  # several steps may share one transaction
    return found


@lru_cache(maxsize=16)
def _bulk_statements(model: type[Model], columns: tuple[str, ...], returning: tuple[str, ...]) -> tuple:
    """CREATE of the load table, its COPY, the INSERT … SELECT (columns not given get their model
    default) and the TRUNCATE."""
    table = model._meta.db_table
    load = pgsql.Identifier(f"load_{table}")
    given = [pgsql.Identifier(model._meta.get_field(name.removesuffix("_id")).column) for name in columns]
    target, selects = [], []
    for f in model._meta.concrete_fields:
        if f.primary_key:
            continue
        target.append(pgsql.Identifier(f.column))
        if f.column == "tenant_id":
            selects.append(pgsql.Placeholder())
        elif f.attname in columns:
            selects.append(pgsql.Identifier(f.column))
        else:
            default = f.get_default()
            selects.append(pgsql.Literal(Jsonb(default) if isinstance(default, dict | list) else default))
    join = pgsql.SQL(", ").join
    create = pgsql.SQL(
        "CREATE TEMP TABLE IF NOT EXISTS {} ON COMMIT DELETE ROWS AS SELECT {} FROM {} WITH NO DATA"
    ).format(load, join(given), pgsql.Identifier(table))
    copy = pgsql.SQL("COPY {} ({}) FROM STDIN").format(load, join(given))
    insert = pgsql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
        pgsql.Identifier(table), join(target), join(selects), load
    )
    if returning:
        insert += pgsql.SQL(" RETURNING {}").format(join(pgsql.Identifier(name) for name in returning))
    return create, copy, insert, pgsql.SQL("TRUNCATE {}").format(load)


def _copy_value(value: object) -> str:
    """One value in COPY's text format."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, date):  # datetime too
        return value.isoformat()
    elif not isinstance(value, str):
        return str(value)
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value


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
