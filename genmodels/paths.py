"""Where Muse keeps things on disk. Every location can be moved with an environment variable.

- datasets built by ``muse prepare``:  ``$MUSE_DATA_DIR``   (default ``./data``)
- training runs (resume files, logs): ``$MUSE_RUNS_DIR``   (default ``./runs``)
- model versions trained here:         ``$MUSE_MODELS_DIR`` (default ``./models``)
- weights shipped with Muse:           ``genmodels/weights`` inside the package (read-only)

A model is looked up in the user's models folder first and then among the shipped weights, so a fresh
install generates straight away and a server's own fine-tunes take over once they exist. "Exist" means a
version a loader may serve by default (`checkpoints.servable`, with intact files): a models folder that holds
only refused or unjudged fine-tune candidates, or only corrupt copies, does not hide the shipped weights.
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


def resolve_model(name: str, root: str | os.PathLike | None = None, version: int | None = None) -> tuple[Path, int]:
    """(root, version) of the model a loader gets for ``name``.

    With ``version``: the first root that holds that very version, whatever its card says. Without: the first
    root that holds a version servable by default, and that version (`checkpoints.default_version`); corrupt
    versions in the roots passed over are logged as WARNINGs.
    """
    passed_over: list[str] = []
    for r in model_roots(root):
        if version is not None:
            if version in checkpoints.list_versions(r, name):
                return r, version
            continue
        found, skipped = checkpoints.default_version(r, name)
        if found is not None:
            # versions skipped in this root are logged by `checkpoints.load_version`, which loaders call next
            return r, found
        for s in skipped:
            s.log()
        passed_over += [f"{r}: {s}" for s in skipped]
    where = ", ".join(str(r) for r in model_roots(root))
    what = f"'{name}' model" if version is None else f"version {version} of '{name}'"
    unusable = f" Passed over: {'; '.join(passed_over)}." if passed_over else ""
    raise checkpoints.CheckpointError(
        f"No {what} found (looked in {where}).{unusable} Train one with `muse train`, or reinstall Muse to get "
        "the shipped weights."
    )


def find_model(name: str, root: str | os.PathLike | None = None, version: int | None = None) -> Path:
    """The root a loader should read ``name`` from (see `resolve_model`)."""
    return resolve_model(name, root, version)[0]


def version_root(name: str, version: int, root: str | os.PathLike | None = None) -> Path:
    """The root holding version ``version`` of ``name``: ``root`` when it holds it, else the usual roots (so a
    fine-tuned version in the models folder finds the shipped model its card names: an LM baseline, a feature
    net)."""
    try:
        return find_model(name, root, version)
    except checkpoints.CheckpointError:
        if root is None:
            raise
        return find_model(name, None, version)
