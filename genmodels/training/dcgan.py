"""Training the theme-conditioned DCGAN from scratch.

The recipe (see docs/MODELS.md, "DCGAN"): hinge loss on spectrally-normalised D with a projection term and a
minibatch-stddev feature, DiffAugment on real and fake in both steps, a lazy R1 penalty, Adam(2e-4,
β1=0.5), and an EMA copy of G that is the one we sample from and ship. On the emoji set that alone let G
ignore z (one image per theme after 1k steps; pixel std across latents 0.03 against 0.43 for real emoji of
one group), with or without augmentation or TTUR, so G also gets the mode-seeking term of Mao et al.
(2019, MSGAN): two latents of one theme are pushed to give different images. For speed the whole dataset is one tensor resident on the device,
batches are drawn by index (no DataLoader, no per-sample transforms), real and fake go through D in one
call, D's weights are frozen during the G step so no wasted gradient is computed, tensors are channels_last, and
the step runs in bf16 autocast on CUDA and on CPUs with native bf16 instructions. The step never waits for the
GPU: it returns its losses as device tensors (the loop reads them only to show them) and the EMA is one fused
``foreach`` update over all of G's parameters.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from .. import checkpoints, metrics
from ..data.emoji import to_model
from ..images import load_feature_net
from ..nets import dataclass_from_dict
from ..nets.dcgan import DCGANConfig, Discriminator, Generator, init_weights
from . import common
from .diffaug import diff_augment
from .image_run import fit_image_model, init_tag

NAME = "dcgan"


@dataclass
class DCGANTrainConfig:
    steps: int = 20000
    batch: int = 64
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    ema_decay: float = 0.999
    ema_start: int = 500  # steps before the EMA starts averaging (it copies G until then)
    r1_gamma: float = 0.1
    r1_every: int = 16  # lazy regularisation (Karras et al. 2020)
    augment: str = "color,translation"
    loss: str = "hinge"  # "hinge" or "bce" (non-saturating, on logits)
    # Weight of the MSGAN diversity term (0 turns it off). 0.3 since dcgan/v0003: on four emoji sets, warm-started
    # from v0002, 0.3 against 0.1 gave fewer near-copies in every style's sheet at equal Noto precision and recall
    # (docs/MODELS.md, "DCGAN"). v0001 and v0002 were trained with 0.1.
    mode_seeking: float = 0.3
    cpu_bf16: bool = True  # bf16 autocast on CPUs with native bf16 (AVX512-BF16/AMX): ~1.3× faster there
    seed: int = 0


class DCGANTrainer:
    """Holds G, G_ema, D, their optimizers and the resident data; one call of `step` = one D + one G update."""

    def __init__(
        self,
        images: torch.Tensor,  # (N, 4, 64, 64) float in [-1, 1]
        labels: torch.Tensor,  # (N,) themes
        cfg: DCGANConfig,
        tcfg: DCGANTrainConfig,
        device: torch.device,
        styles: torch.Tensor | None = None,  # (N,) style indices (None: all style 0)
    ):
        self.cfg, self.tcfg, self.device = cfg, tcfg, device
        common.seed_all(tcfg.seed)
        self.fmt = torch.channels_last  # faster on CUDA, and ~15% faster on CPU with oneDNN (measured)
        self.images = images.to(device).contiguous(memory_format=self.fmt)
        self.labels = labels.to(device)
        self.styles = (torch.zeros_like(labels) if styles is None else styles).to(device)
        self.G = Generator(cfg).to(device, memory_format=self.fmt)
        self.D = Discriminator(cfg).to(device, memory_format=self.fmt)
        self.G.apply(init_weights)
        self.D.apply(init_weights)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        betas = (tcfg.beta1, tcfg.beta2)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=tcfg.lr_g, betas=betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=tcfg.lr_d, betas=betas)
        self.gen = torch.Generator().manual_seed(tcfg.seed)  # batch indices and latents

    def _d_loss(self, d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
        if self.tcfg.loss == "hinge":
            return F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
        return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()

    def _aug(self, x: torch.Tensor) -> torch.Tensor:
        return diff_augment(x, self.tcfg.augment) if self.tcfg.augment else x

    def step(self, i: int) -> dict[str, torch.Tensor]:
        t, dev, b = self.tcfg, self.device, self.tcfg.batch
        idx = common.batch_indices(len(self.images), b, self.gen, dev)
        real, y, s = self.images[idx], self.labels[idx], self.styles[idx]
        z = torch.randn(b, self.cfg.nz, generator=self.gen).to(dev)
        yf = torch.cat([y[: b // 2], y[: b // 2]])  # fakes come in pairs (i, i + B/2) of the same theme...
        sf = torch.cat([s[: b // 2], s[: b // 2]])  # ... and style

        # --- D step: hinge loss on augmented real and fake, in one forward pass ---
        with common.autocast(dev, t.cpu_bf16):
            fake = self.G(z, yf, sf)  # (B, 4, 64, 64)
            if self.cfg.d_norm == "batch":  # BatchNorm statistics must not mix real and fake
                d_real = self.D(self._aug(real), y, s).float()
                d_fake = self.D(self._aug(fake.detach()), yf, sf).float()
            else:
                logits = self.D(self._aug(torch.cat([real, fake.detach()])), torch.cat([y, yf]), torch.cat([s, sf]))
                d_real, d_fake = logits[:b].float(), logits[b:].float()
            loss_d = self._d_loss(d_real, d_fake)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        r1 = torch.zeros((), device=dev)
        if t.r1_gamma > 0 and i % t.r1_every == 0:
            # Lazy R1 on a half batch of reals, scaled by the interval.
            x = self._aug(real[: b // 2]).detach().requires_grad_(True)
            out = self.D(x, y[: b // 2], s[: b // 2]).float().sum()
            (grad,) = torch.autograd.grad(out, x, create_graph=True)
            r1 = grad.pow(2).flatten(1).sum(1).mean()
            (0.5 * t.r1_gamma * t.r1_every * r1).backward()
        self.opt_d.step()

        # --- G step: D frozen, so backward computes only what G needs ---
        self.D.requires_grad_(False)
        with common.autocast(dev, t.cpu_bf16):
            g_out = self.D(self._aug(fake), yf, sf).float()
            loss_g = -g_out.mean() if t.loss == "hinge" else F.softplus(-g_out).mean()
            ms = torch.zeros((), device=dev)
            if t.mode_seeking > 0:
                # Mode seeking (Mao et al. 2019): two latents of one theme must not map to the same image.
                h = b // 2
                ratio = (fake[:h] - fake[h:]).float().abs().mean(dim=(1, 2, 3)) / (z[:h] - z[h:]).abs().mean(1)
                ms = 1.0 / (ratio.mean() + 1e-5)
        self.opt_g.zero_grad(set_to_none=True)
        (loss_g + t.mode_seeking * ms).backward()
        self.opt_g.step()
        self.D.requires_grad_(True)

        self._update_ema(i)
        # Detached device tensors, not floats: `.item()` here would make every step wait for the GPU.
        return {"d": loss_d.detach(), "g": loss_g.detach(), "r1": r1.detach(), "ms": ms.detach()}

    @torch.no_grad()
    def _update_ema(self, i: int) -> None:
        """G_ema ← G_ema + (1 − decay)·(G − G_ema) for every parameter in one fused call; buffers are copied."""
        decay = self.tcfg.ema_decay if i >= self.tcfg.ema_start else 0.0
        torch._foreach_lerp_(list(self.G_ema.parameters()), list(self.G.parameters()), 1 - decay)
        torch._foreach_copy_(list(self.G_ema.buffers()), list(self.G.buffers()))

    # --- resumable state ---
    def state(self) -> dict[str, Any]:
        return {
            "G": self.G.state_dict(), "D": self.D.state_dict(), "G_ema": self.G_ema.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(), "rng": common.rng_state(self.gen),
        }

    def load_state(self, s: dict[str, Any]) -> None:
        self.G.load_state_dict(s["G"])
        self.D.load_state_dict(s["D"])
        self.G_ema.load_state_dict(s["G_ema"])
        self.opt_g.load_state_dict(s["opt_g"])
        self.opt_d.load_state_dict(s["opt_d"])
        common.set_rng_state(s["rng"], self.gen)

    def warm_start(self, tensors: dict[str, torch.Tensor], old: DCGANConfig) -> None:
        """Start from a released version (its EMA G for G and G_ema, and its D) instead of the DCGAN init.

        The version may know fewer styles: its per-class rows (embeddings, conditional norms, projection) are
        tiled over the new styles, so every style starts from its theme's look and learns its own from there
        (transfer as in Wang et al. 2018, "Transferring GANs"). The optimizers start fresh."""
        if (old.nz, old.ngf, old.ndf, old.n_classes) != (self.cfg.nz, self.cfg.ngf, self.cfg.ndf, self.cfg.n_classes):
            raise ValueError("warm start needs the same latent size, widths and themes")
        if old.n_styles not in (1, self.cfg.n_styles):
            raise ValueError(f"warm start from {old.n_styles} styles to {self.cfg.n_styles} is not defined")
        reps = self.cfg.n_conditions // old.n_conditions

        def fit(prefix: str, module: torch.nn.Module) -> None:
            own = module.state_dict()
            state = {}
            for k, v in own.items():
                w = tensors[prefix + k].float()
                if w.shape != v.shape and w.ndim >= 1 and w.shape[0] * reps == v.shape[0]:
                    w = w.repeat(reps, *([1] * (w.ndim - 1)))  # rows c = theme + n_classes · style
                state[k] = w
            module.load_state_dict(state)

        fit("G.", self.G)
        fit("G.", self.G_ema)
        fit("D.", self.D)

    def release_tensors(self) -> dict[str, torch.Tensor]:
        """What a model version holds: the EMA generator (served) and D (for fine-tuning from feedback)."""
        out = {f"G.{k}": v for k, v in self.G_ema.state_dict().items()}
        out.update({f"D.{k}": v for k, v in self.D.state_dict().items()})
        return out


def train(*, model: DCGANConfig | None = None, tcfg: DCGANTrainConfig | None = None,
          init_from: tuple[dict[str, torch.Tensor], dict] | None = None, **run) -> Path:
    """Train from scratch (or resume) and write a new `dcgan` version; returns its folder.

    ``init_from``: (tensors, card) of a released version to warm-start from (`DCGANTrainer.warm_start`).
    ``run``: ``data_path``, ``runs_dir``, ``models_dir`` and the options of `image_run.fit_image_model`."""
    tcfg = tcfg or DCGANTrainConfig()

    def build(data, dev):
        n_styles = len(data.styles_present)
        old = dataclass_from_dict(DCGANConfig, init_from[1]["config"]) if init_from else None
        cfg = model or (replace(old, n_styles=n_styles) if old else DCGANConfig(n_classes=data.n_labels,
                                                                               n_styles=n_styles))
        trainer = DCGANTrainer(to_model(data.train_images), torch.as_tensor(data.train_labels), cfg, tcfg, dev,
                               torch.as_tensor(data.style_codes("train")))
        if old is not None:
            trainer.warm_start(init_from[0], old)
        return trainer

    extra = {"warm_start": init_tag(init_from)} if init_from else {}
    return fit_image_model(NAME, build, tcfg, styles=None, card_extra=extra,
                           card_data=lambda data: sampling_card(data, run.get("models_dir")), **run)


# Rows drawn per cell of a grid (`ImageGenerator.grid_candidates`) by versions with both rules: with 4, as before the
# feature rule, v0004's weights left look-alikes in one row of OpenMoji's sample sheet; 6 left none (docs/MODELS.md).
GRID_CANDIDATES = 6


def sampling_card(data, models_dir: Path | None = None) -> dict:
    """The card's ``sampling`` entry: grids keep near-copies out (`ImageGenerator.distinct_grid`), two cells being
    near-copies when their 16×16 pixels, or their vectors in the feature net's space, are closer than the 1st
    percentile of the distances between two real training emoji of one theme (all the model's styles pooled). The
    feature rule names its net (the default one of ``models_dir``, else the shipped one), so a later feature net
    cannot change a version's grids."""
    try:
        fnet, fcard = load_feature_net(models_dir)
    except checkpoints.CheckpointError:
        fnet, fcard = load_feature_net()
    feature_thr, pixel_thr = metrics.near_copy_thresholds(fnet.features, to_model(data.train_images),
                                                          data.train_labels, 1.0)
    return {"sampling": {  # every emoji set: style is a condition
        "near_copy_pixels": round(pixel_thr, 4),
        "near_copy_features": round(feature_thr, 4),
        "features": checkpoints.full_tag("features", fcard["version"]),
        "percentile": 1.0,
        "candidates": GRID_CANDIDATES}}
