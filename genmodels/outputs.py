"""What the pipelines return, as in diffusers: small dataclasses that carry the result and the latents behind it.

They hold plain data (PIL images, text, CPU tensors) and import no model, so the engine and the feedback code can
name them without loading the pipelines. Equality is identity (``eq=False``): compare the fields you care about
(``out.text``, ``torch.equal(out.latents, ...)``), since a tensor has no single truth value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from PIL import Image


@dataclass(eq=False)
class ImageOutput:
    """Themed images in one style, and everything needed to reproduce them (`ImageGenerator.generate`, the engine's image jobs).

    ``latents`` (N, nz) has one row per image. ``seed`` is the seed the latents were drawn from, None when they
    came from a caller's generator or were given explicitly. ``lineage`` and ``batch_images`` are filled by the
    engine: the ``(Generation, ...)`` chain down to this grid (empty for explicit latents) and how many images
    shared the forward pass.
    """

    images: list[Image.Image]  # RGBA, 64×64
    latents: torch.Tensor  # (N, nz)
    theme: str
    theme_index: int
    version: str
    seed: int | None = None
    lineage: tuple = ()
    batch_images: int = 0
    style: str = "noto"  # the emoji set drawn in (`ImageGenerator.styles`)
    style_index: int = 0

    @property
    def labels(self) -> list[int]:
        """The theme index of each image."""
        return [self.theme_index] * len(self.images)

    @property
    def themes(self) -> list[str]:
        """The theme name of each image."""
        return [self.theme] * len(self.images)


@dataclass(eq=False)
class MorphOutput:
    """A morph from a to b, both ends included: ``frames`` (PIL images for `Morpher.morph`, lines of text for
    `PoemModel.morph`) and their latents (frames, D), the points of the slerp they were decoded from."""

    frames: list[Any]
    latents: torch.Tensor  # (frames, D)
    version: str


@dataclass(eq=False)
class PoemOutput:
    """A sampled poem (`PoemModel.sample`). ``str(out)`` is the text.

    ``lines`` are the text's lines. ``latents`` (L, D) has one row per line the text VAE decoded, in order: each
    line of an English poem (L = lines), each clause of a Chinese one (two per couplet line, L = 2·lines).
    ``seed`` is None when the caller passed a generator. ``params`` are the sampling parameters as used
    (temperature after clamping).
    """

    text: str
    lines: list[str]
    latents: torch.Tensor  # (L, D)
    seed: int | None
    version: str
    params: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return self.text


__all__ = ["ImageOutput", "MorphOutput", "PoemOutput"]
