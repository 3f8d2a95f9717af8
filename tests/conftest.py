"""Shared fixtures: a tiny image dataset drawn by the tests themselves, and tiny models trained on it."""

from __future__ import annotations

import os
from pathlib import Path

# The recorded grids of the shipped weights (test_image_models.py) are oneDNN's AVX2 kernels' output: on a CPU with
# AVX-512, oneDNN's other kernels round a few pixels of the OpenMoji grids differently. The tests pin the kernels
# (before torch runs its first convolution), so the goldens hold on every machine; Muse itself uses the fastest.
os.environ.setdefault("DNNL_MAX_CPU_ISA", "AVX2")

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
    # the feature net first: the dcgan's card measures its grid rule with the net of its models folder
    features.train(steps=4, model=TINY_FEATURES, tcfg=features.FeatureTrainConfig(batch=8), **kw)
    dcgan.train(steps=4, model=TINY_DCGAN, tcfg=dcgan.DCGANTrainConfig(batch=8, r1_every=2), **kw)
    vae.train(steps=4, model=TINY_VAE, tcfg=vae.VAETrainConfig(batch=8), **kw)
    return models


@pytest.fixture(scope="session")
def styled_npz(tmp_path_factory, shapes_npz) -> Path:
    """The shapes in two emoji "styles": as drawn ("noto") and colour-inverted ("openmoji"), as `muse prepare images`
    writes a dataset of several sets (style arrays and names beside the images)."""
    with np.load(shapes_npz, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    out = {"stats": arrays["stats"], "style_names": np.array(["noto", "openmoji"])}
    for split in ("train", "heldout"):
        im = arrays[f"{split}_images"]
        inverted = im.copy()
        inverted[..., :3] = im[..., 3:] - im[..., :3]  # premultiplied: colour within the alpha
        out[f"{split}_images"] = np.concatenate([im, inverted])
        for what in ("labels", "chars"):
            out[f"{split}_{what}"] = np.concatenate([arrays[f"{split}_{what}"]] * 2)
        n = len(im)
        out[f"{split}_styles"] = np.repeat(np.array([0, 1], dtype=np.int64), n)
    path = tmp_path_factory.mktemp("styled") / "images.npz"
    np.savez(path, **out)
    return path


@pytest.fixture(scope="session")
def styled_models(tmp_path_factory, tiny_models, styled_npz) -> Path:
    """A copy of `tiny_models` whose newest dcgan (v0002) is theme × style conditioned, warm-started from v0001."""
    import shutil

    from genmodels.training import dcgan
    from genmodels.training.image_run import load_init

    models = tmp_path_factory.mktemp("styled_models") / "models"
    shutil.copytree(tiny_models, models)
    dcgan.train(steps=4, tcfg=dcgan.DCGANTrainConfig(batch=8, r1_every=2), init_from=load_init("dcgan", models, 1),
                data_path=styled_npz, runs_dir=tmp_path_factory.mktemp("styled_runs"), models_dir=models,
                device="cpu", progress=False)
    return models
