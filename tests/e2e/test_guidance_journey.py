"""特定健診の受診率と階層化 in the browser: the demo 健保's 保健師 follows the nav link to fiscal year 2025, reads
the 合計 row's 対象者, 受診者 and 受診率, opens the 未受診者 list and comes back to the same year; on a 320 px phone
the table scrolls inside itself with the row names kept in view; an HR admin of a company has no such page.

The expected figures and names come from ``checkups.selectors`` run against the live server's database (the demo
seed), not from constants: the demo may change, the page must keep telling what the selectors count.

Each test seeds the demo again (``demo_logins``): ``live_server`` makes every test transactional, and the flush
after each one empties the database, so a seed shared by the module would be gone by the second test.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.e2e.test_login_journeys import enrol_totp, submit_login, watch_csp

pytestmark = pytest.mark.e2e

SUMMARY_PATH = "/checkups/guidance/"
UNEXAMINED_PATH = "/checkups/guidance/unexamined/"
TITLE = "特定健診の受診率と階層化"
DEMO_YEAR = 2025  # the demo 健保's latest fiscal year with checkups: the page opens on it
PHONE = {"width": 320, "height": 800}


def _log_in(page: Page, live_server, account) -> None:
    """Password, then the TOTP enrolment every privileged demo login goes through on its first login."""
    page.goto("/accounts/login/")
    submit_login(page, account.email, account.password)
    enrol_totp(page, live_server)
    expect(page.get_by_test_id("header-email")).to_have_text(account.email)


def _nurse_figures(account):
    """What the selectors count for the demo 保健師 (the page's default year), with the 未受診者 of that year."""
    from accounts.models import User
    from checkups import selectors
    from tenants.context import tenant_context

    nurse = User.objects.select_related("tenant").get(email=account.email)
    with tenant_context(nurse.tenant):
        summary = selectors.guidance_summary(user=nurse)
        found = selectors.unexamined(user=nurse, fiscal_year=summary.fiscal_year)
        names = [entry.member.name for entry in found.page]
    return summary, found, names


def _total_row(page: Page) -> Locator:
    """The 合計 row of the summary, found by its row header as a reader finds it."""
    table = page.get_by_test_id("guidance-summary")
    return table.locator("tbody tr").filter(has=page.get_by_role("rowheader", name="合計", exact=True))


def test_health_staff_reads_the_checkup_rate_and_lists_who_was_not_examined(page: Page, live_server, demo_logins):
    account = demo_logins[("demo-kenpo", "health_staff")]
    summary, found, names = _nurse_figures(account)
    overall = summary.rows[-1]
    # The demo's premises: 2025 is shown, someone due was not examined, and every one of them fits on one page.
    assert summary.fiscal_year == DEMO_YEAR
    assert 0 < overall.examined < overall.eligible and overall.rate is not None and overall.rate < 100
    assert found.page.paginator.count == overall.eligible - overall.examined == len(names) > 0
    assert not found.page.has_other_pages()

    csp = watch_csp(page)
    _log_in(page, live_server, account)
    with page.expect_navigation():
        page.get_by_test_id("nav-guidance-summary").click()
    expect(page).to_have_url(live_server.url + SUMMARY_PATH)
    expect(page.get_by_role("heading", level=1)).to_have_text(f"{TITLE}（{DEMO_YEAR}年度）")

    # The first header row names the columns the 合計 row's first three cells fall under.
    headers = page.get_by_test_id("guidance-summary").locator("thead tr").first.locator("th")
    expect(headers.nth(0)).to_have_text("区分")
    expect(headers.nth(1)).to_have_text("対象者")
    expect(headers.nth(2)).to_have_text("受診者")
    expect(headers.nth(3)).to_have_text("受診率（%）")
    total = _total_row(page)
    expect(total).to_have_count(1)
    cells = total.locator("td")
    expect(cells.nth(0)).to_have_text(str(overall.eligible))
    expect(cells.nth(1)).to_have_text(str(overall.examined))
    expect(cells.nth(2)).to_have_text(str(overall.rate))

    # The link says how many were due and not examined, and lists exactly them, by name.
    link = page.get_by_role("link", name=f"未受診の対象者 {len(names)} 人の一覧", exact=True)
    with page.expect_navigation():
        link.click()
    expect(page).to_have_url(re.compile(re.escape(live_server.url + UNEXAMINED_PATH) + rf"\?year={DEMO_YEAR}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(f"特定健診の未受診者（{DEMO_YEAR}年度）")
    rows = page.get_by_test_id("unexamined").locator("tbody tr")
    expect(rows).to_have_count(len(names))
    expect(rows.locator("td:first-child")).to_have_text(names)  # in the page's order: oldest first

    # Back to the summary of the same year.
    with page.expect_navigation():
        page.get_by_role("link", name=f"‹ {TITLE}", exact=True).click()
    expect(page).to_have_url(re.compile(re.escape(live_server.url + SUMMARY_PATH) + rf"\?year={DEMO_YEAR}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(f"{TITLE}（{DEMO_YEAR}年度）")
    expect(page.get_by_label("年度", exact=True)).to_have_value(str(DEMO_YEAR))
    expect(_total_row(page).locator("td").nth(2)).to_have_text(str(overall.rate))
    assert csp == []


def test_on_a_phone_the_summary_table_scrolls_inside_itself_and_keeps_the_row_names_in_view(
    page: Page, live_server, demo_logins, screenshot_dir
):
    _log_in(page, live_server, demo_logins[("demo-kenpo", "health_staff")])
    page.set_viewport_size(PHONE)
    page.goto(SUMMARY_PATH)
    table = page.get_by_test_id("guidance-summary")
    expect(table).to_be_visible()

    # The page as a whole does not scroll sideways; the table does, inside itself.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"] + 1, f"the page is {width} px wide at {PHONE['width']} px"
    overflow = table.evaluate("t => ({scroll: t.scrollWidth, client: t.clientWidth})")
    assert overflow["scroll"] > overflow["client"] + 100, overflow  # well wider than the screen: it must scroll

    # Bring the 合計 row into view, then scroll the table all the way to the right.
    total = _total_row(page)
    name = total.get_by_role("rowheader", name="合計", exact=True)
    name.scroll_into_view_if_needed()
    scrolled = table.evaluate("t => { t.scrollLeft = t.scrollWidth; return t.scrollLeft; }")
    assert scrolled >= overflow["scroll"] - overflow["client"] - 1, (scrolled, overflow)
    page.screenshot(path=str(screenshot_dir / "guidance-320-scrolled.png"))

    # The last column has come into view, the first count has gone off to the left ...
    last, first_count = total.locator("td").last.bounding_box(), total.locator("td").first.bounding_box()
    assert last is not None and last["x"] + last["width"] <= PHONE["width"] + 1, last
    assert first_count is not None and first_count["x"] < 0, first_count
    # ... and the row's name is still there, whole, inside the viewport and the table (a sticky column).
    box, frame = name.bounding_box(), table.bounding_box()
    assert box is not None and frame is not None
    assert 0 <= box["x"] and box["x"] + box["width"] <= PHONE["width"], box
    assert frame["x"] - 1 <= box["x"] <= frame["x"] + 1, (box, frame)  # at the table's left edge
    assert 0 <= box["y"] and box["y"] + box["height"] <= PHONE["height"], box
    expect(name).to_be_visible()


def test_an_hr_admin_of_a_company_has_no_link_and_gets_the_404_page(page: Page, live_server, demo_logins):
    _log_in(page, live_server, demo_logins[("demo-corp", "hr_admin")])
    nav = page.get_by_test_id("app-nav")
    expect(nav).to_be_visible()
    expect(page.get_by_test_id("nav-guidance-summary")).to_have_count(0)
    expect(nav.get_by_role("link", name=TITLE)).to_have_count(0)
    for path in (SUMMARY_PATH, UNEXAMINED_PATH):
        response = page.goto(path)
        assert response is not None and response.status == 404, path
        expect(page.get_by_role("heading", level=1)).to_have_text("ページが見つかりません")
        expect(page.get_by_text(TITLE)).to_have_count(0)
