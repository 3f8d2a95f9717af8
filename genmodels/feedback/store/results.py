"""Results, the reactions on their messages, votes, button signals, and the feedback a fine-tune reads.

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
"""

from __future__ import annotations

import json
import time

import aiosqlite
import numpy as np

from .connection import StoreBase, _completes
from .rows import (
    _ITEMS,
    _RESULT_SELECT,
    FeedbackItem,
    ResultRow,
    StoreError,
    _check,
    _dump_latent,
    _load_latent,
    _result_row,
    normalise_emoji,
)

KINDS = ("image", "poem", "morph", "morph-poem")


class ResultsMixin(StoreBase):
    """Recording results and the reactions and button presses on them; reading votes and feedback back."""

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
        lineage: int = 0,
    ) -> int:
        """Record a generated result and return its id. ``latent`` is a float32 (n, d) array. ``lineage``: the
        server whose lineage's version made it (0: the base; `genmodels.registry.lineage_of` of its version)."""
        _check(kind, KINDS, "kind")
        blob, shape = _dump_latent(latent)
        async with self._write() as db:
            cursor = await db.execute(
                "INSERT INTO results (message_id, channel_id, guild_id, requester_id, kind, model,"
                " model_version, seed, latent, latent_shape, params, parents, content, created_at, lineage)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    message_id, channel_id, guild_id, requester_id, kind, model, model_version, seed, blob,
                    shape, json.dumps(params or {}), json.dumps(parents or []), content, time.time(), int(lineage),
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
        self, model: str, *, since: float = 0.0, per_user_cap: int = 16, include_signals: bool = True,
        server: int | None = None,
    ) -> list[FeedbackItem]:
        """Current votes (and button signals) on results of ``model`` made after ``since``, oldest first.

        ``server``: only results posted in that server (0: in DMs; None: everywhere), which is what one lineage
        learns from. Each user contributes at most ``per_user_cap`` items, their most recent ones, so one member
        cannot dominate a fine-tune.
        """
        rows = await self._fetch(
            f"""
            WITH items AS ({_ITEMS}),
            ranked AS (
                SELECT i.*,
                       ROW_NUMBER() OVER (PARTITION BY i.user_id ORDER BY i.created_at DESC, i.seq DESC) AS n
                FROM items AS i JOIN results AS r ON r.id = i.result_id
                WHERE r.model = :model AND i.created_at > :since AND (:signals OR i.source = 'vote')
                  AND (:server IS NULL OR COALESCE(r.guild_id, 0) = :server)
            )
            SELECT k.result_id, k.user_id, k.value, k.source, k.created_at,
                   r.model_version, r.seed, r.latent, r.latent_shape, r.params, r.content
            FROM ranked AS k JOIN results AS r ON r.id = k.result_id
            WHERE k.n <= :cap
            ORDER BY k.created_at, k.seq
            """,
            {"model": model, "since": since, "signals": include_signals, "cap": per_user_cap, "server": server},
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

    async def feedback_count(self, model: str, *, since: float = 0.0, server: int | None = None) -> int:
        """How many current votes on results of ``model`` were cast after ``since`` (in ``server``, as in
        `feedback`)."""
        row = await self._fetch_one(
            "SELECT COUNT(*) FROM votes AS v JOIN results AS r ON r.id = v.result_id"
            " WHERE r.model = :model AND v.changed_at > :since"
            " AND (:server IS NULL OR COALESCE(r.guild_id, 0) = :server)",
            {"model": model, "since": since, "server": server},
        )
        return row[0]

    async def new_feedback_by_server(self, model: str) -> dict[int, int]:
        """Per server (0: DMs), the current votes on results of ``model`` cast since that server's lineage last
        started a trainer run (ever, for one that never did): what the trainer counts toward its next run."""
        rows = await self._fetch(
            """
            SELECT COALESCE(r.guild_id, 0) AS server, COUNT(*) AS n
            FROM votes AS v JOIN results AS r ON r.id = v.result_id
            WHERE r.model = :model AND v.changed_at > COALESCE(
                (SELECT MAX(t.started_at) FROM trainer_runs AS t
                 WHERE t.model = :model AND t.server = COALESCE(r.guild_id, 0)), 0)
            GROUP BY COALESCE(r.guild_id, 0)
            """,
            {"model": model},
        )
        return {row["server"]: row["n"] for row in rows}

    @_completes
    async def delete_server_data(self, server: int) -> dict[str, int]:
        """Delete everything server ``server`` left: its results (with their reactions and signals), its group
        sessions, its lineage's versions, runs and change log, and its settings (a public gallery is private again). Returns the rows deleted per table."""
        if not server:
            raise ValueError("the base lineage's data is not one server's")
        out: dict[str, int] = {}
        async with self._write() as db:
            for table, sql in (
                ("sessions", "DELETE FROM sessions WHERE guild_id = :s"),
                ("results", "DELETE FROM results WHERE guild_id = :s"),
                ("model_versions", "DELETE FROM model_versions WHERE server = :s"),
                ("trainer_runs", "DELETE FROM trainer_runs WHERE server = :s"),
                ("model_changes", "DELETE FROM model_changes WHERE server = :s"),
                ("guild_settings", "DELETE FROM guild_settings WHERE guild_id = :s"),
            ):
                cursor = await db.execute(sql, {"s": int(server)})
                out[table] = cursor.rowcount
        return out
