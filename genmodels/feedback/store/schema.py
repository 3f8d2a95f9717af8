"""The schema of the feedback database and its migrations.

Versioned by ``PRAGMA user_version``; `MIGRATIONS` is the numbered list of scripts, applied at open, each in
its own transaction. A file written by a newer Muse is refused with a `StoreError` and left untouched.

The tables: ``results`` (one row per posted result, with its latent and parameters), ``reactions`` (the vote
reactions present on a result's message, one row per result, user and emoji; why, see
`genmodels.feedback.store.results`), the ``votes`` view (each user's current vote, derived from those rows),
``signals`` (button presses, and approvals in group sessions), ``model_versions`` (at most one 'served' per
model and lineage; ``server`` 0 is the base lineage, any other the lineage of that server), ``trainer_runs`` (each of
one lineage), ``model_changes`` (who trained, rolled back or reset a lineage), ``guild_settings`` (a server's
own settings: its public gallery); and a group session's tables (`genmodels.feedback.store.sessions`): ``sessions``
(at most one active per channel, and per thread), ``session_rounds``, ``session_candidates`` (each round's
genomes), ``session_votes`` (approvals, one row per user and choice) and ``session_seeds``.
"""

from __future__ import annotations

import sqlite3
from typing import Iterator

import aiosqlite

from .rows import StoreError

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
    # 3: group sessions: their rounds, each round's candidates (genomes), approval votes, and members' seeds.
    # The UNIQUE constraints are also the indexes of rounds by session, candidates and votes by round, and
    # seeds by session.
    """
    CREATE TABLE sessions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        guild_id INTEGER,
        channel_id INTEGER NOT NULL,
        thread_id INTEGER,
        starter_id INTEGER NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('image', 'poem')),
        model TEXT NOT NULL,
        params TEXT NOT NULL DEFAULT '{}',
        rounds INTEGER NOT NULL,
        round_seconds REAL NOT NULL,
        candidates INTEGER NOT NULL,
        seed INTEGER NOT NULL,
        status TEXT NOT NULL DEFAULT 'running',
        current_round INTEGER NOT NULL DEFAULT 0,
        paused_at REAL,
        created_at REAL NOT NULL,
        ended_at REAL,
        end_reason TEXT,
        final_message_id INTEGER
    );
    CREATE UNIQUE INDEX sessions_one_active_per_channel ON sessions (channel_id)
        WHERE status IN ('running', 'paused');
    CREATE UNIQUE INDEX sessions_one_active_per_thread ON sessions (thread_id)
        WHERE status IN ('running', 'paused');
    CREATE INDEX sessions_status ON sessions (status, guild_id);
    CREATE TABLE session_rounds (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        number INTEGER NOT NULL,
        status TEXT NOT NULL DEFAULT 'open',
        message_id INTEGER,
        opened_at REAL NOT NULL,
        deadline REAL NOT NULL,
        extended INTEGER NOT NULL DEFAULT 0,
        closed_at REAL,
        close_reason TEXT,
        model_version TEXT,
        UNIQUE (session_id, number)
    );
    CREATE TABLE session_candidates (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        round_id INTEGER NOT NULL REFERENCES session_rounds (id) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        op TEXT NOT NULL,
        parents TEXT NOT NULL DEFAULT '[]',
        t REAL,
        mutation REAL NOT NULL DEFAULT 0,
        latent BLOB NOT NULL,
        latent_shape TEXT NOT NULL,
        content TEXT,
        result_id INTEGER REFERENCES results (id),
        seeded_by INTEGER,
        UNIQUE (round_id, idx)
    );
    CREATE TABLE session_votes (
        round_id INTEGER NOT NULL REFERENCES session_rounds (id) ON DELETE CASCADE,
        user_id INTEGER NOT NULL,
        choice INTEGER NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        voted_at REAL NOT NULL,
        PRIMARY KEY (round_id, user_id, choice)
    );
    CREATE TABLE session_seeds (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        round_number INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        latent BLOB NOT NULL,
        latent_shape TEXT NOT NULL,
        content TEXT,
        result_id INTEGER,
        created_at REAL NOT NULL,
        UNIQUE (session_id, round_number, user_id)
    );
    """,
    # 4: a model lineage per server. Every version and run so far belongs to the base lineage (server 0); every
    # result is filed under the lineage that made it (0: the base) as well as under the server it was posted in
    # (guild_id, as before); who changed a lineage, and how, is kept in model_changes.
    """
    CREATE TABLE model_versions_4 (
        model TEXT NOT NULL,
        server INTEGER NOT NULL DEFAULT 0,
        version TEXT NOT NULL,
        status TEXT NOT NULL,
        metrics TEXT NOT NULL DEFAULT '{}',
        note TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        PRIMARY KEY (model, server, version)
    );
    INSERT INTO model_versions_4 (model, server, version, status, metrics, note, created_at)
        SELECT model, 0, version, status, metrics, note, created_at FROM model_versions;
    DROP TABLE model_versions;
    ALTER TABLE model_versions_4 RENAME TO model_versions;
    CREATE UNIQUE INDEX model_versions_one_served ON model_versions (model, server) WHERE status = 'served';
    ALTER TABLE trainer_runs ADD COLUMN server INTEGER NOT NULL DEFAULT 0;
    DROP INDEX trainer_runs_model;
    CREATE INDEX trainer_runs_model ON trainer_runs (model, server, id);
    ALTER TABLE results ADD COLUMN lineage INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX results_model_guild ON results (model, guild_id);
    CREATE TABLE model_changes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        model TEXT NOT NULL,
        server INTEGER NOT NULL DEFAULT 0,
        action TEXT NOT NULL,
        version TEXT,
        actor_id INTEGER,
        detail TEXT NOT NULL DEFAULT '{}',
        created_at REAL NOT NULL
    );
    CREATE INDEX model_changes_server ON model_changes (server, id);
    """,
    # 5: a server's own settings: whether its managers made its gallery public on the web pages (off until they
    # do), under which name, by whom and when.
    """
    CREATE TABLE guild_settings (
        guild_id INTEGER PRIMARY KEY,
        name TEXT NOT NULL DEFAULT '',
        web_public INTEGER NOT NULL DEFAULT 0 CHECK (web_public IN (0, 1)),
        updated_by INTEGER,
        updated_at REAL NOT NULL
    );
    """,
)

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
