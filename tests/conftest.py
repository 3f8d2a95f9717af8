"""Shared fixtures: a tiny image dataset drawn by the tests themselves, and tiny models trained on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from genmodels.data.emoji import build_folder_dataset
from genmodels.nets.dcgan import DCGANConfig
from genmodels.nets.features import FeatureNetConfig
from genmodels.nets.vae import VAEConfig

torch.set_num_threads(min(2, torch.get_num_threads()))


def draw_shapes(folder: Path, per_label: int = 12, seed: int = 0) -> Path:
    """Three labelled sub-folders of 48×40 RGBA shapes (circles, squares, triangles) on transparency."""
    rng = np.random.default_rng(seed)
    for label in ("circles", "squares", "triangles"):
        (folder / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_label):
            im = Image.new("RGBA", (48, 40), (0, 0, 0, 0))
            d = ImageDraw.Draw(im)
            colour = tuple(int(c) for c in rng.integers(40, 255, 3)) + (255,)
            x0, y0 = rng.integers(2, 12, 2)
            box = [int(x0), int(y0), int(x0) + 28, int(y0) + 26]
            if label == "circles":
                d.ellipse(box, fill=colour)
            elif label == "squares":
                d.rectangle(box, fill=colour)
            else:
                d.polygon([(box[0], box[3]), (box[2], box[3]), ((box[0] + box[2]) // 2, box[1])], fill=colour)
            im.save(folder / label / f"{i:02d}.png")
    return folder


@pytest.fixture(scope="session")
def shapes_npz(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shapes")
    src = draw_shapes(root / "src")
    out = root / "data" / "images.npz"
    build_folder_dataset(src, out, seed=0, heldout=0.25)
    return out


TINY_DCGAN = DCGANConfig(nz=16, ngf=8, ndf=8, n_classes=3)
TINY_VAE = VAEConfig(nf=8, latent=8)
TINY_FEATURES = FeatureNetConfig(width=8, dim=16, n_classes=3)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory, shapes_npz) -> Path:
    """A models folder with a few-step dcgan, vae and feature net trained on the shapes."""
    from genmodels.training import dcgan, features, vae

    models = tmp_path_factory.mktemp("models")
    runs = tmp_path_factory.mktemp("runs")
    kw = dict(data_path=shapes_npz, runs_dir=runs, models_dir=models, device="cpu", progress=False)
    dcgan.train(steps=4, model=TINY_DCGAN, tcfg=dcgan.DCGANTrainConfig(batch=8, r1_every=2), **kw)
    vae.train(steps=4, model=TINY_VAE, tcfg=vae.VAETrainConfig(batch=8), **kw)
    features.train(steps=4, model=TINY_FEATURES, tcfg=features.FeatureTrainConfig(batch=8), **kw)
    return models
