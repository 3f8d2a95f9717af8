"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training").

The same random, differentiable augmentations are applied to real and fake images in both the D and the G
step, so D cannot overfit the ~1.7k training emoji while G still learns the un-augmented distribution.
Colour ops touch the premultiplied RGB channels only; translation and cutout move or blank all four
channels (a cut-out hole is transparent black, a valid premultiplied pixel). Batched, on the device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _color(x: torch.Tensor) -> torch.Tensor:  # x (B, 4, H, W) in [-1, 1]
    b = x.shape[0]
    rgb, a = x[:, :3], x[:, 3:]
    rgb = rgb + (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)  # brightness
    mean = rgb.mean(dim=1, keepdim=True)
    rgb = (rgb - mean) * (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) * 2) + mean  # saturation
    mean = rgb.mean(dim=(1, 2, 3), keepdim=True)
    rgb = (rgb - mean) * (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + mean  # contrast
    return torch.cat([rgb, a], 1)


def _translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    tx = torch.randint(-sh, sh + 1, (b, 1, 1), device=x.device)
    ty = torch.randint(-sw, sw + 1, (b, 1, 1), device=x.device)
    gb, gx, gy = torch.meshgrid(
        torch.arange(b, device=x.device), torch.arange(h, device=x.device), torch.arange(w, device=x.device),
        indexing="ij",
    )
    gx = (gx + tx + 1).clamp(0, h + 1)
    gy = (gy + ty + 1).clamp(0, w + 1)
    pad = F.pad(x, [1, 1, 1, 1, 0, 0, 0, 0], value=-1.0)  # outside is transparent (-1 in every channel)
    return pad.permute(0, 2, 3, 1)[gb, gx, gy].permute(0, 3, 1, 2).contiguous(memory_format=torch.contiguous_format)


def _cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ox = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), device=x.device)
    oy = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), device=x.device)
    gb, gx, gy = torch.meshgrid(
        torch.arange(b, device=x.device), torch.arange(ch, device=x.device), torch.arange(cw, device=x.device),
        indexing="ij",
    )
    gx = (gx + ox - ch // 2).clamp(0, h - 1)
    gy = (gy + oy - cw // 2).clamp(0, w - 1)
    mask = torch.ones(b, h, w, device=x.device, dtype=x.dtype)
    mask[gb, gx, gy] = 0
    return (x + 1) * mask[:, None] - 1  # hole → -1 (transparent black)


POLICIES = {"color": _color, "translation": _translation, "cutout": _cutout}


def diff_augment(x: torch.Tensor, policy: str = "color,translation,cutout") -> torch.Tensor:
    for name in filter(None, policy.split(",")):
        x = POLICIES[name](x)
    return x
