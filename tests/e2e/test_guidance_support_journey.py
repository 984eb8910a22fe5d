"""特定保健指導の実施記録 in the browser: the demo 健保's 保健師 goes from 特定健診の受診率と階層化 to the list of
特定保健指導の対象者, narrows it to 未実施, opens the first person, records the 初回面接 (実施中), is told beside the
date that a 実績評価 less than 3 months after it is too early (what was typed stays), records the 実績評価 (終了),
and finds one more 終了者 in the summary's 合計 row. A recorded guidance is taken back (取消) only after opening
its confirmation, and the person is 未実施 again. On a 320 px phone a person's page never scrolls sideways.

The people, dates and figures come from ``checkups.selectors`` run against the live server's database (the demo
seed), not from constants: the demo may change, the pages must keep telling what the selectors say.

Each test seeds the demo again (``demo_logins``): ``live_server`` makes every test transactional, and the flush
after each one empties the database, so a seed shared by the module would be gone by the second test.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.e2e.test_guidance_journey import _log_in, _total_row
from tests.e2e.test_login_journeys import watch_csp

pytestmark = pytest.mark.e2e

SUMMARY_PATH = "/checkups/guidance/"
TARGETS_PATH = "/checkups/guidance/targets/"
SUMMARY_TITLE = "特定健診の受診率と階層化"
TARGETS_TITLE = "特定保健指導の対象者"
DEMO_YEAR = 2025  # the demo 健保's latest fiscal year with checkups: the pages open on it
PHONE = {"width": 320, "height": 800}
# What a 保健師 reads, written out (not taken from the code).
ENDED_ON_LABEL = "実績評価日（途中終了の場合は終了日）"
RECORDED = "特定保健指導の実施状況を記録しました。"
WITHDRAWN = "特定保健指導の記録を取り消しました。"


def _nurse(account):
    from accounts.models import User

    return User.objects.select_related("tenant").get(email=account.email)


def _summary_total(nurse):
    """The 合計 row of 特定健診の受診率と階層化 as the selectors count it (the page's default year)."""
    from checkups import selectors
    from tenants.context import tenant_context

    with tenant_context(nurse.tenant):
        summary = selectors.guidance_summary(user=nurse)
    return summary.fiscal_year, summary.rows[-1]


def _targets(nurse, status: str = ""):
    """特定保健指導の対象者 of the default year as the selectors list them, narrowed to ``status`` if given."""
    from checkups import selectors
    from tenants.context import tenant_context

    with tenant_context(nurse.tenant):
        found = selectors.guidance_targets(user=nurse, status=status)
        entries = list(found.page)
    assert not found.page.has_other_pages()  # the demo's targets fit on one page
    return found, entries


def _guidance(nurse, record_id: int):
    """One checkup's 特定保健指導 as the selectors read it (level, the state it is in, every entry)."""
    from checkups import selectors
    from tenants.context import tenant_context

    with tenant_context(nurse.tenant):
        return selectors.guidance_record(user=nurse, record_id=record_id)


def _guidance_cells(page: Page) -> dict[str, Locator]:
    """The 合計 row's cells under the 特定保健指導 group, by their column headers.

    The first four headers span both header rows (区分 is the row header, then 対象者, 受診者, 受診率); the second
    row names the columns after them, the 階層化 levels then the 特定保健指導 group, so the k-th header of the
    second row heads the (3 + k)-th cell of a body row, up to the 服薬中 column that spans both rows again.
    """
    second = page.get_by_test_id("guidance-summary").locator("thead tr").nth(1).locator("th").all_inner_texts()
    names = ["対象者", "利用者（初回面接）", "終了者", "実施率（%）"]
    start = second.index("利用者（初回面接）") - 1
    assert second[start : start + 4] == names, second  # the 特定保健指導 group, in this order
    cells = _total_row(page).locator("td")
    return {name: cells.nth(3 + start + i) for i, name in enumerate(names)}


def _target_row(page: Page, name: str) -> Locator:
    rows = page.get_by_test_id("guidance-targets").get_by_test_id("target-row")
    return rows.filter(has=page.get_by_role("link", name=name, exact=True))


def _save(page: Page) -> None:
    with page.expect_navigation():
        page.get_by_test_id("guidance-save").click()


def _rate(value: float | None) -> str:
    return "—" if value is None else str(value)


def test_health_staff_records_the_first_interview_then_the_evaluation_and_the_summary_counts_one_more_completed(
    page: Page, live_server, demo_logins, screenshot_dir
):
    from django.utils import timezone

    from checkups import selectors

    account = demo_logins[("demo-kenpo", "health_staff")]
    nurse = _nurse(account)
    year, before = _summary_total(nurse)
    everyone_found, everyone = _targets(nurse)
    waiting_found, waiting = _targets(nurse, "none")
    # The demo's premises: 2025 is shown, it has targets, and one of them has not started yet.
    assert year == DEMO_YEAR
    assert before.targeted == len(everyone) == everyone_found.page.paginator.count > 0
    assert waiting_found.counts["none"] == len(waiting) > 0
    target = waiting[0]  # the first row of the 未実施 list: the earliest checkup
    name, level, exam_date = target.member.name, target.level, target.exam_date
    assert level in selectors.GUIDANCE_TARGETED and target.support is None
    started = exam_date + dt.timedelta(days=21)  # the 初回面接, three weeks after the checkup
    evaluation = selectors.guidance_evaluation_from(started)  # the first day the 実績評価 may be held
    too_early = evaluation - dt.timedelta(days=1)
    assert started < too_early < evaluation <= timezone.localdate()  # every date lies in the past
    completed_rate = round(100 * (before.completed + 1) / before.targeted, 1)

    csp = watch_csp(page)
    _log_in(page, live_server, account)
    with page.expect_navigation():
        page.get_by_test_id("nav-guidance-summary").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"{SUMMARY_TITLE}（{DEMO_YEAR}年度）")
    cells = _guidance_cells(page)
    expect(cells["対象者"]).to_contain_text(str(before.targeted))  # with its share of the examined: 4 (36.4%)
    expect(cells["利用者（初回面接）"]).to_have_text(str(before.started))
    expect(cells["終了者"]).to_have_text(str(before.completed))
    expect(cells["実施率（%）"]).to_have_text(_rate(before.completion_rate))

    # --- The list of targets, narrowed to those not started. ------------------------------------------
    link = page.get_by_test_id("targets-link").get_by_role("link")
    expect(link).to_have_text(f"{TARGETS_TITLE} {before.targeted} 人の一覧と実施状況")
    with page.expect_navigation():
        link.click()
    expect(page).to_have_url(re.compile(re.escape(live_server.url + TARGETS_PATH) + rf"\?year={DEMO_YEAR}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(f"{TARGETS_TITLE}（{DEMO_YEAR}年度）")
    rows = page.get_by_test_id("guidance-targets").get_by_test_id("target-row")
    expect(rows.locator("td:first-child")).to_have_text([entry.member.name for entry in everyone])  # oldest first
    filters = page.get_by_test_id("status-filter")
    expect(filters.locator("[aria-current=page]")).to_have_text(f"すべて {len(everyone)}")
    with page.expect_navigation():
        filters.get_by_role("link", name=f"未実施 {len(waiting)}", exact=True).click()
    expect(page).to_have_url(re.compile(rf"\?year={DEMO_YEAR}&status=none$"))
    expect(filters.locator("[aria-current=page]")).to_have_text(f"未実施 {len(waiting)}")
    expect(rows.locator("td:first-child")).to_have_text([entry.member.name for entry in waiting])
    expect(rows.get_by_test_id("target-status")).to_have_text(["未実施"] * len(waiting))

    # --- The person's page: 未実施, nothing to take back, no history yet. -----------------------------
    with page.expect_navigation():
        rows.first.get_by_role("link", name=name, exact=True).click()
    expect(page).to_have_url(f"{live_server.url}{TARGETS_PATH}{target.record_id}/?status=none")  # the filter kept
    expect(page.get_by_role("heading", level=1)).to_have_text(f"{name}（{exam_date.isoformat()}）")
    expect(page.get_by_test_id("guidance-level")).to_have_text(f"支援の区分: {level} · 健診結果を見る")
    status = page.get_by_test_id("guidance-status")
    expect(status).to_have_text("実施状況: 未実施")
    expect(page.get_by_test_id("guidance-withdraw")).to_have_count(0)
    expect(page.get_by_test_id("guidance-history")).to_have_count(0)

    # --- 1. The 初回面接: 実施中 (the form's first choice), its date and form. -----------------------------
    form = page.get_by_test_id("guidance-form")
    in_progress = form.get_by_role("radio", name="実施中", exact=True)
    expect(in_progress).to_be_checked()
    form.get_by_label("初回面接日", exact=True).fill(started.isoformat())
    form.get_by_label("初回面接の形態", exact=True).select_option(label="グループ支援")
    _save(page)
    expect(page).to_have_url(f"{live_server.url}{TARGETS_PATH}{target.record_id}/?status=none")  # the filter kept
    expect(page.locator("ul.messages li")).to_have_text(RECORDED)
    expect(status).to_have_text(
        f"実施状況: 実施中 初回面接 {started.isoformat()}（グループ支援） "
        f"実績評価は {evaluation.isoformat()} 以降（初回面接から3か月以上）"
    )
    history = page.get_by_test_id("guidance-history").locator("tbody tr")
    expect(history).to_have_count(1)
    expect(history.first.locator("td").nth(1)).to_have_text(f"実施中（{level}）")
    expect(history.first.locator("td").nth(2)).to_have_text(f"{started.isoformat()}（グループ支援）")
    recorded = _guidance(nurse, target.record_id)
    assert recorded.current is not None and recorded.current.status == "in_progress"
    assert (recorded.current.started_on, recorded.current.method) == (started, "group")

    # --- 2. A 実績評価 a day short of 3 months: refused beside its date, the form as typed. -----------------
    form.get_by_role("radio", name="終了", exact=True).check()
    ended_on = form.get_by_label(ENDED_ON_LABEL, exact=True)
    ended_on.fill(too_early.isoformat())
    form.get_by_label("腹囲2cm・体重2kg減", exact=True).select_option(label="達成")
    _save(page)
    expect(page).to_have_url(f"{live_server.url}{TARGETS_PATH}{target.record_id}/?status=none")  # the filter kept
    error = f"実績評価日は初回面接日から3か月以上後（{evaluation.isoformat()} 以降）の日付を指定してください。"
    ended_field = form.locator("div.field").filter(has=page.get_by_label(ENDED_ON_LABEL, exact=True))
    expect(ended_field.locator(".field-error")).to_have_text(error)
    expect(form.locator(".field-error")).to_have_count(1)  # beside that field only
    expect(ended_on).to_have_attribute("aria-invalid", "true")
    expect(ended_on).to_be_focused()
    expect(page.locator("ul.messages")).to_have_count(0)
    expect(form.get_by_role("radio", name="終了", exact=True)).to_be_checked()
    expect(form.get_by_label("初回面接日", exact=True)).to_have_value(started.isoformat())
    expect(form.get_by_label("初回面接の形態", exact=True)).to_have_value("group")
    expect(ended_on).to_have_value(too_early.isoformat())
    expect(form.get_by_label("腹囲2cm・体重2kg減", exact=True)).to_have_value("true")
    expect(status).to_contain_text("実施状況: 実施中")  # nothing was written
    expect(history).to_have_count(1)
    page.screenshot(path=str(screenshot_dir / "guidance-support-too-early.png"), full_page=True)
    assert _guidance(nurse, target.record_id).current.pk == recorded.current.pk

    # --- 3. The 実績評価 on the first day it may be held: 終了. ------------------------------------------
    ended_on.fill(evaluation.isoformat())
    _save(page)
    expect(page.locator("ul.messages li")).to_have_text(RECORDED)
    expect(status).to_have_text(
        f"実施状況: 終了 初回面接 {started.isoformat()}（グループ支援）・実績評価 {evaluation.isoformat()}"
    )
    expect(page.get_by_test_id("evaluation-from")).to_have_count(0)
    expect(history).to_have_count(2)
    expect(history.first.locator("td").nth(1)).to_have_text(f"終了（{level}）")
    expect(history.first.locator("td").nth(3)).to_have_text(evaluation.isoformat())
    expect(history.first.locator("td").nth(4)).to_have_text("達成")
    expect(history.nth(1).locator("td").nth(1)).to_have_text(f"実施中（{level}）")  # the earlier entry stays
    finished = _guidance(nurse, target.record_id).current
    assert finished is not None and (finished.status, finished.ended_on, finished.goal_met) == (
        "completed",
        evaluation,
        True,
    )
    page.screenshot(path=str(screenshot_dir / "guidance-support-completed.png"), full_page=True)

    # --- Back to the list (終了 with the evaluation's date), then to the summary: one more 終了者. --------
    with page.expect_navigation():
        page.get_by_role("link", name=f"‹ {TARGETS_TITLE}", exact=True).click()
    # The way back keeps the 未実施 filter the person was opened from: they are no longer in it.
    expect(page).to_have_url(re.compile(rf"\?year={DEMO_YEAR}&status=none$"))
    expect(filters.locator("[aria-current=page]")).to_have_text(f"未実施 {len(waiting) - 1}")
    expect(_target_row(page, name)).to_have_count(0)
    with page.expect_navigation():
        filters.get_by_role("link", name=f"すべて {len(everyone)}", exact=True).click()
    expect(_target_row(page, name).get_by_test_id("target-status")).to_have_text(
        f"終了（実績評価 {evaluation.isoformat()}）"
    )
    with page.expect_navigation():
        page.get_by_role("link", name=f"‹ {SUMMARY_TITLE}", exact=True).click()
    expect(page).to_have_url(re.compile(re.escape(live_server.url + SUMMARY_PATH) + rf"\?year={DEMO_YEAR}$"))
    _year, after = _summary_total(nurse)
    assert (after.targeted, after.started, after.completed) == (
        before.targeted,
        before.started + 1,
        before.completed + 1,
    )
    assert after.completion_rate == completed_rate
    cells = _guidance_cells(page)
    expect(cells["利用者（初回面接）"]).to_have_text(str(before.started + 1))
    expect(cells["終了者"]).to_have_text(str(before.completed + 1))
    expect(cells["実施率（%）"]).to_have_text(str(completed_rate))
    assert csp == []


def test_taking_back_a_record_needs_its_confirmation_opened_and_puts_the_person_back_to_not_started(
    page: Page, live_server, demo_logins
):
    account = demo_logins[("demo-kenpo", "health_staff")]
    nurse = _nurse(account)
    found, under_way = _targets(nurse, "in_progress")
    assert under_way, "the demo has no 特定保健指導 under way"  # the demo's premise
    target = under_way[0]
    entries = len(_guidance(nurse, target.record_id).history)
    assert entries >= 1

    _log_in(page, live_server, account)
    page.goto(f"{TARGETS_PATH}{target.record_id}/")
    status = page.get_by_test_id("guidance-status")
    expect(status).to_contain_text("実施状況: 実施中")

    # The 取消 button sits inside a closed confirmation: not visible until its summary is opened.
    withdraw = page.get_by_test_id("guidance-withdraw")
    expect(withdraw).to_have_count(1)
    expect(withdraw).to_be_hidden()
    confirm = page.locator("details.confirm")
    expect(confirm).not_to_have_attribute("open", "")
    confirm.locator("summary").filter(has_text="記録を取り消す").click()
    expect(withdraw).to_be_visible()
    expect(withdraw).to_have_text("取り消す")
    expect(confirm).to_contain_text("「未実施」に戻します")
    assert _guidance(nurse, target.record_id).current is not None  # opening it wrote nothing

    with page.expect_navigation():
        withdraw.click()
    expect(page.locator("ul.messages li")).to_have_text(WITHDRAWN)
    expect(status).to_have_text("実施状況: 未実施")
    expect(page.get_by_test_id("guidance-withdraw")).to_have_count(0)  # nothing left to take back
    history = page.get_by_test_id("guidance-history").locator("tbody tr")
    expect(history).to_have_count(entries + 1)  # the earlier entries stay
    expect(history.first.locator("td").nth(1)).to_have_text("取消")
    assert _guidance(nurse, target.record_id).current is None

    # The list counts the person as 未実施 again.
    page.goto(f"{TARGETS_PATH}?year={found.fiscal_year}")
    expect(_target_row(page, target.member.name).get_by_test_id("target-status")).to_have_text("未実施")
    filters = page.get_by_test_id("status-filter")
    expect(filters.get_by_role("link", name=f"未実施 {found.counts['none'] + 1}", exact=True)).to_be_visible()
    expect(filters.get_by_role("link", name=f"実施中 {found.counts['in_progress'] - 1}", exact=True)).to_be_visible()


def test_on_a_phone_a_persons_guidance_page_does_not_scroll_sideways(
    page: Page, live_server, demo_logins, screenshot_dir
):
    account = demo_logins[("demo-kenpo", "health_staff")]
    nurse = _nurse(account)
    found, done = _targets(nurse, "completed")
    assert done, "the demo has no 特定保健指導 evaluated"  # a page with the form, 取消 and a history
    target = done[0]

    _log_in(page, live_server, account)
    page.set_viewport_size(PHONE)
    page.goto(f"{TARGETS_PATH}{target.record_id}/")
    expect(page.get_by_test_id("guidance-history")).to_be_visible()
    page.locator("details.confirm summary").click()  # the confirmation open, its text and button shown
    expect(page.get_by_test_id("guidance-withdraw")).to_be_visible()

    def page_width() -> int:
        return page.evaluate("document.documentElement.scrollWidth")

    width = page_width()
    assert width <= PHONE["width"], f"the person's page is {width} px wide at {PHONE['width']} px"
    for control in page.get_by_test_id("guidance-form").locator("input, select, button").all():
        if control.is_visible():
            box = control.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    page.screenshot(path=str(screenshot_dir / "guidance-support-320.png"), full_page=True)

    # With the long refusal beside the date, still no sideways scroll.
    form = page.get_by_test_id("guidance-form")
    started = target.support.started_on
    form.get_by_label(ENDED_ON_LABEL, exact=True).fill(started.isoformat())  # the same day: far too early
    _save(page)
    expect(form.locator(".field-error")).to_contain_text("実績評価日は初回面接日から3か月以上後")
    width = page_width()
    assert width <= PHONE["width"], f"the page with an error is {width} px wide at {PHONE['width']} px"
    page.screenshot(path=str(screenshot_dir / "guidance-support-320-error.png"), full_page=True)

    # The list of targets, as cards, fits too.
    page.goto(f"{TARGETS_PATH}?year={found.fiscal_year}")
    expect(page.get_by_test_id("target-row")).to_have_count(len(_targets(nurse)[1]))
    width = page_width()
    assert width <= PHONE["width"], f"the list of targets is {width} px wide at {PHONE['width']} px"
