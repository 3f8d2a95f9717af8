"""Named operations: every job the engine runs, by name, with plain arguments.

A job names its operation and passes only plain data (numbers, text, bytes, numpy arrays and the small frozen
dataclasses below and in `genmodels.latents` / `genmodels.rounds`), never a function. So a backend that runs the
models somewhere else (another process, another host) can run a job from its name and arguments alone, and the
engine can tell jobs apart by the model they run on (the engine's ``model_key``).

Each operation is ``fn(model, models, **args)``: ``model`` is the model the job names, ``models(name)`` gives any
other served model (an image morph from a cell of a DCGAN grid draws that cell with the DCGAN).

| operation | runs on (kind) | arguments | returns |
|---|---|---|---|
| ``image.grid`` | image | theme, lineage (`Generation`s), style | `ImageOutput`; batched with other image jobs |
| ``image.latents`` | image | theme, latents (count, nz), style | `ImageOutput`; batched with other image jobs |
| ``poem.sample`` | poem | seed, lines, temperature, theme, form | `PoemOutput` |
| ``poem.morph`` | poem | a, b (lines of text), steps | `MorphOutput` (lines) |
| ``morph.images`` | morph | a, b (`ImageEnd`), frames | `MorphOutput` (frames) |
| ``morph.frames`` | morph | latents (frames, latent): a stored morph's rows | list of 64 px RGBA images |
| ``session.first_round`` | image, poem | plan (`rounds.SessionPlan`) | `rounds.Bred` |
| ``session.next_round`` | image, poem | plan, number, prev, votes, none_votes, brought_in, cfg | `rounds.Bred` |
| ``model.version`` | any | (none) | the served version's tag |

The two image operations are the engine's own (`BATCHED`): their jobs share one forward pass
(`genmodels.engine`), so they are not in `OPERATIONS`.

A value the caller passed that the model cannot use raises ValueError (the member's to fix); an image end that
cannot be drawn raises `EndUnusable`, which names the end and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from . import rounds
from .data import DataError
from .data.imagefile import ImageTooLarge
from .latents import Generation
from .registry import model_for

BATCHED = ("image.grid", "image.latents")  # run by the engine's batched forward pass


@dataclass(frozen=True)
class ImageEnd:
    """One end of an image morph, as plain data: exactly one of an emoji (drawn in ``emoji_style``, None or "noto":
    the emoji font), an image file's bytes (decoded with the safe decoder), or a cell of a grid Muse drew (its
    ``theme``, ``style`` and ``lineage``, re-drawn from the seeds)."""

    label: str  # how the member named it (an emoji, a file name, "V2"): for messages
    emoji: str | None = None
    emoji_style: str | None = None
    data: bytes | None = None
    theme: int | None = None
    style: int = 0
    lineage: tuple[Generation, ...] = ()
    cell: int = 0


class EndUnusable(Exception):
    """An image end the morph cannot use. ``reason``: "unknown_emoji" (not an emoji the font draws),
    "style_unprepared" (that emoji set is not in the prepared data), "not_in_style" (the set lacks that emoji),
    "too_many_pixels" (``width``, ``height``, ``limit`` say how big) or "not_image"."""

    def __init__(self, end: ImageEnd, reason: str, detail: str = "", *, width: int | None = None,
                 height: int | None = None, limit: int | None = None):
        super().__init__(f"{end.label}: {detail or reason}")
        self.end, self.reason, self.detail = end, reason, detail
        self.width, self.height, self.limit = width, height, limit


def _end_image(end: ImageEnd, morpher: Any, models: Callable[[str], Any]):
    """The 64×64 RGBA image of one end (in the worker)."""
    if end.emoji is not None:
        try:
            return morpher.emoji_image(end.emoji, end.emoji_style)
        except DataError as e:
            raise EndUnusable(end, "style_unprepared", str(e)) from None
        except ValueError as e:
            raise EndUnusable(end, "unknown_emoji" if end.emoji_style in (None, "noto") else "not_in_style",
                              str(e)) from None
    if end.data is not None:
        try:
            return morpher.image_from(end.data)
        except ImageTooLarge as e:
            raise EndUnusable(end, "too_many_pixels", str(e), width=e.width, height=e.height, limit=e.limit) from None
        except (DataError, ValueError) as e:
            raise EndUnusable(end, "not_image", str(e)) from None
    gen = models(model_for("image").name)
    style = gen.style_index(end.style)
    z = gen.lineage_latents(end.lineage, end.theme, style)  # (count, nz)
    return gen.render(z[end.cell:end.cell + 1], [end.theme], [style])[0]


def morph_images(morpher: Any, models: Callable[[str], Any], *, a: ImageEnd, b: ImageEnd, frames: int):
    return morpher.morph(_end_image(a, morpher, models), _end_image(b, morpher, models), frames=frames)


def morph_frames(morpher: Any, models: Callable[[str], Any], *, latents: Any):
    """A stored morph drawn again from its frame latents (what the store keeps of it)."""
    import torch

    z = torch.as_tensor(latents, dtype=torch.float32)
    if z.ndim != 2 or not 1 <= len(z) <= 64:
        raise ValueError(f"latents must have shape (1 to 64, latent); got {tuple(z.shape)}")
    return morpher.decode(z)


def poem_sample(poet: Any, models: Callable[[str], Any], *, seed: int, lines: int = 4, temperature: float = 0.9,
                theme: str | None = None, form: str = "free"):
    return poet.sample(seed, lines=lines, temperature=temperature, theme=theme, form=form)


def poem_morph(poet: Any, models: Callable[[str], Any], *, a: str, b: str, steps: int):
    return poet.morph(a, b, steps=steps)


def session_first_round(model: Any, models: Callable[[str], Any], *, plan: rounds.SessionPlan) -> rounds.Bred:
    return rounds.first_round(model, plan)


def session_next_round(model: Any, models: Callable[[str], Any], **args: Any) -> rounds.Bred:
    return rounds.next_round(model, **args)


def model_version(model: Any, models: Callable[[str], Any]) -> str:
    return getattr(model, "version", "?")


OPERATIONS: dict[str, Callable[..., Any]] = {
    "poem.sample": poem_sample,
    "poem.morph": poem_morph,
    "morph.images": morph_images,
    "morph.frames": morph_frames,
    "session.first_round": session_first_round,
    "session.next_round": session_next_round,
    "model.version": model_version,
}

NAMES: tuple[str, ...] = BATCHED + tuple(OPERATIONS)


def get(name: str) -> Callable[..., Any]:
    """The function of operation ``name`` (KeyError for a name that is not one, or a batched one)."""
    try:
        return OPERATIONS[name]
    except KeyError:
        raise KeyError(f"unknown operation {name!r}; the operations are {', '.join(NAMES)}") from None


__all__ = ["BATCHED", "EndUnusable", "ImageEnd", "NAMES", "OPERATIONS", "get"]
