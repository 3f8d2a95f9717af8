"""Group sessions: a channel votes each round on N numbered candidates, and the winners breed the next round.

A session (``sessions``) is played in one channel or thread; at most one is active ('running' or 'paused')
per channel and per thread, which a partial unique index keeps true even across processes. Each round
(``session_rounds``, numbered from 1) holds its candidates (``session_candidates``, indexed from 0), each with
its genome (a float32 latent of the model's own shape: (nz,) for an image, (L, D) for a poem) and how it was
bred from the previous round (``op``, ``parents``, ``t``, ``mutation``). Votes are approvals
(``session_votes``): a member may approve any number of candidates, or choose "none of these" (choice -1),
which excludes the others; a button press toggles its choice.

What makes a restart (or two timers) safe:

* `add_round` inserts a round at most once: asking again for the same (session, number) returns the round
  already there and changes nothing, so a round is never bred twice;
* `close_round`, `extend_round`, `pause_session`, `resume_session` and `end_session` are compare-and-set:
  each changes the state it expects and reports whether it did, so of two callers exactly one wins;
* closing a round turns its approvals into weak feedback (``signals`` of kind 'session') in the same
  transaction, so each vote reaches the trainer exactly once.

Votes are written in batches (group commit): `queue_vote` (and `toggle_vote`, which awaits it) puts the vote on
the store's queue, and every vote that arrives while one transaction is being written (or within
`VOTE_BATCH_WINDOW_S` of the first) goes into the next one (`toggle_votes`), applied in arrival order, so a member
who presses twice gets both toggles, in order. A burst of a thousand presses is then a few transactions (one
fsync each), not a thousand; each vote's result comes only once its own transaction is committed.

Everything is plain data; nothing here imports discord.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Sequence

import aiosqlite
import numpy as np

from .connection import StoreBase, _completes
from .results import KINDS
from .rows import StoreError, _check, _dump_latent, _load_latent

SESSION_KINDS = ("image", "poem")
ACTIVE_STATUSES = ("running", "paused")
# 'finished': every round played; 'stopped': /session stop; 'abandoned': idle too long; 'failed': its thread
# was deleted, permissions were lost...
END_STATUSES = ("finished", "stopped", "abandoned", "failed")
ROUND_STATUSES = ("open", "closed")
VOTE_STATUSES = ("ok", "closed", "unknown", "missing")
SEED_OUTCOMES = ("ok", "duplicate", "full", "closed")
NONE_OF_THESE = -1

_ACTIVE_SQL = "('running', 'paused')"
MAX_ID = 2**63 - 1  # SQLite's INTEGER (rowids, snowflakes): a larger id names nothing in the store
VOTE_BATCH_WINDOW_S = 0.002  # how long the first vote of a quiet moment waits for others to share its commit
# Votes per transaction at most (a burst's later votes go into the next one): their read then binds at most 900
# variables (2 per round, 1 per voter), under the 999 of SQLite before 3.32.
VOTE_BATCH_MAX = 300


class SessionBusy(StoreError):
    """A session cannot start: ``reason`` 'channel' (one is active in this channel or thread) or 'guild' (the
    server has as many active sessions as it may)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class SessionRow:
    id: int
    guild_id: int | None
    channel_id: int  # where /session start was used
    thread_id: int | None  # where it is played; None until set; channel_id when no thread could be opened
    starter_id: int
    kind: str  # 'image' | 'poem'
    model: str
    params: dict
    rounds: int
    round_seconds: float
    candidates: int
    seed: int
    status: str  # ACTIVE_STATUSES or END_STATUSES
    current_round: int  # 0 before the first round
    paused_at: float | None
    created_at: float
    ended_at: float | None
    end_reason: str | None
    final_message_id: int | None


@dataclass
class RoundRow:
    id: int
    session_id: int
    number: int  # from 1
    status: str  # 'open' | 'closed'
    message_id: int | None
    opened_at: float
    deadline: float
    extended: bool
    closed_at: float | None
    close_reason: str | None
    model_version: str | None


@dataclass
class CandidateRow:
    id: int
    round_id: int
    idx: int  # from 0
    op: str
    parents: list  # idx of its parents in the previous round
    t: float | None
    mutation: float
    latent: np.ndarray  # the genome, float32, of the shape it was stored with
    content: str | None  # a poem's text
    result_id: int | None
    seeded_by: int | None


@dataclass
class SeedRow:
    id: int
    session_id: int
    round_number: int  # the round it will enter
    user_id: int
    name: str
    latent: np.ndarray
    content: str | None
    result_id: int | None
    created_at: float


@dataclass
class Tally:
    votes: list[int]  # approvals per candidate idx
    none: int  # "none of these"
    voters: int  # distinct users with any choice
    approvals: list[tuple[int, int]]  # (user_id, idx), idx >= 0, by user then idx


@dataclass
class VoteResult:
    # 'ok' | 'closed' (round closed or session ended) | 'unknown' (no such choice) | 'missing' (no such round)
    status: str
    choices: list[int]  # the user's choices after the toggle, sorted; -1 is "none of these"
    voters: int  # distinct users with any choice in the round
    session_status: str | None  # None when there is no such round
    # where the vote went, so that the confirmation needs no second query (not part of equality)
    session_id: int | None = field(default=None, compare=False)
    round_number: int | None = field(default=None, compare=False)
    deadline: float | None = field(default=None, compare=False)


_SESSION_FIELDS = (
    "id", "guild_id", "channel_id", "thread_id", "starter_id", "kind", "model", "params", "rounds",
    "round_seconds", "candidates", "seed", "status", "current_round", "paused_at", "created_at", "ended_at",
    "end_reason", "final_message_id",
)  # fmt: skip
_SESSION_SELECT = "SELECT " + ", ".join(_SESSION_FIELDS) + " FROM sessions"
_ROUND_SELECT = (
    "SELECT id, session_id, number, status, message_id, opened_at, deadline, extended, closed_at,"
    " close_reason, model_version FROM session_rounds"
)


def _session_row(row: sqlite3.Row) -> SessionRow:
    return SessionRow(**{**{name: row[name] for name in _SESSION_FIELDS}, "params": json.loads(row["params"])})


def _round_row(row: sqlite3.Row) -> RoundRow:
    return RoundRow(**{**dict(row), "extended": bool(row["extended"])})


def _candidate_row(row: sqlite3.Row) -> CandidateRow:
    return CandidateRow(
        id=row["id"],
        round_id=row["round_id"],
        idx=row["idx"],
        op=row["op"],
        parents=json.loads(row["parents"]),
        t=row["t"],
        mutation=row["mutation"],
        latent=_load_latent(row["latent"], row["latent_shape"]),
        content=row["content"],
        result_id=row["result_id"],
        seeded_by=row["seeded_by"],
    )


def _seed_row(row: sqlite3.Row) -> SeedRow:
    return SeedRow(
        id=row["id"],
        session_id=row["session_id"],
        round_number=row["round_number"],
        user_id=row["user_id"],
        name=row["name"],
        latent=_load_latent(row["latent"], row["latent_shape"]),
        content=row["content"],
        result_id=row["result_id"],
        created_at=row["created_at"],
    )


class SessionsMixin(StoreBase):
    """Group sessions: their rounds, candidates, approval votes, seeds, and the credits of a lineage."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # votes waiting for the next batch (`queue_vote`): (vote, the future of its caller)
        self._vote_queue: list[tuple[tuple[int, int, int, str], asyncio.Future]] = []
        self._vote_flusher: asyncio.Task | None = None

    # -- helpers inside a transaction ----------------------------------------------------------------------

    @staticmethod
    async def _tally(db: aiosqlite.Connection, round_id: int) -> Tally:
        ((count,),) = await db.execute_fetchall(
            "SELECT COUNT(*) FROM session_candidates WHERE round_id = ?", (round_id,)
        )
        rows = await db.execute_fetchall(
            "SELECT user_id, choice FROM session_votes WHERE round_id = ? ORDER BY user_id, choice", (round_id,)
        )
        votes = [0] * count
        none = 0
        approvals = []
        for user_id, choice in rows:
            if choice == NONE_OF_THESE:
                none += 1
            else:
                if 0 <= choice < count:
                    votes[choice] += 1
                approvals.append((user_id, choice))
        return Tally(votes=votes, none=none, voters=len({user for user, _ in rows}), approvals=approvals)

    @staticmethod
    async def _changed(db: aiosqlite.Connection, sql: str, params, missing: str | None = None) -> bool:
        cursor = await db.execute(sql, params)
        if cursor.rowcount == 0 and missing is not None:
            raise StoreError(missing)
        return cursor.rowcount > 0

    # -- sessions ------------------------------------------------------------------------------------------

    @_completes
    async def create_session(
        self,
        *,
        guild_id: int | None,
        channel_id: int,
        starter_id: int,
        kind: str,
        model: str,
        params: dict | None,
        rounds: int,
        round_seconds: float,
        candidates: int,
        seed: int,
        per_guild_limit: int,
    ) -> int:
        """Start a session (status 'running', round 0) and return its id. Raises `SessionBusy` ('channel')
        when a session is active in ``channel_id`` (as its channel or its thread), or ('guild') when the guild
        has ``per_guild_limit`` active sessions already (``per_guild_limit`` <= 0: no limit)."""
        _check(kind, SESSION_KINDS, "kind")
        async with self._write() as db:
            busy = await db.execute_fetchall(
                f"SELECT 1 FROM sessions WHERE status IN {_ACTIVE_SQL} AND (channel_id = ? OR thread_id = ?)",
                (channel_id, channel_id),
            )
            if busy:
                raise SessionBusy("channel", "A session is already running in this channel.")
            if per_guild_limit > 0:
                ((active,),) = await db.execute_fetchall(
                    f"SELECT COUNT(*) FROM sessions WHERE status IN {_ACTIVE_SQL} AND guild_id IS ?", (guild_id,)
                )
                if active >= per_guild_limit:
                    raise SessionBusy(
                        "guild", f"This server already has {active} session(s) running (at most {per_guild_limit})."
                    )
            cursor = await db.execute(
                "INSERT INTO sessions (guild_id, channel_id, starter_id, kind, model, params, rounds,"
                " round_seconds, candidates, seed, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    guild_id, channel_id, starter_id, kind, model, json.dumps(params or {}), rounds,
                    float(round_seconds), candidates, seed, time.time(),
                ),
            )  # fmt: skip
            return cursor.lastrowid

    @_completes
    async def set_session_thread(self, session_id: int, thread_id: int) -> None:
        """Where the session is played: its thread, or its channel when no thread could be opened."""
        async with self._write() as db:
            await self._changed(
                db, "UPDATE sessions SET thread_id = ? WHERE id = ?", (thread_id, session_id),
                f"no session {session_id}",
            )  # fmt: skip

    async def get_session(self, session_id: int) -> SessionRow | None:
        row = await self._fetch_one(f"{_SESSION_SELECT} WHERE id = ?", (session_id,))
        return _session_row(row) if row else None

    async def active_session(self, channel_id: int) -> SessionRow | None:
        """The active session started in ``channel_id`` or played in it (as its thread), if any."""
        row = await self._fetch_one(
            f"{_SESSION_SELECT} WHERE status IN {_ACTIVE_SQL} AND (channel_id = ? OR thread_id = ?)"
            " ORDER BY id LIMIT 1",
            (channel_id, channel_id),
        )
        return _session_row(row) if row else None

    async def sessions_of(self, guild_id: int, limit: int = 12) -> list[SessionRow]:
        """A server's sessions, newest first."""
        rows = await self._fetch(
            f"{_SESSION_SELECT} WHERE guild_id = ? ORDER BY id DESC LIMIT ?", (guild_id, limit))
        return [_session_row(row) for row in rows]

    async def active_sessions(self) -> list[SessionRow]:
        """Every active session, oldest first (for a restart to pick them up again)."""
        rows = await self._fetch(f"{_SESSION_SELECT} WHERE status IN {_ACTIVE_SQL} ORDER BY id")
        return [_session_row(row) for row in rows]

    async def active_count(self, guild_id: int | None) -> int:
        row = await self._fetch_one(
            f"SELECT COUNT(*) FROM sessions WHERE status IN {_ACTIVE_SQL} AND guild_id IS ?", (guild_id,)
        )
        return row[0]

    @_completes
    async def pause_session(self, session_id: int, paused_at: float) -> bool:
        """'running' -> 'paused'. False (and nothing written) when the session was not running."""
        async with self._write() as db:
            return await self._changed(
                db, "UPDATE sessions SET status = 'paused', paused_at = ? WHERE id = ? AND status = 'running'",
                (paused_at, session_id),
            )  # fmt: skip

    @_completes
    async def resume_session(self, session_id: int, round_id: int, deadline: float) -> bool:
        """'paused' -> 'running', and the session's round ``round_id`` now ends at ``deadline``. False (and
        nothing written) when the session was not paused; `StoreError` when the round is not the session's."""
        async with self._write() as db:
            if not await self._changed(
                db, "UPDATE sessions SET status = 'running', paused_at = NULL WHERE id = ? AND status = 'paused'",
                (session_id,),
            ):  # fmt: skip
                return False
            await self._changed(
                db, "UPDATE session_rounds SET deadline = ? WHERE id = ? AND session_id = ?",
                (deadline, round_id, session_id), f"no round {round_id} in session {session_id}",
            )  # fmt: skip
            return True

    @_completes
    async def end_session(self, session_id: int, status: str, reason: str) -> bool:
        """An active session -> ``status`` (one of `END_STATUSES`), with ``reason``. False (and nothing
        written) when it had already ended. Its rounds are left as they are."""
        _check(status, END_STATUSES, "status")
        async with self._write() as db:
            return await self._changed(
                db,
                "UPDATE sessions SET status = ?, ended_at = ?, end_reason = ?"
                f" WHERE id = ? AND status IN {_ACTIVE_SQL}",
                (status, time.time(), reason, session_id),
            )

    @_completes
    async def set_final_message(self, session_id: int, message_id: int) -> None:
        async with self._write() as db:
            await self._changed(
                db, "UPDATE sessions SET final_message_id = ? WHERE id = ?", (message_id, session_id),
                f"no session {session_id}",
            )  # fmt: skip

    # -- rounds and candidates -----------------------------------------------------------------------------

    @_completes
    async def add_round(
        self,
        session_id: int,
        number: int,
        *,
        deadline: float,
        model_version: str,
        candidates: list[dict],
        result: dict | None = None,
    ) -> tuple[int, bool]:
        """Open round ``number`` of an active session with its ``candidates`` and make it the current round
        (the session 'running' again if it was paused). Returns (round id, True).

        If that round exists already, nothing changes and it returns (its id, False): a restart or a second
        timer never breeds a round twice. A candidate is a dict: idx, op, latent (the genome, any shape), and
        optionally parents (list of idx), t, mutation, content, seeded_by. With ``result`` (kind, model,
        guild_id, channel_id, params), each candidate is also recorded as a result (its latent as (rows, last
        dim), its params ``result['params']`` plus session, round and candidate) so that votes on it can
        become feedback. `StoreError` when the session is not active.
        """
        if len({cand["idx"] for cand in candidates}) != len(candidates):
            raise ValueError("candidate idx must be unique")
        if result is not None:
            _check(result["kind"], KINDS, "result kind")
        dumped = []
        for cand in candidates:
            genome = np.asarray(cand["latent"], dtype=np.float32)
            blob, shape = _dump_latent(genome, ndim=None)
            rows = _dump_latent(genome.reshape(-1, genome.shape[-1])) if result is not None else (None, None)
            dumped.append((cand, blob, shape, rows))
        async with self._write() as db:
            rows = await db.execute_fetchall(
                "SELECT id FROM session_rounds WHERE session_id = ? AND number = ?", (session_id, number)
            )
            if rows:
                return rows[0]["id"], False
            now = time.time()
            if not await self._changed(
                db,
                "UPDATE sessions SET current_round = ?, status = 'running', paused_at = NULL"
                f" WHERE id = ? AND status IN {_ACTIVE_SQL}",
                (number, session_id),
            ):
                raise StoreError(f"session {session_id} is not active (or does not exist)")
            cursor = await db.execute(
                "INSERT INTO session_rounds (session_id, number, opened_at, deadline, model_version)"
                " VALUES (?, ?, ?, ?, ?)",
                (session_id, number, now, deadline, model_version),
            )
            round_id = cursor.lastrowid
            for cand, blob, shape, (flat_blob, flat_shape) in dumped:
                result_id = None
                if result is not None:
                    params = {**(result.get("params") or {}), "session": session_id, "round": number,
                              "candidate": cand["idx"]}  # fmt: skip
                    cursor = await db.execute(
                        "INSERT INTO results (channel_id, guild_id, kind, model, model_version, latent,"
                        " latent_shape, params, content, created_at, lineage) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            result.get("channel_id"), result.get("guild_id"), result["kind"], result["model"],
                            model_version, flat_blob, flat_shape, json.dumps(params), cand.get("content"), now,
                            int(result.get("lineage") or 0),
                        ),
                    )  # fmt: skip
                    result_id = cursor.lastrowid
                await db.execute(
                    "INSERT INTO session_candidates (round_id, idx, op, parents, t, mutation, latent,"
                    " latent_shape, content, result_id, seeded_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        round_id, cand["idx"], cand["op"], json.dumps(list(cand.get("parents") or [])),
                        cand.get("t"), float(cand.get("mutation") or 0.0), blob, shape, cand.get("content"),
                        result_id, cand.get("seeded_by"),
                    ),
                )  # fmt: skip
            return round_id, True

    @_completes
    async def set_round_message(self, round_id: int, message_id: int) -> None:
        async with self._write() as db:
            await self._changed(
                db, "UPDATE session_rounds SET message_id = ? WHERE id = ?", (message_id, round_id),
                f"no round {round_id}",
            )  # fmt: skip

    async def get_round(self, round_id: int) -> RoundRow | None:
        row = await self._fetch_one(f"{_ROUND_SELECT} WHERE id = ?", (round_id,))
        return _round_row(row) if row else None

    async def round_of(self, session_id: int, number: int) -> RoundRow | None:
        row = await self._fetch_one(f"{_ROUND_SELECT} WHERE session_id = ? AND number = ?", (session_id, number))
        return _round_row(row) if row else None

    async def rounds(self, session_id: int) -> list[RoundRow]:
        rows = await self._fetch(f"{_ROUND_SELECT} WHERE session_id = ? ORDER BY number", (session_id,))
        return [_round_row(row) for row in rows]

    async def candidates(self, round_id: int) -> list[CandidateRow]:
        rows = await self._fetch("SELECT * FROM session_candidates WHERE round_id = ? ORDER BY idx", (round_id,))
        return [_candidate_row(row) for row in rows]

    @_completes
    async def extend_round(self, round_id: int, deadline: float) -> bool:
        """Move an open round's deadline to ``deadline``, once per round. False when it was closed or had
        been extended already."""
        async with self._write() as db:
            return await self._changed(
                db,
                "UPDATE session_rounds SET deadline = ?, extended = 1 WHERE id = ? AND status = 'open'"
                " AND extended = 0",
                (deadline, round_id),
            )

    @_completes
    async def close_round(self, round_id: int, reason: str, *, signal_weight: float | None = None) -> Tally | None:
        """Close an open round and return its final tally; None (and nothing written) when it was not open.

        With ``signal_weight``, each approval of a candidate recorded as a result also becomes a 'session'
        signal of that weight on the result, in the same transaction: once per vote, whoever closes.
        """
        async with self._write() as db:
            now = time.time()
            if not await self._changed(
                db,
                "UPDATE session_rounds SET status = 'closed', closed_at = ?, close_reason = ?"
                " WHERE id = ? AND status = 'open'",
                (now, reason, round_id),
            ):
                return None
            if signal_weight is not None:
                await db.execute(
                    "INSERT INTO signals (result_id, user_id, kind, weight, created_at)"
                    " SELECT c.result_id, v.user_id, 'session', ?, ?"
                    " FROM session_votes AS v JOIN session_candidates AS c"
                    "   ON c.round_id = v.round_id AND c.idx = v.choice"
                    " WHERE v.round_id = ? AND v.choice >= 0 AND c.result_id IS NOT NULL"
                    " ORDER BY v.voted_at, v.user_id, v.choice",
                    (float(signal_weight), now, round_id),
                )
            return await self._tally(db, round_id)

    # -- votes ---------------------------------------------------------------------------------------------

    def queue_vote(self, round_id: int, user_id: int, choice: int, name: str = "") -> asyncio.Future:
        """`toggle_vote` without waiting: the vote joins the next batch, and the future returned at once gets its
        `VoteResult` (or the database's error) when that batch is committed. Cancelling the future does not take
        the vote back. Must be called in the store's event loop."""
        vote = (int(round_id), int(user_id), int(choice), str(name or ""))
        if not 0 <= vote[1] <= MAX_ID:
            raise ValueError(f"user id {user_id} is not a Discord id")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._vote_queue.append((vote, future))
        if self._vote_flusher is None:
            self._vote_flusher = loop.create_task(self._flush_votes(), name="muse-store-votes")
        return future

    async def toggle_vote(self, round_id: int, user_id: int, choice: int, name: str = "") -> VoteResult:
        """Toggle ``user_id``'s approval of candidate ``choice`` (or of "none of these", -1) in an open round
        of an active session. Choosing "none of these" withdraws the user's approvals, and approving a
        candidate withdraws their "none of these". ``name`` (their display name now), when given, becomes
        the name on all their votes in the round.

        Status 'closed' (nothing written) when the round is closed or its session has ended; 'missing' when
        there is no such round (a forged or garbled id included); 'unknown' (nothing written) when ``choice``
        is no candidate of the round.

        The vote shares its transaction with the others that arrive meanwhile (`queue_vote`, `toggle_votes`);
        the call returns once that transaction is committed, and raises what it raised. A cancelled caller's
        vote is still written, as any write of the store runs to its end.
        """
        return await self.queue_vote(round_id, user_id, choice, name)

    async def _flush_votes(self) -> None:
        """Write the queued votes, batch after batch, until none is left (one task at a time)."""
        batch: list = []
        try:
            await asyncio.sleep(VOTE_BATCH_WINDOW_S)
            while self._vote_queue:
                batch = self._vote_queue[:VOTE_BATCH_MAX]
                del self._vote_queue[:VOTE_BATCH_MAX]
                try:
                    results = await self.toggle_votes([vote for vote, _ in batch])
                except Exception as exc:  # noqa: BLE001 - every caller of the batch gets the database's error
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for (_, future), result in zip(batch, results):
                        if not future.done():
                            future.set_result(result)
                batch = []
        finally:
            self._vote_flusher = None
            # Cancelled (the loop is shutting down): nobody may wait for ever on a vote.
            for _, future in batch + self._vote_queue:
                if not future.done():
                    future.cancel()
            self._vote_queue.clear()

    @_completes
    async def toggle_votes(self, votes: Sequence[tuple[int, int, int, str]]) -> list[VoteResult]:
        """`toggle_vote` for each of ``votes`` ((round id, user id, choice, name)), applied in order, in one
        transaction: the result of each is what it would have been alone, after the ones before it. A round id
        outside SQLite's integers is 'missing', like any other round the store does not have.

        A batch is few round trips to the database's thread, whatever its size (one read, one delete, one
        insert): under a burst the event loop is busy, and each round trip waits for a turn of it."""
        votes = [(int(r), int(u), int(c), str(n or "")) for r, u, c, n in votes]
        if any(not 0 <= u <= MAX_ID for _, u, _, _ in votes):
            raise ValueError("a user id is not a Discord id")
        round_ids = sorted({r for r, _, _, _ in votes if 0 < r <= MAX_ID})
        users = sorted({u for r, u, _, _ in votes if 0 < r <= MAX_ID})
        results: list[VoteResult] = []
        async with self._write() as db:
            rounds: dict[int, sqlite3.Row] = {}
            rows_now: dict[tuple[int, int], dict[int, tuple[str, float]]] = {}  # choice -> (name, voted_at)
            if round_ids:
                marks, user_marks = ", ".join("?" * len(round_ids)), ", ".join("?" * len(users))
                # One read for the rounds (user_id NULL) and the voters' rows in them.
                rows = await db.execute_fetchall(
                    "SELECT r.id AS round_id, NULL AS user_id, NULL AS choice, NULL AS name, NULL AS voted_at,"
                    " r.status, r.session_id, r.number, r.deadline, s.status AS session_status,"
                    " (SELECT COUNT(*) FROM session_candidates AS c WHERE c.round_id = r.id) AS n,"
                    " (SELECT COUNT(DISTINCT v.user_id) FROM session_votes AS v WHERE v.round_id = r.id) AS voters"
                    f" FROM session_rounds AS r JOIN sessions AS s ON s.id = r.session_id WHERE r.id IN ({marks})"
                    " UNION ALL SELECT round_id, user_id, choice, name, voted_at,"
                    " NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM session_votes"
                    f" WHERE round_id IN ({marks}) AND user_id IN ({user_marks})",
                    [*round_ids, *round_ids, *users],
                )
                for row in rows:
                    if row["user_id"] is None:
                        rounds[row["round_id"]] = row
                    else:
                        rows_now.setdefault((row["round_id"], row["user_id"]), {})[row["choice"]] = (
                            row["name"], row["voted_at"])
            voters = {rid: row["voters"] for rid, row in rounds.items()}
            current = {key: set(choices) for key, choices in rows_now.items()}
            fresh: dict[tuple[int, int], dict[int, str]] = {}  # choices given in this batch -> the name given
            names: dict[tuple[int, int], str] = {}  # the latest name each voter gave in this batch
            for round_id, user_id, choice, name in votes:
                row = rounds.get(round_id)
                if row is None:
                    results.append(VoteResult("missing", [], 0, None))
                    continue
                key = (round_id, user_id)
                choices = current.setdefault(key, set())
                status = "ok"
                if row["status"] != "open" or row["session_status"] not in ACTIVE_STATUSES:
                    status = "closed"
                elif not (choice == NONE_OF_THESE or 0 <= choice < row["n"]):
                    status = "unknown"
                if status == "ok":
                    had = bool(choices)
                    added = fresh.setdefault(key, {})
                    if choice in choices:
                        choices.discard(choice)
                        added.pop(choice, None)
                    else:
                        for other in [c for c in choices if (c >= 0) == (choice == NONE_OF_THESE)]:
                            choices.discard(other)
                            added.pop(other, None)
                        choices.add(choice)
                        added[choice] = name
                    if name:
                        names[key] = name
                    voters[round_id] += bool(choices) - had
                results.append(VoteResult(status, sorted(choices), voters[round_id], row["session_status"],
                                          row["session_id"], row["number"], row["deadline"]))
            # Only the difference is written, in two statements: the rows to go (taken back, or taken back and
            # given again, or renamed) are deleted; the rows to come (given in this batch, or renamed, with the
            # time they were given) are inserted.
            now = time.time()
            gone, new = [], []
            for key, choices in current.items():
                before = rows_now.get(key, {})
                added = fresh.get(key, {})
                name = names.get(key)
                for choice, (old_name, voted_at) in before.items():
                    renamed = choice in choices and choice not in added and name is not None and name != old_name
                    if choice not in choices or choice in added or renamed:
                        gone.append((key[0], key[1], choice))
                    if renamed:
                        new.append((key[0], key[1], choice, name, voted_at))
                for choice, given in added.items():
                    new.append((key[0], key[1], choice, name if name is not None else given, now))
            if gone:
                await db.executemany(
                    "DELETE FROM session_votes WHERE round_id = ? AND user_id = ? AND choice = ?", gone
                )
            if new:
                await db.executemany(
                    "INSERT INTO session_votes (round_id, user_id, choice, name, voted_at) VALUES (?, ?, ?, ?, ?)",
                    new,
                )
        return results

    async def tally(self, round_id: int) -> Tally:
        """The round's approvals per candidate, its "none of these", and its voters, as they stand."""
        async with self._lock:
            return await self._tally(self._db, round_id)

    # -- seeds ---------------------------------------------------------------------------------------------

    @_completes
    async def add_seed(
        self,
        session_id: int,
        round_number: int,
        user_id: int,
        *,
        latent: np.ndarray,
        name: str = "",
        content: str | None = None,
        result_id: int | None = None,
        max_per_round: int,
    ) -> str:
        """A member's genome to enter round ``round_number``. 'ok'; 'duplicate' when the member already
        seeded that round (the first seed stays); 'full' when the round has ``max_per_round`` seeds; 'closed'
        when the session is not active or that round has been bred already. Only 'ok' writes anything."""
        blob, shape = _dump_latent(latent, ndim=None)
        async with self._write() as db:
            rows = await db.execute_fetchall(
                "SELECT status, current_round FROM sessions WHERE id = ?", (session_id,)
            )
            if not rows or rows[0]["status"] not in ACTIVE_STATUSES or round_number <= rows[0]["current_round"]:
                return "closed"
            seeded = await db.execute_fetchall(
                "SELECT user_id FROM session_seeds WHERE session_id = ? AND round_number = ?",
                (session_id, round_number),
            )
            if any(row[0] == user_id for row in seeded):
                return "duplicate"
            if len(seeded) >= max_per_round:
                return "full"
            await db.execute(
                "INSERT INTO session_seeds (session_id, round_number, user_id, name, latent, latent_shape,"
                " content, result_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (session_id, round_number, user_id, name, blob, shape, content, result_id, time.time()),
            )
            return "ok"

    async def seeds(self, session_id: int, round_number: int) -> list[SeedRow]:
        """The seeds for round ``round_number``, oldest first."""
        rows = await self._fetch(
            "SELECT * FROM session_seeds WHERE session_id = ? AND round_number = ? ORDER BY id",
            (session_id, round_number),
        )
        return [_seed_row(row) for row in rows]

    # -- credits -------------------------------------------------------------------------------------------

    async def lineage_credits(self, pairs: list[tuple[int, int]]) -> list[tuple[int, str, int]]:
        """Who approved the candidates ``pairs`` ((round id, idx), e.g. a winner's ancestors): (user_id,
        name, how many of them they approved), most first, then by user id. The name is the latest non-empty
        one they voted under in those rounds ('' when none)."""
        pairs = sorted({(int(r), int(i)) for r, i in pairs if i >= 0})
        if not pairs:
            return []
        values = ", ".join("(?, ?)" for _ in pairs)
        rows = await self._fetch(
            f"""
            WITH p (round_id, idx) AS (VALUES {values}),
            approved AS (
                SELECT v.user_id, COUNT(*) AS n
                FROM session_votes AS v JOIN p ON p.round_id = v.round_id AND p.idx = v.choice
                GROUP BY v.user_id
            )
            SELECT a.user_id, a.n, COALESCE((
                SELECT v.name FROM session_votes AS v
                WHERE v.user_id = a.user_id AND v.name != '' AND v.round_id IN (SELECT round_id FROM p)
                ORDER BY v.voted_at DESC, v.rowid DESC LIMIT 1
            ), '') AS name
            FROM approved AS a
            ORDER BY a.n DESC, a.user_id
            """,
            [value for pair in pairs for value in pair],
        )
        return [(row["user_id"], row["name"], row["n"]) for row in rows]
