"""The served models, each under one name, and how each is loaded.

Every part of Muse names a model the same way: the engine (its model keys), the feedback store and the trainer
(the ``model`` column, the versions they judge), the CLI and the bot. The name is also the folder of the model's
versions (``<models dir>/<name>/v0001``)::

    from genmodels import registry
    registry.get("dcgan").kind            # "image"
    registry.load("textvae-en", version=3)  # a PoemModel, version 3
    registry.tag(3), registry.parse_tag("textvae-en/v0003")  # "v0003", 3

The engine's older keys (``image``, ``morph``, ``poem-en``, ``poem-zh``) are accepted by `get` as aliases.

Every server has its own lineage of each model (`genmodels.lineage`): a `ModelKey` names a model, a server and a
version (``dcgan:123:v0002``), and `genmodels.lineage.Lineages.key_for` is the one place that picks the key a
request is served by.

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
    """``name`` as the registry spells it (an alias becomes the name); a name it does not know is returned as is.
    A model key (``image:123:v0002``) keeps its server and version (``dcgan:123:v0002``)."""
    if isinstance(name, str) and ":" in name:
        head, rest = name.split(":", 1)
        return f"{canonical(head)}:{rest}"
    m = _BY_NAME.get(name) if isinstance(name, str) else None
    return m.name if m is not None else name


# ---- model keys: which lineage and version serves a request -----------------------------------------------------

BASE = 0  # the server id of the base lineage: the shipped (or owner-trained) versions, served in DMs too


@dataclass(frozen=True)
class ModelKey:
    """A model as the engine loads it and the store records it: a model name, the server whose lineage it belongs
    to (`BASE`, 0, for the base) and a version of that lineage (None: the base version served now).

    Written as ``name`` (the served base), ``name:server:vNNNN`` (a server's version, a delta on its base) or
    ``name:0:vNNNN`` (one base version). A promoted version is a new key, so nothing is hot-swapped for a server."""

    name: str
    server: int = BASE
    version: int | None = None

    def __str__(self) -> str:
        if self.version is None:
            return self.name
        return f"{self.name}:{self.server}:{tag(self.version)}"

    @property
    def full_tag(self) -> str:
        """The ``version`` attribute of the loaded model: ``dcgan/v0005`` (base), ``dcgan:123/v0002`` (a server's)."""
        if self.version is None:
            raise ValueError(f"{self} names no version")
        return full_tag(self.name if self.server == BASE else f"{self.name}:{self.server}", self.version)


def parse_key(key: "str | ModelKey") -> ModelKey:
    """The `ModelKey` of ``key`` (``dcgan``, ``image``, ``dcgan:123:v0002``, ``dcgan:0:v0005``); aliases become
    names. ValueError for a key that is not one."""
    if isinstance(key, ModelKey):
        return key
    parts = str(key).split(":")
    if len(parts) == 1:
        return ModelKey(canonical(parts[0]))
    if len(parts) != 3:
        raise ValueError(f"not a model key: {key!r} (name, or name:server:vNNNN)")
    try:
        return ModelKey(canonical(parts[0]), int(parts[1]), parse_tag(parts[2]))
    except ValueError:
        raise ValueError(f"not a model key: {key!r} (name, or name:server:vNNNN)") from None


def lineage_of(version: str) -> int:
    """The server whose lineage a loaded model's ``version`` belongs to: ``dcgan:123/v0002`` → 123, and `BASE` (0)
    for a base version (``dcgan/v0005``) or anything else."""
    head = str(version).rsplit("/", 1)[0]
    if ":" in head:
        try:
            return int(head.split(":", 1)[1])
        except ValueError:
            return BASE
    return BASE


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


__all__ = ["BASE", "MODELS", "ModelKey", "ModelSpec", "NAMES", "canonical", "lineage_of", "parse_key", "full_tag", "get", "load", "model_for", "of_kind",
           "parse_tag", "poem_model", "short_tag", "tag"]
