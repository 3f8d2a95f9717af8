"""The feedback store: every result Muse posted and every vote on it, in one SQLite file.

Everything here is plain data (ints, strings, numpy arrays); nothing imports discord. Ids are Python ints:
Discord snowflakes fit in SQLite's 64-bit INTEGER.

`FeedbackStore` is the interface; its parts are one module per job, each importing only those above it in
this list:

* `.rows`: what the queries return (`ResultRow`, `FeedbackItem`), which reactions are votes (`VoteConfig`,
  `normalise_emoji`), latents as blobs, and `StoreError`;
* `.schema`: the tables (`MIGRATIONS`), their version (`SCHEMA_VERSION`) and `migrate`;
* `.connection`: `StoreBase`, the one connection with its pragmas, lock and write transactions, and the
  durability model (WAL, ``synchronous=FULL``, ``BEGIN IMMEDIATE``); the check at open (`quick_check`) that
  refuses a damaged file with `StoreCorrupt` without writing to it;
* `.results`: results, the reactions on their messages, votes, button signals, and the feedback a fine-tune
  reads; also why reactions are stored as the rows present on a message;
* `.registry`: model versions and trainer runs;
* `.reports`: counts, like rates, member stats, favourites, the CSV export and the integrity check;
* `.sessions`: group sessions (`SessionRow`, `RoundRow`, `CandidateRow`, `SeedRow`, `Tally`, `VoteResult`,
  `SessionBusy`): their rounds, candidates' genomes, approval votes, seeds and credits, and how a restart
  never breeds a round twice.

Import from here (``from genmodels.feedback.store import FeedbackStore, VoteConfig``): every name below is
part of the interface, wherever it is defined.
"""

from __future__ import annotations

from .connection import BUSY_TIMEOUT_MS, QUICK_CHECK_MAX, StoreBase, StoreCorrupt, quick_check
from .registry import RUN_OUTCOMES, VERSION_STATUSES, RegistryMixin
from .reports import EXPORT_COLUMNS, ReportsMixin
from .results import KINDS, ResultsMixin
from .rows import SIGNAL_KINDS, FeedbackItem, ResultRow, StoreError, VoteConfig, normalise_emoji
from .schema import MIGRATIONS, SCHEMA_VERSION, migrate
from .sessions import (
    ACTIVE_STATUSES,
    END_STATUSES,
    SESSION_KINDS,
    CandidateRow,
    RoundRow,
    SeedRow,
    SessionBusy,
    SessionRow,
    SessionsMixin,
    Tally,
    VoteResult,
)

# Helpers that were top-level names of this module before it became a package; still importable from here.
from .connection import _completes  # noqa: F401
from .rows import (  # noqa: F401
    _EMOJI_NOISE,
    _ITEMS,
    _LATENT_DTYPE,
    _RESULT_FIELDS,
    _RESULT_SELECT,
    _check,
    _dump_latent,
    _load_latent,
    _result_row,
    _run_dict,
)
from .schema import _statements, _user_version  # noqa: F401

__all__ = [
    "ACTIVE_STATUSES",
    "BUSY_TIMEOUT_MS",
    "END_STATUSES",
    "EXPORT_COLUMNS",
    "KINDS",
    "MIGRATIONS",
    "QUICK_CHECK_MAX",
    "RUN_OUTCOMES",
    "SCHEMA_VERSION",
    "SESSION_KINDS",
    "SIGNAL_KINDS",
    "VERSION_STATUSES",
    "CandidateRow",
    "FeedbackItem",
    "FeedbackStore",
    "ResultRow",
    "RoundRow",
    "SeedRow",
    "SessionBusy",
    "SessionRow",
    "StoreCorrupt",
    "StoreError",
    "Tally",
    "VoteConfig",
    "VoteResult",
    "migrate",
    "normalise_emoji",
    "quick_check",
]


class FeedbackStore(ResultsMixin, RegistryMixin, ReportsMixin, SessionsMixin, StoreBase):
    """Results, reactions, button signals, model versions, trainer runs and group sessions in one SQLite file.

    Open with ``await FeedbackStore.open(path)`` (or ``async with await FeedbackStore.open(path) as store``).
    One instance per process is the intended use; several instances (or processes) on one file are safe, as
    each write waits for SQLite's write lock.
    """
