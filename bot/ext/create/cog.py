"""/image and /poem: thin, parse and validate (`bot.checks`), then hand over to `flows`."""

from __future__ import annotations

from typing import Optional

import discord
from discord import app_commands
from discord.app_commands import locale_str as _
from discord.ext import commands

from genmodels.latents import Generation
from genmodels.images import MAX_SEED
from genmodels.verse import FORMS

from ... import checks
from ...i18n import lang_of
from . import flows


# The verse forms /poem offers (`genmodels.verse.FORMS`), with their labels; a form names its language.
FORM_CHOICES = (("free", "Free verse"), ("quatrain", "Quatrain (English, rhymed)"),
                ("couplet", "Couplet (English, rhymed)"), ("haiku", "Haiku (English, 5-7-5)"),
                ("jueju", "Jueju 绝句 (Chinese)"), ("lushi", "Lushi 律诗 (Chinese)"))


def form_lang(form: str | None) -> str | None:
    """The language a form belongs to (None for free verse, which both have)."""
    owners = [lang for lang, forms in FORMS.items() if form in forms]
    return owners[0] if len(owners) == 1 else None


class Create(commands.Cog):
    """/image and /poem."""

    def __init__(self, bot):
        self.bot = bot

    @app_commands.command(name=_("image"), description=_("Draw a grid of new images in a theme"))
    @app_commands.describe(theme=_("What to draw"), count=_("How many images (1-4)"),
                           seed=_("The same seed draws the same images (0-4294967295); empty = random"),
                           style=_("Which emoji set to draw like (default: Noto)"))
    @app_commands.rename(theme=_("theme"), count=_("count"), seed=_("seed"), style=_("style"))
    @app_commands.autocomplete(theme=checks.theme_autocomplete)
    @app_commands.choices(style=[app_commands.Choice(name=_(label), value=value)
                                 for value, label in checks.STYLE_CHOICES])
    async def image(self, interaction: discord.Interaction, theme: str,
                    count: app_commands.Range[int, 1, 4] = 4,
                    seed: Optional[app_commands.Range[int, 0, MAX_SEED]] = None,
                    style: Optional[str] = None) -> None:
        theme = checks.check_text("theme", theme, self.bot.settings.limits.max_text_chars)
        checks.check_count(count)
        seed = checks.check_seed(seed)
        await flows.post_image(interaction, theme, (Generation(seed, count),), style=style)

    @app_commands.command(name=_("poem"), description=_("Write a short poem"))
    @app_commands.describe(lang=_("English or Chinese"), theme=_("A few words to write about"),
                           temperature=_("Lower is calmer, higher is wilder (0.2-1.5)"),
                           seed=_("The same seed writes the same poem; empty = random"),
                           form=_("A verse form (sets the number of lines)"))
    @app_commands.rename(lang=_("lang"), theme=_("theme"), temperature=_("temperature"), seed=_("seed"),
                         form=_("form"))
    @app_commands.choices(lang=[app_commands.Choice(name=_("English"), value="en"),
                                app_commands.Choice(name=_("Chinese"), value="zh")],
                          form=[app_commands.Choice(name=_(label), value=value) for value, label in FORM_CHOICES])
    async def poem(self, interaction: discord.Interaction, lang: Optional[str] = None, theme: Optional[str] = None,
                   temperature: app_commands.Range[float, 0.2, 1.5] = 0.9,
                   seed: Optional[app_commands.Range[int, 0, MAX_SEED]] = None,
                   form: Optional[str] = None) -> None:
        lang = lang or form_lang(form) or ("zh" if lang_of(interaction.locale) == "zh" else "en")
        checks.check_lang(lang)
        form = checks.check_form(form, lang)
        theme = checks.check_text("theme", theme, self.bot.settings.limits.max_text_chars, optional=True)
        checks.check_temperature(temperature)
        seed = checks.check_seed(seed)
        await flows.post_poem(interaction, lang, theme, float(temperature), seed, form=form)
