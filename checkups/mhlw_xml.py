"""Safe parser for the MHLW electronic checkup format (特定健診 XML, HL7 CDA R2, hc08_V08).

Pure Python: bytes in, plain dataclasses out; no database, nothing printed or logged.

Safety rules:
- XML goes through defusedxml with DTDs forbidden: no entity expansion (billion laughs), no external
  entities or DTD fetches. Real MHLW files never carry a DOCTYPE, so refusing it costs nothing.
- A ZIP bundle is read in memory with caps on the number of entries, each entry's size (declared and
  actually inflated) and the total; entry names that escape the bundle (``..``, absolute, drive letters)
  are refused. Problems are reported per file; one bad file never aborts the bundle.
- Messages name the item or element, never the value of an identity field (insurer number, 記号, 番号,
  枝番, birth date); ``ParsedCheckup``'s repr leaves those fields out.

Value rules (the catalogue data is ``checkups/criteria/items_v1.json``, see ``checkups.items``):
- A missing ``codeSystem`` on an observation code defaults to 1.2.392.200119.6.1005.
- Units are normalised to one canonical unit per item (``mmHg`` → ``mm[Hg]``, ``mg/dl`` → ``mg/dL``,
  ``IU/l`` → ``U/L``); an unknown or missing unit for a known item is a per-item error.
- Representative value when one item has several codes: the code whose role is ``representative``
  (blood pressure "その他", 9A755/9A765) if present; else the mean of the 1st and 2nd readings, rounded
  half-up to the item's precision (1 mmHg); else the first code present in catalogue order (waist:
  measured, then self-measured, then self-reported; lab tests: by method as listed).
- HbA1c under the old JDS codes (3D045…) is converted to NGSP by +0.4 % (the JDS 2012 simplified rule;
  the offset is data) and the Result says so in ``note``; an NGSP code in the same file always wins.
- An item with any bad reading (unknown unit, wrong type, impossible value, conflicting duplicates) is
  left out entirely and the reason recorded in ``errors``: we import nothing doubtful.
- Unknown codes are listed in ``unknown_codes``, never fatal. Observations not performed
  (``negationInd="true"``) or without a value (``nullFlavor``) are skipped.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from xml.etree.ElementTree import Element
from xml.etree.ElementTree import ParseError as XMLSyntaxError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from checkups import items as catalogue_module
from checkups.items import Catalogue, Item, Legacy, Question

NS = "urn:hl7-org:v3"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
_N = {"h": NS}

OID_INSURER = "1.2.392.200119.6.101"
OID_SYMBOL = "1.2.392.200119.6.204"
OID_NUMBER = "1.2.392.200119.6.205"
OID_BRANCH = "1.2.392.200119.6.211"
OID_INSTITUTION = "1.2.392.200119.6.102"
SEX_CODES = {"1": "male", "2": "female"}  # OID 1.2.392.200119.6.1104

MAX_DOCUMENT_BYTES = 5 * 2**20  # one person's file is tens of KB
MAX_ENTRIES = 100_000
MAX_TOTAL_BYTES = 1 * 2**30
_CENTRAL_DIRECTORY_RECORD = b"PK\x01\x02"
_DATA_ENTRY = re.compile(r"h[^/]*\.xml", re.IGNORECASE)


class ParseError(Exception):
    """A whole file (or bundle) that cannot be read. ``code`` is stable for programs; ``message`` is ja / en;
    ``source`` is the entry name inside a ZIP (never personal data)."""

    def __init__(self, code: str, message: str, *, source: str = "") -> None:
        super().__init__(f"{source}: {message}" if source else message)
        self.code, self.message, self.source = code, message, source


@dataclass(frozen=True)
class Result:
    """One item's representative value. ``value`` is a Decimal for quantities, the answer code for coded items."""

    value: Decimal | str
    unit_as_given: str
    unit: str
    code: str
    interpretation: str | None = None
    source_codes: tuple[str, ...] = ()  # every code that contributed, for the audit trail
    note: str = ""  # how the value was chosen or converted, when not simply "as given"


@dataclass(frozen=True)
class ItemError:
    """A problem with one item, questionnaire answer or header field; the rest of the file is still usable."""

    item: str  # item key, questionnaire key, header field or element name
    code: str  # the 17-digit code concerned, or ""
    reason: str  # stable machine code: unit_unknown, implausible, bad_value, …
    message: str  # ja / en, names the item, never an identity value


@dataclass
class ParsedCheckup:
    insurer_number: str | None = field(default=None, repr=False)
    symbol: str | None = field(default=None, repr=False)
    number: str | None = field(default=None, repr=False)
    branch: str | None = field(default=None, repr=False)
    sex: str | None = None  # "male" / "female"
    birth_date: date | None = field(default=None, repr=False)
    institution: str | None = None  # 10-digit 健診機関番号
    program: str | None = None  # CheckupRecord.Program: "specific" (010 特定健診) / "regular" (030 事業者健診)
    program_code: str | None = None
    exam_date: date | None = None
    items: dict[str, Result] = field(default_factory=dict)
    questionnaire: dict[str, str] = field(default_factory=dict)  # answer code, or text for ST questions
    unknown_codes: list[str] = field(default_factory=list)
    errors: list[ItemError] = field(default_factory=list)
    source: str = ""

    @property
    def matchable(self) -> bool:
        """Enough header to find the member (insurer number + number) and date the record."""
        return bool(self.insurer_number and self.number and self.exam_date)


@dataclass(frozen=True)
class _Reading:
    code: str
    role: str
    value: Decimal | str
    unit_as_given: str
    unit: str
    interpretation: str | None
    legacy: Legacy | None


# ---------------------------------------------------------------------------------------------- document


def parse_document(
    data: bytes, *, source: str = "", catalogue: Catalogue | None = None, max_bytes: int = MAX_DOCUMENT_BYTES
) -> ParsedCheckup:
    """Parse one ClinicalDocument. Raises ParseError when the file as a whole is unusable (not XML, DTD or
    entities, wrong root or namespace, too large); item-level problems land in ``errors``."""
    cat = catalogue or catalogue_module.load()
    root = _parse_xml(data, source=source, max_bytes=max_bytes)
    parsed = ParsedCheckup(source=source)
    _read_header(root, parsed, cat)
    body = root.find("h:component/h:structuredBody", _N)
    if body is None:
        parsed.errors.append(
            ItemError("structuredBody", "", "missing", "structuredBody がありません / no structuredBody")
        )
        return parsed
    _read_body(body, parsed, cat)
    return parsed


def _parse_xml(data: bytes, *, source: str, max_bytes: int) -> Element:
    if len(data) > max_bytes:
        raise ParseError(
            "too_large", f"ファイルが大きすぎます（上限 {max_bytes} バイト） / file too large", source=source
        )
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise ParseError(
            "dtd_forbidden",
            "DTD・エンティティ宣言を含む XML は受け付けません / XML with a DTD or entity declarations is refused",
            source=source,
        ) from None
    except XMLSyntaxError as exc:
        line = exc.position[0] if getattr(exc, "position", None) else "?"
        raise ParseError(
            "malformed",
            f"XML として読めません（{line} 行目付近） / not well-formed XML (near line {line})",
            source=source,
        ) from None
    except (ValueError, LookupError, UnicodeError):
        raise ParseError(
            "malformed", "XML として読めません（文字コード） / not readable XML (encoding)", source=source
        ) from None
    if root.tag != f"{{{NS}}}ClinicalDocument":
        raise ParseError(
            "wrong_root",
            "ルート要素が名前空間 urn:hl7-org:v3 の ClinicalDocument ではありません / "
            "root element is not ClinicalDocument in namespace urn:hl7-org:v3",
            source=source,
        )
    return root


def _read_header(root: Element, parsed: ParsedCheckup, cat: Catalogue) -> None:
    ids = {
        el.get("root"): (el.get("extension") or "").strip()
        for el in root.findall("h:recordTarget/h:patientRole/h:id", _N)
    }
    parsed.insurer_number = ids.get(OID_INSURER) or None
    parsed.symbol = ids.get(OID_SYMBOL) or None
    parsed.number = ids.get(OID_NUMBER) or None
    parsed.branch = ids.get(OID_BRANCH) or None
    required = (("insurer_number", "保険者番号", "insurer number"), ("number", "被保険者証番号", "card number"))
    for name, ja, en in required:
        if not getattr(parsed, name):
            parsed.errors.append(ItemError(name, "", "missing", f"recordTarget: {ja}がありません / {en} missing"))

    patient = root.find("h:recordTarget/h:patientRole/h:patient", _N)
    gender = patient.find("h:administrativeGenderCode", _N) if patient is not None else None
    parsed.sex = SEX_CODES.get(gender.get("code", "")) if gender is not None else None
    if parsed.sex is None:
        parsed.errors.append(
            ItemError("sex", "", "missing", "administrativeGenderCode: 性別が読めません / sex missing or invalid")
        )
    birth = patient.find("h:birthTime", _N) if patient is not None else None
    parsed.birth_date = _date(birth.get("value") if birth is not None else None)
    if parsed.birth_date is None:
        parsed.errors.append(
            ItemError("birth_date", "", "missing", "birthTime: 生年月日が読めません / birth date missing or invalid")
        )

    institution = root.find(f"h:author/h:assignedAuthor/h:representedOrganization/h:id[@root='{OID_INSTITUTION}']", _N)
    if institution is None:  # some writers put it on assignedAuthor or only on the custodian
        institution = root.find(f"h:author//h:id[@root='{OID_INSTITUTION}']", _N)
    if institution is None:
        institution = root.find(f"h:custodian//h:id[@root='{OID_INSTITUTION}']", _N)
    parsed.institution = (institution.get("extension") or "").strip() or None if institution is not None else None

    event = root.find("h:documentationOf/h:serviceEvent", _N)
    code = event.find("h:code", _N) if event is not None else None
    parsed.program_code = code.get("code") if code is not None else None
    parsed.program = cat.programs.get(parsed.program_code or "")
    if parsed.program is None:
        parsed.errors.append(
            ItemError("program", "", "unknown", "serviceEvent/code: 健診種別が不明です / unknown checkup program")
        )
    when = event.find("h:effectiveTime", _N) if event is not None else None
    if when is not None and when.get("value") is None:
        when = when.find("h:low", _N)  # an interval: the exam starts on its low bound
    parsed.exam_date = _date(when.get("value") if when is not None else None)
    if parsed.exam_date is None:
        parsed.errors.append(
            ItemError("exam_date", "", "missing", "serviceEvent/effectiveTime: 実施日が読めません / exam date missing")
        )
    elif parsed.exam_date > latest_exam_date():
        parsed.errors.append(
            ItemError(
                "exam_date", "", "future", "serviceEvent/effectiveTime: 実施日が未来です / exam date in the future"
            )
        )
    elif parsed.birth_date is not None and parsed.exam_date < parsed.birth_date:
        parsed.errors.append(
            ItemError("exam_date", "", "before_birth", "実施日が生年月日より前です / exam date before the birth date")
        )


def latest_exam_date() -> date:
    """The latest exam date an import accepts: today, with a day's grace, since the server's clock may
    run in UTC while the exam took place in Japan."""
    return date.today() + timedelta(days=1)


def _date(value: str | None) -> date | None:
    """HL7 TS (YYYYMMDD[hhmm…]) → date; anything else → None."""
    if not value or len(value) < 8 or not value[:8].isdigit():
        return None
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except ValueError:
        return None


# -------------------------------------------------------------------------------------------------- body


def _read_body(body: Element, parsed: ParsedCheckup, cat: Catalogue) -> None:
    readings: dict[str, list[_Reading]] = {}
    answers: dict[str, list[str]] = {}
    failed: set[str] = set()
    unknown: dict[str, None] = {}  # ordered set
    for obs in body.iter(f"{{{NS}}}observation"):  # sections, entries, organizers, nested groups alike
        if obs.get("negationInd") == "true":
            continue  # not performed
        code_el = obs.find("h:code", _N)
        code = (code_el.get("code") or "").strip() if code_el is not None else ""
        if not code:
            continue  # a grouping observation (code nullFlavor="NA")
        system = code_el.get("codeSystem") or cat.default_code_system
        meaning = cat.lookup(code) if system == cat.default_code_system else None
        if meaning is None:
            unknown.setdefault(code if system == cat.default_code_system else f"{system}:{code}")
            continue
        value_el = obs.find("h:value", _N)
        if value_el is None or value_el.get("nullFlavor"):
            continue  # not measured / no result
        interp_el = obs.find("h:interpretationCode", _N)
        interpretation = (interp_el.get("code") or "").strip() if interp_el is not None else None
        if interpretation and not _INTERPRETATION.fullmatch(interpretation):
            interpretation = None  # not an HL7 interpretation code (H, L, N, HH, LL, A, …): not kept
        if isinstance(meaning, Question):
            answer = _answer(meaning, value_el, parsed)
            if answer is None:
                failed.add(meaning.key)
            else:
                answers.setdefault(meaning.key, []).append(answer)
            continue
        if isinstance(meaning, Legacy):
            item = cat.items[meaning.item]
            role, legacy = "legacy", meaning
        else:
            item, role, legacy = cat.items[meaning.item], meaning.role, None
        reading = _reading(item, code, role, legacy, value_el, interpretation, parsed, cat)
        if reading is None:
            failed.add(item.key)
        else:
            readings.setdefault(item.key, []).append(reading)

    for key, values in answers.items():
        if key in failed:
            continue
        if len(set(values)) > 1:
            q = cat.questions[key]
            parsed.errors.append(_conflict(key, q.code, q.label, q.label_en))
            continue
        parsed.questionnaire[key] = values[0]
    for key, item_readings in readings.items():
        if key in failed:
            continue  # an item with any bad reading is left out entirely
        result = _representative(cat.items[key], item_readings, parsed)
        if result is not None:
            parsed.items[key] = result
    parsed.unknown_codes = list(unknown)


def _answer(question: Question, value_el: Element, parsed: ParsedCheckup) -> str | None:
    kind = (value_el.get(XSI_TYPE) or "").rpartition(":")[2]
    if question.type == "ST":
        if kind != "ST":
            parsed.errors.append(_type_error(question.key, question.code, question.label, question.label_en))
            return None
        text = (value_el.text or "").strip()
        if question.max_length and len(text) > question.max_length:
            parsed.errors.append(
                ItemError(
                    question.key,
                    question.code,
                    "too_long",
                    f"{question.label}: 文字数が上限（{question.max_length}）を超えています / "
                    f"{question.label_en}: text longer than {question.max_length}",
                )
            )
            return None
        return text
    if kind not in ("CO", "CD"):
        parsed.errors.append(_type_error(question.key, question.code, question.label, question.label_en))
        return None
    answer = (value_el.get("code") or "").strip()
    if question.answer_label(answer) is None or not _same_list(value_el, question.code_system):
        parsed.errors.append(_bad_answer(question.key, question.code, question.label, question.label_en))
        return None
    return answer


def _reading(
    item: Item,
    code: str,
    role: str,
    legacy: Legacy | None,
    value_el: Element,
    interpretation: str | None,
    parsed: ParsedCheckup,
    cat: Catalogue,
) -> _Reading | None:
    kind = (value_el.get(XSI_TYPE) or "").rpartition(":")[2]
    if item.type == "CO":
        if kind not in ("CO", "CD"):
            parsed.errors.append(_type_error(item.key, code, item.label, item.label_en))
            return None
        answer = (value_el.get("code") or "").strip()
        if item.answer_label(answer) is None or not _same_list(value_el, item.code_system):
            parsed.errors.append(_bad_answer(item.key, code, item.label, item.label_en))
            return None
        return _Reading(code, role, answer, "", "", interpretation, legacy)
    if kind != "PQ":
        parsed.errors.append(_type_error(item.key, code, item.label, item.label_en))
        return None
    raw_unit = (value_el.get("unit") or "").strip()
    try:
        value = Decimal((value_el.get("value") or "").strip())
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite():
        parsed.errors.append(
            ItemError(item.key, code, "bad_value", f"{item.label}: 数値が読めません / {item.label_en}: not a number")
        )
        return None
    unit = cat.canonical_unit(item, raw_unit)
    if unit is None:
        parsed.errors.append(
            ItemError(
                item.key,
                code,
                "unit_unknown",
                f"{item.label}: 単位が不明です（{item.unit} を想定） / {item.label_en}: unknown or missing unit "
                f"(expected {item.unit})",
            )
        )
        return None
    if legacy is not None:
        value += legacy.offset
    problem = catalogue_module.plausibility_problem(item, value)
    if problem:
        parsed.errors.append(ItemError(item.key, code, "implausible", problem))
        return None
    return _Reading(code, role, value, raw_unit, unit, interpretation, legacy)


def _representative(item: Item, readings: list[_Reading], parsed: ParsedCheckup) -> Result | None:
    """Choose one value per item by the documented rule (see module docstring)."""
    by_code: dict[str, _Reading] = {}
    for reading in readings:
        seen = by_code.setdefault(reading.code, reading)
        if seen.value != reading.value:
            parsed.errors.append(_conflict(item.key, reading.code, item.label, item.label_en))
            return None
    methods = {r.value for r in by_code.values() if r.role == "method" and r.legacy is None}
    if len(methods) > 1:  # e.g. LDL by two methods, 141 and 95: which one the physician should see is not ours to pick
        parsed.errors.append(_conflict(item.key, readings[0].code, item.label, item.label_en))
        return None
    current = [r for r in by_code.values() if r.legacy is None]
    note = ""
    if current and len(current) < len(by_code):
        note = "JDS code ignored: NGSP present"
    pool = current or list(by_code.values())
    codes = tuple(by_code)
    roles = {r.role: r for r in pool}
    if "representative" in roles:
        chosen = roles["representative"]
    elif "reading1" in roles and "reading2" in roles:
        first, second = roles["reading1"], roles["reading2"]
        mean = catalogue_module.round_half_up((Decimal(first.value) + Decimal(second.value)) / 2, item.precision)
        return Result(
            mean,
            first.unit_as_given,
            first.unit,
            f"{first.code}+{second.code}",  # a mean of both readings, not the 1st reading's value
            first.interpretation if first.interpretation == second.interpretation else None,
            codes,
            f"mean of {first.code} and {second.code}, rounded half-up",
        )
    else:
        order = {c.code: i for i, c in enumerate(item.codes)}
        chosen = min(pool, key=lambda r: order.get(r.code, len(order)))
    if chosen.legacy is not None:
        note = chosen.legacy.note
    return Result(chosen.value, chosen.unit_as_given, chosen.unit, chosen.code, chosen.interpretation, codes, note)


def _same_list(value_el: Element, code_system: str) -> bool:
    """An answer code means something only in its code list (OID): "2" is ± for urine, "no" for a
    medication, "quit" for smoking. A missing codeSystem is taken as the expected one."""
    given = (value_el.get("codeSystem") or "").strip()
    return not given or not code_system or given == code_system


def _type_error(key: str, code: str, label: str, label_en: str) -> ItemError:
    return ItemError(
        key, code, "wrong_type", f"{label}: 値の型（xsi:type）が不正です / {label_en}: unexpected value type"
    )


def _bad_answer(key: str, code: str, label: str, label_en: str) -> ItemError:
    return ItemError(key, code, "bad_answer", f"{label}: 回答コードが不正です / {label_en}: unknown answer code")


def _conflict(key: str, code: str, label: str, label_en: str) -> ItemError:
    return ItemError(
        key, code, "conflict", f"{label}: 同じコードに異なる値があります / {label_en}: conflicting values for one code"
    )


# --------------------------------------------------------------------------------------------------- ZIP


def parse_zip(
    data: bytes,
    *,
    catalogue: Catalogue | None = None,
    max_entries: int = MAX_ENTRIES,
    max_entry_bytes: int = MAX_DOCUMENT_BYTES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    wanted: Callable[[int], bool] | None = None,
) -> Iterator[ParsedCheckup | ParseError | None]:
    """Parse every ``DATA/h….xml`` of an MHLW bundle, yielding a ParsedCheckup or a ParseError per file.

    The bundle itself is checked eagerly: not a ZIP, too many entries or too large in total raises
    ParseError at call time. ix08/su08, CLAIMS/ and XSD/ entries are ignored. ``wanted(position)``
    (0-based, counting what is yielded) limits inflating and parsing to those positions; the others
    yield None, so an import's apply step parses only its chunk's documents.
    """
    cat = catalogue or catalogue_module.load()
    bundle = _open_bundle(data, max_entries)
    infos = bundle.infolist()
    if not any(_is_data_entry(info.filename) for info in infos):  # empty, or results not where the format puts them
        raise ParseError(
            "no_data_folder",
            "ZIP の DATA フォルダに結果ファイル（h….xml）がありません / no DATA/h….xml result files in the ZIP",
        )
    declared = sum(info.file_size for info in infos if _is_data_entry(info.filename))
    if declared > max_total_bytes:
        raise ParseError("too_large", "ZIP の展開後サイズが上限を超えています / ZIP too large once inflated")
    return _iter_zip(bundle, infos, cat, max_entry_bytes, max_total_bytes, wanted)


def _open_bundle(data: bytes, max_entries: int | None = None) -> zipfile.ZipFile:
    """The ZIP, or ParseError ``not_zip`` / ``too_many_entries``. zipfile builds an object for every
    central-directory record as it opens a bundle (1.2 M empty entries fit in 100 MB: seconds and half a
    GB), so their signatures are counted first: every record it would build starts with one, and a
    signature that happens to lie inside compressed data only makes the count one too high."""
    max_entries = MAX_ENTRIES if max_entries is None else max_entries
    if data.count(_CENTRAL_DIRECTORY_RECORD) > max_entries:  # never fewer than zipfile's records: no second count
        raise ParseError(
            "too_many_entries", f"ZIP の項目数が上限（{max_entries}）を超えています / too many entries in the ZIP"
        )
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError):
        raise ParseError("not_zip", "ZIP ファイルとして読めません / not a readable ZIP file") from None


def _iter_zip(
    bundle: zipfile.ZipFile,
    infos: list[zipfile.ZipInfo],
    cat: Catalogue,
    max_entry: int,
    max_total: int,
    wanted: Callable[[int], bool] | None,
) -> Iterator[ParsedCheckup | ParseError | None]:
    total = 0
    position = -1
    with bundle:
        for info in infos:
            name = info.filename
            if not _unsafe_name(name) and (info.is_dir() or not _is_data_entry(name)):
                continue
            position += 1
            label = _entry_label(name, position)
            if wanted is not None and not wanted(position):
                yield None
                continue
            if _unsafe_name(name):
                yield ParseError("unsafe_name", "不正なパス名の項目です / entry name escapes the bundle", source=label)
                continue
            if info.flag_bits & 0x1:
                yield ParseError("encrypted", "暗号化された項目は読めません / encrypted entry", source=label)
                continue
            too_large = ParseError(
                "too_large", f"展開後サイズが上限（{max_entry} バイト）を超えています / entry too large", source=label
            )
            if info.file_size > max_entry:
                yield too_large
                continue
            try:
                with bundle.open(info) as handle:
                    content = handle.read(max_entry + 1)  # never inflate more than the cap, whatever the header says
            except (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, EOFError, OSError, ValueError):
                yield ParseError("bad_entry", "ZIP 項目が壊れています / corrupt ZIP entry", source=label)
                continue
            if len(content) > max_entry:
                yield too_large
                continue
            total += len(content)
            if total > max_total:
                yield ParseError("too_large", "ZIP の展開後サイズが上限を超えました / ZIP too large once inflated")
                return
            try:
                yield parse_document(content, source=label, catalogue=cat, max_bytes=max_entry)
            except ParseError as exc:
                yield exc


_INTERPRETATION = re.compile(r"[A-Z<>]{1,3}")
# The format's own names hold digits only: the root folder <institution>_<insurer>_<date>_<n>, DATA, and
# h<digits>.xml. Letters anywhere else may spell a person's name (romanised), and job errors are stored in clear.
_PLAIN_FOLDER = re.compile(r"[0-9][0-9_\-]{0,79}|DATA", re.IGNORECASE)
_PLAIN_FILE = re.compile(r"h[0-9_\-]{1,80}\.xml", re.IGNORECASE)


def _entry_label(name: str, position: int) -> str:
    """How an entry is named in errors and job rows: its path when every part is of the format's own kind
    (digits, DATA, h + digits), its position and file name when only the file name is (``ZIP #3 (h0001.xml)``),
    else its position alone: a name a person typed may hold someone's name."""
    parts = name.replace("\\", "/").split("/")
    if _unsafe_name(name) or not _PLAIN_FILE.fullmatch(parts[-1]):
        return f"ZIP #{position + 1}"
    if all(_PLAIN_FOLDER.fullmatch(part) for part in parts[:-1]):
        return "/".join(parts)
    return f"ZIP #{position + 1} ({parts[-1]})"


# Parts of an MHLW bundle besides the results, read by nobody here: the index and summary files and the
# claims and schema folders.
_BUNDLE_FOLDERS = frozenset({"CLAIMS", "XSD"})
_BUNDLE_FILES = ("ix08", "su08")


def zip_other_files(data: bytes, limit: int = 50) -> list[str]:
    """Files of a ZIP that are neither results nor the bundle's own other parts (a readme, a CSV put in by
    hand): an import says it skipped them, by extension only (``*.pdf``): a name someone typed may hold a
    person's name, romanised too, and job errors are stored in clear. ``limit`` at most, then "…"."""
    try:
        infos = _open_bundle(data).infolist()
    except ParseError:
        return []  # the parse itself refuses the bundle
    others = []
    for info in infos:
        parts = info.filename.replace("\\", "/").split("/")
        if info.is_dir() or _is_data_entry(info.filename) or _unsafe_name(info.filename):
            continue  # unsafe names are reported by the parse itself
        if _BUNDLE_FOLDERS & {p.upper() for p in parts[:-1]} or parts[-1].lower().startswith(_BUNDLE_FILES):
            continue
        if len(others) == limit:
            others.append("…")
            break
        others.append("*" + (re.search(r"\.[A-Za-z0-9]{1,8}$", parts[-1]) or [""])[0])
    return others


def _unsafe_name(name: str) -> bool:
    """Absolute paths, drive letters, ``..`` components or NUL: names a naive extractor would write outside."""
    path = name.replace("\\", "/")
    if not path or "\x00" in path or path.startswith("/") or re.match(r"[A-Za-z]:", path):
        return True
    return ".." in path.split("/")


def _is_data_entry(name: str) -> bool:
    """``DATA/h….xml``, possibly under the bundle's root folder (``<inst>_<insurer>_<date>_1/DATA/…``)."""
    parts = name.replace("\\", "/").split("/")
    return len(parts) >= 2 and parts[-2].upper() == "DATA" and bool(_DATA_ENTRY.fullmatch(parts[-1]))
