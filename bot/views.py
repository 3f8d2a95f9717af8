"""Buttons that survive restarts: `discord.ui.DynamicItem`s whose whole state is in the ``custom_id``.

They are registered once in ``setup_hook`` (`DYNAMIC_ITEMS`), so a click on a message posted by an earlier
process is parsed by the template regex and rebuilt by ``from_custom_id``; no view has to be stored. Every
``custom_id`` stays under Discord's 100 characters:

    muse:ir:<theme>:<count>                     🔁 reroll an image grid (a fresh seed)
    muse:iv:<cell>:<theme>:<lineage>            V1–V4: variations around one cell; lineage = seeds down to it
    muse:im:<theme>:<lineage>                   🌀 morph from a cell of this grid (asks for the target)
    muse:pr:<lang>:<temperature×100>            🔁 reroll a poem (theme read back from the message)
    muse:pv:<lang>:<temperature×100>:<seed>     🌱 a variation: a new poem that starts from this one's first line

A press on 🔁 or on V1–V4 / 🌱 is also feedback on the result it was pressed on: a weak 'reroll' or 'variation'
signal in the store (found by the message id), stored with the new result once it is posted.
"""

from __future__ import annotations

import logging
import re

import discord

from genmodels.engine import MAX_LINEAGE, Generation

from . import actions, render
from .errors import UserError, report
from .i18n import t

log = logging.getLogger("muse.views")

CUSTOM_ID_MAX = 100


class _Safe:
    """Buttons' errors do not reach the command tree's handler; route them to the same ephemeral report."""

    async def callback(self, interaction: discord.Interaction) -> None:  # type: ignore[override]
        try:
            await self.run(interaction)
        except Exception as e:  # noqa: BLE001 - every error becomes a message
            await report(interaction, e)

    async def run(self, interaction: discord.Interaction) -> None:
        raise NotImplementedError


class ImageReroll(_Safe, discord.ui.DynamicItem[discord.ui.Button], template=r"muse:ir:(?P<theme>\d{1,3}):(?P<count>\d{1,2})"):
    def __init__(self, theme: int, count: int, label: str | None = None):
        self.theme, self.count = theme, count
        super().__init__(discord.ui.Button(emoji="🔁", label=label, style=discord.ButtonStyle.secondary,
                                           custom_id=f"muse:ir:{theme}:{count}"))

    @classmethod
    async def from_custom_id(cls, interaction, item, match: re.Match[str]):
        return cls(int(match["theme"]), int(match["count"]))

    async def run(self, interaction: discord.Interaction) -> None:
        count = actions.check_range("count", self.count, 1, 4)
        await actions.post_image(interaction, self.theme, (Generation(actions.random_seed(), count),),
                                 signal="reroll")


class ImageVariation(_Safe, discord.ui.DynamicItem[discord.ui.Button],
                     template=r"muse:iv:(?P<cell>\d{1,2}):(?P<theme>\d{1,3}):(?P<lineage>[0-9a-z._]{3,90})"):
    def __init__(self, cell: int, theme: int, lineage: str):
        self.cell, self.theme, self.lineage = cell, theme, lineage
        super().__init__(discord.ui.Button(label=f"V{cell + 1}", style=discord.ButtonStyle.primary,
                                           custom_id=f"muse:iv:{cell}:{theme}:{lineage}"))

    @classmethod
    async def from_custom_id(cls, interaction, item, match: re.Match[str]):
        return cls(int(match["cell"]), int(match["theme"]), match["lineage"])

    async def run(self, interaction: discord.Interaction) -> None:
        try:
            parent = render.decode_lineage(self.lineage)
        except ValueError as e:
            raise UserError("stale", detail=str(e)) from None
        if not 0 <= self.cell < parent[-1].count:
            raise UserError("stale", detail=f"V{self.cell + 1}")
        child = render.with_child(parent, self.cell, actions.random_seed(), 4)
        await actions.post_image(interaction, self.theme, child, parent_cell=self.cell, signal="variation")


class ImageMorph(_Safe, discord.ui.DynamicItem[discord.ui.Button],
                 template=r"muse:im:(?P<theme>\d{1,3}):(?P<lineage>[0-9a-z._]{3,90})"):
    def __init__(self, theme: int, lineage: str, label: str | None = None):
        self.theme, self.lineage = theme, lineage
        super().__init__(discord.ui.Button(emoji="🌀", label=label, style=discord.ButtonStyle.secondary,
                                           custom_id=f"muse:im:{theme}:{lineage}"))

    @classmethod
    async def from_custom_id(cls, interaction, item, match: re.Match[str]):
        return cls(int(match["theme"]), match["lineage"])

    async def run(self, interaction: discord.Interaction) -> None:
        try:
            lineage = render.decode_lineage(self.lineage)
        except ValueError as e:
            raise UserError("stale", detail=str(e)) from None
        await interaction.response.send_modal(MorphModal(interaction.locale, self.theme, lineage,
                                                         message_id=actions.parent_of(interaction)))


class MorphModal(discord.ui.Modal):
    """Asks which cell to start from and which emoji to end at; lives only as long as this process."""

    def __init__(self, locale, theme: int, lineage: tuple[Generation, ...], message_id: int | None = None):
        super().__init__(title=t(locale, "morph_modal")[:45], timeout=600)
        self.theme_index, self.lineage = theme, lineage
        self.message_id = message_id  # the grid's message: its stored result is the morph's parent
        self.cell = discord.ui.TextInput(label=t(locale, "morph_modal_cell"), default="1", max_length=2)
        self.target = discord.ui.TextInput(label=t(locale, "morph_modal_to"), placeholder="🐶", max_length=16)
        self.add_item(self.cell)
        self.add_item(self.target)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        try:
            count = self.lineage[-1].count
            try:
                cell = int(str(self.cell.value).strip()) - 1
            except ValueError:
                raise UserError("range", name="cell", lo=1, hi=count, value=self.cell.value) from None
            actions.check_range("cell", cell + 1, 1, count)
            emoji = actions.check_emoji(str(self.target.value))
            seed = self.lineage[-1].seed
            a = actions.Source(f"Muse {seed}·V{cell + 1}", theme=self.theme_index, lineage=self.lineage, cell=cell,
                               message_id=self.message_id)
            await actions.post_morph(interaction, a, actions.Source(emoji, emoji=emoji), frames=8)
        except Exception as e:  # noqa: BLE001
            await report(interaction, e)

    async def on_error(self, interaction: discord.Interaction, error: Exception) -> None:
        await report(interaction, error)


def _poem_state(interaction: discord.Interaction) -> tuple[dict[str, str], str]:
    msg = interaction.message
    emb = msg.embeds[0] if msg is not None and msg.embeds else None
    meta = render.parse_footer(emb.footer.text if emb else None)
    if not meta or meta.get("kind") != "poem":
        raise UserError("stale", detail="no poem here")
    return meta, (emb.description or "")


class PoemReroll(_Safe, discord.ui.DynamicItem[discord.ui.Button], template=r"muse:pr:(?P<lang>en|zh):(?P<temp>\d{1,3})"):
    def __init__(self, lang: str, temp: int, label: str | None = None):
        self.lang, self.temp = lang, temp
        super().__init__(discord.ui.Button(emoji="🔁", label=label, style=discord.ButtonStyle.secondary,
                                           custom_id=f"muse:pr:{lang}:{temp}"))

    @classmethod
    async def from_custom_id(cls, interaction, item, match: re.Match[str]):
        return cls(match["lang"], int(match["temp"]))

    async def run(self, interaction: discord.Interaction) -> None:
        meta, _ = _poem_state(interaction)
        await actions.post_poem(interaction, self.lang, meta.get("theme"), self.temp / 100, actions.random_seed(),
                                signal="reroll")


class PoemVariation(_Safe, discord.ui.DynamicItem[discord.ui.Button],
                    template=r"muse:pv:(?P<lang>en|zh):(?P<temp>\d{1,3}):(?P<seed>[0-9a-z]{1,7})"):
    def __init__(self, lang: str, temp: int, seed: str):
        self.lang, self.temp, self.seed = lang, temp, seed
        super().__init__(discord.ui.Button(emoji="🌱", style=discord.ButtonStyle.primary,
                                           custom_id=f"muse:pv:{lang}:{temp}:{seed}"))

    @classmethod
    async def from_custom_id(cls, interaction, item, match: re.Match[str]):
        return cls(match["lang"], int(match["temp"]), match["seed"])

    async def run(self, interaction: discord.Interaction) -> None:
        _, text = _poem_state(interaction)
        first = next((line.strip() for line in text.splitlines() if line.strip()), None)
        theme = first.rstrip("，。,.!?;:")[:200] if first else None
        await actions.post_poem(interaction, self.lang, theme or None, self.temp / 100, actions.random_seed(),
                                parent=int(self.seed, 36), signal="variation")


DYNAMIC_ITEMS = (ImageReroll, ImageVariation, ImageMorph, PoemReroll, PoemVariation)


def image_view(locale, theme: int, lineage: tuple[Generation, ...]) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(ImageReroll(theme, lineage[-1].count, t(locale, "b_reroll")))
    enc = render.encode_lineage(lineage)
    if len(lineage) < MAX_LINEAGE:
        for cell in range(lineage[-1].count):
            item = ImageVariation(cell, theme, enc)
            if len(item.item.custom_id) <= CUSTOM_ID_MAX:
                view.add_item(item)
    morph = ImageMorph(theme, enc, t(locale, "b_morph"))
    if len(morph.item.custom_id) <= CUSTOM_ID_MAX:
        view.add_item(morph)
    return view


def poem_view(locale, lang: str, temperature: float, seed: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    temp = int(round(temperature * 100))
    view.add_item(PoemReroll(lang, temp, t(locale, "b_reroll")))
    view.add_item(PoemVariation(lang, temp, render.b36(seed)))
    return view
