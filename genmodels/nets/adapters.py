"""Delta layers: small trainable offsets on a frozen base network, for per-server fine-tunes.

Two kinds, both zero at initialisation (a fresh delta leaves the base's outputs unchanged):

- **Low-rank weight offsets** (LoRA, Hu et al. 2022): W' = W + (α / r)·ΔW with ΔW of rank r.
  - a 2-D weight W (out, in) (``nn.Linear``, a GRU's ``weight_ih`` / ``weight_hh``):  ΔW = B A,
    B (out, r) zero-initialised, A (r, in) ~ N(0, 1/in);
  - a transposed convolution's weight W (in, out, k, k) (``nn.ConvTranspose2d``, which ``peft`` 0.21 refuses): the
    rank is taken over the input channels, ΔW[i, o] = Σ_ρ D[i, ρ] U[ρ, o], D (in, r) ~ N(0, 1/in), U (r, out, k, k)
    zero-initialised. Unmerged, the branch is a 1×1 projection to r channels followed by a transposed convolution
    with U: conv_transpose(x, ΔW) = conv_transpose(D^T x, U), exactly (the convolution is linear in its input
    channels), at r/in of the base convolution's cost. Merged, ΔW is added to W once.
- **FiLM offsets** (Perez et al. 2018) on a class-conditional batch norm's tables: γ'_c = γ_c + Δγ_k, β'_c = β_c +
  Δβ_k, where k is one row of a small table of offsets (one row per server, or per server and class). The base's
  tables are looked up as before and the offset rows by an index per batch row, so one forward pass can carry
  rows of several servers, each with its own offsets (`rows` below).

Shapes: B batch, C channels, r rank, K offset rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class LowRankConfig:
    rank: int = 4  # r
    alpha: float = 4.0  # the update is scaled by alpha / rank (Hu et al. 2022), so a new rank needs no new lr


class LowRank(nn.Module):
    """A rank-r offset ΔW (scaled by α/r) for a 2-D weight (out, in) or a transposed convolution's (in, out, k, k)."""

    def __init__(self, shape: tuple[int, ...], cfg: LowRankConfig, transposed_conv: bool = False):
        super().__init__()
        self.shape, self.transposed_conv, self.scale = tuple(shape), transposed_conv, cfg.alpha / cfg.rank
        r = cfg.rank
        if transposed_conv:  # W (in, out, kh, kw)
            cin, cout, kh, kw = shape
            self.down = nn.Parameter(torch.randn(cin, r) / math.sqrt(cin))  # D (in, r)
            self.up = nn.Parameter(torch.zeros(r, cout, kh, kw))  # U (r, out, kh, kw)
        else:  # W (out, in)
            out, cin = shape
            self.down = nn.Parameter(torch.randn(r, cin) / math.sqrt(cin))  # A (r, in)
            self.up = nn.Parameter(torch.zeros(out, r))  # B (out, r)

    def delta(self) -> torch.Tensor:
        """ΔW·α/r, the shape of the weight it adapts."""
        if self.transposed_conv:
            return self.scale * torch.einsum("ir,rokl->iokl", self.down, self.up)  # (in, out, kh, kw)
        return self.scale * self.up @ self.down  # (out, in)

    def conv_transpose(self, x: torch.Tensor, stride, padding) -> torch.Tensor:
        """The unmerged branch of a transposed convolution: conv_transpose(x, ΔW) as D^T then U. x (B, in, H, W)."""
        h = torch.einsum("bihw,ir->brhw", x, self.down)  # (B, r, H, W)
        return self.scale * F.conv_transpose2d(h, self.up, stride=stride, padding=padding)

    def linear(self, x: torch.Tensor) -> torch.Tensor:
        """The unmerged branch of a linear layer: x A^T B^T · α/r. x (..., in) -> (..., out)."""
        return self.scale * (x @ self.down.t()) @ self.up.t()


def lora_conv_transpose(conv: nn.ConvTranspose2d, lr: LowRank | None, x: torch.Tensor) -> torch.Tensor:
    """conv(x) plus, when given, its low-rank branch (unmerged)."""
    y = conv(x)
    return y if lr is None else y + lr.conv_transpose(x, conv.stride, conv.padding)


def lora_linear(lin: nn.Linear, lr: LowRank | None, x: torch.Tensor) -> torch.Tensor:
    """lin(x) plus, when given, its low-rank branch (unmerged)."""
    y = lin(x)
    return y if lr is None else y + lr.linear(x)


class OffsetTable(nn.Module):
    """K rows of additive offsets (K, dim), zero at initialisation; ``rows`` (B,) picks one per batch row."""

    def __init__(self, rows: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(rows, dim))

    def forward(self, rows: torch.Tensor) -> torch.Tensor:  # (B,) -> (B, dim)
        return self.weight[rows]


def film_batch_norm(bn: nn.BatchNorm2d, gamma: torch.Tensor, beta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Batch norm without its own affine, then the per-row scale and shift: x (B, C, H, W), gamma, beta (B, C)."""
    return bn(x) * gamma[:, :, None, None] + beta[:, :, None, None]
