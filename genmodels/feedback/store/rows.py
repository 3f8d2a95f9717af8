"""Rows <-> Python: what the store's queries return, which reactions are votes, latents as blobs.

Rows are plain data (ints, strings, numpy arrays). Ids are Python ints: Discord snowflakes fit in SQLite's
64-bit INTEGER.

A latent is kept as two columns: its float32 values, little-endian and row-major, in a BLOB (``latent``), and
its shape as JSON (``latent_shape``); it comes back as a float32 array of that shape. A result's latent is
(n, d); a group session's genome keeps its own shape ((nz,) for an image, (L, D) for a poem). Lists and dicts
(``params``, ``parents``, a run's ``detail``, a version's ``metrics``) are JSON text.

`_RESULT_SELECT` and `_ITEMS` are the SQL that the query modules share: the columns `_result_row` reads, and
every current vote and button signal as one table.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

import numpy as np

SIGNAL_KINDS = ("variation", "reroll", "session")

_LATENT_DTYPE = np.dtype("<f4")


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
    session_weight: float = 0.5  # an approval vote in a group session: weaker than a reaction (±1)

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
        return {
            "variation": self.variation_weight,
            "reroll": self.reroll_weight,
            "session": self.session_weight,
        }[kind]


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
    lineage: int = 0  # the server whose lineage's version made it (0: the base)


@dataclass
class FeedbackItem:
    """One training signal: a current vote (``value`` ±1) or a button press (``value`` = its weight)."""

    result_id: int
    user_id: int
    value: float
    source: str  # 'vote' | 'variation' | 'reroll' | 'session'
    model_version: str
    seed: int | None
    latent: np.ndarray | None
    params: dict
    content: str | None
    created_at: float


_RESULT_FIELDS = (
    "id", "message_id", "channel_id", "guild_id", "requester_id", "kind", "model", "model_version", "seed",
    "latent", "latent_shape", "params", "parents", "content", "created_at", "lineage",
)  # fmt: skip
_RESULT_SELECT = ", ".join(f"r.{name}" for name in _RESULT_FIELDS)

# Every current vote and every button signal, as (result_id, user_id, value, source, created_at, seq).
_ITEMS = """
    SELECT result_id, user_id, value, 'vote' AS source, changed_at AS created_at, seq FROM votes
    UNION ALL
    SELECT result_id, user_id, weight, kind, created_at, id FROM signals
"""


def _dump_latent(latent: np.ndarray | None, ndim: int | None = 2) -> tuple[bytes | None, str | None]:
    """A latent as (blob, shape JSON). ``ndim``: the number of dimensions it must have (a result's latent is
    (n, d)); None takes any shape of at least one dimension (a group session's genome: (nz,) or (L, D))."""
    if latent is None:
        return None, None
    array = np.asarray(latent, dtype=_LATENT_DTYPE)  # (ascontiguousarray would make a scalar 1-D)
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"latent must have {ndim} dimensions, got shape {array.shape}")
    if array.ndim < 1:
        raise ValueError("latent must have at least one dimension, got a scalar")
    return np.ascontiguousarray(array).tobytes(), json.dumps(array.shape)


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
        lineage=row["lineage"],
    )


def _run_dict(row: sqlite3.Row) -> dict:
    return {**dict(row), "detail": json.loads(row["detail"])}


def _check(value: str, allowed: tuple[str, ...], what: str) -> None:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {allowed}, not {value!r}")
