"""Issue 8, "Done means", in the browser: the demo HR admin imports the sample CSV shipped in the repo and
a generated MHLW XML ZIP and sees the grade distribution; the demo physician works the queue and records
就業制限; the employee sees their grades and trend charts; the HR admin sees the 就業判定 but no lab values."""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.e2e.test_login_journeys import click_and_wait, enrol_totp, submit_login, watch_csp

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("private_storage")]

SAMPLE_CSV = Path(__file__).resolve().parents[2] / "checkups" / "samples" / "sample_checkups.csv"
PROVIDER = "サンプル健診クリニック"  # the 健診機関 column of the sample file
OPINION_TEXT = "血圧と血糖の再検査を受けるまで、時間外労働は月20時間までとしてください。"
# What a user reads, written out (not taken from the code).
GRADE_EXPLAINED = {
    "A": "基準の範囲内です。",
    "B": "わずかに基準を外れていますが、日常生活に支障はありません。",
    "C": "生活習慣の見直しと、必要に応じて再検査をおすすめします。",
    "D": "医療機関で詳しい検査や治療を受けてください。",
    "E": "治療中の項目です。主治医の指示に従ってください。",
}


def _new_page(browser: Browser, live_server) -> tuple[BrowserContext, Page]:
    """A fresh profile, as the ``context`` fixture makes one: one per person in the journey."""
    context = browser.new_context(base_url=live_server.url, locale="ja-JP", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    return context, context.new_page()


def _log_in(page: Page, live_server, account, *, mfa: bool) -> None:
    page.goto("/accounts/login/")
    submit_login(page, account.email, account.password)
    if mfa:
        enrol_totp(page, live_server)
    expect(page.get_by_test_id("header-email")).to_have_text(account.email)


@contextmanager
def _screenshots_on_failure(pages: dict[str, Page], directory: Path) -> Iterator[None]:
    try:
        yield
    except BaseException:
        for name, page in pages.items():
            if not page.is_closed():
                page.screenshot(path=str(directory / f"checkups-failure-{name}.png"), full_page=True)
        raise


def _number_in_text(value: str, text: str) -> bool:
    """Whether a lab value such as 5.8 or 123 stands alone in the text (not inside 2025-05-12, 11:09 or 15.8)."""
    return re.search(rf"(?<![\d.:/\-]){re.escape(value)}(?![\d.:/\-])", text) is not None


def _queue_total(page: Page) -> int:
    """The number of records waiting, as the pager under the queue says it (全 N 件)."""
    return int(re.search(r"全 (\d+) 件", page.get_by_test_id("pager").inner_text()).group(1))


def _three_months_later(day: dt.date) -> dt.date:
    """The legal deadline for the physician's opinion, counted as a person would (5/31 → 8/31, 11/30 → 2/28)."""
    month = day.month + 2
    year, month = day.year + month // 12, month % 12 + 1
    for last_day in (day.day, 30, 29, 28):
        try:
            return dt.date(year, month, last_day)
        except ValueError:
            continue
    raise AssertionError(day)


def _upload(page: Page, *, file: dict, csv_provider: str | None = None) -> None:
    page.get_by_test_id("nav-checkup-import").click()
    expect(page.get_by_role("heading", name="健診結果の取り込み", exact=True)).to_be_visible()
    if csv_provider:
        page.get_by_label("健診機関の CSV（列の対応を使う）").check()
        page.get_by_label("列の対応（健診機関）").select_option(label=csv_provider)
    else:
        expect(page.get_by_label("特定健診 XML（1件の XML ファイルまたは ZIP 一式）")).to_be_checked()
    page.get_by_label("健診結果ファイル").set_input_files(file)
    click_and_wait(page, "アップロードして検証")


def _confirm_and_expect_done(page: Page, *, added: int) -> None:
    """The preview says what will happen and nothing is written yet; confirming applies and judges it."""
    diff = page.get_by_test_id("job-diff")
    expect(diff.locator('[data-count="added"]')).to_have_text(str(added))
    expect(diff.locator('[data-count="errors"]')).to_have_text("0")
    expect(page.get_by_test_id("job-applied")).to_have_count(0)
    click_and_wait(page, "反映する")
    expect(page.get_by_test_id("job-state")).to_have_text("完了")
    expect(page.get_by_test_id("job-percent")).to_have_text("100%")
    applied = page.get_by_test_id("job-applied")
    expect(applied.locator('[data-count="added"]')).to_have_text(str(added))
    expect(applied.locator('[data-count="judged"]')).to_have_text(str(added))


def test_checkups_from_import_to_the_physicians_restriction_seen_by_employee_and_hr(
    browser: Browser, live_server, demo_logins, screenshot_dir
):
    from accounts.models import Member, User
    from checkups import items
    from checkups.models import CheckupRecord
    from checkups.roster_sample import roster_bundle
    from tenants.context import tenant_context

    hr_account = demo_logins[("demo-corp", "hr_admin")]
    physician_account = demo_logins[("demo-corp", "physician")]
    employee_account = demo_logins[("demo-corp", "employee")]
    tenant = User.objects.select_related("tenant").get(email=hr_account.email).tenant
    with tenant_context(tenant):
        employee = Member.objects.get(user__email=employee_account.email)
        records_before = CheckupRecord.objects.count()
        zip_bytes = roster_bundle(people=20)  # the README's `python -m checkups.roster_sample`, in memory
    sample_rows = len(SAMPLE_CSV.read_text(encoding="utf-8-sig").splitlines()) - 1

    hr_context, hr = _new_page(browser, live_server)
    physician_context, physician = _new_page(browser, live_server)
    employee_context, mine = _new_page(browser, live_server)
    pages = {"hr": hr, "physician": physician, "employee": mine}
    csp = {name: watch_csp(page) for name, page in pages.items()}
    try:
        with _screenshots_on_failure(pages, screenshot_dir):
            # --- 1. The HR admin saves the sample mapping, imports the sample CSV and the MHLW ZIP. ---------
            _log_in(hr, live_server, hr_account, mfa=True)
            hr.get_by_test_id("nav-checkup-import").click()
            hr.get_by_test_id("checkup-mappings").click()
            expect(hr.get_by_test_id("checkup-mapping-list")).to_contain_text("まだ列の対応はありません。")
            hr.get_by_label("健診機関名").fill(PROVIDER)
            expect(hr.get_by_label("列の対応", exact=True)).to_have_value(re.compile(r"^社員番号,employee_number\n"))
            click_and_wait(hr, "保存")
            expect(hr.get_by_text("列の対応を保存しました。")).to_be_visible()
            expect(hr.get_by_test_id("checkup-mapping-list")).to_contain_text(PROVIDER)

            _upload(
                hr,
                file={"name": "sample_checkups.csv", "mimeType": "text/csv", "buffer": SAMPLE_CSV.read_bytes()},
                csv_provider=PROVIDER,
            )
            expect(hr.get_by_test_id("job-source")).to_have_text(f"健診機関の CSV（{PROVIDER}）")
            with tenant_context(tenant):
                assert CheckupRecord.objects.count() == records_before  # a dry run writes nothing
            hr.screenshot(path=str(screenshot_dir / "checkups-csv-preview.png"), full_page=True)
            _confirm_and_expect_done(hr, added=sample_rows)

            _upload(hr, file={"name": "demo_mhlw.zip", "mimeType": "application/zip", "buffer": zip_bytes})
            expect(hr.get_by_test_id("job-source")).to_have_text("特定健診 XML")
            _confirm_and_expect_done(hr, added=20)
            with tenant_context(tenant):
                assert CheckupRecord.objects.count() == records_before + sample_rows + 20
            hr.screenshot(path=str(screenshot_dir / "checkups-xml-done.png"), full_page=True)

            hr.get_by_role("link", name="健診の集計を見る").click()
            expect(hr.get_by_role("heading", name=re.compile(r"^健診の集計（2025年度）$"))).to_be_visible()
            distribution = hr.get_by_test_id("distribution")
            expect(distribution.locator("thead th")).to_contain_text(["人数", "A", "B", "C", "D", "E"])
            shown = distribution.locator("tbody tr").filter(has_not=hr.get_by_test_id("suppressed"))
            assert shown.count() >= 1, "every group is suppressed: the distribution shows no counts"
            # What a user would see wrong, checked here but reported together at the end (see there).
            problems: list[str] = []
            counted = 0
            for row in shown.all():
                cells = row.locator("td").all_inner_texts()
                # a number per grade, or 計 n for a grade class too small or too uniform to break down
                people, grades = int(cells[2]), [int(cell.removeprefix("計").strip()) for cell in cells[3:-3]]
                assert people >= 5
                counted += sum(grades)
                if sum(grades) != people:  # "総合判定の人数です": the grades split the people of the group
                    problems.append(f"健診の集計: grade counts {grades} do not add up to 人数 {people}: {cells}")
            assert counted > 0
            hr.screenshot(path=str(screenshot_dir / "checkups-dashboard.png"), full_page=True)

            # --- 2. The physician works the queue: oldest first, with the 3-month deadline. ---------------
            _log_in(physician, live_server, physician_account, mfa=True)
            physician.get_by_role("link", name="就業判定", exact=True).click()
            expect(physician.get_by_role("heading", name="就業判定の待ち一覧", exact=True)).to_be_visible()
            queue = physician.get_by_test_id("queue").locator("tbody tr")
            expect(queue.first.locator("a")).to_be_visible()
            rows = [row.locator("td").all_inner_texts() for row in queue.all()]
            exam_dates = [dt.date.fromisoformat(row[0]) for row in rows]
            assert exam_dates == sorted(exam_dates), "the queue is not oldest first"
            for row, exam_date in zip(rows, exam_dates, strict=True):
                assert dt.date.fromisoformat(row[4][:10]) == _three_months_later(exam_date), row  # + （期限超過）
            queued_before = _queue_total(physician)
            assert queued_before >= queue.count()
            # The queue comes a page at a time; the employee's newest waiting record (fresh from today's
            # imports, if queued) is on the latest page that lists them: look from the last page back.
            last_page = physician.get_by_role("link", name="最後 »")
            if last_page.count():
                with physician.expect_navigation():
                    last_page.click()
            mine_in_queue = queue.filter(has=physician.get_by_role("link", name=employee.name, exact=True))
            while not mine_in_queue.count() and physician.get_by_role("link", name="‹ 前へ").count():
                with physician.expect_navigation():
                    physician.get_by_role("link", name="‹ 前へ").click()
            assert mine_in_queue.count() >= 1, "the demo employee has no record waiting for the physician"
            chosen = mine_in_queue.last
            exam_date = dt.date.fromisoformat(chosen.locator("td").first.inner_text())
            with physician.expect_navigation():
                chosen.get_by_role("link", name=employee.name, exact=True).click()
            record_url = physician.url
            expect(physician.get_by_role("heading", name=f"{employee.name}（{exam_date.isoformat()}）")).to_be_visible()

            # Submitting 就業制限 without saying which restriction is refused.
            physician.get_by_label("就業制限", exact=True).check()
            physician.get_by_label("事後措置").select_option(label="精密検査")
            click_and_wait(physician, "署名して記録する")
            expect(physician.get_by_role("alert")).to_contain_text("就業制限の内容を1つ以上選んでください。")

            physician.get_by_label("就業制限", exact=True).check()
            physician.get_by_label("時間外労働の制限").check()
            physician.get_by_label("事後措置").select_option(label="精密検査")
            physician.get_by_label("意見", exact=True).fill(OPINION_TEXT)
            click_and_wait(physician, "署名して記録する")
            expect(physician.get_by_text("就業判定を記録しました。")).to_be_visible()
            expect(physician.get_by_role("heading", name="就業判定の待ち一覧", exact=True)).to_be_visible()
            assert _queue_total(physician) == queued_before - 1  # the judged record left the queue
            with tenant_context(tenant):
                record = CheckupRecord.objects.get(member=employee, exam_date=exam_date)
            expect(physician.locator(f'a[href*="/checkups/review/{record.pk}/"]')).to_have_count(0)  # ?next= or not

            # The record itself shows the signed opinion: when, what, by whom.
            physician.goto(record_url)
            signed = physician.get_by_role("heading", name="これまでの判定").locator("xpath=following-sibling::ul/li")
            expect(signed).to_have_count(1)
            expect(signed).to_contain_text(re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2} 就業制限"))
            expect(signed).to_contain_text(physician_account.email)
            physician.screenshot(path=str(screenshot_dir / "checkups-signed.png"), full_page=True)

            # --- 3. The employee sees their grades, explained, and trend charts drawn without a CDN. ------
            requests: list[str] = []
            mine.on("request", lambda request: requests.append(request.url))
            _log_in(mine, live_server, employee_account, mfa=False)
            mine.get_by_role("link", name="健診結果", exact=True).click()
            expect(mine.get_by_role("heading", name="健診結果", exact=True)).to_be_visible()
            charts = mine.get_by_test_id("charts").locator("figure")
            expect(charts.first.locator("svg")).to_be_visible()
            assert charts.count() >= 4  # weight, BMI, blood pressure, HbA1c, LDL… over the years
            expect(charts.filter(has_text="HbA1c")).to_have_count(1)
            for figure in charts.all():
                assert figure.locator("svg polyline").count() == 1
                assert figure.locator("svg circle").count() >= 2  # a trend: two years or more

            results = mine.get_by_test_id(f"results-{record.fiscal_year}")
            expect(results.first).to_be_visible()
            graded = mine.locator('[data-testid^="results-"] tbody tr').filter(has=mine.locator("span.grade"))
            assert graded.count() > 0
            bands = 0
            for row in graded.all()[:40]:
                cells = row.locator("td").all_inner_texts()
                explained, _newline, band = cells[3].partition("\n")
                assert explained == GRADE_EXPLAINED[cells[2]], cells
                assert not band or band.startswith(f"{cells[2]} の範囲（"), cells  # where the value stands
                bands += bool(band)
            assert bands > 0
            expect(mine.get_by_text("就業判定: 就業制限 / 事後措置: 精密検査")).to_have_count(1)
            # Their newest record is today's CSV row: coded answers read as the file wrote them (−, ±, +…).
            with SAMPLE_CSV.open(encoding="utf-8-sig", newline="") as sample:
                their_row = next(r for r in csv.DictReader(sample) if r["社員番号"] == employee.employee_number)
            newest = mine.locator('[data-testid^="results-"]').first
            for label in ("尿糖", "尿蛋白"):
                shown_value = newest.locator("tbody tr").filter(
                    has=mine.get_by_role("cell", name=label, exact=True)
                ).locator("td").nth(1).inner_text()  # fmt: skip
                if shown_value.strip().replace("-", "−") != their_row[label].replace("-", "−"):
                    problems.append(f"健診結果: {label} shows {shown_value!r}, the file says {their_row[label]!r}")
            mine.screenshot(path=str(screenshot_dir / "checkups-mine.png"), full_page=True)
            # On a phone (320 px) each result's explanation is read under it, not off the side of the table.
            mine.set_viewport_size({"width": 320, "height": 800})
            row = graded.first
            explained = row.locator("td").nth(3)
            explained.scroll_into_view_if_needed()
            box, name_box = explained.bounding_box(), row.locator("td").first.bounding_box()
            assert box is not None and name_box is not None and 0 <= box["x"] and box["x"] + box["width"] <= 320, box
            assert box["y"] >= name_box["y"] + name_box["height"] - 1, (box, name_box)  # under the item, not beside
            assert newest.evaluate("table => table.scrollWidth <= table.clientWidth + 1"), "the results scroll sideways"
            expect(newest.get_by_role("cell", name="尿糖", exact=True)).to_have_count(1)  # still a table to a reader
            expect(newest.get_by_role("columnheader", name="説明", exact=True)).to_have_count(1)
            mine.screenshot(path=str(screenshot_dir / "checkups-mine-320.png"), full_page=True)
            mine.set_viewport_size({"width": 1280, "height": 900})
            outside = [url for url in requests if not url.startswith(live_server.url + "/")]
            assert requests and outside == [], outside

            # --- 4. The HR admin sees the 就業判定 and follow-up, never a lab value. -----------------------
            hr.get_by_role("link", name="就業判定の確認", exact=True).click()
            expect(hr.get_by_role("heading", name="就業判定の確認", exact=True)).to_be_visible()
            row = (
                hr.get_by_test_id("conclusions")
                .locator("tbody tr")
                .filter(has=hr.get_by_role("cell", name=exam_date.isoformat(), exact=True))
                .filter(has=hr.get_by_role("cell", name=employee.name, exact=True))
            )
            expect(row).to_have_count(1)
            cells = row.locator("td")
            expect(cells.nth(0)).to_have_text(exam_date.isoformat())
            expect(cells.nth(1)).to_have_text(employee.name)
            expect(cells.nth(2)).to_have_text(employee.employee_number)  # two people may share a name
            expect(cells.nth(4)).to_have_text("就業制限")
            expect(cells.nth(6)).to_have_text("精密検査")
            hr.screenshot(path=str(screenshot_dir / "checkups-conclusions.png"), full_page=True)
            text = hr.locator("body").inner_text()
            assert OPINION_TEXT not in text  # the opinion text is the physician's, for the employee's file
            measured = {key for key, item in items.load().items.items() if item.type == "PQ"}  # not coded answers
            with tenant_context(tenant):
                record.refresh_from_db()
                lab = {item: value for item, value in record.result_values().items() if item in measured}
                values = {item: format(value.normalize(), "f") for item, value in lab.items()}
            assert {"hba1c", "ldl"} <= set(values)
            leaked = {item: value for item, value in values.items() if _number_in_text(value, text)}
            assert leaked == {}, f"lab values on the HR page: {leaked}"
            assert all(seen == [] for seen in csp.values()), csp
            restriction = cells.nth(5).inner_text().strip()
            if restriction != "時間外労働の制限":
                problems.append(f"就業判定の確認: the restriction reads {restriction!r}, not 時間外労働の制限")
            # On a phone the wide tables scroll inside themselves; the page does not scroll sideways.
            hr.set_viewport_size({"width": 400, "height": 800})
            mine.set_viewport_size({"width": 400, "height": 800})
            for page, url in ((hr, "/checkups/conclusions/"), (hr, "/checkups/dashboard/"), (hr, "/audit/"),
                              (mine, "/checkups/mine/")):  # fmt: skip
                page.goto(url)
                width = page.evaluate("document.documentElement.scrollWidth")
                if width > 400:
                    problems.append(f"{url} at 400 px: the page is {width} px wide")
            # Last, so that one run checks the whole journey and lists every such problem at once.
            assert problems == [], "\n".join(problems)
    finally:
        for context in (hr_context, physician_context, employee_context):
            context.close()
