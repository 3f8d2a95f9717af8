"""The web-test harness itself: an aiohttp app served from a thread, driven by headless chromium."""

from __future__ import annotations

import asyncio
import html

import pytest
from aiohttp import web
from PIL import Image

from browser import save_screenshot
from server import serve_in_thread

FORM_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Muse form</title></head>
<body>
  <h1>Name your poem</h1>
  <p id="zh">为你的诗命名（中文）</p>
  <form method="post" action="/submit">
    <label>Title <input name="title" id="title"></label>
    <button type="submit" id="send">Send</button>
  </form>
</body></html>"""


RECEIVED = web.AppKey("received", list)
COUNT = web.AppKey("count", object)


def make_app() -> web.Application:
    received: list[str] = []

    async def form(request: web.Request) -> web.Response:
        return web.Response(text=FORM_PAGE, content_type="text/html")

    async def submit(request: web.Request) -> web.Response:
        data = await request.post()
        title = str(data["title"])
        received.append(title)
        body = f'<!doctype html><meta charset="utf-8"><p id="thanks">Saved: {html.escape(title)}</p>'
        return web.Response(text=body, content_type="text/html")

    async def count() -> int:
        await asyncio.sleep(0)  # a coroutine on the server's loop, as a test inspecting server state would run
        return len(received)

    app = web.Application()
    app[RECEIVED] = received
    app[COUNT] = count
    app.add_routes([web.get("/", form), web.post("/submit", submit)])
    return app


def test_form_round_trip_and_screenshot(browser_page, browser_viewport, tmp_path):
    page = browser_page
    with serve_in_thread(make_app) as server:
        page.goto(server.url("/"))
        assert page.title() == "Muse form"
        assert "为你的诗命名（中文）" in page.inner_text("#zh")

        shot = save_screenshot(page, tmp_path / "shots" / "form.png")
        with Image.open(shot) as im:
            assert im.format == "PNG"
            assert im.size == (browser_viewport["width"], browser_viewport["height"])
            # something is drawn (dark text on white); whether the Chinese has a font is test_chinese_glyphs_render's
            assert im.convert("L").getextrema()[0] < 128

        page.fill("#title", "月下独酌 by moonlight")
        page.click("#send")
        page.wait_for_url(server.url("/submit"))
        assert page.inner_text("#thanks") == "Saved: 月下独酌 by moonlight"
        assert server.app[RECEIVED] == ["月下独酌 by moonlight"]
        assert server.run(server.app[COUNT]()) == 1


def test_chinese_glyphs_render(browser_page):
    """A CJK font is installed: with none, chromium draws every ideograph as the same .notdef box, so two different
    strings of three ideographs would look alike."""
    page = browser_page
    big = 'style="font-size:40px"'
    page.set_content(f'<span id="a" {big}>中文诗</span> <span id="b" {big}>口口口</span>')
    a = page.locator("#a").screenshot()
    b = page.locator("#b").screenshot()
    assert a != b, "Chinese characters all render as the same box: no CJK font (run scripts/setup.sh)"


@pytest.mark.parametrize("browser_locale", ["zh-CN"])
def test_locale_is_settable(browser_page):
    assert browser_page.evaluate("navigator.language") == "zh-CN"


def test_server_reports_factory_errors_and_stops():
    def broken() -> web.Application:
        raise ValueError("no app")

    with pytest.raises(ValueError, match="no app"):
        with serve_in_thread(broken):
            pass

    async def async_factory() -> web.Application:  # a coroutine function works too
        return make_app()

    with serve_in_thread(async_factory) as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        assert server.run(server.app[COUNT]()) == 0
