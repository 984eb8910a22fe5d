"""The demo HR admin reads the audit log in the browser, in JST, filters it and downloads an export."""

from __future__ import annotations

import csv
import io
import re
import zoneinfo

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from tests.e2e.test_login_journeys import click_and_wait, enrol_totp, submit_login

pytestmark = pytest.mark.e2e

JST = zoneinfo.ZoneInfo("Asia/Tokyo")


def test_hr_admin_finds_their_login_in_jst_filters_and_downloads_an_export(
    page: Page, live_server, demo_logins, screenshot_dir
):
    from accounts.models import User
    from audit.models import AuditEvent
    from audit.services import chain_scope

    account = demo_logins[("demo-corp", "hr_admin")]
    page.goto("/accounts/login/")
    submit_login(page, account.email, account.password)
    enrol_totp(page, live_server)

    page.get_by_test_id("nav-audit").click()
    expect(page).to_have_url(live_server.url + "/audit/")
    expect(page.get_by_role("heading", name="監査ログ", exact=True)).to_be_visible()

    user = User.objects.select_related("tenant").get(email=account.email)
    with chain_scope(user.tenant):
        login = AuditEvent.objects.filter(action="auth.login.succeeded", actor_id=user.pk).latest("seq")
    shown = f"{login.occurred_at.astimezone(JST):%Y-%m-%d %H:%M:%S} JST"
    my_login = page.locator('[data-testid="audit-event"][data-action="auth.login.succeeded"]').first
    expect(my_login.get_by_test_id("occurred-at")).to_have_text(shown)
    expect(my_login).to_contain_text(f"#{user.pk} hr_admin")
    page.screenshot(path=str(screenshot_dir / "audit-log.png"), full_page=True)

    # Filter by action: only logins remain.
    page.get_by_label("操作", exact=True).fill("auth.login.succeeded")
    click_and_wait(page, "絞り込む")
    rows = page.get_by_test_id("audit-event")
    expect(rows.first).to_be_visible()
    assert set(rows.evaluate_all("els => els.map(e => e.dataset.action)")) == {"auth.login.succeeded"}

    # The disclosure export of today, as CSV.
    today = timezone.localdate().isoformat()
    export = page.get_by_test_id("audit-export")
    export.get_by_label("開始日").fill(today)
    export.get_by_label("終了日").fill(today)
    with page.expect_download() as download_info:
        export.get_by_role("button", name="ダウンロード", exact=True).click()
    download = download_info.value
    assert re.fullmatch(r"audit-\d{8}-\d{8}\.csv", download.suggested_filename)
    rows_csv = list(csv.DictReader(io.StringIO(open(download.path(), encoding="utf-8-sig").read())))
    assert any(r["action"] == "auth.login.succeeded" and r["actor_id"] == str(user.pk) for r in rows_csv)
    assert all(r["occurred_at_jst"].endswith("+09:00") for r in rows_csv)

    # The export is itself in the log.
    page.goto("/audit/")
    expect(page.locator('[data-testid="audit-event"][data-action="audit.exported"]').first).to_contain_text(
        f"#{user.pk} hr_admin"
    )
