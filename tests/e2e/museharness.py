"""Helpers for the bot tests: settings for the tiny models, and a fake Discord with a logged-in bot."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from pathlib import Path

from bench.fakediscord import APP_ID, FakeDiscord, Payloads, started_bot
from bot.settings import load_settings


def make_settings(models: Path, **overrides):
    """Settings for the tiny models. The trainer is off unless a test turns it on; the database is a throwaway
    one (see `started_bot`) unless a test names a path (to share it across a restart, or to look into it)."""
    o = {"discord": {"application_id": APP_ID, "test_guild": 0}, "engine": {"models_dir": str(models)},
         "limits": {"cooldown_rate": 50}, "trainer": {"enabled": False}}
    scale = None
    for section, values in overrides.items():
        values = dict(values)
        if section == "sessions":  # compressed time: not a key of the settings files, a knob for tests
            scale = values.pop("time_scale", None)
        o.setdefault(section, {}).update(values)
    settings = load_settings(env={}, overrides=o)
    if scale is not None:
        settings = dataclasses.replace(settings, sessions=dataclasses.replace(settings.sessions, time_scale=scale))
    return settings


@contextlib.asynccontextmanager
async def harness(models: Path, *, fake: FakeDiscord | None = None, engine_obj=None, bot_kw: dict | None = None,
                  **overrides):
    """(fake Discord, logged-in bot, payload builder); the fake server may be shared across a "restart".
    ``bot_kw`` goes to `create_bot` (``store=``, ``trainer=``)."""
    own = fake is None
    fake = fake or await FakeDiscord().start()
    bot = await started_bot(make_settings(models, **overrides), engine=engine_obj, **(bot_kw or {}))
    try:
        yield fake, bot, Payloads()
    finally:
        await bot.close()
        if own:
            await fake.stop()


def run(coro):
    return asyncio.run(coro)


async def invoke(fake: FakeDiscord, bot, payload: dict, timeout: float = 30.0):
    """Feed one INTERACTION_CREATE to discord.py and wait for the request that answers it."""
    bot._connection.parse_interaction_create(payload)
    return await fake.result_of(payload["token"], timeout)


def body(rec) -> dict:
    """The message body of an answer, whether it came as a callback (type 4/9) or a webhook request."""
    if rec.path.endswith("/callback"):
        return rec.json.get("data") or {}
    return rec.json


def is_ephemeral(rec) -> bool:
    return bool(body(rec).get("flags", 0) & 64)


def message_from(fake: FakeDiscord, rec) -> dict:
    """The Message object the fake Discord answered ``rec`` with (what a later click would carry)."""
    if isinstance(rec.response, dict) and "id" in rec.response:
        return dict(rec.response)
    return fake._message(rec.json)


def custom_ids(message_body: dict) -> list[str]:
    return [c["custom_id"] for row in message_body.get("components", []) for c in row.get("components", [])
            if "custom_id" in c]


def with_buttons(message: dict, *ids: str) -> dict:
    """A copy of ``message`` carrying extra buttons: discord.py only dispatches a click on a button that the
    clicked message really has (as Discord only lets users click those)."""
    row = {"type": 1, "components": [{"type": 2, "style": 1, "label": "x", "custom_id": i} for i in ids]}
    return dict(message, components=[*message.get("components", []), row])
