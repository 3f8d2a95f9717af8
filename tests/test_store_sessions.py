"""Group sessions in the feedback store, on real SQLite files: the schema, rounds, votes, seeds, credits."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
from contextlib import closing
from pathlib import Path

import aiosqlite
import numpy as np
import pytest

from genmodels.feedback.store import (
    ACTIVE_STATUSES,
    END_STATUSES,
    SCHEMA_VERSION,
    SIGNAL_KINDS,
    FeedbackStore,
    SessionBusy,
    StoreError,
    Tally,
    VoteConfig,
    VoteResult,
    migrate,
)


def async_test(fn):
    """Run an async test function in a fresh event loop (pytest-asyncio is not a dependency)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        asyncio.run(fn(*args, **kwargs))

    return wrapper


def raw(path: Path, sql: str) -> list[tuple]:
    with closing(sqlite3.connect(path)) as db:
        return db.execute(sql).fetchall()


async def start(store: FeedbackStore, channel_id: int = 10, *, guild_id: int | None = 1, limit: int = 0, **kw):
    args = {
        "guild_id": guild_id, "channel_id": channel_id, "starter_id": 7, "kind": "image", "model": "dcgan",
        "params": {"theme": "animals", "theme_index": 2}, "rounds": 3, "round_seconds": 60.0, "candidates": 4,
        "seed": 123, "per_guild_limit": limit, **kw,
    }  # fmt: skip
    return await store.create_session(**args)


def genomes(n: int, shape: tuple[int, ...] = (16,), seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [
        {"idx": i, "op": "random" if i else "seed", "parents": [i, (i + 1) % n], "t": 0.25 * i,
         "mutation": 0.1, "latent": rng.standard_normal(shape), "content": f"poem {i}",
         "seeded_by": 99 if i == 0 else None}
        for i in range(n)
    ]  # fmt: skip


RESULT = {"kind": "image", "model": "dcgan", "guild_id": 1, "channel_id": 11, "params": {"theme_index": 2}}


async def opened(store: FeedbackStore, session_id: int, number: int = 1, n: int = 4, result=RESULT) -> int:
    round_id, created = await store.add_round(
        session_id, number, deadline=1e10, model_version="v0001", candidates=genomes(n), result=result
    )
    assert created
    return round_id


@async_test
async def test_migrates_a_version_2_database(tmp_path):
    path = tmp_path / "old.sqlite3"
    async with aiosqlite.connect(path, isolation_level=None) as db:
        await migrate(db, target=2)
        await db.execute(
            "INSERT INTO results (id, message_id, guild_id, kind, model, model_version, seed, params,"
            " created_at) VALUES (1, 555, 9, 'image', 'dcgan', 'v0001', 42, '{\"grid\": 4}', 1.0)"
        )
        await db.execute(
            "INSERT INTO signals (result_id, user_id, kind, weight, created_at) VALUES (1, 8, 'variation', 0.3, 2.0)"
        )
    assert raw(path, "PRAGMA user_version") == [(2,)]
    assert raw(path, "SELECT name FROM sqlite_master WHERE name = 'sessions'") == []

    async with await FeedbackStore.open(path) as store:
        row = await store.get_result(message_id=555)
        assert (row.id, row.seed, row.params) == (1, 42, {"grid": 4})
        assert [(i.user_id, i.source) for i in await store.feedback("dcgan")] == [(8, "variation")]
        sid = await start(store)
        assert (await store.get_session(sid)).status == "running"
        assert await store.integrity_check() == "ok"
    assert SCHEMA_VERSION >= 3
    assert raw(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    tables = {name for (name,) in raw(path, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"sessions", "session_rounds", "session_candidates", "session_votes", "session_seeds"} <= tables


@async_test
async def test_sessions_one_active_per_channel_and_per_guild_limit(tmp_path):
    async with await FeedbackStore.open(tmp_path / "muse.sqlite3") as store:
        a = await start(store, 10, params={"theme": "food", "lang": "en", "temperature": 0.8})
        row = await store.get_session(a)
        assert (row.channel_id, row.thread_id, row.starter_id, row.kind, row.model) == (10, None, 7, "image", "dcgan")
        assert row.params == {"theme": "food", "lang": "en", "temperature": 0.8}
        assert (row.rounds, row.round_seconds, row.candidates, row.seed) == (3, 60.0, 4, 123)
        assert (row.status, row.current_round, row.paused_at, row.ended_at, row.final_message_id) == (
            "running", 0, None, None, None,
        )  # fmt: skip

        with pytest.raises(SessionBusy) as busy:
            await start(store, 10)
        assert busy.value.reason == "channel" and isinstance(busy.value, StoreError)
        await store.set_session_thread(a, 20)
        with pytest.raises(SessionBusy) as busy:
            await start(store, 20)  # /session start inside the session's thread
        assert busy.value.reason == "channel"
        assert (await store.active_session(10)).id == (await store.active_session(20)).id == a
        assert await store.active_session(30) is None
        with pytest.raises(StoreError):
            await store.set_session_thread(999, 1)

        # The guild limit counts active sessions of that guild only.
        b = await start(store, 30, limit=2)
        with pytest.raises(SessionBusy) as busy:
            await start(store, 40, limit=2)
        assert busy.value.reason == "guild"
        other_guild = await start(store, 40, guild_id=2, limit=2)
        assert await store.active_count(1) == 2 and await store.active_count(2) == 1
        assert [s.id for s in await store.active_sessions()] == [a, b, other_guild]

        # An ended session frees its channel and its place in the guild.
        assert await store.end_session(a, "stopped", "/session stop")
        assert await store.active_session(20) is None
        c = await start(store, 10, limit=2)
        assert c != a and await store.active_count(1) == 2
        with pytest.raises(ValueError):
            await start(store, 50, kind="morph")
        with pytest.raises(ValueError):
            await store.end_session(c, "running", "not an end")


@async_test
async def test_add_round_is_idempotent_and_records_results(tmp_path):
    async with await FeedbackStore.open(tmp_path / "muse.sqlite3") as store:
        sid = await start(store)
        cands = genomes(4, (16,))
        first = await store.add_round(
            sid, 1, deadline=1000.0, model_version="v0001", candidates=cands, result=RESULT
        )
        again = await store.add_round(
            sid, 1, deadline=2000.0, model_version="v0002", candidates=genomes(6, seed=5), result=RESULT
        )
        round_id = first[0]
        assert first == (round_id, True) and again == (round_id, False)
        assert raw(tmp_path / "muse.sqlite3", "SELECT COUNT(*) FROM session_candidates") == [(4,)]
        assert raw(tmp_path / "muse.sqlite3", "SELECT COUNT(*) FROM results") == [(4,)]

        rnd = await store.get_round(round_id)
        assert (rnd.session_id, rnd.number, rnd.status, rnd.deadline, rnd.extended) == (sid, 1, "open", 1000.0, False)
        assert (rnd.model_version, rnd.message_id, rnd.closed_at) == ("v0001", None, None)
        await store.set_round_message(round_id, 5555)
        assert (await store.round_of(sid, 1)).message_id == 5555
        assert await store.round_of(sid, 2) is None
        assert (await store.get_session(sid)).current_round == 1

        stored = await store.candidates(round_id)
        assert [c.idx for c in stored] == [0, 1, 2, 3]
        for cand, row in zip(cands, stored):
            assert row.latent.dtype == np.float32 and row.latent.shape == (16,)
            np.testing.assert_array_equal(row.latent, cand["latent"].astype(np.float32))
            assert (row.op, row.parents, row.t, row.mutation, row.content, row.seeded_by) == (
                cand["op"], cand["parents"], cand["t"], 0.1, cand["content"], cand["seeded_by"],
            )  # fmt: skip
            result = await store.get_result(result_id=row.result_id)
            assert (result.kind, result.model, result.model_version, result.guild_id) == ("image", "dcgan", "v0001", 1)
            assert (result.channel_id, result.message_id, result.requester_id, result.seed) == (11, None, None, None)
            assert result.params == {"theme_index": 2, "session": sid, "round": 1, "candidate": row.idx}
            assert result.latent.shape == (1, 16)
            np.testing.assert_array_equal(result.latent[0], row.latent)
            assert result.content == cand["content"]

        # Round 2 without results; a poem-shaped genome round-trips as (L, D), its result as (L, D) too.
        round2, created = await store.add_round(
            sid, 2, deadline=1.0, model_version="v0001", candidates=genomes(2, (4, 8)), result=None
        )
        assert created and [c.result_id for c in await store.candidates(round2)] == [None, None]
        assert [c.latent.shape for c in await store.candidates(round2)] == [(4, 8), (4, 8)]
        assert [r.number for r in await store.rounds(sid)] == [1, 2]
        poem = await store.create_session(
            guild_id=1, channel_id=77, starter_id=7, kind="poem", model="textvae-en", params={"lang": "en"},
            rounds=2, round_seconds=30, candidates=3, seed=1, per_guild_limit=0,
        )  # fmt: skip
        poem_round = await opened(store, poem, result={**RESULT, "kind": "poem", "model": "textvae-en"})
        for cand, row in zip(genomes(4), await store.candidates(poem_round)):
            np.testing.assert_array_equal(row.latent, cand["latent"].astype(np.float32))
        lines = genomes(3, (4, 8))
        poem_round2, _ = await store.add_round(
            poem, 2, deadline=1.0, model_version="v0001", candidates=lines,
            result={**RESULT, "kind": "poem", "model": "textvae-en"},
        )  # fmt: skip
        rows = await store.candidates(poem_round2)
        assert [r.latent.shape for r in rows] == [(4, 8)] * 3
        result = await store.get_result(result_id=rows[2].result_id)
        assert result.latent.shape == (4, 8) and result.model == "textvae-en"
        np.testing.assert_array_equal(result.latent, lines[2]["latent"].astype(np.float32))

        # Refused, with nothing written: duplicate idx, a scalar genome, a session that ended.
        with pytest.raises(ValueError):
            await store.add_round(sid, 3, deadline=1.0, model_version="v", candidates=genomes(2) * 2)
        with pytest.raises(ValueError):
            await store.add_round(
                sid, 3, deadline=1.0, model_version="v", candidates=[{"idx": 0, "op": "x", "latent": np.float32(1)}]
            )
        assert await store.end_session(sid, "stopped", "stop")
        with pytest.raises(StoreError):
            await store.add_round(sid, 3, deadline=1.0, model_version="v", candidates=genomes(2))
        assert await store.round_of(sid, 3) is None
        assert (await store.get_session(sid)).status == "stopped"
        assert await store.add_round(sid, 2, deadline=1.0, model_version="v", candidates=[]) == (round2, False)


@async_test
async def test_toggle_votes_and_tally(tmp_path):
    async with await FeedbackStore.open(tmp_path / "muse.sqlite3") as store:
        sid = await start(store)
        rid = await opened(store, sid)

        first = await store.toggle_vote(rid, 1, 0, "Ann")
        assert first == VoteResult("ok", [0], 1, "running")
        rnd = await store.get_round(rid)  # where the vote went comes back with it, for the confirmation
        assert (first.session_id, first.round_number, first.deadline) == (sid, rnd.number, rnd.deadline)
        assert await store.toggle_vote(rid, 1, 2, "Ann") == VoteResult("ok", [0, 2], 1, "running")
        assert await store.toggle_vote(rid, 1, 0) == VoteResult("ok", [2], 1, "running")  # toggled off
        assert await store.toggle_vote(rid, 2, 2, "Bob") == VoteResult("ok", [2], 2, "running")
        assert await store.toggle_vote(rid, 2, 3, "Bob") == VoteResult("ok", [2, 3], 2, "running")
        # "None of these" withdraws the approvals, and an approval withdraws "none of these".
        assert await store.toggle_vote(rid, 2, -1, "Bob") == VoteResult("ok", [-1], 2, "running")
        assert await store.toggle_vote(rid, 3, -1, "Cy") == VoteResult("ok", [-1], 3, "running")
        assert await store.toggle_vote(rid, 3, 1, "Cy") == VoteResult("ok", [1], 3, "running")
        assert await store.toggle_vote(rid, 4, -1) == VoteResult("ok", [-1], 4, "running")
        assert await store.toggle_vote(rid, 4, -1) == VoteResult("ok", [], 3, "running")
        assert await store.toggle_vote(rid, 5, 1, "Dee") == VoteResult("ok", [1], 4, "running")

        # No such candidate: nothing changes.
        for choice in (4, -2, 99):
            assert await store.toggle_vote(rid, 1, choice) == VoteResult("unknown", [2], 4, "running")

        assert await store.tally(rid) == Tally(
            votes=[0, 2, 1, 0], none=1, voters=4, approvals=[(1, 2), (3, 1), (5, 1)]
        )
        # A newer display name replaces the old one on all the user's votes in the round.
        await store.toggle_vote(rid, 1, 3, "Annie")
        assert raw(tmp_path / "muse.sqlite3", "SELECT DISTINCT name FROM session_votes WHERE user_id = 1") == [
            ("Annie",)
        ]

        # Paused sessions still take votes; closed rounds and ended sessions do not.
        assert await store.pause_session(sid, 123.0)
        assert (await store.toggle_vote(rid, 6, 0)).status == "ok"
        assert await store.close_round(rid, "deadline") is not None
        assert await store.toggle_vote(rid, 6, 1) == VoteResult("closed", [0], 5, "paused")
        assert await store.toggle_vote(rid, 6, 9) == VoteResult("closed", [0], 5, "paused")
        assert await store.toggle_vote(999, 6, 0) == VoteResult("missing", [], 0, None)  # no such round

        other = await start(store, 11)
        other_round = await opened(store, other)
        assert await store.end_session(other, "abandoned", "idle")
        assert await store.toggle_vote(other_round, 1, 0) == VoteResult("closed", [], 0, "abandoned")
        assert await store.tally(999) == Tally([], 0, 0, [])


def count_transactions(store: FeedbackStore) -> list[int]:
    """Count ``store``'s write transactions (the list's one item) from now on."""
    count = [0]
    original = store._write

    @contextlib.asynccontextmanager
    async def counted():
        count[0] += 1
        async with original() as db:
            yield db

    store._write = counted
    return count


@async_test
async def test_a_burst_of_votes_shares_transactions_and_keeps_its_order(tmp_path):
    """Votes that arrive together are written in one transaction (group commit), applied in arrival order: each
    press gets what it would have got alone, after the presses before it, so a member who presses twice (or
    presses "None of these" between two approvals) ends up where the same presses one by one would leave them."""
    rng = np.random.default_rng(5)
    presses = [(int(rng.integers(0, 60)), int(rng.choice([-1, 0, 1, 2, 3, 7]))) for _ in range(400)]
    presses += [(100, 1), (100, 1), (100, 1), (101, -1), (101, 2), (101, -1)]  # quick presses of two members
    async with await FeedbackStore.open(tmp_path / "a.sqlite3") as a, \
            await FeedbackStore.open(tmp_path / "b.sqlite3") as b:
        rounds = {}
        for store in (a, b):
            rounds[store] = await opened(store, await start(store))
        writes = count_transactions(a)
        burst = await asyncio.gather(*(a.toggle_vote(rounds[a], user, choice, f"u{user}") for user, choice in presses))
        one_by_one = [await b.toggle_vote(rounds[b], user, choice, f"u{user}") for user, choice in presses]
        assert burst == one_by_one
        assert {r.status for r in burst} == {"ok", "unknown"}  # 7 is no candidate of a 4-candidate round
        assert writes[0] <= 3  # 406 presses: two batches (of at most VOTE_BATCH_MAX, 300), not 406 transactions
        assert await a.tally(rounds[a]) == await b.tally(rounds[b])
        votes = "SELECT user_id, choice, name FROM session_votes ORDER BY user_id, choice"
        assert raw(tmp_path / "a.sqlite3", votes) == raw(tmp_path / "b.sqlite3", votes)
        # the quick presses at the end: on, off, on; then none, an approval (none withdrawn), none again
        assert [r.choices for r in burst[-6:]] == [[1], [], [1], [-1], [2], [-1]]


@async_test
async def test_forged_round_ids_are_no_round_not_an_error(tmp_path):
    """A button's round id is whatever the click says: one beyond SQLite's integers (13 base-36 digits), zero or
    negative is simply no round the store has, even in a batch with real votes, which still count."""
    async with await FeedbackStore.open(tmp_path / "muse.sqlite3") as store:
        rid = await opened(store, await start(store))
        forged = int("z" * 13, 36)
        assert forged > 2**63 - 1
        out = await asyncio.gather(*(store.toggle_vote(r, 1, 0, "Ann") for r in (forged, rid, 0, -3, 2**63 - 1)))
        assert [r.status for r in out] == ["missing", "ok", "missing", "missing", "missing"]
        assert out[0] == VoteResult("missing", [], 0, None) and out[1] == VoteResult("ok", [0], 1, "running")
        assert (await store.toggle_votes([(forged, 2, 0, ""), (rid, 2, 1, "Bob")]))[1].voters == 2
        with pytest.raises(ValueError):  # no Discord user has such an id; it never reaches a batch
            await store.toggle_vote(rid, 2**64, 0)
        assert (await store.tally(rid)).votes == [1, 1, 0, 0]


@async_test
async def test_close_round_turns_approvals_into_signals_once(tmp_path):
    assert "session" in SIGNAL_KINDS and VoteConfig().signal_weight("session") == 0.5
    assert VoteConfig(session_weight=0.2).signal_weight("session") == 0.2
    async with await FeedbackStore.open(tmp_path / "muse.sqlite3") as store:
        sid = await start(store)
        rid = await opened(store, sid)
        for user, choice in [(1, 0), (1, 2), (2, 2), (3, -1)]:
            await store.toggle_vote(rid, user, choice)
        cands = await store.candidates(rid)

        tally = await store.close_round(rid, "deadline", signal_weight=store.votes.signal_weight("session"))
        assert tally == Tally(votes=[1, 0, 2, 0], none=1, voters=3, approvals=[(1, 0), (1, 2), (2, 2)])
        assert await store.close_round(rid, "deadline", signal_weight=0.5) is None
        rnd = await store.get_round(rid)
        assert (rnd.status, rnd.close_reason) == ("closed", "deadline") and rnd.closed_at >= rnd.opened_at

        items = await store.feedback("dcgan")
        assert sorted((i.user_id, i.result_id, i.value, i.source) for i in items) == [
            (1, cands[0].result_id, 0.5, "session"),
            (1, cands[2].result_id, 0.5, "session"),
            (2, cands[2].result_id, 0.5, "session"),
        ]
        assert all(i.latent.shape == (1, 16) and i.params["session"] == sid for i in items)
        assert (await store.counts("dcgan"))["signals"] == 3

        # Without a weight (or without results), closing writes no signal.
        rid2 = await opened(store, sid, 2)
        await store.toggle_vote(rid2, 1, 1)
        assert (await store.close_round(rid2, "all voted")).votes == [0, 1, 0, 0]
        rid3, _ = await store.add_round(sid, 3, deadline=1.0, model_version="v", candidates=genomes(2))
        await store.toggle_vote(rid3, 1, 1)
        assert (await store.close_round(rid3, "deadline", signal_weight=0.5)).votes == [0, 1]
        assert len(await store.feedback("dcgan")) == 3


@async_test
async def test_concurrent_close_round_gives_one_tally(tmp_path):
    path = tmp_path / "muse.sqlite3"
    async with await FeedbackStore.open(path) as a, await FeedbackStore.open(path) as b:
        sid = await start(a)
        rid = await opened(a, sid)
        for user in range(5):
            await a.toggle_vote(rid, user, user % 4)
        outcomes = await asyncio.gather(
            a.close_round(rid, "deadline", signal_weight=0.5),
            a.close_round(rid, "timer", signal_weight=0.5),
            b.close_round(rid, "restart", signal_weight=0.5),
        )
        tallies = [t for t in outcomes if t is not None]
        assert len(tallies) == 1 and tallies[0].votes == [2, 1, 1, 1]
        assert raw(path, "SELECT COUNT(*) FROM signals WHERE kind = 'session'") == [(5,)]

        # Two breeders racing to open round 2: one round, one set of candidates and results.
        made = await asyncio.gather(
            *(
                store.add_round(sid, 2, deadline=1.0, model_version="v0001", candidates=genomes(4), result=RESULT)
                for store in (a, b, a)
            )
        )
        assert len({round_id for round_id, _ in made}) == 1 and sorted(c for _, c in made) == [False, False, True]
        assert raw(path, "SELECT COUNT(*) FROM session_candidates") == [(8,)]
        assert raw(path, "SELECT COUNT(*) FROM results") == [(8,)]


@async_test
async def test_extend_pause_resume_and_end_are_compare_and_set(tmp_path):
    async with await FeedbackStore.open(tmp_path / "muse.sqlite3") as store:
        sid = await start(store)
        rid = await opened(store, sid)
        assert await store.extend_round(rid, 2e10)
        assert not await store.extend_round(rid, 3e10)
        rnd = await store.get_round(rid)
        assert (rnd.deadline, rnd.extended) == (2e10, True)

        assert not await store.resume_session(sid, rid, 5.0)  # not paused
        assert await store.pause_session(sid, 100.0)
        assert not await store.pause_session(sid, 200.0)
        row = await store.get_session(sid)
        assert (row.status, row.paused_at) == ("paused", 100.0)
        assert sid in [s.id for s in await store.active_sessions()]
        other = await start(store, 11)
        other_round = await opened(store, other)
        with pytest.raises(StoreError):  # a round of another session: nothing changes
            await store.resume_session(sid, other_round, 5.0)
        assert (await store.get_session(sid)).status == "paused"
        assert await store.resume_session(sid, rid, 5.0)
        assert not await store.resume_session(sid, rid, 6.0)
        row = await store.get_session(sid)
        assert (row.status, row.paused_at, (await store.get_round(rid)).deadline) == ("running", None, 5.0)

        # add_round resumes a paused session.
        assert await store.pause_session(sid, 300.0)
        await store.close_round(rid, "deadline")
        await opened(store, sid, 2)
        row = await store.get_session(sid)
        assert (row.status, row.paused_at, row.current_round) == ("running", None, 2)

        assert ACTIVE_STATUSES == ("running", "paused")
        assert END_STATUSES == ("finished", "stopped", "abandoned", "failed")
        assert await store.end_session(sid, "finished", "all rounds played")
        assert not await store.end_session(sid, "failed", "thread deleted")
        assert not await store.pause_session(sid, 1.0)
        row = await store.get_session(sid)
        assert (row.status, row.end_reason) == ("finished", "all rounds played") and row.ended_at is not None
        # Ending a session leaves its rounds as they are (the caller stops their timers).
        assert (await store.round_of(sid, 2)).status == "open"
        await store.set_final_message(sid, 4242)
        assert (await store.get_session(sid)).final_message_id == 4242
        with pytest.raises(StoreError):
            await store.set_final_message(999, 1)


@async_test
async def test_seeds(tmp_path):
    async with await FeedbackStore.open(tmp_path / "muse.sqlite3") as store:
        sid = await start(store)
        await opened(store, sid)  # round 1 is open: seeds go to round 2 or later
        latent = np.arange(16, dtype=np.float32)
        seed = functools.partial(store.add_seed, sid, 2, max_per_round=2)
        assert await seed(1, latent=latent, name="Ann", result_id=None) == "ok"
        assert await seed(1, latent=latent * 2, name="Ann") == "duplicate"
        assert await seed(2, latent=np.ones((4, 8)), name="Bob", content="a poem") == "ok"
        assert await seed(3, latent=latent) == "full"
        assert await store.add_seed(sid, 3, 3, latent=latent, max_per_round=2) == "ok"
        assert await store.add_seed(sid, 1, 4, latent=latent, max_per_round=2) == "closed"  # already bred

        rows = await store.seeds(sid, 2)
        assert [(s.user_id, s.name, s.round_number, s.content) for s in rows] == [
            (1, "Ann", 2, None), (2, "Bob", 2, "a poem"),
        ]  # fmt: skip
        np.testing.assert_array_equal(rows[0].latent, latent)
        assert rows[1].latent.shape == (4, 8) and rows[0].created_at <= rows[1].created_at
        assert await store.seeds(sid, 4) == []

        assert await store.end_session(sid, "stopped", "stop")
        assert await store.add_seed(sid, 4, 5, latent=latent, max_per_round=2) == "closed"


@async_test
async def test_lineage_credits(tmp_path):
    async with await FeedbackStore.open(tmp_path / "muse.sqlite3") as store:
        sid = await start(store)
        r1 = await opened(store, sid)
        for user, choice, name in [(1, 0, "Ann"), (2, 0, ""), (3, 1, "Cy"), (4, -1, "Dee"), (2, 2, "Bob")]:
            await store.toggle_vote(r1, user, choice, name)
        await store.close_round(r1, "deadline")
        r2 = await opened(store, sid, 2)
        for user, choice, name in [(1, 3, "Annie"), (2, 3, ""), (3, 2, "Cy")]:
            await store.toggle_vote(r2, user, choice, name)

        # The winner's line: candidate 0 of round 1 and candidate 3 of round 2.
        assert await store.lineage_credits([(r1, 0), (r2, 3), (r2, 3)]) == [
            (1, "Annie", 2), (2, "Bob", 2),
        ]  # fmt: skip
        assert await store.lineage_credits([(r1, 1), (r2, 2), (r1, 0)]) == [
            (3, "Cy", 2), (1, "Annie", 1), (2, "Bob", 1),
        ]  # fmt: skip
        assert await store.lineage_credits([]) == [] and await store.lineage_credits([(r1, -1)]) == []
