"""The model lifecycle: each lineage's versions of each model (at most one served), the trainer's runs, and who
changed a lineage. A lineage is a server's (``server``, its guild id) or the base's (``server`` 0)."""

from __future__ import annotations

import json
import time

from .connection import StoreBase, _completes
from .rows import StoreError, _check, _run_dict

VERSION_STATUSES = ("served", "candidate", "refused", "retired")
# A run is 'running' until finish_run. 'interrupted': Muse stopped (or died) before the run ended.
RUN_OUTCOMES = ("promoted", "refused", "failed", "skipped", "interrupted")


class RegistryMixin(StoreBase):
    """Model versions (served, candidate, refused, retired) and trainer runs, from start to outcome."""

    @_completes
    async def set_model_version(
        self, model: str, version: str, status: str, metrics: dict | None = None, note: str = "", *,
        server: int = 0,
    ) -> None:
        """Create or update a version of ``server``'s lineage (0: the base). ``metrics`` and ``note`` replace the
        stored ones only when given. Marking a version 'served' retires the version served before it."""
        _check(status, VERSION_STATUSES, "status")
        async with self._write() as db:
            if status == "served":
                await db.execute(
                    "UPDATE model_versions SET status = 'retired'"
                    " WHERE model = ? AND server = ? AND status = 'served' AND version != ?",
                    (model, int(server), version),
                )
            await db.execute(
                """
                INSERT INTO model_versions (model, server, version, status, metrics, note, created_at)
                VALUES (:model, :server, :version, :status, COALESCE(:metrics, '{}'), :note, :now)
                ON CONFLICT (model, server, version) DO UPDATE SET
                    status = excluded.status,
                    metrics = COALESCE(:metrics, metrics),
                    note = CASE WHEN :note = '' THEN note ELSE :note END
                """,
                {
                    "model": model,
                    "server": int(server),
                    "version": version,
                    "status": status,
                    "metrics": None if metrics is None else json.dumps(metrics),
                    "note": note,
                    "now": time.time(),
                },
            )

    async def served_version(self, model: str, server: int = 0) -> str | None:
        """The version ``server``'s lineage of ``model`` serves (0: the base), or None."""
        row = await self._fetch_one(
            "SELECT version FROM model_versions WHERE model = ? AND server = ? AND status = 'served'",
            (model, int(server)),
        )
        return row["version"] if row else None

    async def served_versions(self) -> list[dict]:
        """Every lineage's served version: ``{"model", "server", "version"}`` rows."""
        rows = await self._fetch(
            "SELECT model, server, version FROM model_versions WHERE status = 'served' ORDER BY model, server"
        )
        return [dict(row) for row in rows]

    async def model_versions(self, model: str, server: int = 0) -> list[dict]:
        """Every recorded version of ``server``'s lineage of ``model`` (0: the base), oldest first."""
        rows = await self._fetch(
            "SELECT version, status, metrics, note, created_at FROM model_versions WHERE model = ? AND server = ?"
            " ORDER BY created_at, version",
            (model, int(server)),
        )
        return [{**dict(row), "metrics": json.loads(row["metrics"])} for row in rows]

    @_completes
    async def log_model_change(self, model: str, server: int, action: str, version: str | None = None, *,
                               actor_id: int | None = None, detail: dict | None = None) -> None:
        """Record who changed a lineage and how (``action``: train, promote, rollback, reset, delete...)."""
        async with self._write() as db:
            await db.execute(
                "INSERT INTO model_changes (model, server, action, version, actor_id, detail, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (model, int(server), action, version, actor_id, json.dumps(detail or {}), time.time()),
            )

    async def model_changes(self, server: int | None = None, limit: int = 50) -> list[dict]:
        """The change log of one lineage's models (``server``; None: every lineage), newest first."""
        rows = await self._fetch(
            "SELECT * FROM model_changes WHERE :server IS NULL OR server = :server ORDER BY id DESC LIMIT :limit",
            {"server": server, "limit": limit},
        )
        return [_run_dict(row) for row in rows]

    @_completes
    async def start_run(self, model: str, trigger: str, candidate_version: str | None = None, *,
                        server: int = 0) -> int:
        """Record that a trainer run of ``server``'s lineage (0: the base) started (outcome 'running') and return
        its id. ``candidate_version`` is the version the run will write, so that a run cut short can have its
        half-made candidate found again."""
        async with self._write() as db:
            cursor = await db.execute(
                'INSERT INTO trainer_runs (model, server, started_at, "trigger", candidate_version)'
                " VALUES (?, ?, ?, ?, ?)",
                (model, int(server), time.time(), trigger, candidate_version),
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

    async def last_run(self, model: str, server: int = 0) -> dict | None:
        """The most recently started run of ``server``'s lineage of ``model`` (finished or not), or None."""
        runs = await self.runs(model, limit=1, server=server)
        return runs[0] if runs else None

    async def runs(self, model: str | None = None, limit: int = 20, server: int | None = None) -> list[dict]:
        """Trainer runs, newest first: id, model, server, started_at, finished_at, trigger, outcome,
        candidate_version, feedback_used, detail (a dict). ``server``: one lineage's (None: every lineage's)."""
        rows = await self._fetch(
            "SELECT * FROM trainer_runs WHERE (:model IS NULL OR model = :model)"
            " AND (:server IS NULL OR server = :server) ORDER BY id DESC LIMIT :limit",
            {"model": model, "limit": limit, "server": server},
        )
        return [_run_dict(row) for row in rows]
