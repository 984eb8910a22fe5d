"""The checkup import's API (/api/v1/checkup-imports/, /api/v1/checkup-mappings/): the pages' services and
policy. Upload → preview → apply (CSV through a saved mapping, MHLW XML ZIP), the tick that corrections of
signed records need, cancel, progress, the error report (formula-escaped, the page's own), and the threat
model: another tenant's job is 404, no roster.manage over the whole tenant is 404 as on the pages."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from checkups import imports
from checkups.mhlw_sample import build_zip
from checkups.models import CheckupCsvMapping, CheckupRecord, PhysicianOpinion
from healthapp.errors import AppError
from healthapp.models import Job
from tenants.context import tenant_context
from tests.accounts.conftest import make_hr_admin
from tests.checkups.test_imports import ADMIN_PASSWORD, CSV_MAPPING, ITEMS, card_member, csv_bytes, doc, run
from tests.conftest import TEST_PASSWORD, log_in

pytestmark = pytest.mark.usefixtures("private_storage")  # every test here uploads

API = "/api/v1/checkup-imports/"
FORMULA = "=cmd|' /C calc'!A0"


@pytest.fixture
def hr_client(client, world):
    hr = make_hr_admin(world)
    assert log_in(client, hr.email, ADMIN_PASSWORD).status_code == 302
    return client


@pytest.fixture
def mapping(world) -> CheckupCsvMapping:
    """Tenant A's provider mapping; A0–A2 get the sex and birth date judging needs."""
    with tenant_context(world.tenant_a):
        for member in world.roster_a:
            member.sex, member.birth_date = "female", dt.date(1985, 5, 5)
            member.save()
        return imports.mapping_save(provider="テスト健診センター", mapping=CSV_MAPPING, acting_user=None)


def post_file(client, data: bytes, name: str = "results.csv", **fields):
    return client.post(API, {"file": SimpleUploadedFile(name, data), **fields}, format="multipart")


def uploaded(client, capture, data: bytes, name: str = "results.csv", **fields) -> int:
    """Upload through the API, run the queued dry run, and return the job's id."""
    with capture(execute=True):
        response = post_file(client, data, name, **fields)
    assert response.status_code == 201, response.content
    return response.json()["id"]


def apply(client, job_id: int, **body):
    return client.post(f"{API}{job_id}/apply/", body, content_type="application/json")


def test_a_csv_upload_previews_counts_and_errors_then_apply_writes_the_records(
    hr_client, world, mapping, django_capture_on_commit_callbacks
):
    data = csv_bytes([
        ["A0", "2025-06-02", "132", "84", "5.7", "±", "あり"],
        ["A1", "2025-06-03", "1300", "84", "5.7", "−", "なし"],  # impossible BP
        ["Z9", "2025-06-03", "120", "80", "5.5", "−", "なし"],  # nobody
    ])  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        created = post_file(hr_client, data, "山田の健診.csv", source="csv", mapping=mapping.pk)
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["state"] == "uploaded" and body["source"] == "csv" and body["number"] == 1
    assert body["mapping"] == {"id": mapping.pk, "provider": "テスト健診センター"}
    assert len(body["file_sha256"]) == 64 and body["file_size"] == len(data)
    assert "file_name" not in body and "山田" not in created.content.decode()  # the name may name a person
    job_id = body["id"]

    preview = hr_client.get(f"{API}{job_id}/").json()
    assert preview["state"] == "validated" and preview["can_apply"] is True and preview["rechecks"] == 0
    assert preview["counts"]["added"] == 1 and preview["counts"]["errors"] == 2 and preview["rows_total"] == 3
    assert {(e["row"], e["column"], e["code"]) for e in preview["errors"]} == {
        (3, "systolic", "implausible"),
        (4, "employee_number", "member_not_found"),
    }
    assert preview["warnings"] == [] and preview["finished_at"] is None
    reasons = {e["code"]: e["message"] for e in preview["errors"]}  # as the page and the report say them
    assert reasons["member_not_found"] == imports.error_message("member_not_found")
    assert reasons["implausible"].startswith("値が妥当な範囲（") and "mmHg" in reasons["implausible"]
    with tenant_context(world.tenant_a):
        assert not CheckupRecord.objects.exists()  # the dry run writes only the job
    (listed,) = hr_client.get(API).json()["results"]
    assert listed["id"] == job_id and listed["counts"]["errors"] == 2
    assert "errors" not in listed and "warnings" not in listed  # the findings: one job at a time, above

    with django_capture_on_commit_callbacks(execute=True):
        applied = apply(hr_client, job_id)
    assert applied.status_code == 202, applied.content
    assert applied.json()["state"] == "applying"
    done = hr_client.get(f"{API}{job_id}/").json()
    assert done["state"] == "done" and done["percent"] == 100 and done["counts"]["applied"]["added"] == 1
    assert done["can_apply"] is False and done["finished_at"]
    with tenant_context(world.tenant_a):
        record = CheckupRecord.objects.get()
        assert record.member == world.roster_a[0] and record.exam_date == dt.date(2025, 6, 2)
        assert record.source == "csv" and record.judgements.count() == 1

    again = apply(hr_client, job_id)
    assert again.status_code == 400 and again.json()["error"]["code"] == "not_applicable"


def test_an_mhlw_zip_upload_is_matched_by_card_and_applied(hr_client, world, django_capture_on_commit_callbacks):
    with tenant_context(world.tenant_a):
        me = card_member("0001")
    bundle = build_zip([doc("0001"), doc("0404")])
    job_id = uploaded(hr_client, django_capture_on_commit_callbacks, bundle, "bundle.zip", source="mhlw_xml")
    preview = hr_client.get(f"{API}{job_id}/").json()
    assert preview["source"] == "mhlw_xml" and preview["mapping"] is None and preview["state"] == "validated"
    assert preview["counts"]["added"] == 1 and preview["counts"]["errors"] == 1
    assert [(e["row"], e["code"]) for e in preview["errors"]] == [(2, "member_not_found")]
    assert "0404" not in hr_client.get(f"{API}{job_id}/").content.decode()  # the unmatched card is never shown
    with django_capture_on_commit_callbacks(execute=True):
        assert apply(hr_client, job_id).status_code == 202
    with tenant_context(world.tenant_a):
        record = CheckupRecord.objects.get(member=me)
        assert record.source == "mhlw_xml" and record.source_sha256 == preview["file_sha256"]


def test_a_csv_upload_needs_a_mapping_of_the_tenant(hr_client, world, mapping):
    with tenant_context(world.tenant_b):
        foreign = CheckupCsvMapping.objects.get()  # B社の健診機関
    data = csv_bytes([["A0", "2025-06-02", "132", "84", "5.7", "±", "あり"]])
    for fields in ({"source": "csv"}, {"source": "csv", "mapping": ""}, {"source": "csv", "mapping": foreign.pk}):
        refused = post_file(hr_client, data, **fields)
        assert refused.status_code == 400, fields
        assert refused.json()["error"]["code"] == "mapping_missing", refused.content
        assert refused.json()["error"]["message"] == "CSV の列の対応（健診機関）を選んでください。"
    wrong_source = post_file(hr_client, data, source="pdf", mapping=mapping.pk)
    assert wrong_source.status_code == 400 and "source" in wrong_source.json()["error"]["details"]
    with tenant_context(world.tenant_a):
        assert not Job.objects.filter(kind=Job.Kind.CHECKUP).exists()


def test_an_oversize_upload_is_refused_with_the_services_code(hr_client, world, settings):
    settings.CHECKUP_IMPORT_MAX_BYTES = 50
    refused = post_file(hr_client, build_zip([doc("0001")]), "b.zip", source="mhlw_xml")
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "file_too_large"


def test_an_upload_over_the_memory_limit_is_refused_as_too_large_not_as_missing(hr_client, world, settings):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 2**20
    settings.CHECKUP_IMPORT_MAX_BYTES = 2**20
    refused = post_file(hr_client, os.urandom(2**20 + 1), "b.zip", source="mhlw_xml")
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "file_too_large"
    with tenant_context(world.tenant_a):
        assert not Job.objects.filter(kind=Job.Kind.CHECKUP).exists()


def test_corrections_of_signed_records_are_applied_only_once_acknowledged(
    hr_client, world, django_capture_on_commit_callbacks
):
    with tenant_context(world.tenant_a):
        card_member("0001")
        run(build_zip([doc("0001")]))
        record = CheckupRecord.objects.get()
        PhysicianOpinion.objects.create(record=record, fitness="normal", signed_by=world.admin_a)
    corrected = build_zip([doc("0001", items={**ITEMS, "systolic": 150})])
    job_id = uploaded(hr_client, django_capture_on_commit_callbacks, corrected, "b.zip", source="mhlw_xml")
    preview = hr_client.get(f"{API}{job_id}/").json()
    assert preview["rechecks"] == 1 and preview["counts"]["updated"] == 1 and preview["can_apply"] is True

    for body in ({}, {"acknowledge_rechecks": False}):
        refused = apply(hr_client, job_id, **body)
        assert refused.status_code == 400, refused.content
        assert refused.json()["error"]["code"] == "acknowledge_required"
        assert "1 件" in refused.json()["error"]["message"]
    assert hr_client.get(f"{API}{job_id}/").json()["state"] == "validated"
    with tenant_context(world.tenant_a):
        assert record.results == CheckupRecord.objects.get().results  # nothing written

    with django_capture_on_commit_callbacks(execute=True):
        applied = apply(hr_client, job_id, acknowledge_rechecks=True)
    assert applied.status_code == 202, applied.content
    done = hr_client.get(f"{API}{job_id}/").json()
    assert done["state"] == "done" and done["counts"]["applied"]["updated"] == 1
    with tenant_context(world.tenant_a):
        assert CheckupRecord.objects.get().result_values()["systolic"] == 150


def test_the_page_and_the_api_ask_for_the_tick_by_the_same_rule(world):
    with tenant_context(world.tenant_a):
        card_member("0001")
        run(build_zip([doc("0001")]))
        PhysicianOpinion.objects.create(record=CheckupRecord.objects.get(), fitness="normal", signed_by=world.admin_a)
        job = imports.checkup_import_start(
            upload=io.BytesIO(build_zip([doc("0001", items={**ITEMS, "systolic": 150})])), file_name="b.zip",
            source=imports.SOURCE_XML, mapping_id=None, acting_user=None, enqueue=False,
        )  # fmt: skip
        job = imports.checkup_import_validate(job_id=job.pk)
        from checkups.import_views import _acknowledge

        assert imports.rechecks_to_acknowledge(job) == 1 and "1 件" in _acknowledge(job)
        with pytest.raises(AppError) as refused:  # a caller that does not say it asked is refused as well
            imports.checkup_import_confirm(job=job, acting_user=None, enqueue=False)
        assert refused.value.code == "acknowledge_required"
        job.state = Job.State.DONE  # no longer a preview: nothing to tick, nothing refused
        assert imports.rechecks_to_acknowledge(job) == 0 and _acknowledge(job) == ""


def test_cancel_discards_a_preview_and_its_file(
    hr_client, world, mapping, private_storage, django_capture_on_commit_callbacks
):
    data = csv_bytes([["A0", "2025-06-02", "132", "84", "5.7", "±", "あり"]])
    job_id = uploaded(hr_client, django_capture_on_commit_callbacks, data, source="csv", mapping=mapping.pk)
    assert list(private_storage.rglob("*.sealed"))  # the upload, sealed, until the job ends
    with django_capture_on_commit_callbacks(execute=True):
        cancelled = hr_client.post(f"{API}{job_id}/cancel/")
    assert cancelled.status_code == 200, cancelled.content
    assert cancelled.json()["state"] == "cancelled" and cancelled.json()["finished_at"]
    assert not list(private_storage.rglob("*.sealed"))
    again = hr_client.post(f"{API}{job_id}/cancel/")
    assert again.status_code == 400 and again.json()["error"]["code"] == "not_cancellable"
    refused = apply(hr_client, job_id)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "not_applicable"
    with tenant_context(world.tenant_a):
        assert not CheckupRecord.objects.exists()


def test_the_error_report_is_the_pages_and_defuses_formulas(
    hr_client, world, mapping, django_capture_on_commit_callbacks
):
    header = ["社員番号", "受診日", "収縮期血圧", "拡張期血圧", "HbA1c", "尿糖", "喫煙", FORMULA]
    rows = [
        ["A0", "2025-06-02", "132", "84", "5.7", "±", "あり", "x"],
        ["Z9", "2025-06-03", "120", "80", "5.5", "−", "なし", "x"],
    ]
    data = ("\r\n".join(",".join(r) for r in [header, *rows]) + "\r\n").encode("utf-8-sig")
    job_id = uploaded(hr_client, django_capture_on_commit_callbacks, data, source="csv", mapping=mapping.pk)
    preview = hr_client.get(f"{API}{job_id}/").json()
    # The provider's unknown column is a warning (the rest imports), the unknown person an error.
    assert [(w["row"], w["column"], w["code"]) for w in preview["warnings"]] == [(1, FORMULA, "column_ignored")]
    assert [(e["row"], e["code"]) for e in preview["errors"]] == [(3, "member_not_found")]

    report = hr_client.get(f"{API}{job_id}/errors/")
    assert report.status_code == 200 and report["Content-Type"].startswith("text/csv")
    number = preview["number"]  # what the page calls the job (#1), not its id across tenants
    assert report["Content-Disposition"] == f'attachment; filename="checkup-import-{number}-errors.csv"'
    rows = list(csv.reader(io.StringIO(report.content.decode("utf-8-sig"))))
    assert rows[0] == ["番号", "ファイル内の項目", "列・項目", "コード", "内容"]
    assert [row[:4] for row in rows[1:]] == [["1", "", "'" + FORMULA, "column_ignored"],  # shown, never run
                                             ["3", "", "社員番号", "member_not_found"]]  # fmt: skip
    assert rows[1][4] == imports.error_message("column_ignored") and "Z9" not in report.content.decode("utf-8-sig")
    assert report.content == hr_client.get(f"/checkups/import/{job_id}/errors.csv").content  # the page's own
    # A client asking for what the schema documents (text/csv) gets it, not 406; a missing job stays a JSON 404.
    asked = hr_client.get(f"{API}{job_id}/errors/", HTTP_ACCEPT="text/csv")
    assert asked.status_code == 200 and asked.content == report.content
    missing = hr_client.get(f"{API}{job_id + 999}/errors/", HTTP_ACCEPT="text/csv")
    assert missing.status_code == 404 and missing["Content-Type"].startswith("text/csv")
    assert next(csv.reader(io.StringIO(missing.content.decode("utf-8-sig")))) == ["code", "message"]
    # A format suffix is not a second way to ask: a 404 in the API's shape, never a server error.
    for suffixed in (f"{API}{job_id}/errors.csv", f"{API}{job_id}.json", "/api/v1/roster-imports.json"):
        answered = hr_client.get(suffixed)
        assert answered.status_code == 404, (suffixed, answered.status_code, answered.content[:300])
        assert answered.json()["error"]["code"] == "not_found"
    assert "<html" in hr_client.get("/no-such-page/").content.decode()  # a page's 404 stays the site's page


def test_progress_says_state_and_counts_without_the_file(hr_client, world, mapping, django_capture_on_commit_callbacks):
    data = csv_bytes([["A0", "2025-06-02", "132", "84", "5.7", "±", "あり"]])
    job_id = uploaded(hr_client, django_capture_on_commit_callbacks, data, "秘密.csv", source="csv", mapping=mapping.pk)
    progress = hr_client.get(f"{API}{job_id}/progress/")
    assert progress.status_code == 200
    body = progress.json()
    assert set(body) == {"id", "number", "state", "state_label", "rows_total", "rows_done", "percent", "counts",
                         "error_code", "finished"}  # fmt: skip
    assert body["id"] == job_id and body["state"] == "validated" and body["finished"] is False
    assert body["rows_total"] == 1 and body["counts"]["added"] == 1 and "秘密" not in progress.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        apply(hr_client, job_id)
    body = hr_client.get(f"{API}{job_id}/progress/").json()
    assert body["state"] == "done" and body["percent"] == 100 and body["finished"] is True
    assert body["counts"]["applied"]["added"] == 1


def test_outsider_gets_404_for_another_tenants_job_and_mapping(world, mapping, hr_client):
    with tenant_context(world.tenant_a):
        job = imports.checkup_import_start(
            upload=io.BytesIO(build_zip([doc("0001")])), file_name="b.zip", source=imports.SOURCE_XML,
            mapping_id=None, acting_user=None, enqueue=False,
        )  # fmt: skip
        imports.checkup_import_validate(job_id=job.pk)
    assert hr_client.get(f"{API}{job.pk}/").status_code == 200  # it exists, for its own tenant
    client = Client()
    log_in(client, "outsider@b.example", ADMIN_PASSWORD)  # org admin of tenant B: holds roster.manage there
    assert client.get(API).status_code == 200 and client.get(API).json()["results"] == []
    for url in (f"{API}{job.pk}/", f"{API}{job.pk}/progress/", f"{API}{job.pk}/errors/",
                f"/api/v1/checkup-mappings/{mapping.pk}/"):  # fmt: skip
        response = client.get(url)
        assert response.status_code == 404, url
        assert response.json()["error"]["code"] == "not_found"
    for action in ("apply", "cancel"):
        assert client.post(f"{API}{job.pk}/{action}/", {"acknowledge_rechecks": True}).status_code == 404, action
    assert [m["provider"] for m in client.get("/api/v1/checkup-mappings/").json()["results"]] == ["B社の健診機関"]
    with tenant_context(world.tenant_a):
        assert Job.objects.get(pk=job.pk).state == Job.State.VALIDATED


def _urls(job_id: int) -> list[str]:
    return [API, f"{API}{job_id}/", f"{API}{job_id}/progress/", f"{API}{job_id}/errors/", "/api/v1/checkup-mappings/"]


@pytest.fixture
def a_job(world) -> Job:
    with tenant_context(world.tenant_a):
        return imports.checkup_import_start(
            upload=io.BytesIO(build_zip([doc("0001")])), file_name="b.zip", source=imports.SOURCE_XML,
            mapping_id=None, acting_user=None, enqueue=False,
        )  # fmt: skip


def test_without_roster_manage_the_api_is_404_like_the_pages(client, world, a_job):
    log_in(client, world.member_a.email, TEST_PASSWORD)
    assert client.get("/checkups/import/").status_code == 404  # the page says the same
    for url in _urls(a_job.pk):
        assert client.get(url).status_code == 404, url
    upload = {"file": SimpleUploadedFile("b.zip", build_zip([doc("0001")])), "source": "mhlw_xml"}
    assert client.post(API, upload).status_code == 404
    assert client.post(f"{API}{a_job.pk}/cancel/").status_code == 404
    with tenant_context(world.tenant_a):
        assert Job.objects.filter(kind=Job.Kind.CHECKUP).count() == 1


def test_a_departments_hr_may_not_import_checkups_either(client, world, a_job):
    """roster.manage over one department is not enough: a file may name anyone in the tenant."""
    from accounts.models import Role
    from accounts.services import label_grant_create, member_create, user_create

    with tenant_context(world.tenant_a):
        member = member_create(employee_number="HRD", name="部署 人事", office=world.office_a,
                               department=world.department_a)  # fmt: skip
    user_create(email="dept-hr@a.example", role=Role.HR_ADMIN, tenant=world.tenant_a, password=ADMIN_PASSWORD,
                member=member)  # fmt: skip
    with tenant_context(world.tenant_a):
        label_grant_create(office=world.office_a, target_kind="employee", target="HRD", labels=["hr_staff"],
                           scope_="department", acting_user=world.admin_a)  # fmt: skip
    log_in(client, "dept-hr@a.example", ADMIN_PASSWORD)
    for url in _urls(a_job.pk):
        assert client.get(url).status_code == 404, url


def test_anonymous_gets_403(client, a_job):
    for url in _urls(a_job.pk):
        response = client.get(url)
        assert response.status_code == 403, url
        assert response.json()["error"]["code"] == "not_authenticated"


def test_the_mappings_list_is_the_tenants_with_their_columns(hr_client, world, mapping):
    with tenant_context(world.tenant_a):
        other = imports.mapping_save(provider="あおば健診", mapping=imports.SAMPLE_MAPPING, acting_user=None)
    listed = hr_client.get("/api/v1/checkup-mappings/")
    assert listed.status_code == 200
    assert [(m["id"], m["provider"]) for m in listed.json()["results"]] == [
        (other.pk, "あおば健診"),
        (mapping.pk, "テスト健診センター"),
    ]
    mappings = listed.json()["results"]
    assert mappings[1]["mapping"] == CSV_MAPPING and mappings[0]["mapping"] == imports.SAMPLE_MAPPING
    assert hr_client.get(f"/api/v1/checkup-mappings/{mapping.pk}/").json()["mapping"] == CSV_MAPPING
    # read only: edited on the mapping page, never here
    assert hr_client.post("/api/v1/checkup-mappings/", {"provider": "x"}).status_code == 405
    assert hr_client.delete(f"/api/v1/checkup-mappings/{mapping.pk}/").status_code == 405


def test_the_list_is_newest_first_and_its_queries_do_not_grow_with_jobs(hr_client, world, mapping):
    def start(source: str) -> Job:
        with tenant_context(world.tenant_a):
            return imports.checkup_import_start(
                upload=io.BytesIO(b"x"), file_name="f", source=source,
                mapping_id=mapping.pk if source == imports.SOURCE_CSV else None, acting_user=None, enqueue=False,
            )  # fmt: skip

    with tenant_context(world.tenant_a):  # the roster importer's job: not one of these
        roster = Job.objects.create(kind=Job.Kind.ROSTER, file="jobs/none.csv", file_sha256="0" * 64)
    first = start(imports.SOURCE_CSV)
    with CaptureQueriesContext(connection) as one:
        assert hr_client.get(API).status_code == 200
    more = [start(imports.SOURCE_CSV), start(imports.SOURCE_XML), start(imports.SOURCE_CSV)]
    with CaptureQueriesContext(connection) as four:
        listed = hr_client.get(API).json()["results"]
    assert [j["id"] for j in listed] == [more[2].pk, more[1].pk, more[0].pk, first.pk]
    assert [j["number"] for j in listed] == [4, 3, 2, 1]
    assert [j["mapping"] and j["mapping"]["provider"] for j in listed] == [
        "テスト健診センター",
        None,
        "テスト健診センター",
        "テスト健診センター",
    ]
    assert len(four.captured_queries) == len(one.captured_queries)
    # Nor with their findings: a list reads each job's counts, never its row errors or chunk plan.
    job_reads = [q["sql"] for q in four.captured_queries if 'FROM "healthapp_job"' in q["sql"]]
    assert job_reads and not any('"errors"' in sql or '"plan"' in sql for sql in job_reads)
    assert hr_client.get(f"{API}{roster.pk}/").status_code == 404


def test_a_job_read_with_a_deleted_mapping_names_none(hr_client, world, mapping):
    with tenant_context(world.tenant_a):
        job = imports.checkup_import_start(
            upload=io.BytesIO(b"x"), file_name="f", source=imports.SOURCE_CSV, mapping_id=mapping.pk,
            acting_user=None, enqueue=False,
        )  # fmt: skip
        imports.mapping_delete(mapping=mapping, acting_user=None)
    body = hr_client.get(f"{API}{job.pk}/").json()
    assert body["source"] == "csv" and body["mapping"] is None


def test_the_schema_documents_the_checkup_import_api(client, world):
    log_in(client, "member@a.example", TEST_PASSWORD)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = {path: set(ops) for path, ops in schema["paths"].items() if "/checkup-" in path}
    assert paths == {
        "/api/v1/checkup-imports/": {"get", "post"},
        "/api/v1/checkup-imports/{id}/": {"get"},
        "/api/v1/checkup-imports/{id}/apply/": {"post"},
        "/api/v1/checkup-imports/{id}/cancel/": {"post"},
        "/api/v1/checkup-imports/{id}/errors/": {"get"},
        "/api/v1/checkup-imports/{id}/progress/": {"get"},
        "/api/v1/checkup-mappings/": {"get"},
        "/api/v1/checkup-mappings/{id}/": {"get"},
    }
    components = schema["components"]["schemas"]
    assert "acknowledge_rechecks" in components["CheckupApply"]["properties"]
    assert {"rechecks", "can_apply", "mapping", "warnings"} <= set(components["CheckupImport"]["properties"])
    assert set(components["CheckupUpload"]["properties"]) == {"file", "source", "mapping"}


def test_the_schema_validates_without_warnings():
    """What `manage.py spectacular --validate --fail-on-warn` checks: the new views documented cleanly."""
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", os.devnull, stdout=io.StringIO())
