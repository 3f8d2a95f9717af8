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
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import sqlite3
from pathlib import Path
from typing import Any, AsyncIterator, Self

import aiosqlite

from .rows import StoreError, VoteConfig
from .schema import SCHEMA_VERSION, migrate

BUSY_TIMEOUT_MS = 5000


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
    async def open(cls, path: str | os.PathLike, votes: VoteConfig | None = None) -> Self:
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
