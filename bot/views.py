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
from discord.ext import commands

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
        await MorphModal(interaction.locale, self.theme, lineage, message_id=actions.parent_of(interaction)).send(
            interaction)


MODAL_TEMPLATE = re.compile(r"muse:mm:(?P<theme>\d{1,3}):(?P<lineage>[0-9a-z._]{3,90})(?::(?P<message>[0-9a-z]{1,13}))?")


class MorphModal(discord.ui.Modal):
    """Asks which cell to start from and which emoji to end at.

    Like the buttons, the form keeps its whole state in its ``custom_id`` (``muse:mm:<theme>:<lineage>[:<message>]``)
    and is never held in memory: `send` stops it before it is shown, so discord.py does not store it, and every
    submit, whether to this process or to one started after it, is handled by `Fallback.on_interaction` through
    `submitted`. A form submitted after a restart, or after any time, still works.
    """

    def __init__(self, locale, theme: int, lineage: tuple[Generation, ...], message_id: int | None = None):
        enc = render.encode_lineage(lineage)
        custom_id = f"muse:mm:{theme}:{enc}"
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
                theme, lineage = int(match["theme"]), render.decode_lineage(match["lineage"])
            except ValueError as e:
                raise UserError("stale", detail=str(e)) from None
            values = modal_values(interaction)
            count = lineage[-1].count
            raw_cell = values.get("cell", "").strip()
            try:
                cell = int(raw_cell) - 1
            except ValueError:
                raise UserError("range", name="cell", lo=1, hi=count, value=raw_cell or "nothing") from None
            actions.check_range("cell", cell + 1, 1, count)
            emoji = actions.check_emoji(values.get("to", ""))
            message_id = int(match["message"], 36) if match["message"] else actions.parent_of(interaction)
            a = actions.Source(f"Muse {lineage[-1].seed}·V{cell + 1}", theme=theme, lineage=lineage, cell=cell,
                               message_id=message_id)
            await actions.post_morph(interaction, a, actions.Source(emoji, emoji=emoji), frames=8)
        except Exception as e:  # noqa: BLE001
            await report(interaction, e)


def modal_values(interaction: discord.Interaction) -> dict[str, str]:
    """The text inputs of a modal submit, by custom_id (in action rows, or in labels: component type 18)."""
    out: dict[str, str] = {}
    for row in (interaction.data or {}).get("components", []):
        inner = row.get("components") or ([row["component"]] if "component" in row else [])
        for comp in inner:
            if "custom_id" in comp:
                out[comp["custom_id"]] = str(comp.get("value") or "")
    return out


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


def is_known_button(custom_id: str) -> bool:
    """Whether a registered button template (hence discord.py, which dispatches it) handles ``custom_id``."""
    return any(item.__discord_ui_compiled_template__.fullmatch(custom_id) for item in DYNAMIC_ITEMS)


class Fallback(commands.Cog):
    """Answers what discord.py would drop silently: a morph form's submit (routed here by its custom_id, see
    `MorphModal`), a form of an older Muse, and a button whose custom_id matches no template (an older Muse's,
    or garbled). Slash commands Muse no longer has are answered by the tree's error handler (`bot.errors`)."""

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction) -> None:
        custom_id = str((interaction.data or {}).get("custom_id", ""))
        if interaction.type is discord.InteractionType.modal_submit:
            match = MODAL_TEMPLATE.fullmatch(custom_id)
            if match is not None:
                await MorphModal.submitted(interaction, match)
            else:
                log.info("a form with an unknown custom_id %r was submitted", custom_id[:100])
                await report(interaction, UserError("old_form"))
        elif interaction.type is discord.InteractionType.component and not is_known_button(custom_id):
            log.info("a button with an unknown custom_id %r was pressed", custom_id[:100])
            await report(interaction, UserError("old_button"))


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
