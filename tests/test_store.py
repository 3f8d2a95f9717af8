"""The feedback store on real SQLite files: vote semantics, queries, concurrency, migrations, crash safety."""

from __future__ import annotations

import asyncio
import csv
import functools
import io
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

import aiosqlite
import numpy as np
import pytest

from genmodels.feedback.store import (
    EXPORT_COLUMNS,
    SCHEMA_VERSION,
    FeedbackStore,
    StoreError,
    VoteConfig,
    migrate,
)

REPO = Path(__file__).resolve().parents[1]


def async_test(fn):
    """Run an async test function in a fresh event loop (pytest-asyncio is not a dependency)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        asyncio.run(fn(*args, **kwargs))

    return wrapper


def raw(path: Path, sql: str) -> list[tuple]:
    """Read the file with a plain sqlite3 connection, as another program would."""
    with closing(sqlite3.connect(path)) as db:
        return db.execute(sql).fetchall()


async def image(store: FeedbackStore, message_id: int | None, **kw) -> int:
    kw = {"kind": "image", "model": "dcgan", "model_version": "v0001", "guild_id": 1, **kw}
    return await store.record_result(message_id=message_id, **kw)


@async_test
async def test_open_sets_pragmas_and_schema_version(tmp_path):
    path = tmp_path / "nested" / "dir" / "muse.sqlite3"
    async with await FeedbackStore.open(path) as store:
        pragmas = {
            name: (await store._db.execute_fetchall(f"PRAGMA {name}"))[0][0]
            for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys", "user_version")
        }
        assert pragmas == {
            "journal_mode": "wal",
            "synchronous": 2,  # FULL
            "busy_timeout": 5000,
            "foreign_keys": 1,
            "user_version": SCHEMA_VERSION,
        }
        assert FeedbackStore.SCHEMA_VERSION == SCHEMA_VERSION >= 2
        assert await store.integrity_check() == "ok"
    assert raw(path, "PRAGMA journal_mode") == [("wal",)]


@async_test
async def test_results_round_trip(tmp_path):
    async with await FeedbackStore.open(tmp_path / "muse.sqlite3") as store:
        latent = np.random.default_rng(0).standard_normal((4, 8))
        rid = await store.record_result(
            kind="morph-poem", model="textvae-en", model_version="v0002", seed=2**40, latent=latent,
            params={"lines": 4}, parents=[{"seed": 1}, 7], content="a\nb", guild_id=2**62, requester_id=5,
        )  # fmt: skip
        row = await store.get_result(result_id=rid)
        assert (row.kind, row.model, row.model_version) == ("morph-poem", "textvae-en", "v0002")
        assert row.seed == 2**40
        assert row.latent.dtype == np.float32 and row.latent.shape == (4, 8)
        np.testing.assert_array_equal(row.latent, latent.astype(np.float32))
        assert (row.params, row.parents, row.content) == ({"lines": 4}, [{"seed": 1}, 7], "a\nb")
        assert (row.message_id, row.guild_id, row.requester_id) == (None, 2**62, 5)

        await store.attach_message(rid, 1234567890123456789, channel_id=42)
        by_message = await store.get_result(message_id=1234567890123456789)
        assert (by_message.id, by_message.channel_id) == (rid, 42)
        assert await store.get_result(message_id=1) is None

        bench = await image(store, None)  # the bench has no messages: many results without one
        assert (await store.get_result(result_id=bench)).latent is None
        with pytest.raises(StoreError):
            await image(store, 1234567890123456789)  # a message holds one result
        with pytest.raises(StoreError):
            await store.attach_message(999, 1)
        with pytest.raises(ValueError):
            await image(store, None, kind="video")
        with pytest.raises(ValueError):
            await image(store, None, latent=np.zeros(8))
        with pytest.raises(StoreError):
            await store.add_signal(999, 1, "variation")
        with pytest.raises(ValueError):
            await store.add_signal(rid, 1, "upscale")


@async_test
async def test_vote_semantics(tmp_path):
    async with await FeedbackStore.open(tmp_path / "muse.sqlite3") as store:
        rid = await image(store, 100)
        # The latest reaction counts; removing it brings back the older one still present.
        assert await store.add_reaction(100, 1, "👍") == 1
        assert await store.add_reaction(100, 1, "👎") == -1
        assert await store.add_reaction(100, 1, "🔥") == 1
        assert await store.remove_reaction(100, 1, "🔥") == -1
        assert await store.remove_reaction(100, 1, "👎") == 1
        assert await store.remove_reaction(100, 1, "👍") == 0
        assert await store.vote_of(rid, 1) == 0

        # Ignored: other emoji, bots (Muse included), messages that are not results.
        assert await store.add_reaction(100, 2, "😀") is None
        assert await store.add_reaction(100, 3, "👍", is_bot=True) is None
        assert await store.add_reaction(999, 2, "👍") is None
        assert await store.remove_reaction(999, 2, "👍") is None
        assert await store.remove_reaction(100, 2, "😀") is None
        assert [await store.vote_of(rid, u) for u in (2, 3)] == [0, 0]

        # U+FE0F (and skin tones) may or may not come with the emoji.
        assert await store.add_reaction(100, 4, "❤\ufe0f") == 1
        assert await store.add_reaction(100, 4, "👎") == -1
        assert await store.remove_reaction(100, 4, "👎") == 1
        assert await store.remove_reaction(100, 4, "❤") == 0
        assert await store.add_reaction(100, 5, "⭐\ufe0f") == 1
        assert await store.add_reaction(100, 6, "👍🏽") == 1

        # A replayed add changes nothing: 👎 stays the latest.
        await store.add_reaction(100, 7, "👍")
        await store.add_reaction(100, 7, "👎")
        assert await store.add_reaction(100, 7, "👍") == -1

        # Discord's REMOVE_EMOJI, then REMOVE_ALL.
        await store.clear_reactions(100, "👎")
        assert [await store.vote_of(rid, u) for u in (5, 6, 7)] == [1, 1, 1]
        await store.clear_reactions(100)
        assert [await store.vote_of(rid, u) for u in (5, 6, 7)] == [0, 0, 0]

    custom = VoteConfig(positive=("🎉",), negative=("💤",))
    assert (custom.value("🎉"), custom.value("💤"), custom.value("👍")) == (1, -1, None)
    with pytest.raises(ValueError):
        VoteConfig(positive=("❤️",), negative=("❤",))


@async_test
async def test_a_cancelled_write_leaves_the_store_usable(tmp_path):
    async with await FeedbackStore.open(tmp_path / "muse.sqlite3") as store:
        rid = await image(store, 100)
        for steps in range(6):  # cancel at each point of the transaction in turn
            task = asyncio.create_task(store.add_reaction(100, steps, "👍"))
            for _ in range(steps):
                await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await store.add_reaction(100, 99, "👎") == -1
            assert await store.remove_reaction(100, 99, "👎") == 0
        # Cancelled before it started, a write does nothing; once started, it completes.
        assert [await store.vote_of(rid, user) for user in range(6)] == [0, 1, 1, 1, 1, 1]


@async_test
async def test_feedback_caps_each_user_and_weighs_signals(tmp_path):
    async with await FeedbackStore.open(tmp_path / "muse.sqlite3") as store:
        rids = [await image(store, 1000 + i, seed=i, latent=np.full((1, 2), i)) for i in range(40)]
        for i in range(40):
            await store.add_reaction(1000 + i, 7, "👍")
        for i in range(3):
            await store.add_reaction(1000 + i, 8, "👎")
        await store.add_signal(rids[0], 9, "variation")
        await store.add_signal(rids[1], 9, "reroll")
        await image(store, 5000, model="vae")
        await store.add_reaction(5000, 7, "👍")  # another model's feedback stays out

        items = await store.feedback("dcgan", per_user_cap=16)
        by_user = {u: [i for i in items if i.user_id == u] for u in (7, 8, 9)}
        assert len(items) == 16 + 3 + 2
        assert [i.seed for i in by_user[7]] == list(range(24, 40))  # the user's 16 most recent votes
        assert all(i.value == 1.0 and i.source == "vote" for i in by_user[7])
        assert [(i.value, i.source) for i in by_user[8]] == [(-1.0, "vote")] * 3
        assert [(i.result_id, i.value, i.source) for i in by_user[9]] == [
            (rids[0], 0.3, "variation"),
            (rids[1], -0.3, "reroll"),
        ]
        assert all(i.model_version == "v0001" and i.latent.shape == (1, 2) for i in items)
        assert [i.created_at for i in items] == sorted(i.created_at for i in items)
        assert {i.source for i in await store.feedback("dcgan", include_signals=False)} == {"vote"}
        assert await store.feedback_count("dcgan") == 43

        since = time.time()
        await store.add_reaction(1001, 9, "⭐")
        await store.remove_reaction(1002, 8, "👎")
        recent = await store.feedback("dcgan", since=since)
        assert [(i.user_id, i.result_id) for i in recent] == [(9, rids[1])]
        assert await store.feedback_count("dcgan", since=since) == 1


@async_test
async def test_like_rates_favourites_stats_and_export(tmp_path):
    async with await FeedbackStore.open(tmp_path / "muse.sqlite3") as store:
        a = await image(store, 1, requester_id=50, seed=11)
        b = await image(store, 2, requester_id=50)
        c = await image(store, 3, model_version="v0002", requester_id=51)
        other_guild = await image(store, 4, guild_id=2)
        for user in (60, 61, 62):
            await store.add_reaction(1, user, "👍")
        await store.add_reaction(2, 60, "👍")
        await store.add_reaction(2, 61, "👎")
        await store.add_reaction(2, 50, "👍")  # a requester liking their own result
        await store.add_reaction(4, 60, "👍")
        await store.add_reaction(4, 61, "👍")
        await store.add_signal(c, 60, "variation")

        assert await store.like_rates("dcgan") == {
            "v0001": {"results": 3, "likes": 7, "dislikes": 1, "like_rate": 7 / 8},
            "v0002": {"results": 1, "likes": 0, "dislikes": 0, "like_rate": None},
        }
        assert [(r.id, score) for r, score in await store.favourites(1)] == [(a, 3), (b, 1)]
        everywhere = await store.favourites(None, limit=2)
        assert [(r.id, score) for r, score in everywhere] == [(a, 3), (other_guild, 2)]
        assert await store.counts() == {"results": 4, "likes": 7, "dislikes": 1, "voters": 4, "signals": 1}
        assert set((await store.counts("vae")).values()) == {0}
        assert await store.user_stats(50) == {"results": 2, "votes": 1, "likes_received": 4}
        assert await store.user_stats(60, guild_id=1) == {"results": 0, "votes": 2, "likes_received": 0}

        rows = list(csv.DictReader(io.StringIO(await store.export_csv(guild_id=1))))
        assert tuple(rows[0]) == EXPORT_COLUMNS
        assert len(rows) == 3 + 3 + 1
        assert [(r["result_id"], r["user_id"], r["value"]) for r in rows[:3]] == [
            (str(a), str(u), "1") for u in (60, 61, 62)
        ]
        assert rows[0]["seed"] == "11" and rows[0]["message_id"] == "1" and rows[0]["kind"] == "image"
        assert (rows[-1]["result_id"], rows[-1]["source"], rows[-1]["value"]) == (str(c), "variation", "0.3")
        assert len(list(csv.reader(io.StringIO(await store.export_csv())))) == 1 + 8 + 1


@async_test
async def test_model_versions_and_trainer_runs(tmp_path):
    async with await FeedbackStore.open(tmp_path / "muse.sqlite3") as store:
        assert await store.served_version("dcgan") is None
        await store.set_model_version("dcgan", "v0001", "served", {"fid": 40.0}, note="shipped")
        await store.set_model_version("dcgan", "v0002", "candidate", {"fid": 38.0})
        await store.set_model_version("vae", "v0001", "served")
        await store.set_model_version("dcgan", "v0002", "served")
        assert await store.served_version("dcgan") == "v0002"
        assert await store.served_version("vae") == "v0001"
        versions = await store.model_versions("dcgan")
        assert [(v["version"], v["status"], v["metrics"], v["note"]) for v in versions] == [
            ("v0001", "retired", {"fid": 40.0}, "shipped"),
            ("v0002", "served", {"fid": 38.0}, ""),
        ]
        with pytest.raises(ValueError):
            await store.set_model_version("dcgan", "v0003", "best")

        assert await store.last_run("dcgan") is None
        first = await store.start_run("dcgan", "schedule")
        await store.finish_run(first, "skipped", detail={"reason": "not enough feedback"})
        second = await store.start_run("dcgan", "manual")
        running = await store.last_run("dcgan")
        assert (running["id"], running["outcome"], running["trigger"], running["finished_at"]) == (
            second, "running", "manual", None,
        )  # fmt: skip
        await store.finish_run(
            second, "promoted", candidate_version="v0003", feedback_used=120, detail={"fid": 37}
        )
        last = await store.last_run("dcgan")
        assert (last["outcome"], last["candidate_version"], last["feedback_used"]) == (
            "promoted", "v0003", 120,
        )  # fmt: skip
        assert last["detail"] == {"fid": 37} and last["finished_at"] >= last["started_at"]
        await store.start_run("vae", "schedule")
        assert [r["id"] for r in await store.runs("dcgan")] == [second, first]
        assert len(await store.runs()) == 3 and len(await store.runs(limit=1)) == 1
        with pytest.raises(StoreError):
            await store.finish_run(999, "failed")


@async_test
async def test_concurrent_writers_on_one_file(tmp_path):
    path = tmp_path / "muse.sqlite3"
    async with await FeedbackStore.open(path) as a, await FeedbackStore.open(path) as b:
        liked, disliked = await image(a, 1), await image(b, 2)
        await asyncio.gather(*(a.add_reaction(1, u, "👎") for u in range(100)))

        # 200 tasks on `a`, 120 on `b` (a second writer on the same file), all interleaved.
        tasks = [("add", a.add_reaction(1, u, "👍")) for u in range(100)]
        tasks += [("remove", a.remove_reaction(1, u, "👎")) for u in range(50)]
        tasks += [("result", image(a, 100 + i)) for i in range(50)]
        tasks += [("other", b.add_reaction(2, 1000 + u, "👎")) for u in range(100)]
        tasks += [("result", image(b, 500 + i, model="vae")) for i in range(20)]
        random.Random(0).shuffle(tasks)
        outcomes = await asyncio.gather(*(coroutine for _, coroutine in tasks))

        returned = {kind: [v for (k, _), v in zip(tasks, outcomes) if k == kind] for kind, _ in tasks}
        assert set(returned["add"]) == {1} and set(returned["remove"]) <= {0, 1}
        assert set(returned["other"]) == {-1} and len(set(returned["result"])) == 70
        assert [await b.vote_of(liked, u) for u in range(100)] == [1] * 100
        assert [await a.vote_of(disliked, 1000 + u) for u in range(100)] == [-1] * 100
        expected = {"results": 72, "likes": 100, "dislikes": 100, "voters": 200, "signals": 0}
        assert await a.counts() == await b.counts() == expected
        assert await a.integrity_check() == "ok"
    assert raw(path, "SELECT COUNT(*) FROM reactions") == [(100 + 50 + 100,)]


@async_test
async def test_migrates_a_version_1_database(tmp_path):
    path = tmp_path / "old.sqlite3"
    async with aiosqlite.connect(path, isolation_level=None) as db:
        await migrate(db, target=1)
        await db.execute(
            "INSERT INTO results (id, message_id, guild_id, kind, model, model_version, seed, params,"
            " created_at) VALUES (1, 555, 9, 'image', 'dcgan', 'v0001', 42, '{\"grid\": 4}', 1.0)"
        )
        await db.execute(
            "INSERT INTO reactions (result_id, user_id, emoji, value, added_at) VALUES (1, 7, '👍', 1, 2.0)"
        )
    assert raw(path, "PRAGMA user_version") == [(1,)]
    assert raw(path, "SELECT name FROM sqlite_master WHERE name = 'signals'") == []

    async with await FeedbackStore.open(path) as store:
        row = await store.get_result(message_id=555)
        assert (row.id, row.seed, row.params, row.parents) == (1, 42, {"grid": 4}, [])
        assert await store.vote_of(1, 7) == 1
        await store.add_signal(1, 8, "variation")
        await store.set_model_version("dcgan", "v0001", "served")
        await store.finish_run(await store.start_run("dcgan", "schedule"), "skipped")
        items = await store.feedback("dcgan")
        assert [(i.user_id, i.source) for i in items] == [(7, "vote"), (8, "variation")]
        morph = await store.record_result(kind="morph", model="dcgan", model_version="v0001", parents=[1, 1])
        assert (await store.get_result(result_id=morph)).parents == [1, 1]
    assert raw(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    async with await FeedbackStore.open(path) as store:  # reopening a current file changes nothing
        assert (await store.counts())["results"] == 2


def test_newer_or_foreign_files_are_refused(tmp_path):
    newer = tmp_path / "newer.sqlite3"
    with closing(sqlite3.connect(newer)) as db:
        db.execute("CREATE TABLE from_the_future (x)")
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before = newer.read_bytes()
    with pytest.raises(StoreError, match="newer Muse"):
        asyncio.run(FeedbackStore.open(newer))
    assert newer.read_bytes() == before and not Path(f"{newer}-wal").exists()

    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"this is not a database\n" * 200)
    with pytest.raises(StoreError, match="garbage.sqlite3"):
        asyncio.run(FeedbackStore.open(garbage))


CRASH_CHILD = """
import asyncio, sys
from genmodels.feedback.store import FeedbackStore

async def main(path):
    store = await FeedbackStore.open(path)
    for user in range(1_000_000):
        await store.add_reaction(1, user, "\\N{THUMBS UP SIGN}")
        print("ack", user, flush=True)

asyncio.run(main(sys.argv[1]))
"""


def test_acknowledged_votes_survive_kill_9(tmp_path):
    path = tmp_path / "muse.sqlite3"

    async def setup() -> int:
        async with await FeedbackStore.open(path) as store:
            return await image(store, 1)

    rid = asyncio.run(setup())
    pythonpath = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": pythonpath}
    child = subprocess.Popen(
        [sys.executable, "-c", CRASH_CHILD, str(path)], stdout=subprocess.PIPE, text=True, env=env
    )
    watchdog = threading.Timer(30, child.kill)
    watchdog.start()
    try:
        acked = []
        while len(acked) < 50 and (line := child.stdout.readline()):
            acked.append(int(line.split()[1]))
        os.kill(child.pid, signal.SIGKILL)  # mid-burst: the child never stops on its own
        child.wait()
        rest = child.stdout.read().splitlines(keepends=True)  # printed before the kill, not yet read
        acked += [int(line.split()[1]) for line in rest if line.endswith("\n")]
    finally:
        watchdog.cancel()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL and len(acked) >= 50

    async def check() -> None:
        async with await FeedbackStore.open(path) as store:
            assert await store.integrity_check() == "ok"
            assert [await store.vote_of(rid, user) for user in acked] == [1] * len(acked)

    asyncio.run(check())


# ---- a damaged file ---------------------------------------------------------------------------------------------

WAL_WRITER = """
import os, sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("INSERT INTO reactions (result_id, user_id, emoji, value, added_at) VALUES (1, 99, '👍', 1, 0.0)")
os._exit(0)  # killed before it closed: the committed vote is in the -wal file only
"""


def file_hashes(path: Path) -> dict[str, str]:
    """The SHA-256 of the database file and of its -wal file, by name (what must not change)."""
    import hashlib

    files = [path, Path(f"{path}-wal")]
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files if f.exists()}


def corrupt_database(path: Path, results: int = 400) -> dict[str, str]:
    """A real feedback database with rows, a committed vote left in its -wal (the writer was killed), then two
    pages in the middle of the file overwritten with noise, as a disk fault would. The header and the schema
    (page 1) are intact, so SQLite opens it and reads its schema; ``PRAGMA quick_check`` fails. Returns
    `file_hashes` of the damaged files."""

    async def create() -> None:
        async with await FeedbackStore.open(path):
            pass

    asyncio.run(create())
    latent = np.zeros((4, 64), np.float32).tobytes()  # a 4-image grid's latents: 1 KiB a row
    with closing(sqlite3.connect(path)) as db, db:
        db.executemany(
            "INSERT INTO results (message_id, guild_id, requester_id, kind, model, model_version, seed, latent,"
            " latent_shape, params, created_at) VALUES (?, 1, 7, 'image', 'dcgan', 'v0001', ?, ?, '[4, 64]', '{}', ?)",
            [(1000 + i, i, latent, float(i)) for i in range(results)])
        db.executemany("INSERT INTO reactions (result_id, user_id, emoji, value, added_at) VALUES (?, 5, '👍', 1, ?)",
                       [(i + 1, float(i)) for i in range(results)])
    subprocess.run([sys.executable, "-c", WAL_WRITER, str(path)], check=True, timeout=60)
    assert Path(f"{path}-wal").stat().st_size > 0
    page = int.from_bytes(path.read_bytes()[16:18], "big")  # the header's page size
    pages = path.stat().st_size // page
    noise = random.Random(0)
    with open(path, "r+b") as f:
        for p in (pages // 2, pages // 2 + 1):
            f.seek(p * page)
            f.write(noise.randbytes(page))
    hashes = file_hashes(path)
    # (read-only: closing a read-write connection would checkpoint the -wal into the file)
    with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
        assert db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'results'").fetchall() == [(1,)]
        with pytest.raises(sqlite3.DatabaseError):  # the damage shows only when its pages are read
            db.execute("SELECT count(*), sum(length(latent)) FROM results").fetchall()
    assert file_hashes(path) == hashes and len(hashes) == 2
    return hashes


def test_a_damaged_file_is_refused_at_open_and_never_written(tmp_path):
    from genmodels.feedback.store import StoreCorrupt

    path = tmp_path / "muse.sqlite3"
    before = corrupt_database(path)
    with pytest.raises(StoreCorrupt) as err:
        asyncio.run(FeedbackStore.open(path))
    assert isinstance(err.value, StoreError) and err.value.path == path and err.value.problems
    text = str(err.value)
    assert str(path) in text and "damaged" in text and "backup" in text and f"sqlite3 {path} .recover" in text
    # nothing written: no migration, and the -wal was not checkpointed into the damaged file
    assert file_hashes(path) == before

    # a sound file with a -wal left by a killed writer opens as before, its vote there
    sound = tmp_path / "sound.sqlite3"

    async def create() -> None:
        async with await FeedbackStore.open(sound) as store:
            await image(store, 1)

    async def reopen() -> int | None:
        async with await FeedbackStore.open(sound) as store:
            return await store.vote_of(1, 99)

    asyncio.run(create())
    subprocess.run([sys.executable, "-c", WAL_WRITER, str(sound)], check=True, timeout=60)
    assert Path(f"{sound}-wal").stat().st_size > 0
    assert asyncio.run(reopen()) == 1
