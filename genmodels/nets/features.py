"""The feature network behind Muse's image metrics: a small CNN classifier of the 9 emoji groups.

No Inception weights are available offline, so precision/recall (Kynkäänniemi et al. 2019), KID
(Bińkowski et al. 2018) and the near-copy check are computed in the penultimate layer of this network,
trained by us on the training split and checked on the held-out split.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class FeatureNetConfig:
    channels: int = 4
    width: int = 32
    n_classes: int = 9
    dim: int = 256  # feature dimension


class FeatureNet(nn.Module):
    def __init__(self, cfg: FeatureNetConfig):
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        layers: list[nn.Module] = [nn.Conv2d(cfg.channels, w, 4, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU()]
        chans = [w, 2 * w, 4 * w, cfg.dim]  # stem → 32×32, then 16×16, 8×8, 4×4
        for a, b in zip(chans, chans[1:]):
            layers += [nn.Conv2d(a, b, 3, 1, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU(),
                       nn.Conv2d(b, b, 3, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU()]
        self.body = nn.Sequential(*layers)  # (B, dim, 4, 4)
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(cfg.dim, cfg.n_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:  # x (B, 4, 64, 64) → (B, dim)
        return self.body(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # → logits (B, n_classes)
        return self.head(self.features(x))
