"""Serving the pages: on the bot's event loop (`start`, used by `bot/ext/web/`), or alone (`serve`, `muse web`).

Alone, it opens the store and an engine of its own (the pictures are drawn from the stored latents) and serves
until it is stopped. Either way the aiohttp access log stays off: a login's callback URL carries Discord's one-time
code, which no log may keep.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from .app import create_app
from .config import CLIENT_SECRET_ENV, SESSION_SECRET_ENV, WebConfig, client_secret, session_key
from .oauth import DiscordOAuth

log = logging.getLogger("muse.web")


def oauth_from(config: WebConfig) -> DiscordOAuth | None:
    """Discord login, when ``[web] client_id`` and ``$DISCORD_CLIENT_SECRET`` are both set; else None (the front
    page then says how to set them)."""
    secret = client_secret()
    if not config.client_id or not secret:
        log.info("web: log in with Discord is off until [web] client_id and $%s are set", CLIENT_SECRET_ENV)
        return None
    return DiscordOAuth(config.client_id, secret, config.redirect_uri())


async def start(store, config: WebConfig, *, engine=None, known_guilds=None, oauth: DiscordOAuth | None = None,
                session_secret: bytes | None = None) -> web.AppRunner:
    """Serve the pages at ``config.host:port`` on the running loop; returns the runner (``await runner.cleanup()``
    stops it). OSError when the address is taken."""
    if session_secret is None:
        session_secret, from_env = session_key()
        if not from_env:
            log.warning("web: $%s is not set, so logins end when Muse restarts", SESSION_SECRET_ENV)
    login = oauth if oauth is not None else oauth_from(config)
    app = create_app(store, config, session_key=session_secret, oauth=login, engine=engine, known_guilds=known_guilds)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, config.host, config.port).start()
    except OSError:
        await runner.cleanup()
        raise
    log.info("web pages at %s", config.url())
    return runner


async def serve(config: WebConfig, store_opener, engine) -> int:
    """`muse web`: open the store (``await store_opener()``), start ``engine``, serve until SIGINT or SIGTERM."""
    store = await store_opener()
    await engine.start(preload=())
    runner = None
    try:
        runner = await start(store, config, engine=engine)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        return 0
    finally:
        if runner is not None:
            await runner.cleanup()
        await engine.close()
        await store.close()
