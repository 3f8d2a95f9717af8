"""The store's connection: opening and migrating the file, the pragmas, and its transactions.

`StoreBase` holds the one connection and the lock that serialises it; the query modules build on its
``_write`` (one write transaction), ``_fetch`` and ``_fetch_one``, and mark each write method with
`_completes`.

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

A damaged file is found at open
-------------------------------
Before the file is opened for writing, `quick_check` runs SQLite's ``PRAGMA quick_check`` on a read-only
connection. A file it finds damaged (a disk fault, a copy taken mid-write) is refused with `StoreCorrupt`,
before anything is written to it: no migration, and no checkpoint of its ``-wal`` into it, which closing a
read-write connection would do. The caller serves without the store (the bot does, as for any file it cannot
open), and the message says how to restore or recover the file. ``quick_check`` reads the whole file, O(N):
about 0.07 s for 100 MB in the page cache, and as long as reading the file from disk takes when it is not.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shlex
import sqlite3
from pathlib import Path
from typing import Any, AsyncIterator, Self

import aiosqlite

from .rows import StoreError, VoteConfig
from .schema import SCHEMA_VERSION, migrate

BUSY_TIMEOUT_MS = 5000
QUICK_CHECK_MAX = 10  # the problems `quick_check` reports at most (SQLite stops looking after as many)


class StoreCorrupt(StoreError):
    """SQLite's ``PRAGMA quick_check`` found the database file damaged when it was opened. Nothing was written
    to the file. ``path``: the file; ``problems``: what the check said (at most `QUICK_CHECK_MAX` lines)."""

    def __init__(self, path: str | os.PathLike, problems: list[str]):
        self.path, self.problems = Path(path), list(problems)
        q = shlex.quote(str(self.path))
        shown = "; ".join(p[:200] for p in self.problems[:3])
        if len(self.problems) > 3:
            shown += f"; and {'at least ' if len(self.problems) >= QUICK_CHECK_MAX else ''}" \
                     f"{len(self.problems) - 3} more"
        super().__init__(
            f"The feedback database {self.path} is damaged (SQLite's quick_check: {shown}). Nothing was written "
            "to it. Stop Muse, keep a copy of the damaged file (and of its -wal file, if there is one), and "
            "restore it from a backup, or recover what SQLite can still read with the sqlite3 tool: "
            f"`sqlite3 {q} .recover | sqlite3 {shlex.quote(f'{self.path}.recovered')}`, then put the recovered "
            "file in its place."
        )


def quick_check(path: str | os.PathLike) -> list[str]:
    """SQLite's ``PRAGMA quick_check`` of the database file at ``path``: [] when it is sound, else the problems
    found. Blocking (run it in a thread). The connection is read-only, so nothing is written to the file (SQLite
    may create the empty ``-wal`` and ``-shm`` files beside a WAL-mode file, as any reader does).

    Raises `sqlite3.Error` when the file cannot be checked at all: not a database, or not readable here."""
    uri = f"{Path(path).resolve().as_uri()}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000)) as db:
        try:
            rows = db.execute(f"PRAGMA quick_check({QUICK_CHECK_MAX})").fetchall()
        except sqlite3.DatabaseError as exc:  # SQLite can also give up on the first damaged page it reads
            if (getattr(exc, "sqlite_errorcode", 0) & 0xFF) != sqlite3.SQLITE_CORRUPT:
                raise
            return [str(exc)]
    problems = [str(row[0]) for row in rows]
    return [] if problems == ["ok"] else problems


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


class StoreBase:
    """The connection of a `FeedbackStore` and what every query needs: its lock and its transactions."""

    SCHEMA_VERSION = SCHEMA_VERSION

    def __init__(self, db: aiosqlite.Connection, votes: VoteConfig) -> None:
        self._db = db
        self._lock = asyncio.Lock()
        self.votes = votes

    @classmethod
    async def open(cls, path: str | os.PathLike, votes: VoteConfig | None = None, *, check: bool = True) -> Self:
        """Open (creating folders and file as needed) and migrate the database at ``path``.

        An existing file is first checked (`quick_check`, unless ``check`` is False): a damaged one raises
        `StoreCorrupt` and is left exactly as it was."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if check and path.is_file() and path.stat().st_size > 0:
            try:
                problems = await asyncio.to_thread(quick_check, path)
            except sqlite3.Error:  # not a database, not readable: the open below says so in its own words
                problems = []
            if problems:
                raise StoreCorrupt(path, problems)
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

    async def __aenter__(self) -> Self:
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
