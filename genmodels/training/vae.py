"""Training the convolutional VAE from scratch.

σ-VAE objective (learned per-channel decoder scale, so the loss is a true negative ELBO in nats) with a
linear KL warm-up and a random horizontal flip. Data resident on the device, bf16 autocast on CUDA.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..data.emoji import to_model
from ..nets import dataclass_from_dict
from ..nets.vae import ConvVAE, VAEConfig
from . import common
from .image_run import fit_image_model, init_tag

NAME = "vae"


@dataclass
class VAETrainConfig:
    steps: int = 4000
    batch: int = 64
    lr: float = 5e-4
    beta: float = 1.0  # weight of the KL term after warm-up
    warmup: int = 1000  # steps of linear KL warm-up from 0 to beta
    flip: bool = True
    seed: int = 0


class VAETrainer:
    def __init__(self, images: torch.Tensor, cfg: VAEConfig, tcfg: VAETrainConfig, device: torch.device):
        self.cfg, self.tcfg, self.device = cfg, tcfg, device
        common.seed_all(tcfg.seed)
        self.images = images.to(device)
        self.model = ConvVAE(cfg).to(device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=tcfg.lr)
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, tcfg.steps, eta_min=tcfg.lr * 0.1)
        self.gen = torch.Generator().manual_seed(tcfg.seed)

    def step(self, i: int) -> dict[str, torch.Tensor]:
        t, dev = self.tcfg, self.device
        x = self.images[common.batch_indices(len(self.images), t.batch, self.gen, dev)]
        if t.flip:
            flip = (torch.rand(t.batch, generator=self.gen) < 0.5).to(dev)
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
        kl_weight = t.beta * min(1.0, (i + 1) / max(1, t.warmup))
        self.model.train()
        with common.autocast(dev):
            terms = self.model.loss_terms(x)
            loss = terms["nll"].float() + kl_weight * terms["kl"].float()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 100.0)
        self.opt.step()
        self.sched.step()
        return {"nll": terms["nll"].detach(), "kl": terms["kl"].detach(), "mse": terms["mse"].detach()}

    def state(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "opt": self.opt.state_dict(),
                "sched": self.sched.state_dict(), "rng": common.rng_state(self.gen)}

    def load_state(self, s: dict[str, Any]) -> None:
        self.model.load_state_dict(s["model"])
        self.opt.load_state_dict(s["opt"])
        self.sched.load_state_dict(s["sched"])
        common.set_rng_state(s["rng"], self.gen)

    def release_tensors(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()


def train(*, model: VAEConfig | None = None, tcfg: VAETrainConfig | None = None,
          init_from: tuple[dict[str, torch.Tensor], dict] | None = None, **run) -> Path:
    """Train from scratch (or resume) and write a new `vae` version; returns its folder.

    ``init_from``: (tensors, card) of a released version to start from (same architecture; fresh optimizer).
    ``run``: ``data_path``, ``runs_dir``, ``models_dir`` and the options of `image_run.fit_image_model`."""
    tcfg = tcfg or VAETrainConfig()
    if init_from is not None:
        tcfg.warmup = 0  # the KL term is already balanced; a warm-up from 0 would let the posterior drift off

    def build(data, dev):
        cfg = model or (dataclass_from_dict(VAEConfig, init_from[1]["config"]) if init_from else VAEConfig())
        trainer = VAETrainer(to_model(data.train_images), cfg, tcfg, dev)
        if init_from is not None:
            trainer.model.load_state_dict({k: v.float() for k, v in init_from[0].items()})
        return trainer

    extra = {"warm_start": init_tag(init_from)} if init_from else None
    return fit_image_model(NAME, build, tcfg, styles=None, card_extra=extra, **run)  # every emoji set, so morphs cross styles
