"""Checkup import (健診結果の取り込み): the MHLW XML format (one ClinicalDocument or the ZIP bundle) and
provider CSV files read through a per-provider column mapping (``CheckupCsvMapping``).

Built on the generic job machinery (``healthapp.jobs``, ``Job.Kind.CHECKUP``): upload → validate (dry
run, writes only the job) → preview → confirm → apply in chunks on a worker, with progress and an error
report. Every file is read into a list of *entries* (one person's exam each) by the dry run, which keeps
the entries to write (sealed, beside the upload: ``jobs.SideFile``) for the apply steps, so the preview
and what is applied cannot drift apart and no file is parsed twice. Each step matches its entries to
members again and compares them with what is stored then: the roster may change after the preview.

Rules:
- Members are found only through blind indexes, a chunk of entries per query: XML by insurance card
  data (記号 + 番号 + sex + birth year-month; the relationship is not in the file, so 本人 is tried, then
  家族; two hits is an error), CSV by employee number. An insurer tenant with its 保険者番号 set refuses
  documents of another insurer (``other_insurer``).
- An entry with any problem (unmatched person, missing header field, unknown unit, implausible value,
  unreadable answer) is not imported at all: a partial checkup could hide the value that matters.
  Unknown codes in XML are reported as warnings; the rest of the document is imported.
- Re-importing the same data changes nothing (``unchanged``); a corrected file replaces the record's
  results (as ``checkup_record_save`` does) after keeping what it held as a ``CheckupCorrection``
  (``checkup_corrections_keep``); earlier judgements stay as history and every written record is judged
  again, a chunk at a time (criteria loaded once, one audit event per chunk listing every record and its
  judgement). The dry run counts the corrections of records that already have a physician's opinion.
- Errors carry the entry number, the item/column and a reason code: never a value.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import IO, Any, NamedTuple

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy
from psycopg import sql as pgsql
from psycopg.types.json import Jsonb

import audit
from accounts import roster_import
from accounts.models import Member, User
from accounts.roster_import import SEX_WORDS, FileError, detect_encoding, insurance_branch, parse_date, records
from checkups import items as catalogue_module
from checkups.mhlw_xml import ParsedCheckup, ParseError, latest_exam_date, parse_document, parse_zip, zip_other_files
from checkups.models import CheckupCsvMapping, CheckupRecord, Judgement, PhysicianOpinion, result_json, value_text
from checkups.services import JudgingCriteria, checkup_corrections_keep, fiscal_year_of, judgement_fields
from checkups.templatetags.checkup_tags import unit_label
from healthapp import jobs
from healthapp.crypto.blind_index import indexer, insurance_card_index
from healthapp.crypto.fields import open_row
from healthapp.errors import AppError
from healthapp.lookups import rows_by_keys, without_jit
from healthapp.models import Job
from tenants.context import require_tenant
from tenants.models import Tenant

logger = logging.getLogger(__name__)

SOURCE_XML = "mhlw_xml"
SOURCE_CSV = "csv"
SOURCES = (SOURCE_XML, SOURCE_CSV)
# Records per apply transaction: each commit costs a WAL flush and its deferred key checks (1,000 made
# the apply of 100,000 records 25% slower).
CHUNK_SIZE = 5000

# CSV mapping targets besides catalogue items.
IDENTITY_TARGETS = ("employee_number", "exam_date", "program", "institution")
# The insurance card, for files without an employee number (an insurer's providers): 記号, 番号, sex and birth
# date, matched through the roster's card blind index as the MHLW XML is.
CARD_TARGETS = ("insurance_symbol", "insurance_number", "sex", "birth_date")
CARD_BRANCH = "insurance_branch"  # 枝番, optional: tells apart twins on one card
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
    "insurance_symbol": gettext_lazy("保険証の記号"),
    "insurance_number": gettext_lazy("保険証の番号"),
    "insurance_branch": gettext_lazy("枝番"),
    "sex": gettext_lazy("性別"),
    "birth_date": gettext_lazy("生年月日"),
    "structuredBody": gettext_lazy("検査結果"),
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

# A provider CSV shipped for newcomers (employees E00001–E00020 of the demo company), and its mapping, offered
# when an admin creates a mapping.
SAMPLE_CSV = Path(__file__).resolve().parent / "samples" / "sample_checkups.csv"
SAMPLE_MAPPING = {
    "社員番号": "employee_number", "受診日": "exam_date", "健診種別": "program", "健診機関": "institution",
    "身長": "height", "体重": "weight", "BMI": "bmi", "腹囲": "waist", "収縮期血圧": "systolic",
    "拡張期血圧": "diastolic", "中性脂肪": "triglycerides_fasting", "HDL": "hdl", "LDL": "ldl",
    "AST": "ast", "ALT": "alt", "γ-GT": "ggt", "空腹時血糖": "glucose_fasting", "HbA1c": "hba1c",
    "尿糖": "urine_sugar", "尿蛋白": "urine_protein", "服薬_血圧": "medication_bp", "服薬_血糖": "medication_glucose",
    "服薬_脂質": "medication_lipid", "喫煙": "smoker", "食後時間": "hours_since_meal",
}  # fmt: skip

ERROR_MESSAGES: dict[str, Any] = {
    "member_not_found": gettext_lazy(
        "該当する名簿の人が見つかりません。社員番号（XML・保険証の列では記号・番号・性別・生年月日）が名簿と合っているか確かめ、必要なら先に名簿を取り込んでください。"
    ),
    "member_ambiguous": gettext_lazy("名簿の複数の人に該当するため特定できません。"),
    "branch_mismatch": gettext_lazy(
        "記号・番号・性別・生年月日は名簿の人と合いますが、枝番が名簿と違います。枝番を確かめるか、"
        "その枝番の人（双子など）を名簿に加えてください。"
    ),
    "other_insurer": gettext_lazy("この保険者の保険者番号ではありません（他の保険者の健診結果です）。"),
    "identity_missing": gettext_lazy("本人を特定する項目（記号・番号・性別・生年月日、または社員番号）がありません。"),
    "exam_date_missing": gettext_lazy("受診日がありません。"),
    "bad_date": gettext_lazy("日付として読めません。"),
    "bad_program": gettext_lazy("健診種別が正しくありません。"),
    "program_missing": gettext_lazy("健診種別がありません。"),
    "bad_number": gettext_lazy("数値として読めません。"),
    "implausible": gettext_lazy("値が妥当な範囲外です。"),
    "bad_answer": gettext_lazy("回答が正しくありません。"),
    "bad_branch": gettext_lazy("枝番は2桁までの数字です（例: 00、01）。"),
    "bad_value": gettext_lazy("値が正しくありません。"),
    "unit_unknown": gettext_lazy("単位が不明です。"),
    "unit_missing": gettext_lazy("単位がありません。"),
    "conflict": gettext_lazy("同じ項目に異なる値があります。"),
    "wrong_type": gettext_lazy("値の型（xsi:type）が項目に合いません。"),
    "column_count": gettext_lazy("列の数が見出しと一致しません。"),
    "duplicate_column": gettext_lazy("見出しに同じ列が二度あります。"),
    "too_many_errors": gettext_lazy("エラーが多すぎるため検証を中止しました。ファイルを確認してください。"),
    "too_long": gettext_lazy("文字数が上限を超えています。"),
    "future": gettext_lazy("受診日が未来の日付です。"),
    "before_birth": gettext_lazy("受診日が生年月日より前です。"),
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
    "columns_missing": gettext_lazy("列の対応にある列がファイルにありません（エラーの表に列名があります）。"),
    "mapping_mismatch": gettext_lazy(
        "ファイルの1行目に、選んだ列の対応の列名が一つもありません。健診機関（列の対応）の選び間違いか、"
        "1行目が見出しの行でないファイルです。"
    ),
    "column_missing": gettext_lazy("列の対応にあるこの列が、ファイルの1行目（見出し）にありません。"),
    "column_ignored": gettext_lazy("列の対応にない列です（読み込みません）。取り込むには列の対応に加えてください。"),
    "not_a_result_file": gettext_lazy("結果ファイル（DATA/h….xml）ではないため読み込みません。"),
    "mapping_missing": gettext_lazy("列の対応が見つかりません。"),
    "encoding": gettext_lazy("文字コードを判別できません（UTF-8 または Shift_JIS で保存してください）。"),
    "binary": gettext_lazy("CSV ファイルではありません。"),
    "utf16": roster_import.ERROR_MESSAGES["utf16"],  # the same reading of the file's bytes
    "spreadsheet": roster_import.ERROR_MESSAGES["spreadsheet"],
    "csv_format": gettext_lazy("CSV の形式が正しくありません。"),
    "empty": gettext_lazy("データがありません。"),
    "no_data_folder": gettext_lazy(
        "ZIP の DATA フォルダに結果ファイル（h….xml）がありません。"
        "特定健診の提出用 ZIP をそのままアップロードしてください。"
    ),
    "not_zip": gettext_lazy("ZIP ファイルとして読めません。"),
    "not_xml_or_zip": gettext_lazy("特定健診の XML ファイルでも ZIP ファイルでもありません。"),
    "looks_like_csv": gettext_lazy(
        "CSV ファイルのようです。健診機関の CSV なら、形式で「健診機関の CSV（列の対応を使う）」を選んでください。"
    ),
    "too_large": gettext_lazy("ファイルが大きすぎます。"),
    "too_many_entries": gettext_lazy("ZIP の項目数が多すぎます。"),
    "file_missing": gettext_lazy("アップロードされたファイルが見つかりません。もう一度アップロードしてください。"),
    "expired": gettext_lazy("確認されないまま保存期間を過ぎたため、アップロードされたファイルを削除しました。"),
    "internal": gettext_lazy("処理中にエラーが発生しました。管理者に連絡してください。"),
    "interrupted": jobs.INTERRUPTED,
}
WARNINGS = frozenset({"unknown_code", "column_ignored", "not_a_result_file"})


def error_message(code: str) -> str:
    return str(ERROR_MESSAGES.get(code, gettext_lazy("エラーがあります。")))


def column_label(column: str) -> str:
    if column in TARGET_LABELS:
        return str(TARGET_LABELS[column])
    cat = catalogue_module.load()
    known = cat.items.get(column) or cat.questions.get(column)
    if known is None:
        return column
    return known.label_en if translation.get_language() == "en" else known.label


def row_error_message(error: dict[str, Any]) -> str:
    """An error row's reason; an implausible value's says which values the item accepts."""
    item = catalogue_module.load().items.get(error.get("column") or "")
    if error["code"] == "implausible" and item is not None and (item.minimum is not None or item.maximum is not None):
        span = f"{item.minimum if item.minimum is not None else ''}–{item.maximum if item.maximum is not None else ''}"
        return _("値が妥当な範囲（%(span)s %(unit)s）外です。") % {"span": span, "unit": unit_label(item.unit)}
    return error_message(error["code"])


SEP = "\x1f"  # between a result's parts in a fingerprint: no value, unit or code holds it


def fingerprint(results: dict[str, dict[str, Any]]) -> str:
    """Stored results (``result_json``) as one text, as STORED builds it on the server: items in
    code-point order, each ``item=`` and its value, unit, text, unit as given, code and interpretation
    (those given) joined by SEP."""
    parts = []
    for item in sorted(results):
        data = results[item]
        given = [data.get(name) for name in ("value", "unit", "text", "unit_as_given", "code", "interpretation")]
        parts.append(f"{item}=" + SEP.join(part for part in given if part is not None))
    return ",".join(parts)


@dataclass
class Entry:
    """One person's exam read from the file; ``member`` is None until matched."""

    row: int
    source: str = ""
    member: Person | None = None
    exam_date: date | None = None
    program: str = ""
    institution: str = ""
    values: dict[str, Decimal] = field(default_factory=dict)
    # What the source said of a value besides the value (XML: unit_as_given, code, interpretation), by item.
    details: dict[str, dict[str, str]] = field(default_factory=dict)
    questionnaire: dict[str, Any] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (column, reason)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    # Who to look for, kept until the batch match (one query per chunk): CSV employee number, or the
    # XML card (記号, 番号, sex, birth date; the 枝番 if given). Never stored, never reported.
    employee_number: str = field(default="", repr=False)
    card: tuple[str, str, str, date] | None = field(default=None, repr=False)
    branch: str = field(default="", repr=False)
    _fingerprint: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return not self.problems and self.member is not None

    def key(self) -> tuple[int, date | None, str]:
        return (self.member.pk if self.member else 0, self.exam_date, self.program)

    def fingerprint(self) -> str:
        """``fingerprint(self.results())``, for the common case (a CSV: no details) without the dicts. Asked
        once the entry is read (its values no longer change) and kept: the duplicate check and the
        comparison with the stored record both ask, a re-import's dry run spent a sixth of its time here."""
        if self._fingerprint is None:
            if self.details:
                self._fingerprint = fingerprint(self.results())
            else:
                unit_of = catalogue_module.load().unit_of
                values = sorted(self.values.items())
                self._fingerprint = ",".join(
                    [f"{item}={value_text(value)}{SEP}{unit_of(item)}" for item, value in values if value is not None]
                )
        return self._fingerprint

    def results(self) -> dict[str, dict[str, Any]]:
        """The results as the record stores them (``result_json``)."""
        unit_of = catalogue_module.load().unit_of
        return {
            item: result_json(value, unit_of(item), **self.details.get(item, {}))
            for item, value in self.values.items()
            if value is not None
        }


# ------------------------------------------------------------------------------------------ MHLW XML


def _is_zip(data: bytes) -> bool:
    return data[:4] in (b"PK\x03\x04", b"PK\x05\x06")  # an empty ZIP is its end record alone


def _not_xml(data: bytes) -> str:
    """Why a file sent as XML is neither XML nor a ZIP: a CSV (the format left at XML), or anything else."""
    first_line = data.lstrip(b"\xef\xbb\xbf").split(b"\n", 1)[0].rstrip(b"\r")
    for encoding in ("utf-8", "cp932"):
        try:
            text = first_line.decode(encoding)
        except UnicodeDecodeError:
            continue
        if ("," in text or "\t" in text) and text.replace("\t", " ").isprintable():
            return "looks_like_csv"
    return "not_xml_or_zip"


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
        if not data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
            raise FileError(_not_xml(data))
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
            continue
        entry.details[key] = {
            "unit_as_given": result.unit_as_given or "", "code": result.code or "",
            "interpretation": result.interpretation or "",
        }  # fmt: skip
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
        try:
            entry.branch = insurance_branch(parsed.branch or "")
        except ValueError:
            entry.problems.append(("insurance_branch", "bad_branch"))
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
    which); where several people share the card's data (twins of one sex), the 枝番 picks one; an
    entry with another person's 枝番 is never theirs; more than one hit is ambiguous. Sets ``member``
    or adds the problem."""
    tenant = require_tenant()
    by_number: dict[str, list[Entry]] = {}
    cards: list[tuple[Entry, list[str]]] = []
    employee_number, card = indexer(tenant.pk, "employee-number"), indexer(tenant.pk, "insurance-card")
    for entry in entries:
        if entry.employee_number:
            by_number.setdefault(employee_number(entry.employee_number), []).append(entry)
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
                    index=card,
                )
                for relationship in (Member.Relationship.SELF, Member.Relationship.FAMILY)
            ]
            cards.append((entry, indexes))
    without_jit()
    if by_number:
        found = dict(_people("employee_number_index", list(by_number)))
        for index, matched in by_number.items():
            for entry in matched:
                entry.member = found.get(index)
                if entry.member is None:
                    entry.problems.append(("employee_number", "member_not_found"))
    if cards:
        hits: dict[str, list[Person]] = {}
        wanted = [index for _entry, indexes in cards for index in indexes]
        for index, person in _people("insurance_card_index", wanted, branch=True):
            hits.setdefault(index, []).append(person)
        for entry, indexes in cards:
            # the card's data matched someone whose 枝番 is another: say so, not "check everything"
            reason = "branch_mismatch" if any(hits.get(index) for index in indexes) else "member_not_found"
            for index in indexes:
                people = _same_branch(hits.get(index, []), entry.branch)
                if len(people) > 1:
                    reason = "member_ambiguous"
                    break
                if people:
                    entry.member, reason = people[0], ""
                    break
            if reason:
                entry.problems.append(("", reason))


def _same_branch(people: list[Person], branch: str) -> list[Person]:
    """Of the people under one card key, those the 枝番 may be: the one with that branch, else those
    without one on file; without a branch, all of them."""
    if not branch:
        return people
    return [p for p in people if p.branch == branch] or [p for p in people if not p.branch]


class Person(NamedTuple):
    """A matched roster entry as the import needs it: its id, and the sex and birth date that judging
    reads (opened once per chunk; no model instance for each of an import's people)."""

    pk: int
    sex: str
    birth_date: date | None
    branch: str = ""  # 枝番, read when matching by card


_SEXES = frozenset(Member.Sex.values)


def _people(key_field: str, keys: list[str], *, branch: bool = False) -> Iterator[tuple[str, Person]]:
    """(key, person) of the roster entries whose blind index ``key_field`` is one of ``keys``, one index
    probe per key (``rows_by_keys``: the plan does not depend on table statistics); ``branch``: their
    枝番 too (matching by card)."""
    tenant_id = require_tenant().pk
    fields = [Member._meta.get_field(name) for name in ("sex", "birth_date", "insurance_branch")[: 3 if branch else 2]]
    names = [f.attname for f in fields]
    for key, pk, uid, *values in rows_by_keys(Member, key_field, keys, ("pk", "uid", *names)):
        sealed = [(f, value) for f, value in zip(fields, values, strict=True) if isinstance(value, bytes)]
        opened = dict.fromkeys(names)
        if sealed:
            opened.update(zip((f.attname for f, _v in sealed), open_row(tenant_id, uid.bytes, sealed), strict=True))
        yield key, Person(pk, opened["sex"] or "", opened["birth_date"], opened.get("insurance_branch") or "")


# ----------------------------------------------------------------------------------------------- CSV


def mapping_targets() -> list[tuple[str, str]]:
    """Every target a CSV column may map to, as (key, name in the reader's language): who and when, the
    card, the questionnaire, then the catalogue's items in order. What the mapping page lists."""
    keys = [*IDENTITY_TARGETS, *CARD_TARGETS, CARD_BRANCH, *QUESTION_TARGETS, *catalogue_module.load().items]
    return [(key, column_label(key)) for key in keys]


def mapping_problems(mapping: dict[str, str]) -> list[str]:
    """Targets that are neither an identity field, a questionnaire key nor a catalogue item; and the
    required targets that are missing. Empty when the mapping is usable."""
    known = {*IDENTITY_TARGETS, *CARD_TARGETS, CARD_BRANCH, *QUESTION_TARGETS, *catalogue_module.load().items}
    problems = [
        _("「%(column)s」の対応先 %(target)s は対応先の一覧にありません") % {"column": column, "target": target}
        for column, target in mapping.items()
        if target not in known
    ]
    targets = set(mapping.values())
    who = ("employee_number",) if "employee_number" in targets or not targets & set(CARD_TARGETS) else CARD_TARGETS
    problems += [
        _("%(target)s（%(key)s）に対応する列がありません") % {"target": TARGET_LABELS[t], "key": t}
        for t in (*who, "exam_date")
        if t not in targets
    ]
    repeated = sorted(t for t in targets if list(mapping.values()).count(t) > 1)
    problems += [_("%(target)s に複数の列が対応しています") % {"target": column_label(t)} for t in repeated]
    return problems


def mapping_save(
    *, provider: str, mapping: dict[str, str], acting_user: User | None, mapping_id: int | None = None
) -> CheckupCsvMapping:
    """Save a provider's column→item mapping: a new one, or ``mapping_id`` edited (its provider renamed
    too, never copied under the new name)."""
    provider = provider.strip()
    if not provider:
        raise AppError("provider_missing", _("健診機関名を入力してください。"))
    clean = {_nfkc(column): target.strip() for column, target in mapping.items() if column.strip() and target.strip()}
    if problems := mapping_problems(clean):
        raise AppError("invalid_mapping", _("列の対応が正しくありません: %(p)s") % {"p": "、".join(problems)})
    if mapping_id is None:
        if CheckupCsvMapping.objects.filter(provider=provider).exists():  # never replaced by a form meant to add
            raise AppError(
                "provider_taken",
                _("「%(provider)s」の列の対応はすでにあります。変えるときは一覧の名前から編集してください。")
                % {"provider": provider},
            )
        saved = CheckupCsvMapping.objects.create(provider=provider, mapping=clean)
    else:
        saved = CheckupCsvMapping.objects.get(pk=mapping_id)
        if CheckupCsvMapping.objects.filter(provider=provider).exclude(pk=saved.pk).exists():
            raise AppError("provider_taken", _("その健診機関名の列の対応はすでにあります。"))
        saved.provider, saved.mapping = provider, clean
        saved.save(update_fields=["provider", "mapping", "updated_at"])
    audit.record(
        action="checkup.csv_mapping_saved", target_type="checkup_csv_mapping", target_id=saved.pk,
        details={"columns": len(clean)}, actor=acting_user,
    )  # fmt: skip
    return saved


def mapping_delete(*, mapping: CheckupCsvMapping, acting_user: User | None) -> None:
    """Delete a provider's mapping. Jobs read with it keep their results; one still waiting to be applied
    fails with mapping_missing and is uploaded again with another mapping."""
    pk, columns = mapping.pk, len(mapping.mapping)
    mapping.delete()
    audit.record(action="checkup.csv_mapping_deleted", target_type="checkup_csv_mapping", target_id=pk,
                 details={"columns": columns}, actor=acting_user)  # fmt: skip


def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()


@dataclass(frozen=True)
class CsvLayout:
    """How a provider CSV reads, decided once in the dry run and kept in the job's plan."""

    encoding: str
    delimiter: str
    columns: list[str | None]  # mapping target per column
    body_start: int  # byte offset of the first record after the header
    ignored: list[str] = field(default_factory=list)  # header names the mapping does not read


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
    if missing := set(mapping.values()) - set(filter(None, columns)):
        # Named by the header the mapping expects (体重), the way the admin sees the file.
        names = [column for column, target in mapping.items() if target in missing]
        # None of them at all: another provider's file, or no header line (never shown: it may be a person's row).
        code = "columns_missing" if any(columns) else "mapping_mismatch"
        raise FileError(code, errors=[_header_error(name, "column_missing") for name in names])
    mapped = [column for column in columns if column]
    if len(mapped) != len(set(mapped)):  # one header twice: which of its columns holds the value?
        raise FileError("duplicate_column", row=1)
    ignored = [_nfkc(cell)[:40] for cell, to in zip(header, columns, strict=True) if to is None and cell.strip()]
    return CsvLayout(encoding, delimiter, columns, header_end, ignored)


def _header_error(column: str, code: str) -> dict:
    """A finding about the header line (row 1), named by the header's text (a column name, not a value)."""
    return {"row": 1, "source": "", "column": column, "code": code}


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


def _csv_records(f: IO[bytes], layout: CsvLayout, *, start: int, first_row: int) -> Iterator[tuple[int, list[str]]]:
    """(row number, cells) of each non-blank record from byte ``start``, not yet read as an entry."""
    number = first_row - 1
    for _end, cells in records(f, start=start, encoding=layout.encoding, delimiter=layout.delimiter):
        number += 1
        if any(cell.strip() for cell in cells):
            yield number, cells


def _csv_entry(line: int, cells: list[str], columns: list[str | None], catalogue: catalogue_module.Catalogue) -> Entry:
    entry = Entry(row=line, program="regular")
    values, problems = entry.values, entry.problems
    employee_number, card = "", {}
    width = len(cells)
    if width > len(columns) and any(cell.strip() for cell in cells[len(columns) :]):
        problems.append(("", "column_count"))  # a stray cell shifts every value after it: read none of them
        return entry
    for at, target, precision, low, high, answers in _column_plan(tuple(columns), catalogue):
        if at >= width:
            break
        raw = cells[at]
        value = raw.strip() if raw.isascii() else _nfkc(raw)  # NFKC leaves ASCII as it is
        if not value:
            continue
        if low is not None:  # a quantity, the most common column: read here, without a call per value
            number = Decimal(value) if value.replace(".", "", 1).isdigit() else _number(value)  # 120, 5.6: at once
            if number is None:
                problems.append((target, "bad_number"))
            elif not low <= number <= high:
                problems.append((target, "implausible"))
            else:
                values[target] = number if precision is None else number.quantize(precision, ROUND_HALF_UP)
        elif answers is not None:  # a coded answer (尿糖 −/±/+ or its code)
            code = CO_SYMBOLS.get(value, value)
            code = answers.get(code, code)
            if code in answers.values():
                values[target] = Decimal(code)
            else:
                problems.append((target, "bad_answer"))
        elif target == "employee_number":
            employee_number = value
        elif target in ("insurance_symbol", "insurance_number"):
            card[target] = value
        elif target == CARD_BRANCH:
            try:
                entry.branch = insurance_branch(value)
            except ValueError:
                problems.append((target, "bad_branch"))
        elif target == "sex":
            if (sex := SEX_WORDS.get(value.casefold())) is None:
                problems.append((target, "bad_answer"))
            else:
                card[target] = sex
        elif target == "birth_date":
            try:
                card[target] = _date(value)
            except ValueError:
                problems.append((target, "bad_date"))
        elif target == "exam_date":
            try:
                entry.exam_date = _date(value)
            except ValueError:
                problems.append((target, "bad_date"))
            else:
                if entry.exam_date > latest_exam_date():
                    problems.append((target, "future"))
        elif target == "program":
            program = PROGRAM_WORDS.get(value.casefold())
            if program is None:
                problems.append((target, "bad_program"))
            else:
                entry.program = program
        elif target == "institution":
            entry.institution = value[:100]
        elif target == "hours_since_meal":
            if (hours := _number(value)) is None:
                problems.append((target, "bad_number"))
            elif not Decimal(0) <= hours <= Decimal(72):
                problems.append((target, "implausible"))
            else:
                entry.questionnaire[target] = format(hours.normalize(), "f")  # 12.0 and 12 store alike
        elif target in QUESTION_TARGETS:
            word = value.casefold()
            if word in YES_WORDS or word in NO_WORDS:
                entry.questionnaire[target] = word in YES_WORDS
            else:
                problems.append((target, "bad_answer"))
    if entry.exam_date is None and not any(column == "exam_date" for column, _r in problems):
        problems.append(("exam_date", "exam_date_missing"))
    if not values and not problems:
        problems.append(("", "no_results"))
    if employee_number:
        entry.employee_number = employee_number
    elif all(card.get(t) for t in CARD_TARGETS) and (CARD_BRANCH, "bad_branch") not in problems:
        entry.card = (card["insurance_symbol"], card["insurance_number"], card["sex"], card["birth_date"])
    elif not any(column in CARD_TARGETS or column == CARD_BRANCH for column, _reason in problems):
        problems.append(("employee_number", "identity_missing"))
    return entry


def _number(text: str) -> Decimal | None:
    """A plain decimal as written in a result cell: 120, 5.6, 1,234.5 (thousands grouped); None for anything
    else, among it a decimal comma (98,0 is not 980), exponents, underscores, NaN and infinity."""
    plain = text[1:] if text[:1] in "+-" else text
    if not plain.replace(".", "", 1).isdigit():
        if _GROUPED.fullmatch(plain) is None:
            return None
        text = text.replace(",", "")
    return Decimal(text)


_GROUPED = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")


ColumnPlan = tuple[tuple[int, str, Decimal | None, Decimal | None, Decimal | None, dict[str, str] | None], ...]


_PLANS: dict[tuple[tuple[str | None, ...], str], ColumnPlan] = {}


def _column_plan(columns: tuple[str | None, ...], catalogue: catalogue_module.Catalogue) -> ColumnPlan:
    """Per mapped column: its position and target; for a quantity its precision and the range of values
    ``plausibility_problem`` accepts (never negative; the item's minimum and maximum); for a coded item
    its answers (label or code → code). Built once per file layout, not per record."""
    found = _PLANS.get((columns, catalogue.name))
    if found is not None:
        return found
    plan = []
    for at, target in enumerate(columns):
        if target is None:
            continue
        item = catalogue.items.get(target)
        precision = low = high = answers = None
        if item is not None and item.type == "PQ":
            precision = item.precision
            low = max(item.minimum, Decimal(0)) if item.minimum is not None else Decimal(0)
            high = item.maximum if item.maximum is not None else Decimal("Infinity")
        elif item is not None:
            answers = {code: code for code, _label in item.answers} | {label: code for code, label in item.answers}
        plan.append((at, target, precision, low, high, answers))
    if len(_PLANS) > 64:
        _PLANS.clear()
    found = _PLANS[(columns, catalogue.name)] = tuple(plan)
    return found


def _date(value: str) -> date:
    """An exam date: the common ``2025/04/01`` and ``2025-04-01`` read directly, the rest (wareki,
    full-width, 8 digits) by ``parse_date``."""
    if len(value) == 10 and value[4] == value[7] and value[4] in "/-" and value[:4].isdigit():
        try:
            return date(int(value[:4]), int(value[5:7]), int(value[8:]))
        except ValueError:
            pass  # parse_date gives the precise reason
    return parse_date(value)


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


class FirstSeen(NamedTuple):
    """Where an exam first appeared in the file, and a digest of what it said."""

    chunk: int
    index: int
    row: int
    source: str
    entry: Entry | None  # while its chunk is being checked; None once the chunk is in the plan
    content: int
    outcome: str = ""


def _content(entry: Entry) -> int:
    return hash((entry.fingerprint(), json.dumps(entry.questionnaire, sort_keys=True), entry.institution))


def _check(entries: list[Entry], seen: dict[tuple, FirstSeen], chunk: int = 0) -> list[FirstSeen]:
    """A member without a recorded sex cannot be judged (sex-specific bands), so is not imported, nor is
    an exam before their birth. One person's exam twice in the file: the later row is an error; when the
    two say different things, which is right is not ours to pick and the first is withdrawn too. Returns
    the first rows withdrawn from chunks already planned (the caller takes them out of the plan)."""
    withdrawn = []
    for index, entry in enumerate(entries):
        if entry.ok and entry.member is not None and entry.member.sex not in _SEXES:
            entry.problems.append(("", "sex_missing"))
        born = entry.member.birth_date if entry.member is not None else None
        if entry.ok and born is not None and entry.exam_date is not None and entry.exam_date < born:
            entry.problems.append(("exam_date", "before_birth"))
        if not entry.ok:
            continue
        first = seen.get(entry.key())
        if first is None:
            seen[entry.key()] = FirstSeen(chunk, index, entry.row, entry.source, entry, _content(entry))
            continue
        entry.problems.append(("", "duplicate"))
        if first.content != _content(entry) and first.outcome != "withdrawn":
            if first.entry is not None:  # in this chunk: not planned yet
                first.entry.problems.append(("", "duplicate"))
            else:
                withdrawn.append(first)
            seen[entry.key()] = first._replace(outcome="withdrawn")
    return withdrawn


class StoredRecord(NamedTuple):
    """A stored record as the comparison with the file needs it; ``results`` is their fingerprint
    (``fingerprint``), so a record's results compare as one string."""

    pk: int
    institution: str
    questionnaire: dict
    results: str


Stored = dict[tuple[int, date | None, str], StoredRecord]


def _stored(entries: list[Entry]) -> Stored:
    """The stored records of the valid entries: on PostgreSQL one query, each (member, exam date,
    program) probed through the unique index whatever the table statistics say (a never-analysed table
    would otherwise be scanned whole for every chunk)."""
    wanted = {entry.key() for entry in entries if entry.ok}
    if not wanted:
        return {}
    if connections[DEFAULT_DB_ALIAS].vendor != "postgresql":
        return _stored_orm(wanted)
    # The keys as three comma-separated texts (ids, ISO dates, program codes: no commas), split by the
    # server: a third of the time psycopg takes to send them as 3,000 array elements.
    members, days, programs = zip(*wanted, strict=True)
    keys = [",".join(map(str, members)), ",".join(map(date.isoformat, days)), ",".join(programs)]  # type: ignore[arg-type]
    without_jit()
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(STORED, [*keys, require_tenant().pk])
        rows = cursor.fetchall()
    stored: Stored = {}
    for member_id, exam_date, program, pk, institution, questionnaire, results in rows:
        answers = json.loads(questionnaire) if isinstance(questionnaire, str) else questionnaire
        stored[(member_id, exam_date, program)] = StoredRecord(pk, institution, answers, results or "")
    return stored


# The results' fingerprint (``fingerprint``) built by the server: a re-import compares one text per record,
# without decoding the JSON. OFFSET 0 keeps the per-key probe from being flattened into a join the planner
# would cost from (missing) statistics.
STORED = """
SELECT r.member_id, r.exam_date, r.program, r.id, r.institution, r.questionnaire,
       (SELECT string_agg(e.key || '=' || concat_ws(chr(31), e.value->>'value', e.value->>'unit', e.value->>'text',
                          e.value->>'unit_as_given', e.value->>'code', e.value->>'interpretation'),
                          ',' ORDER BY e.key COLLATE "C")
          FROM jsonb_each(r.results) e) AS fingerprint
  FROM unnest(string_to_array(%s, ',')::bigint[], string_to_array(%s, ',')::date[], string_to_array(%s, ','))
       AS k(member_id, exam_date, program)
 CROSS JOIN LATERAL (
       SELECT t.id, t.member_id, t.exam_date, t.program, t.institution, t.questionnaire, t.results
         FROM checkups_checkuprecord t
        WHERE t.tenant_id = %s AND t.member_id = k.member_id AND t.exam_date = k.exam_date
          AND t.program = k.program
       OFFSET 0) AS r
"""


def _stored_orm(wanted: set[tuple[int, date | None, str]]) -> Stored:
    members, days = list({key[0] for key in wanted}), list({key[1] for key in wanted})
    return {
        (r.member_id, r.exam_date, r.program): StoredRecord(
            r.pk, r.institution, r.questionnaire, fingerprint(r.results)
        )
        for r in CheckupRecord.objects.filter(member_id__in=members, exam_date__in=days)
        if (r.member_id, r.exam_date, r.program) in wanted
    }


def _outcome(entry: Entry, stored: Stored) -> str:
    """added / updated / unchanged for a valid entry, against what is stored now."""
    found = stored.get(entry.key())
    if found is None:
        return "added"
    same = (
        found.results == entry.fingerprint()
        and (found.questionnaire or {}) == entry.questionnaire
        and found.institution == entry.institution
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
        max_bytes=settings.CHECKUP_IMPORT_MAX_BYTES,
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
        with jobs.job_open(job) as f, jobs.SideFile(job) as side, jobs.collector_paused():
            counts, errors, plan = _validate(job, f, side)
    except FileError as exc:
        job.errors = exc.errors or ([{"row": exc.row, "source": "", "column": "", "code": exc.code}] if exc.row else [])
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


def _validate(job: Job, f: IO[bytes], side: jobs.SideFile) -> tuple[dict, list[dict], dict]:
    """The dry run; ``side`` keeps the entries to write as read here (sealed), so that the apply does not
    read and parse the file again."""
    counts = {"rows": 0, "added": 0, "updated": 0, "unchanged": 0, "errors": 0, "warnings": 0, "rechecks": 0}
    errors: list[dict] = []
    plan: dict[str, Any] = {"chunk_size": CHUNK_SIZE, "chunks": []}
    stream: Iterator[tuple[int, Entry]]
    if job.options.get("source") == SOURCE_CSV:
        layout = csv_layout(f, _mapping_of(job))
        plan.update(encoding=layout.encoding, delimiter=layout.delimiter, columns=layout.columns)
        stream, start = csv_entries(f, layout), layout.body_start
        # Said, not silently dropped: a column the provider added is read once it is in the mapping.
        errors += [_header_error(name, "column_ignored") for name in layout.ignored]
    else:
        data = f.read()
        stream, start = ((index, entry) for index, entry in enumerate(xml_entries(data), start=1)), 0
        if _is_zip(data):
            errors += [{"row": None, "source": name, "column": "", "code": "not_a_result_file"}
                       for name in zip_other_files(data)]  # fmt: skip
    counts["warnings"] += len(errors)
    seen: dict[tuple, FirstSeen] = {}
    for chunk in _chunks(stream, CHUNK_SIZE):
        entries = [entry for _end, entry in chunk]
        match_members(entries)
        for first in _check(entries, seen, len(plan["chunks"])):
            _withdraw(first, plan, counts, errors)
        stored = _stored(entries)
        todo = unchanged = 0
        corrected: list[int] = []
        for index, entry in enumerate(entries):
            counts["rows"] += 1
            errors += _errors_of(entry)
            counts["warnings"] += len(entry.warnings)
            if not entry.ok:
                counts["errors"] += 1
                if counts["errors"] > settings.CHECKUP_IMPORT_MAX_ERRORS:  # a wrong file: stop, show what was found
                    raise FileError("too_many_errors", errors=errors)
                continue
            outcome = _outcome(entry, stored)
            first = seen[entry.key()]
            if first.entry is entry:  # kept for a later row of the same exam: no entry, its outcome
                seen[entry.key()] = first._replace(entry=None, outcome=outcome)
            counts[outcome] += 1
            if outcome == "unchanged":
                unchanged += 1
            else:
                todo |= 1 << index
            if outcome == "updated":
                corrected.append(stored[entry.key()].pk)
        if corrected:  # signed opinions on values about to change: they go back to the physician
            signed = PhysicianOpinion.objects.filter(record_id__in=corrected).values("record_id").distinct()
            counts["rechecks"] += signed.count()
        mask = jobs.plan_mask(todo, len(entries))
        plan["chunks"].append([start, entries[0].row, len(entries), mask, unchanged])
        side.keep(_keep_entries(entries, todo) if todo else None)
        start = chunk[-1][0]
        jobs.chunk_done()
    side.save(plan)
    return counts, errors, plan


def _withdraw(first: FirstSeen, plan: dict[str, Any], counts: dict[str, int], errors: list[dict]) -> None:
    """Take an exam's first row, in a chunk already planned, out of what applying writes: a later row of
    the file says something else about the same exam."""
    planned = plan["chunks"][first.chunk]
    planned[3] = jobs.plan_mask(jobs.plan_todo(planned[3]) & ~(1 << first.index), planned[2])
    if first.outcome == "unchanged":
        planned[4] -= 1
    counts[first.outcome] -= 1
    counts["errors"] += 1
    errors.append({"row": first.row, "source": first.source, "column": "", "code": "duplicate"})


def can_apply(job: Job) -> bool:
    return job.state == Job.State.VALIDATED and bool(
        job.counts.get("added") or job.counts.get("updated") or job.counts.get("unchanged")
    )


def rechecks_to_acknowledge(job: Job) -> int:
    """Records with a signed physician's opinion that the preview's corrections send back for a new opinion:
    the admin acknowledges them before applying (the page's tick, the API's ``acknowledge_rechecks``); 0 for a
    job that is no longer a preview. A preview's counts never change once validated."""
    return job.counts.get("rechecks", 0) if job.state == Job.State.VALIDATED else 0


def checkup_import_confirm(
    *, job: Job, acting_user: User | None, enqueue: bool = True, acknowledged: bool = False
) -> Job:
    """The admin accepts the preview: apply in chunks on a worker. Corrections that send signed records
    back to the physician (``rechecks_to_acknowledge``) need ``acknowledged`` (the page's tick, the API's
    flag, the command's option): refused without it, so a caller that forgets to ask never does so silently."""
    if (n := rechecks_to_acknowledge(job)) and not acknowledged:
        message = _(
            "反映すると、就業判定済みの %(n)s 件が産業医の再確認に戻ります。確認したうえで反映してください。"
        ) % {"n": n}
        raise AppError("acknowledge_required", message)
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


def checkup_import_apply(*, tenant: Tenant, job_id: int, progress: Callable[[Job], None] | None = None) -> None:
    """Apply a confirmed job, each chunk in a transaction of its own (what the worker runs). On
    PostgreSQL the writing of a chunk (server time: inserts, index and policy checks, the foreign-key
    checks at its commit) overlaps the reading, matching and judging of the next (client time).
    ``progress(job)`` after each chunk (the operator command's progress bar)."""
    jobs.job_apply(
        tenant=tenant, job_id=job_id, step=checkup_import_apply_step, prepare=_prepare_chunk, progress=progress
    )


class Write(NamedTuple):
    """One entry to write, judged: ``record_id`` of the stored record it replaces (None: a new record,
    ``record_line`` its COPY text, results included); its judgement as COPY text, all but the record id
    that starts it."""

    entry: Entry
    record_id: int | None
    judgement: dict[str, Any]
    record_line: str
    judgement_line: str


@dataclass
class PreparedChunk:
    """One chunk's entries matched, compared with what is stored and judged: all but the writing."""

    index: int
    size: int
    counts: dict[str, int]  # added / updated / unchanged / errors of this chunk
    writes: list[Write] = field(default_factory=list)
    criteria_id: int | None = None  # the grades criteria version the chunk was judged under
    criteria_label: str = ""


def _prepare_chunk(job: Job, index: int) -> PreparedChunk:
    """Chunk ``index`` (only its entries marked to write, as the dry run kept them) matched, checked,
    compared with what is stored and judged under the current criteria, its rows rendered for writing."""
    start, first_row, size, mask, unchanged = job.plan["chunks"][index]
    todo = jobs.plan_todo(mask)
    # the dry run's errors and duplicates; its unchanged entries are not read again
    counts = {"added": 0, "updated": 0, "unchanged": unchanged, "errors": size - unchanged - todo.bit_count()}
    prepared = PreparedChunk(index=index, size=size, counts=counts)
    if not todo:
        return prepared
    if (kept := jobs.side_piece(job, index)) is not None:
        entries = _kept_entries(kept, todo)
    else:  # a job checked before its dry run kept the entries
        entries = _chunk_entries(job, start=start, first_row=first_row, size=size, todo=todo)
    match_members(entries)
    _check(entries, {})  # checked again: the roster may have changed since the preview
    stored = _stored(entries)
    criteria = JudgingCriteria.current()
    prepared.criteria_id, prepared.criteria_label = criteria.grades_set.pk, criteria.label
    tail = _judgement_tail(criteria, job.confirmed_by_id)
    heads, tails = _result_heads()
    source, sha256 = job.options.get("source", ""), job.file_sha256
    created = f"\t{_copy_value(source)}\t{_copy_value(sha256)}\t{_copy_value(timezone.now())}\n"
    for entry in entries:
        if not entry.ok:
            counts["errors"] += 1
            continue
        outcome = _outcome(entry, stored)
        counts[outcome] += 1
        if outcome == "unchanged":
            continue
        assert entry.member is not None and entry.exam_date is not None  # noqa: S101 - entry.ok
        fiscal_year = fiscal_year_of(entry.exam_date)
        fields = judgement_fields(
            fiscal_year=fiscal_year, questionnaire=entry.questionnaire, member=entry.member, values=entry.values,
            criteria=criteria,
        )  # fmt: skip
        record_id, record_line = None, ""
        if outcome == "updated":
            record_id = stored[entry.key()].pk
        else:
            fields_in_order = (entry.member.pk, entry.exam_date, fiscal_year, entry.program, entry.institution,
                               entry.questionnaire, _results_text(entry, heads, tails))  # fmt: skip
            record_line = "\t".join(map(_copy_value, fields_in_order)) + created
        line = "\t".join(map(_copy_value, (fields["grades"], fields["overall"], fields["mhlw"],
                                           fields["metabolic_syndrome"], fields["guidance_level"])))  # fmt: skip
        prepared.writes.append(Write(entry, record_id, fields, record_line, f"\t{line}{tail}"))
    return prepared


def _judgement_tail(criteria: JudgingCriteria, judge_id: int | None) -> str:
    """The COPY text of the judgement columns that every judgement of a chunk shares."""
    return "\t" + "\t".join(map(_copy_value, (criteria.grades_set.pk, timezone.now(), judge_id))) + "\n"


def _result_heads() -> tuple[dict[str, str], dict[str, str]]:
    """Per item, the JSON text of a stored result (``result_json``) around its value text:
    ``"item": {"value": "`` before it, ``", "unit": "…"}`` after."""
    items = catalogue_module.load().items
    heads = {key: json.dumps(key) + ': {"value": "' for key in items}
    return heads, {key: '", "unit": ' + json.dumps(item.unit, ensure_ascii=False) + "}" for key, item in items.items()}


def _results_text(entry: Entry, heads: dict[str, str], tails: dict[str, str]) -> str:
    """The JSON text of ``entry.results()``; for the common case, a CSV (no details), put together from
    its parts without a dict per value."""
    if entry.details:
        return json.dumps(entry.results(), ensure_ascii=False)
    parts = [
        f"{heads[item]}{value_text(value)}{tails[item]}" for item, value in entry.values.items() if value is not None
    ]
    return "{" + ", ".join(parts) + "}"


def checkup_import_apply_step(*, job_id: int, prepared: PreparedChunk | None = None) -> bool:
    """Apply the next chunk (or finish) inside the caller's transaction; True while steps remain. The
    chunk's records, results, judgements and the advanced ``next_chunk`` commit together, so a crashed
    step leaves nothing behind and a step delivered twice finds its chunk done. ``prepared``: the chunk
    as read ahead by ``checkup_import_apply`` (ignored unless it is the chunk due)."""
    job = jobs.job_lock(job_id=job_id)
    if job is None or job.state != Job.State.APPLYING:
        return False
    applied = job.counts["applied"]
    if job.next_chunk < len(job.plan.get("chunks", [])):
        if prepared is None or prepared.index != job.next_chunk:
            prepared = _prepare_chunk(job, job.next_chunk)
        for name, n in prepared.counts.items():
            applied[name] += n
        applied["judged"] += _write_chunk(prepared, job)
        job.next_chunk += 1
        job.rows_done = min(job.rows_total, job.rows_done + prepared.size)
        job.save(update_fields=["next_chunk", "rows_done", "counts", "updated_at"])  # not the plan and errors again
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


def _keep_entries(entries: list[Entry], todo: int) -> dict:
    """The chunk's entries to write as the dry run read them, for the apply: {"items": the items they have
    values for, "entries": [position, then what the entry holds, its values in the order of "items" (the
    text of each, null for an item it has no value for)]}. Its member is matched again at the apply (the
    roster may change meanwhile)."""
    kept, names = [], sorted({item for i, entry in enumerate(entries) if todo >> i & 1 for item in entry.values})
    for index, entry in enumerate(entries):
        if not todo >> index & 1:
            continue
        assert entry.exam_date is not None  # noqa: S101 - an entry to write
        card = entry.card and [*entry.card[:3], entry.card[3].isoformat()]
        get = entry.values.get
        values = [None if (value := get(item)) is None else str(value) for item in names]  # never None when read
        kept.append([index, entry.row, entry.source, entry.exam_date.isoformat(), entry.program, entry.institution,
                     values, entry.details, entry.questionnaire, entry.employee_number, card, entry.branch,
                     entry.fingerprint()])  # fmt: skip
    return {"items": names, "entries": kept}


def _kept_entries(kept: dict, todo: int) -> list[Entry]:
    """The chunk's entries marked to write, as ``_keep_entries`` kept them (``jobs.SideFile``)."""
    names, entries = kept["items"], []
    for fields in kept["entries"]:
        index, row, source, exam_date, program, institution, texts, details, questionnaire = fields[:9]
        employee_number, card, branch, fingerprint = fields[9:]
        if not todo >> index & 1:
            continue  # withdrawn after its chunk was planned: a later row of the file is the same exam
        values = {item: Decimal(text) for item, text in zip(names, texts, strict=True) if text is not None}
        entry = Entry(
            row=row, source=source, exam_date=date.fromisoformat(exam_date), program=program, institution=institution,
            values=values, details=details, questionnaire=questionnaire, employee_number=employee_number,
            branch=branch, card=card and (card[0], card[1], card[2], date.fromisoformat(card[3])),
        )  # fmt: skip
        entry._fingerprint = fingerprint
        entries.append(entry)
    return entries


def _chunk_entries(job: Job, *, start: int, first_row: int, size: int, todo: int) -> list[Entry]:
    """The chunk's entries marked to write, read again from the file (CSV: only the chunk's bytes, and
    only the records marked are parsed)."""
    entries: list[Entry] = []
    with jobs.job_open(job) as f:
        if job.options.get("source") == SOURCE_CSV:
            plan = job.plan
            layout = CsvLayout(plan["encoding"], plan["delimiter"], plan["columns"], start)
            for index, (number, cells) in enumerate(_csv_records(f, layout, start=start, first_row=first_row)):
                if index >= size:
                    break
                if todo >> index & 1:
                    entries.append(_csv_entry(number, cells, layout.columns, catalogue_module.load()))
            return entries

        def wanted(position: int) -> bool:  # only the chunk's documents marked to write are parsed again
            return 0 <= position - start < size and bool(todo >> (position - start) & 1)

        for position, entry in enumerate(xml_entries(f.read(), wanted)):
            if position - start >= size:
                break
            if entry is not None and position >= start and todo >> (position - start) & 1:
                entries.append(entry)
    return entries


RECORD_COLUMNS = ("member_id", "exam_date", "fiscal_year", "program", "institution", "questionnaire", "results",
                  "source", "source_sha256", "created_at")  # fmt: skip
JUDGEMENT_COLUMNS = ("record_id", "grades", "overall", "mhlw", "metabolic_syndrome", "guidance_level", "criteria_id",
                     "judged_at", "judged_by_id")  # fmt: skip


def _write_chunk(prepared: PreparedChunk, job: Job) -> int:
    """Create or replace the chunk's records (as ``checkup_record_save`` does one by one: an updated
    record's results are replaced, its judgements stay as history), write their judgements and ONE
    audit event listing every record with its judgement (an event per record would be most of a large
    import's time). Returns the number of judgements."""
    writes = prepared.writes
    if not writes:
        return 0
    source, sha256 = job.options.get("source", ""), job.file_sha256
    updates = [CheckupRecord(pk=w.record_id, tenant_id=job.tenant_id, **_record_fields(w.entry, source, sha256))
               for w in writes if w.record_id is not None]  # fmt: skip
    if updates:
        checkup_corrections_keep(
            record_ids=[record.pk for record in updates], job=job, acting_user=job.confirmed_by
        )  # what they held stays as history
        CheckupRecord.objects.bulk_update(updates, ["fiscal_year", "institution", "questionnaire", "results",
                                                    "source", "source_sha256"], batch_size=500)  # fmt: skip
    new = [w for w in writes if w.record_id is None]
    if connections[DEFAULT_DB_ALIAS].vendor == "postgresql":
        judged = _write_copy(new, writes)
    else:
        judged = _write_orm(new, writes, source=source, sha256=sha256, prepared=prepared, judge_id=job.confirmed_by_id)
    audit.record(
        action="checkup.judged", target_type="job", target_id=job.pk,
        details={
            "criteria": prepared.criteria_label,
            "records": [record_id for record_id, _pk in judged],
            "judgements": [pk for _record_id, pk in judged],
        },
        actor=job.confirmed_by,
    )  # fmt: skip
    return len(judged)


def _record_fields(entry: Entry, source: str, sha256: str) -> dict[str, Any]:
    assert entry.exam_date is not None  # noqa: S101 - entry.ok
    return {
        "fiscal_year": fiscal_year_of(entry.exam_date), "institution": entry.institution,
        "questionnaire": entry.questionnaire, "results": entry.results(), "source": source, "source_sha256": sha256,
    }  # fmt: skip


def _write_copy(new: list[Write], writes: list[Write]) -> list[tuple[int, int]]:
    """PostgreSQL: records (with their results) and judgements each as one COPY and one INSERT … SELECT;
    returns (record id, judgement id) pairs."""
    ids = {
        (member_id, exam_date, program): pk
        for pk, member_id, exam_date, program in _copy_insert(
            CheckupRecord,
            RECORD_COLUMNS,
            "".join(w.record_line for w in new),
            returning=("id", "member_id", "exam_date", "program"),
        )
    }
    record_ids = [w.record_id if w.record_id is not None else ids[w.entry.key()] for w in writes]
    judgements = "".join(f"{record_id}{w.judgement_line}" for record_id, w in zip(record_ids, writes, strict=True))
    return sorted(_copy_insert(Judgement, JUDGEMENT_COLUMNS, judgements, returning=("record_id", "id")))


def _write_orm(
    new: list[Write], writes: list[Write], *, source: str, sha256: str, prepared: PreparedChunk, judge_id: int | None
) -> list[tuple[int, int]]:
    """Other databases (the SQLite test runs): the same rows through ``bulk_create``."""
    records = [
        CheckupRecord(member_id=w.entry.member.pk, exam_date=w.entry.exam_date, program=w.entry.program,  # type: ignore[union-attr]
                      **_record_fields(w.entry, source, sha256))
        for w in new
    ]  # fmt: skip
    CheckupRecord.objects.bulk_create(records, batch_size=500)
    made = iter(records)
    record_ids = [w.record_id if w.record_id is not None else next(made).pk for w in writes]
    judgements = [
        Judgement(record_id=record_id, criteria_id=prepared.criteria_id, judged_by_id=judge_id, **w.judgement)
        for record_id, w in zip(record_ids, writes, strict=True)
    ]
    Judgement.objects.bulk_create(judgements, batch_size=500)
    return sorted((j.record_id, j.pk) for j in judgements)


def _copy_insert(model: type[Model], columns: tuple[str, ...], text: str, *, returning=()) -> list[tuple]:
    """Insert rows given as COPY text (values for ``columns``, attnames) into the current tenant's
    ``model`` table; the ``returning`` columns of the new rows come back, in no particular order.

    COPY into a temporary table, then one INSERT … SELECT: COPY FROM is refused on a table under
    row-level security, the INSERT is checked by it like any other, and the pair costs a fraction of
    the ORM's per-row work."""
    if not text:
        return []
    connection = connections[DEFAULT_DB_ALIAS]
    create, copy_sql, insert, clear = _bulk_statements(model, columns, returning)
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(create)
        with cursor.copy(copy_sql) as copy:
            copy.write(text)
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
            checkup_import_confirm(job=job, acting_user=job.created_by, enqueue=False, acknowledged=True)
        checkup_import_apply(tenant=require_tenant(), job_id=job_id)
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
            row_error_message(error),
        ]
