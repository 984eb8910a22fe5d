"""What the checkup import tells the admin instead of doing silently: a mapping is never overwritten by the
form meant to add one, and can be deleted; columns and ZIP files it does not read are named as warnings; a
missing column is named; a mapping's problems say what is wrong; corrections that send signed opinions back
to the physician are ticked off before applying."""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from audit.models import AuditEvent
from checkups import imports
from checkups.mhlw_sample import build_zip
from checkups.models import CheckupCsvMapping
from healthapp.errors import AppError
from healthapp.models import Job
from tenants.context import tenant_context
from tests.accounts.conftest import make_hr_admin
from tests.checkups.test_imports import ADMIN_PASSWORD, CSV_MAPPING, ITEMS, card_member, csv_bytes, doc, run
from tests.checkups.test_mhlw_xml import _zip
from tests.conftest import log_in

pytestmark = pytest.mark.usefixtures("private_storage")


def _warnings(job: Job) -> list[tuple]:
    return [(e["row"], e["source"], e["column"], e["code"]) for e in job.errors if e["code"] in imports.WARNINGS]


def test_the_add_form_refuses_a_providers_name_already_used_and_keeps_the_saved_mapping(client, world):
    hr = make_hr_admin(world)
    with tenant_context(world.tenant_a):
        saved = imports.mapping_save(provider="健診社", mapping=CSV_MAPPING, acting_user=hr)
    log_in(client, hr.email, ADMIN_PASSWORD)
    page = client.post(
        "/checkups/import/mappings/", {"provider": "健診社", "mapping": "社員番号,employee_number\n受診日,exam_date"}
    )
    assert page.status_code == 200 and "「健診社」の列の対応はすでにあります" in page.content.decode()
    with tenant_context(world.tenant_a):
        assert CheckupCsvMapping.objects.get(pk=saved.pk).mapping == CSV_MAPPING


def test_a_mapping_is_deleted_after_confirming_and_the_deletion_is_audited(client, world):
    hr = make_hr_admin(world)
    with tenant_context(world.tenant_a):
        saved = imports.mapping_save(provider="健診社", mapping=CSV_MAPPING, acting_user=hr)
    log_in(client, hr.email, ADMIN_PASSWORD)
    page = client.get(f"/checkups/import/mappings/{saved.pk}/").content.decode()
    assert 'data-testid="checkup-mapping-delete"' in page
    done = client.post(f"/checkups/import/mappings/{saved.pk}/", {"delete": "1"}, follow=True)
    assert "列の対応「健診社」を削除しました。" in done.content.decode()
    with tenant_context(world.tenant_a):
        assert not CheckupCsvMapping.objects.exists()
        event = AuditEvent.objects.get(action="checkup.csv_mapping_deleted")
        assert event.target_id == str(saved.pk) and event.actor_id == hr.pk


def test_a_mapping_line_without_a_comma_and_an_unknown_or_missing_target_say_what_is_wrong(client, world):
    hr = make_hr_admin(world)
    log_in(client, hr.email, ADMIN_PASSWORD)
    page = client.post("/checkups/import/mappings/", {"provider": "P", "mapping": "社員番号\n受診日,exam_date"})
    assert "1 行目「社員番号」にカンマがありません" in page.content.decode()
    with tenant_context(world.tenant_a), pytest.raises(AppError) as refused:
        imports.mapping_save(
            provider="P", mapping={"受診日": "exam_date", "クレアチニン": "creatinine"}, acting_user=None
        )
    message = refused.value.message
    assert "「クレアチニン」の対応先 creatinine は対応先の一覧にありません" in message
    assert "社員番号（employee_number）に対応する列がありません" in message


def test_columns_the_mapping_does_not_read_are_named_as_warnings_and_the_rest_imports(world):
    with tenant_context(world.tenant_a):
        member = world.roster_a[0]
        member.sex, member.birth_date = "female", dt.date(1985, 5, 5)
        member.save()
        mapping = imports.mapping_save(provider="P", mapping=CSV_MAPPING, acting_user=None)
        text = csv_bytes([["A0", "2025-06-02", "120", "80", "5.5", "−", "なし"]]).decode("utf-8-sig")
        lines = text.splitlines()
        lines = [lines[0] + ",クレアチニン,備考", lines[1] + ",0.8,"]
        job = run("\r\n".join(lines).encode(), source="csv", mapping_id=mapping.pk)
        assert job.state == Job.State.DONE and job.counts["added"] == 1
        assert _warnings(job) == [(1, "", "クレアチニン", "column_ignored"), (1, "", "備考", "column_ignored")]
        assert job.counts["warnings"] == 2


def test_a_missing_column_is_named_in_the_errors(world):
    with tenant_context(world.tenant_a):
        mapping = imports.mapping_save(provider="P", mapping={**CSV_MAPPING, "体重": "weight"}, acting_user=None)
        job = run(
            csv_bytes([["A0", "2025-06-02", "120", "80", "5.5", "−", "なし"]]), source="csv", mapping_id=mapping.pk
        )
        assert job.state == Job.State.FAILED and job.error_code == "columns_missing"
        assert [(e["row"], e["column"]) for e in job.errors] == [(1, "体重")]


@pytest.mark.parametrize(
    "first_line",
    [
        "ID,Date,SBP,DBP,A1c,Glu-U,Smoke",  # another provider's file
        "A0,2025-06-02,120,80,5.5,−,なし",  # no header line: the first line is a person's
    ],
)
def test_a_file_that_shares_no_column_with_the_mapping_says_so_once(world, first_line):
    with tenant_context(world.tenant_a):
        mapping = imports.mapping_save(provider="P", mapping=CSV_MAPPING, acting_user=None)
        data = (first_line + "\r\nA1,2025-06-02,121,81,5.6,−,なし\r\n").encode("utf-8-sig")
        job = run(data, source="csv", mapping_id=mapping.pk)
    assert job.state == Job.State.FAILED and job.error_code == "mapping_mismatch"
    assert imports.error_message(job.error_code).startswith("ファイルの1行目に、選んだ列の対応の列名が一つもありません")
    assert sorted((e["row"], e["column"], e["code"]) for e in job.errors) == sorted(
        (1, name, "column_missing") for name in CSV_MAPPING
    )  # the mapping's order is not kept by PostgreSQL's jsonb
    assert {imports.row_error_message(e) for e in job.errors} == {
        "列の対応にあるこの列が、ファイルの1行目（見出し）にありません。"
    }
    assert "A0" not in str(job.errors) and "ID" not in str(job.errors)  # the file's first line is never repeated


def test_files_of_a_zip_that_are_not_results_are_named_as_warnings(world):
    with tenant_context(world.tenant_a):
        card_member("0001")
        bundle = io.BytesIO(build_zip([doc("0001")]))
        with zipfile.ZipFile(bundle, "a") as z:
            z.writestr("DATA/yamada_taro.txt", "x")  # a name may hold someone's name: shown by its kind only
            z.writestr("DATA/山田太郎.pdf", "x")
            z.writestr("CLAIMS/c0001.xml", "<x/>")  # the bundle's own other parts are not reported
        job = run(bundle.getvalue())
        assert job.state == Job.State.DONE and job.counts["added"] == 1
        assert _warnings(job) == [(None, "*.txt", "", "not_a_result_file"),
                                  (None, "*.pdf", "", "not_a_result_file")]  # fmt: skip
        assert "yamada" not in str(job.errors)


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("ROOT/DATA/h_Yamada_Taro_19700401.xml", "ZIP #2"),  # a result file named for its person, romanised
        ("Yamada_Taro_19700401/DATA/h0404.xml", "ZIP #2 (h0404.xml)"),  # a folder named for them
        ("../Yamada_Taro_19700401.xml", "ZIP #2"),  # an unsafe name (refused) that carries one
    ],
)
def test_a_zip_entry_named_for_a_person_is_reported_by_its_position_not_its_name(world, name, label):
    with tenant_context(world.tenant_a):
        card_member("0001")
        job = run(_zip({"1234567890_99999999_20250401_1/DATA/h0001.xml": doc("0001"), name: doc("0404")}))
        report = "\n".join(",".join(map(str, row)) for row in imports.error_report_rows(job))
    # what the preview, the API and errors.csv show, and the job row keeps in clear
    assert job.counts["added"] == 1  # the first person's file; the second's names nobody on the roster
    assert {(e["row"], e["source"]) for e in job.errors} == {(2, label)}
    assert "Yamada" not in str(job.errors) and "Yamada" not in report


def test_an_empty_zip_says_it_holds_no_results():
    empty = io.BytesIO()
    zipfile.ZipFile(empty, "w").close()
    with pytest.raises(imports.FileError) as refused:
        list(imports.xml_entries(empty.getvalue()))
    assert refused.value.code == "no_data_folder"


def test_corrections_that_reopen_signed_opinions_are_ticked_off_before_applying(
    client, world, django_capture_on_commit_callbacks
):
    from accounts.models import Role
    from checkups.models import CheckupRecord
    from checkups.services import physician_opinion_record
    from tests.checkups.test_followups import _staff

    hr = make_hr_admin(world)
    with tenant_context(world.tenant_a):
        card_member("0001")
        run(build_zip([doc("0001")]))
        physician = _staff(world, "doc", Role.PHYSICIAN, "physician", "tenant")
        physician_opinion_record(record=CheckupRecord.objects.get(), fitness="normal", follow_up="none", opinion="",
                                 restrictions=[], acting_user=physician)  # fmt: skip
    log_in(client, hr.email, ADMIN_PASSWORD)
    corrected = build_zip([doc("0001", items={**ITEMS, "systolic": 150})])
    with django_capture_on_commit_callbacks(execute=True):
        uploaded = client.post(
            "/checkups/import/", {"file": SimpleUploadedFile("b.zip", corrected), "source": "mhlw_xml"}
        )
    page = client.get(uploaded.url).content.decode()
    assert 'data-testid="job-acknowledge"' in page and "就業判定済みの 1 件が訂正された値で産業医の再確認に戻る" in page
    with tenant_context(world.tenant_a):
        job = Job.objects.filter(kind=Job.Kind.CHECKUP).latest("pk")
    assert job.counts["rechecks"] == 1, job.counts
    client.post(f"/checkups/import/{job.pk}/apply/")  # not ticked: nothing applied
    with tenant_context(world.tenant_a):
        job.refresh_from_db()
    assert job.state == Job.State.VALIDATED
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/checkups/import/{job.pk}/apply/", {"acknowledge": "1"})
    with tenant_context(world.tenant_a):
        job.refresh_from_db()
    assert job.state == Job.State.DONE and job.counts["applied"]["updated"] == 1


def test_a_correction_names_its_import_by_the_tenants_job_number(world):
    from checkups import selectors
    from checkups.models import CheckupRecord

    with tenant_context(world.tenant_b):
        run(build_zip([doc("0001")]))  # another tenant's import: takes a global id, not a number of A's
    with tenant_context(world.tenant_a):
        card_member("0001")
        run(build_zip([doc("0001")]))
        second = run(build_zip([doc("0001", items={**ITEMS, "systolic": 150})]))
        (correction,) = selectors.corrections_of(CheckupRecord.objects.get())
        assert second.number == 2 and second.pk != 2 and correction.job_number == 2


def test_an_insurer_without_its_insurer_number_is_told_other_insurers_files_pass_unnoticed(client, world):
    """Without Tenant.insurer_number another insurer's 特定健診 XML cannot be told apart (it would import):
    the insurer's import page says so, and who can set it; a company's does not."""
    from django.test import Client

    from tenants.models import Tenant

    log_in(client, "outsider@b.example", ADMIN_PASSWORD)  # org admin of tenant B, an insurer with no number
    assert 'data-testid="insurer-number-missing"' in client.get("/checkups/import/").content.decode()
    Tenant.objects.filter(pk=world.tenant_b.pk).update(insurer_number="06123456")
    assert 'data-testid="insurer-number-missing"' not in client.get("/checkups/import/").content.decode()
    company = Client()
    log_in(company, make_hr_admin(world).email, ADMIN_PASSWORD)
    page = company.get("/checkups/import/").content.decode()
    assert 'data-testid="checkup-mappings"' in page and 'data-testid="insurer-number-missing"' not in page
