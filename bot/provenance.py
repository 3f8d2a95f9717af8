"""One provenance record per result: what made it, written once and rendered three ways.

A result's provenance (its kind, model version, seed, parameters, lineage, requester) is shown to members as embed
fields, travels with the message in the embed footer (``muse · key=value · ...``, read back by the buttons and
"Muse: details", `bot.render.parse_footer`), and is stored with the result in the feedback store (its ``params``).
A flow builds one `Provenance` and adds each entry once, saying where it appears; the three renderings cannot drift
apart::

    prov = Provenance("poem", model="textvae-en", version="textvae-en/v0004", by="42", seed=7)
    prov.add("lang", "en", footer=True, stored=True)
    prov.add("temperature", 0.9, label="f_temperature", shown="0.9")
    prov.fields(embed, locale)    # the member-facing fields, in the order added, with the model last
    prov.footer()                  # "muse · kind=poem · lang=en · seed=7 · temperature=0.9 · model=... · by=42"
    prov.params()                  # {"lang": "en", "temperature": 0.9}

Footer keys are a contract with messages already posted (older buttons read them back), and stored keys with the
rows already stored, so an entry may be stored under another name than its footer key (``stored_as``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import discord

from . import render
from .i18n import t


@dataclass(frozen=True)
class Entry:
    key: str  # the footer key
    value: Any  # the value written in the footer and stored
    label: str | None = None  # the i18n key of its embed field; None: not shown to members
    shown: str | None = None  # the embed field's text (default: the value)
    inline: bool = True
    footer: bool = True  # written in the footer
    stored: bool = True  # stored in the result's params
    stored_as: str | None = None  # the params key, when it is not the footer key


@dataclass
class Provenance:
    kind: str  # "image", "poem", "morph", "morph-poem"
    model: str  # the registry name of the model that made it
    version: str  # the full version tag ("dcgan/v0005"), shown and written in the footer
    by: str  # the requester's id
    seed: int | None = None  # the seed (stored as the result's own column, not in params)
    entries: list[Entry] = field(default_factory=list)

    def add(self, key: str, value: Any, *, label: str | None = None, shown: str | None = None, inline: bool = True,
            footer: bool = True, stored: bool = True, stored_as: str | None = None) -> "Provenance":
        self.entries.append(Entry(key, value, label, shown, inline, footer, stored, stored_as))
        return self

    def fields(self, embed: discord.Embed, locale: Any) -> discord.Embed:
        """Add the member-facing fields to ``embed``: the shown entries in order, the model version after the inline
        ones, the wide ones last."""
        shown = [e for e in self.entries if e.label is not None]
        for e in (e for e in shown if e.inline):
            embed.add_field(name=t(locale, e.label), value=e.shown if e.shown is not None else str(e.value))
        embed.add_field(name=t(locale, "f_model"), value=self.version)
        for e in (e for e in shown if not e.inline):
            embed.add_field(name=t(locale, e.label), value=e.shown if e.shown is not None else str(e.value),
                            inline=False)
        return embed

    def footer(self) -> str:
        """The machine-readable footer: the kind, the footer entries in order, the model version, the requester."""
        fields = {"kind": self.kind}
        fields.update({e.key: e.value for e in self.entries if e.footer})
        fields.update(model=self.version, by=self.by)
        return render.footer(**fields)

    def params(self) -> dict:
        """What the store keeps in the result's ``params``."""
        return {e.stored_as or e.key: e.value for e in self.entries if e.stored}


__all__ = ["Entry", "Provenance"]
