"""The demo HR admin imports a roster in the browser: template, CP932 upload, preview, apply, progress,
error report; and the progress bar follows a job that a worker is applying."""

from __future__ import annotations

import csv
import io
import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.test_login_journeys import click_and_wait, enrol_totp, submit_login, watch_csp

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("private_storage")]


def log_in_hr_admin(page: Page, live_server, demo_logins) -> str:
    account = demo_logins[("demo-corp", "hr_admin")]
    page.goto("/accounts/login/")
    submit_login(page, account.email, account.password)
    enrol_totp(page, live_server)
    return account.email


def test_hr_admin_uploads_a_cp932_roster_previews_applies_and_downloads_the_error_report(
    page: Page, live_server, demo_logins, screenshot_dir
):
    from accounts.models import Member, User
    from accounts.selectors import member_get_by_employee_number
    from tenants.context import tenant_context

    csp = watch_csp(page)
    log_in_hr_admin(page, live_server, demo_logins)
    page.get_by_test_id("nav-roster-import").click()
    expect(page.get_by_role("heading", name="名簿の取り込み", exact=True)).to_be_visible()

    # The template, as published (Japanese headers), filled in like Excel in Japan saves it: CP932.
    with page.expect_download() as download_info:
        page.get_by_test_id("template-ja").click()
    header = next(csv.reader(io.StringIO(open(download_info.value.path(), encoding="utf-8-sig").read())))
    assert header[:4] == ["社員番号", "氏名", "フリガナ", "生年月日"]
    rows = [
        {
            "社員番号": "N9001",
            "氏名": "髙橋 﨑子",
            "フリガナ": "タカハシ サキコ",
            "生年月日": "平成元年5月1日",  # 元年, the first year of an era
            "性別": "女",
        },
        {"社員番号": "N9002", "氏名": "渡辺 太郎", "フリガナ": "ワタナベ タロウ", "生年月日": "S55.2.3", "性別": "男"},
        {"社員番号": "N9003", "氏名": '=HYPERLINK("x")', "生年月日": "H31.5.1"},
    ]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    page.get_by_label("名簿ファイル（CSV）").set_input_files(
        {"name": "名簿.csv", "mimeType": "text/csv", "buffer": buffer.getvalue().encode("cp932")}
    )
    click_and_wait(page, "アップロードして検証")

    # The preview: two to add, one row in error (row 4: two reasons), nothing written yet.
    diff = page.get_by_test_id("job-diff")
    expect(diff.locator('[data-count="added"]')).to_have_text("2")
    expect(diff.locator('[data-count="errors"]')).to_have_text("1")
    errors = page.get_by_test_id("job-errors")
    expect(errors.locator('tr[data-row="4"]')).to_have_count(2)
    expect(errors).not_to_contain_text("HYPERLINK")
    user = User.objects.select_related("tenant").get(email=demo_logins[("demo-corp", "hr_admin")].email)
    with tenant_context(user.tenant):
        assert member_get_by_employee_number("N9001") is None
    page.screenshot(path=str(screenshot_dir / "roster-import-preview.png"), full_page=True)

    click_and_wait(page, "反映する")
    expect(page.get_by_test_id("job-state")).to_have_text("完了")
    expect(page.get_by_test_id("job-percent")).to_have_text("100%")
    assert page.get_by_test_id("job-progress").get_attribute("value") == "100"
    expect(page.get_by_test_id("job-applied").locator('[data-count="added"]')).to_have_text("2")
    page.screenshot(path=str(screenshot_dir / "roster-import-done.png"), full_page=True)

    with page.expect_download() as download_info:
        page.get_by_test_id("job-error-report").click()
    report = open(download_info.value.path(), encoding="utf-8-sig").read()
    assert re.search(r"^4,氏名,formula,", report, re.M) and re.search(r"^4,生年月日,date_outside_era,", report, re.M)
    assert "HYPERLINK" not in report

    with tenant_context(user.tenant):
        member = member_get_by_employee_number("N9001")
        assert member.name == "髙橋 﨑子" and member.is_active
        assert Member.objects.filter(pk=member.pk).values_list("name", flat=True).get() != "髙橋 﨑子"
    assert csp == []


def test_the_progress_bar_follows_a_job_being_applied_and_reloads_when_done(page: Page, live_server, demo_logins):
    from accounts import roster_import
    from accounts.models import User
    from healthapp.models import Job
    from tenants.context import tenant_context

    csp = watch_csp(page)
    email = log_in_hr_admin(page, live_server, demo_logins)
    user = User.objects.select_related("tenant").get(email=email)
    data = "社員番号,氏名\r\n" + "".join(f"P{i},進捗 {i}\r\n" for i in range(30))
    with tenant_context(user.tenant):
        job = roster_import.roster_import_start(
            upload=io.BytesIO(data.encode("cp932")), file_name="p.csv", mode="partial", create_offices=False,
            acting_user=user, enqueue=False,
        )  # fmt: skip
        roster_import.roster_import_validate(job_id=job.pk)
        # As a worker would leave it between two chunks.
        Job.objects.filter(pk=job.pk).update(state=Job.State.APPLYING, rows_done=12)
    page.goto(f"/roster/import/{job.pk}/")
    expect(page.get_by_test_id("job-percent")).to_have_text("40%")
    with tenant_context(user.tenant):
        Job.objects.filter(pk=job.pk).update(rows_done=27)
    expect(page.get_by_test_id("job-percent")).to_have_text("90%")  # polled, no reload
    expect(page.get_by_test_id("job-rows-done")).to_have_text("27")
    with tenant_context(user.tenant):
        Job.objects.filter(pk=job.pk).update(state=Job.State.DONE, rows_done=30)
    expect(page.get_by_test_id("job-state")).to_have_text("完了")  # reloaded by the script
    expect(page.get_by_test_id("job-percent")).to_have_text("100%")
    assert csp == []


def test_a_file_being_checked_shows_a_moving_bar_and_then_its_preview(page: Page, live_server, demo_logins):
    from accounts import roster_import
    from accounts.models import User
    from tenants.context import tenant_context

    csp = watch_csp(page)
    email = log_in_hr_admin(page, live_server, demo_logins)
    user = User.objects.select_related("tenant").get(email=email)
    data = "社員番号,氏名\r\n" + "".join(f"C{i},検証 {i}\r\n" for i in range(3))
    with tenant_context(user.tenant):
        job = roster_import.roster_import_start(
            upload=io.BytesIO(data.encode("cp932")), file_name="c.csv", mode="partial", create_offices=False,
            acting_user=user, enqueue=False,
        )  # fmt: skip
    page.goto(f"/roster/import/{job.pk}/")
    expect(page.get_by_test_id("job-checking")).to_be_visible()
    assert page.get_by_test_id("job-progress").get_attribute("value") is None  # indeterminate, not "0%"
    with tenant_context(user.tenant):
        roster_import.roster_import_validate(job_id=job.pk)  # as the worker would, meanwhile
    expect(page.get_by_test_id("job-diff")).to_be_visible()  # reloaded by the script into the preview
    expect(page.get_by_test_id("job-state")).to_have_text("確認待ち")
    assert csp == []
