"""Headless Debian chromium through Playwright's sync API, for the web tests (fixtures in ``conftest.py``).

Playwright never downloads a browser here: it drives ``/usr/bin/chromium`` (Debian's package, installed by
``scripts/setup.sh``; ``MUSE_CHROMIUM`` points elsewhere). The Playwright pin in pyproject.toml matches Debian's
chromium major version: Playwright speaks the DevTools protocol of the Chromium it was released with.

Playwright's sync API keeps its own event loop marked as running in the main thread while it is started, so
``asyncio.run`` raises there until it stops: the fixtures start it per test module (a launch takes under a second),
and the app under test runs in a thread of its own (``server.serve_in_thread``), where ``ServedApp.run(coro)`` runs
coroutines.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("MUSE_CHROMIUM", "/usr/bin/chromium")
VIEWPORT = {"width": 1024, "height": 768}
LOCALE = "en-US"
SETUP_HINT = "run scripts/test.sh (its set-up installs Debian's chromium and fonts, and the test extras with playwright)"


def require_chromium() -> str:
    """The chromium executable, or a test failure (never a skip: CI must not pass without a browser)."""
    path = CHROMIUM if os.path.isabs(CHROMIUM) else shutil.which(CHROMIUM)
    if not path or not os.access(path, os.X_OK):
        pytest.fail(f"chromium not found at {CHROMIUM}: {SETUP_HINT}", pytrace=False)
    return path


def launch_args() -> list[str]:
    """Chromium flags: no sandbox as root (chromium refuses to start otherwise) or with ``MUSE_CHROMIUM_NO_SANDBOX=1``
    (a container that forbids user namespaces: "No usable sandbox!"); shared memory in /tmp when /dev/shm is small
    (Docker's default 64 MB makes renderers crash: "Target crashed")."""
    args = []
    if os.geteuid() == 0 or os.environ.get("MUSE_CHROMIUM_NO_SANDBOX") == "1":
        args.append("--no-sandbox")
    try:
        st = os.statvfs("/dev/shm")
        small = st.f_bavail * st.f_frsize < 1 << 30
    except OSError:
        small = True
    if small:
        args.append("--disable-dev-shm-usage")
    return args


def launch(playwright, **kwargs):
    """A headless chromium ``Browser`` from a started ``playwright.sync_api.Playwright``."""
    executable = require_chromium()
    try:
        return playwright.chromium.launch(
            executable_path=executable, headless=True, args=launch_args() + list(kwargs.pop("args", [])), **kwargs
        )
    except Exception as exc:  # a broken install: missing libraries, a chromium Playwright cannot drive
        pytest.fail(f"could not launch {executable} through Playwright: {exc}\n{SETUP_HINT}", pytrace=False)


def new_page(browser, locale: str = LOCALE, viewport: dict | None = None, **context_kwargs):
    """A page in a fresh context (its own cookies and storage): fixed viewport at device scale 1 (screenshots are
    viewport-sized), ``locale`` (``navigator.language`` and the Accept-Language header), UTC time zone."""
    context = browser.new_context(
        viewport=dict(viewport or VIEWPORT),
        device_scale_factor=1,
        locale=locale,
        timezone_id="UTC",
        **context_kwargs,
    )
    context.set_default_timeout(10_000)  # ms: a missing element fails in seconds, not Playwright's 30 s
    return context.new_page()


def save_screenshot(page, path: str | os.PathLike, full_page: bool = False) -> Path:
    """Save a PNG screenshot of ``page`` (the viewport, or the whole page) at ``path``; parent folders are made."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=full_page, type="png", animations="disabled")
    return path
