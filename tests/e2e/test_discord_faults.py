"""Faults on Discord's side of a reply: a 429 on the acknowledgement, a deleted "is thinking…" message, a 429 on the
result. What can be retried is; a result whose message is gone is posted anyway (and recorded); what cannot be
answered at all frees its queue place and is logged once. Driven through the real discord.py with real gateway
payloads against the fake Discord (`FakeDiscord.fail`, `FakeDiscord.rate_limit`).

discord.py's webhook adapter (which sends interaction callbacks) retries a 429 by itself only when the answer has
Discord's ``Via`` header, sleeping the JSON body's ``retry_after``; a 429 from Discord's edge (Cloudflare, no
``Via``, often an HTML page) it raises at once, which `bot.replies.acknowledge` retries while Discord's 3 s allow.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from pathlib import Path

from PIL import Image

from bench.fakediscord import APP_ID, USER_ID, FakeDiscord, Recorded
from museharness import body, harness, invoke, is_ephemeral, run


def _text(rec) -> str:
    return body(rec).get("content") or ""


def _callbacks(fake: FakeDiscord, token: str) -> list[Recorded]:
    return [r for r in fake.for_token(token) if r.path.endswith("/callback")]


def _muse_warnings(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("muse") and r.levelno >= logging.WARNING]


def _errors(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


def _png_ok(rec: Recorded) -> bool:
    name, data = rec.files["files[0]"]
    return name == "muse.png" and Image.open(io.BytesIO(data)).size[0] > 0


async def _posted(fake: FakeDiscord, bot, payload: dict, pred) -> Recorded:
    """Feed an interaction; the first of its requests that matches ``pred`` and that the fake Discord accepted
    (`invoke` would return the refused one: it carries the result too)."""
    bot._connection.parse_interaction_create(payload)
    token = payload["token"]
    return (await fake.wait_for(lambda r: r.token == token and pred(r) and isinstance(r.response, dict)
                                and "id" in r.response, timeout=20))[0]


async def _stored(bot, message_id: int, timeout: float = 10.0):
    """The stored result of ``message_id`` (recording happens after the reply, so wait for it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = await bot.store.get_result(message_id=message_id)
        if row is not None:
            return row
        await asyncio.sleep(0.05)
    return None


def test_a_429_on_the_acknowledgement_is_retried_within_the_3_seconds(bot_models: Path, caplog):
    async def main():
        async with harness(bot_models) as (fake, bot, P):
            out = {}
            cases = {
                # Discord's edge: no Via, an HTML page, Retry-After; discord.py raises it at once
                "edge": lambda: fake.rate_limit("POST", "/callback", 0.3, edge=True),
                # the same without even a Retry-After: waited for a default second
                "edge_bare": lambda: fake.fail("POST", "/callback", 429, times=1, body="<html>rate limited</html>"),
                # Discord's API (Via, JSON retry_after): discord.py sleeps and retries by itself
                "api": lambda: fake.rate_limit("POST", "/callback", 0.3, edge=False),
            }
            for name, inject in cases.items():
                inject()
                p = P.command("image", {"theme": "circles", "count": 1, "seed": 5})
                out[name] = (await invoke(fake, bot, p), _callbacks(fake, p["token"]))
            return out, bot.engine.queued

    with caplog.at_level(logging.INFO):
        out, queued = run(main())
    for name, (rec, callbacks) in out.items():
        assert [c.json["type"] for c in callbacks] == [5, 5], name  # refused once, then deferred
        assert rec.method == "PATCH" and not is_ephemeral(rec) and _png_ok(rec), (name, _text(rec))
        assert callbacks[1].t - callbacks[0].t >= 0.25, name
    assert out["edge_bare"][1][1].t - out["edge_bare"][1][0].t >= 0.9  # the default wait
    assert queued == 0 and not _errors(caplog) and not _muse_warnings(caplog)


def test_an_acknowledgement_refused_past_the_3_seconds_frees_its_place_and_is_logged_once(bot_models: Path, caplog):
    async def main():
        async with harness(bot_models, engine={"per_user": 2}) as (fake, bot, P):
            fake.callback_window = 3.0  # as Discord: a later callback is "Unknown interaction"
            out = {}
            # the edge asks for more time than the interaction has left: not retried
            long_wait = fake.rate_limit("POST", "/callback", 5.0, edge=True, times=None)
            for name in ("edge_1", "edge_2", "edge_3"):  # more than the member's 2 places: each must be freed
                out[name] = await _unanswered(fake, bot, P.command("image", {"theme": "circles", "count": 1}))
            fake.faults.remove(long_wait)
            # discord.py itself sleeps the API's retry_after (4 s), and its retry comes too late: 10062
            fake.rate_limit("POST", "/callback", 4.0, edge=False)
            out["api_late"] = await _unanswered(fake, bot, P.command("poem", {"lang": "en", "seed": 2}))
            after = await invoke(fake, bot, P.command("image", {"theme": "circles", "count": 1, "seed": 1}))
            return out, after, bot.engine.queued

    with caplog.at_level(logging.INFO):
        out, after, queued = run(main())
    for name, (token, reqs) in out.items():
        assert all(r.path.endswith("/callback") for r in reqs), (name, [r.path for r in reqs])  # nothing else tried
        said = [r for r in _muse_warnings(caplog) if token.removeprefix("tok-") in r.getMessage()]
        assert len(said) == 1 and "unanswered" in said[0].getMessage(), (name, [r.getMessage() for r in said])
        assert said[0].exc_info is None  # plainly: no traceback
    assert [len(reqs) for _, reqs in out.values()] == [1, 1, 1, 2]
    assert "429" in next(r.getMessage() for r in _muse_warnings(caplog) if out["edge_1"][0][4:] in r.getMessage())
    assert "10062" in next(r.getMessage() for r in _muse_warnings(caplog) if out["api_late"][0][4:] in r.getMessage())
    assert len(_muse_warnings(caplog)) == 4 and not _errors(caplog)
    assert queued == 0 and after.method == "PATCH" and _png_ok(after)  # the member's places were all given back


async def _unanswered(fake: FakeDiscord, bot, payload: dict) -> tuple[str, list[Recorded]]:
    """Feed an interaction whose acknowledgement Discord refuses; wait until Muse has given up on it."""
    token = payload["token"]
    bot._connection.parse_interaction_create(payload)
    await fake.wait_for(lambda r: r.token == token, timeout=10)
    deadline = time.monotonic() + 10
    while bot.engine.queued and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # anything Muse would still send for it
    return token, fake.for_token(token)


def test_a_deleted_placeholder_gets_the_result_as_a_followup_or_a_channel_message(bot_models: Path, caplog):
    async def main():
        async with harness(bot_models) as (fake, bot, P):
            fake.fail("PATCH", "/messages/@original", 404, 10008, "Unknown Message", times=1)
            p = P.command("image", {"theme": "squares", "count": 2, "seed": 8})
            followup = await _posted(fake, bot, p, lambda r: r.method == "POST" and "/webhooks/" in r.path)
            followup_row = await _stored(bot, int(followup.response["id"]))
            # the message deleted and the token expired as well: a channel message that mentions the member
            fake.fail("PATCH", "/messages/@original", 404, 10008, "Unknown Message", times=1)
            fake.fail("POST", f"/webhooks/{APP_ID}/", 401, 50027, "Invalid Webhook Token", times=1)
            p2 = P.command("poem", {"lang": "en", "seed": 3})
            bot._connection.parse_interaction_create(p2)
            channel = (await fake.wait_for(lambda r: r.method == "POST" and "/channels/" in r.path
                                           and r.path.endswith("/messages"), timeout=20))[0]
            channel_row = await _stored(bot, int(channel.response["id"]))
            return followup, followup_row, fake.for_token(p["token"]), channel, channel_row, fake.for_token(p2["token"])

    with caplog.at_level(logging.DEBUG):
        followup, followup_row, reqs, channel, channel_row, reqs2 = run(main())
    assert followup.method == "POST" and followup.path == f"/api/v10/webhooks/{APP_ID}/{reqs[0].token}"
    assert not is_ephemeral(followup) and _png_ok(followup)  # fresh bytes, not the buffer the failed edit read
    assert followup.json["embeds"][0]["title"] == "🎨 squares" and followup.json["components"]
    assert followup_row is not None and followup_row.kind == "image"  # recorded under the followup's id
    assert [r.method for r in reqs] == ["POST", "PATCH", "POST"]  # defer, the refused edit, the followup
    assert channel.json["content"] == f"<@{USER_ID}>" and channel.json["embeds"][0]["title"] == "📜 A poem"
    assert channel.json["components"] and channel_row is not None and channel_row.kind == "poem"
    assert [r.method for r in reqs2] == ["POST", "PATCH", "POST"]
    assert not _errors(caplog) and not _muse_warnings(caplog)
    said = "\n".join(r.getMessage() for r in caplog.records)  # as logged, before bot.logs redacts anything
    assert "can no longer be answered" in said  # the expired token was logged about, by interaction id alone
    assert reqs[0].token not in said and reqs2[0].token not in said


def test_a_429_on_the_result_is_retried_and_one_that_persists_is_said_plainly(bot_models: Path, caplog):
    async def main():
        async with harness(bot_models) as (fake, bot, P):
            fake.rate_limit("PATCH", "/messages/@original", 0.2, edge=True)
            p = P.command("image", {"theme": "circles", "count": 1, "seed": 4})
            retried = await _posted(fake, bot, p, lambda r: r.method == "PATCH")
            patches = [r for r in fake.for_token(p["token"]) if r.method == "PATCH"]
            fault = fake.rate_limit("PATCH", "/messages/@original", 0.1, edge=True, times=None)
            refused = await _posted(fake, bot, P.command("image", {"theme": "circles", "count": 1, "seed": 4}),
                                    lambda r: isinstance(r.json, dict) and is_ephemeral(r))
            fake.faults.remove(fault)
            return retried, patches, refused, bot.engine.queued

    with caplog.at_level(logging.INFO):
        retried, patches, refused, queued = run(main())
    assert len(patches) == 2 and retried is patches[1] and _png_ok(retried)
    assert is_ephemeral(refused) and "Discord wouldn't take the result just now (HTTP 429)" in _text(refused)
    assert "Error id" not in _text(refused) and queued == 0
    assert not _errors(caplog) and len(_muse_warnings(caplog)) == 1
