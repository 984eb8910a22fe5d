"""Checkup import: MHLW XML (file and ZIP) matched by insurance card, provider CSV by employee number,
re-import semantics, errors that import nothing wrong, judging, audit, and the pages."""

from __future__ import annotations

import datetime as dt
import io
import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import Member
from accounts.services import member_create
from audit.models import AuditEvent
from checkups import imports, items
from checkups.mhlw_sample import Observation, build_document, build_zip
from checkups.models import CheckupRecord, Judgement, PhysicianOpinion, result_json
from checkups.services import checkup_record_save
from healthapp import jobs
from healthapp.crypto.files import MAGIC
from healthapp.models import Job
from tenants.context import tenant_context
from tests.accounts.conftest import make_hr_admin
from tests.checkups.test_checkup_pages import shows
from tests.conftest import TEST_PASSWORD, log_in

pytestmark = pytest.mark.usefixtures("private_storage")  # every test here uploads


ITEMS = {
    "height": Decimal("170.0"), "weight": Decimal("70.0"), "bmi": Decimal("24.2"), "waist": Decimal("88.0"),
    "systolic": 128, "diastolic": 82, "hdl": 55, "ldl": 130, "triglycerides_fasting": 140,
    "glucose_fasting": 98, "hba1c": Decimal("5.5"), "ast": 25, "alt": 28, "ggt": 40,
}  # fmt: skip
QUESTIONS = {"blood_draw_timing": "2", "medication_bp": "2", "medication_glucose": "2", "medication_lipid": "2",
             "smoking": "3"}  # fmt: skip


def card_member(number: str, *, relationship: str = "self", sex: str = "male", employee_number: str = "") -> Member:
    """A roster entry with insurance card data typed half-width (the XML has 記号 テスト full-width)."""
    return member_create(
        employee_number=employee_number or f"K{number}", name=f"健診 {number}", insurance_symbol="ﾃｽﾄ",
        insurance_number=number, relationship=relationship, sex=sex, birth_date=dt.date(1970, 4, 15),
    )  # fmt: skip


def doc(number: str = "0001", **fields) -> bytes:
    return build_document(
        number=number, birth_date=dt.date(1970, 4, 1), items=fields.pop("items", ITEMS),
        questionnaire=fields.pop("questionnaire", QUESTIONS), **fields,
    )  # fmt: skip


def run(data: bytes, *, source: str = imports.SOURCE_XML, mapping_id: int | None = None) -> Job:
    job = imports.checkup_import_start(
        upload=io.BytesIO(data), file_name="f", source=source, mapping_id=mapping_id, acting_user=None, enqueue=False
    )
    return imports.checkup_import_run(job_id=job.pk)


def codes(job: Job) -> set[str]:
    return {e["code"] for e in job.errors}


# ------------------------------------------------------------------------------------------ MHLW XML


def test_a_zip_bundle_is_matched_by_insurance_card_imported_and_judged(world):
    with tenant_context(world.tenant_a):
        me, family = card_member("0001"), card_member("0002", relationship="family", sex="female")
        bundle = build_zip([doc("0001"), doc("0002", sex="female"), doc("0999")])
        job = run(bundle)
        assert job.state == Job.State.DONE
        assert job.counts["added"] == 2 and job.counts["errors"] == 1 and "member_not_found" in codes(job)
        assert {e["row"] for e in job.errors if e["code"] == "member_not_found"} == {3}
        record = CheckupRecord.objects.get(member=me)
        assert record.program == "specific" and record.source == "mhlw_xml" and record.source_sha256 == job.file_sha256
        assert record.result_values()["systolic"] == Decimal("128")
        # what the document said of a value besides the value is kept with it
        systolic = next(r for r in record.results_in_order if r.item == "systolic")
        assert systolic.unit == systolic.unit_as_given == "mm[Hg]" and len(systolic.code) == 17
        assert record.questionnaire["hours_since_meal"] == "10" and record.questionnaire["smoker"] is False
        assert CheckupRecord.objects.filter(member=family).exists()  # 家族 found after 本人 missed
        assert Judgement.objects.filter(record__member__in=[me, family]).count() == 2
        assert job.counts["applied"]["judged"] == 2


def test_a_zip_in_several_chunks_parses_each_document_once_the_apply_writes_what_the_dry_run_kept(
    world, monkeypatch, private_storage, django_capture_on_commit_callbacks
):
    from checkups import mhlw_xml

    monkeypatch.setattr(imports, "CHUNK_SIZE", 2)
    parsed: list[str] = []
    real_parse = mhlw_xml.parse_document
    monkeypatch.setattr(
        mhlw_xml, "parse_document", lambda data, **kw: parsed.append(kw["source"]) or real_parse(data, **kw)
    )
    with tenant_context(world.tenant_a):
        people = [card_member(f"000{i}") for i in range(1, 5)]
        with django_capture_on_commit_callbacks(execute=True):
            job = run(build_zip([doc("0001"), doc("0002"), doc("0999"), doc("0003"), doc("0004")]))
        assert job.state == Job.State.DONE and job.next_chunk == 3 and job.counts["applied"]["added"] == 4
        assert CheckupRecord.objects.filter(member__in=people).count() == 4
    # five documents checked by the dry run; the apply writes the four it kept (sealed beside the upload, and
    # deleted with it) without parsing any again
    assert sorted(parsed) == sorted(set(parsed)) and len(parsed) == 5
    assert not [f for f in private_storage.rglob("*") if f.is_file()]


@pytest.mark.parametrize("kept", [True, False], ids=["entries kept by the dry run", "entries read from the upload"])
def test_the_apply_matches_the_entries_again_whoever_left_the_roster_since_the_preview(world, private_storage, kept):
    with tenant_context(world.tenant_a):
        me, leaver = card_member("0001"), card_member("0002")
        bundle = io.BytesIO(build_zip([doc("0001"), doc("0002")]))
        job = imports.checkup_import_start(
            upload=bundle, file_name="f", source=imports.SOURCE_XML, mapping_id=None, acting_user=None, enqueue=False
        )
        job = imports.checkup_import_validate(job_id=job.pk)
        assert job.counts["added"] == 2
        side = (private_storage / jobs.side_name(job)).read_bytes()
        assert side.startswith(MAGIC) and "テスト".encode() not in side and b"1970-04-01" not in side
        if not kept:  # a job checked before the dry run kept its entries: the apply parses the upload again
            job.plan.pop("kept")
            job.save(update_fields=["plan"])
        leaver.delete()  # taken off the roster after the preview
        imports.checkup_import_confirm(job=job, acting_user=None, enqueue=False, acknowledged=True)
        imports.checkup_import_apply(tenant=world.tenant_a, job_id=job.pk)
        job.refresh_from_db()
        assert (job.counts["applied"]["added"], job.counts["applied"]["errors"]) == (1, 1)
        record = CheckupRecord.objects.get(member=me)
        assert record.questionnaire["hours_since_meal"] == "10" and record.judgements.count() == 1
        assert next(r for r in record.results_in_order if r.item == "systolic").unit_as_given == "mm[Hg]"


def test_reimporting_the_same_file_changes_nothing_and_a_corrected_file_updates_keeping_history(world):
    with tenant_context(world.tenant_a):
        me = card_member("0001")
        first = run(doc("0001"))
        assert first.counts["applied"]["added"] == 1
        record = CheckupRecord.objects.get(member=me)
        results = record.results

        again = run(doc("0001"))
        assert again.counts["unchanged"] == 1 and again.counts["applied"]["judged"] == 0
        record.refresh_from_db()
        assert record.results == results
        assert record.judgements.count() == 1

        assert not record.corrections.exists()  # nothing changed, nothing to keep
        assert first.counts["rechecks"] == again.counts["rechecks"] == 0
        PhysicianOpinion.objects.create(record=record, fitness="normal", signed_by=world.admin_a)

        corrected = run(doc("0001", items={**ITEMS, "systolic": 165}))
        assert corrected.counts["updated"] == 1 and corrected.counts["applied"]["updated"] == 1
        assert corrected.counts["rechecks"] == 1  # the preview says the signed opinion goes back for a re-check
        record.refresh_from_db()
        assert record.result_values()["systolic"] == Decimal("165")
        assert record.judgements.count() == 2  # the old judgement stays as history
        newest = record.judgements.order_by("-judged_at", "-pk").first()
        assert newest.grades["systolic"] != record.judgements.order_by("judged_at", "pk").first().grades["systolic"]
        # the values the first file gave stay too, linked to the file and the job that replaced them
        kept = record.corrections.get()
        old = {r["item"]: r["value"] for r in kept.results}
        assert Decimal(old["systolic"]) == 128 and Decimal(old["diastolic"]) == 82 and len(old) == len(ITEMS)
        assert kept.source_sha256 == first.file_sha256 and kept.job_id == corrected.pk
        event = AuditEvent.objects.get(action="checkup.corrected", target_type="job")
        assert event.target_id == str(corrected.pk) and event.tenant_id == world.tenant_a.pk
        assert event.details == {"records": [record.pk], "corrections": [kept.pk]}  # ids only


def test_an_implausible_value_imports_nothing_of_that_person(world):
    with tenant_context(world.tenant_a):
        card_member("0001")
        bad = doc("0001", observations=[Observation("9N001000000000001", "1700", unit="cm")], items={
            k: v for k, v in ITEMS.items() if k != "height"
        })  # fmt: skip
        job = run(bad)
        assert job.state == Job.State.VALIDATED and job.counts["errors"] == 1 and not imports.can_apply(job)
        assert "implausible" in codes(job) and {e["column"] for e in job.errors} >= {"height"}
        assert not CheckupRecord.objects.exists()
        height = next(e for e in job.errors if e["column"] == "height")
        assert imports.row_error_message(height) == "値が妥当な範囲（80–250 cm）外です。"  # what it accepts


def test_unknown_codes_are_warnings_and_the_rest_is_imported(world):
    with tenant_context(world.tenant_a):
        card_member("0001")
        job = run(doc("0001", observations=[Observation("9Z999000000000001", "1", unit="cm")]))
        assert job.counts["added"] == 1 and job.counts["warnings"] == 1 and codes(job) == {"unknown_code"}
        assert CheckupRecord.objects.count() == 1


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>', "dtd_forbidden"),
        (b'<ClinicalDocument xmlns="urn:example:other"/>', "wrong_root"),
        (b"<not xml at all", "malformed"),
        (b"not xml at all", "not_xml_or_zip"),
        (bytes(range(256)) * 8, "not_xml_or_zip"),  # random bytes named .zip
        ("\ufeff社員番号,受診日,身長\r\nE1,2025-06-02,170\r\n".encode(), "looks_like_csv"),  # the format left at XML
        ("社員番号\t受診日\r\n".encode("cp932"), "looks_like_csv"),
        (b"PK\x03\x04broken", "not_zip"),
    ],
)
def test_hostile_or_wrong_files_fail_with_a_clear_reason_and_import_nothing(world, data, code):
    with tenant_context(world.tenant_a):
        card_member("0001")
        job = run(data)
        assert job.state == Job.State.FAILED and job.error_code == code
        assert imports.error_message(code) != imports.error_message("no_such_code")
        assert not CheckupRecord.objects.exists()


def test_two_roster_entries_with_the_same_card_are_refused_as_ambiguous(world):
    with tenant_context(world.tenant_a):
        card_member("0001", employee_number="X1")
        card_member("0001", employee_number="X2")
        job = run(doc("0001"))
        assert "member_ambiguous" in codes(job) and not CheckupRecord.objects.exists()


def test_twins_on_one_card_are_told_apart_by_the_branch_and_never_given_each_others_results(world):
    """Twins of one sex on one card share 記号/番号/続柄/性別/生年月: only the 枝番 tells them apart. A
    document carrying one twin's branch is that twin's; another branch is nobody's, none is ambiguous."""
    with tenant_context(world.tenant_a):
        first, second = card_member("0001", employee_number="X1"), card_member("0001", employee_number="X2")
        for member, branch in ((first, "01"), (second, "02")):
            member.insurance_branch = branch
            member.save()
        job = run(doc("0001", branch="02"))
        assert job.counts["applied"]["added"] == 1
        assert CheckupRecord.objects.get().member_id == second.pk
        assert "branch_mismatch" in codes(run(doc("0001", branch="03", exam_date=dt.date(2025, 6, 3))))
        assert "枝番が名簿と違います" in imports.error_message("branch_mismatch")  # not "check every field"
        assert "member_ambiguous" in codes(run(doc("0001", branch=None, exam_date=dt.date(2025, 6, 4))))
        assert "bad_branch" in codes(run(doc("0001", branch="1A", exam_date=dt.date(2025, 6, 5))))
        assert CheckupRecord.objects.count() == 1


def test_a_document_with_a_twins_branch_is_not_given_to_the_other_twin_alone_on_file(world):
    with tenant_context(world.tenant_a):
        first = card_member("0001")
        first.insurance_branch = "01"
        first.save()
        job = run(doc("0001", branch="2"))  # "2" is branch 02: the twin who is not on the roster
        assert "branch_mismatch" in codes(job) and not CheckupRecord.objects.exists()
        assert run(doc("0001", branch="01")).counts["applied"]["added"] == 1


def test_another_tenants_roster_is_never_matched(world):
    with tenant_context(world.tenant_b):
        card_member("0001")
    with tenant_context(world.tenant_a):
        job = run(doc("0001"))
        assert codes(job) == {"member_not_found"}
    with tenant_context(world.tenant_b):
        assert not CheckupRecord.objects.filter(source="mhlw_xml").exists()


def test_an_insurer_tenant_refuses_another_insurers_documents_person_by_person(world):
    tenant = world.tenant_b  # an insurer (健保) tenant
    tenant.insurer_number = "06139999"
    tenant.save()
    with tenant_context(tenant):
        mine, other = card_member("0001"), card_member("0002")
        bundle = build_zip([doc("0001", insurer_number="０６１３９９９９"), doc("0002", insurer_number="99999999")])
        job = run(bundle)
        assert job.counts["added"] == 1 and job.counts["errors"] == 1
        assert [(e["row"], e["column"], e["code"]) for e in job.errors] == [(2, "insurer_number", "other_insurer")]
        assert imports.column_label("insurer_number") == "保険者番号"
        assert CheckupRecord.objects.filter(member=mine).exists()
        assert not CheckupRecord.objects.filter(member=other).exists()

        tenant.insurer_number = ""  # not configured: nothing to compare with, as for a company
        tenant.save()
        assert run(doc("0002", insurer_number="99999999")).counts["added"] == 1


# ----------------------------------------------------------------------------------------------- CSV

CSV_MAPPING = {"社員番号": "employee_number", "受診日": "exam_date", "収縮期血圧": "systolic",
               "拡張期血圧": "diastolic", "HbA1c": "hba1c", "尿糖": "urine_sugar", "喫煙": "smoker"}  # fmt: skip


def csv_bytes(rows: list[list[str]], encoding: str = "utf-8-sig") -> bytes:
    lines = ["社員番号,受診日,収縮期血圧,拡張期血圧,HbA1c,尿糖,喫煙", *(",".join(r) for r in rows)]
    return ("\r\n".join(lines) + "\r\n").encode(encoding)


def test_provider_csv_is_matched_by_employee_number_through_the_saved_mapping(world):
    with tenant_context(world.tenant_a):
        for member in world.roster_a:
            member.sex, member.birth_date = "female", dt.date(1985, 5, 5)
            member.save()
        mapping = imports.mapping_save(provider="テスト健診センター", mapping=CSV_MAPPING, acting_user=None)
        data = csv_bytes([
            ["Ａ0", "令和7年6月2日", "１３２", "84", "5.7", "±", "あり"],  # full-width employee number and digits
            ["A1", "2025/06/03", "1300", "84", "5.7", "−", "なし"],  # impossible BP
            ["Z9", "2025-06-03", "120", "80", "5.5", "−", "なし"],  # nobody
            ["A2", "2025-06-03", "120", "80", "5.5", "++++", "なし"],  # unknown answer
        ], encoding="cp932")  # fmt: skip
        job = run(data, source=imports.SOURCE_CSV, mapping_id=mapping.pk)
        assert job.state == Job.State.DONE and job.counts["added"] == 1 and job.counts["errors"] == 3
        assert {(e["row"], e["column"], e["code"]) for e in job.errors} == {
            (3, "systolic", "implausible"),
            (4, "employee_number", "member_not_found"),
            (5, "urine_sugar", "bad_answer"),
        }  # fmt: skip
        record = CheckupRecord.objects.get()
        assert record.member == world.roster_a[0] and record.exam_date == dt.date(2025, 6, 2)
        assert record.program == "regular" and record.questionnaire == {"smoker": True}
        assert record.result_values() == {"systolic": Decimal("132"), "diastolic": Decimal("84"),
                                          "hba1c": Decimal("5.7"), "urine_sugar": Decimal("2")}  # fmt: skip
        assert record.judgements.count() == 1
        assert run(data, source=imports.SOURCE_CSV, mapping_id=mapping.pk).counts["unchanged"] == 1


def test_a_csv_in_several_chunks_is_applied_from_each_chunks_own_bytes(world, monkeypatch):
    monkeypatch.setattr(imports, "CHUNK_SIZE", 2)
    with tenant_context(world.tenant_a):
        for member in world.roster_a:
            member.sex, member.birth_date = "male", dt.date(1980, 1, 1)
            member.save()
        mapping = imports.mapping_save(provider="P", mapping=CSV_MAPPING, acting_user=None)
        data = csv_bytes([
            ["A0", "2025-06-02", "120", "80", "5.5", "−", "なし"],
            ["A1", "2025-06-02", "121", "81", "5.6", "−", "なし"],
            [""],  # a blank line between chunks is skipped, and still counted in the row numbers
            ["A2", "2025-06-02", "999", "82", "5.7", "−", "なし"],  # row 5: implausible
            ["A0", "2025-06-02", "120", "80", "5.5", "−", "なし"],  # row 6: same exam again
            ["A2", "2025-06-03", "123", "83", "5.8", "+", "あり"],
        ])  # fmt: skip
        job = run(data, source=imports.SOURCE_CSV, mapping_id=mapping.pk)
        assert job.state == Job.State.DONE and job.next_chunk == 3
        assert {(e["row"], e["code"]) for e in job.errors} == {(5, "implausible"), (6, "duplicate")}
        assert job.counts["applied"] == {"added": 3, "updated": 0, "unchanged": 0, "errors": 2, "judged": 3}
        stored = {
            (r.member.employee_number, r.exam_date.day): r.result_values()["systolic"]
            for r in CheckupRecord.objects.select_related("member")
        }
        assert stored == {("A0", 2): Decimal("120"), ("A1", 2): Decimal("121"), ("A2", 3): Decimal("123")}
        # Every judgement is audited: one event per written chunk, listing each record with its judgement.
        from audit.models import AuditEvent

        events = AuditEvent.objects.filter(action="checkup.judged", target_type="job", target_id=str(job.pk))
        audited = {(r, j) for e in events for r, j in zip(e.details["records"], e.details["judgements"], strict=True)}
        assert events.count() == 2 and audited == set(Judgement.objects.values_list("record_id", "pk"))


def _judgeable(world) -> None:
    for member in world.roster_a:
        member.sex, member.birth_date = "male", dt.date(1980, 1, 1)
        member.save()


HOURS_HEADER = "社員番号,受診日,収縮期血圧,拡張期血圧,HbA1c,尿糖,喫煙,食後時間"


def _with_hours(world):
    """Judgeable people and a mapping that reads the hours since the last meal too."""
    _judgeable(world)
    mapping = {**CSV_MAPPING, "食後時間": "hours_since_meal"}
    return imports.mapping_save(provider="P", mapping=mapping, acting_user=None)


def test_numbers_are_read_as_written_or_refused_never_guessed(world):
    """98,0 is a decimal comma, not 980; 1e2, NaN and a stray cell shifting the values are refused."""
    with tenant_context(world.tenant_a):
        mapping, header = _with_hours(world), HOURS_HEADER
        rows = [
            'A0,2025-06-02,"1,20",80,5.5,−,なし,12',  # decimal comma
            "A1,2025-06-02,1e2,80,5.5,−,なし,12",
            "A2,2025-06-02,120,80,5.5,−,なし,nan",
            "A3,2025-06-02,,120,80,5.5,−,なし,12",  # a stray empty cell: every value one column late
            'A0,2025-06-03,"1,200",80,5.5,−,なし,12.0',  # thousands grouping: read, then implausible as BP
        ]
        data = ("\r\n".join([header, *rows]) + "\r\n").encode("utf-8")
        job = run(data, source=imports.SOURCE_CSV, mapping_id=mapping.pk)
        assert {(e["row"], e["column"], e["code"]) for e in job.errors} == {
            (2, "systolic", "bad_number"), (3, "systolic", "bad_number"), (4, "hours_since_meal", "bad_number"),
            (5, "", "column_count"), (6, "systolic", "implausible"),
        }  # fmt: skip
        assert not CheckupRecord.objects.exists()
        assert imports.error_message("column_count") != imports.error_message("no-such-code")


def test_hours_since_meal_are_stored_alike_however_written(world):
    with tenant_context(world.tenant_a):
        mapping, header = _with_hours(world), HOURS_HEADER
        first = f"{header}\r\nA0,2025-06-02,120,80,5.5,−,なし,12.0\r\n".encode()
        run(first, source=imports.SOURCE_CSV, mapping_id=mapping.pk)
        assert CheckupRecord.objects.get().questionnaire["hours_since_meal"] == "12"
        again = run(first.replace(b",12.0", b",12"), source=imports.SOURCE_CSV, mapping_id=mapping.pk)
        assert again.counts["unchanged"] == 1


def test_exam_dates_in_the_future_or_before_birth_are_refused(world):
    with tenant_context(world.tenant_a):
        _judgeable(world)  # born 1980-01-01
        mapping = imports.mapping_save(provider="P", mapping=CSV_MAPPING, acting_user=None)
        future = (dt.date.today() + dt.timedelta(days=30)).isoformat()
        data = csv_bytes([["A0", future, "120", "80", "5.5", "−", "なし"],
                          ["A1", "1979-06-02", "120", "80", "5.5", "−", "なし"],
                          ["A2", "2025-06-02", "120", "80", "5.5", "−", "なし"]])  # fmt: skip
        job = run(data, source=imports.SOURCE_CSV, mapping_id=mapping.pk)
        assert {(e["row"], e["code"]) for e in job.errors} == {(2, "future"), (3, "before_birth")}
        assert job.counts["added"] == 1


def test_one_item_from_two_columns_is_refused_in_the_mapping_and_in_the_file(world):
    from healthapp.errors import AppError

    with tenant_context(world.tenant_a):
        with pytest.raises(AppError, match="収縮期血圧"):
            imports.mapping_save(provider="P", mapping={**CSV_MAPPING, "SBP2": "systolic"}, acting_user=None)
        mapping = imports.mapping_save(provider="P", mapping=CSV_MAPPING, acting_user=None)
        header = "社員番号,受診日,収縮期血圧,拡張期血圧,HbA1c,尿糖,喫煙,収縮期血圧"  # the same header twice
        data = f"{header}\r\nA0,2025-06-02,150,80,5.5,−,なし,120\r\n".encode()
        job = run(data, source=imports.SOURCE_CSV, mapping_id=mapping.pk)
        assert job.state == Job.State.FAILED and job.error_code == "duplicate_column"


def test_a_file_with_too_many_errors_is_refused_with_the_errors_found(world, settings):
    settings.CHECKUP_IMPORT_MAX_ERRORS = 2
    with tenant_context(world.tenant_a):
        _judgeable(world)
        mapping = imports.mapping_save(provider="P", mapping=CSV_MAPPING, acting_user=None)
        rows = [[f"Z{i}", "2025-06-02", "120", "80", "5.5", "−", "なし"] for i in range(5)]  # nobody on the roster
        job = run(csv_bytes(rows), source=imports.SOURCE_CSV, mapping_id=mapping.pk)
        assert (job.state, job.error_code) == (Job.State.FAILED, "too_many_errors")
        assert [e["row"] for e in job.errors] == [2, 3, 4]


@pytest.mark.parametrize("chunk_size", [100, 2])  # the two rows in one chunk, or the first already planned
def test_one_exam_twice_with_different_values_imports_neither(world, monkeypatch, chunk_size):
    """Which of 120 and 180 is right is not ours to pick; the same row twice is merely reported."""
    monkeypatch.setattr(imports, "CHUNK_SIZE", chunk_size)
    with tenant_context(world.tenant_a):
        _judgeable(world)
        mapping = imports.mapping_save(provider="P", mapping=CSV_MAPPING, acting_user=None)
        data = csv_bytes([
            ["A0", "2025-06-02", "120", "80", "5.5", "−", "なし"],
            ["A1", "2025-06-02", "121", "81", "5.6", "−", "なし"],
            ["A0", "2025/6/2", "180", "80", "5.5", "−", "なし"],  # the same exam, another value
            ["A1", "2025-06-02", "121", "81", "5.6", "−", "なし"],  # the same exam, the same values
        ])  # fmt: skip
        job = run(data, source=imports.SOURCE_CSV, mapping_id=mapping.pk)
        assert sorted((e["row"], e["code"]) for e in job.errors) == [(2, "duplicate"), (4, "duplicate"),
                                                                    (5, "duplicate")]  # fmt: skip
        assert (job.counts["added"], job.counts["errors"]) == (1, 3)
        assert job.counts["applied"]["added"] == 1
        assert [r.member.employee_number for r in CheckupRecord.objects.select_related("member")] == ["A1"]


def test_a_provider_csv_without_employee_numbers_is_matched_by_insurance_card(world):
    """An insurer's provider: 記号, 番号, sex and birth date instead of an employee number (the roster's
    card blind index, as for the MHLW XML); a card that is nobody's, or half a card, is an error."""
    from healthapp.errors import AppError

    with tenant_context(world.tenant_b):
        person = card_member("0042", employee_number="X-42")  # 記号 ﾃｽﾄ, born 1970-04-15
        with pytest.raises(AppError):  # half a card identifies nobody
            imports.mapping_save(provider="P", mapping={"記号": "insurance_symbol", "受診日": "exam_date"},
                                 acting_user=None)  # fmt: skip
        mapping = imports.mapping_save(provider="保険者の健診機関", acting_user=None, mapping={
            "記号": "insurance_symbol", "番号": "insurance_number", "性別": "sex", "生年月日": "birth_date",
            "受診日": "exam_date", "収縮期血圧": "systolic",
        })  # fmt: skip
        lines = ["記号,番号,性別,生年月日,受診日,収縮期血圧",
                 "テスト,0042,男,S45.4.15,2025-06-02,128",  # full-width 記号 and an era date: the same card
                 "テスト,0043,男,1970-04-15,2025-06-02,128",  # nobody holds this card
                 "テスト,0042,?,1970-04-15,2025-06-03,128"]  # fmt: skip
        job = run(("\r\n".join(lines) + "\r\n").encode("cp932"), source=imports.SOURCE_CSV, mapping_id=mapping.pk)
        assert job.counts["applied"]["added"] == 1
        assert sorted((e["row"], e["code"]) for e in job.errors) == [(3, "member_not_found"), (4, "bad_answer")]
        assert CheckupRecord.objects.filter(member=person, exam_date=dt.date(2025, 6, 2)).count() == 1


def test_a_provider_csv_with_the_branch_column_tells_twins_apart(world):
    with tenant_context(world.tenant_b):
        twins = [card_member("0042", employee_number=f"T-{b}") for b in ("01", "02")]
        for member, branch in zip(twins, ("01", "02"), strict=True):
            member.insurance_branch = branch
            member.save()
        mapping = imports.mapping_save(provider="双子の健診機関", acting_user=None, mapping={
            "記号": "insurance_symbol", "番号": "insurance_number", "枝番": "insurance_branch", "性別": "sex",
            "生年月日": "birth_date", "受診日": "exam_date", "収縮期血圧": "systolic",
        })  # fmt: skip
        lines = ["記号,番号,枝番,性別,生年月日,受診日,収縮期血圧",
                 "ﾃｽﾄ,0042,2,男,1970-04-15,2025-06-02,141",  # Excel dropped the leading zero of 02
                 "ﾃｽﾄ,0042,01,男,1970-04-15,2025-06-02,118",
                 "ﾃｽﾄ,0042,,男,1970-04-15,2025-06-03,120",  # no branch: either twin
                 "ﾃｽﾄ,0042,001,男,1970-04-15,2025-06-04,120"]  # fmt: skip
        job = run(("\r\n".join(lines) + "\r\n").encode("cp932"), source=imports.SOURCE_CSV, mapping_id=mapping.pk)
        assert job.counts["applied"]["added"] == 2
        assert sorted((e["row"], e["code"]) for e in job.errors) == [(4, "member_ambiguous"), (5, "bad_branch")]
        records = CheckupRecord.objects.filter(member__in=twins)
        systolic = {r.member_id: r.result_values()["systolic"] for r in records}
        assert systolic == {twins[0].pk: 118, twins[1].pk: 141}


def test_a_mapping_to_an_unknown_item_or_without_identity_is_refused(world):
    from healthapp.errors import AppError

    with tenant_context(world.tenant_a):
        with pytest.raises(AppError):
            imports.mapping_save(
                provider="P", mapping={"社員番号": "employee_number", "X": "cholesterol"}, acting_user=None
            )
        with pytest.raises(AppError):
            imports.mapping_save(provider="P", mapping={"収縮期血圧": "systolic"}, acting_user=None)


def test_a_file_missing_a_mapped_column_fails_before_anything_is_read(world):
    with tenant_context(world.tenant_a):
        mapping = imports.mapping_save(provider="P", mapping={**CSV_MAPPING, "腹囲": "waist"}, acting_user=None)
        job = run(
            csv_bytes([["A0", "2025-06-02", "120", "80", "5.5", "−", "なし"]]), source="csv", mapping_id=mapping.pk
        )
        assert job.state == Job.State.FAILED and job.error_code == "columns_missing"


def test_the_shipped_sample_csv_reads_cleanly_with_the_sample_mapping(world):
    with tenant_context(world.tenant_a):
        for i in range(20):
            member_create(employee_number=f"E{i + 1:05d}", name=f"見本 {i}", sex="male", birth_date=dt.date(1980, 1, 1))
        mapping = imports.mapping_save(provider="サンプル", mapping=imports.SAMPLE_MAPPING, acting_user=None)
        data = (Path(imports.__file__).parent / "samples" / "sample_checkups.csv").read_bytes()
        job = run(data, source="csv", mapping_id=mapping.pk)
        assert job.errors == [] and job.counts["added"] == 20 and Judgement.objects.count() >= 20


def test_the_import_is_audited_with_counts_and_hash(world):
    from audit.models import AuditEvent

    with tenant_context(world.tenant_a):
        card_member("0001")
        job = run(doc("0001"))
        event = AuditEvent.objects.filter(action="checkup.imported").get()
        assert event.target_id == str(job.pk) or event.target_id == job.pk
        assert event.details["added"] == 1 and event.details["sha256"] == job.file_sha256


# --------------------------------------------------------------------------------------------- pages

ADMIN_PASSWORD = TEST_PASSWORD + "!x"


def test_hr_admin_uploads_a_zip_previews_applies_and_gets_the_error_report(
    client, world, django_capture_on_commit_callbacks
):
    hr = make_hr_admin(world)
    with tenant_context(world.tenant_a):
        card_member("0001")
    log_in(client, hr.email, ADMIN_PASSWORD)
    assert "nav-checkup-import" in client.get("/checkups/import/").content.decode()
    bundle = build_zip([doc("0001"), doc("0404")])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/checkups/import/", {"file": SimpleUploadedFile("bundle.zip", bundle), "source": "mhlw_xml"}
        )
    assert response.status_code == 302
    body = client.get(response.url).content.decode()
    assert 'data-count="added">1<' in body and 'data-count="errors">1<' in body
    assert not shows(body, "0404")  # the unmatched card number is never shown
    with tenant_context(world.tenant_a):
        job = Job.objects.get(kind=Job.Kind.CHECKUP)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/checkups/import/{job.pk}/apply/").status_code == 302
    status = client.get(f"/checkups/import/{job.pk}/status/").json()
    assert status["state"] == "done" and status["counts"]["applied"]["added"] == 1
    report = client.get(f"/checkups/import/{job.pk}/errors.csv").content.decode("utf-8-sig")
    assert "member_not_found" in report and "0404" not in report


def test_csv_upload_needs_a_mapping_and_the_mapping_page_saves_one(client, world):
    hr = make_hr_admin(world)
    log_in(client, hr.email, ADMIN_PASSWORD)
    page = client.post("/checkups/import/", {"file": SimpleUploadedFile("a.csv", b"x"), "source": "csv"})
    assert page.status_code == 200 and "field-error" in page.content.decode()
    text = "\n".join(f"{k},{v}" for k, v in CSV_MAPPING.items())
    assert client.post("/checkups/import/mappings/", {"provider": "健診社", "mapping": text}).status_code == 302
    with tenant_context(world.tenant_a):
        from checkups.models import CheckupCsvMapping

        assert CheckupCsvMapping.objects.get().mapping == CSV_MAPPING


def test_an_existing_mapping_opens_prefilled_and_saves_its_change(client, world):
    from checkups.imports import mapping_save
    from checkups.models import CheckupCsvMapping

    hr = make_hr_admin(world)
    with tenant_context(world.tenant_a):
        saved = mapping_save(provider="健診社", mapping=CSV_MAPPING, acting_user=hr)
    log_in(client, hr.email, ADMIN_PASSWORD)
    page = client.get(f"/checkups/import/mappings/{saved.pk}/").content.decode()
    assert "列の対応を編集" in page and 'value="健診社"' in page
    changed = {**CSV_MAPPING, "HDL": "hdl"}  # the provider added a column
    text = "\n".join(f"{k},{v}" for k, v in changed.items())
    assert (
        client.post(f"/checkups/import/mappings/{saved.pk}/", {"provider": "健診社", "mapping": text}).status_code
        == 302
    )
    with tenant_context(world.tenant_a):
        assert CheckupCsvMapping.objects.get(pk=saved.pk).mapping == changed
    assert client.get("/checkups/import/mappings/999999/").status_code == 404
    renamed = client.post(f"/checkups/import/mappings/{saved.pk}/", {"provider": "健診社（新）", "mapping": text})
    assert renamed.status_code == 302
    with tenant_context(world.tenant_a):  # renamed, not copied under the new name
        assert list(CheckupCsvMapping.objects.values_list("pk", "provider")) == [(saved.pk, "健診社（新）")]


def test_without_roster_manage_every_import_page_is_404(client, world):
    log_in(client, world.member_a.email, TEST_PASSWORD)
    for url in ("/checkups/import/", "/checkups/import/mappings/", "/checkups/import/sample.csv"):
        assert client.get(url).status_code == 404


def test_the_demo_roster_bundle_matches_every_roster_entry_with_card_data(world):
    from checkups.roster_sample import roster_bundle

    with tenant_context(world.tenant_a):
        card_member("0001")
        card_member("0002", relationship="family", sex="female")
        job = run(roster_bundle(people=5))
        assert job.counts["rows"] == 2 and job.counts["added"] == 2 and job.counts["errors"] == 0
        # the next year's bundle: the same people keep their height, their weight moves a little
        before = {r.member_id: r.result_values() for r in CheckupRecord.objects.all()}
        assert run(roster_bundle(people=5, exam_year=2026)).counts["added"] == 2
        for record in CheckupRecord.objects.filter(exam_date__year=2026):
            now, then = record.result_values(), before[record.member_id]
            assert now["height"] == then["height"] and abs(now["weight"] - then["weight"]) <= 2


def test_hr_admin_sees_the_mapping_page_and_the_sample_csv(client, world):
    hr = make_hr_admin(world)
    log_in(client, hr.email, ADMIN_PASSWORD)
    page = client.get("/checkups/import/mappings/")
    assert page.status_code == 200 and "employee_number" in page.content.decode()  # the sample mapping as default
    # Every key a mapping accepts is listed with its name, so nobody guesses "triglycerides_fasting".
    listed = page.content.decode().split('data-testid="checkup-mapping-targets"')[1].split("</details>")[0]
    keys = re.findall(r"<code>([a-z0-9_]+)</code>", listed)
    assert "<code>triglycerides_fasting</code></td><td>中性脂肪（空腹時）" in listed
    assert set(keys) == {*imports.IDENTITY_TARGETS, *imports.CARD_TARGETS, imports.CARD_BRANCH,
                         *imports.QUESTION_TARGETS, *items.load().items}  # fmt: skip
    assert (
        imports.mapping_problems({k: k for k in keys if k != "employee_number"} | {"社員番号": "employee_number"}) == []
    )
    sample = client.get("/checkups/import/sample.csv")
    assert sample.status_code == 200 and "E00001" in sample.content.decode("utf-8-sig")


def test_a_csv_import_before_any_mapping_says_where_to_make_one(client, world, private_storage):
    hr = make_hr_admin(world)
    log_in(client, hr.email, ADMIN_PASSWORD)
    upload = SimpleUploadedFile("k.csv", b"a,b\n1,2\n")
    page = client.post("/checkups/import/", {"file": upload, "source": "csv"}).content.decode()
    assert "CSV の列の対応がまだありません。" in page and "CSV の列の対応（健診機関ごと）" in page
    # The first mapping starts as the sample's, named: saved as it stands, the sample CSV imports with it.
    form = client.get("/checkups/import/mappings/").content.decode()
    assert 'value="サンプル健診機関"' in form


def test_apply_goes_chunk_by_chunk_and_a_crashed_chunk_is_redone_once(world, monkeypatch):
    from django.db import transaction

    monkeypatch.setattr(imports, "CHUNK_SIZE", 1)
    with tenant_context(world.tenant_a):
        for number in ("0001", "0002", "0003"):
            card_member(number)
        job = imports.checkup_import_start(
            upload=io.BytesIO(build_zip([doc("0001"), doc("0002"), doc("0003")])), file_name="f",
            source="mhlw_xml", mapping_id=None, acting_user=None, enqueue=False,
        )  # fmt: skip
        with transaction.atomic():
            imports.checkup_import_validate(job_id=job.pk)
        with transaction.atomic():
            imports.checkup_import_confirm(job=job, acting_user=None, enqueue=False)
        with transaction.atomic():
            assert imports.checkup_import_apply_step(job_id=job.pk)
        real_record = imports.audit.record
        died = lambda **kw: (_ for _ in ()).throw(RuntimeError("worker died"))  # noqa: E731
        monkeypatch.setattr(imports.audit, "record", died)  # after the chunk's rows, before its audit event
        with pytest.raises(RuntimeError), transaction.atomic():
            imports.checkup_import_apply_step(job_id=job.pk)
        assert CheckupRecord.objects.count() == 1  # the crashed chunk left nothing behind
        assert Judgement.objects.count() == 1 and len(CheckupRecord.objects.get(source="mhlw_xml").results) == 14
        monkeypatch.setattr(imports.audit, "record", real_record)
        while True:
            with transaction.atomic():
                if not imports.checkup_import_apply_step(job_id=job.pk):
                    break
        job.refresh_from_db()
        assert job.state == Job.State.DONE and job.next_chunk == 3 and job.counts["applied"]["added"] == 3
        assert CheckupRecord.objects.count() == 3 and Judgement.objects.filter(record__source="mhlw_xml").count() == 3


# ------------------------------------------------------------------------------ PostgreSQL: the worker


def _csv_people(tenant, count: int, *, prefix: str = "W"):
    """``count`` roster entries with sex and birth date, a saved mapping, and a CSV of one checkup each."""
    with tenant_context(tenant):
        for i in range(count):
            member_create(
                employee_number=f"{prefix}{i:03d}", name=f"健診 {i}", sex="male", birth_date=dt.date(1970, 1, 1)
            )
        mapping = imports.mapping_save(provider="P", mapping=CSV_MAPPING, acting_user=None)
    rows = [[f"{prefix}{i:03d}", "2025-06-02", str(110 + i), "80", "5.5", "−", "なし"] for i in range(count)]
    return mapping, csv_bytes(rows)


def _confirmed(tenant, data: bytes, mapping_id: int) -> Job:
    with tenant_context(tenant):
        job = imports.checkup_import_start(
            upload=io.BytesIO(data), file_name="c.csv", source="csv", mapping_id=mapping_id, acting_user=None,
            enqueue=False,
        )  # fmt: skip
        job = imports.checkup_import_validate(job_id=job.pk)
        return imports.checkup_import_confirm(job=job, acting_user=None, enqueue=False)


@pytest.mark.postgres
def test_the_worker_writes_each_chunk_on_a_second_thread_while_it_prepares_the_next(
    committed_world, monkeypatch, private_storage
):
    import threading

    monkeypatch.setattr(imports, "CHUNK_SIZE", 7)
    tenant = committed_world.tenant_a
    mapping, data = _csv_people(tenant, 30)
    job = _confirmed(tenant, data, mapping.pk)
    threads: dict[str, set[str]] = {"prepare": set(), "write": set()}
    for name, target in (("prepare", "_prepare_chunk"), ("write", "_write_chunk")):
        real = getattr(imports, target)

        def spy(*args, _real=real, _name=name, **kwargs):
            threads[_name].add(threading.current_thread().name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(imports, target, spy)
    imports.checkup_import_apply(tenant=tenant, job_id=job.pk)
    with tenant_context(tenant):
        job.refresh_from_db()
        records = CheckupRecord.objects.filter(source="csv")
        systolic = sorted(int(r.result_values()["systolic"]) for r in CheckupRecord.objects.all())
        judged = set(Judgement.objects.values_list("record_id", flat=True))
        from audit.models import AuditEvent

        events = AuditEvent.objects.filter(action="checkup.judged", target_id=str(job.pk))
        audited = {r for e in events for r in e.details["records"]}
        assert job.state == Job.State.DONE and job.next_chunk == 5
        assert job.counts["applied"] == {"added": 30, "updated": 0, "unchanged": 0, "errors": 0, "judged": 30}
        assert records.count() == 30 and systolic == list(range(110, 140))
        assert judged == audited == set(records.values_list("pk", flat=True)) and events.count() == 5
    assert threads["prepare"] == {threading.main_thread().name}
    assert threads["write"] and threading.main_thread().name not in threads["write"]


@pytest.mark.postgres
def test_a_failed_chunk_write_stops_the_worker_there_and_the_redelivered_task_finishes(
    committed_world, monkeypatch, private_storage
):
    monkeypatch.setattr(imports, "CHUNK_SIZE", 5)
    tenant = committed_world.tenant_a
    mapping, data = _csv_people(tenant, 20, prefix="F")
    job = _confirmed(tenant, data, mapping.pk)
    real_write, calls = imports._write_chunk, []

    def failing(prepared, job):
        calls.append(prepared.index)
        if len(calls) == 3:
            raise RuntimeError("connection lost")
        return real_write(prepared, job)

    monkeypatch.setattr(imports, "_write_chunk", failing)
    with pytest.raises(RuntimeError):
        imports.checkup_import_apply(tenant=tenant, job_id=job.pk)
    with tenant_context(tenant):
        stopped = Job.objects.get(pk=job.pk)
        assert stopped.next_chunk == 2 and CheckupRecord.objects.count() == 10 and Judgement.objects.count() == 10
    monkeypatch.setattr(imports, "_write_chunk", real_write)
    imports.checkup_import_apply(tenant=tenant, job_id=job.pk)
    with tenant_context(tenant):
        done = Job.objects.get(pk=job.pk)
        assert done.state == Job.State.DONE and done.counts["applied"]["added"] == 20
        assert CheckupRecord.objects.count() == 20 and Judgement.objects.count() == 20
        assert all("systolic" in r.results for r in CheckupRecord.objects.all())


@pytest.mark.postgres
def test_a_chunks_stored_records_are_probed_through_the_unique_index_on_a_table_without_statistics(world):
    """The test database is never analysed, like a new tenant's first big import: each chunk's lookup
    of stored records (and their values) must go through the indexes, not scan the tenant's records
    once per chunk (an import quadratic in its size)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    tenant, day = world.tenant_a, dt.date(2025, 6, 2)
    with tenant_context(tenant):
        people = Member.objects.bulk_create([Member(tenant=tenant, name="統計") for _ in range(3000)], batch_size=1000)
        results = {item: result_json(Decimal(1), "mg/dL") for item in ("hdl", "ldl")}
        CheckupRecord.objects.bulk_create(
            [CheckupRecord(tenant=tenant, member=m, exam_date=day, fiscal_year=2025, program="regular",
                           results=results) for m in people], batch_size=1000,
        )  # fmt: skip
        entries = [
            imports.Entry(row=i, member=imports.Person(m.pk, "male", None), exam_date=day, program="regular")
            for i, m in enumerate(people[::3])
        ]
        with CaptureQueriesContext(connection) as captured:
            stored = imports._stored(entries)
        (query,) = [q["sql"] for q in captured.captured_queries if "unnest" in q["sql"]]
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (FORMAT JSON) " + query)
            plan = cursor.fetchone()[0][0]["Plan"]
    assert len(stored) == 1000 and {s.results for s in stored.values()} == {imports.fingerprint(results)}
    scans = {(node["Node Type"], node.get("Index Name")) for node in _plan_nodes(plan) if "Scan" in node["Node Type"]}
    assert scans == {
        ("Function Scan", None),  # the chunk's keys
        ("Index Scan", "checkup_unique_exam"),  # one probe per key, the record's results in its row
    }


def _plan_nodes(node: dict):
    """A plan node (EXPLAIN FORMAT JSON) and every node below it."""
    yield node
    for child in node.get("Plans", ()):
        yield from _plan_nodes(child)


def test_a_value_with_more_decimals_than_stored_compares_as_stored(world):
    """Values are kept with three decimals, halves rounded away from zero (what numeric(9,3) did): the
    comparison with the file rounds the same way, so re-importing such a value finds it unchanged, and a
    value that differs in the third decimal is a correction."""
    member = world.roster_a[0]
    with tenant_context(world.tenant_a):
        record = checkup_record_save(member=member, exam_date=dt.date(2025, 6, 2), program="regular",
                                     values={"hdl": Decimal("40.0005")})  # fmt: skip
        record.refresh_from_db()
        assert record.results["hdl"]["value"] == "40.001" and record.result_values() == {"hdl": Decimal("40.001")}

        def entry(value: str) -> imports.Entry:
            return imports.Entry(row=1, member=imports.Person(member.pk, "male", None), exam_date=record.exam_date,
                                 program="regular", values={"hdl": Decimal(value)})  # fmt: skip

        stored = imports._stored([entry("40.0005")])
        assert imports._outcome(entry("40.0005"), stored) == imports._outcome(entry("40.001"), stored) == "unchanged"
        assert imports._outcome(entry("40.002"), stored) == "updated"


def test_an_entrys_fingerprint_is_that_of_the_results_it_would_store():
    """The shortcut for CSV entries (no details) gives the text the stored results give, and a detail of an
    XML result (its code, its interpretation) is part of the comparison."""
    values = {"hba1c": Decimal("5.6"), "systolic": Decimal("128"), "urine_sugar": Decimal("2"), "bmi": None}
    csv_entry = imports.Entry(row=1, values=values)
    assert csv_entry.fingerprint() == imports.fingerprint(csv_entry.results())
    assert csv_entry.fingerprint().startswith("hba1c=5.600\x1f%,systolic=128.000\x1fmm[Hg],")
    details = {"unit_as_given": "mmHg", "code": "9A755000000000001", "interpretation": "H"}
    xml_entry = imports.Entry(row=1, values=values, details={"systolic": details})
    flag_changed = imports.Entry(row=1, values=values, details={"systolic": {**details, "interpretation": "N"}})
    assert xml_entry.fingerprint() == imports.fingerprint(xml_entry.results()) != csv_entry.fingerprint()
    assert flag_changed.fingerprint() != xml_entry.fingerprint()


def test_the_providers_flag_and_code_of_a_result_are_kept_with_it(world):
    from checkups import items

    ldl = items.load().items["ldl"].codes[0].code
    without_ldl = {key: value for key, value in ITEMS.items() if key != "ldl"}
    with tenant_context(world.tenant_a):
        me = card_member("0001")
        observation = Observation(ldl, "180", unit="mg/dl", interpretation="H")
        assert run(doc("0001", items=without_ldl, observations=[observation])).counts["applied"]["added"] == 1
        result = next(r for r in CheckupRecord.objects.get(member=me).results_in_order if r.item == "ldl")
    assert (result.value, result.unit, result.unit_as_given) == (Decimal("180"), "mg/dL", "mg/dl")
    assert (result.code, result.interpretation) == (ldl, "H")


def test_item_names_in_import_errors_follow_the_language():
    from django.utils import translation

    assert imports.column_label("height") == "身長"
    with translation.override("en"):
        assert imports.column_label("height") == "Height" and imports.column_label("sex") == "Sex"
