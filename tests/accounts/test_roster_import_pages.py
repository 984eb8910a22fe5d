"""Roster import pages and API: who may use them, and the whole upload → preview → apply path."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts import roster_import
from accounts.models import Member
from healthapp.models import Job
from tenants.context import tenant_context
from tests.accounts.test_roster_import import EN, person, roster_csv
from tests.conftest import TEST_PASSWORD, log_in

pytestmark = pytest.mark.usefixtures("private_storage")
ADMIN_PASSWORD = TEST_PASSWORD + "!x"


@pytest.fixture
def hr_client(client, hr_admin):
    log_in(client, hr_admin.email, ADMIN_PASSWORD)
    return client


def upload(client, data: bytes, **fields):
    payload = {"file": SimpleUploadedFile("名簿.csv", data, content_type="text/csv"), "mode": "partial", **fields}
    return client.post("/roster/import/", payload)


def test_hr_admin_uploads_previews_applies_and_downloads_the_error_report(
    hr_client, world, django_capture_on_commit_callbacks
):
    data = roster_csv([person("W1"), person("W2", birth="令和99年1月1日"), person("W3", name="=HYPERLINK(1)")])
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(hr_client, data)
    assert response.status_code == 302
    job_url = response.url
    page = hr_client.get(job_url)
    body = page.content.decode()
    assert page.status_code == 200 and 'data-count="added">1<' in body and 'data-count="errors">2<' in body
    assert "HYPERLINK" not in body  # the page names row and reason, never the value
    assert 'data-testid="job-progress"' not in body  # a preview awaiting its confirm: nothing applied, no bar
    with tenant_context(world.tenant_a):
        job = Job.objects.get()
    status = hr_client.get(f"/roster/import/{job.pk}/status/").json()
    assert status["state"] == "validated" and status["rows_total"] == 3 and "file_name" not in status

    with django_capture_on_commit_callbacks(execute=True):
        assert hr_client.post(f"/roster/import/{job.pk}/apply/").status_code == 302
    status = hr_client.get(f"/roster/import/{job.pk}/status/").json()
    assert status["state"] == "done" and status["percent"] == 100 and status["counts"]["applied"]["added"] == 1
    assert 'value="100" data-testid="job-progress"' in hr_client.get(job_url).content.decode()
    with tenant_context(world.tenant_a):
        assert Member.objects.filter(employee_number_index__isnull=False).count() == 3 + 1 + 1  # world, HR1, W1

    report = hr_client.get(f"/roster/import/{job.pk}/errors.csv")
    text = report.content.decode("utf-8-sig")
    assert report["Content-Type"].startswith("text/csv") and "HYPERLINK" not in text and "99" not in text
    assert "\r\n3," in text and "\r\n4," in text


def test_a_full_import_lists_who_it_deactivates_and_is_applied_only_once_that_is_ticked(
    hr_client, world, hr_admin, django_capture_on_commit_callbacks
):
    with tenant_context(world.tenant_a):
        uploader = Member.objects.get(user=hr_admin)
    listed = [person("A0", name="甲野 0"), person(uploader.employee_number, name=uploader.name, dept="")]
    with django_capture_on_commit_callbacks(execute=True):
        job_url = upload(hr_client, roster_csv(listed), mode="full").url
    page = hr_client.get(job_url).content.decode()
    gone = page.split('data-testid="job-to-deactivate"')[1].split("</table>")[0]
    assert "甲野 1" in gone and "甲野 2" in gone and "甲野 0" not in gone  # the two people the file no longer lists
    assert (
        'data-testid="job-acknowledge"' in page
        and "反映すると 2 人の名簿とログインを無効化することを確認しました。" in page
    )
    job_id = int(job_url.rstrip("/").rsplit("/", 1)[1])

    unticked = hr_client.post(f"/roster/import/{job_id}/apply/", follow=True)
    assert "確認の欄にチェックを入れてから反映してください。" in unticked.content.decode()
    with tenant_context(world.tenant_a):
        assert Job.objects.get(pk=job_id).state == "validated"
        assert not Member.objects.filter(is_active=False).exists()  # nobody deactivated yet
    with django_capture_on_commit_callbacks(execute=True):
        hr_client.post(f"/roster/import/{job_id}/apply/", {"acknowledge": "1"})
    with tenant_context(world.tenant_a):
        assert Job.objects.get(pk=job_id).state == "done"
        assert sorted(m.employee_number for m in Member.objects.filter(is_active=False)) == ["A1", "A2"]


def test_the_tick_counts_the_rows_whose_qualification_ended_and_says_so(
    hr_client, world, django_capture_on_commit_callbacks
):
    """Partial mode: A1's row ends their qualification yesterday. Nobody is missing from the file, yet one
    person is deactivated: the page says who (by the file) and the tick counts them."""
    with django_capture_on_commit_callbacks(execute=True):
        job_url = upload(hr_client, roster_csv([person("A1", name="甲野 1", end="2020-03-31")])).url
    page = hr_client.get(job_url).content.decode()
    assert 'data-testid="job-to-deactivate"' not in page
    assert "資格喪失日を過ぎた 1 人を、ファイルのとおり無効化します。" in page
    assert "反映すると 1 人の名簿とログインを無効化することを確認しました。" in page


def test_a_preview_can_be_discarded_instead_of_applied(hr_client, world, django_capture_on_commit_callbacks):
    from django.core.files.storage import default_storage

    with tenant_context(world.tenant_a):
        members = Member.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        job_url = upload(hr_client, roster_csv([person("D1")])).url
    with tenant_context(world.tenant_a):
        job = Job.objects.get()
    assert default_storage.exists(job.file)
    assert 'data-testid="job-cancel"' in hr_client.get(job_url).content.decode()
    with django_capture_on_commit_callbacks(execute=True):  # the file is deleted once the discard commits
        discarded = hr_client.post(f"/roster/import/{job.pk}/cancel/", follow=True)
    assert "取り込みを取り消しました。" in discarded.content.decode()
    with tenant_context(world.tenant_a):
        job.refresh_from_db()
        assert job.state == "cancelled"
    assert not default_storage.exists(job.file)  # the upload is gone
    page = hr_client.get(job_url).content.decode()
    assert 'data-testid="job-apply"' not in page and 'data-testid="job-cancel"' not in page and "取り消し" in page
    with django_capture_on_commit_callbacks(execute=True):
        hr_client.post(f"/roster/import/{job.pk}/apply/")
    again = hr_client.post(f"/roster/import/{job.pk}/cancel/", follow=True).content.decode()
    assert "この取り込みは取り消せません" in again
    with tenant_context(world.tenant_a):
        assert Job.objects.get(pk=job.pk).state == "cancelled" and Member.objects.count() == members  # D1 never added


def test_the_api_discards_a_preview_too(hr_client, world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        created = hr_client.post(
            "/api/v1/roster-imports/",
            {"file": SimpleUploadedFile("r.csv", roster_csv([person("D2")])), "mode": "partial"},
        )
    job_id = created.json()["id"]
    with django_capture_on_commit_callbacks(execute=True):
        discarded = hr_client.post(f"/api/v1/roster-imports/{job_id}/cancel/")
    assert discarded.status_code == 200 and discarded.json()["state"] == "cancelled"
    again = hr_client.post(f"/api/v1/roster-imports/{job_id}/cancel/")
    assert again.status_code == 400 and again.json()["error"]["code"] == "not_cancellable"
    applied = hr_client.post(f"/api/v1/roster-imports/{job_id}/apply/")
    assert applied.status_code == 400 and applied.json()["error"]["code"] == "not_applicable"


def test_an_admin_does_not_move_themselves_by_their_own_import(hr_client, world, django_capture_on_commit_callbacks):
    """Labels granted to a department follow the roster: moving one's own entry into a department with a
    label (産業医 …) would grant it to oneself. The row is refused; the rest of the file applies."""
    rows = [person("HR1", name="人事 太郎", dept="営業部"), person("M9", name="新人 九郎")]
    with django_capture_on_commit_callbacks(execute=True):
        job_url = upload(hr_client, roster_csv(rows)).url
    page = hr_client.get(job_url).content.decode()
    assert 'data-code="own_placement"' in page and "ご自身の事業所・部署は" in page
    assert 'data-count="added">1<' in page and 'data-count="updated">0<' in page
    job_id = int(job_url.rstrip("/").rsplit("/", 1)[1])
    with django_capture_on_commit_callbacks(execute=True):
        hr_client.post(f"/roster/import/{job_id}/apply/")
    with tenant_context(world.tenant_a):
        me = Member.objects.get(user__email="hr@a.example")
        assert me.department_id is None and Job.objects.get(pk=job_id).state == "done"


def test_the_upload_form_names_its_choices_with_a_legend(hr_client):
    page = hr_client.get("/roster/import/").content.decode()
    assert 'for=""' not in page and "<legend>取り込み方法</legend>" in page


def test_template_downloads_in_both_languages(hr_client):
    ja = hr_client.get("/roster/import/template.csv?lang=ja").content.decode("utf-8-sig")
    en = hr_client.get("/roster/import/template.csv?lang=en").content.decode("utf-8-sig")
    assert ja.startswith("社員番号,氏名,フリガナ,生年月日") and en.startswith("employee_number,name,kana,birth_date")


def test_nav_shows_the_import_link_to_roster_managers_only(hr_client, client, world):
    assert b"nav-roster-import" in hr_client.get("/").content


@pytest.mark.parametrize(
    "url",
    ["/roster/import/", "/roster/import/template.csv", "/api/v1/roster-imports/"],
)
def test_employee_without_roster_manage_gets_404(client, world, url):
    log_in(client, "member@a.example", TEST_PASSWORD)
    assert client.get(url).status_code == 404
    assert b"nav-roster-import" not in client.get("/").content


def test_outsider_gets_404_for_another_tenants_job(client, world, hr_admin):
    with tenant_context(world.tenant_a):
        from accounts import roster_import

        job = roster_import.roster_import_start(
            upload=io.BytesIO(roster_csv([person("Z1")])), file_name="a.csv", mode="partial",
            create_offices=False, acting_user=hr_admin, enqueue=False,
        )  # fmt: skip
    log_in(client, "outsider@b.example", ADMIN_PASSWORD)  # org_admin of tenant B: holds roster.manage there
    assert client.get("/roster/import/").status_code == 200
    for url in (f"/roster/import/{job.pk}/", f"/roster/import/{job.pk}/status/", f"/roster/import/{job.pk}/errors.csv",
                f"/api/v1/roster-imports/{job.pk}/"):  # fmt: skip
        assert client.get(url).status_code == 404, url
    assert client.post(f"/roster/import/{job.pk}/apply/").status_code == 404
    assert client.post(f"/api/v1/roster-imports/{job.pk}/apply/").status_code == 404


def test_a_departments_hr_may_not_import_for_the_whole_tenant(client, world):
    """roster.manage over one department is not enough to import: a file may name anyone in the tenant and a
    full import deactivates everyone it leaves out. Pages, API and the menu agree."""
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
    assert b"nav-roster-import" not in client.get("/").content and b"nav-checkup-import" not in client.get("/").content
    for url in ("/roster/import/", "/checkups/import/", "/api/v1/roster-imports/"):
        assert client.get(url).status_code == 404, url
    full = {"file": SimpleUploadedFile("r.csv", roster_csv([person("HRD")])), "mode": "full"}
    assert client.post("/api/v1/roster-imports/", full).status_code == 404
    with tenant_context(world.tenant_a):
        assert not Job.objects.exists()
    assert client.get("/roster/").status_code == 200  # the roster of their department they still manage


def test_upload_page_refuses_an_oversize_file_with_a_message(hr_client, settings):
    settings.ROSTER_IMPORT_MAX_BYTES = 50
    response = upload(hr_client, roster_csv([person("B1")]))
    assert response.status_code == 200 and "大きすぎます" in response.content.decode()


def test_api_upload_preview_apply(hr_client, world, django_capture_on_commit_callbacks):
    # Full mode: the HR admin lists their own entry (HR1), or the import would deactivate them too.
    rows = [person("API1"), person("API2"), person("HR1", "人事 太郎", dept="")]
    data = roster_csv(rows, header=EN, encoding="utf-8")
    with django_capture_on_commit_callbacks(execute=True):
        response = hr_client.post(
            "/api/v1/roster-imports/", {"file": SimpleUploadedFile("r.csv", data), "mode": "full"}, format="multipart"
        )
    assert response.status_code == 201, response.content
    job_id = response.json()["id"]
    preview = hr_client.get(f"/api/v1/roster-imports/{job_id}/").json()
    assert preview["state"] == "validated" and preview["can_apply"] is True
    assert preview["counts"]["added"] == 2 and preview["counts"]["deactivated"] == 3  # A0-A2 are not listed
    # as the page says it: A0's login goes too; the tenant keeps its 組織管理者 (no roster entry of theirs)
    assert preview["logins_turned_off"] == 1 and preview["leaves_no_org_admin"] is False
    assert preview["number"] == 1 and preview["new_offices"] == [] and preview["new_departments"] == []
    with CaptureQueriesContext(connection) as listing:
        listed = hr_client.get("/api/v1/roster-imports/").json()["results"][0]
    assert listed["id"] == job_id and listed["counts"]["deactivated"] == 3
    job_reads = [q["sql"] for q in listing.captured_queries if 'FROM "healthapp_job"' in q["sql"]]
    assert job_reads and not any('"errors"' in sql or '"plan"' in sql for sql in job_reads)  # not even loaded
    assert "errors" not in listed and "logins_turned_off" not in listed  # read one job at a time, above
    # Three people lose roster entry and login: the API client says it knows, as the page's tick does.
    refused = hr_client.post(f"/api/v1/roster-imports/{job_id}/apply/")
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "acknowledge_required"
    assert "3 人" in refused.json()["error"]["message"]
    assert hr_client.get(f"/api/v1/roster-imports/{job_id}/").json()["state"] == "validated"
    with django_capture_on_commit_callbacks(execute=True):
        applied = hr_client.post(
            f"/api/v1/roster-imports/{job_id}/apply/", {"acknowledge": True}, content_type="application/json"
        )
    assert applied.status_code == 202, applied.content
    progress = hr_client.get(f"/api/v1/roster-imports/{job_id}/progress/")
    assert progress.json()["state"] == "done", progress.content
    again = hr_client.post(f"/api/v1/roster-imports/{job_id}/apply/")
    assert again.status_code == 400 and again.json()["error"]["code"] == "not_applicable"
    # The error report as the schema documents it (text/csv): asked for by that type, not refused with 406.
    report = hr_client.get(f"/api/v1/roster-imports/{job_id}/errors/", HTTP_ACCEPT="text/csv")
    assert report.status_code == 200 and report["Content-Type"].startswith("text/csv")


def test_full_mode_preview_warns_the_uploader_who_would_lock_themself_out(
    hr_client, world, django_capture_on_commit_callbacks
):
    def preview(rows) -> str:
        with django_capture_on_commit_callbacks(execute=True):
            response = upload(hr_client, roster_csv(rows), mode="full")
        return hr_client.get(response.url).content.decode()

    everyone_but_me = [person(f"A{i}", office="", dept="") for i in range(3)]
    page = preview(everyone_but_me)
    assert 'data-testid="job-deactivates-uploader"' in page and "あなたの名簿とログインも無効化されます" in page
    page = preview([*everyone_but_me, person("HR1", "人事 太郎", office="", dept="")])
    assert 'data-testid="job-deactivates-uploader"' not in page and 'data-count="deactivated">0<' in page


def test_a_large_upload_never_touches_local_disk_in_clear(hr_client, world, monkeypatch):
    from django.core.files import uploadhandler

    spooled = []
    real_new_file = uploadhandler.TemporaryFileUploadHandler.new_file

    def new_file(self, *args, **kwargs):
        spooled.append(args)
        return real_new_file(self, *args, **kwargs)

    monkeypatch.setattr(uploadhandler.TemporaryFileUploadHandler, "new_file", new_file)
    data = roster_csv([person(f"L{i:05d}", email=f"large{i}@example.com") for i in range(40_000)])
    assert len(data) > 3 * 2**20  # over Django's default 2.5 MB, above which it writes a temporary file
    assert upload(hr_client, data).status_code == 302
    assert not spooled
    with tenant_context(world.tenant_a):
        assert Job.objects.get().file_size == len(data)


def test_an_upload_over_the_memory_limit_is_refused_without_touching_the_disk(hr_client, world, settings, monkeypatch):
    """Django would spool it to a temporary file in clear before any importer could refuse it."""
    from django.core.files import uploadhandler

    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 3 * 2**20  # the largest import limit + 1 MB
    settings.ROSTER_IMPORT_MAX_BYTES = 2**20  # the roster's own limit is the one to name
    spooled = []
    monkeypatch.setattr(uploadhandler.TemporaryFileUploadHandler, "new_file", lambda *a, **k: spooled.append(a))
    data = roster_csv([person(f"BIG{i:05d}") for i in range(50_000)])  # ~3.3 MB
    assert len(data) > settings.FILE_UPLOAD_MAX_MEMORY_SIZE
    response = upload(hr_client, data)
    page = response.content.decode()
    assert response.status_code == 200 and "ファイルが大きすぎます（上限 1 MB）" in page
    assert "この項目は必須です" not in page  # the file was sent: only too large
    assert spooled == []
    with tenant_context(world.tenant_a):
        assert not Job.objects.exists()


def test_the_api_refuses_an_upload_over_the_memory_limit_as_too_large_not_as_missing(hr_client, world, settings):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 2**20
    settings.ROSTER_IMPORT_MAX_BYTES = 2**20
    data = roster_csv([person(f"BIG{i:05d}") for i in range(20_000)])
    assert len(data) > settings.FILE_UPLOAD_MAX_MEMORY_SIZE
    refused = hr_client.post("/api/v1/roster-imports/", {"file": SimpleUploadedFile("r.csv", data), "mode": "partial"})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "file_too_large"
    assert "1 MB" in refused.json()["error"]["message"]
    with tenant_context(world.tenant_a):
        assert not Job.objects.exists()


def test_the_api_preview_gives_each_errors_reason(hr_client, world, django_capture_on_commit_callbacks):
    data = roster_csv([person("API1"), person("API2", birth="R6.2.30")])
    with django_capture_on_commit_callbacks(execute=True):
        created = hr_client.post("/api/v1/roster-imports/", {"file": SimpleUploadedFile("r.csv", data)})
    (error,) = hr_client.get(f"/api/v1/roster-imports/{created.json()['id']}/").json()["errors"]
    assert (error["row"], error["column"], error["code"]) == (3, "birth_date", "date_invalid")
    assert error["message"] == roster_import.error_message("date_invalid") == "存在しない日付です。"
    assert "R6.2.30" not in str(error)  # where and why, never the value


def test_the_api_says_a_missing_file_is_missing_whatever_the_body(hr_client, world):
    form = hr_client.post("/api/v1/roster-imports/", "mode=partial", content_type="application/x-www-form-urlencoded")
    multipart = hr_client.post("/api/v1/roster-imports/", {"mode": "partial"})
    for refused in (form, multipart):  # a script that forgot the file learns that, not "unsupported media type"
        assert refused.status_code == 400 and "file" in refused.json()["error"]["details"], refused.content


def test_an_uploads_file_name_is_shown_to_its_uploader_only(hr_client, world):
    """A file name may name a person; another roster manager sees that there was an import, not its name."""
    from django.test import Client

    response = upload(hr_client, roster_csv([person("N1")]))
    assert response.status_code == 302
    assert "名簿.csv" in hr_client.get("/roster/import/").content.decode()
    assert "名簿.csv" in hr_client.get(response.url).content.decode()
    other = Client()
    assert log_in(other, "admin@a.example", TEST_PASSWORD + "!x").status_code == 302  # 組織管理者: roster.manage
    listing = other.get("/roster/import/").content.decode()
    assert "名簿.csv" not in listing and 'data-testid="file-name-withheld"' in listing
    assert "名簿.csv" not in other.get(response.url).content.decode()
    assert "（他の担当者のファイル）" in listing and "運用担当者" not in listing
    # An operator's manage.py import_roster has no uploader: said as such, not as another manager's file.
    with tenant_context(world.tenant_a):
        roster_import.roster_import_start(
            upload=io.BytesIO(roster_csv([person("N2")])), file_name="ops.csv", mode="partial", create_offices=False,
            acting_user=None, enqueue=False,
        )  # fmt: skip
    listing = hr_client.get("/roster/import/").content.decode()
    assert "（運用担当者のコマンドによる取り込み）" in listing and "ops.csv" not in listing


def test_an_uploads_file_name_is_stored_sealed(hr_client, world):
    """The name is personal data as much as the file: the job's column holds ciphertext only."""
    from django.db import connection

    response = upload(hr_client, roster_csv([person("N1")]))
    job_id = int(response.url.rstrip("/").rsplit("/", 1)[1])
    with tenant_context(world.tenant_a), connection.cursor() as cursor:
        cursor.execute("SELECT file_name FROM healthapp_job WHERE id = %s", [job_id])
        (stored,) = cursor.fetchone()
        assert "名簿".encode() not in bytes(stored) and "名簿.csv".encode("utf-16-le") not in bytes(stored)
        assert Job.objects.get(pk=job_id).file_name == "名簿.csv"
    assert "名簿.csv" in hr_client.get(response.url).content.decode()


def test_the_upload_page_offers_clearing_blank_cells_and_the_preview_says_which(hr_client, world):
    page = hr_client.get("/roster/import/").content.decode()
    assert "空欄のセルで登録済みの値を消す" in page and "空欄のセルは登録済みの値をそのまま残します" in page
    kept = upload(hr_client, roster_csv([person("N1")]))
    assert "登録済みの値を残す" in hr_client.get(kept.url).content.decode()
    cleared = upload(hr_client, roster_csv([person("N1")]), clear_blanks="on")
    with tenant_context(world.tenant_a):
        assert Job.objects.get(pk=int(cleared.url.rstrip("/").rsplit("/", 1)[1])).options["clear_blanks"] is True
    assert "登録済みの値を消す" in hr_client.get(cleared.url).content.decode()


def test_a_full_file_refused_for_its_errors_does_not_read_as_awaiting_confirmation(
    hr_client, world, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):  # the validation task, eager
        upload(hr_client, roster_csv([person("N1"), person("N2", birth="bad")]), mode="full")
    history = hr_client.get("/roster/import/").content.decode()
    assert "反映できません（ファイルを直して再アップロード）" in history and "確認待ち" not in history


def test_a_preview_that_changes_nothing_says_so(hr_client, world, django_capture_on_commit_callbacks):
    data = roster_csv([person("Q1")])
    with django_capture_on_commit_callbacks(execute=True):
        first = upload(hr_client, data)
    assert 'data-testid="job-no-changes"' not in hr_client.get(first.url).content.decode()  # one to add
    with tenant_context(world.tenant_a):
        job = Job.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        hr_client.post(f"/roster/import/{job.pk}/apply/")
        again = upload(hr_client, data)
    page = hr_client.get(again.url).content.decode()
    assert 'data-count="unchanged">1<' in page
    assert "このファイルで名簿が変わるところはありません。反映しても、名簿は今のままです。" in page
