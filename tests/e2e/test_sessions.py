"""Group sessions end to end: the real discord.py, real gateway payloads, a real SQLite file, compressed time.

Members vote by pressing the round's buttons (button INTERACTION_CREATEs carrying the round message, as Discord
sends them); rounds close by quorum, by deadline, or on a restart; the tests read what reached the fake Discord
(round posts in the session's thread, edits revealing the tallies, the final message with its GIF) and what the
store holds.
"""

from __future__ import annotations

import asyncio
import io
import sqlite3
import time

import pytest
from PIL import Image

from bench.fakediscord import CHANNEL_ID, GUILD_ID, FakeDiscord
from genmodels.feedback.store import FeedbackStore

from museharness import body, custom_ids, harness, invoke, is_ephemeral, message_from, run

pytestmark = pytest.mark.timeout(120)

A, B, C = 1100000000000000101, 1100000000000000102, 1100000000000000103
OTHER_CHANNEL = 1100000000000000077


def is_round_post(rec, number: int | None = None) -> bool:
    if rec.method != "POST" or "/channels/" not in rec.path or not rec.path.endswith("/messages"):
        return False
    content = (rec.json or {}).get("content") or ""
    return content.startswith(f"**Round {number} of" if number else "**Round ")


def is_final(rec) -> bool:
    return (rec.method == "POST" and rec.path.endswith("/messages") and isinstance(rec.json, dict)
            and any("winner" in (e.get("title") or "") for e in rec.json.get("embeds") or []))


async def start(fake, bot, P, options: dict | None = None, **kw):
    opts = {"kind": "image", "theme": "circles", "rounds": 2, "candidates": 4, **(options or {})}
    return await invoke(fake, bot, P.command("session", opts, sub="start", **kw))


async def round_post(fake, number: int, channel: int | None = None, timeout: float = 30.0):
    def pred(r):
        return is_round_post(r, number) and (channel is None or f"/channels/{channel}/" in r.path)
    (rec,) = await fake.wait_for(pred, timeout)
    return rec


async def vote(fake, bot, P, rec, choice: int | str, user: int, *, as_bot: bool = False, **kw):
    """Press a round's button: ``choice`` is a candidate number (1-based) or "none"; ``as_bot``: a bot presses."""
    ids = custom_ids(rec.json)
    code = "n" if choice == "none" else str(int(choice) - 1)
    cid = next(i for i in ids if i.endswith(f":{code}"))
    return await invoke(fake, bot, P.button(cid, message_from(fake, rec), user_id=user, bot=as_bot, **kw))


async def store_of(bot) -> FeedbackStore:
    return bot.store


def test_an_image_session_from_start_to_winner(bot_models):
    """Two members vote (one changes their mind), the quorum closes each round, round 2 shows its lineage, and
    the end posts the winner, its line of descent as a GIF, and the credits; votes become trainer feedback."""
    async def go():
        async with harness(bot_models, sessions={"quorum": 2}) as (fake, bot, P):
            ack = await start(fake, bot, P, {"rounds": 2, "candidates": 4})
            assert not is_ephemeral(ack), body(ack)
            announcement = body(ack)["embeds"][0]["description"]
            assert "group session has started" in announcement and "<#" in announcement
            assert len(fake.threads) == 1
            thread = next(iter(fake.threads))
            r1 = await round_post(fake, 1, thread)
            assert "round.png" in [f for f, _ in r1.files.values()]
            grid = Image.open(io.BytesIO(next(b for f, b in r1.files.values() if f == "round.png")))
            assert grid.size[0] >= 2 * 256  # four numbered cells
            assert "<t:" in r1.json["content"]  # the deadline as a live Discord countdown
            assert len(custom_ids(r1.json)) == 5  # four candidates and "none of these"

            first = await vote(fake, bot, P, r1, 1, A)
            assert is_ephemeral(first) and "**1**" in body(first)["content"]
            both = await vote(fake, bot, P, r1, 3, A)
            assert "**1, 3**" in body(both)["content"]
            back = await vote(fake, bot, P, r1, 3, A)  # changed their mind
            assert "**1**" in body(back)["content"] and "3" not in body(back)["content"].split("**")[1]
            await vote(fake, bot, P, r1, 1, B)  # the second voter: quorum

            r2 = await round_post(fake, 2, thread)
            closed = await fake.wait_for(lambda r: r.method == "PATCH" and "/messages/" in r.path
                                         and "closed" in ((r.json or {}).get("content") or ""))
            assert "**#1** ▰▰ 2" in closed[0].json["content"] and closed[0].json.get("components") == []
            lineage = r2.json["embeds"][0]["fields"][0]["value"]
            assert "★" in lineage and "#1" in lineage  # the best of round 1 survives, and children name parents

            await vote(fake, bot, P, r2, 2, A)
            await vote(fake, bot, P, r2, 2, B)
            (final,) = await fake.wait_for(is_final)
            names = [f for f, _ in final.files.values()]
            assert names == ["winner.png", "descent.gif"]
            gif = Image.open(io.BytesIO(final.files["files[1]"][1]))
            assert gif.n_frames >= 2  # winner and its ancestor, with in-betweens
            fields = {f["name"]: f["value"] for f in final.json["embeds"][0]["fields"]}
            credits = next(v for k, v in fields.items() if k.startswith("Credits"))
            assert f"user{A % 1000}" in credits and f"user{B % 1000}" in credits
            assert fields["Line of descent"].startswith("R1 #1") and "R2 #2" in fields["Line of descent"]

            await bot.sessions.idle()
            store = bot.store
            (s,) = [await store.get_session(1)]
            assert s.status == "finished"
            items = await store.feedback("dcgan")
            assert sorted((i.user_id, i.source, i.value) for i in items) == [
                (A, "session", 0.5), (A, "session", 0.5), (B, "session", 0.5), (B, "session", 0.5)]
            late = await vote(fake, bot, P, r1, 2, C)  # round 1 is over
            assert is_ephemeral(late) and "closed" in body(late)["content"]

    run(go())


def test_bots_cannot_vote_and_tallies_stay_hidden(bot_models):
    async def go():
        async with harness(bot_models, sessions={"quorum": 0}) as (fake, bot, P):
            await start(fake, bot, P)
            r1 = await round_post(fake, 1)
            refused = await vote(fake, bot, P, r1, 1, C, as_bot=True)
            assert is_ephemeral(refused) and "Bots can't vote" in body(refused)["content"]
            ok = await vote(fake, bot, P, r1, 2, A)
            assert "▰" not in body(ok)["content"] and "tallies are shown when the round closes" in body(ok)["content"]
            tally = await bot.store.tally(1)
            assert tally.votes == [0, 1, 0, 0] and tally.voters == 1
            status = await invoke(fake, bot, P.command("session", sub="status"))
            text = body(status)["embeds"][0]["description"]
            assert is_ephemeral(status) and "1 member(s) have voted" in text and "round **1** of 2" in text

    run(go())
