"""Group sessions end to end: the real discord.py, real gateway payloads, a real SQLite file, compressed time.

Members vote by pressing the round's buttons (button INTERACTION_CREATEs carrying the round message, as Discord
sends them); rounds close by quorum, by deadline, or on a restart; the tests read what reached the fake Discord
(round posts in the session's thread, edits revealing the tallies, the final message with its GIF) and what the
store holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import sqlite3
import time

import pytest
from PIL import Image

from bench.fakediscord import CHANNEL_ID, GUILD_ID, FakeDiscord
from bot.ext.sessions import runner_of
from museharness import body, custom_ids, harness, invoke, is_ephemeral, message_from, run, with_buttons

pytestmark = pytest.mark.timeout(120)

A, B, C = 1100000000000000101, 1100000000000000102, 1100000000000000103
OTHER_CHANNEL = 1100000000000000077


def is_round_post(rec, number: int | None = None) -> bool:
    """A round as posted: a channel message with vote buttons and the session's provenance in its footer."""
    if rec.method != "POST" or "/channels/" not in rec.path or not rec.path.endswith("/messages"):
        return False
    if not isinstance(rec.json, dict) or not rec.json.get("components"):
        return False
    footer = ((rec.json.get("embeds") or [{}])[0].get("footer") or {}).get("text", "")
    return "kind=session" in footer and (number is None or f"round={number} " in footer + " ")


def is_final(rec) -> bool:
    return (rec.method == "POST" and rec.path.endswith("/messages") and isinstance(rec.json, dict)
            and any("winner" in (e.get("title") or "") for e in rec.json.get("embeds") or []))


async def start(fake, bot, P, options: dict | None = None, **kw):
    opts = {"kind": "image", "theme": "circles", "rounds": 2, "candidates": 4, **(options or {})}
    if opts["kind"] == "poem" and opts["theme"] == "circles":
        del opts["theme"]  # the image default; a poem session here writes about nothing in particular
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
            total = 0
            for i in range(gif.n_frames):  # (the tiny test model draws look-alikes, which GIF merges into one frame)
                gif.seek(i)
                total += gif.info["duration"]
            assert total == 900 + 4 * 90 + 2000  # the ancestor held, four in-betweens, the winner held longer
            fields = {f["name"]: f["value"] for f in final.json["embeds"][0]["fields"]}
            credits = next(v for k, v in fields.items() if k.startswith("Credits"))
            assert f"user{A % 1000}" in credits and f"user{B % 1000}" in credits
            assert fields["Line of descent"].startswith("R1 #1") and "R2 #2" in fields["Line of descent"]

            await runner_of(bot).idle()
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


def is_post(rec, text: str, channel: int | None = None) -> bool:
    return (rec.method == "POST" and rec.path.endswith("/messages") and isinstance(rec.json, dict)
            and text in (rec.json.get("content") or "") and (channel is None or f"/channels/{channel}/" in rec.path))


def test_a_silent_round_is_extended_then_paused_and_none_of_these_brings_new_blood(bot_models):
    """Nobody votes: the round gets more time once, then the session pauses instead of breeding at random; a vote
    resumes it. "None of these" alone rejects the round, so the next one is all new. An idle pause ends it."""
    async def go():
        async with harness(bot_models, sessions={"quorum": 0, "time_scale": 0.02, "idle_minutes": 1.0}) as (
                fake, bot, P):
            await start(fake, bot, P, {"rounds": 3, "round_seconds": 30})
            r1 = await round_post(fake, 1)
            await fake.wait_for(lambda r: is_post(r, "got more time"))
            (paused,) = await fake.wait_for(lambda r: is_post(r, "session is paused"))
            assert "<t:" in paused.json["content"]
            assert (await bot.store.get_session(1)).status == "paused"
            nothing = await vote(fake, bot, P, r1, "none", A)
            assert "**none of these**" in body(nothing)["content"]
            await fake.wait_for(lambda r: is_post(r, "Resumed"))
            r2 = await round_post(fake, 2)
            assert "none of these 1" in (await fake.wait_for(
                lambda r: r.method == "PATCH" and "closed" in ((r.json or {}).get("content") or "")))[0].json["content"]
            cands = await bot.store.candidates((await bot.store.round_of(1, 2)).id)
            assert [c.op for c in cands] == ["fresh"] * 4  # the group rejected every candidate
            assert "new blood" in r2.json["embeds"][0]["fields"][0]["value"]
            (final,) = await fake.wait_for(lambda r: is_post(r, "without a winner"), timeout=30)
            s = await bot.store.get_session(1)
            assert s.status == "abandoned" and s.current_round == 2

    run(go())


def test_a_restart_mid_round_keeps_every_vote_and_breeds_once(bot_models, tmp_path):
    """Muse stops mid-round; while it is down the deadline passes. The new process closes the overdue round at
    once with the votes cast before the restart, posts round 2 once, and a second timer or resume changes nothing."""
    db = str(tmp_path / "muse.sqlite3")

    async def go():
        fake = await FakeDiscord().start()
        try:
            async with harness(bot_models, fake=fake, database={"path": db}, sessions={"quorum": 0}) as (_, bot, P):
                await start(fake, bot, P, {"round_seconds": 30})
                r1 = await round_post(fake, 1)
                await vote(fake, bot, P, r1, 1, A)
                await vote(fake, bot, P, r1, 1, B)
                await vote(fake, bot, P, r1, 2, B)
            with sqlite3.connect(db) as con:  # Muse was down past the deadline
                con.execute("UPDATE session_rounds SET deadline = ?", (time.time() - 5,))
            async with harness(bot_models, fake=fake, database={"path": db}, sessions={"quorum": 0}) as (_, bot, P):
                r2 = await round_post(fake, 2)
                runner = runner_of(bot)
                await runner.idle()
                await asyncio.gather(runner.step(1, "deadline"), runner.step(1, "resume"),
                                     runner.step(1, "quorum"))  # a double timer, a second resume
                await runner.idle()
                assert len([r for r in fake.requests if is_round_post(r, 2)]) == 1
                rounds = await bot.store.rounds(1)
                assert [r.number for r in rounds] == [1, 2] and rounds[1].status == "open"
                assert (await bot.store.tally(rounds[0].id)).votes == [2, 1, 0, 0]
                assert len(await bot.store.feedback("dcgan")) == 3  # each vote became feedback once
                ok = await vote(fake, bot, P, r2, 3, A)  # the new round takes votes
                assert is_ephemeral(ok) and "**3**" in body(ok)["content"]
        finally:
            await fake.stop()

    run(go())


def test_a_poem_session_in_chinese_stopped_by_its_starter(bot_models):
    """Poems: numbered stanzas in an embed, in the starter's language. Only the starter (or an admin) may stop the
    session; the end shows the winning poem, its ancestors and the credits."""
    async def go():
        async with harness(bot_models, sessions={"quorum": 2}) as (fake, bot, P):
            zh = dict(locale="zh-CN")
            unknown = await start(fake, bot, P, {"kind": "poem", "lang": "zh", "theme": "zzqx"}, **zh)
            assert is_ephemeral(unknown) and "这段文字用不了" in body(unknown)["content"]
            poem = {"kind": "poem", "lang": "zh", "rounds": 3, "theme": None}
            await start(fake, bot, P, {k: v for k, v in poem.items() if v is not None}, **zh)
            r1 = await round_post(fake, 1)
            embed = r1.json["embeds"][0]
            assert "第 1/3 轮" in embed["title"] and r1.json["content"].startswith("**第 1/3 轮**")
            assert [f["name"] for f in embed["fields"]] == ["1", "2", "3", "4"]
            assert all(f["value"] for f in embed["fields"])
            await vote(fake, bot, P, r1, 2, A, **zh)
            await vote(fake, bot, P, r1, 2, B)
            r2 = await round_post(fake, 2)
            names = [f["name"] for f in r2.json["embeds"][0]["fields"]]
            assert "★" in names[0] and any("×" in n or "来自" in n for n in names[1:])
            assert r2.json["embeds"][0]["fields"][0]["value"] == embed["fields"][1]["value"]  # the elite, unchanged
            await vote(fake, bot, P, r2, 3, B)
            denied = await invoke(fake, bot, P.command("session", sub="stop", user_id=C, permissions="0"))
            assert is_ephemeral(denied) and "Only the member who started" in body(denied)["content"]
            stopping = await invoke(fake, bot, P.command("session", sub="stop"))
            assert is_ephemeral(stopping)
            (final,) = await fake.wait_for(is_final_zh)
            fe = final.json["embeds"][0]
            assert fe["description"].startswith(r2.json["embeds"][0]["fields"][2]["value"].split("\n")[0])
            assert any(f["name"] == "它的祖先" for f in fe["fields"])
            await runner_of(bot).idle()
            assert (await bot.store.get_session(2)).status == "stopped"  # 1 is the refused start
            gone = await invoke(fake, bot, P.command("session", sub="status"))
            assert "No session is running" in body(gone)["content"]

    run(go())


def is_final_zh(rec) -> bool:
    return (rec.method == "POST" and rec.path.endswith("/messages") and isinstance(rec.json, dict)
            and any("获胜者" in (e.get("title") or "") for e in rec.json.get("embeds") or []))


def test_two_sessions_in_two_channels_and_the_limits(bot_models):
    async def go():
        async with harness(bot_models, sessions={"quorum": 1, "per_guild": 2}) as (fake, bot, P):
            await start(fake, bot, P, {"rounds": 2})
            await start(fake, bot, P, {"rounds": 2, "theme": "squares"}, channel_id=OTHER_CHANNEL)
            first, second = await round_post(fake, 1, None), None
            posts = await fake.wait_for(lambda r: is_round_post(r, 1), count=2)
            first, second = posts
            assert first.path != second.path  # two threads
            busy = await start(fake, bot, P)
            assert is_ephemeral(busy) and "already running in this channel" in body(busy)["content"]
            full = await start(fake, bot, P, channel_id=OTHER_CHANNEL + 1)
            assert is_ephemeral(full) and "2 sessions running" in body(full)["content"]
            await vote(fake, bot, P, second, 4, A)
            await vote(fake, bot, P, first, 2, A)
            await fake.wait_for(lambda r: is_round_post(r, 2), count=2)
            themes = {(await bot.store.get_session(i)).params["theme"] for i in (1, 2)}
            assert themes == {"circles", "squares"}
            for sid, choice in ((1, 1), (2, 3)):
                assert (await bot.store.tally((await bot.store.round_of(sid, 1)).id)).votes[choice] == 1

    run(go())


ALL = (1 << 50) - 1
ATTACH_FILES, CREATE_PUBLIC_THREADS = 1 << 15, 1 << 35


def test_bad_places_and_missing_permissions_get_clear_answers(bot_models):
    async def go():
        async with harness(bot_models, sessions={"quorum": 1}) as (fake, bot, P):
            dm = await start(fake, bot, P, guild=False)
            assert is_ephemeral(dm) and "need a server channel" in body(dm)["content"]
            no_files = await start(fake, bot, P, app_permissions=str(ALL & ~ATTACH_FILES))
            assert is_ephemeral(no_files) and "Attach Files" in body(no_files)["content"]
            none_here = await invoke(fake, bot, P.command("session", sub="status"))
            assert is_ephemeral(none_here) and "/session start" in body(none_here)["content"]
            no_threads = await start(fake, bot, P, app_permissions=str(ALL & ~CREATE_PUBLIC_THREADS))
            assert "couldn't open a thread" in body(no_threads)["embeds"][0]["description"]
            await round_post(fake, 1, CHANNEL_ID)  # played in the channel itself
            assert not fake.threads

    run(go())


def test_a_deleted_round_message_and_a_deleted_thread(bot_models):
    """The round message is deleted: the tallies are posted instead, and the session goes on. Then the thread is
    deleted: the session ends, and the channel it came from is told why."""
    async def go():
        async with harness(bot_models, sessions={"quorum": 1}) as (fake, bot, P):
            await start(fake, bot, P, {"rounds": 3})
            r1 = await round_post(fake, 1)
            thread = next(iter(fake.threads))
            fake.fail("PATCH", f"/messages/{r1.response['id']}", 404, 10008, "Unknown Message")
            await vote(fake, bot, P, r1, 1, A)
            await fake.wait_for(lambda r: is_post(r, "closed", thread))  # the tallies, as a new message
            r2 = await round_post(fake, 2, thread)
            fake.fail("POST", f"/channels/{thread}/messages", 404, 10003, "Unknown Channel")
            fake.fail("PATCH", f"/channels/{thread}/", 404, 10003, "Unknown Channel")
            await vote(fake, bot, P, r2, 1, A)
            (told,) = await fake.wait_for(lambda r: is_post(r, "thread was deleted", CHANNEL_ID))
            await runner_of(bot).idle()
            s = await bot.store.get_session(1)
            assert s.status == "failed" and "deleted" in s.end_reason

    run(go())


def test_seed_brings_a_members_result_into_the_next_round(bot_models):
    async def go():
        async with harness(bot_models, sessions={"quorum": 2}) as (fake, bot, P):
            grid = await invoke(fake, bot, P.command("image", {"theme": "triangles", "count": 4, "seed": 11}))
            mid = message_from(fake, grid)["id"]
            link = f"https://discord.com/channels/{GUILD_ID}/{CHANNEL_ID}/{mid}"
            await start(fake, bot, P, {"rounds": 2})
            r1 = await round_post(fake, 1)
            bad = await invoke(fake, bot, P.command("session", {"result": "not a link"}, sub="seed"))
            assert is_ephemeral(bad) and "Copy Message Link" in body(bad)["content"]
            ok = await invoke(fake, bot, P.command("session", {"result": link, "cell": 3}, sub="seed", user_id=C))
            assert is_ephemeral(ok) and "join round 2" in body(ok)["content"]
            again = await invoke(fake, bot, P.command("session", {"result": link}, sub="seed", user_id=C))
            assert "already brought" in body(again)["content"]
            await vote(fake, bot, P, r1, 1, A)
            await vote(fake, bot, P, r1, 2, B)
            r2 = await round_post(fake, 2)
            cands = await bot.store.candidates((await bot.store.round_of(1, 2)).id)
            seeded = [c for c in cands if c.op == "seeded"]
            assert len(seeded) == 1 and seeded[0].seeded_by == C
            row = await bot.store.get_result(message_id=int(mid))
            assert seeded[0].latent.tolist() == row.latent[2].tolist()
            assert f"brought in by user{C % 1000}" in r2.json["embeds"][0]["fields"][0]["value"]
            last = await invoke(fake, bot, P.command("session", {"result": link}, sub="seed", user_id=A))
            assert "last round" in body(last)["content"]

    run(go())


def test_a_round_message_deleted_before_anyone_voted_is_posted_again(bot_models):
    """Nobody could vote on a deleted round message: at the deadline's extension Muse finds it gone and posts the
    round again, and the votes on the new message count."""
    async def go():
        async with harness(bot_models, sessions={"quorum": 1, "time_scale": 0.02}) as (fake, bot, P):
            await start(fake, bot, P, {"round_seconds": 30})
            r1 = await round_post(fake, 1)
            fake.fail("PATCH", f"/messages/{r1.response['id']}", 404, 10008, "Unknown Message")
            first, again = await fake.wait_for(lambda r: is_round_post(r, 1), count=2)
            assert again.response["id"] != r1.response["id"]
            await runner_of(bot).idle()
            assert (await bot.store.round_of(1, 1)).message_id == int(again.response["id"])
            await vote(fake, bot, P, again, 2, A)
            await round_post(fake, 2)
            assert (await bot.store.tally((await bot.store.round_of(1, 1)).id)).votes == [0, 1, 0, 0]

    run(go())


def slow_disk(store, seconds: float) -> None:
    """Every write transaction of ``store`` takes ``seconds`` longer before its commit (a slow fsync), holding the
    store's lock meanwhile, as a real slow disk would."""
    original = store._write

    @contextlib.asynccontextmanager
    async def slow():
        async with original() as db:
            yield db
            await asyncio.sleep(seconds)

    store._write = slow


def failing_disk(store) -> None:
    """Every write transaction of ``store`` fails before its commit (and is rolled back)."""
    original = store._write

    @contextlib.asynccontextmanager
    async def failing():
        async with original() as db:
            yield db
            raise sqlite3.OperationalError("disk I/O error")

    store._write = failing


def first_callback(fake, token: str):
    """The interaction callback that acknowledged the interaction (type 4: answered; 5: deferred)."""
    return next(r for r in fake.for_token(token) if r.path.endswith("/callback"))


def test_a_burst_of_votes_is_stored_exactly_and_acknowledged_at_once(bot_models):
    """Eighty presses at once on a disk that takes 50 ms per commit: one transaction per vote would answer the last
    after 4 s, past Discord's 3 s ("This interaction failed", although the vote was stored). Batched, every press is
    acknowledged within a second with its own confirmation, and the store holds exactly the presses' outcome; a
    member who presses twice in a row, or "None of these" between two picks, gets each toggle in order."""
    async def go():
        async with harness(bot_models, sessions={"quorum": 0}) as (fake, bot, P):
            await start(fake, bot, P, {"candidates": 4, "round_seconds": 300})
            r1 = await round_post(fake, 1)
            await runner_of(bot).idle()
            msg, ids = message_from(fake, r1), {i.rsplit(":", 1)[1]: i for i in custom_ids(r1.json)}
            slow_disk(bot.store, 0.05)
            members = [1100000000000000200 + i for i in range(70)]
            presses = [(m, str(i % 4)) for i, m in enumerate(members)]
            presses += [(members[0], "0"), (members[1], "n"), (members[1], "1"), (members[2], "2"), (members[3], "3"),
                        (members[3], "n"), (members[4], "0"), (members[5], "n"), (members[5], "n"), (members[6], "0")]
            sent = []
            for user, code in presses:  # all at once, as the gateway delivers a burst
                p = P.button(ids[code], msg, user_id=user)
                sent.append((p["token"], time.perf_counter()))
                bot._connection.parse_interaction_create(p)
            answers = await asyncio.gather(*(fake.result_of(token, 30) for token, _ in sent))
            acks = [first_callback(fake, token).t - t0 for token, t0 in sent]
            assert max(acks) < 1.0, sorted(acks)[-5:]
            assert all(is_ephemeral(a) and body(a)["content"].startswith("🗳") for a in answers)
            # each press's answer is that press's outcome, in the order pressed
            expected: dict[int, set[int]] = {}
            for (user, code), answer in zip(presses, answers):
                mine = expected.setdefault(user, set())
                choice = -1 if code == "n" else int(code)
                if choice in mine:
                    mine.discard(choice)
                else:
                    mine.difference_update({c for c in mine if (c >= 0) == (choice == -1)})
                    mine.add(choice)
                text = body(answer)["content"]
                if not mine:
                    assert "no votes" in text, text
                elif mine == {-1}:
                    assert "**none of these**" in text, text
                else:
                    assert f"**{', '.join(str(c + 1) for c in sorted(mine))}**" in text, text
            tally = await bot.store.tally((await bot.store.round_of(1, 1)).id)
            stored: dict[int, set[int]] = {}
            for user, choice in tally.approvals:
                stored.setdefault(user, set()).add(choice)
            assert stored == {u: c for u, c in expected.items() if c and c != {-1}}
            assert tally.none == sum(c == {-1} for c in expected.values())
            assert tally.voters == sum(bool(c) for c in expected.values())
            # members[0] took their vote back, members[5] pressed "None of these" twice
            assert expected[members[0]] == set() and expected[members[5]] == set() and expected[members[1]] == {1}

    run(go())


def test_a_slow_or_failing_store_never_confirms_an_unstored_vote(bot_models):
    """A commit slower than `ANSWER_WITHIN_S`: the press is acknowledged with a private "thinking…" at once, and
    confirmed once the vote is stored. A commit that fails: no confirmation, an error; and nothing is counted."""
    async def go():
        async with harness(bot_models, sessions={"quorum": 0}) as (fake, bot, P):
            await start(fake, bot, P, {"candidates": 4, "round_seconds": 300})
            r1 = await round_post(fake, 1)
            await runner_of(bot).idle()
            slow_disk(bot.store, 2.0)
            p = P.button(custom_ids(r1.json)[1], message_from(fake, r1), user_id=A)
            t0 = time.perf_counter()
            bot._connection.parse_interaction_create(p)
            answer = await fake.result_of(p["token"], 30)
            ack = first_callback(fake, p["token"])
            assert ack.json["type"] == 5 and ack.json["data"]["flags"] & 64  # deferred, ephemeral
            assert ack.t - t0 < 1.5 and answer.t - t0 >= 2.0  # acknowledged at ANSWER_WITHIN_S (0.75 s)
            assert "webhooks" in answer.path and is_ephemeral(answer) and "**2**" in body(answer)["content"]
            assert (await bot.store.tally(1)).votes == [0, 1, 0, 0]

            failing_disk(bot.store)
            refused = await vote(fake, bot, P, r1, 3, B)
            assert is_ephemeral(refused) and "🗳" not in body(refused)["content"]
            assert "Error id" in body(refused)["content"]
            assert (await bot.store.tally(1)).votes == [0, 1, 0, 0]

    run(go())


async def press_unlisted(bot_models, custom_id: str):
    """Press a vote button that is not one of the round's (a forged or an old one), then a real one of the round."""
    async with harness(bot_models, sessions={"quorum": 0}) as (fake, bot, P):
        await start(fake, bot, P)
        r1 = await round_post(fake, 1)
        msg = with_buttons(message_from(fake, r1), custom_id)
        odd = await invoke(fake, bot, P.button(custom_id, msg, user_id=A))
        ok = await vote(fake, bot, P, r1, 1, A)  # the round's own buttons still work
        return odd, ok


def test_a_forged_13_digit_round_id_gets_a_plain_answer(bot_models, caplog):
    """Thirteen base-36 digits say more than SQLite's integer holds: an ephemeral sentence, never an error id."""
    with caplog.at_level(logging.INFO):
        forged, ok = run(press_unlisted(bot_models, "muse:sv:zzzzzzzzzzzzz:0"))
    text = body(forged)["content"]
    assert is_ephemeral(forged) and "isn't from a session round Muse knows" in text, text
    assert "Error id" not in text and "**1**" in body(ok)["content"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_vote_for_a_round_muse_never_had_is_not_called_closed(bot_models):
    """Round ``zz`` (1295) does not exist: the button is one Muse does not know, not a round that has closed."""
    unknown, ok = run(press_unlisted(bot_models, "muse:sv:zz:n"))
    text = body(unknown)["content"]
    assert is_ephemeral(unknown) and "isn't from a session round Muse knows" in text and "closed" not in text, text
    assert "**1**" in body(ok)["content"]
