"""The model lifecycle: each model's versions (at most one served) and the trainer's runs."""

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
