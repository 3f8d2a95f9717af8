"""Operations on latent codes, shared by every model and feature that moves through a latent space.

Shapes: D is a model's latent size (the DCGAN's ``nz``, the VAEs' ``latent``), N a number of latents, T a number
of points along a path. Every function takes and returns CPU or device tensors alike and draws randomness only
from the `torch.Generator` it is given, so the same generator state gives the same bytes.

- `slerp`: spherical interpolation between two codes (Shoemake 1985; White 2016, "Sampling Generative
  Networks", for latent spaces): the morphs' path.
- `variation`: ``√(1−s²)·parent + s·ε``, a child near its parent. With the parent and ε both drawn from
  N(0, I), the child is too, so children stay on the prior's shell; the image lineages (V1–V4) and the latent
  preference's exemplar prior use it.
- `mutate`: a variation with fresh Gaussian noise from a generator.
- `crossover`: a child between two parents, row by row along the slerp between them.
- `generator_for`: the generator a ``seed`` or ``generator`` argument stands for (the pipelines take either).
- `Generation` / `lineage_latents`: an image lineage (a root grid drawn from a seed, then variations of a picked
  cell, each from its own seed) and the latents of its last grid, re-derived from the seeds alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

VARIATION_STRENGTH = 0.35  # the strength of a lineage's variations: children stay near their parent


def generator_for(seed: int | None, generator: torch.Generator | None) -> torch.Generator:
    """The generator to draw from: ``generator`` itself, or a new CPU one seeded with ``seed`` (exactly one)."""
    if (seed is None) == (generator is None):
        raise ValueError("Give either a seed or a torch.Generator (exactly one).")
    return generator if generator is not None else torch.Generator().manual_seed(int(seed))


def slerp(a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """Spherical interpolation from ``a`` (D,) to ``b`` (D,) at fraction ``t``.

    ``t`` a float or a 0-d tensor → (D,); ``t`` of shape (T,) → (T, D), one row per fraction. t = 0 gives a and
    t = 1 gives b; in between, the norm moves smoothly from |a| to |b| (equal norms stay equal) instead of
    dipping toward the origin as a straight line does. Parallel codes fall back to the straight line.
    """
    an, bn = a / a.norm(), b / b.norm()
    omega = torch.arccos((an * bn).sum().clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device)
    scalar = t.ndim == 0
    t = t.reshape(-1, 1)  # (T, 1)
    if so.abs() < 1e-6:  # parallel vectors: fall back to a straight line
        out = (1 - t) * a + t * b
    else:
        out = (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b
    return out[0] if scalar else out  # (D,) or (T, D)


def variation(parent: torch.Tensor, eps: torch.Tensor, strength: float) -> torch.Tensor:
    """Children ``√(1−s²)·parent + s·ε`` near ``parent``, with s = ``strength`` in [0, 1].

    ``parent`` (D,) or (..., D) broadcasts against the noise ``eps`` (..., D); the result has the broadcast shape,
    e.g. (D,) and (N, D) → N children (N, D). s = 0 returns the parent, s = 1 the noise. When parent and noise
    are independent N(0, I) draws, so is the child: its expected squared norm stays D.
    """
    return math.sqrt(1 - strength * strength) * parent + strength * eps


def mutate(z: torch.Tensor, scale: float, generator: torch.Generator) -> torch.Tensor:
    """``z`` (..., D) with Gaussian noise of weight ``scale`` in [0, 1]: `variation` with ε ~ N(0, I) drawn from
    ``generator`` (on the generator's device, then moved to z's). Same shape as z; scale 0 returns z unchanged."""
    if not 0 <= scale <= 1:
        raise ValueError(f"the mutation scale must be in [0, 1]; got {scale}")
    eps = torch.randn(z.shape, generator=generator, dtype=z.dtype, device=generator.device).to(z.device)
    return variation(z, eps, scale)


def crossover(a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor = 0.5) -> torch.Tensor:
    """Children of parents ``a`` and ``b`` (N, D) (or one pair, (D,)): row i is ``slerp(a[i], b[i], t[i])``.

    ``t`` is one fraction for every row or one per row (N,): 0 gives a, 1 gives b. Returns a's shape. Identical
    parents give the parent back.
    """
    if a.shape != b.shape:
        raise ValueError(f"crossover needs parents of one shape; got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.ndim == 1:
        return slerp(a, b, t)
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device).expand(a.shape[0])
    return torch.stack([slerp(x, y, ti) for x, y, ti in zip(a, b, t)]) if len(a) else a.clone()


@dataclass(frozen=True)
class Generation:
    """One grid of a lineage: ``count`` latents drawn from ``seed``; ``cell`` picks the parent of the next."""

    seed: int
    count: int
    cell: int | None = None


def lineage_latents(latents: Callable[[int, int], torch.Tensor], lineage: Sequence[Generation],
                    strength: float = VARIATION_STRENGTH, max_depth: int | None = None,
                    pick: Callable[[torch.Tensor, int], torch.Tensor] | None = None, candidates: int = 1,
                    pick_last: bool = True) -> torch.Tensor:
    """The latents (count, D) of the last grid of a lineage, re-derived from seeds alone.

    The first grid is ``latents(seed, count)``; each later grid is `variation` (``√(1−s²)·parent + s·ε``) around
    the cell its predecessor picked, with ε = ``latents(seed, count)`` of its own seed, as in
    `ImageGenerator.variations`. So a grid never needs its latents stored. ``max_depth``: refuse longer lineages
    (ValueError); None = no limit here (an application that must bound them does so itself).

    ``pick``: each grid is instead chosen by ``pick(rows, count)`` among ``candidates × count`` rows drawn the same
    way (`ImageGenerator` uses it to keep near-copies out of a grid); still a pure function of the seeds.
    ``pick_last=False`` returns the last grid's ``candidates × count`` rows unpicked (the engine renders their first
    ``count``, the plain grid, in its batch, and picks only when that grid holds a near-copy).
    """
    if not lineage:
        raise ValueError("an empty lineage")
    if max_depth is not None and len(lineage) > max_depth:
        raise ValueError(f"Variations go at most {max_depth} generations deep.")

    def grid(rows: torch.Tensor, count: int, last: bool) -> torch.Tensor:
        return rows if pick is None or (last and not pick_last) else pick(rows, count)

    k = candidates if pick is not None else 1
    z = grid(latents(lineage[0].seed, k * lineage[0].count), lineage[0].count, len(lineage) == 1)
    for depth, (prev, gen) in enumerate(zip(lineage, lineage[1:]), start=2):
        if prev.cell is None or not 0 <= prev.cell < prev.count:
            raise ValueError("a lineage step must pick a cell of its grid")
        parent = z[prev.cell].reshape(1, -1)
        z = grid(variation(parent, latents(gen.seed, k * gen.count), strength), gen.count, depth == len(lineage))
    return z


__all__ = ["Generation", "VARIATION_STRENGTH", "crossover", "generator_for", "lineage_latents", "mutate", "slerp",
           "variation"]
