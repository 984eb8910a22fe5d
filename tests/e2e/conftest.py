"""Browser fixtures for the end-to-end journeys: Debian's chromium, driven by Playwright's sync API.

One chromium runs for the whole session; every test gets a fresh browser context (no cookies, no
language choice, no session carried over) pointed at pytest-django's ``live_server``. Tests that use
the browser run after every other test of the session (see ``pytest_collection_modifyitems``).

Never ``playwright install``: the journeys use the distribution's chromium at /usr/bin/chromium.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT_DIR = REPO_ROOT / "var" / "e2e"
ASYNC_UNSAFE = "DJANGO_ALLOW_ASYNC_UNSAFE"


def pytest_collection_modifyitems(config, items):
    """Run the browser tests last, after every other test of the session.

    Once Playwright's sync API has started, the main thread carries a "running" asyncio loop until the
    session ends, and ``browser`` sets DJANGO_ALLOW_ASYNC_UNSAFE for that long (see there). A test
    that ran after it would lose Django's async-safety check and pass the variable on to any
    subprocess it starts (``manage.py check --deploy`` reports it as async.E001). Last, nothing does.
    """
    items.sort(key=lambda item: "browser" in getattr(item, "fixturenames", ()))  # stable: order kept


@pytest.fixture(scope="session")
def browser() -> Iterator:
    """The session's chromium. Fails (never skips) when the distribution package is missing."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} not found: the e2e journeys need Debian's chromium. Install it with "
            "`apt-get install -y chromium` (do not run `playwright install`).",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    # Playwright's sync API marks its asyncio loop as running in the main thread between calls, so
    # Django would refuse the DB work the tests do in that thread (seed data, the flush after each
    # transactional test) with SynchronousOnlyOperation. That is a false alarm: the ORM runs in
    # plain synchronous code. Allow it only while Playwright is alive, and put it back afterwards.
    previous = os.environ.get(ASYNC_UNSAFE)
    os.environ[ASYNC_UNSAFE] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                yield chromium
            finally:
                chromium.close()
    finally:
        if previous is None:
            os.environ.pop(ASYNC_UNSAFE, None)
        else:
            os.environ[ASYNC_UNSAFE] = previous


@pytest.fixture
def context(browser, live_server) -> Iterator:
    """A fresh browser profile for one test, as a Japanese-speaking user (Accept-Language: ja)."""
    ctx = browser.new_context(base_url=live_server.url, locale="ja-JP", viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(10_000)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context):
    return context.new_page()


@pytest.fixture
def demo_logins(live_server) -> dict:
    """The demo data set (committed, so the live server sees it): {(tenant slug, role): DemoLogin}."""
    from healthapp.demo import seed_demo

    return {(login.tenant, login.role): login for login in seed_demo()}


def _has_japanese_font() -> bool:
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return False
    found = subprocess.run([fc_list, ":lang=ja", "family"], capture_output=True, text=True, check=False)
    return bool(found.stdout.strip())


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    """Where screenshots for a human go (var/e2e/ in the repository, git-ignored with var/)."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    if not _has_japanese_font():
        warnings.warn(
            "No Japanese font is installed: the screenshots in var/e2e/ show boxes instead of Japanese "
            "text (the assertions read the DOM and are unaffected). `apt-get install -y fonts-noto-cjk` "
            "makes them readable.",
            stacklevel=1,
        )
    return SCREENSHOT_DIR
