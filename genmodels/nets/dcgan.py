"""A theme × style conditioned DCGAN for 64×64 RGBA emoji.

References:
- Radford, Metz & Chintala (2016), "Unsupervised Representation Learning with Deep Convolutional GANs";
  the layer stack follows pytorch/examples ``dcgan/main.py``.
- Miyato et al. (2018), "Spectral Normalization for GANs" (an option for D), and Miyato & Koyama (2018),
  "cGANs with Projection Discriminator": a projection term for the theme.
- Karras et al. (2018), "Progressive Growing of GANs": the minibatch-stddev feature in D.
- de Vries et al. (2017) / Dumoulin et al. (2017): class-conditional batch norm in G.

Images are premultiplied RGBA in [-1, 1] (see ``genmodels.data.emoji``). The discriminator returns logits:
the hinge loss (and, for the reference loop, BCE-with-logits) is computed outside, which is safe under
autocast.

Conditioning: each (theme, style) pair is one class, ``c = theme + n_classes · style`` (the 9 Unicode groups
times the emoji sets the model was trained on, ``n_styles``). One joint class rather than two summed
embeddings lets a style change a theme's look as much as it needs (OpenMoji's outlines, Noto's gloss). With
``n_styles = 1`` the class is the theme, so versions trained before styles load and draw as before.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


@dataclass
class DCGANConfig:
    nz: int = 128  # latent size
    ngf: int = 32  # generator width (pytorch/examples uses 64; 32 trains ~3× faster on a 2-core CPU)
    ndf: int = 32  # discriminator width
    channels: int = 4  # premultiplied RGBA
    n_classes: int = 9  # the 9 Unicode emoji groups; 1 means unconditional
    n_styles: int = 1  # emoji sets (noto, twemoji, ...); the model's style names are in its card's data
    image_size: int = 64
    d_norm: str = "batch"  # "batch": the DCGAN D (BatchNorm; real and fake in separate calls) or "spectral"
    mbstd_group: int = 4  # D sees the spread of each group of 4 samples, so collapsed fakes stand out


    @property
    def n_conditions(self) -> int:
        return self.n_classes * self.n_styles


def condition(cfg: DCGANConfig, y: torch.Tensor, s: torch.Tensor | None) -> torch.Tensor:
    """The joint class of themes ``y`` (B,) and styles ``s`` (B,) (None: style 0, the first the model knows)."""
    return y if s is None else y + cfg.n_classes * s


class CondBatchNorm2d(nn.Module):
    """BatchNorm whose scale and shift are looked up per class."""

    def __init__(self, features: int, n_classes: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(features, affine=False)
        self.gamma = nn.Embedding(n_classes, features)
        self.beta = nn.Embedding(n_classes, features)
        nn.init.ones_(self.gamma.weight)
        nn.init.zeros_(self.beta.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # x (B, C, H, W), y (B,)
        h = self.bn(x)
        return h * self.gamma(y)[:, :, None, None] + self.beta(y)[:, :, None, None]


class Generator(nn.Module):
    def __init__(self, cfg: DCGANConfig):
        super().__init__()
        self.cfg = cfg
        g = cfg.ngf
        widths = [8 * g, 4 * g, 2 * g, g]
        self.embed = nn.Embedding(cfg.n_conditions, cfg.nz)  # (theme, style) → a latent offset
        self.convs = nn.ModuleList(
            [nn.ConvTranspose2d(cfg.nz, widths[0], 4, 1, 0, bias=False)]  # (B, 8g, 4, 4)
            + [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False) for a, b in zip(widths, widths[1:])]  # → (B, g, 32, 32)
        )
        self.norms = nn.ModuleList([CondBatchNorm2d(w, cfg.n_conditions) for w in widths])
        self.out = nn.ConvTranspose2d(g, cfg.channels, 4, 2, 1, bias=False)  # (B, 4, 64, 64)

    def forward(self, z: torch.Tensor, y: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        # z (B, nz), y (B,) themes, s (B,) styles or None (style 0)
        c = condition(self.cfg, y, s)
        h = (z + self.embed(c))[:, :, None, None]  # (B, nz, 1, 1)
        for conv, norm in zip(self.convs, self.norms):
            h = torch.relu(norm(conv(h), c))
        return torch.tanh(self.out(h))  # (B, 4, 64, 64) in [-1, 1]


class Discriminator(nn.Module):
    """The DCGAN discriminator with a projection term for the theme and a minibatch-stddev feature.

    ``d_norm="batch"`` keeps the paper's BatchNorm (layers 2–4); batch statistics then must never mix real
    and fake, so the trainer calls D on each separately. ``"spectral"`` replaces it with spectral norm.
    """

    def __init__(self, cfg: DCGANConfig):
        super().__init__()
        d = cfg.ndf
        widths = [cfg.channels, d, 2 * d, 4 * d, 8 * d]
        sn = spectral_norm if cfg.d_norm == "spectral" else (lambda m: m)
        self.convs = nn.ModuleList(
            [sn(nn.Conv2d(a, b, 4, 2, 1, bias=cfg.d_norm != "batch")) for a, b in zip(widths, widths[1:])]
        )  # 64 → 32 → 16 → 8 → 4
        self.norms = nn.ModuleList(
            [nn.Identity()] + [nn.BatchNorm2d(w) if cfg.d_norm == "batch" else nn.Identity() for w in widths[2:]]
        )
        self.mbstd_group = cfg.mbstd_group
        extra = 1 if cfg.mbstd_group > 1 else 0
        self.out = sn(nn.Conv2d(8 * d + extra, 1, 4, 1, 0))  # (B, 1, 1, 1); +1: the minibatch-stddev map
        self.cfg = cfg
        self.embed = sn(nn.Embedding(cfg.n_conditions, 8 * d))  # projection term, per (theme, style)
        if cfg.d_norm != "spectral":
            nn.init.normal_(self.embed.weight, 0.0, 0.02)

    def forward(self, x: torch.Tensor, y: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        # x (B, 4, 64, 64), y (B,) themes, s (B,) styles or None (style 0)
        h = x
        for conv, norm in zip(self.convs, self.norms):
            h = nn.functional.leaky_relu(norm(conv(h)), 0.2)  # ends at (B, 8d, 4, 4)
        feats = minibatch_stddev(h, self.mbstd_group) if self.mbstd_group > 1 else h
        logit = self.out(feats).flatten(1).squeeze(1)  # (B,)
        proj = (self.embed(condition(self.cfg, y, s)) * h.sum(dim=(2, 3))).sum(1)  # (B,)
        return logit + proj


def minibatch_stddev(h: torch.Tensor, group: int) -> torch.Tensor:
    """Append one feature map: the mean std of h over groups of ``group`` samples (Karras et al. 2018).

    Groups are consecutive samples, so a batch laid out as [reals; fakes] never mixes the two.
    """
    b, c, hh, ww = h.shape  # (B, C, 4, 4)
    if group < 2 or b % group:
        s = h.new_zeros(b, 1, hh, ww)
    else:
        y = h.float().view(b // group, group, c, hh, ww)
        s = (y.var(dim=1, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (B // group,)
        s = s.to(h.dtype).repeat_interleave(group)[:, None, None, None].expand(b, 1, hh, ww)
    return torch.cat([h, s], dim=1)  # (B, C + 1, 4, 4)


def init_weights(m: nn.Module) -> None:
    """N(0, 0.02) for convolutions and N(1, 0.02) for BatchNorm scales, as in the DCGAN paper."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        w = m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
        nn.init.normal_(w, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d) and m.affine:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)
