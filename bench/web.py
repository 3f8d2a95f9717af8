"""How fast a server's gallery appears: ``muse bench web --json``.

A store with ``results`` pictures of one server (4-image grids drawn by the served DCGAN, as /image posts them),
the web pages (`web.create_app`) on 127.0.0.1 with a logged-in member (the sealed session cookie is made the
way the login makes it), and headless Debian chromium (Playwright, as in the web tests) loading the gallery
``loads`` times, after one load of the front page (the browser's own start-up is not the gallery's). Each load reports the browser's own timings: first contentful paint (the page's text and frame
on screen) and the time until every picture on the page has arrived. The first load draws the pictures (cold);
the others find them in the pages' cache (warm). The target: first paint < 300 ms for 48 results.

Needs the test extras (``playwright``) and Debian's chromium (``MUSE_FOR_TESTS=1 bash scripts/setup.sh``).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

GUILD, MEMBER = 1100000000000000001, 4201
TARGET_MS = 300.0
CHROMIUM = os.environ.get("MUSE_CHROMIUM", "/usr/bin/chromium")


def _cookie(key: bytes, member: dict, csrf: str) -> str:
    """The session cookie's value for ``member``: what the login would have set (aiohttp_session's JSON, sealed
    with Fernet under ``key``)."""
    import base64
    import json

    from cryptography import fernet

    data = {"created": int(time.time()), "session": {"member": member, "csrf": csrf}}
    return fernet.Fernet(base64.urlsafe_b64encode(key)).encrypt(json.dumps(data).encode()).decode()


async def _world(tmp: Path, results: int, models: str | None):
    from genmodels.engine import Engine, EngineConfig
    from genmodels.feedback.store import FeedbackStore

    store = await FeedbackStore.open(tmp / "muse.sqlite3")
    engine = Engine(EngineConfig(models_dir=models))
    await engine.start(preload=("image",))
    themes = len((await asyncio.to_thread(engine.model, "dcgan")).themes)
    for i in range(results):
        out = await engine.image(i % themes, count=4, seed=1000 + i)
        await store.record_result(kind="image", model="dcgan", model_version=out.version.rsplit("/", 1)[-1],
                                  seed=1000 + i, latent=out.latents.numpy(),
                                  params={"theme": out.theme, "theme_index": out.theme_index, "count": 4},
                                  message_id=10_000 + i, channel_id=1, guild_id=GUILD, requester_id=MEMBER)
    return store, engine


def run(results: int = 48, loads: int = 5, models: str | None = None) -> dict:
    from aiohttp import web as aioweb
    from playwright.sync_api import sync_playwright

    from web import WebConfig, create_app

    if not os.access(CHROMIUM, os.X_OK):
        raise RuntimeError(f"chromium not found at {CHROMIUM}: run MUSE_FOR_TESTS=1 bash scripts/setup.sh")
    key = os.urandom(32)
    cfg = WebConfig(page_size=results)
    loop = asyncio.new_event_loop()
    ready, state = threading.Event(), {}

    with tempfile.TemporaryDirectory(prefix="muse-bench-web-") as tmp:
        async def start():
            t0 = time.perf_counter()
            store, engine = await _world(Path(tmp), results, models)
            state["seed_s"] = time.perf_counter() - t0
            app = create_app(store, cfg, session_key=key, engine=engine)
            runner = aioweb.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            await aioweb.TCPSite(runner, "127.0.0.1", 0).start()
            state.update(runner=runner, store=store, engine=engine, port=runner.addresses[0][1])

        async def stop():
            await state["runner"].cleanup()
            await state["engine"].close()
            await state["store"].close()

        def serve():
            asyncio.set_event_loop(loop)
            loop.run_until_complete(start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(stop())
            loop.close()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        ready.wait(300)
        url = f"http://127.0.0.1:{state['port']}/s/{GUILD}"
        member = {"id": str(MEMBER), "name": "bench", "guilds": {str(GUILD): {"name": "Bench", "manage": True}}}
        rows = []
        try:
            with sync_playwright() as pw:
                args = ["--no-sandbox"] if os.geteuid() == 0 else []
                browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                context.add_cookies([{"name": "muse_session", "value": _cookie(key, member, "x"),
                                      "url": f"http://127.0.0.1:{state['port']}"}])
                warmup = context.new_page()  # the browser's own start (its first renderer) is not the page's
                warmup.goto(f"http://127.0.0.1:{state['port']}/")
                warmup.close()
                for i in range(loads):
                    page = context.new_page()
                    t0 = time.perf_counter()
                    page.goto(url, wait_until="load")
                    images = page.locator(".card img")
                    for k in range(images.count()):  # every picture, below the fold too
                        images.nth(k).scroll_into_view_if_needed()
                    page.wait_for_function("[...document.images].every(i => i.complete && i.naturalWidth)",
                                           timeout=300_000)
                    all_ms = (time.perf_counter() - t0) * 1000
                    paint = page.evaluate("performance.getEntriesByName('first-contentful-paint')[0]?.startTime")
                    nav = page.evaluate("performance.getEntriesByType('navigation')[0].toJSON()")
                    cards = images.count()
                    rows.append({"load": i, "cold": i == 0, "first_contentful_paint_ms": round(paint, 1),
                                 "html_ms": round(nav["responseEnd"] - nav["requestStart"], 1),
                                 "all_pictures_ms": round(all_ms, 1), "cards": cards})
                    page.close()
                browser.close()
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(60)
    warm = [r["first_contentful_paint_ms"] for r in rows if not r["cold"]] or [rows[0]["first_contentful_paint_ms"]]
    return {"benchmark": "web", "results": results, "loads": loads, "cores": os.cpu_count(),
            "seed_seconds": round(state["seed_s"], 1), "per_load": rows,
            "first_contentful_paint_ms": {"cold": rows[0]["first_contentful_paint_ms"],
                                          "warm_median": round(statistics.median(warm), 1)},
            "all_pictures_ms": {"cold": rows[0]["all_pictures_ms"],
                                "warm_median": round(statistics.median(r["all_pictures_ms"] for r in rows[1:]), 1)
                                if len(rows) > 1 else None},
            "target": {"first_contentful_paint_ms<300": max(r["first_contentful_paint_ms"] for r in rows) < TARGET_MS}}


__all__ = ["run"]
