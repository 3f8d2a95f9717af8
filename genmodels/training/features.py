"""Training the feature network (an emoji-group classifier) that the image metrics are computed in.

Trained on the training split with flips, translations and colour jitter; its held-out accuracy is written
to the model card so the per-theme and reconstruction accuracies of `muse eval` can be read against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..data.emoji import to_model
from ..nets.features import FeatureNet, FeatureNetConfig
from . import common
from .diffaug import diff_augment
from .image_run import fit_image_model

NAME = "features"


@dataclass
class FeatureTrainConfig:
    steps: int = 2000
    batch: int = 64
    lr: float = 2e-3
    weight_decay: float = 5e-4
    augment: str = "color,translation"
    seed: int = 0


class FeatureTrainer:
    def __init__(self, images, labels, cfg: FeatureNetConfig, tcfg: FeatureTrainConfig, device: torch.device):
        self.cfg, self.tcfg, self.device = cfg, tcfg, device
        common.seed_all(tcfg.seed)
        self.images, self.labels = images.to(device), labels.to(device)
        self.model = FeatureNet(cfg).to(device)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay)
        self.sched = torch.optim.lr_scheduler.OneCycleLR(self.opt, tcfg.lr, total_steps=tcfg.steps)
        self.gen = torch.Generator().manual_seed(tcfg.seed)

    def step(self, i: int) -> dict[str, torch.Tensor]:
        t, dev = self.tcfg, self.device
        idx = common.batch_indices(len(self.images), t.batch, self.gen, dev)
        x, y = self.images[idx], self.labels[idx]
        flip = (torch.rand(t.batch, generator=self.gen) < 0.5).to(dev)
        x = diff_augment(torch.where(flip[:, None, None, None], x.flip(3), x), t.augment)
        self.model.train()
        with common.autocast(dev):
            loss = F.cross_entropy(self.model(x).float(), y, label_smoothing=0.1)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.sched.step()
        return {"loss": loss.detach()}

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

    def metrics(self, data) -> dict[str, float]:
        """Accuracy on the training and held-out splits, stored in the card."""
        held = to_model(data.heldout_images).to(self.device)
        return {"train_accuracy": accuracy(self.model, self.images, self.labels),
                "heldout_accuracy": accuracy(self.model, held, torch.as_tensor(data.heldout_labels))}


@torch.no_grad()
def accuracy(model: FeatureNet, images: torch.Tensor, labels: torch.Tensor, batch: int = 256) -> float:
    model.eval()
    preds = torch.cat([model(images[i : i + batch]).argmax(1) for i in range(0, len(images), batch)])
    return float((preds.cpu() == labels.cpu()).float().mean())


def train(*, model: FeatureNetConfig | None = None, tcfg: FeatureTrainConfig | None = None, **run) -> Path:
    """Train from scratch (or resume) and write a new `features` version; returns its folder.

    ``run``: ``data_path``, ``runs_dir``, ``models_dir`` and the options of `image_run.fit_image_model`."""
    tcfg = tcfg or FeatureTrainConfig()

    def build(data, dev):
        cfg = model or FeatureNetConfig(n_classes=data.n_labels)
        return FeatureTrainer(to_model(data.train_images), torch.as_tensor(data.train_labels), cfg, tcfg, dev)

    return fit_image_model(NAME, build, tcfg, **run)
