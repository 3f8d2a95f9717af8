"""Serve an aiohttp application from a background thread, for tests that drive it from the (synchronous) browser.

The app runs on its own event loop in its own thread: Playwright's sync API keeps an event loop of its own marked
as running in the main thread while a browser is open, so neither ``asyncio.run`` nor an aiohttp server can live
there. ``app_factory`` is called inside the server thread's loop, since an aiohttp app (and whatever it creates in
``on_startup``) binds to the loop it first runs on.

    with serve_in_thread(make_app) as server:
        page.goto(server.url("/form"))
        value = server.run(some_coroutine())   # runs on the server's loop, returns its result
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator  # noqa: F401 - Awaitable: in a string annotation
from typing import Any, TypeVar

from aiohttp import web

T = TypeVar("T")
AppFactory = Callable[[], "web.Application | Awaitable[web.Application]"]

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 15.0


class ServedApp:
    """A running server: ``base_url`` (``http://127.0.0.1:PORT``, no trailing slash), ``url(path)``, ``app``, and
    ``run(coro)`` to run a coroutine on the server's loop from the test's thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, app: web.Application, port: int) -> None:
        self.loop = loop
        self.app = app
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"

    def url(self, path: str = "/") -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


@contextlib.contextmanager
def serve_in_thread(app_factory: AppFactory, host: str = "127.0.0.1") -> Iterator[ServedApp]:
    """Start ``app_factory()`` (a ``web.Application``, or a coroutine function returning one) on ``host`` at a free
    port in a daemon thread with its own event loop; yield a :class:`ServedApp`; on exit shut the app down
    (``on_shutdown``/``on_cleanup`` run) and join the thread. An error in the factory or at start-up is raised here."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    state: dict[str, Any] = {}

    async def start() -> None:
        app = app_factory()
        if inspect.isawaitable(app):
            app = await app
        # a short grace for requests still in flight at exit (the default is 60 s)
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, host, 0)  # port 0: the OS picks a free port, no race with another test
        await site.start()
        port = runner.addresses[0][1]
        state.update(app=app, runner=runner, port=port)

    def main() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(start())
        except BaseException as exc:  # handed to the test's thread
            state["error"] = exc
            started.set()
            return
        started.set()
        loop.run_forever()  # until stop() below asks it to end
        try:
            loop.run_until_complete(state["runner"].cleanup())
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()

    thread = threading.Thread(target=main, name="aiohttp-test-server", daemon=True)
    thread.start()
    if not started.wait(START_TIMEOUT_S):
        loop.call_soon_threadsafe(loop.stop)
        raise RuntimeError(f"the aiohttp test server did not start within {START_TIMEOUT_S:.0f}s")
    if "error" in state:
        thread.join(STOP_TIMEOUT_S)
        if not loop.is_closed():
            loop.close()
        raise state["error"]
    try:
        yield ServedApp(loop, state["app"], state["port"])
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(STOP_TIMEOUT_S)
        if thread.is_alive():
            raise RuntimeError(f"the aiohttp test server did not stop within {STOP_TIMEOUT_S:.0f}s")
