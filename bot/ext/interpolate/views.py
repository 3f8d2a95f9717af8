"""The 🌀 button (``muse:im:<cond>:<lineage>``: morph from a cell of this grid; ``<cond>`` is the grid's theme
and style, `bot.render.encode_cond`) and the form it opens."""

from __future__ import annotations

import re

import discord

from genmodels.latents import Generation

from ... import render
from ...checks import (check_cell, check_emoji, check_lineage, check_message_id, check_style_index,
                       check_theme_index, from_custom_id)
from ...errors import UserError, report
from ...i18n import t
from ...replies import CUSTOM_ID_MAX, SafeItem, modal_values, parent_of
from . import flows


class ImageMorph(SafeItem, discord.ui.DynamicItem[discord.ui.Button],
                 template=r"muse:im:(?P<cond>" + render.COND_PATTERN + r"):(?P<lineage>[0-9a-z._]{3,90})"):
    def __init__(self, theme: int, lineage: str, label: str | None = None, style: int = 0):
        self.theme, self.lineage, self.style = theme, lineage, style
        super().__init__(discord.ui.Button(emoji="🌀", label=label, style=discord.ButtonStyle.secondary,
                                           custom_id=f"muse:im:{render.encode_cond(theme, style)}:{lineage}"))

    @classmethod
    async def from_custom_id(cls, interaction, item, match: re.Match[str]):
        theme, style = render.decode_cond(match["cond"])
        return cls(theme, match["lineage"], style=style)

    async def run(self, interaction: discord.Interaction) -> None:
        try:
            lineage = render.decode_lineage(self.lineage)
        except ValueError as e:
            raise UserError("stale", detail=str(e)) from None
        with from_custom_id():  # checked before the form opens, as /image's options are
            check_grid(interaction, self.theme, self.style, lineage)
        await MorphModal(interaction.locale, self.theme, lineage, message_id=parent_of(interaction),
                         style=self.style).send(interaction)


def check_grid(interaction: discord.Interaction, theme: int, style: int, lineage: tuple[Generation, ...]) -> None:
    """The grid a 🌀 button or a morph form names: its lineage, theme and style as /image allows them."""
    check_lineage(lineage)
    check_theme_index(interaction, theme)
    check_style_index(interaction, style)


MODAL_TEMPLATE = re.compile(r"muse:mm:(?P<cond>" + render.COND_PATTERN
                            + r"):(?P<lineage>[0-9a-z._]{3,90})(?::(?P<message>[0-9a-z]{1,13}))?")


class MorphModal(discord.ui.Modal):
    """Asks which cell to start from and which emoji to end at.

    Like the buttons, the form keeps its whole state in its ``custom_id`` (``muse:mm:<cond>:<lineage>[:<message>]``)
    and is never held in memory: `send` stops it before it is shown, so discord.py does not store it, and every
    submit, whether to this process or to one started after it, is handled by `bot.app.MuseBot.on_interaction` (the route this extension registers) through
    `submitted`. A form submitted after a restart, or after any time, still works.
    """

    def __init__(self, locale, theme: int, lineage: tuple[Generation, ...], message_id: int | None = None,
                 style: int = 0):
        enc = render.encode_lineage(lineage)
        custom_id = f"muse:mm:{render.encode_cond(theme, style)}:{enc}"
        if message_id is not None and len(custom_id) + 1 + len(render.b36(message_id)) <= CUSTOM_ID_MAX:
            custom_id += f":{render.b36(message_id)}"  # the grid's message: its stored result is the morph's parent
        super().__init__(title=t(locale, "morph_modal")[:45], custom_id=custom_id)
        count = lineage[-1].count
        self.add_item(discord.ui.TextInput(label=t(locale, "morph_modal_cell"), custom_id="cell", default="1",
                                           max_length=2, placeholder=f"1-{count}"))
        self.add_item(discord.ui.TextInput(label=t(locale, "morph_modal_to"), custom_id="to", placeholder="🐶",
                                           max_length=16))

    async def send(self, interaction: discord.Interaction) -> None:
        self.stop()  # a finished modal is not stored: the submit is routed by its custom_id instead
        await interaction.response.send_modal(self)

    @staticmethod
    async def submitted(interaction: discord.Interaction, match: re.Match[str]) -> None:
        try:
            try:
                (theme, style), lineage = render.decode_cond(match["cond"]), render.decode_lineage(match["lineage"])
            except ValueError as e:
                raise UserError("stale", detail=str(e)) from None
            with from_custom_id():  # what the form's custom_id carries, before anything is posted
                check_grid(interaction, theme, style, lineage)
                message_id = check_message_id(int(match["message"], 36)) if match["message"] else None
            message_id = message_id or parent_of(interaction)
            values = modal_values(interaction)
            count = lineage[-1].count
            raw_cell = values.get("cell", "").strip()
            try:
                cell = int(raw_cell) - 1
            except ValueError:
                raise UserError("range", name="cell", lo=1, hi=count, value=raw_cell or "nothing") from None
            check_cell(cell + 1, count)  # typed by the member: said as it is, not as a stale form
            emoji = check_emoji(values.get("to", ""))
            a = flows.Source(f"Muse {lineage[-1].seed}·V{cell + 1}", theme=theme, lineage=lineage, cell=cell,
                             message_id=message_id, style=style)
            await flows.post_morph(interaction, a, flows.Source(emoji, emoji=emoji), frames=8)
        except Exception as e:  # noqa: BLE001
            await report(interaction, e)
