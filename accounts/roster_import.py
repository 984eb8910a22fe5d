"""Roster import (名簿の取り込み): a CSV that adds, updates and deactivates members in one go.

Flow: ``roster_import_start`` stores the upload and queues validation; ``roster_import_validate``
(a worker) streams the file once, checks every row and records the diff (a dry run: nothing is
written but the job, and the rows to write as it checked them, sealed beside the upload: the apply
does not read and check the file again); the admin confirms (``roster_import_confirm``);
``roster_import_apply_step`` then applies one chunk of rows per transaction, advancing
``Job.next_chunk`` in that same transaction. A killed worker therefore loses at most the chunk in
flight (rolled back) and the next delivery resumes at ``next_chunk``: no half rows, no duplicates.
The last step deactivates members missing from the file (mode ``full``) and writes the audit event.

Memory is flat in the file size: the file is read in blocks, rows are handled a chunk at a time, and
the only per-row state is a set of 64-bit key fingerprints (duplicate detection and mode ``full``).

Errors carry row number, column and a reason code only; the message is translated when shown, and
no cell value is ever copied into an error, a log line or the audit event.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hmac
import logging
import os
import re
import unicodedata
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property, lru_cache, partial
from hashlib import blake2b
from os import urandom
from typing import IO, Any

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, transaction
from django.db.models import Count, Max
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext
from psycopg import sql as pgsql

import audit
from accounts.models import Member, MemberIndexer, Role, User
from healthapp import jobs, offload
from healthapp.crypto import keyring
from healthapp.crypto.blind_index import insurance_card_index
from healthapp.crypto.fields import encrypted_fields, open_row, seal_row
from healthapp.csvsafe import csv_bytes
from healthapp.errors import AppError
from healthapp.keyset import KeySet
from healthapp.lookups import rows_by_keys
from healthapp.models import Job
from tenants.context import require_tenant
from tenants.models import Department, Office, Tenant

logger = logging.getLogger(__name__)
BOM = codecs.BOM_UTF8
READ_BLOCK = 64 * 1024
FULL, PARTIAL = "full", "partial"

# --- Columns -----------------------------------------------------------------------------------------

# Canonical name → (Japanese header, English header, other accepted spellings).
COLUMNS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "employee_number": ("社員番号", "employee_number", ("従業員番号", "employeenumber", "employee_no")),
    "name": ("氏名", "name", ("名前", "fullname")),
    "kana_name": ("フリガナ", "kana", ("カナ", "ふりがな", "kana_name", "氏名カナ", "氏名(カナ)")),
    "birth_date": ("生年月日", "birth_date", ("birthdate", "birthday")),
    "sex": ("性別", "sex", ("gender",)),
    # Named as on the card (記号・番号); 保険者番号 is the insurer's own 8-digit number, read here only because
    # earlier templates named the columns so.
    "insurance_symbol": ("保険証記号", "insurance_symbol", ("記号", "被保険者記号", "保険証の記号", "保険者記号")),
    "insurance_number": ("保険証番号", "insurance_number", ("番号", "被保険者番号", "保険証の番号", "保険者番号")),
    "insurance_branch": ("枝番", "insurance_branch", ("保険証枝番", "枝番号", "branch")),
    "relationship": ("続柄", "relationship", ("本人家族区分",)),
    "office": ("事業所", "office", ("事業所名",)),
    "department": ("部署", "department", ("部署名", "所属")),
    "qualification_start": ("資格取得日", "qualification_start", ("取得日", "加入日")),
    "qualification_end": ("資格喪失日", "qualification_end", ("喪失日",)),
    "email": ("メールアドレス", "email", ("e-mail", "mail", "メール")),
}
COLUMN_LABELS = {
    "employee_number": gettext_lazy("社員番号"),
    "name": gettext_lazy("氏名"),
    "kana_name": gettext_lazy("フリガナ"),
    "birth_date": gettext_lazy("生年月日"),
    "sex": gettext_lazy("性別"),
    # Named as on the card: 保険者番号 alone reads as the insurer's own 8-digit number.
    "insurance_symbol": gettext_lazy("保険証の記号"),
    "insurance_number": gettext_lazy("保険証の番号"),
    "insurance_branch": gettext_lazy("枝番"),
    "relationship": gettext_lazy("続柄"),
    "office": gettext_lazy("事業所"),
    "department": gettext_lazy("部署"),
    "qualification_start": gettext_lazy("資格取得日"),
    "qualification_end": gettext_lazy("資格喪失日"),
    "email": gettext_lazy("メールアドレス"),
}
PERSONAL_TEXT = (
    "employee_number", "name", "kana_name", "sex", "insurance_symbol", "insurance_number", "insurance_branch", "email",
)  # fmt: skip
INSURER_CARD = ("insurance_symbol", "insurance_number", "sex", "birth_date")


def _header_key(text: str) -> str:
    return re.sub(r"[\s_\-()（）]", "", unicodedata.normalize("NFKC", text)).casefold()


_HEADER_LOOKUP = {
    _header_key(alias): canonical
    for canonical, (ja, en, others) in COLUMNS.items()
    for alias in (ja, en, canonical, *others)
}

# --- Errors ------------------------------------------------------------------------------------------

ERROR_MESSAGES = {
    # file level
    "encoding": gettext_lazy("文字コードを判別できません。UTF-8 または Shift_JIS (CP932) の CSV を使ってください。"),
    "utf16": gettext_lazy(
        "UTF-16（Excel の「Unicode テキスト」）のファイルは読めません。"
        "Excel で「CSV UTF-8（コンマ区切り）」または「CSV（コンマ区切り）」として保存してください。"
    ),
    "binary": gettext_lazy("CSV ファイルではありません（バイナリデータが含まれています）。"),
    "spreadsheet": gettext_lazy(
        "Excel のブック（.xlsx / .xls）のままでは読めません。"
        "Excel で「CSV UTF-8（コンマ区切り）」または「CSV（コンマ区切り）」として保存してください。"
    ),
    "csv_format": gettext_lazy("CSV の形式が正しくありません（引用符の閉じ忘れなど）。"),
    "no_header": gettext_lazy("見出し行がありません。"),
    "no_rows": gettext_lazy("データ行がありません。"),
    "unknown_column": gettext_lazy("見出しに不明な列があります。"),
    "duplicate_column": gettext_lazy("見出しに同じ列が二度あります。"),
    "missing_column": gettext_lazy("必須の列がありません。"),
    "too_many_errors": gettext_lazy(
        "エラーが %(limit)s 件を超えたため検証を中止しました。ファイルを確認してください。"
    ),
    "file_missing": gettext_lazy("アップロードされたファイルが見つかりません。"),
    "internal": gettext_lazy("処理中に問題が発生しました。もう一度お試しください。"),
    "interrupted": jobs.INTERRUPTED,
    "expired": gettext_lazy("確認されないまま保存期間を過ぎたため、アップロードされたファイルを削除しました。"),
    # row level
    "column_count": gettext_lazy("列の数が見出しと一致しません。"),
    "formula": gettext_lazy("数式として実行されうる値（= + - @ で始まる値）は取り込めません。"),
    "required": gettext_lazy("必須項目が空です。"),
    "too_long": gettext_lazy("値が長すぎます。"),
    "invalid_chars": gettext_lazy("使用できない文字が含まれています。"),
    "kana": gettext_lazy("フリガナはカタカナまたはひらがなで入力してください。"),
    "date_format": gettext_lazy("日付の形式が正しくありません（例: 2024-04-01、2024/4/1、令和6年4月1日、R6.4.1）。"),
    "date_invalid": gettext_lazy("存在しない日付です。"),
    "date_outside_era": gettext_lazy(
        "元号の期間外の日付です（昭和は64年1月7日まで、平成は31年4月30日まで）。その翌日からは次の元号（平成元年1月8日、令和元年5月1日）か西暦で入力してください。"
    ),
    "date_range": gettext_lazy("生年月日は %(min)s から今日までの日付で入力してください。"),
    "too_young": gettext_lazy("生年月日から数えると15歳未満です。元号や年の誤りがないか確認してください。"),
    "start_after_end": gettext_lazy("資格取得日が資格喪失日と同じか、それより後です。"),
    "sex": gettext_lazy(
        "性別が読めません。男/女、male/female など（使える値は「ファイルの書き方」にあります）で入力してください。"
    ),
    "relationship": gettext_lazy(
        "続柄が読めません。本人/家族、self/family など（使える値は「ファイルの書き方」にあります）で入力してください。"
    ),
    "email": gettext_lazy("メールアドレスの形式が正しくありません。"),
    "duplicate_key": gettext_lazy(
        "同じ社員番号の行がファイル内で先にあります（先の行を取り込み、この行は取り込みません）。"
    ),
    "same_card": gettext_lazy(
        "保険証の記号・番号・続柄・性別・生年月が同じ行がファイル内に複数あります。"
        "双子など別の方であれば、枝番の列で区別してください。"
    ),
    "card_ambiguous": gettext_lazy(
        "名簿に保険証の記号・番号・続柄・性別・生年月が同じ方が複数いるため、どなたの行か決められません。"
        "この行に枝番を入力してください（枝番の列がなければ列を加えてください）。"
    ),
    "branch": gettext_lazy("枝番は2桁までの数字で入力してください（例: 00、01）。"),
    "no_key": gettext_lazy("社員番号、または保険証の記号・番号と性別・生年月日が必要です。"),
    "unknown_office": gettext_lazy("名簿にない事業所です（「未登録の事業所・部署を作成する」を選ぶと作成します）。"),
    "unknown_department": gettext_lazy(
        "その事業所にない部署です（「未登録の事業所・部署を作成する」を選ぶと作成します）。"
    ),
    "department_needs_office": gettext_lazy("部署を指定するときは事業所も指定してください。"),
    "own_placement": gettext_lazy(
        "ご自身の事業所・部署は、ご自身の取り込みでは変更できません（部署に付いた権限が変わるため）。"
        "ほかの管理者に取り込みを依頼してください。"
    ),
}


def error_message(code: str) -> str:
    message = str(ERROR_MESSAGES.get(code, ERROR_MESSAGES["internal"]))
    if code in _MESSAGE_VALUES:  # the limits a message names, filled in when shown (never a cell's value)
        message %= _MESSAGE_VALUES[code]()
    return message


BIRTH_DATE_MIN = dt.date(1900, 1, 1)
_MESSAGE_VALUES: dict[str, Callable[[], dict[str, Any]]] = {
    "too_many_errors": lambda: {"limit": settings.ROSTER_IMPORT_MAX_ERRORS},
    "date_range": lambda: {"min": BIRTH_DATE_MIN.isoformat()},
}


class FileError(Exception):
    """The file as a whole cannot be imported; ``code`` is a key of ERROR_MESSAGES."""

    def __init__(self, code: str, row: int | None = None, errors: list[dict] | None = None) -> None:
        super().__init__(code)
        self.code, self.row, self.errors = code, row, errors or []  # errors: the row errors found until then


# --- Values: dates (Gregorian and Japanese eras), sex, relationship ---------------------------------------

ERAS = (  # (kanji, letter, first day); an era ends the day before the next one starts
    ("令和", "r", dt.date(2019, 5, 1)),
    ("平成", "h", dt.date(1989, 1, 8)),
    ("昭和", "s", dt.date(1926, 12, 25)),
    ("大正", "t", dt.date(1912, 7, 30)),
    ("明治", "m", dt.date(1868, 10, 23)),
)
_ERA_BY_NAME = {}
for _i, (_kanji, _letter, _start) in enumerate(ERAS):
    _end = ERAS[_i - 1][2] - dt.timedelta(days=1) if _i else dt.date.max
    _ERA_BY_NAME[_kanji] = _ERA_BY_NAME[_letter] = (_start, _end)

_DATE_PATTERNS = (
    re.compile(r"^(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})$"),
    re.compile(r"^(?P<y>\d{4})年(?P<m>\d{1,2})月(?P<d>\d{1,2})日$"),
    re.compile(r"^(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})$"),
    re.compile(r"^(?P<era>令和|平成|昭和|大正|明治|[rhstm])(?P<ey>元|\d{1,2})年(?P<m>\d{1,2})月(?P<d>\d{1,2})日$"),
    re.compile(r"^(?P<era>[rhstm])(?P<ey>元|\d{1,2})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})$"),
)
# Excel exports a date cell formatted as date and time with the time of day: midnight, and only midnight,
# is still just the date ("1980/4/1 0:00", "1980-04-01 00:00:00"); any other time is not a date.
_MIDNIGHT = re.compile(r"\s+0?0:00(?::00)?$")
# The forms the upload page names as examples (each one parses: tests/accounts/test_roster_import_guidance.py).
DATE_EXAMPLES = ("2024-04-01", "2024/4/1", "2024年4月1日", "20240401", "令和6年4月1日", "R6.4.1", "S55年4月1日",
                 "1980/4/1 0:00")  # fmt: skip


def parse_date(text: str) -> dt.date:
    """YYYY-MM-DD, YYYY/MM/DD, YYYY年M月D日, YYYYMMDD, 令和6年4月1日, R6.4.1, S55年4月1日, H31/4/30 (元年 = 1),
    each also with Excel's midnight time part ("1980/4/1 0:00").

    Raises ValueError with an ERROR_MESSAGES code; a date outside its era's span is refused rather
    than silently moved into the next era."""
    if len(text) == 10 and text.isascii() and text[4] in "-/." and text[7] == text[4]:
        # YYYY-MM-DD and YYYY/MM/DD, what most files hold: no normalising, no patterns to try
        year, month, day = text[:4], text[5:7], text[8:]
        if year.isdigit() and month.isdigit() and day.isdigit():
            try:
                return dt.date(int(year), int(month), int(day))
            except ValueError:
                raise ValueError("date_invalid") from None
    value = unicodedata.normalize("NFKC", text).strip()
    if ":" in value:  # before the spaces go: they separate the time part
        value = _MIDNIGHT.sub("", value)
    value = value.replace(" ", "").lower()
    for pattern in _DATE_PATTERNS:
        match = pattern.match(value)
        if not match:
            continue
        parts = match.groupdict()
        month, day = int(parts["m"]), int(parts["d"])
        if parts.get("era"):
            start, end = _ERA_BY_NAME[parts["era"]]
            era_year = 1 if parts["ey"] == "元" else int(parts["ey"])
            if era_year < 1:
                raise ValueError("date_outside_era")
            year = start.year + era_year - 1
        else:
            start, end, year = dt.date.min, dt.date.max, int(parts["y"])
        try:
            result = dt.date(year, month, day)
        except ValueError:
            raise ValueError("date_invalid") from None
        if not start <= result <= end:
            raise ValueError("date_outside_era")
        return result
    raise ValueError("date_format")


SEX_WORDS = {"男": "male", "男性": "male", "m": "male", "male": "male", "1": "male",
             "女": "female", "女性": "female", "f": "female", "female": "female", "2": "female"}  # fmt: skip
_RELATIONSHIP = {"本人": "self", "被保険者": "self", "self": "self", "0": "self",
                 "家族": "family", "被扶養者": "family", "family": "family", "配偶者": "family", "子": "family",
                 "父": "family", "母": "family", "1": "family"}  # fmt: skip
_KANA_RE = re.compile(r"^[\u3041-\u3096\u30a1-\u30fa\u30fc\u30fb\u309b\u309c\u3000 ]+$")
_EMAIL_RE = re.compile(r"^[^@\s\x00-\x1f]+@[^@\s\x00-\x1f]+\.[^@\s\x00-\x1f.]+$")
_CODE_RE = re.compile(r"^[0-9A-Za-z_.\-/]+$")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

# --- Rows ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Row:
    number: int  # the CSV record number (header = 1), what Excel shows for files without line breaks in cells
    values: dict[str, Any]
    key_field: str = ""
    key: str = ""
    card_key: str = ""  # an insurer's row keyed by employee number: its card, for a member on file without one
    errors: list[tuple[str, str]] = field(default_factory=list)  # (column, code)
    new: bool = False  # kept rows: the dry run found no entry for it
    digest: bytes = b""  # ``row_digest``, once computed

    @property
    def fingerprint(self) -> int:
        return int(self.key[:16], 16)

    @property
    def branch(self) -> str:
        return self.values.get("insurance_branch") or ""


@dataclass
class Context:
    """What row checks need to know once per job step: tenant, columns, offices."""

    tenant: Tenant
    columns: list[str | None]
    create_offices: bool
    clear_blanks: bool
    today: dt.date
    offices: dict[str, Office]
    departments: dict[tuple[int, str], Department]

    @classmethod
    def load(cls, job: Job, columns: list[str | None]) -> Context:
        # By the name as the file's cells are read (NFKC): an office entered as 第１工場 is the file's 第1工場.
        offices = {_nfkc(o.name): o for o in Office.objects.all()}
        departments = {(d.office_id, _nfkc(d.name)): d for d in Department.objects.all()}
        return cls(
            tenant=require_tenant(),
            columns=columns,
            create_offices=bool(job.options.get("create_offices")),
            clear_blanks=bool(job.options.get("clear_blanks")),
            today=timezone.localdate(),
            offices=offices,
            departments=departments,
        )

    @property
    def insurer(self) -> bool:
        return self.tenant.kind == Tenant.Kind.INSURER

    @cached_property
    def indexes(self) -> MemberIndexer:
        return MemberIndexer(self.tenant.pk)

    @cached_property
    def digest_key(self) -> bytes:
        """The key of this file's roster digests: the tenant's, bound to the column set and blank rule."""
        bound = repr((_DIGEST_VERSION, self.clear_blanks, self.digested)).encode()
        return hmac.digest(keyring.index_key(self.tenant.pk, "roster-digest"), bound, "sha256")

    @cached_property
    def digested(self) -> tuple[str, ...]:
        """The file's columns a roster digest covers: what the entry stores as the row gave it (not the
        places, compared by id), in one order whatever the file's."""
        return tuple(sorted(c for c in self.columns if c is not None and c not in _PLACES))

    @cached_property
    def cleaners(self) -> list[tuple[int, str, Callable[[str, Context], Any], dict[str, Any] | None]]:
        """(cell position, column, cleaner, memo) of the file's known columns, looked up once per job
        step; ``memo``: cell text → clean value, for the columns whose few values repeat down a roster."""
        return [
            (at, c, _CLEANERS[c], {} if c in _REPEATING else None) for at, c in enumerate(self.columns) if c is not None
        ]


# Columns with few distinct values in a roster (a few offices and departments, two sexes, ~16,000 birth
# dates among any number of people): each distinct cell text is cleaned once per job step. Bounded, so
# memory stays flat however long the file is. Not names or numbers, which hardly repeat.
_REPEATING = frozenset({"sex", "relationship", "office", "department", "birth_date", "qualification_start",
                        "qualification_end", "insurance_symbol"})  # fmt: skip
_MEMO_LIMIT = 20_000
_MISS = object()


def _blank(cells: list[str]) -> bool:
    """A record of empty or white-space cells only (one string operation, not one per cell)."""
    return not "".join(cells).strip()


def _nfkc(text: str) -> str:
    return text.strip() if text.isascii() else unicodedata.normalize("NFKC", text).strip()


def clean_row(cells: list[str], number: int, ctx: Context) -> Row:
    """Check one record; the row carries its cleaned values, its key and its errors (never values)."""
    row = Row(number=number, values={})
    width = len(ctx.columns)
    if len(cells) > width and any(c.strip() for c in cells[width:]):
        row.errors.append(("", "column_count"))
        return row
    if len(cells) < width:
        cells = cells + [""] * (width - len(cells))  # Excel drops trailing empty cells
    values = row.values
    for at, canonical, clean, memo in ctx.cleaners:
        text = cells[at].strip()
        if memo is not None and (value := memo.get(text, _MISS)) is not _MISS:
            values[canonical] = value
            continue
        if text.startswith(_FORMULA_START) or (
            text and not text[0].isascii() and unicodedata.normalize("NFKC", text[0]).startswith(_FORMULA_START)
        ):  # full-width ＝ ＋ － ＠ too: the cleaners normalise them into the ASCII ones
            row.errors.append((canonical, "formula"))
            continue
        try:
            values[canonical] = value = clean(text, ctx)
        except ValueError as exc:
            row.errors.append((canonical, str(exc)))
            continue
        if memo is not None and len(memo) < _MEMO_LIMIT:
            memo[text] = value  # only values that passed: an error is reported for every row it is in
    if row.errors:
        if not any(column in ("office", "department") for column, _code in row.errors):
            _resolve_office(row, ctx)  # an unknown office said in the same round as a bad cell, not after the fix
        return row
    if not values.get("name"):
        row.errors.append(("name", "required"))
    start, end = values.get("qualification_start"), values.get("qualification_end")
    if start and end and start >= end:
        row.errors.append(("qualification_start", "start_after_end"))
    _resolve_office(row, ctx)
    if ctx.insurer and not values.get("employee_number"):
        if missing := [c for c in INSURER_CARD if not values.get(c)]:
            row.errors.append((missing[0], "no_key"))
            return row
        row.key_field = "insurance_card_index"
        row.key = _card_key(values, ctx)
    elif values.get("employee_number"):
        row.key_field = "employee_number_index"
        row.key = ctx.indexes.employee_number(values["employee_number"])
        if ctx.insurer and all(values.get(c) for c in INSURER_CARD):
            row.card_key = _card_key(values, ctx)
    else:
        row.errors.append(("employee_number", "required"))
    return row


def row_digest(row: Row, ctx: Context) -> bytes:
    """What ``Member.roster_digest`` holds for an entry this row wrote: a keyed hash (BLAKE2b: it tells
    nothing about the values without the tenant's key) of the row's values, under a key bound to the
    file's column set and blank rule. Applying a row twice changes nothing the second time, so an entry
    whose digest is the row's and that nothing else saved since (which clears it) holds what the row would
    write. The values' repr: text, dates and None, the same for a row cleaned or kept (``_kept_rows``)."""
    if not row.digest:
        values = row.values.get
        message = repr([values(c) for c in ctx.digested]).encode()
        row.digest = blake2b(message, key=ctx.digest_key, digest_size=16).digest()
    return row.digest


_DIGEST_VERSION = 1  # raise when what _member_changes compares changes: every stored digest then differs


def _clean_items(ctx: Context, items: list[tuple[int, list[str]]]) -> list[tuple]:
    """``clean_row`` of a chunk's records, in the helper process: the rows as plain tuples (a third of
    the time of pickling the dataclass)."""
    return [
        (row.number, row.values, row.key_field, row.key, row.card_key, row.errors)
        for row in (clean_row(cells, number, ctx) for number, cells in items)
    ]


def _rows(cleaned: list[tuple]) -> list[Row]:
    return [
        Row(number, values, key_field, key, card_key, errors)
        for number, values, key_field, key, card_key, errors in cleaned
    ]


def _card_key(values: dict[str, Any], ctx: Context) -> str:
    birth = values["birth_date"]
    return insurance_card_index(
        ctx.tenant.pk,
        symbol=values["insurance_symbol"],
        number=values["insurance_number"],
        relationship=values.get("relationship") or Member.Relationship.SELF,
        sex=values["sex"],
        birth_year_month=f"{birth.year:04d}-{birth.month:02d}",
        index=ctx.indexes.card,
    )


# One cleaner per column: (stripped cell text, context) → value, or ValueError(ERROR_MESSAGES code).


def _date(text: str, ctx: Context) -> dt.date | None:
    return parse_date(text) if text else None


def _birth_date(text: str, ctx: Context) -> dt.date | None:
    date = parse_date(text) if text else None
    if date is not None and not BIRTH_DATE_MIN <= date <= ctx.today:
        raise ValueError("date_range")
    if date is not None and not ctx.insurer and _years_between(date, ctx.today) < MIN_EMPLOYEE_AGE:
        raise ValueError("too_young")  # a company's roster: 令和2年 typed for 平成2年, not a six-year-old employee
    return date


MIN_EMPLOYEE_AGE = 15  # 労働基準法 art. 56: no one is employed before the March after their 15th birthday


def _years_between(born: dt.date, today: dt.date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _code(limit: int):
    def clean(text: str, ctx: Context) -> str:
        value = _nfkc(text)
        if len(value) > limit:
            raise ValueError("too_long")
        if value and not _CODE_RE.match(value):
            raise ValueError("invalid_chars")
        return value

    return clean


def _text(limit: int, pattern: re.Pattern | None = None, code: str = ""):
    def clean(text: str, ctx: Context) -> str:
        value = _nfkc(text)
        if len(value) > limit:
            raise ValueError("too_long")
        if pattern is not None and value and not pattern.match(value):
            raise ValueError(code)
        return value

    return clean


def _choice(table: dict[str, str], code: str, empty: str):
    def clean(text: str, ctx: Context) -> str:
        value = _nfkc(text)
        if not value:
            return empty
        try:
            return table[value.casefold()]
        except KeyError:
            raise ValueError(code) from None

    return clean


def insurance_branch(text: str) -> str:
    """枝番 as the card prints it, two digits (Excel turns 01 into 1); "" for none. ValueError("branch")
    for anything else. The roster, the checkup imports and self-registration read it alike."""
    value = _nfkc(text)
    if value and not (len(value) <= 2 and value.isascii() and value.isdigit()):
        raise ValueError("branch")
    return value.zfill(2) if value else ""


def _branch(text: str, ctx: Context) -> str:
    return insurance_branch(text)


def _email(text: str, ctx: Context) -> str:
    value = _nfkc(text)
    if value and (len(value) > 254 or not _EMAIL_RE.match(value)):
        raise ValueError("email")
    return value


_CLEANERS = {
    "employee_number": _code(50),
    "name": _text(100),
    "kana_name": _text(100, _KANA_RE, "kana"),
    "birth_date": _birth_date,
    "sex": _choice(SEX_WORDS, "sex", ""),
    "insurance_symbol": _code(20),
    "insurance_number": _code(20),
    "insurance_branch": _branch,
    "relationship": _choice(_RELATIONSHIP, "relationship", ""),  # blank: 本人 for a new entry, kept on update
    "office": _text(200),
    "department": _text(200),
    "qualification_start": _date,
    "qualification_end": _date,
    "email": _email,
}


def _resolve_office(row: Row, ctx: Context) -> None:
    """Office and department by name; unknown ones are an error unless the job may create them."""
    office_name, department_name = row.values.get("office"), row.values.get("department")
    if department_name and not office_name:
        row.errors.append(("department", "department_needs_office"))
        return
    if not office_name:
        return
    office = ctx.offices.get(office_name)
    if office is None and not ctx.create_offices:
        row.errors.append(("office", "unknown_office"))
        return
    if department_name and not ctx.create_offices:
        if (office.pk, department_name) not in ctx.departments:
            row.errors.append(("department", "unknown_department"))


# --- Reading the file: encoding, delimiter, records with byte offsets ----------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def detect_encoding(f: IO[bytes]) -> str:
    """BOM → utf-8-sig; else strict UTF-8; else CP932 (Excel in Japan); else FileError.

    Control characters (NUL and friends) mean binary junk whatever the codec says."""
    f.seek(0)
    start = f.read(READ_BLOCK)
    if _utf16(start):
        raise FileError("utf16")  # Excel's "Unicode text": NUL bytes, yet not binary junk
    if start.startswith(_WORKBOOKS):
        raise FileError("spreadsheet")  # the workbook itself, not saved as CSV
    if start[:3] == BOM:
        candidates = ["utf-8-sig"]
    else:
        candidates = ["utf-8", "cp932"]
    for encoding in candidates:
        f.seek(0)
        decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
        try:
            while block := f.read(READ_BLOCK):
                if _CONTROL.search(decoder.decode(block)):
                    raise FileError("binary")
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return encoding
    f.seek(0)
    raise FileError("binary" if b"\x00" in f.read(READ_BLOCK) else "encoding")


# An .xlsx is a ZIP; an .xls an OLE2 compound file.
_WORKBOOKS = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")


def _utf16(start: bytes) -> bool:
    """UTF-16 text (with or without its BOM): lines and delimiters once decoded, and no control bytes."""
    if start[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return True
    if b"\x00" not in start:
        return False
    for codec in ("utf-16-le", "utf-16-be"):
        text = start[: len(start) // 2 * 2].decode(codec, errors="replace")
        if "\n" in text and ("\t" in text or "," in text) and not _CONTROL.search(text):
            return True
    return False


def _lines(f: IO[bytes], start: int) -> Iterator[tuple[int, bytes]]:
    """Raw lines from byte ``start`` with the offset just past each. Splitting bytes on LF is safe for
    UTF-8 and CP932: neither uses 0x0A inside a multi-byte character."""
    f.seek(start)
    position, pending = start, b""
    while block := f.read(READ_BLOCK):
        pending += block
        *complete, pending = pending.split(b"\n")
        for line in complete:
            position += len(line) + 1
            yield position, line + b"\n"
    if pending:
        yield position + len(pending), pending


def records(f: IO[bytes], *, start: int, encoding: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """CSV records from byte ``start``, each with the byte offset where the next record begins
    (the csv module pulls exactly the lines of one record before yielding it)."""
    end = [start]

    def text() -> Iterator[str]:
        for position, raw in _lines(f, start):
            end[0] = position
            yield raw.decode(encoding)

    reader = csv.reader(text(), delimiter=delimiter, strict=True)
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error:
            raise FileError("csv_format") from None
        yield end[0], cells


HEADER_TEXT_LIMIT = 40


def _read_header(cells: list[str], insurer: bool) -> list[str | None]:
    """The canonical column of each header cell. A header problem names the column by its position, and by
    its text (``header``, cut to HEADER_TEXT_LIMIT) only on a line that names the 氏名 column, which every
    valid file has: in a file without its header line the "header" is the first person's data."""
    found = [_HEADER_LOOKUP.get(_header_key(cell), "") if cell.strip() else None for cell in cells]
    is_header = "name" in found
    columns: list[str | None] = []
    for at, (cell, canonical) in enumerate(zip(cells, found, strict=True), start=1):
        if canonical is None:
            columns.append(None)  # a blank header cell (Excel's trailing comma) ignores its column
            continue
        if not canonical or canonical in columns:
            code = "duplicate_column" if canonical else "unknown_column"
            error = {"row": 1, "column": f"#{at}", "code": code}
            if is_header:
                text = " ".join(cell.split())
                error["header"] = text if len(text) <= HEADER_TEXT_LIMIT else text[:HEADER_TEXT_LIMIT] + "…"
            raise FileError(code, errors=[error])
        columns.append(canonical)
    if not any(columns):
        raise FileError("no_header")
    required = {"name"} | ({"employee_number"} if not insurer else set())
    if insurer and "employee_number" not in columns:
        required |= set(INSURER_CARD)
    if missing := [c for c in COLUMNS if c in required - set(columns)]:
        raise FileError("missing_column", errors=[{"row": 1, "column": c, "code": "missing_column"} for c in missing])
    return columns


# --- Comparing with the roster ---------------------------------------------------------------------------


def _target_active(values: dict, today: dt.date) -> bool:
    end = values.get("qualification_end")
    return not (end and end <= today)


@dataclass(slots=True)
class Current:
    """A roster entry as the comparison needs it: ids, flags, its roster digest and the values of the file's
    columns only (read without building model instances), the personal ones decrypted on first use: an
    entry whose digest is the row's is compared without them."""

    pk: int
    uid: uuid.UUID
    user_id: int | None
    office_id: int | None
    department_id: int | None
    is_active: bool
    digest: bytes | None
    plain: dict[str, Any]  # relationship, 資格喪失日: stored in the clear
    updated_at: dt.datetime | None  # read for the apply only
    opener: Callable[[Current], dict[str, Any]]  # the personal values, read and decrypted (``_existing``)
    opened: dict[str, Any] | None = None

    def holds(self, row: Row, ctx: Context) -> bool:
        """Whether the entry holds what the row would write: its digest is the row's (``row_digest``)."""
        return self.digest is not None and self.digest == row_digest(row, ctx)

    @property
    def values(self) -> dict[str, Any]:
        if self.opened is None:
            self.opened = {**self.plain, **self.opener(self)}
        return self.opened


def _member_changes(member: Current, row: Row, ctx: Context, *, dry_run: bool = False) -> dict[str, Any]:
    """Attribute → new value for what the row changes (only the columns present in the file). In a dry
    run an office or department that does not exist yet counts as a change and is not created."""
    changes: dict[str, Any] = {}
    values = row.values
    # A blank keeps the stored value, except the 資格喪失日: a row without one means no end (someone
    # listed again after leaving is active again).
    keep = not ctx.clear_blanks
    same = member.holds(row, ctx)
    current_values = {} if same else member.values
    for column, value in () if same else values.items():
        if column in _PLACES or (keep and (value == "" or value is None) and column != "qualification_end"):
            continue
        if column == "relationship" and not value:
            value = Member.Relationship.SELF  # cleared: the default, a roster entry always has one
        current = current_values.get(column)
        if column in _COMPARED_AS_TEXT:
            current = "" if current is None else str(current)
        elif current is not None:
            current = dt.date(current.year, current.month, current.day)
        if current != value:
            changes[column] = value
    office_given = "office" in values and (values["office"] or not keep)
    department_given = "department" in values and (values["department"] or not keep)
    if office_given:
        office_id, department_id = _office_ids(row, ctx, create=not dry_run)
        if member.office_id != office_id:
            changes["office_id"] = office_id
            if not department_given and member.department_id is not None:
                changes["department_id"] = None  # a department belongs to its office: not kept across a move
        if department_given and member.department_id != department_id:
            changes["department_id"] = department_id
    # Without the 資格喪失日 column the stored date still decides: a member past it stays inactive.
    active = _target_active(values if "qualification_end" in values else member.plain, ctx.today)
    if member.is_active != active:
        changes["is_active"] = active
    return changes


NOT_YET = -1  # the id a dry run gives an office or department that applying would create
_PLACES = frozenset({"office", "department"})
_COMPARED_AS_TEXT = frozenset({*PERSONAL_TEXT, "relationship"})


def _office_ids(row: Row, ctx: Context, *, create: bool = True) -> tuple[int | None, int | None]:
    """Ids of the row's office/department (created here if allowed and missing: only during apply)."""
    office_name, department_name = row.values.get("office"), row.values.get("department")
    if not office_name:
        return None, None
    office = ctx.offices.get(office_name)
    if office is None and not create:
        return NOT_YET, NOT_YET if department_name else None
    if office is None:
        office = ctx.offices[office_name] = Office.objects.get_or_create(name=office_name)[0]
    if not department_name:
        return office.pk, None
    department = ctx.departments.get((office.pk, department_name))
    if department is None and not create:
        return office.pk, NOT_YET
    if department is None:
        department = Department.objects.get_or_create(office=office, name=department_name)[0]
        ctx.departments[(office.pk, department_name)] = department
    return office.pk, department.pk


_COMPARED_PLAIN = ("relationship", "qualification_start", "qualification_end")


@dataclass
class Existing:
    """What ``_existing`` found: row number → entry; the rows matching more than one entry; and the rows
    matched only as the sole entry on their card (``tentative``), which hold only while the file has no
    other row under that card (the validation decides, over the whole file: ``no_fallback``)."""

    found: dict[int, Current] = field(default_factory=dict)
    ambiguous: set[int] = field(default_factory=set)
    tentative: set[int] = field(default_factory=set)


def _existing(
    rows: list[Row], ctx: Context, no_fallback: frozenset[int] = frozenset(), *, stamped: bool = False
) -> Existing:
    """Roster entries matching the rows' keys, one query per key kind. The file's personal columns are read
    and decrypted (a row at a time, ``open_row``) only for the entries that need them: those whose roster
    digest is not their row's, and those under an insurer's card key, which is shared by people whose cards
    differ only in the 枝番 (twins of one sex under one insured person): the branch and the name pick among
    them (``_same_person``). ``no_fallback``: rows that may not take an entry on their card by elimination;
    ``stamped``: read each entry's ``updated_at`` (the apply's check that nobody saved it since)."""
    result = Existing()
    found = result.found
    by_field: dict[str, list[str]] = {}
    for row in rows:
        by_field.setdefault(row.key_field, []).append(row.key)
    if not by_field:
        return result
    columns = ctx.columns
    personal = [f for f in encrypted_fields(Member) if f.attname in columns]
    plain = [c for c in _COMPARED_PLAIN if c in columns or c == "qualification_end"]  # it decides is_active
    names = [f.attname for f in personal]
    tenant_id = require_tenant().pk
    sealed: dict[int, list] = {}  # entry → its personal values as stored, read in batches (``unseal``)

    def unseal(entries: Iterable[Current]) -> None:
        pks = [entry.pk for entry in entries if entry.pk not in sealed]
        for start in range(0, len(pks), 1000):
            for pk, *values in Member.objects.filter(pk__in=pks[start : start + 1000]).values_list("pk", *names):
                sealed[pk] = values

    def opener(entry: Current) -> dict[str, Any]:
        if entry.pk not in sealed:
            unseal([entry])
        stored = sealed.pop(entry.pk)
        values = dict(zip(names, stored, strict=True))  # NULL personal values load as "" / None
        todo = [(f, v) for f, v in zip(personal, stored, strict=True) if isinstance(v, bytes)]
        values.update(zip((f.attname for f, _ in todo), open_row(tenant_id, entry.uid.bytes, todo), strict=True))
        return values

    head = ["pk", "uid", "user_id", "office_id", "department_id", "is_active", "roster_digest", *plain]
    if stamped:
        head.append("updated_at")
    at_plain = head.index("roster_digest") + 1

    def current(got: list) -> Current:
        pk, uid, user_id, office_id, department_id, is_active, digest = got[:at_plain]
        return Current(
            pk, uid, user_id, office_id, department_id, is_active, None if digest is None else bytes(digest),
            dict(zip(plain, got[at_plain : at_plain + len(plain)], strict=True)), got[-1] if stamped else None, opener,
        )  # fmt: skip

    taken: set[int] = set()  # two rows of the file never update one entry (within one kind of key)

    def take(row: Row, entry: Current, *, tentative: bool = False) -> None:
        found[row.number] = entry
        taken.add(entry.pk)
        if tentative:
            result.tentative.add(row.number)

    for key_field, keys in by_field.items():
        entries: dict[str, list[Current]] = {}
        for key, *got in rows_by_keys(Member, key_field, keys, head):
            entries.setdefault(key, []).append(current(got))
        if key_field == "insurance_card_index":  # told apart by their values
            unseal(entry for listed in entries.values() for entry in listed)
        else:  # the one entry under each employee number, unless it holds what the row would write
            unseal(
                entry for row in rows if row.key_field == key_field
                for entry in entries.get(row.key, ()) if not entry.holds(row, ctx)
            )  # fmt: skip
        taken = set()
        by_elimination: list[Row] = []
        for row in rows:  # first every match by key, branch or name, then the rest by elimination
            if row.key_field != key_field or row.key not in entries:
                continue
            candidates = [c for c in entries[row.key] if c.pk not in taken]
            if key_field == "insurance_card_index":
                candidates, _tentative = _same_person(row, candidates, sole=False)
                if not candidates and row.branch and row.number not in no_fallback:
                    by_elimination.append(row)
            if len(candidates) > 1:
                result.ambiguous.add(row.number)
            elif candidates:
                take(row, candidates[0])
        for row in by_elimination:
            candidates, _tentative = _same_person(row, [c for c in entries[row.key] if c.pk not in taken], sole=True)
            if len(candidates) == 1:
                take(row, candidates[0], tentative=True)
    # An insurer's roster keyed by card until now, and a file that brings employee numbers: the person on
    # file under the row's card without an employee number, if exactly one is the row's, is that row's
    # (not a new one).
    by_card: dict[str, list[Row]] = {}
    for row in rows:
        if row.card_key and row.number not in found:
            by_card.setdefault(row.card_key, []).append(row)
    if by_card:
        on_card: dict[str, list[Current]] = {}
        taken = {current.pk for current in found.values()}
        for card_key, number_index, *got in rows_by_keys(
            Member, "insurance_card_index", list(by_card), ["employee_number_index", *head]
        ):
            if not number_index and got[0] not in taken:  # someone with an employee number is someone else
                on_card.setdefault(card_key, []).append(current(got))
        unseal(entry for listed in on_card.values() for entry in listed)
        for card_key, card_rows in by_card.items():
            for by_elimination_now in (False, True):  # as above: branch or name first, then elimination
                for row in card_rows:
                    if row.number in found:
                        continue
                    free = [c for c in on_card.get(card_key, []) if c.pk not in taken]
                    sole = by_elimination_now and row.number not in no_fallback and len(card_rows) == 1
                    candidates, tentative = _same_person(row, free, sole=sole)
                    if not row.branch:  # no 枝番 to tell: the card's one entry, by elimination only
                        candidates, tentative = (candidates, True) if sole else ([], False)
                    if len(candidates) == 1:
                        take(row, candidates[0], tentative=tentative)
    return result


def _card_of(row: Row) -> int | None:
    """The row's card key as a number: its own key (insurer rows keyed by card) or its card beside an
    employee number; None for a row without a card."""
    if row.key_field == "insurance_card_index":
        return row.fingerprint
    return int(row.card_key[:16], 16) if row.card_key else None


def _same_person(row: Row, candidates: list[Current], *, sole: bool) -> tuple[list[Current], bool]:
    """The entries among those sharing the row's card key that may be the row's person, and whether the
    match is by elimination only. With a 枝番: the entry that has it; else an entry without a branch yet
    and with the row's name (twins: never the other twin's entry, whichever row comes first); else, when
    ``sole``, the one entry without a branch (the name written differently, or changed). Without a 枝番:
    all of them (more than one is ambiguous)."""
    if not row.branch:
        return candidates, False
    same = [c for c in candidates if c.values.get("insurance_branch") == row.branch]
    if same:
        return same, False
    unbranched = [c for c in candidates if not c.values.get("insurance_branch")]
    name = row.values.get("name")
    named = [c for c in unbranched if _nfkc(c.values.get("name") or "") == name]
    if named:
        return named, False
    return (unbranched, True) if sole and len(unbranched) == 1 else ([], False)


# --- Services -------------------------------------------------------------------------------------------


def roster_import_start(
    *,
    upload: IO[bytes],
    file_name: str,
    mode: str,
    create_offices: bool,
    acting_user: User | None,
    clear_blanks: bool = False,
    enqueue: bool = True,
) -> Job:
    """Store the upload in private storage and queue its validation (the dry run); ``enqueue=False``
    leaves running it to the caller (the operator command works in-process). ``clear_blanks``: a blank
    cell clears the stored value; by default it leaves it as it is, so a file filled in with only what
    its author knows loses nothing."""
    if mode not in (FULL, PARTIAL):
        raise AppError("invalid_mode", _("取り込み方法を選んでください。"))
    job = jobs.job_create(
        kind=Job.Kind.ROSTER,
        upload=upload,
        file_name=file_name,
        max_bytes=settings.ROSTER_IMPORT_MAX_BYTES,
        options={"mode": mode, "create_offices": bool(create_offices), "clear_blanks": bool(clear_blanks)},
        acting_user=acting_user,
    )
    if enqueue:
        from accounts.roster_tasks import roster_validate_task

        jobs.on_commit(roster_validate_task.delay, job.tenant_id, job.pk)
    return job


def roster_import_validate(*, job_id: int) -> Job | None:
    """Dry run: parse and check every row, count what applying would do, store errors and the chunk
    plan. Idempotent (a re-delivered validation simply starts over)."""
    job = jobs.job_lock(job_id=job_id)
    if job is None or job.state not in (Job.State.UPLOADED, Job.State.VALIDATING):
        return job
    job.state, job.errors, job.counts, job.rows_done = Job.State.VALIDATING, [], {}, 0
    job.save()
    try:
        with jobs.job_open(job) as f, jobs.SideFile(job) as side, jobs.collector_paused():
            _validate(job, f, side)
    except FileError as exc:
        job.errors = exc.errors or ([{"row": exc.row, "column": "", "code": exc.code}] if exc.row else [])
        jobs.job_fail(job, code=exc.code)
    except FileNotFoundError:
        jobs.job_fail(job, code="file_missing")
    except Exception:
        # Never a cell value in the log: the type and where, with the job id.
        logger.exception("roster import job %s: validation failed", job.pk)
        jobs.job_fail(job, code="internal")
    return job


def _validate(job: Job, f: IO[bytes], side: jobs.SideFile) -> None:
    encoding = detect_encoding(f)
    tenant = require_tenant()
    insurer = tenant.kind == Tenant.Kind.INSURER
    # The delimiter is decided on the header line: a tab-separated export has more tabs than commas.
    f.seek(0)
    first_line = next(_lines(f, 0), (0, b""))[1].decode(encoding, errors="replace")
    delimiter = "\t" if first_line.count("\t") > first_line.count(",") else ","
    stream = records(f, start=0, encoding=encoding, delimiter=delimiter)
    try:
        header_end, header = next(stream, (0, []))
    except FileError as exc:
        raise FileError(exc.code, row=1) from None  # broken quoting in the header line
    if not header:
        raise FileError("no_header")
    columns = _read_header(header, insurer)
    ctx = Context.load(job, columns)
    # Taken before the roster is read: whatever changes it from here on makes the stamp differ at the confirm.
    stamp = roster_stamp() if job.options.get("mode") == FULL else None
    chunk_rows = settings.ROSTER_IMPORT_CHUNK_ROWS
    max_errors = settings.ROSTER_IMPORT_MAX_ERRORS
    counts = {"rows": 0, "added": 0, "updated": 0, "unchanged": 0, "deactivated": 0, "errors": 0}
    new_offices: set[str] = set()
    new_departments: set[tuple[str, str]] = set()
    seen = KeySet()  # the employee numbers of the file's rows (duplicates; mode full), 16-32 bytes each
    branches: dict[int, set[str]] = {}  # card key → the 枝番 of its rows ("" for none)
    matched: set[int] = set()  # entries a row matched by card (its own key, or the fallback of a numbered row)
    # Matching an entry by elimination (the only one on its card) holds only if no other row of the file
    # is under that card: known at the end of the file, then taken back where it does not hold.
    rows_on_card: dict[int, int] = {}  # card key → valid rows under it
    may_eliminate: list[tuple[int, int]] = []  # (row number, card key) of the rows that could
    by_elimination: dict[int, tuple[int, int, str, int, bool]] = {}  # row → (chunk, index, outcome, entry, ended)
    definite: set[int] = set()  # entries matched by key, branch or name
    ending_logins: dict[int, int] = {}  # row → the login of the entry its 資格喪失日 deactivates
    uploader = (  # the roster entry of whoever uploaded (an operator's command has none)
        Member.objects.filter(user_id=job.created_by_id).values_list("pk", flat=True).first()
        if job.created_by_id
        else None
    )
    errors: list[dict] = []
    chunks: list[list[int]] = []
    chunk: list[Row] = []
    chunk_start, chunk_number, number = header_end, 2, 1

    def flush() -> None:
        """Count the chunk's outcomes and close it: [byte offset, first record number, rows, todo, unchanged],
        where ``todo`` marks the rows the apply has to write (not unchanged, not in error), so a
        re-import of an unchanged file reads the roster once, here, and writes nothing. An unchanged row
        whose entry lacks its digest (entered or edited outside the import, keys rotated, another column
        set) is marked too: the apply gives the entry the row's digest, and the next re-import of the
        file compares it without decrypting; ``unchanged`` counts the rest."""
        existing = _existing([r for r in chunk if not r.errors], ctx)
        todo = unchanged = 0
        for index, row in enumerate(chunk):
            if row.errors:
                continue
            if row.number in existing.ambiguous:
                row.errors.append(("insurance_branch", "card_ambiguous"))
                errors.append({"row": row.number, "column": "insurance_branch", "code": "card_ambiguous"})
                counts["errors"] += 1
                continue
            card = _card_of(row)
            if card is not None:
                rows_on_card[card] = rows_on_card.get(card, 0) + 1
                if row.branch or row.card_key:
                    may_eliminate.append((row.number, card))
            member = existing.found.get(row.number)
            if member is not None and card is not None:
                matched.add(member.pk)
                if row.number not in existing.tentative:
                    definite.add(member.pk)
            if member is None:
                row.new = True
                counts["added"] += 1
                if not _target_active(row.values, ctx.today):
                    counts["added_inactive"] = counts.get("added_inactive", 0) + 1  # on file, already ended
                outcome = "added"
            else:
                changes = _member_changes(member, row, ctx, dry_run=True)
                if member.pk == uploader and changes.keys() & {"office_id", "department_id"}:
                    # Labels granted to a department follow the roster: moving oneself is granting oneself.
                    column = "department" if "department_id" in changes else "office"
                    row.errors.append((column, "own_placement"))
                    errors.append({"row": row.number, "column": column, "code": "own_placement"})
                    counts["errors"] += 1
                    continue
                outcome = (
                    "unchanged" if not changes else "deactivated" if changes.get("is_active") is False else "updated"
                )
                if row.number in existing.tentative:
                    ended = not _target_active(row.values, ctx.today)
                    by_elimination[row.number] = (len(chunks), index, outcome, member.pk, ended)
                if outcome == "deactivated" and member.user_id:
                    ending_logins[row.number] = member.user_id
                if not changes:
                    if not member.holds(row, ctx) and row.number not in existing.tentative:
                        counts["unchanged"] += 1
                        todo |= 1 << index
                    else:
                        unchanged += 1
                    continue
                counts[outcome] += 1
            todo |= 1 << index
            if office_name := row.values.get("office"):
                office = ctx.offices.get(office_name)
                if office is None:
                    new_offices.add(office_name)
                department_name = row.values.get("department")
                if department_name and (office is None or (office.pk, department_name) not in ctx.departments):
                    new_departments.add((office_name, department_name))
        mask = jobs.plan_mask(todo, len(chunk))
        chunks.append([chunk_start, chunk_number, len(chunk), mask, unchanged])
        # The checked rows the apply will write, kept so that it does not read and check the file again.
        side.keep(_keep_rows(chunk, todo, columns) if todo else None)
        counts["unchanged"] += unchanged
        jobs.chunk_done()

    def raw_chunks() -> Iterator[tuple[int, int, list[tuple[int, list[str]]]]]:
        """The file's records by chunk: (byte offset, first record number, [(record number, cells)])."""
        nonlocal number
        start, first, items = header_end, 2, []
        for position, cells in stream:
            number += 1
            if _blank(cells):
                continue  # blank lines (Excel leaves some at the end) are not rows
            items.append((number, cells))
            if len(items) >= chunk_rows:
                yield start, first, items
                start, first, items = position, number + 1, []
        if items:
            yield start, first, items

    def take(start: int, first: int, rows: list[Row]) -> None:
        """The checks that need the rows before (duplicates), the counts, then the chunk's close."""
        nonlocal chunk, chunk_start, chunk_number
        chunk, chunk_start, chunk_number = [], start, first
        for row in rows:
            if not row.errors:
                if row.key_field == "insurance_card_index":
                    # One card key, several people (twins of one sex): each row needs a 枝番 of its own.
                    listed = branches.setdefault(row.fingerprint, set())
                    if row.branch in listed or (listed and (not row.branch or "" in listed)):
                        row.errors.append(("insurance_branch" if listed - {""} else "insurance_number", "same_card"))
                    listed.add(row.branch)
                elif not seen.add(row.fingerprint):  # keyed by employee number, listed before
                    row.errors.append((COLUMN_FOR_KEY.get(row.key_field, ""), "duplicate_key"))
            counts["rows"] += 1
            for column, code in row.errors:
                errors.append({"row": row.number, "column": column, "code": code})
            if row.errors:
                counts["errors"] += 1
                if counts["errors"] > max_errors:
                    raise FileError("too_many_errors", errors=errors)  # what was found so far: rows to fix
            chunk.append(row)
        flush()

    try:
        if 0 <= settings.ROSTER_IMPORT_HELPER_MIN_BYTES <= job.file_size and hasattr(os, "fork"):
            # The rows are cleaned in a forked helper (the second core) while this process reads the file
            # and the roster: everything the cleaning needs from the database is loaded before the fork.
            ctx.indexes, ctx.cleaners  # noqa: B018
            in_flight: deque[tuple[int, int, list]] = deque()
            share = 0.1  # of each chunk's rows cleaned here: more while the helper lags, fewer while it waits

            def finish() -> None:
                nonlocal share
                start, first, mine = in_flight.popleft()
                rows = [clean_row(cells, n, ctx) for n, cells in mine]
                share = max(0.0, share - 0.02) if helper.ready() else min(0.5, share + 0.05)
                take(start, first, rows + _rows(helper.result()))

            with offload.Helper(partial(_clean_items, ctx)) as helper:
                for start, first, items in raw_chunks():
                    mine = int(len(items) * share)
                    helper.submit(items[mine:])
                    in_flight.append((start, first, items[:mine]))
                    if len(in_flight) > 1:  # one chunk ahead: memory bounded by two chunks
                        finish()
                while in_flight:
                    finish()
        else:
            for start, first, items in raw_chunks():
                take(start, first, [clean_row(cells, n, ctx) for n, cells in items])
    except FileError as exc:
        if exc.code != "csv_format":
            raise
        # The csv module stops inside a record (a quote never closed, text after a closing quote): name
        # the record it began, what a person looks for in Excel (the header is record 1).
        raise FileError("csv_format", row=number + 1) from None
    if counts["rows"] == 0:
        raise FileError("no_rows")
    no_fallback = sorted(n for n, card in may_eliminate if rows_on_card[card] > 1)
    for n in no_fallback:  # another row is under that card: the entry is not this row's by elimination
        if n not in by_elimination:
            continue
        at, index, outcome, pk, ended = by_elimination[n]
        counts[outcome] -= 1
        ending_logins.pop(n, None)
        counts["added"] += 1
        if ended:
            counts["added_inactive"] = counts.get("added_inactive", 0) + 1
        if outcome == "unchanged":  # now a row to write, not among the chunk's kept rows: the apply reads the file
            chunks[at][3] = jobs.plan_mask(jobs.plan_todo(chunks[at][3]) | 1 << index, chunks[at][2])
            chunks[at][4] -= 1
            side.drop(at)
        if pk not in definite:
            matched.discard(pk)
    missing: list[int] = []
    logins = set(ending_logins.values())
    if job.options.get("mode") == FULL:
        for pk, user_id in _missing_members(seen, matched):
            missing.append(pk)
            if user_id:
                logins.add(user_id)
        missing.sort()  # roster order: the preview lists them
        counts["deactivated"] += len(missing)
        own = Member.objects.filter(user_id=job.created_by_id).values_list("pk", flat=True).first()
        if own is not None and own in set(missing):
            counts["deactivates_uploader"] = 1  # the preview warns: applying locks the uploader out
    counts["new_offices"], counts["new_departments"] = len(new_offices), len(new_departments)
    # Mode full deactivates exactly the members the preview counted (ids only, no personal data). The
    # logins of everyone the preview deactivates (ids) and the names of the offices and departments it
    # creates (not personal data, a few) are for the preview page.
    job.plan = {"encoding": encoding, "delimiter": delimiter, "columns": columns, "chunks": chunks, "missing": missing,
                "no_fallback": no_fallback, "logins_off": sorted(logins),
                "new_offices": sorted(new_offices)[:NAMES_SHOWN],
                "new_departments": [list(pair) for pair in sorted(new_departments)[:NAMES_SHOWN]]}  # fmt: skip
    if stamp is not None:
        job.plan["roster_stamp"] = stamp
    side.save(job.plan)
    job.rows_total, job.rows_done = counts["rows"], 0
    errors.sort(key=lambda e: e["row"])  # a row found ambiguous when its chunk closed comes after later rows
    job.counts, job.errors = counts, errors
    job.state = Job.State.VALIDATED
    job.save()


COLUMN_FOR_KEY = {"employee_number_index": "employee_number", "insurance_card_index": "insurance_number"}
NAMES_SHOWN = 50  # new offices / departments the preview names (the counts have them all)


def roster_stamp() -> str:
    """A cheap mark of the current tenant's roster as it is now: how many entries and when one last changed
    (every write of an entry, by hand, by an import or by an expiry, moves its ``updated_at``)."""
    found = Member.objects.aggregate(entries=Count("pk"), last=Max("updated_at"))
    return f"{found['entries']}/{found['last'].isoformat() if found['last'] else ''}"


def _missing_members(seen: KeySet, matched: set[int]) -> Iterator[tuple[int, int | None]]:
    """Active members that no row of the file lists (mode full), as (pk, user_id): not by their employee
    number, and not matched by their card (a card key the file lists is not enough: one twin may have
    left while the other stays)."""
    for pk, user_id, by_number, by_card in (
        Member.objects.filter(is_active=True)
        .values_list("pk", "user_id", "employee_number_index", "insurance_card_index")
        .iterator(chunk_size=2000)
    ):
        if pk in matched or (by_number and int(by_number[:16], 16) in seen):
            continue
        if by_number or by_card:
            yield pk, user_id


def missing_members(job: Job) -> list[int]:
    """The roster entries (ids) a full import deactivates because the file leaves them out."""
    return job.plan.get("missing", []) if job.options.get("mode") == FULL else []


def members_to_deactivate(job: Job, *, limit: int = 50) -> tuple[list[Member], int]:
    """The first ``limit`` roster entries a full import will deactivate (the preview's list, in roster
    order) and how many more there are; each with its login's state and role (``member.user``, same query)."""
    missing = missing_members(job)
    shown = list(
        Member.objects.filter(pk__in=missing[:limit])
        .select_related("user")
        .order_by("pk")
        .only("uid", "tenant", "employee_number", "name", "user__is_active", "user__role")
    )
    return shown, max(0, len(missing) - limit)


@dataclass(frozen=True)
class LoginsOff:
    """What a preview's deactivations do to logins: how many active ones they turn off, and whether the
    tenant is left without an active 組織管理者 (the one who manages roles and rights in the tenant)."""

    count: int
    last_org_admin: bool


def logins_turned_off(job: Job) -> LoginsOff:
    """The logins of everyone the preview deactivates (its file's ended rows and, in mode full, the people
    it leaves out), as they are now: a query per 1,000 of them and one for the org admins, never one per
    person. Remembered on the job object (the page asks for it twice)."""
    if (known := job.__dict__.get("_logins_off")) is not None:
        return known
    user_ids = job.plan.get("logins_off", []) if job.state == Job.State.VALIDATED else []
    result = LoginsOff(0, False)
    if user_ids:
        logins = User.objects.filter(tenant=require_tenant(), is_active=True)
        count = 0
        for start in range(0, len(user_ids), 1000):
            count += logins.filter(pk__in=user_ids[start : start + 1000]).count()
        org_admins = set(logins.filter(role=Role.ORG_ADMIN).values_list("pk", flat=True))
        result = LoginsOff(count, bool(org_admins) and org_admins <= set(user_ids))
    job.__dict__["_logins_off"] = result
    return result


def places_created(job: Job) -> tuple[list[str], list[list[str]]]:
    """After the apply: the offices and departments its preview named as new (as many as it names) that
    exist now, what the import created for the rows that needed them (names, not personal data)."""
    if job.state != Job.State.DONE or not job.options.get("create_offices"):
        return [], []
    named, pairs = job.plan.get("new_offices", []), job.plan.get("new_departments", [])
    offices = set(Office.objects.filter(name__in=named).values_list("name", flat=True))
    departments = set(
        Department.objects.filter(office__name__in={o for o, _d in pairs}, name__in={d for _o, d in pairs}).values_list(
            "office__name", "name"
        )
    )
    return [n for n in named if n in offices], [pair for pair in pairs if tuple(pair) in departments]


def can_apply(job: Job) -> bool:
    """Validated, and in mode full without a single error: a flawed file must never deactivate
    people by leaving them out."""
    if job.state != Job.State.VALIDATED:
        return False
    if job.options.get("mode") == FULL and job.counts.get("errors"):
        return False
    return bool(job.rows_total)


def roster_import_confirm(
    *, job: Job, acting_user: User | None, enqueue: bool = True, acknowledged: bool = False
) -> Job:
    """The admin accepts the preview: apply in chunks on a worker. A preview that deactivates anyone needs
    ``acknowledged`` (the page's tick, the API's flag, the command's option): refused without it, so a
    caller that forgets to ask never deactivates silently. A preview's counts never change once validated."""
    if job.state == Job.State.VALIDATED and job.counts.get("deactivated") and not acknowledged:
        n = job.counts["deactivated"]
        message = _("反映すると %(n)s 人の名簿とログインが無効化されます。確認したうえで反映してください。") % {"n": n}
        raise AppError("acknowledge_required", message)
    job = jobs.job_confirm(
        job=job,
        acting_user=acting_user,
        can_apply=_can_apply_now,
        busy_message=_("別の名簿の取り込みを反映中です。完了してからもう一度お試しください。"),
        applied={"added": 0, "updated": 0, "unchanged": 0, "deactivated": 0, "errors": 0},
    )
    if enqueue:
        from accounts.roster_tasks import roster_apply_task

        jobs.on_commit(roster_apply_task.delay, job.tenant_id, job.pk)
    return job


def _can_apply_now(job: Job) -> bool:
    """``can_apply`` on the locked job at its confirm, refusing with the reason where the admin can act on it:
    a job applied already (a second tab, a double click), or a full import's preview gone stale.

    Mode full deactivates the people its preview found missing from the file (``plan["missing"]``); once
    the roster has changed since (another import applied, someone entered by hand), that list is no longer
    what the file leaves out, so the preview is refused, to be uploaded again. Mode partial needs no such
    rule: each chunk is checked again against the roster as it is when it is written. Previews without a
    stamp (validated before it was kept) are not refused."""
    if job.state == Job.State.DONE:  # same code as any refusal: what an API client saw before
        raise AppError("not_applicable", _("この取り込みはすでに反映されています。"))
    if job.state == Job.State.APPLYING:
        raise AppError("not_applicable", _("この取り込みはすでに反映中です。進み具合はこのページで確認できます。"))
    if not can_apply(job):
        return False
    stamp = job.plan.get("roster_stamp")
    if job.options.get("mode") == FULL and stamp is not None and stamp != roster_stamp():
        raise AppError(
            "roster_changed", _("名簿がプレビューの後に変更されました。もう一度アップロードして確認してください。")
        )
    return True


@dataclass
class PreparedChunk:
    """One chunk read, checked again and turned into writes: everything but the writing itself."""

    index: int
    size: int
    unchanged: int
    errors: int = 0
    new: list = field(default_factory=list)  # COPY records (PostgreSQL) or Member instances
    new_fields: tuple = ()  # the Member fields of the COPY records, in order
    updates: dict[int, dict[str, Any]] = field(default_factory=dict)  # member pk → attribute changes
    read_at: dict[int, dt.datetime] = field(default_factory=dict)  # member pk → its updated_at when compared
    digests: dict[int, bytes] = field(default_factory=dict)  # unchanged member pk → the digest it lacks
    trusted: bool = False  # some rows went in as new on the dry run's word, without a look at the roster


def _prepare_chunk(job: Job, index: int, *, trust_new: bool = True) -> PreparedChunk:
    """``trust_new``: rows the dry run found no entry for, keyed by employee number alone, are written as
    new without looking the roster up again. Someone entering that number meanwhile makes the insert hit the
    unique key, and the step prepares the chunk again without trusting (``roster_import_apply_step``)."""
    plan = job.plan
    start, first_number, size, mask, unchanged = plan["chunks"][index]
    prepared = PreparedChunk(index=index, size=size, unchanged=unchanged)
    todo = jobs.plan_todo(mask)
    if not todo:
        return prepared
    ctx = Context.load(job, plan["columns"])
    if (kept := jobs.side_piece(job, index)) is not None:
        rows = _kept_rows(kept, ctx, todo)
    else:  # jobs checked before the dry run kept its rows, or a chunk whose rows to write changed after it
        with jobs.job_open(job) as f:
            rows = _chunk_rows(f, job, ctx, start=start, first_number=first_number, size=size, todo=todo)
    prepared.errors = todo.bit_count() - len(rows)  # rows that no longer pass (roster changed)
    looked_up = rows
    if trust_new:
        looked_up = [r for r in rows if not (r.new and r.key_field == "employee_number_index" and not r.card_key)]
        prepared.trusted = len(looked_up) < len(rows)
    existing = _existing(looked_up, ctx, frozenset(plan.get("no_fallback", ())), stamped=True)
    new_rows = []
    for row in rows:
        if row.number in existing.ambiguous:
            prepared.errors += 1  # a second entry under the card since the preview
            continue
        current = existing.found.get(row.number)
        if current is None:
            new_rows.append(row)
        elif changes := _member_changes(current, row, ctx):
            changes["roster_digest"] = row_digest(row, ctx)
            prepared.updates[current.pk] = changes
            prepared.read_at[current.pk] = current.updated_at
        else:
            prepared.unchanged += 1
            if not current.holds(row, ctx):
                prepared.digests[current.pk] = row_digest(row, ctx)
                prepared.read_at[current.pk] = current.updated_at
    prepared.new_fields, prepared.new = _new_members(new_rows, ctx)
    return prepared


def roster_import_apply_step(*, job_id: int, prepared: PreparedChunk | None = None) -> bool:
    """Apply the next chunk (or, after the last, finish the job) inside the caller's transaction.

    Returns True while steps remain. The job row is locked, and the chunk's members and the advanced
    ``next_chunk`` commit together: a step interrupted by a crash leaves nothing behind, and a step
    delivered twice finds its chunk already done. ``prepared``: the chunk as read ahead by
    ``roster_import_apply`` (ignored unless it is the chunk due).
    """
    job = jobs.job_lock(job_id=job_id)
    if job is None or job.state != Job.State.APPLYING:
        return False
    plan = job.plan
    applied = job.counts["applied"]
    if job.next_chunk < len(plan["chunks"]):
        if prepared is None or prepared.index != job.next_chunk:
            prepared = _prepare_chunk(job, job.next_chunk)
        try:
            with transaction.atomic():  # a savepoint: a trusted row taken meanwhile undoes the chunk's writes only
                written = _write_chunk(prepared)
        except (IntegrityError, psycopg.errors.UniqueViolation):  # the ORM's (SQLite) or the COPY's
            if not prepared.trusted:
                raise
            prepared = _prepare_chunk(job, job.next_chunk, trust_new=False)
            written = _write_chunk(prepared)
        applied["unchanged"] += prepared.unchanged
        applied["errors"] += prepared.errors
        for name, n in written.items():
            applied[name] = applied.get(name, 0) + n  # logins_enabled: jobs confirmed before it existed
        job.next_chunk += 1
        job.rows_done = min(job.rows_total, job.rows_done + prepared.size)
        job.save(update_fields=["next_chunk", "rows_done", "counts", "updated_at"])  # not the plan again
        return True
    if job.options.get("mode") == FULL:
        missing = plan.get("missing", [])
        for start in range(0, len(missing), 1000):
            due = Member.objects.filter(pk__in=missing[start : start + 1000], is_active=True)
            applied["deactivated"] += _deactivate(due.values_list("pk", "user_id"))
    jobs.job_finish(job)
    audit.record(
        action="roster.imported",
        target_type="job",
        target_id=job.pk,
        actor=job.confirmed_by,
        details={
            "mode": job.options.get("mode"),
            "rows": job.rows_total,
            **{k: applied[k] for k in ("added", "updated", "unchanged", "deactivated")},
            "logins_enabled": applied.get("logins_enabled", 0),
            "errors": job.counts.get("errors", 0) + applied["errors"],
            "file_sha256": job.file_sha256,
            "file_size": job.file_size,
        },
    )
    return False


def roster_import_apply(*, tenant: Tenant, job_id: int, progress: Callable[[Job], None] | None = None) -> None:
    """Apply a confirmed job, each chunk in a transaction of its own (what the worker runs). On
    PostgreSQL the writing of chunk n (COPY, INSERT, constraint and policy checks: server time) overlaps
    the reading, checking and sealing of chunk n + 1 (client time), see ``jobs.job_apply``."""
    jobs.job_apply(
        tenant=tenant, job_id=job_id, step=roster_import_apply_step, prepare=_prepare_chunk, progress=progress
    )


def _chunk_rows(
    f: IO[bytes], job: Job, ctx: Context, *, start: int, first_number: int, size: int, todo: int
) -> list[Row]:
    """The chunk's rows marked to do, checked again (the roster may have changed since the preview)."""
    plan = job.plan
    rows, index, number = [], 0, first_number - 1
    for _end, cells in records(f, start=start, encoding=plan["encoding"], delimiter=plan["delimiter"]):
        number += 1
        if _blank(cells):
            continue
        if todo >> index & 1:
            row = clean_row(cells, number, ctx)
            if not row.errors:
                rows.append(row)
        index += 1
        if index >= size:
            break
    return rows


_DATES = frozenset({"birth_date", "qualification_start", "qualification_end"})


def _kept_layout(columns: list[str | None]) -> tuple[list[str], list[int]]:
    """The file's known columns, in the order kept rows hold their values, and where the dates are."""
    names = [c for c in columns if c is not None]
    return names, [at for at, c in enumerate(names) if c in _DATES]


def _keep_rows(chunk: list[Row], todo: int, columns: list[str | None]) -> list:
    """The chunk's rows to write as the dry run checked them (``jobs.SideFile``): [position, record number,
    key field, key, card key, values in column order, 1 if it found no entry for it], dates as ISO text."""
    names, dates = _kept_layout(columns)
    kept = []
    for index, row in enumerate(chunk):
        if todo >> index & 1:
            values = [row.values.get(c) for c in names]
            for at in dates:
                if values[at] is not None:
                    values[at] = values[at].isoformat()
            kept.append([index, row.number, row.key_field, row.key, row.card_key, values, int(row.new)])
    return kept


def _kept_rows(kept: list, ctx: Context, todo: int) -> list[Row]:
    """The chunk's kept rows to write, their places checked again (an office may be gone since)."""
    names, dates = _kept_layout(ctx.columns)
    rows = []
    for index, number, key_field, key, card_key, values, *new in kept:  # no "new": kept as JSON, before it
        if not todo >> index & 1:
            continue
        for at in dates:
            if values[at] is not None:
                values[at] = dt.date.fromisoformat(values[at])
        row = Row(number=number, values=dict(zip(names, values, strict=True)), key_field=key_field, key=key)
        row.card_key, row.new = card_key, bool(new and new[0])
        _resolve_office(row, ctx)
        if not row.errors:
            rows.append(row)
    return rows


def _write_chunk(prepared: PreparedChunk) -> dict[str, int]:
    counts = {"added": 0, "updated": 0, "deactivated": 0}
    to_deactivate_users: list[int] = []
    to_enable_users: list[int] = []
    updates = prepared.updates
    # Locked: an entry saved by someone else after it was compared keeps that change (the import writes
    # only what it found different) and so must not get the row's digest, which would hide the difference.
    for member in Member.objects.select_for_update().filter(pk__in=list(updates)) if updates else ():
        changes = updates[member.pk]
        if member.updated_at != prepared.read_at[member.pk]:
            changes["roster_digest"] = None
        for attr, value in changes.items():
            setattr(member, attr, value)
        member.save(update_fields=[attr.removesuffix("_id") for attr in changes] + ["updated_at"])
        if changes.get("is_active") is False:
            counts["deactivated"] += 1
            if member.user_id:
                to_deactivate_users.append(member.user_id)
        else:
            counts["updated"] += 1
            # Listed again as the same person: a row that also changes the name or birth date may be someone
            # else under a reused number, who must not inherit the previous holder's login.
            if changes.get("is_active") and member.user_id and not changes.keys() & {"name", "birth_date"}:
                to_enable_users.append(member.user_id)
    if prepared.digests:
        _give_digests(prepared)
    counts["added"] = _insert_members(prepared.new, prepared.new_fields)
    _logins_off(to_deactivate_users)
    if to_enable_users:  # listed again: the login the roster turned off (not one an operator did)
        counts["logins_enabled"] = User.objects.filter(
            pk__in=to_enable_users, tenant=require_tenant(), disabled_by_roster=True
        ).update(is_active=True, disabled_by_roster=False)
    return counts


def _give_digests(prepared: PreparedChunk) -> None:
    """Store the digests of unchanged entries that lacked them, on entries nobody saved since they were
    compared (locked, as the updates are); no ``save``: nothing else about them changes."""
    digests, read_at = prepared.digests, prepared.read_at
    due = [
        Member(pk=pk, roster_digest=digests[pk])
        for pk, updated_at in Member.objects.select_for_update()
        .filter(pk__in=list(digests))
        .values_list("pk", "updated_at")
        if updated_at == read_at[pk]
    ]
    Member.objects.bulk_update(due, ["roster_digest"], batch_size=1000)


def _logins_off(user_ids: list[int]) -> None:
    """Turn off the logins of deactivated roster entries, marked as the roster's doing."""
    if user_ids:
        User.objects.filter(pk__in=user_ids, tenant=require_tenant(), is_active=True).update(
            is_active=False, disabled_by_roster=True
        )


def _new_member(row: Row, ctx: Context, now: dt.datetime, defaults: dict[str, Any]) -> dict[str, Any]:
    """A new roster entry's attributes (plaintext; sealed when written), defaults for the rest."""
    values = defaults.copy()
    values.update(row.values)
    values["relationship"] = values.get("relationship") or _SELF
    del values["office"], values["department"]  # names; the entry holds their ids
    values["uid"] = uuid.uuid4()
    values["office_id"], values["department_id"] = _office_ids(row, ctx)
    values["is_active"] = _target_active(row.values, ctx.today)
    values["tenant_id"], values["created_at"], values["updated_at"] = ctx.tenant.pk, now, now
    values["roster_digest"] = row_digest(row, ctx)
    values.update(ctx.indexes(values, known={row.key_field: row.key}))
    return values


_MEMBER_FIELDS = [f for f in Member._meta.concrete_fields if not f.primary_key]
_MEMBER_ENCRYPTED = frozenset(f.attname for f in encrypted_fields(Member))


def _new_members(rows: list[Row], ctx: Context) -> tuple[tuple, list]:
    """New roster entries, ready to write, and the fields they hold: on PostgreSQL COPY records of the
    columns that differ from row to row (the INSERT adds tenant, timestamps and NULLs), built without
    model instances or per-row dicts, each row's personal values sealed in one pass (``seal_row``);
    elsewhere Member instances for ``bulk_create``."""
    if not rows:
        return (), []
    if connections[DEFAULT_DB_ALIAS].vendor != "postgresql":
        now = timezone.now()
        defaults = {f.attname: f.get_default() for f in _MEMBER_FIELDS if f.attname != "uid"}
        defaults["office"] = defaults["department"] = None
        members = []
        for row in rows:
            values = _new_member(row, ctx, now, defaults)
            members.append(Member(**{k: v for k, v in values.items() if k not in ("created_at", "updated_at")}))
        return (), members
    tenant_id, today = ctx.tenant.pk, ctx.today
    fields = _VARYING + tuple(f for f in _ENCRYPTED if f.attname in ctx.columns)
    # (position in the record, field, attribute, "" stored as NULL): flat tuples, no Field hashing per value
    personal = [(at, f, f.attname, f.empty_as_null) for at, f in enumerate(fields) if at >= len(_VARYING)]
    records = []
    places: dict[tuple, tuple[int | None, int | None]] = {}  # (office, department) names → ids
    for row, uid in zip(rows, _uuid4s(len(rows)), strict=True):
        values = row.values
        place = (values.get("office"), values.get("department"))
        office_id, department_id = places.get(place) or places.setdefault(place, _office_ids(row, ctx))
        indexes = ctx.indexes(values, known={row.key_field: row.key})
        record = [
            uid, office_id, department_id, values.get("relationship") or _SELF, values.get("qualification_start"),
            values.get("qualification_end"),
            _target_active(values, today), indexes["employee_number_index"], indexes["name_index"],
            indexes["email_index"], indexes["insurance_card_index"], row_digest(row, ctx),
        ]  # fmt: skip
        record += [None] * len(personal)
        items, positions = [], []
        for at, f, name, empty_as_null in personal:
            value = values.get(name)
            if value is not None and not (empty_as_null and value == ""):
                items.append((f, value))
                positions.append(at)
        for at, sealed in zip(positions, seal_row(tenant_id, uid.bytes, items), strict=True):
            record[at] = sealed
        records.append(record)
    return fields, records


def _uuid4s(n: int) -> list[uuid.UUID]:
    """``n`` random (version 4) UUIDs from one read of the system's random source, as ``uuid4`` makes
    them one read each: a third of the time for an import's chunk of new rows."""
    raw = urandom(16 * n)
    version = ~(0xC000 << 48 | 0xF000 << 64)
    bits = 0x8000 << 48 | 4 << 76  # RFC 4122 variant, version 4
    return [uuid.UUID(int=int.from_bytes(raw[at : at + 16]) & version | bits) for at in range(0, 16 * n, 16)]


_ENCRYPTED = [f for f in _MEMBER_FIELDS if f.attname in _MEMBER_ENCRYPTED]
_PLAIN = [f for f in _MEMBER_FIELDS if f.attname not in _MEMBER_ENCRYPTED]
_COLUMNS = tuple(f.column for f in _PLAIN + _ENCRYPTED)
_VARYING = tuple(
    Member._meta.get_field(name)
    for name in ("uid", "office", "department", "relationship", "qualification_start", "qualification_end", "is_active",
                 "employee_number_index", "name_index", "email_index", "insurance_card_index", "roster_digest")
)  # fmt: skip
_SELF = Member.Relationship.SELF.value


def _insert_members(new: list, fields: tuple) -> int:
    """Insert new members; row-level security applies as to any INSERT of the application role. On
    PostgreSQL the records are streamed with COPY into a temporary table and inserted from there in
    one statement: COPY itself is refused on a table under row-level security, and row-by-row
    INSERTs cost the server a round of planning, constraint and policy checks each."""
    if not new:
        return 0
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.vendor != "postgresql":
        Member.objects.bulk_create(new, batch_size=500)
        return len(new)
    connection.ensure_connection()
    copy_statement, insert_statement = _copy_statements(tuple(f.column for f in fields))
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(_staging_statement(_COLUMNS))
        with cursor.copy(copy_statement) as copy:
            copy.set_types(_copy_types(connection, fields))
            for record in new:
                copy.write_row(record)
        now = timezone.now()
        cursor.execute(insert_statement, {"tenant": require_tenant().pk, "now": now})
        added = cursor.rowcount
        cursor.execute("TRUNCATE roster_new")  # several chunks may share one transaction (operator command)
        return added


@lru_cache(maxsize=8)
def _copy_statements(copied: tuple[str, ...]) -> tuple[pgsql.Composed, pgsql.Composed]:
    """COPY of the varying columns (binary: the sealed values travel as bytes, not as hex text that
    both sides would convert), and the INSERT that adds the tenant and the timestamps; the columns not
    copied are NULL in the load table (no login yet, personal fields the file does not have)."""
    copy = pgsql.SQL("COPY roster_new ({}) FROM STDIN (FORMAT BINARY)").format(_identifiers(copied))
    given = {"tenant_id": pgsql.Placeholder("tenant"), "created_at": pgsql.Placeholder("now")}
    given["updated_at"] = given["created_at"]
    selects = pgsql.SQL(", ").join(given.get(c, pgsql.Identifier(c)) for c in _COLUMNS)
    insert = pgsql.SQL("INSERT INTO {} ({}) SELECT {} FROM roster_new").format(
        pgsql.Identifier(Member._meta.db_table), _identifiers(_COLUMNS), selects
    )
    return copy, insert


def _copy_types(connection, fields: tuple) -> list[str]:
    """The PostgreSQL type of each COPY column, as a binary COPY must be told (sizes dropped)."""
    return [re.sub(r"\(.*\)", "", f.db_type(connection)) for f in fields]


def _identifiers(columns: Iterable[str]) -> pgsql.Composed:
    return pgsql.SQL(", ").join(pgsql.Identifier(c) for c in columns)


@lru_cache(maxsize=4)
def _staging_statement(columns: tuple[str, ...]) -> pgsql.Composed:
    # A session-private table with the member table's column types, created once per connection (as the
    # checkup import's load tables): creating and dropping it per chunk cost the server a catalog write
    # each time. Emptied after each insert, and at commit in any case.
    return pgsql.SQL(
        "CREATE TEMP TABLE IF NOT EXISTS roster_new ON COMMIT DELETE ROWS AS SELECT {} FROM {} WITH NO DATA"
    ).format(_identifiers(columns), pgsql.Identifier(Member._meta.db_table))


def _deactivate(pairs: Iterable[tuple[int, int | None]]) -> int:
    """Deactivate members (and their logins); nothing is ever deleted by an import."""
    pairs = list(pairs)
    if not pairs:
        return 0
    member_ids = [pk for pk, _ in pairs]
    user_ids = [u for _, u in pairs if u]
    count = 0
    for start in range(0, len(member_ids), 1000):
        count += Member.objects.filter(pk__in=member_ids[start : start + 1000]).update(
            is_active=False, inactive_since=timezone.localdate(), updated_at=timezone.now()
        )
    _logins_off(user_ids)
    return count


def roster_import_run(*, job_id: int, progress=None) -> Job:
    """Apply every remaining step in the caller's transaction (operator command, tests)."""
    while roster_import_apply_step(job_id=job_id):
        if progress:
            progress(Job.objects.get(pk=job_id))
    return Job.objects.get(pk=job_id)


@transaction.atomic
def members_expire_qualifications(*, today: dt.date | None = None) -> int:
    """Deactivate members whose 資格喪失日 has come (the scheduled end of a future-dated row)."""
    today = today or timezone.localdate()
    due = Member.objects.filter(is_active=True, qualification_end__lte=today).values_list("pk", "user_id")
    count = _deactivate(due)
    if count:
        audit.record(action="roster.qualifications.expired", target_type="tenant", details={"deactivated": count})
    return count


# --- Reports ---------------------------------------------------------------------------------------------


def error_report_rows(job: Job) -> Iterator[list[object]]:
    """Row number, column, reason: the error report never repeats a cell's value."""
    for error in job.errors:
        label = column_label(error.get("column") or "")
        if error.get("header"):  # as the page shows it: 14 列目（備考）
            label += pgettext("bracket", "（") + error["header"] + pgettext("bracket", "）")
        yield [
            error.get("row") or "",
            label,
            error["code"],
            error_message(error["code"]),
        ]


def column_label(column: str) -> str:
    """An error's column as people read it; a header problem's by its position (its text, when it is
    shown at all, is the error's ``header``: see ``_read_header``)."""
    if column.startswith("#"):
        return _("%(n)s 列目") % {"n": column[1:]}
    return str(COLUMN_LABELS.get(column, ""))


def error_report_header() -> list[str]:
    return [_("行"), _("列"), _("コード"), _("内容")]


INSURER_COLUMNS = ("insurance_symbol", "insurance_number", "insurance_branch", "relationship")


def template_columns(tenant: Tenant) -> list[str]:
    """The columns the template offers: an insurer's have the card's, a company's do not (its file may still
    bring them)."""
    insurer = tenant.kind == Tenant.Kind.INSURER
    return [c for c in COLUMNS if insurer or c not in INSURER_COLUMNS]


def template_csv(lang: str, *, tenant: Tenant) -> bytes:
    """The published template: the header row in Japanese or English (UTF-8 with BOM for Excel)."""
    index = 1 if lang == "en" else 0
    return csv_bytes([COLUMNS[c][index] for c in template_columns(tenant)], [])


@dataclass(frozen=True)
class FileGuide:
    """What the upload page says about the file, read from the tables the import itself uses."""

    insurer: bool
    columns: list[tuple[str, str, str]]  # (Japanese header, English header, "required" | "key" | "")
    card: list[str]  # an insurer's key without 社員番号: these columns' headers
    sex: list[tuple[str, list[str]]]  # (the value's label, the words read as it)
    relationship: list[tuple[str, list[str]]]
    dates: tuple[str, ...]
    max_mb: int


def file_guide(*, tenant: Tenant) -> FileGuide:
    insurer = tenant.kind == Tenant.Kind.INSURER
    required = {"name"} if insurer else {"name", "employee_number"}
    key = {"employee_number", *INSURER_CARD} if insurer else set()
    return FileGuide(
        insurer=insurer,
        columns=[
            (COLUMNS[c][0], COLUMNS[c][1], "required" if c in required else "key" if c in key else "")
            for c in template_columns(tenant)
        ],
        card=[COLUMNS[c][0] for c in (*INSURER_CARD[:2], "relationship", *INSURER_CARD[2:])],
        sex=_words(SEX_WORDS, Member.Sex),
        relationship=_words(_RELATIONSHIP, Member.Relationship),
        dates=DATE_EXAMPLES,
        max_mb=settings.ROSTER_IMPORT_MAX_BYTES // 2**20,
    )


def _words(table: dict[str, str], choices) -> list[tuple[str, list[str]]]:
    """A cleaner's table as (the value's label, the words read as it), in the table's order."""
    return [(str(label), [word for word, v in table.items() if v == value]) for value, label in choices.choices]
