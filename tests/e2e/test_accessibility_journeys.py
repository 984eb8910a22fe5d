"""Keyboard and screen-reader paths in the browser: the skip link leads into the page, and a form sent back
with an error puts the focus on the field in error, whose description is its error."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.test_login_journeys import watch_csp
from tests.e2e.test_roster_import_journey import log_in_hr_admin

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("private_storage")]


def test_a_refused_upload_focuses_the_field_in_error_and_the_skip_link_leads_to_the_content(
    page: Page, live_server, demo_logins
):
    csp = watch_csp(page)
    log_in_hr_admin(page, live_server, demo_logins)
    page.goto("/roster/import/")
    page.get_by_role("button", name="アップロードして検証").click()  # no file chosen
    page.wait_for_load_state()
    field = page.locator("#id_file")
    expect(field).to_be_focused()
    described = field.get_attribute("aria-describedby")
    assert "id_file_error" in described.split()
    expect(page.locator("#id_file_error")).to_contain_text("この項目は必須です")

    page.goto("/roster/import/")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="本文へ移動")
    expect(skip).to_be_focused()
    expect(skip).to_be_visible()  # shown once focused
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    assert csp == []


def test_wide_tables_read_as_cards_on_a_phone(page: Page, live_server, demo_logins, screenshot_dir):
    """At 320 px the roster and the audit log show every column of a row, each under its name, instead of
    hiding the last ones off the side of a table that scrolls within itself."""
    log_in_hr_admin(page, live_server, demo_logins)
    page.set_viewport_size({"width": 320, "height": 800})
    for path, table, last in (("/roster/", "roster", "状態"), ("/audit/", "audit-events", "連番")):
        page.goto(path)
        rows = page.get_by_test_id(table).locator("tbody tr")
        expect(rows.first).to_be_visible()
        cell = rows.first.locator(f'td[data-label="{last}"]')
        cell.scroll_into_view_if_needed()
        box = cell.bounding_box()
        assert box is not None and 0 <= box["x"] and box["x"] + box["width"] <= 320, (path, box)
        label = cell.evaluate("td => getComputedStyle(td, '::before').content")
        assert label == f'"{last}"', (path, label)  # the value is read under its column's name
        assert page.get_by_test_id(table).evaluate("t => t.scrollWidth <= t.clientWidth + 1"), path
        expect(page.get_by_test_id(table).get_by_role("columnheader", name=last)).to_have_count(1)  # still a table
        page.screenshot(path=str(screenshot_dir / f"cards-320-{table}.png"))
