"""/interpolate image and poem, and the "Muse: morph from here" context menu."""

from __future__ import annotations

from typing import Optional

import discord
from discord import app_commands
from discord.app_commands import locale_str as _
from discord.ext import commands

from genmodels.images import ANY_STYLE

from ... import checks, render
from ...errors import UserError
from . import flows
from .views import MorphModal


# The emoji sets an emoji end of a morph may be drawn from: Noto from the font, the others from the prepared dataset.
EMOJI_STYLE_CHOICES = [app_commands.Choice(name=_(label), value=value) for value, label in
                       checks.STYLE_CHOICES if value != ANY_STYLE]


class Interpolate(commands.Cog):
    """/interpolate."""

    def __init__(self, bot):
        self.bot = bot

    interpolate = app_commands.Group(name=_("interpolate"), description=_("Morph one thing into another"))

    @interpolate.command(name=_("image"), description=_("Morph one image into another (animated GIF + strip)"))
    @app_commands.describe(from_=_("An emoji to start from"), to=_("An emoji to end at"),
                           from_image=_("Or an image to start from"), to_image=_("Or an image to end at"),
                           frames=_("Frames in the animation (2-24)"),
                           from_style=_("The emoji set the first emoji is drawn from (default: Noto)"),
                           to_style=_("The emoji set the last emoji is drawn from (default: Noto)"))
    @app_commands.rename(from_=_("from"), to=_("to"), from_image=_("from_image"), to_image=_("to_image"),
                         frames=_("frames"), from_style=_("from_style"), to_style=_("to_style"))
    @app_commands.choices(from_style=EMOJI_STYLE_CHOICES, to_style=EMOJI_STYLE_CHOICES)
    async def interpolate_image(self, interaction: discord.Interaction, from_: Optional[str] = None,
                                to: Optional[str] = None, from_image: Optional[discord.Attachment] = None,
                                to_image: Optional[discord.Attachment] = None,
                                frames: app_commands.Range[int, 2, 24] = 8,
                                from_style: Optional[str] = None, to_style: Optional[str] = None) -> None:
        checks.check_frames(frames)
        a = self._source(interaction, "from", from_, from_image, from_style)
        b = self._source(interaction, "to", to, to_image, to_style)
        await flows.post_morph(interaction, a, b, frames)

    @staticmethod
    def _source(interaction, name: str, text: Optional[str], att: Optional[discord.Attachment],
                style: Optional[str] = None) -> flows.Source:
        if (text is None or not text.strip()) == (att is None):
            raise UserError("need_one", name=name)
        if att is not None:
            checks.check_attachment(interaction, att)
            return flows.Source(att.filename, attachment=att)
        emoji = checks.check_emoji(text)
        label = emoji if style in (None, "noto") else f"{emoji} ({style})"
        return flows.Source(label, emoji=emoji, emoji_style=style)

    @interpolate.command(name=_("poem"), description=_("Morph one line of verse into another"))
    @app_commands.describe(from_=_("The first line"), to=_("The last line"),
                           steps=_("Lines from first to last (2-10)"))
    @app_commands.rename(from_=_("from"), to=_("to"), steps=_("steps"))
    async def interpolate_poem(self, interaction: discord.Interaction, from_: str, to: str,
                               steps: app_commands.Range[int, 2, 10] = 5) -> None:
        limit = self.bot.settings.limits.max_text_chars
        a = checks.check_text("from", from_, limit)
        b = checks.check_text("to", to, limit)
        checks.check_steps(steps)
        await flows.post_morph_poem(interaction, flows.guess_lang(a, b), a, b, steps)


@app_commands.context_menu(name=_("Muse: morph from here"))
async def morph_from_here(interaction: discord.Interaction, message: discord.Message) -> None:
    meta = checks.muse_result(interaction, message)
    if meta.get("kind") != "image":
        raise UserError("not_image_result")
    try:
        lineage = render.decode_lineage(meta["lineage"], base=10)
        theme = int(meta["theme_index"])
        style = int(meta.get("style_index", 0))  # results posted before styles were drawn in the default style
    except (KeyError, ValueError) as e:
        raise UserError("stale", detail=str(e)) from None
    await MorphModal(interaction.locale, theme, lineage, message_id=message.id, style=style).send(interaction)
