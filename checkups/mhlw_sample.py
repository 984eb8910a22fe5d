"""Realistic sample files in the MHLW checkup format (特定健診 XML, HL7 CDA R2) for tests and demos.

``build_document(**fields)`` writes one ClinicalDocument in the structure ``checkups.mhlw_xml`` reads
(namespace urn:hl7-org:v3, the MHLW OIDs, xsi:type PQ/CO/ST values, sections 01010 / 01030);
``build_zip(documents)`` wraps documents in the bundle layout (root folder, ix08/su08 index stubs,
DATA/h….xml, CLAIMS/, XSD/). People are fictional: insurer number 99999999, 記号 テスト, institution
9999999999 — obvious test values, never real-looking ones.

    python -m checkups.mhlw_sample --people 20 --out var/sample_mhlw.zip
"""

from __future__ import annotations

import argparse
import io
import random
import uuid
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from xml.etree import ElementTree as ET

from checkups import items as catalogue_module
from checkups.mhlw_xml import (
    NS,
    OID_BRANCH,
    OID_INSTITUTION,
    OID_INSURER,
    OID_NUMBER,
    OID_SYMBOL,
    XSI_TYPE,
)

XSI = "http://www.w3.org/2001/XMLSchema-instance"
OID_SEX = "1.2.392.200119.6.1104"
OID_PROGRAM = "1.2.392.200119.6.1002"
OID_SECTION = "1.2.392.200119.6.1010"
OID_DOCUMENT_KIND = "1.2.392.200119.6.1001"
SECTION_TITLES = {"01010": "特定健診検査・問診結果", "01030": "安衛法健診結果", "01990": "追加項目"}
TEST_INSURER, TEST_SYMBOL, TEST_INSTITUTION = "99999999", "テスト", "9999999999"

ET.register_namespace("", NS)
ET.register_namespace("xsi", XSI)


@dataclass(frozen=True)
class Observation:
    """One raw ``entry/observation``; lets tests write exactly what a real file might contain."""

    code: str
    value: object  # number for PQ, answer code for CO/CD, text for ST
    xsi_type: str = "PQ"
    unit: str | None = None
    code_system: str | None = "1.2.392.200119.6.1005"  # None: attribute omitted, as in many real files
    value_code_system: str | None = None
    interpretation: str | None = None
    section: str = "01010"


def item_observations(
    items: Mapping[str, object], *, section: str = "01010", code_system: str | None = "1.2.392.200119.6.1005"
) -> list[Observation]:
    """Observations for ``{item key: value}`` in canonical units. A pair ``(first, second)`` for blood
    pressure writes the 1st and 2nd readings; a single value uses the item's first catalogue code."""
    cat = catalogue_module.load()
    out: list[Observation] = []
    for key, value in items.items():
        item = cat.items[key]
        roles = {c.role: c.code for c in item.codes}
        if isinstance(value, tuple):
            pairs = [(roles["reading1"], value[0]), (roles["reading2"], value[1])]
        else:
            pairs = [(item.codes[0].code, value)]
        for code, reading in pairs:
            if item.type == "CO":
                out.append(Observation(code, reading, "CO", None, code_system, item.code_system, section=section))
            else:
                out.append(Observation(code, reading, "PQ", item.unit, code_system, section=section))
    return out


def questionnaire_observations(answers: Mapping[str, str], *, section: str = "01010") -> list[Observation]:
    cat = catalogue_module.load()
    out = []
    for key, answer in answers.items():
        q = cat.questions[key]
        out.append(Observation(q.code, answer, q.type, None, value_code_system=q.code_system or None, section=section))
    return out


def build_document(
    *,
    insurer_number: str = TEST_INSURER,
    symbol: str | None = TEST_SYMBOL,
    number: str = "0001",
    branch: str | None = "00",
    sex: str = "male",
    birth_date: date = date(1970, 4, 1),
    institution: str = TEST_INSTITUTION,
    program: str = "010",
    exam_date: date = date(2025, 6, 2),
    items: Mapping[str, object] | None = None,
    questionnaire: Mapping[str, str] | None = None,
    observations: Sequence[Observation] = (),
    document_id: str | None = None,
) -> bytes:
    """One ClinicalDocument as UTF-8 bytes. ``items``/``questionnaire`` go to section 01010 for 特定健診
    (010) or 01030 for 事業者健診 (030); ``observations`` are written as given (any code, unit, type)."""
    section = "01010" if program == "010" else "01030"
    all_obs = [
        *item_observations(items or {}, section=section),
        *questionnaire_observations(questionnaire or {}, section=section),
        *observations,
    ]
    doc = ET.Element(f"{{{NS}}}ClinicalDocument")
    _el(doc, "typeId", root="2.16.840.1.113883.1.3", extension="POCD_HD000040")
    # Deterministic id: the same person and exam always give the same bytes (re-import demos stay idempotent).
    _el(
        doc,
        "id",
        root=document_id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"sample:{insurer_number}:{number}:{exam_date}")),
    )
    _el(doc, "code", code="10", codeSystem=OID_DOCUMENT_KIND)
    _el(doc, "effectiveTime", value=_ts(exam_date))
    _el(doc, "confidentialityCode", code="N", codeSystem="2.16.840.1.113883.5.25")

    role = _el(_el(doc, "recordTarget"), "patientRole")
    for oid, value in ((OID_INSURER, insurer_number), (OID_SYMBOL, symbol), (OID_NUMBER, number), (OID_BRANCH, branch)):
        if value is not None:
            _el(role, "id", root=oid, extension=value)
    patient = _el(role, "patient")
    _el(patient, "administrativeGenderCode", code={"male": "1", "female": "2"}.get(sex, sex), codeSystem=OID_SEX)
    _el(patient, "birthTime", value=_ts(birth_date))

    author = _el(doc, "author")
    _el(author, "time", value=_ts(exam_date))
    organisation = _el(_el(author, "assignedAuthor"), "representedOrganization")
    _el(organisation, "id", root=OID_INSTITUTION, extension=institution)
    _el(organisation, "name").text = "テスト健診センター"
    custodian = _el(_el(_el(doc, "custodian"), "assignedCustodian"), "representedCustodianOrganization")
    _el(custodian, "id", root=OID_INSTITUTION, extension=institution)

    event = _el(_el(doc, "documentationOf"), "serviceEvent")
    _el(event, "code", code=program, codeSystem=OID_PROGRAM)
    _el(event, "effectiveTime", value=_ts(exam_date))

    body = _el(_el(doc, "component"), "structuredBody")
    for code in sorted({o.section for o in all_obs}):
        sec = _el(_el(body, "component"), "section")
        _el(sec, "code", code=code, codeSystem=OID_SECTION)
        _el(sec, "title").text = SECTION_TITLES.get(code, code)
        for obs in (o for o in all_obs if o.section == code):
            _observation(_el(sec, "entry"), obs)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(doc, encoding="unicode").encode("utf-8")


def _observation(entry: ET.Element, obs: Observation) -> None:
    el = _el(entry, "observation", classCode="OBS", moodCode="EVN")
    code_attrs = {"code": obs.code}
    if obs.code_system:
        code_attrs["codeSystem"] = obs.code_system
    _el(el, "code", **code_attrs)
    value = _el(el, "value")
    value.set(XSI_TYPE, obs.xsi_type)
    if obs.xsi_type == "PQ":
        value.set("value", str(obs.value))
        if obs.unit is not None:
            value.set("unit", obs.unit)
    elif obs.xsi_type in ("CO", "CD"):
        value.set("code", str(obs.value))
        if obs.value_code_system:
            value.set("codeSystem", obs.value_code_system)
    else:
        value.text = str(obs.value)
    if obs.interpretation:
        _el(el, "interpretationCode", code=obs.interpretation, codeSystem="2.16.840.1.113883.5.83")


def _el(parent: ET.Element, tag: str, **attrs: str) -> ET.Element:
    return ET.SubElement(parent, f"{{{NS}}}{tag}", attrs)


def _ts(value: date) -> str:
    return value.strftime("%Y%m%d")


def build_zip(
    documents: Iterable[bytes],
    *,
    institution: str = TEST_INSTITUTION,
    insurer_number: str = TEST_INSURER,
    created: date = date(2025, 7, 1),
    extra: Mapping[str, bytes] | None = None,
) -> bytes:
    """The bundle: ``<inst>_<insurer>_<date>0_1/`` holding ix08/su08 stubs, DATA/h….xml, CLAIMS/, XSD/.
    ``extra`` adds entries by exact name (tests use it for hostile names)."""
    root = f"{institution}_{insurer_number}_{_ts(created)}0_1/"
    docs = list(documents)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        stub = f'<?xml version="1.0" encoding="UTF-8"?>\n<!-- sample stub: {len(docs)} documents -->\n<index/>\n'
        bundle.writestr(root + "ix08_V08.xml", stub)
        bundle.writestr(root + "su08_V08.xml", stub)
        for seq, data in enumerate(docs, start=1):
            bundle.writestr(f"{root}DATA/h{institution}{_ts(created)}01{seq:06d}.xml", data)
        bundle.writestr(root + "CLAIMS/", b"")
        bundle.writestr(root + "XSD/", b"")
        for name, data in (extra or {}).items():
            bundle.writestr(name, data)
    return buffer.getvalue()


# A provider's own reference ranges (illustrative): what it flags H or L in the file (interpretationCode).
PROVIDER_RANGES: dict[str, tuple[Decimal | int | None, Decimal | int | None]] = {
    "hdl": (40, None), "ldl": (None, 139), "hba1c": (None, Decimal("5.9")), "ggt": (None, 50),
}  # fmt: skip


def bmi_of(weight: Decimal, height: Decimal) -> Decimal:
    """BMI from weight (kg) and height (cm), to one decimal, as a checkup reports it."""
    return (weight / (height / 100) ** 2).quantize(Decimal("0.1"))


def _below(value: object, bound: object) -> bool:
    return value is not None and bound is not None and value < bound  # type: ignore[operator]


def sample_person(rng: random.Random, index: int, *, program: str = "010") -> dict[str, object]:
    """Fields for build_document: a fictional person with plausible, sometimes abnormal, results and the
    spellings real files vary in (two BP readings, ``mmHg``, ``mg/dl``, random instead of fasting samples)."""
    sex = "male" if index % 2 == 0 else "female"
    height = Decimal(rng.gauss(171 if sex == "male" else 158, 6)).quantize(Decimal("0.1"))
    bmi = Decimal(rng.gauss(23.5, 3.2)).quantize(Decimal("0.1"))
    weight = (bmi * height * height / 10000).quantize(Decimal("0.1"))
    bmi = bmi_of(weight, height)
    waist = (Decimal("80") + (bmi - Decimal("22")) * Decimal("2.5") + Decimal(rng.randint(-4, 4))).quantize(
        Decimal("0.1")
    )
    sbp = rng.randint(102, 162)
    dbp = max(55, min(sbp - 30, rng.randint(60, 102)))
    fasting = rng.random() < 0.8
    items: dict[str, object] = {"height": height, "weight": weight, "bmi": bmi, "waist": waist}
    items |= {
        "hdl": rng.randint(32, 90),
        "ldl": rng.randint(70, 190),
        "ast": rng.randint(12, 60),
        "alt": rng.randint(8, 70),
        "ggt": rng.randint(12, 140),
        "hba1c": Decimal(rng.gauss(5.6, 0.5)).quantize(Decimal("0.1")),
        "urine_sugar": rng.choice("11112"),
        "urine_protein": rng.choice("111123"),
    }
    if fasting:
        items |= {"triglycerides_fasting": rng.randint(45, 320), "glucose_fasting": rng.randint(80, 140)}
    else:
        items |= {"triglycerides_random": rng.randint(60, 360), "glucose_random": rng.randint(85, 180)}
    observations: list[Observation] = []
    section = "01010" if program == "010" else "01030"
    for key, (low, high) in PROVIDER_RANGES.items():  # flagged H / L as the provider's own ranges say
        value = items.get(key)
        flag = "L" if _below(value, low) else "H" if _below(high, value) else None
        if flag:
            flagged = item_observations({key: items.pop(key)}, section=section)
            observations += [replace(observation, interpretation=flag) for observation in flagged]
    if index % 3 == 0:  # two readings in the older spelling; the parser averages them
        for code, value in (("9A751000000000001", sbp + 2), ("9A752000000000001", sbp - 1)):
            observations.append(Observation(code, value, unit="mmHg", code_system=None, section=section))
        for code, value in (("9A761000000000001", dbp + 1), ("9A762000000000001", dbp)):
            observations.append(Observation(code, value, unit="mmHg", code_system=None, section=section))
    else:
        items |= {"systolic": sbp, "diastolic": dbp}
    medication = "1" if sbp >= 150 and rng.random() < 0.5 else "2"
    questionnaire = {
        "blood_draw_timing": "2" if fasting else rng.choice("34"),
        "medication_bp": medication,
        "medication_glucose": "2",
        "medication_lipid": rng.choice("2222221"),
        "smoking": rng.choice("12333"),
        "physician_judgement": "特記すべき所見なし" if sbp < 140 else "血圧高値、生活習慣の改善と再検査を推奨",
    }
    return {
        "insurer_number": TEST_INSURER,
        "symbol": TEST_SYMBOL,
        "number": f"{index + 1:04d}",
        "branch": "00",
        "sex": sex,
        "birth_date": date(rng.randint(1955, 1985), rng.randint(1, 12), rng.randint(1, 28)),
        "program": program,
        "exam_date": date(2025, rng.randint(4, 9), rng.randint(1, 28)),
        "items": items,
        "questionnaire": questionnaire,
        "observations": observations,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a demo MHLW checkup ZIP with fictional people.")
    parser.add_argument("--people", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("var/sample_mhlw.zip"))
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--program", choices=("010", "030"), default="010")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)  # noqa: S311 - sample data, not security
    documents = [build_document(**sample_person(rng, i, program=args.program)) for i in range(args.people)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(build_zip(documents))
    print(f"wrote {len(documents)} documents to {args.out}")


if __name__ == "__main__":
    main()
