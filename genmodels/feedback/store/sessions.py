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

Everything is plain data; nothing here imports discord.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field

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
VOTE_STATUSES = ("ok", "closed", "unknown")
SEED_OUTCOMES = ("ok", "duplicate", "full", "closed")
NONE_OF_THESE = -1

_ACTIVE_SQL = "('running', 'paused')"


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
    status: str  # 'ok' | 'closed' (round closed, session ended, or no such round) | 'unknown' (no such choice)
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
    async def _choices(db: aiosqlite.Connection, round_id: int, user_id: int) -> list[int]:
        rows = await db.execute_fetchall(
            "SELECT choice FROM session_votes WHERE round_id = ? AND user_id = ? ORDER BY choice",
            (round_id, user_id),
        )
        return [row[0] for row in rows]

    @staticmethod
    async def _voters(db: aiosqlite.Connection, round_id: int) -> int:
        ((voters,),) = await db.execute_fetchall(
            "SELECT COUNT(DISTINCT user_id) FROM session_votes WHERE round_id = ?", (round_id,)
        )
        return voters

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
                        " latent_shape, params, content, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            result.get("channel_id"), result.get("guild_id"), result["kind"], result["model"],
                            model_version, flat_blob, flat_shape, json.dumps(params), cand.get("content"), now,
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

    @_completes
    async def toggle_vote(self, round_id: int, user_id: int, choice: int, name: str = "") -> VoteResult:
        """Toggle ``user_id``'s approval of candidate ``choice`` (or of "none of these", -1) in an open round
        of an active session. Choosing "none of these" withdraws the user's approvals, and approving a
        candidate withdraws their "none of these". ``name`` (their display name now), when given, becomes
        the name on all their votes in the round.

        Status 'closed' (nothing written) when the round is closed, its session has ended, or there is no
        such round; 'unknown' (nothing written) when ``choice`` is no candidate of the round.
        """
        async with self._write() as db:
            rows = await db.execute_fetchall(
                "SELECT r.status, r.session_id, r.number, r.deadline, s.status AS session_status,"
                " (SELECT COUNT(*) FROM session_candidates AS c WHERE c.round_id = r.id) AS n"
                " FROM session_rounds AS r JOIN sessions AS s ON s.id = r.session_id WHERE r.id = ?",
                (round_id,),
            )
            if not rows:
                return VoteResult("closed", [], 0, None)
            row = rows[0]
            status = "ok"
            if row["status"] != "open" or row["session_status"] not in ACTIVE_STATUSES:
                status = "closed"
            elif not (choice == NONE_OF_THESE or 0 <= choice < row["n"]):
                status = "unknown"
            if status == "ok":
                present = await db.execute_fetchall(
                    "SELECT 1 FROM session_votes WHERE round_id = ? AND user_id = ? AND choice = ?",
                    (round_id, user_id, choice),
                )
                if present:
                    await db.execute(
                        "DELETE FROM session_votes WHERE round_id = ? AND user_id = ? AND choice = ?",
                        (round_id, user_id, choice),
                    )
                else:
                    exclusive = "choice >= 0" if choice == NONE_OF_THESE else "choice = -1"
                    await db.execute(
                        f"DELETE FROM session_votes WHERE round_id = ? AND user_id = ? AND {exclusive}",
                        (round_id, user_id),
                    )
                    await db.execute(
                        "INSERT INTO session_votes (round_id, user_id, choice, name, voted_at)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (round_id, user_id, choice, name, time.time()),
                    )
                if name:
                    await db.execute(
                        "UPDATE session_votes SET name = ? WHERE round_id = ? AND user_id = ?",
                        (name, round_id, user_id),
                    )
            return VoteResult(
                status,
                await self._choices(db, round_id, user_id),
                await self._voters(db, round_id),
                row["session_status"],
                row["session_id"],
                row["number"],
                row["deadline"],
            )

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
