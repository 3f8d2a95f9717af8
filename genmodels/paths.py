"""Where Muse keeps things on disk. Every location can be moved with an environment variable.

- datasets built by ``muse prepare``:  ``$MUSE_DATA_DIR``   (default ``./data``)
- training runs (resume files, logs): ``$MUSE_RUNS_DIR``   (default ``./runs``)
- model versions trained here:         ``$MUSE_MODELS_DIR`` (default ``./models``)
- weights shipped with Muse:           ``genmodels/weights`` inside the package (read-only)

A model is looked up in the user's models folder first and then among the shipped weights, so a fresh
install generates straight away and a server's own fine-tunes take over once they exist.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import checkpoints

SHIPPED = Path(__file__).resolve().parent / "weights"


def data_dir() -> Path:
    return Path(os.environ.get("MUSE_DATA_DIR", "data"))


def runs_dir() -> Path:
    return Path(os.environ.get("MUSE_RUNS_DIR", "runs"))


def models_dir() -> Path:
    return Path(os.environ.get("MUSE_MODELS_DIR", "models"))


def model_roots(root: str | os.PathLike | None = None) -> list[Path]:
    """Folders searched for a model, in order."""
    return [Path(root)] if root is not None else [models_dir(), SHIPPED]


def find_model(name: str, root: str | os.PathLike | None = None, version: int | None = None) -> Path:
    """The first root that holds a version of ``name`` (that very version, when one is given)."""
    for r in model_roots(root):
        versions = checkpoints.list_versions(r, name)
        if versions and (version is None or version in versions):
            return r
    where = ", ".join(str(r) for r in model_roots(root))
    what = f"'{name}' model" if version is None else f"version {version} of '{name}'"
    raise checkpoints.CheckpointError(
        f"No {what} found (looked in {where}). Train one with `muse train`, or reinstall Muse to get "
        "the shipped weights."
    )
