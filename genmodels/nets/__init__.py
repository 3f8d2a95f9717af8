"""The networks: the image generators, the VAEs and the feature net, each with its config dataclass."""

from __future__ import annotations

from dataclasses import fields
from typing import Any


def dataclass_from_dict(cls, d: dict[str, Any]):
    """Build a config dataclass from a dict, ignoring unknown keys (older or newer cards)."""
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in d.items() if k in names})
