"""The bot serves the web pages on its own loop when ``[web] enabled`` (bot/ext/web), and a port that is taken
leaves the bot serving Discord without them."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import aiohttp

from bench.fakediscord import GUILD_ID, USER_ID, Payloads
from museharness import body, harness, invoke, is_ephemeral, run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_bot_serves_the_pages_when_they_are_enabled(bot_models: Path, tmp_path: Path):
    port = _free_port()

    async def main():
        async with harness(bot_models, web={"enabled": True, "port": port},
                           database={"path": str(tmp_path / "muse.sqlite3")}) as (fake, bot, P):
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/") as r:
                    front = (r.status, await r.text())
                async with http.get(f"http://127.0.0.1:{port}/s/1") as r:
                    gallery = r.status
            return front, gallery, "WebPages" in bot.cogs

    (status, text), gallery, loaded = run(main())
    assert loaded and status == 200 and "Log in is not set up yet" in text  # no client id and secret here
    assert gallery == 401  # nothing without a login


def test_a_taken_port_leaves_the_bot_running_without_pages(bot_models: Path, tmp_path: Path, caplog):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        async def main():
            async with harness(bot_models, web={"enabled": True, "port": port},
                               database={"path": str(tmp_path / "muse.sqlite3")}) as (fake, bot, P):
                return bot.is_ready() or bot.user is not None, bot.cogs["WebPages"].runner

        with caplog.at_level(logging.ERROR, logger="muse.web"):
            up, runner = run(main())
    assert up and runner is None
    assert any(f"cannot listen on 127.0.0.1:{port}" in r.getMessage() for r in caplog.records)


def test_the_pages_are_off_by_default(bot_models: Path):
    async def main():
        async with harness(bot_models) as (fake, bot, P):
            return "WebPages" in bot.cogs

    assert run(main()) is False


def test_muse_web_public_is_for_managers_and_says_where_the_gallery_is(bot_models: Path, tmp_path: Path):
    async def main():
        async with harness(bot_models, web={"port": 8123}, database={"path": str(tmp_path / "muse.sqlite3")}) as (
                fake, bot, P):
            member = Payloads(user_id=USER_ID + 1, permissions="0")  # no Manage Server
            refused = await invoke(fake, bot, member.command("muse", {"public": True}, sub="web"))
            made_public = await invoke(fake, bot, P.command("muse", {"public": True}, sub="web"))
            public = await bot.store.web_public(GUILD_ID)
            await invoke(fake, bot, P.command("muse", {"public": False}, sub="web"))
            return refused, made_public, public, await bot.store.web_public(GUILD_ID)

    refused, made_public, public, after = run(main())
    assert is_ephemeral(refused) and "Manage Server" in body(refused)["content"]
    text = body(made_public)["content"]
    assert is_ephemeral(made_public) and text.startswith("🌐 This server's gallery is public now")
    assert f"http://127.0.0.1:8123/s/{GUILD_ID}" in text and "The web pages are off on this Muse" in text
    assert public is not None and after is None
