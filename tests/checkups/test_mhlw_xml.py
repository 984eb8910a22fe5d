"""MHLW checkup XML (HL7 CDA R2): round trips through the sample generator, hand-written documents as real
writers produce them, and hostile input (XML bombs, external entities, ZIP path traversal and bombs)."""

from __future__ import annotations

import io
import random
import zipfile
from datetime import date, timedelta
from decimal import Decimal as D

import pytest

from checkups import mhlw_sample, mhlw_xml
from checkups.mhlw_sample import Observation, build_document, build_zip
from checkups.mhlw_xml import ParsedCheckup, ParseError, parse_document, parse_zip, zip_other_files

# A document written by hand, not by our generator: no codeSystem on most codes, mmHg, two BP readings,
# an organizer and a nested group, an unmeasured item, a skipped item, an unknown code, section 01030.
HANDWRITTEN = """<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>
  <id root="1.2.392.200119.6.1100" extension="TEST-1"/>
  <code code="10" codeSystem="1.2.392.200119.6.1001"/>
  <recordTarget>
    <patientRole>
      <id root="1.2.392.200119.6.101" extension="12345678"/>
      <id root="1.2.392.200119.6.204" extension="ＡＢ－０１"/>
      <id root="1.2.392.200119.6.205" extension="4321"/>
      <id root="1.2.392.200119.6.211" extension="01"/>
      <patient>
        <name>テスト　ハナコ</name>
        <administrativeGenderCode code="2" codeSystem="1.2.392.200119.6.1104"/>
        <birthTime value="19720315"/>
      </patient>
    </patientRole>
  </recordTarget>
  <author>
    <time value="20250610"/>
    <assignedAuthor>
      <id root="1.2.392.200119.6.102" extension="9999999999"/>
      <representedOrganization><id root="1.2.392.200119.6.102" extension="9999999998"/></representedOrganization>
    </assignedAuthor>
  </author>
  <documentationOf>
    <serviceEvent>
      <code code="030" codeSystem="1.2.392.200119.6.1002"/>
      <effectiveTime><low value="20250609"/></effectiveTime>
    </serviceEvent>
  </documentationOf>
  <component>
    <structuredBody>
      <component>
        <section>
          <code code="01010" codeSystem="1.2.392.200119.6.1010"/>
          <entry>
            <observation classCode="OBS" moodCode="EVN">
              <code code="9N001000000000001"/>
              <value xsi:type="PQ" value="158.4" unit="cm"/>
            </observation>
          </entry>
          <entry>
            <organizer classCode="CLUSTER" moodCode="EVN">
              <component><observation><code code="9A751000000000001"/>
                <value xsi:type="PQ" value="131" unit="mmHg"/>
                <interpretationCode code="H"/></observation></component>
              <component><observation><code code="9A752000000000001"/>
                <value xsi:type="PQ" value="134" unit="mm[Hg]"/>
                <interpretationCode code="H"/></observation></component>
              <component><observation><code code="9A761000000000001"/>
                <value xsi:type="PQ" value="84" unit="mmHg"/></observation></component>
              <component><observation><code code="9A762000000000001"/>
                <value xsi:type="PQ" value="87" unit="mmHg"/></observation></component>
            </organizer>
          </entry>
          <entry>
            <observation>
              <code nullFlavor="NA"/>
              <entryRelationship typeCode="COMP">
                <observation><code code="3F077000002327101" codeSystem="1.2.392.200119.6.1005"/>
                  <value xsi:type="PQ" value="141" unit="mg/dl"/><interpretationCode code="H"/></observation>
              </entryRelationship>
            </observation>
          </entry>
          <entry><observation><code code="3B035000002399901"/>
            <value xsi:type="PQ" value="22" unit="IU/l"/></observation></entry>
          <entry><observation negationInd="true"><code code="3B045000002327201"/></observation></entry>
          <entry><observation><code code="3B090000002327101"/>
            <value xsi:type="PQ" nullFlavor="NI"/></observation></entry>
          <entry><observation><code code="1A020000000191111"/>
            <value xsi:type="CO" code="2" codeSystem="1.2.392.200119.6.2102"/></observation></entry>
          <entry><observation><code code="9N736000000000011"/>
            <value xsi:type="CO" code="3" codeSystem="1.2.392.200119.6.24060"/></observation></entry>
          <entry><observation><code code="9N511000000000049"/>
            <value xsi:type="ST">経過観察</value></observation></entry>
          <entry><observation><code code="9Z999000000000001"/>
            <value xsi:type="PQ" value="1" unit="cm"/></observation></entry>
          <entry><observation><code code="ABC" codeSystem="1.2.3.4"/>
            <value xsi:type="ST">x</value></observation></entry>
        </section>
      </component>
      <component>
        <section>
          <code code="01030" codeSystem="1.2.392.200119.6.1010"/>
          <entry><observation><code code="3D046000001906202"/>
            <value xsi:type="PQ" value="5.8" unit="%"/></observation></entry>
        </section>
      </component>
    </structuredBody>
  </component>
</ClinicalDocument>
"""


def _doc(*observations: Observation, **fields) -> ParsedCheckup:
    return parse_document(build_document(observations=observations, **fields))


def _errors(parsed: ParsedCheckup) -> dict[str, str]:
    return {error.item: error.reason for error in parsed.errors}


# ------------------------------------------------------------------------------------------ hand-written


def test_handwritten_document_header():
    parsed = parse_document(HANDWRITTEN.encode())
    assert (parsed.insurer_number, parsed.symbol, parsed.number, parsed.branch) == (
        "12345678",
        "ＡＢ－０１",
        "4321",
        "01",
    )
    assert parsed.sex == "female" and parsed.birth_date == date(1972, 3, 15)
    assert parsed.institution == "9999999998"  # representedOrganization, as the format says
    assert (parsed.program, parsed.program_code, parsed.exam_date) == ("regular", "030", date(2025, 6, 9))
    assert parsed.errors == [] and parsed.matchable


def test_handwritten_document_items():
    parsed = parse_document(HANDWRITTEN.encode())
    assert parsed.items["height"].value == D("158.4")  # codeSystem missing: defaulted to …6.1005
    sbp = parsed.items["systolic"]
    assert sbp.value == D("133")  # mean of 131 and 134 = 132.5, rounded half-up
    assert (sbp.unit_as_given, sbp.unit, sbp.interpretation) == ("mmHg", "mm[Hg]", "H")
    assert sbp.source_codes == ("9A751000000000001", "9A752000000000001")
    assert parsed.items["diastolic"].value == D("86")  # (84 + 87) / 2 = 85.5 → 86
    ldl = parsed.items["ldl"]  # inside a grouping observation
    assert (ldl.value, ldl.unit_as_given, ldl.unit, ldl.interpretation) == (D("141"), "mg/dl", "mg/dL", "H")
    assert (parsed.items["ast"].value, parsed.items["ast"].unit) == (D("22"), "U/L")
    assert "alt" not in parsed.items and "ggt" not in parsed.items  # not performed / no value: skipped, no error
    assert parsed.items["urine_sugar"].value == "2"
    assert parsed.items["hba1c"].value == D("5.8")  # section 01030 is read too
    assert parsed.questionnaire == {"smoking": "3", "physician_judgement": "経過観察"}
    assert parsed.unknown_codes == ["9Z999000000000001", "1.2.3.4:ABC"]


def test_repr_and_errors_never_show_identity_fields():
    parsed = parse_document(HANDWRITTEN.replace('value="19720315"', 'value="1972"').encode())
    assert _errors(parsed) == {"birth_date": "missing"}
    shown = repr(parsed) + " ".join(e.message for e in parsed.errors)
    for secret in ("12345678", "ＡＢ－０１", "4321", "1972", "テスト　ハナコ"):
        assert secret not in shown


def test_parsing_prints_and_logs_nothing(capsys, caplog):
    parse_document(HANDWRITTEN.encode())
    list(parse_zip(build_zip([HANDWRITTEN.encode()], extra={"../DATA/h1.xml": b"<x/>"})))
    assert capsys.readouterr() == ("", "") and caplog.records == []


def test_missing_header_fields_are_errors_not_crashes():
    text = HANDWRITTEN.replace('<id root="1.2.392.200119.6.101" extension="12345678"/>', "")
    text = text.replace('code="030" codeSystem="1.2.392.200119.6.1002"', 'code="999"')
    parsed = parse_document(text.encode())
    assert _errors(parsed) == {"insurer_number": "missing", "program": "unknown"}
    assert not parsed.matchable and parsed.items["height"].value == D("158.4")


# ------------------------------------------------------------------------------------- generator round trip


def test_round_trip_through_the_generator():
    fields = mhlw_sample.sample_person(random.Random(3), 0)
    parsed = parse_document(build_document(**fields))
    assert parsed.errors == [] and parsed.unknown_codes == []
    assert (parsed.insurer_number, parsed.symbol, parsed.number) == ("99999999", "テスト", "0001")
    assert (parsed.sex, parsed.birth_date, parsed.exam_date, parsed.program) == (
        "male", fields["birth_date"], fields["exam_date"], "specific",
    )  # fmt: skip
    expected = {
        key: D(str(value)) if key not in ("urine_sugar", "urine_protein") else value
        for key, value in fields["items"].items()
    }
    got = {key: result.value for key, result in parsed.items.items() if key in expected}
    assert got == expected
    assert parsed.questionnaire == fields["questionnaire"]
    assert {"systolic", "diastolic"} <= parsed.items.keys()


def test_the_generator_flags_values_outside_the_providers_ranges_as_real_files_do():
    flagged = {}
    for index in range(40):
        parsed = parse_document(build_document(**mhlw_sample.sample_person(random.Random(index), index)))
        for key, result in parsed.items.items():
            if result.interpretation:
                flagged[(index, key)] = (result.interpretation, result.value)
    assert flagged and {flag for flag, _value in flagged.values()} == {"H", "L"}
    for (_index, key), (flag, value) in flagged.items():
        low, high = mhlw_sample.PROVIDER_RANGES[key]
        assert (flag == "L" and value < low) or (flag == "H" and value > high)


def test_generator_is_deterministic():
    a = mhlw_sample.sample_person(random.Random(5), 4)
    b = mhlw_sample.sample_person(random.Random(5), 4)
    assert build_document(**a) == build_document(**b)


def test_sample_command_writes_a_parseable_zip(tmp_path):
    out = tmp_path / "sample.zip"
    mhlw_sample.main(["--people", "20", "--out", str(out), "--program", "030"])
    results = list(parse_zip(out.read_bytes()))
    assert len(results) == 20 and all(isinstance(r, ParsedCheckup) for r in results)
    assert all(r.errors == [] and r.unknown_codes == [] and r.program == "regular" for r in results)
    assert len({r.number for r in results}) == 20


# -------------------------------------------------------------------------------------------- value rules


def test_representative_code_wins_over_readings():
    parsed = _doc(
        Observation("9A751000000000001", 150, unit="mm[Hg]"),
        Observation("9A752000000000001", 146, unit="mm[Hg]"),
        Observation("9A755000000000001", 144, unit="mmHg"),
    )
    assert parsed.items["systolic"].value == D("144") and parsed.items["systolic"].code == "9A755000000000001"


def test_single_reading_is_taken_as_is():
    parsed = _doc(Observation("9A752000000000001", 127, unit="mmHg"))
    assert parsed.items["systolic"].value == D("127") and parsed.items["systolic"].note == ""


def test_waist_prefers_the_measured_code():
    parsed = _doc(
        Observation("9N016160300000001", "80", unit="cm"), Observation("9N016160100000001", "86.5", unit="cm")
    )
    assert parsed.items["waist"].value == D("86.5")


@pytest.mark.parametrize(
    ("observation", "item", "reason"),
    [
        (Observation("9N001000000000001", "1700", unit="cm"), "height", "implausible"),
        (Observation("9A751000000000001", "900", unit="mmHg"), "systolic", "implausible"),
        (Observation("9N006000000000001", "-62", unit="kg"), "weight", "implausible"),
        (Observation("3D010000001926101", "5.5", unit="mmol/L"), "glucose_fasting", "unit_unknown"),
        (Observation("3F070000002327101", "55", unit=None), "hdl", "unit_unknown"),
        (Observation("3F070000002327101", "abc", unit="mg/dL"), "hdl", "bad_value"),
        (Observation("3F070000002327101", "NaN", unit="mg/dL"), "hdl", "bad_value"),
        (Observation("3F070000002327101", "55", xsi_type="ST"), "hdl", "wrong_type"),
        (Observation("1A010000000191111", "9", xsi_type="CO"), "urine_protein", "bad_answer"),
        (Observation("9N736000000000011", "7", xsi_type="CO"), "smoking", "bad_answer"),
    ],
)
def test_bad_values_are_per_item_errors(observation, item, reason):
    parsed = _doc(observation, Observation("9N006000000000001", "60.2", unit="kg"))
    assert _errors(parsed) == {item: reason}
    assert item not in parsed.items and item not in parsed.questionnaire  # nothing doubtful is imported
    message = parsed.errors[0].message
    assert " / " in message  # Japanese / English
    assert parsed.items.get("weight") is None or parsed.items["weight"].value == D("60.2")


def test_height_1700_leaves_the_rest_of_the_file_usable():
    parsed = _doc(
        Observation("9N001000000000001", "1700", unit="cm"), Observation("9N006000000000001", "60", unit="kg")
    )
    assert "height" not in parsed.items and parsed.items["weight"].value == D("60")
    assert "身長" in parsed.errors[0].message and "Height" in parsed.errors[0].message


def test_one_bad_reading_drops_the_whole_item():
    parsed = _doc(
        Observation("9A751000000000001", "900", unit="mmHg"), Observation("9A752000000000001", "130", unit="mmHg")
    )
    assert "systolic" not in parsed.items and _errors(parsed) == {"systolic": "implausible"}


def test_conflicting_duplicates_are_refused_and_identical_ones_merged():
    conflicting = _doc(
        Observation("9N001000000000001", "170", unit="cm"), Observation("9N001000000000001", "171", unit="cm")
    )
    assert _errors(conflicting) == {"height": "conflict"} and "height" not in conflicting.items
    same = _doc(
        Observation("9N001000000000001", "170", unit="cm"), Observation("9N001000000000001", "170.0", unit="cm")
    )
    assert same.errors == [] and same.items["height"].value == D("170")


def test_the_mean_of_two_readings_is_stored_under_both_codes_not_the_first():
    parsed = _doc(
        Observation("9A751000000000001", 131, unit="mmHg"), Observation("9A752000000000001", 134, unit="mmHg")
    )
    assert parsed.items["systolic"].value == D("133")  # 132.5 rounded half-up
    assert parsed.items["systolic"].code == "9A751000000000001+9A752000000000001"


def test_one_item_by_two_methods_with_different_values_is_refused():
    conflicting = _doc(
        Observation("3F077000002327101", "141", unit="mg/dL"), Observation("3F077000002399901", "95", unit="mg/dL")
    )
    assert _errors(conflicting) == {"ldl": "conflict"} and "ldl" not in conflicting.items
    agreeing = _doc(
        Observation("3F077000002327101", "141", unit="mg/dL"), Observation("3F077000002399901", "141", unit="mg/dL")
    )
    assert agreeing.errors == [] and agreeing.items["ldl"].value == D("141")


@pytest.mark.parametrize(
    ("observation", "key"),
    [  # "2" is "quit within a month" for smoking and ± for urine, but "no" in the yes/no list
        (Observation("9N736000000000011", "2", xsi_type="CO", value_code_system="1.2.392.200119.6.2003"), "smoking"),
        (Observation("1A010000000191111", "3", xsi_type="CO", value_code_system="1.2.3.4.5"), "urine_protein"),
    ],
)
def test_an_answer_from_another_code_list_is_refused(observation, key):
    parsed = _doc(observation)
    assert _errors(parsed) == {key: "bad_answer"}
    assert key not in parsed.items and key not in parsed.questionnaire


def test_an_exam_in_the_future_or_before_birth_is_refused():
    future = _doc(Observation("9N001000000000001", "170", unit="cm"), exam_date=date.today() + timedelta(days=30))
    assert _errors(future) == {"exam_date": "future"}
    before_birth = _doc(
        Observation("9N001000000000001", "170", unit="cm"), birth_date=date(2000, 1, 1), exam_date=date(1999, 6, 1)
    )
    assert _errors(before_birth) == {"exam_date": "before_birth"}
    ok = _doc(Observation("9N001000000000001", "170", unit="cm"), exam_date=date.today())
    assert ok.errors == []


def test_the_import_explains_every_parser_reason_and_names_the_column():
    from checkups import imports

    reasons = {"wrong_type", "too_long", "future", "before_birth", "bad_answer", "conflict", "implausible"}
    generic = imports.error_message("no-such-code")
    assert all(imports.error_message(reason) != generic for reason in reasons)
    assert imports.column_label("smoking") == "喫煙" and imports.column_label("blood_draw_timing") == "採血時間（食後）"
    assert imports.column_label("sex") == "性別" and imports.column_label("birth_date") == "生年月日"


def test_only_interpretation_codes_are_kept_as_the_providers_flag():
    parsed = _doc(Observation("9A751000000000001", 150, unit="mmHg", interpretation="H"),
                  Observation("3F077000002327101", 150, unit="mg/dL", interpretation="<b>XX</b>"))  # fmt: skip
    assert parsed.items["systolic"].interpretation == "H" and parsed.items["ldl"].interpretation is None


def test_old_jds_hba1c_is_converted_to_ngsp():
    parsed = _doc(Observation("3D045000001906202", "5.2", unit="%"))
    result = parsed.items["hba1c"]
    assert result.value == D("5.6") and result.code == "3D045000001906202" and "JDS" in result.note
    assert parsed.unknown_codes == []


@pytest.mark.parametrize("code", ["3D045XYZ", "3D045000001906299", "3D04500000190620"])
def test_only_true_jds_twins_of_our_hba1c_codes_are_taken_as_jds(code):
    parsed = _doc(Observation(code, "5.2", unit="%"), Observation("9N001000000000001", "170", unit="cm"))
    assert "hba1c" not in parsed.items and parsed.unknown_codes == [code]


def test_ngsp_wins_over_jds():
    parsed = _doc(Observation("3D045000001906202", "5.2", unit="%"), Observation("3D046000001906202", "5.7", unit="%"))
    assert parsed.items["hba1c"].value == D("5.7") and "ignored" in parsed.items["hba1c"].note


def test_unknown_code_is_reported_not_fatal():
    parsed = _doc(Observation("9N999000000000001", "1", unit="cm"), Observation("9N001000000000001", "170", unit="cm"))
    assert parsed.unknown_codes == ["9N999000000000001"] and parsed.errors == [] and "height" in parsed.items


def test_foreign_code_system_is_not_taken_for_ours():
    parsed = _doc(Observation("9N001000000000001", "170", unit="cm", code_system="1.2.392.200119.4.504"))
    assert "height" not in parsed.items and parsed.unknown_codes == ["1.2.392.200119.4.504:9N001000000000001"]


def test_prefixed_xsi_type_is_understood():
    text = HANDWRITTEN.replace('xsi:type="PQ" value="158.4"', 'xsi:type="hl7:PQ" value="158.4"')
    assert parse_document(text.encode()).items["height"].value == D("158.4")


# ----------------------------------------------------------------------------------------- hostile XML

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<ClinicalDocument xmlns="urn:hl7-org:v3"><title>&lol9;</title></ClinicalDocument>
"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE ClinicalDocument [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<ClinicalDocument xmlns="urn:hl7-org:v3"><title>&xxe;</title></ClinicalDocument>
"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE ClinicalDocument SYSTEM "http://example.invalid/evil.dtd">
<ClinicalDocument xmlns="urn:hl7-org:v3"/>
"""


@pytest.mark.parametrize("data", [BILLION_LAUGHS, EXTERNAL_ENTITY, EXTERNAL_DTD], ids=["bomb", "xxe", "dtd"])
def test_dtds_and_entities_are_refused(data):
    with pytest.raises(ParseError) as caught:
        parse_document(data)
    assert caught.value.code == "dtd_forbidden"
    assert "root:" not in str(caught.value) and "DTD" in caught.value.message


def test_wrong_namespace_is_refused_in_both_languages():
    text = HANDWRITTEN.replace('xmlns="urn:hl7-org:v3"', 'xmlns="urn:hl7-org:v2"')
    with pytest.raises(ParseError) as caught:
        parse_document(text.encode())
    assert caught.value.code == "wrong_root"
    assert "ルート要素" in caught.value.message and "namespace urn:hl7-org:v3" in caught.value.message


def test_wrong_root_is_refused():
    with pytest.raises(ParseError, match="ClinicalDocument") as caught:
        parse_document(b'<Claims xmlns="urn:hl7-org:v3"/>')
    assert caught.value.code == "wrong_root"


@pytest.mark.parametrize("data", [HANDWRITTEN.encode()[:1500], b"", b"\xff\xfe garbage", b"not xml at all"])
def test_truncated_or_garbage_xml_is_refused(data):
    with pytest.raises(ParseError) as caught:
        parse_document(data)
    assert caught.value.code == "malformed"


def test_unsupported_encoding_is_a_parse_error():
    data = HANDWRITTEN.replace('encoding="UTF-8"', 'encoding="Shift_JIS"').encode("cp932")
    with pytest.raises(ParseError):
        parse_document(data)


def test_oversized_document_is_refused_before_parsing():
    with pytest.raises(ParseError) as caught:
        parse_document(HANDWRITTEN.encode(), max_bytes=100)
    assert caught.value.code == "too_large"


# ---------------------------------------------------------------------------------------------------- ZIP


def _people(n: int) -> list[bytes]:
    rng = random.Random(1)
    return [build_document(**mhlw_sample.sample_person(rng, i)) for i in range(n)]


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, data in entries.items():
            bundle.writestr(name, data)
    return buffer.getvalue()


def test_zip_round_trip_ignores_index_claims_and_schemas():
    data = build_zip(_people(3), extra={"ROOT/CLAIMS/c0001.xml": b"<claims/>", "ROOT/XSD/hc08_V08.xsd": b"<x/>"})
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert any(n.endswith("ix08_V08.xml") for n in names) and any(n.endswith("su08_V08.xml") for n in names)
    results = list(parse_zip(data))
    assert [r.number for r in results] == ["0001", "0002", "0003"]
    assert all(isinstance(r, ParsedCheckup) and r.source.endswith(".xml") and "/DATA/h" in r.source for r in results)


def test_an_entry_whose_name_a_person_typed_is_named_by_its_position():
    people = _people(2)
    data = _zip({"ROOT/DATA/h0001.xml": people[0], "山田太郎_19700401/DATA/h山田太郎.xml": people[1]})
    sources = [r.source for r in parse_zip(data)]
    assert sources == ["ZIP #1 (h0001.xml)", "ZIP #2"]  # "ROOT" is no part of the format: it may be a name


def test_an_entry_of_the_formats_own_names_is_named_by_its_path():
    data = _zip({"1234567890_99999999_202504010_1/DATA/h12345678902025040101000001.xml": _people(1)[0]})
    assert [r.source for r in parse_zip(data)] == [
        "1234567890_99999999_202504010_1/DATA/h12345678902025040101000001.xml"
    ]


@pytest.mark.parametrize("name", ["h0001.xml", "DATA/sub/h0001.xml", "inner.zip"])
def test_results_outside_the_data_folder_are_named_as_the_problem(name):
    with pytest.raises(ParseError) as caught:
        parse_zip(_zip({name: _people(1)[0]}))
    assert caught.value.code == "no_data_folder" and "DATA" in caught.value.message


def test_one_bad_file_does_not_abort_the_bundle():
    good = _people(2)
    data = _zip(
        {
            "DATA/h001.xml": good[0],
            "DATA/h002.xml": BILLION_LAUGHS,
            "DATA/h003.xml": b"<trunc",
            "DATA/h004.xml": good[1],
        }
    )
    results = list(parse_zip(data))
    assert [type(r).__name__ for r in results] == ["ParsedCheckup", "ParseError", "ParseError", "ParsedCheckup"]
    assert [r.code for r in results if isinstance(r, ParseError)] == ["dtd_forbidden", "malformed"]
    assert results[1].source == "DATA/h002.xml"


@pytest.mark.parametrize(
    "name", ["../DATA/h001.xml", "/DATA/h001.xml", "x/../../DATA/h001.xml", "C:/DATA/h001.xml", "..\\DATA\\h001.xml"]
)
def test_path_traversal_entries_are_refused(name):
    good = _people(1)[0]
    results = list(parse_zip(_zip({name: good, "DATA/h002.xml": good})))
    assert isinstance(results[0], ParseError) and results[0].code == "unsafe_name"
    assert isinstance(results[1], ParsedCheckup)


def test_oversized_entry_is_refused_but_the_rest_is_read():
    bomb = b'<?xml version="1.0"?><!--' + b"0" * (6 * 2**20) + b"-->"  # deflates to a few KB
    data = _zip({"DATA/h001.xml": bomb, "DATA/h002.xml": _people(1)[0]})
    assert len(data) < 100_000
    results = list(parse_zip(data))
    assert isinstance(results[0], ParseError) and results[0].code == "too_large"
    assert isinstance(results[1], ParsedCheckup)


def test_entry_lying_about_its_size_is_not_inflated_beyond_the_cap():
    buffer = io.BytesIO(_zip({"DATA/h001.xml": b"<a>" + b"0" * 50_000 + b"</a>"}))
    raw = bytearray(buffer.getvalue())
    # Patch the central directory's uncompressed size to 10 bytes: reading must stop there (and fail the CRC).
    cd = raw.rfind(b"PK\x01\x02")
    raw[cd + 24 : cd + 28] = (10).to_bytes(4, "little")
    results = list(parse_zip(bytes(raw), max_entry_bytes=1000))
    assert len(results) == 1 and isinstance(results[0], ParseError)


def test_total_size_cap_stops_the_bundle():
    with pytest.raises(ParseError) as caught:
        parse_zip(build_zip(_people(3)), max_total_bytes=1000)
    assert caught.value.code == "too_large"


def test_too_many_entries_are_refused_before_zipfile_reads_them_all(monkeypatch):
    """1.2 M empty entries fit in a 100 MB upload: opening such a bundle took seconds and half a GB of
    memory before its entries were counted."""
    made = 0
    original = zipfile.ZipInfo.__init__

    def counting(self, *args, **kwargs):
        nonlocal made
        made += 1
        original(self, *args, **kwargs)

    data = _zip({f"e{i}": b"" for i in range(2000)})
    monkeypatch.setattr(zipfile.ZipInfo, "__init__", counting)
    with pytest.raises(ParseError) as caught:
        parse_zip(data, max_entries=10)
    assert caught.value.code == "too_many_entries" and made == 0
    monkeypatch.setattr(mhlw_xml, "MAX_ENTRIES", 10)
    assert zip_other_files(data) == [] and made == 0  # what the dry run asks first
    assert len(list(parse_zip(build_zip(_people(3)), max_entries=7))) == 3  # 7 entries: ix08, su08, 3, 2 folders


def test_too_many_entries_or_not_a_zip_fail_at_once():
    with pytest.raises(ParseError) as caught:
        parse_zip(build_zip(_people(3)), max_entries=4)
    assert caught.value.code == "too_many_entries"
    with pytest.raises(ParseError) as caught:
        parse_zip(b"PK not really a zip")
    assert caught.value.code == "not_zip"
