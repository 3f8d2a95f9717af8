"""A convolutional VAE for 64×64 RGBA emoji, used to encode real images and morph between them (along
`genmodels.latents.slerp`).

References:
- Kingma & Welling (2014), "Auto-Encoding Variational Bayes".
- Rybkin, Daniilidis & Levine (2021), "Simple and Effective VAE Training with Calibrated Decoders"
  (σ-VAE): a learned per-channel Gaussian scale makes the ELBO a real likelihood in nats and balances the
  reconstruction against the KL without a hand-tuned weight.
- Higgins et al. (2017) for β < 1 as a sharpness knob; Bowman et al. (2016) for KL warm-up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class VAEConfig:
    channels: int = 4  # premultiplied RGBA in [-1, 1]
    nf: int = 32  # base width
    latent: int = 128
    image_size: int = 64
    min_log_sigma: float = -4.0  # floor of the decoder's learned log-scale


def _down(a: int, b: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.LeakyReLU(0.2))


def _up(a: int, b: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU())


class ConvVAE(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        self.cfg = cfg
        f = cfg.nf
        self.encoder = nn.Sequential(
            _down(cfg.channels, f), _down(f, 2 * f), _down(2 * f, 4 * f), _down(4 * f, 8 * f)
        )  # (B, 8f, 4, 4)
        self.to_stats = nn.Linear(8 * f * 16, 2 * cfg.latent)  # → (B, 2·latent): mu, logvar
        self.from_z = nn.Linear(cfg.latent, 8 * f * 16)
        self.decoder = nn.Sequential(
            nn.BatchNorm2d(8 * f), nn.ReLU(), _up(8 * f, 4 * f), _up(4 * f, 2 * f), _up(2 * f, f),
            nn.ConvTranspose2d(f, cfg.channels, 4, 2, 1), nn.Tanh(),
        )  # (B, 4, 64, 64)
        self.log_sigma = nn.Parameter(torch.full((cfg.channels,), -1.0))  # per-channel decoder scale

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # x (B, 4, 64, 64)
        stats = self.to_stats(self.encoder(x).flatten(1))  # (B, 2·latent)
        mu, logvar = stats.chunk(2, dim=1)
        return mu, logvar.clamp(-12, 6)

    def decode(self, z: torch.Tensor) -> torch.Tensor:  # z (B, latent)
        h = self.from_z(z).view(-1, 8 * self.cfg.nf, 4, 4)
        return self.decoder(h)  # (B, 4, 64, 64)

    def sigma(self) -> torch.Tensor:
        return self.log_sigma.clamp_min(self.cfg.min_log_sigma)

    def loss_terms(self, x: torch.Tensor, z_noise: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Per-image reconstruction NLL and KL in nats (means over the batch)."""
        mu, logvar = self.encode(x)
        eps = torch.randn_like(mu) if z_noise is None else z_noise
        z = mu + eps * (0.5 * logvar).exp()
        xhat = self.decode(z)
        ls = self.sigma()[None, :, None, None]
        # Gaussian NLL per pixel: 0.5·((x − x̂)/σ)² + log σ + 0.5·log 2π, summed over (C, H, W)
        nll = (0.5 * ((x - xhat) / ls.exp()) ** 2 + ls + 0.5 * math.log(2 * math.pi)).flatten(1).sum(1)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)
        mse = (x - xhat).pow(2).flatten(1).mean(1)
        return {"nll": nll.mean(), "kl": kl.mean(), "mse": mse.mean(), "xhat": xhat}

