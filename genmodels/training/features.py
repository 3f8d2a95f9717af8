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

from .. import checkpoints
from ..data.emoji import load_image_dataset, to_model
from ..nets.features import FeatureNet, FeatureNetConfig
from . import common
from .diffaug import diff_augment

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

    def step(self, i: int) -> dict[str, float]:
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
        return {"loss": loss.item()}

    def state(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "opt": self.opt.state_dict(),
                "sched": self.sched.state_dict(), "rng": common.rng_state(self.gen)}

    def load_state(self, s: dict[str, Any]) -> None:
        self.model.load_state_dict(s["model"])
        self.opt.load_state_dict(s["opt"])
        self.sched.load_state_dict(s["sched"])
        common.set_rng_state(s["rng"], self.gen)


@torch.no_grad()
def accuracy(model: FeatureNet, images: torch.Tensor, labels: torch.Tensor, batch: int = 256) -> float:
    model.eval()
    preds = torch.cat([model(images[i : i + batch]).argmax(1) for i in range(0, len(images), batch)])
    return float((preds.cpu() == labels.cpu()).float().mean())


def train(
    *,
    data_path: Path,
    runs_dir: Path,
    models_dir: Path,
    device: str = "auto",
    steps: int | None = None,
    resume: bool = True,
    progress: bool = True,
    model: FeatureNetConfig | None = None,
    tcfg: FeatureTrainConfig | None = None,
    save_every: int = 500,
) -> Path:
    dev = common.pick_device(device)
    data = load_image_dataset(data_path)
    tcfg = tcfg or FeatureTrainConfig()
    if steps is not None:
        tcfg.steps = steps
    cfg = model or FeatureNetConfig(n_classes=data.n_labels)
    trainer = FeatureTrainer(to_model(data.train_images), torch.as_tensor(data.train_labels), cfg, tcfg, dev)
    result = common.run_loop(
        total_steps=tcfg.steps, step=trainer.step, state=trainer.state, load_state=trainer.load_state,
        run_dir=Path(runs_dir) / NAME, resume=resume, save_every=save_every, desc=NAME, progress=progress,
    )
    card = common.base_card(NAME, cfg, tcfg, data_path, data.stats, result, tcfg.batch, dev)
    card["metrics"] = {
        "train_accuracy": accuracy(trainer.model, trainer.images, trainer.labels),
        "heldout_accuracy": accuracy(
            trainer.model, to_model(data.heldout_images).to(dev), torch.as_tensor(data.heldout_labels)
        ),
    }
    return checkpoints.save_version(models_dir, NAME, trainer.model.state_dict(), card)
