"""Fixtures for the web tests: a headless Debian chromium driven by Playwright's sync API (helpers in ``browser.py``).

- ``chromium_browser`` (module scope): the launched ``playwright.sync_api.Browser``.
- ``browser_page`` (function scope): a ``Page`` in a fresh context with ``browser_viewport`` (1024×768) and
  ``browser_locale`` ("en-US"); override either per module with a fixture of that name, or per test with
  ``@pytest.mark.parametrize("browser_locale", ["zh-CN"])``.
- ``make_page``: a factory ``make_page(locale=..., viewport=...)`` for more pages in one test, closed at teardown.
- ``save_screenshot(page, path)`` (from browser.py) saves a PNG.

A missing chromium or playwright fails the test (with a pointer to scripts/setup.sh); it never skips.
"""

from __future__ import annotations

import pytest

import browser as _browser


@pytest.fixture(scope="module")
def chromium_browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(f"playwright is not installed: {_browser.SETUP_HINT}", pytrace=False)
    _browser.require_chromium()
    # Module scope, not session: while Playwright runs, asyncio.run() in this thread raises (see browser.py), so it
    # stops before the next module's tests.
    pw = sync_playwright().start()
    try:
        browser = _browser.launch(pw)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        pw.stop()


@pytest.fixture
def browser_locale() -> str:
    return _browser.LOCALE


@pytest.fixture
def browser_viewport() -> dict:
    return dict(_browser.VIEWPORT)


@pytest.fixture
def make_page(chromium_browser, browser_locale, browser_viewport):
    pages = []

    def make(locale: str | None = None, viewport: dict | None = None, **context_kwargs):
        page = _browser.new_page(chromium_browser, locale or browser_locale, viewport or browser_viewport,
                                 **context_kwargs)
        pages.append(page)
        return page

    yield make
    for page in pages:
        page.context.close()


@pytest.fixture
def browser_page(make_page):
    return make_page()
