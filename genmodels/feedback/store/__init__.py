"""The feedback store: every result Muse posted and every vote on it, in one SQLite file.

Everything here is plain data (ints, strings, numpy arrays); nothing imports discord. Ids are Python ints:
Discord snowflakes fit in SQLite's 64-bit INTEGER.

Durability model
----------------
An awaited write is on disk when the call returns, and a crash (power loss, ``kill -9``) never leaves a
half-applied change:

* **WAL journal** (``journal_mode=WAL``): readers never block the writer and the writer never blocks readers;
  a commit is an append to the ``-wal`` file, so a crash mid-write loses at most the uncommitted transaction.
* **``synchronous=FULL``**: the WAL is fsynced at every commit, so a committed transaction survives power
  loss, not only a crashed process.
* **A single writer**: every statement of a `FeedbackStore` goes through one connection, serialised by an
  `asyncio.Lock`, so one task's transaction never sees (or commits) another task's half-done work.
* **``BEGIN IMMEDIATE``**: each write transaction takes SQLite's write lock up front, before reading what it
  will change. Another process (a second store on the same file, the trainer, a CLI) then waits on
  ``busy_timeout`` (5 s) instead of failing with "database is locked" halfway through a read-then-write
  transaction, which a deferred ``BEGIN`` can do. Each write method commits before it returns, and runs to
  its end even if the awaiting task is cancelled.

Why reactions are stored as present-reaction rows
-------------------------------------------------
Discord reports reactions as independent per-emoji events (add, remove, remove-all, remove-emoji), a user
may have several reactions on one message at once, and events can be replayed after a reconnect. The store
therefore mirrors what is *on the message*: one row per (result, user, emoji) currently present. A user's
vote is derived from those rows: the value of their most recently added configured reaction that is still
present ("one vote per user per result, the latest counts"). Removing the latest reaction brings back an
older one that is still there, removing the last one removes the vote, and replaying an event is harmless.
A counter or a single "current vote" column could not undo a removal correctly.

"Most recently added" is the order of the inserts (an AUTOINCREMENT id assigned under the write lock), not
the wall clock, so two reactions in the same millisecond, or a clock stepped backwards, still order right.
Timestamps (``time.time()``) are informational and drive ``since`` filters; a vote's time is when the
reaction that now counts was added.

Schema
------
Versioned by ``PRAGMA user_version``; `MIGRATIONS` is the numbered list of scripts, applied at open, each in
its own transaction. A file written by a newer Muse is refused with a `StoreError` and left untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import functools
import io
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import aiosqlite
import numpy as np

KINDS = ("image", "poem", "morph", "morph-poem")
SIGNAL_KINDS = ("variation", "reroll")
VERSION_STATUSES = ("served", "candidate", "refused", "retired")
# A run is 'running' until finish_run. 'interrupted': Muse stopped (or died) before the run ended.
RUN_OUTCOMES = ("promoted", "refused", "failed", "skipped", "interrupted")
BUSY_TIMEOUT_MS = 5000
EXPORT_COLUMNS = (
    "result_id", "message_id", "channel_id", "kind", "model", "model_version", "seed",
    "user_id", "source", "value", "created_at",
)  # fmt: skip

_LATENT_DTYPE = np.dtype("<f4")

MIGRATIONS: tuple[str, ...] = (
    # 1: posted results and the reactions present on their messages; `votes` derives each user's vote.
    """
    CREATE TABLE results (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        message_id INTEGER UNIQUE,
        channel_id INTEGER,
        guild_id INTEGER,
        requester_id INTEGER,
        kind TEXT NOT NULL,
        model TEXT NOT NULL,
        model_version TEXT NOT NULL,
        seed INTEGER,
        latent BLOB,
        latent_shape TEXT,
        params TEXT NOT NULL DEFAULT '{}',
        content TEXT,
        created_at REAL NOT NULL
    );
    CREATE TABLE reactions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        result_id INTEGER NOT NULL REFERENCES results (id) ON DELETE CASCADE,
        user_id INTEGER NOT NULL,
        emoji TEXT NOT NULL,
        value INTEGER NOT NULL CHECK (value IN (-1, 1)),
        added_at REAL NOT NULL,
        UNIQUE (result_id, user_id, emoji)
    );
    CREATE VIEW votes AS
        SELECT r.result_id, r.user_id, r.value, r.added_at AS changed_at, r.id AS seq
        FROM reactions AS r
        WHERE r.id = (
            SELECT MAX(x.id) FROM reactions AS x WHERE x.result_id = r.result_id AND x.user_id = r.user_id
        );
    """,
    # 2: morph lineage, button signals, the model lifecycle, and the indexes the queries use.
    """
    ALTER TABLE results ADD COLUMN parents TEXT NOT NULL DEFAULT '[]';
    CREATE TABLE signals (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        result_id INTEGER NOT NULL REFERENCES results (id) ON DELETE CASCADE,
        user_id INTEGER NOT NULL,
        kind TEXT NOT NULL,
        weight REAL NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE model_versions (
        model TEXT NOT NULL,
        version TEXT NOT NULL,
        status TEXT NOT NULL,
        metrics TEXT NOT NULL DEFAULT '{}',
        note TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        PRIMARY KEY (model, version)
    );
    CREATE UNIQUE INDEX model_versions_one_served ON model_versions (model) WHERE status = 'served';
    CREATE TABLE trainer_runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        model TEXT NOT NULL,
        started_at REAL NOT NULL,
        finished_at REAL,
        "trigger" TEXT NOT NULL,
        outcome TEXT NOT NULL DEFAULT 'running',
        candidate_version TEXT,
        feedback_used INTEGER NOT NULL DEFAULT 0,
        detail TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX results_model_version ON results (model, model_version);
    CREATE INDEX results_guild ON results (guild_id);
    CREATE INDEX results_requester ON results (requester_id);
    CREATE INDEX signals_result ON signals (result_id);
    CREATE INDEX trainer_runs_model ON trainer_runs (model, id);
    """,
)


class StoreError(Exception):
    """The feedback database cannot be used as asked. The message is meant for the user."""


# Variation selectors (Discord sends "❤️" with or without U+FE0F) and skin tones (👍🏽 is a 👍).
_EMOJI_NOISE = dict.fromkeys([0xFE0E, 0xFE0F, *range(0x1F3FB, 0x1F400)])


def normalise_emoji(emoji: str) -> str:
    """The emoji as the store compares and keeps it: without variation selectors or skin tones."""
    return emoji.translate(_EMOJI_NOISE)


@dataclass(frozen=True)
class VoteConfig:
    """Which reactions are votes, and how much the buttons weigh."""

    positive: tuple[str, ...] = ("👍", "❤️", "⭐", "🔥")
    negative: tuple[str, ...] = ("👎",)
    variation_weight: float = 0.3
    reroll_weight: float = -0.3

    def __post_init__(self) -> None:
        both = {normalise_emoji(e) for e in self.positive} & {normalise_emoji(e) for e in self.negative}
        if both:
            raise ValueError(f"emoji both positive and negative: {sorted(both)}")

    def value(self, emoji: str) -> int | None:
        """+1 for a positive emoji, -1 for a negative one, None when the emoji is not a vote."""
        emoji = normalise_emoji(emoji)
        if any(normalise_emoji(e) == emoji for e in self.positive):
            return 1
        if any(normalise_emoji(e) == emoji for e in self.negative):
            return -1
        return None

    def signal_weight(self, kind: str) -> float:
        if kind not in SIGNAL_KINDS:
            raise ValueError(f"signal kind must be one of {SIGNAL_KINDS}, not {kind!r}")
        return self.variation_weight if kind == "variation" else self.reroll_weight


@dataclass
class ResultRow:
    """One generated result. ``latent`` has one row per image cell or poem line."""

    id: int
    message_id: int | None
    channel_id: int | None
    guild_id: int | None
    requester_id: int | None
    kind: str
    model: str
    model_version: str
    seed: int | None
    latent: np.ndarray | None
    params: dict
    parents: list
    content: str | None
    created_at: float


@dataclass
class FeedbackItem:
    """One training signal: a current vote (``value`` ±1) or a button press (``value`` = its weight)."""

    result_id: int
    user_id: int
    value: float
    source: str  # 'vote' | 'variation' | 'reroll'
    model_version: str
    seed: int | None
    latent: np.ndarray | None
    params: dict
    content: str | None
    created_at: float


# ----------------------------------------------------------------------------------------------------------
# Schema migrations
# ----------------------------------------------------------------------------------------------------------

SCHEMA_VERSION = len(MIGRATIONS)


def _statements(script: str) -> Iterator[str]:
    """Split a migration into statements: ``executescript`` would commit the migration's transaction."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending.strip()
            pending = ""
    assert not pending.strip(), f"incomplete statement in a migration: {pending.strip()[:60]}"


async def _user_version(db: aiosqlite.Connection) -> int:
    ((version,),) = await db.execute_fetchall("PRAGMA user_version")
    return version


async def migrate(db: aiosqlite.Connection, target: int = SCHEMA_VERSION) -> None:
    """Bring the schema of ``db`` up to version ``target``, one migration per transaction.

    ``db`` must be in autocommit mode (``isolation_level=None``). Each step re-reads ``user_version`` under
    ``BEGIN IMMEDIATE``, so two processes opening the same old file at once apply every migration once. A
    file from a newer Muse is refused before anything is written to it.
    """
    for version in range(1, target + 1):
        await db.execute("BEGIN IMMEDIATE")
        try:
            current = await _user_version(db)
            if current > SCHEMA_VERSION:
                raise StoreError(
                    f"the feedback database was written by a newer Muse (schema version {current}; this Muse "
                    f"knows up to {SCHEMA_VERSION}). Upgrade Muse, or point database.path at another file."
                )
            if current < version:
                for statement in _statements(MIGRATIONS[version - 1]):
                    await db.execute(statement)
                await db.execute(f"PRAGMA user_version = {version}")
        except BaseException:
            await db.execute("ROLLBACK")
            raise
        await db.execute("COMMIT")


# ----------------------------------------------------------------------------------------------------------
# Rows <-> Python
# ----------------------------------------------------------------------------------------------------------

_RESULT_FIELDS = (
    "id", "message_id", "channel_id", "guild_id", "requester_id", "kind", "model", "model_version", "seed",
    "latent", "latent_shape", "params", "parents", "content", "created_at",
)  # fmt: skip
_RESULT_SELECT = ", ".join(f"r.{name}" for name in _RESULT_FIELDS)

# Every current vote and every button signal, as (result_id, user_id, value, source, created_at, seq).
_ITEMS = """
    SELECT result_id, user_id, value, 'vote' AS source, changed_at AS created_at, seq FROM votes
    UNION ALL
    SELECT result_id, user_id, weight, kind, created_at, id FROM signals
"""


def _dump_latent(latent: np.ndarray | None) -> tuple[bytes | None, str | None]:
    if latent is None:
        return None, None
    array = np.ascontiguousarray(latent, dtype=_LATENT_DTYPE)
    if array.ndim != 2:
        raise ValueError(f"latent must have shape (n, d), got {array.shape}")
    return array.tobytes(), json.dumps(array.shape)


def _load_latent(blob: bytes | None, shape: str | None) -> np.ndarray | None:
    if blob is None:
        return None
    return np.frombuffer(blob, dtype=_LATENT_DTYPE).reshape(json.loads(shape)).astype(np.float32)


def _result_row(row: sqlite3.Row) -> ResultRow:
    return ResultRow(
        id=row["id"],
        message_id=row["message_id"],
        channel_id=row["channel_id"],
        guild_id=row["guild_id"],
        requester_id=row["requester_id"],
        kind=row["kind"],
        model=row["model"],
        model_version=row["model_version"],
        seed=row["seed"],
        latent=_load_latent(row["latent"], row["latent_shape"]),
        params=json.loads(row["params"]),
        parents=json.loads(row["parents"]),
        content=row["content"],
        created_at=row["created_at"],
    )


def _run_dict(row: sqlite3.Row) -> dict:
    return {**dict(row), "detail": json.loads(row["detail"])}


def _check(value: str, allowed: tuple[str, ...], what: str) -> None:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {allowed}, not {value!r}")


# ----------------------------------------------------------------------------------------------------------
# The store
# ----------------------------------------------------------------------------------------------------------


def _completes(write):
    """Run a write method to its end even if the awaiting task is cancelled.

    aiosqlite runs statements in its own thread: a task cancelled while waiting for ``BEGIN IMMEDIATE`` would
    release the lock with the transaction about to open, and every later write would fail. Shielded, the
    write commits (or rolls back) as usual and only the caller sees the cancellation.
    """

    @functools.wraps(write)
    async def shielded(self, *args, **kwargs):
        return await asyncio.shield(write(self, *args, **kwargs))

    return shielded


class FeedbackStore:
    """Results, reactions, button signals, model versions and trainer runs in one SQLite file.

    Open with ``await FeedbackStore.open(path)`` (or ``async with await FeedbackStore.open(path) as store``).
    One instance per process is the intended use; several instances (or processes) on one file are safe, as
    each write waits for SQLite's write lock.
    """

    SCHEMA_VERSION = SCHEMA_VERSION

    def __init__(self, db: aiosqlite.Connection, votes: VoteConfig) -> None:
        self._db = db
        self._lock = asyncio.Lock()
        self.votes = votes

    @classmethod
    async def open(cls, path: str | os.PathLike, votes: VoteConfig | None = None) -> FeedbackStore:
        """Open (creating folders and file as needed) and migrate the database at ``path``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            db = await aiosqlite.connect(path, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"{path}: {exc}") from exc
        try:
            db.row_factory = sqlite3.Row
            await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            await db.execute("PRAGMA foreign_keys = ON")
            await db.execute("PRAGMA synchronous = FULL")
            await migrate(db)
            ((mode,),) = await db.execute_fetchall("PRAGMA journal_mode = WAL")
            if mode != "wal":
                raise StoreError(f"SQLite could not switch to WAL mode (got {mode!r}); use a local disk")
        except (StoreError, sqlite3.DatabaseError) as exc:
            await db.close()
            raise StoreError(f"{path}: {exc}") from exc
        except BaseException:
            await db.close()
            raise
        return cls(db, votes or VoteConfig())

    async def close(self) -> None:
        """Wait for the transaction in progress, then close the connection."""
        async with self._lock:
            await self._db.close()

    async def __aenter__(self) -> FeedbackStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- plumbing ------------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction: the lock, ``BEGIN IMMEDIATE``, and ``COMMIT`` before the caller returns."""
        async with self._lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException as exc:
                if self._db.in_transaction:
                    await self._db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.IntegrityError):
                    raise StoreError(f"refused by the database: {exc}") from exc
                raise
            await self._db.execute("COMMIT")

    async def _fetch(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        """Run one query. It holds the lock so that it never runs inside another task's transaction."""
        async with self._lock:
            return list(await self._db.execute_fetchall(sql, params))

    async def _fetch_one(self, sql: str, params: Any = ()) -> sqlite3.Row | None:
        rows = await self._fetch(sql, params)
        return rows[0] if rows else None

    @staticmethod
    async def _result_id(db: aiosqlite.Connection, message_id: int) -> int | None:
        rows = await db.execute_fetchall("SELECT id FROM results WHERE message_id = ?", (message_id,))
        return rows[0]["id"] if rows else None

    @staticmethod
    async def _vote(db: aiosqlite.Connection, result_id: int, user_id: int) -> int:
        rows = await db.execute_fetchall(
            "SELECT value FROM votes WHERE result_id = ? AND user_id = ?", (result_id, user_id)
        )
        return rows[0]["value"] if rows else 0

    # -- results -------------------------------------------------------------------------------------------

    @_completes
    async def record_result(
        self,
        *,
        kind: str,
        model: str,
        model_version: str,
        seed: int | None = None,
        latent: np.ndarray | None = None,
        params: dict | None = None,
        parents: list | None = None,
        content: str | None = None,
        message_id: int | None = None,
        channel_id: int | None = None,
        guild_id: int | None = None,
        requester_id: int | None = None,
    ) -> int:
        """Record a generated result and return its id. ``latent`` is a float32 (n, d) array."""
        _check(kind, KINDS, "kind")
        blob, shape = _dump_latent(latent)
        async with self._write() as db:
            cursor = await db.execute(
                "INSERT INTO results (message_id, channel_id, guild_id, requester_id, kind, model,"
                " model_version, seed, latent, latent_shape, params, parents, content, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    message_id, channel_id, guild_id, requester_id, kind, model, model_version, seed, blob,
                    shape, json.dumps(params or {}), json.dumps(parents or []), content, time.time(),
                ),
            )  # fmt: skip
            return cursor.lastrowid

    @_completes
    async def attach_message(self, result_id: int, message_id: int, channel_id: int | None = None) -> None:
        """Set the message of a result once it is posted (and its channel, when given)."""
        async with self._write() as db:
            cursor = await db.execute(
                "UPDATE results SET message_id = ?, channel_id = COALESCE(?, channel_id) WHERE id = ?",
                (message_id, channel_id, result_id),
            )
            if cursor.rowcount == 0:
                raise StoreError(f"no result {result_id}")

    async def get_result(
        self, *, result_id: int | None = None, message_id: int | None = None
    ) -> ResultRow | None:
        """The result with this id, or posted as this message; None when there is none."""
        if (result_id is None) == (message_id is None):
            raise ValueError("give exactly one of result_id and message_id")
        column, key = ("id", result_id) if result_id is not None else ("message_id", message_id)
        row = await self._fetch_one(f"SELECT {_RESULT_SELECT} FROM results AS r WHERE r.{column} = ?", (key,))
        return _result_row(row) if row else None

    # -- reactions and signals -----------------------------------------------------------------------------

    @_completes
    async def add_reaction(
        self, message_id: int, user_id: int, emoji: str, *, is_bot: bool = False
    ) -> int | None:
        """Record a reaction. Returns the user's vote on the result afterwards (+1, -1, or 0 for none), or
        None when the reaction is ignored: by a bot, not a vote emoji, or not on a result's message."""
        value = self.votes.value(emoji)
        if is_bot or value is None:
            return None
        async with self._write() as db:
            result_id = await self._result_id(db, message_id)
            if result_id is None:
                return None
            await db.execute(
                "INSERT INTO reactions (result_id, user_id, emoji, value, added_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (result_id, user_id, emoji) DO NOTHING",
                (result_id, user_id, normalise_emoji(emoji), value, time.time()),
            )
            return await self._vote(db, result_id, user_id)

    @_completes
    async def remove_reaction(self, message_id: int, user_id: int, emoji: str) -> int | None:
        """Forget a reaction. Returns the user's vote afterwards, or None when ignored (as `add_reaction`)."""
        if self.votes.value(emoji) is None:
            return None
        async with self._write() as db:
            result_id = await self._result_id(db, message_id)
            if result_id is None:
                return None
            await db.execute(
                "DELETE FROM reactions WHERE result_id = ? AND user_id = ? AND emoji = ?",
                (result_id, user_id, normalise_emoji(emoji)),
            )
            return await self._vote(db, result_id, user_id)

    @_completes
    async def clear_reactions(self, message_id: int, emoji: str | None = None) -> None:
        """All reactions (Discord's remove-all), or all of one emoji (remove-emoji), left the message."""
        sql = "DELETE FROM reactions WHERE result_id = (SELECT id FROM results WHERE message_id = ?)"
        params: tuple = (message_id,)
        if emoji is not None:
            sql, params = sql + " AND emoji = ?", (message_id, normalise_emoji(emoji))
        async with self._write() as db:
            await db.execute(sql, params)

    @_completes
    async def add_signal(self, result_id: int, user_id: int, kind: str) -> None:
        """A button press on a result: 'variation' (mildly positive) or 'reroll' (mildly negative)."""
        weight = self.votes.signal_weight(kind)
        async with self._write() as db:
            await db.execute(
                "INSERT INTO signals (result_id, user_id, kind, weight, created_at) VALUES (?, ?, ?, ?, ?)",
                (result_id, user_id, kind, weight, time.time()),
            )

    async def vote_of(self, result_id: int, user_id: int) -> int:
        """The user's current vote on the result: +1, -1, or 0 for none."""
        async with self._lock:
            return await self._vote(self._db, result_id, user_id)

    # -- reading feedback ----------------------------------------------------------------------------------

    async def feedback(
        self, model: str, *, since: float = 0.0, per_user_cap: int = 16, include_signals: bool = True
    ) -> list[FeedbackItem]:
        """Current votes (and button signals) on results of ``model`` made after ``since``, oldest first.

        Each user contributes at most ``per_user_cap`` items, their most recent ones, so one member cannot
        dominate a fine-tune.
        """
        rows = await self._fetch(
            f"""
            WITH items AS ({_ITEMS}),
            ranked AS (
                SELECT i.*,
                       ROW_NUMBER() OVER (PARTITION BY i.user_id ORDER BY i.created_at DESC, i.seq DESC) AS n
                FROM items AS i JOIN results AS r ON r.id = i.result_id
                WHERE r.model = :model AND i.created_at > :since AND (:signals OR i.source = 'vote')
            )
            SELECT k.result_id, k.user_id, k.value, k.source, k.created_at,
                   r.model_version, r.seed, r.latent, r.latent_shape, r.params, r.content
            FROM ranked AS k JOIN results AS r ON r.id = k.result_id
            WHERE k.n <= :cap
            ORDER BY k.created_at, k.seq
            """,
            {"model": model, "since": since, "signals": include_signals, "cap": per_user_cap},
        )
        return [
            FeedbackItem(
                result_id=row["result_id"],
                user_id=row["user_id"],
                value=float(row["value"]),
                source=row["source"],
                model_version=row["model_version"],
                seed=row["seed"],
                latent=_load_latent(row["latent"], row["latent_shape"]),
                params=json.loads(row["params"]),
                content=row["content"],
                created_at=row["created_at"],
            )
            for row in rows
        ]

    async def feedback_count(self, model: str, *, since: float = 0.0) -> int:
        """How many current votes on results of ``model`` were cast after ``since``."""
        row = await self._fetch_one(
            "SELECT COUNT(*) FROM votes AS v JOIN results AS r ON r.id = v.result_id"
            " WHERE r.model = ? AND v.changed_at > ?",
            (model, since),
        )
        return row[0]

    async def counts(self, model: str | None = None) -> dict:
        """Totals, for one model or all: results, likes, dislikes, voters (distinct users), signals."""
        row = await self._fetch_one(
            """
            SELECT
                (SELECT COUNT(*) FROM results WHERE :model IS NULL OR model = :model) AS results,
                COUNT(*) FILTER (WHERE v.value > 0) AS likes,
                COUNT(*) FILTER (WHERE v.value < 0) AS dislikes,
                COUNT(DISTINCT v.user_id) AS voters,
                (SELECT COUNT(*) FROM signals AS s JOIN results AS r ON r.id = s.result_id
                 WHERE :model IS NULL OR r.model = :model) AS signals
            FROM votes AS v JOIN results AS r ON r.id = v.result_id
            WHERE :model IS NULL OR r.model = :model
            """,
            {"model": model},
        )
        return dict(row)

    async def like_rates(self, model: str) -> dict[str, dict]:
        """Per version of ``model``: results, likes, dislikes and like_rate (None before any vote)."""
        rows = await self._fetch(
            """
            SELECT r.model_version, COUNT(DISTINCT r.id) AS results,
                   COUNT(*) FILTER (WHERE v.value > 0) AS likes,
                   COUNT(*) FILTER (WHERE v.value < 0) AS dislikes
            FROM results AS r LEFT JOIN votes AS v ON v.result_id = r.id
            WHERE r.model = ?
            GROUP BY r.model_version ORDER BY r.model_version
            """,
            (model,),
        )
        rates = {}
        for row in rows:
            likes, dislikes = row["likes"], row["dislikes"]
            rates[row["model_version"]] = {
                "results": row["results"],
                "likes": likes,
                "dislikes": dislikes,
                "like_rate": likes / (likes + dislikes) if likes + dislikes else None,
            }
        return rates

    async def user_stats(self, user_id: int, guild_id: int | None = None) -> dict:
        """A member's results requested, votes given, and likes received from others on their results
        (in one guild, or everywhere when ``guild_id`` is None)."""
        row = await self._fetch_one(
            """
            SELECT
                (SELECT COUNT(*) FROM results AS r
                 WHERE r.requester_id = :user AND (:guild IS NULL OR r.guild_id = :guild)) AS results,
                (SELECT COUNT(*) FROM votes AS v JOIN results AS r ON r.id = v.result_id
                 WHERE v.user_id = :user AND (:guild IS NULL OR r.guild_id = :guild)) AS votes,
                (SELECT COUNT(*) FROM votes AS v JOIN results AS r ON r.id = v.result_id
                 WHERE r.requester_id = :user AND v.user_id != :user AND v.value > 0
                   AND (:guild IS NULL OR r.guild_id = :guild)) AS likes_received
            """,
            {"user": user_id, "guild": guild_id},
        )
        return dict(row)

    async def favourites(self, guild_id: int | None, limit: int = 5) -> list[tuple[ResultRow, int]]:
        """The most net-liked results (score = likes - dislikes > 0), best first, newest first on ties;
        ``guild_id`` None means every guild."""
        rows = await self._fetch(
            f"""
            SELECT {_RESULT_SELECT}, SUM(v.value) AS score
            FROM results AS r JOIN votes AS v ON v.result_id = r.id
            WHERE :guild IS NULL OR r.guild_id = :guild
            GROUP BY r.id HAVING score > 0
            ORDER BY score DESC, r.id DESC LIMIT :limit
            """,
            {"guild": guild_id, "limit": limit},
        )
        return [(_result_row(row), row["score"]) for row in rows]

    async def export_csv(self, guild_id: int | None = None) -> str:
        """Every current vote and signal as CSV (header `EXPORT_COLUMNS`), oldest first."""
        rows = await self._fetch(
            f"""
            WITH items AS ({_ITEMS})
            SELECT r.id, r.message_id, r.channel_id, r.kind, r.model, r.model_version, r.seed,
                   i.user_id, i.source, i.value, i.created_at
            FROM items AS i JOIN results AS r ON r.id = i.result_id
            WHERE :guild IS NULL OR r.guild_id = :guild
            ORDER BY i.created_at, i.seq
            """,
            {"guild": guild_id},
        )
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(EXPORT_COLUMNS)
        writer.writerows(tuple(row) for row in rows)
        return out.getvalue()

    # -- model versions and trainer runs -------------------------------------------------------------------

    @_completes
    async def set_model_version(
        self, model: str, version: str, status: str, metrics: dict | None = None, note: str = ""
    ) -> None:
        """Create or update a version. ``metrics`` and ``note`` replace the stored ones only when given.
        Marking a version 'served' retires the version served before it."""
        _check(status, VERSION_STATUSES, "status")
        async with self._write() as db:
            if status == "served":
                await db.execute(
                    "UPDATE model_versions SET status = 'retired'"
                    " WHERE model = ? AND status = 'served' AND version != ?",
                    (model, version),
                )
            await db.execute(
                """
                INSERT INTO model_versions (model, version, status, metrics, note, created_at)
                VALUES (:model, :version, :status, COALESCE(:metrics, '{}'), :note, :now)
                ON CONFLICT (model, version) DO UPDATE SET
                    status = excluded.status,
                    metrics = COALESCE(:metrics, metrics),
                    note = CASE WHEN :note = '' THEN note ELSE :note END
                """,
                {
                    "model": model,
                    "version": version,
                    "status": status,
                    "metrics": None if metrics is None else json.dumps(metrics),
                    "note": note,
                    "now": time.time(),
                },
            )

    async def served_version(self, model: str) -> str | None:
        row = await self._fetch_one(
            "SELECT version FROM model_versions WHERE model = ? AND status = 'served'", (model,)
        )
        return row["version"] if row else None

    async def model_versions(self, model: str) -> list[dict]:
        """Every recorded version of ``model``, oldest first."""
        rows = await self._fetch(
            "SELECT version, status, metrics, note, created_at FROM model_versions WHERE model = ?"
            " ORDER BY created_at, version",
            (model,),
        )
        return [{**dict(row), "metrics": json.loads(row["metrics"])} for row in rows]

    @_completes
    async def start_run(self, model: str, trigger: str, candidate_version: str | None = None) -> int:
        """Record that a trainer run started (outcome 'running') and return its id. ``candidate_version`` is the
        version the run will write, so that a run cut short can have its half-made candidate found again."""
        async with self._write() as db:
            cursor = await db.execute(
                'INSERT INTO trainer_runs (model, started_at, "trigger", candidate_version) VALUES (?, ?, ?, ?)',
                (model, time.time(), trigger, candidate_version),
            )
            return cursor.lastrowid

    @_completes
    async def interrupt_stale_runs(self, reason: str) -> list[dict]:
        """Mark every run still 'running' as 'interrupted' (with ``reason`` in its detail) and return those runs
        as they were. For a trainer starting up: any run still 'running' then was left by an earlier process
        (a crash, ``kill -9``), as runs of this one have not started yet."""
        async with self._write() as db:
            rows = await db.execute_fetchall("SELECT * FROM trainer_runs WHERE outcome = 'running' ORDER BY id")
            await db.execute(
                "UPDATE trainer_runs SET finished_at = ?, outcome = 'interrupted', detail = ?"
                " WHERE outcome = 'running'",
                (time.time(), json.dumps({"reason": reason})),
            )
            return [_run_dict(row) for row in rows]

    @_completes
    async def finish_run(
        self,
        run_id: int,
        outcome: str,
        *,
        candidate_version: str | None = None,
        feedback_used: int = 0,
        detail: dict | None = None,
    ) -> None:
        _check(outcome, RUN_OUTCOMES, "outcome")
        async with self._write() as db:
            cursor = await db.execute(
                "UPDATE trainer_runs SET finished_at = ?, outcome = ?, candidate_version = ?,"
                " feedback_used = ?, detail = ? WHERE id = ?",
                (time.time(), outcome, candidate_version, feedback_used, json.dumps(detail or {}), run_id),
            )
            if cursor.rowcount == 0:
                raise StoreError(f"no trainer run {run_id}")

    async def last_run(self, model: str) -> dict | None:
        """The most recently started run of ``model`` (finished or not), or None."""
        runs = await self.runs(model, limit=1)
        return runs[0] if runs else None

    async def runs(self, model: str | None = None, limit: int = 20) -> list[dict]:
        """Trainer runs, newest first: id, model, started_at, finished_at, trigger, outcome,
        candidate_version, feedback_used, detail (a dict)."""
        rows = await self._fetch(
            "SELECT * FROM trainer_runs WHERE :model IS NULL OR model = :model ORDER BY id DESC LIMIT :limit",
            {"model": model, "limit": limit},
        )
        return [_run_dict(row) for row in rows]

    async def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check``: "ok" for a healthy file, otherwise the problems found."""
        rows = await self._fetch("PRAGMA integrity_check")
        return "\n".join(row[0] for row in rows)
