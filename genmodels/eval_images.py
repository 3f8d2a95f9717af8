"""Evaluation of the image models on held-out emoji, in the space of our own feature network.

DCGAN: precision / recall (k = 3) and KID against the held-out images, the near-copy rate against the
training images, and the classifier's accuracy on themed samples (does `/image theme:animals` give
animals?). Conv VAE: held-out negative ELBO and reconstruction error, and whether reconstructions stay
recognisable (classifier accuracy on reconstructions vs on the originals).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from . import checkpoints, metrics, paths
from .data.emoji import THEMES, load_image_dataset, to_model
from .images import ImageGenerator, Morpher
from .nets import dataclass_from_dict
from .nets.features import FeatureNet, FeatureNetConfig

TARGETS = {"precision": 0.5, "recall": 0.3, "near_copy_rate": 0.10, "vae_accuracy_gap": 0.10}


def load_feature_net(root=None, device: str = "cpu") -> tuple[FeatureNet, dict]:
    tensors, card = checkpoints.load_version(paths.find_model("features", root), "features")
    net = checkpoints.load_into(FeatureNet(dataclass_from_dict(FeatureNetConfig, card["config"])), tensors, "features")
    return net.eval().requires_grad_(False).to(device), card


@torch.no_grad()
def _batched(fn, x: torch.Tensor, batch: int = 256) -> torch.Tensor:
    return torch.cat([fn(x[i : i + batch]) for i in range(0, len(x), batch)])


def evaluate_dcgan(gen: ImageGenerator, fnet: FeatureNet, data, *, per_theme: int = 64, draws: int = 5,
                   seed: int = 0) -> dict:
    real_train = _batched(fnet.features, to_model(data.train_images)).numpy()
    real_held = _batched(fnet.features, to_model(data.heldout_images)).numpy()
    n = len(real_held)
    # Samples with the held-out label mix, `draws` independent sets of the held-out size; averaged.
    labels = torch.as_tensor(data.heldout_labels)
    prec, rec, kids, copies, all_fake = [], [], [], [], []
    for d in range(draws):
        z = gen.latents(seed + d, n)
        x = gen.G(z, labels)
        f = _batched(fnet.features, x).numpy()
        all_fake.append(f)
        p, r = metrics.precision_recall(real_held, f, k=3)
        prec.append(p)
        rec.append(r)
        kids.append(metrics.kid(real_held, f, subset_size=min(100, n), seed=d)[0])
        copies.append(metrics.near_copy_rate(real_train, real_held, f)[0])
    # Themed samples: does the classifier see the theme that was asked for?
    acc = {}
    for y, name in enumerate(gen.themes):
        x = gen.G(gen.latents(seed + 100 + y, per_theme), torch.full((per_theme,), y))
        acc[name] = float((_batched(fnet, x).argmax(1) == y).float().mean())
    held_acc = (_batched(fnet, to_model(data.heldout_images)).argmax(1) == labels).float()
    held_per = {name: float(held_acc[labels == y].mean()) for y, name in enumerate(gen.themes) if (labels == y).any()}
    out = {
        "version": gen.version,
        "precision": float(np.mean(prec)),
        "recall": float(np.mean(rec)),
        "precision_std": float(np.std(prec)),
        "recall_std": float(np.std(rec)),
        "kid": float(np.mean(kids)),
        "kid_real_train_vs_heldout": metrics.kid(real_held, real_train, subset_size=min(100, n))[0],
        "near_copy_rate": float(np.mean(copies)),
        "theme_accuracy": acc,
        "theme_accuracy_mean": float(np.mean(list(acc.values()))),
        "classifier_heldout_accuracy_per_theme": held_per,
        "n_heldout": n,
        "draws": draws,
    }
    out["targets"] = {
        "precision>=0.5": out["precision"] >= TARGETS["precision"],
        "recall>=0.3": out["recall"] >= TARGETS["recall"],
        "near_copy_rate<=0.10": out["near_copy_rate"] <= TARGETS["near_copy_rate"],
    }
    return out


def evaluate_vae(morpher: Morpher, fnet: FeatureNet, data, *, samples: int = 8, seed: int = 0) -> dict:
    vae = morpher.vae
    x = to_model(data.heldout_images)
    labels = torch.as_tensor(data.heldout_labels)
    gen = torch.Generator().manual_seed(seed)
    nll, kl, mse = [], [], []
    with torch.no_grad():
        for _ in range(samples):
            eps = torch.randn(len(x), vae.cfg.latent, generator=gen)
            t = vae.loss_terms(x, z_noise=eps)
            nll.append(float(t["nll"]))
            kl.append(float(t["kl"]))
            mse.append(float(t["mse"]))
        mu, _ = vae.encode(x)
        recon = vae.decode(mu)
        acc_orig = float((_batched(fnet, x).argmax(1) == labels).float().mean())
        acc_recon = float((_batched(fnet, recon).argmax(1) == labels).float().mean())
    dims = x[0].numel()
    neg_elbo = float(np.mean(nll) + np.mean(kl))
    out = {
        "version": morpher.version,
        "neg_elbo_nats": neg_elbo,
        "neg_elbo_bits_per_dim": neg_elbo / (dims * np.log(2)),
        "recon_nll_nats": float(np.mean(nll)),
        "kl_nats": float(np.mean(kl)),
        "recon_mse": float(np.mean(mse)),  # on [-1, 1] premultiplied RGBA, sampled z
        "recon_mse_mean_z": float((recon - x).pow(2).mean()),
        "classifier_accuracy_originals": acc_orig,
        "classifier_accuracy_reconstructions": acc_recon,
        "accuracy_gap": acc_orig - acc_recon,
        "n_heldout": len(x),
    }
    out["targets"] = {"accuracy_gap<=0.10": out["accuracy_gap"] <= TARGETS["vae_accuracy_gap"]}
    return out


def evaluate_images(*, root=None, data_path: Path, which: tuple[str, ...] = ("dcgan", "vae"), seed: int = 0) -> dict:
    data = load_image_dataset(data_path)
    fnet, fcard = load_feature_net(root)
    fversion = checkpoints.full_tag("features", fcard["version"])
    out: dict = {"feature_net": {"version": fversion, **fcard.get("metrics", {})}}
    with torch.no_grad():
        if "dcgan" in which:
            out["dcgan"] = evaluate_dcgan(ImageGenerator.load(root), fnet, data, seed=seed)
        if "vae" in which:
            out["vae"] = evaluate_vae(Morpher.load(root), fnet, data, seed=seed)
    return out


__all__ = ["THEMES", "evaluate_dcgan", "evaluate_images", "evaluate_vae", "load_feature_net"]
