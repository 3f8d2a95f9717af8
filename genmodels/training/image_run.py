"""The from-scratch run shared by the image models (DCGAN, conv VAE, feature net).

Each model's module supplies ``build(data, device) -> trainer``; the trainer has ``cfg``, ``step``, ``state``,
``load_state``, ``release_tensors()`` (what a version holds) and, optionally, ``metrics(data)`` (measured
right after training and stored in the card). This function does the rest: load the dataset, run the
resumable loop, write the model card and the new version.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch

from .. import checkpoints
from ..data.emoji import MODEL_STYLES, ImageSet, load_image_dataset
from . import common


def fit_image_model(
    name: str,
    build: Callable[[ImageSet, torch.device], Any],
    tcfg: Any,
    *,
    data_path: Path,
    runs_dir: Path,
    models_dir: Path,
    device: str = "auto",
    steps: int | None = None,
    resume: bool = True,
    progress: bool = True,
    save_every: int = 500,
    styles: tuple[str, ...] | None = MODEL_STYLES,
    card_extra: dict | None = None,
    card_data: Callable[[ImageSet], dict] | None = None,
) -> Path:
    """Train (or resume) and write a new version of ``name`` under ``models_dir``; returns its folder.

    ``styles``: the emoji sets the model learns from (None: every set in the dataset). ``card_extra``: entries for
    the card; ``card_data(data)``: more, computed from the training data."""
    dev = common.pick_device(device)
    data = load_image_dataset(data_path, styles)
    if steps is not None:
        tcfg.steps = steps
    trainer = build(data, dev)
    result = common.run_loop(
        total_steps=tcfg.steps, step=trainer.step, state=trainer.state, load_state=trainer.load_state,
        run_dir=Path(runs_dir) / name, resume=resume, save_every=save_every, desc=name, progress=progress,
    )
    card = common.base_card(name, trainer.cfg, tcfg, data_path, data.stats, result, tcfg.batch, dev)
    card["data"]["style_names"] = data.styles_present
    card["data"]["n_train_used"] = len(data.train_images)
    card.update(card_extra or {})
    card.update(card_data(data) if card_data else {})  # entries measured on the training data
    if hasattr(trainer, "metrics"):
        card["metrics"] = trainer.metrics(data)
    return checkpoints.save_version(models_dir, name, trainer.release_tensors(), card)


def load_init(name: str, models_dir: Path | None, version: int) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, card) of version ``version`` of ``name``, from ``models_dir`` or else the shipped weights: what
    ``muse train --init-from`` starts from."""
    from .. import paths

    own = models_dir is not None and version in checkpoints.list_versions(models_dir, name)
    return checkpoints.load_version(paths.find_model(name, models_dir if own else None, version), name, version)


def init_tag(init_from: tuple[dict, dict] | None) -> str | None:
    """The ``name/vNNNN`` a warm start began from, for the card."""
    return checkpoints.full_tag(init_from[1]["name"], init_from[1]["version"]) if init_from else None
