"""The served models, each under one name, and how each is loaded.

Every part of Muse names a model the same way: the engine (its model keys), the feedback store and the trainer
(the ``model`` column, the versions they judge), the CLI and the bot. The name is also the folder of the model's
versions (``<models dir>/<name>/v0001``)::

    from genmodels import registry
    registry.get("dcgan").kind            # "image"
    registry.load("textvae-en", version=3)  # a PoemModel, version 3
    registry.tag(3), registry.parse_tag("textvae-en/v0003")  # "v0003", 3

The engine's older keys (``image``, ``morph``, ``poem-en``, ``poem-zh``) are accepted by `get` as aliases.

Version tags: a version is a number; ``tag`` writes it as the store, the trainer and the folders do (``v0001``),
and a loaded model's ``version`` attribute prefixes the name (``dcgan/v0001``, `full_tag`); ``parse_tag`` reads
either back, ``short_tag`` turns the second into the first. They are implemented next to the folders they name,
in `genmodels.checkpoints`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable

from .checkpoints import full_tag, parse_tag, short_tag, tag

Root = str | os.PathLike | None


def _load_dcgan(root: Root, version: int | None, device: str) -> Any:
    from .images import ImageGenerator

    return ImageGenerator.load(root, version=version, device=device)


def _load_vae(root: Root, version: int | None, device: str) -> Any:
    from .images import Morpher

    return Morpher.load(root, version=version, device=device)


def _poem_loader(lang: str) -> Callable[[Root, int | None, str], Any]:
    def load(root: Root, version: int | None, device: str) -> Any:
        from .poetry import PoemModel

        return PoemModel.load(lang, root=root, device=device, version=version)

    return load


@dataclass(frozen=True)
class ModelSpec:
    """One served model."""

    name: str  # the one name: engine key, store column, trainer, CLI, bot
    kind: str  # "image" (themed grids), "morph" (image morphs) or "poem"
    loader: Callable[[Root, int | None, str], Any] = field(repr=False, compare=False)  # (root, version, device)
    lang: str | None = None  # "en" / "zh" for a poem model, else None
    aliases: tuple[str, ...] = ()  # older names still accepted (the engine's former keys)

    @property
    def card_dir(self) -> str:
        """The folder of its versions under a models root (each ``vNNNN/`` holds weights and a card)."""
        return self.name

    def load(self, root: Root = None, version: int | None = None, device: str = "cpu") -> Any:
        """The engine-side object (ImageGenerator, Morpher or PoemModel) at ``version``; the newest servable
        version when None, from ``root`` or else the usual model roots (`genmodels.paths`)."""
        return self.loader(root, version, device)


MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("dcgan", "image", _load_dcgan, aliases=("image",)),
    ModelSpec("vae", "morph", _load_vae, aliases=("morph",)),
    ModelSpec("textvae-en", "poem", _poem_loader("en"), lang="en", aliases=("poem-en",)),
    ModelSpec("textvae-zh", "poem", _poem_loader("zh"), lang="zh", aliases=("poem-zh",)),
)

NAMES: tuple[str, ...] = tuple(m.name for m in MODELS)

_BY_NAME: dict[str, ModelSpec] = {m.name: m for m in MODELS} | {a: m for m in MODELS for a in m.aliases}


def get(name: str) -> ModelSpec:
    """The model called ``name`` (or one of its aliases); KeyError for an unknown name."""
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        raise KeyError(f"unknown model {name!r}; the models are {', '.join(NAMES)}") from None


def canonical(name: str) -> str:
    """``name`` as the registry spells it (an alias becomes the name); a name it does not know is returned as is."""
    m = _BY_NAME.get(name) if isinstance(name, str) else None
    return m.name if m is not None else name


def poem_model(lang: str) -> ModelSpec:
    """The poem model of language ``lang`` ("en" or "zh")."""
    for m in MODELS:
        if m.kind == "poem" and m.lang == lang:
            return m
    raise KeyError(f"no poem model for language {lang!r}")


def of_kind(kind: str) -> tuple[ModelSpec, ...]:
    return tuple(m for m in MODELS if m.kind == kind)


def model_for(kind: str, lang: str | None = None) -> ModelSpec:
    """The model that serves requests of ``kind`` ("image", "morph" or "poem"; a poem needs its ``lang``): the one
    place where a request is matched to a model, which the bot, the sessions and the benchmarks ask."""
    if kind == "poem":
        if lang is None:
            raise KeyError("a poem model needs a language")
        return poem_model(lang)
    found = of_kind(kind)
    if not found:
        raise KeyError(f"no model of kind {kind!r}; the kinds are image, morph, poem")
    return found[0]


def load(name: str, root: Root = None, version: int | None = None, device: str = "cpu") -> Any:
    """Load model ``name`` (see `ModelSpec.load`)."""
    return get(name).load(root, version, device)


__all__ = ["MODELS", "ModelSpec", "NAMES", "canonical", "full_tag", "get", "load", "model_for", "of_kind",
           "parse_tag", "poem_model", "short_tag", "tag"]
