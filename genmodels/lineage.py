"""Every server its own taste: which version of which lineage serves a request, and where a server's versions live.

Each served model (`genmodels.registry.MODELS`) has one **base lineage** (server `registry.BASE`, 0: the shipped
or owner-trained full versions, ``<models dir>/<name>/vNNNN/``) and, for every server that has fine-tuned it, a
**server lineage**: versions numbered from v0001 per server, each a small delta on the base version it was learned
on (`genmodels.deltas`), stored as one file::

    <models dir>/servers/<server id>/<name>/vNNNN.safetensors

A request is served by its server's newest promoted version, or by the base when the server has none (a DM is
always served by the base). `Lineages` holds that choice in memory (the trainer moves it when it promotes, rolls
back or resets, the bot fills it from the store at start) and `Lineages.key_for` is the one function every layer
asks: the bot's commands, buttons and sessions, and through the key the engine (which loads it), the store
(which records the lineage of every result) and the trainer (which trains the lineage the votes came from)::

    lineages.key_for("image", None, guild_id)   # "dcgan" (the base) or "dcgan:123:v0002"
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from . import registry
from .registry import BASE, ModelKey, tag

SERVERS_DIR = "servers"  # under the models folder
_VERSION_FILE = re.compile(r"^v(\d{4,})\.safetensors$")


def server_of(guild_id: int | None) -> int:
    """The lineage a request from ``guild_id`` belongs to: that server's, or the base's for a DM (None)."""
    return int(guild_id) if guild_id else BASE


def delta_dir(models_dir: str | os.PathLike, name: str, server: int) -> Path:
    """The folder of server ``server``'s versions of model ``name``."""
    return Path(models_dir) / SERVERS_DIR / str(int(server)) / registry.canonical(name)


def delta_path(models_dir: str | os.PathLike, name: str, server: int, version: int) -> Path:
    """The delta file of version ``version`` of server ``server``'s lineage of ``name``."""
    return delta_dir(models_dir, name, server) / f"{tag(version)}.safetensors"


def delta_versions(models_dir: str | os.PathLike, name: str, server: int) -> list[int]:
    """The version numbers of the delta files on disk for one server and model, ascending."""
    d = delta_dir(models_dir, name, server)
    if not d.is_dir():
        return []
    return sorted(int(m.group(1)) for p in d.iterdir() if (m := _VERSION_FILE.match(p.name)))


def servers_on_disk(models_dir: str | os.PathLike) -> list[int]:
    """The servers that have a lineage folder under ``models_dir``."""
    d = Path(models_dir) / SERVERS_DIR
    if not d.is_dir():
        return []
    return sorted(int(p.name) for p in d.iterdir() if p.is_dir() and p.name.isdigit())


class Lineages:
    """The version each server's lineage serves now, per model: ``(name, server) -> version``. Servers absent
    from it are served by the base. Synchronous and in memory: the bot asks it for every request."""

    def __init__(self, served: dict[tuple[str, int], int] | None = None):
        self._served: dict[tuple[str, int], int] = {}
        for (name, server), version in (served or {}).items():
            self.set(name, server, version)

    def key(self, name: str, server: int | None) -> str:
        """The model key that serves server ``server`` (None or 0: the base) for model ``name``."""
        name = registry.canonical(name)
        server = server_of(server)
        version = self._served.get((name, server)) if server != BASE else None
        if version is None:
            return name
        return str(ModelKey(name, server, version))

    def key_for(self, kind: str, lang: str | None, guild_id: int | None) -> str:
        """The model key that serves a request of ``kind`` (and ``lang`` for a poem) from ``guild_id``."""
        return self.key(registry.model_for(kind, lang).name, guild_id)

    def served(self, name: str, server: int) -> int | None:
        """The version server ``server`` is served for ``name``, or None (the base)."""
        return self._served.get((registry.canonical(name), int(server)))

    def set(self, name: str, server: int, version: int | None) -> None:
        """Serve ``version`` of server ``server``'s lineage of ``name`` from now on (None: the base again)."""
        if int(server) == BASE:
            raise ValueError("the base lineage is served by the engine's base models, not through Lineages")
        k = (registry.canonical(name), int(server))
        if version is None:
            self._served.pop(k, None)
        else:
            self._served[k] = int(version)

    def servers(self) -> list[int]:
        """The servers with a version of their own of at least one model."""
        return sorted({s for _, s in self._served})

    def items(self) -> dict[tuple[str, int], int]:
        return dict(self._served)

    @classmethod
    async def from_store(cls, store) -> "Lineages":
        """The lineages the store records as served (`FeedbackStore.served_versions`)."""
        rows = await store.served_versions()
        return cls({(r["model"], r["server"]): registry.parse_tag(r["version"])
                    for r in rows if r["server"] != BASE and r["model"] in registry.NAMES})

    async def refresh(self, store) -> None:
        self._served = (await self.from_store(store))._served


__all__ = ["Lineages", "SERVERS_DIR", "delta_dir", "delta_path", "delta_versions", "server_of", "servers_on_disk"]
