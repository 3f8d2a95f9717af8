"""The slash commands and context menus. Thin: parse, validate, hand over to `bot.actions`.

Cooldowns (per user and command, from the settings) are applied for every slash command by the tree's
``interaction_check`` (`bot.app.MuseTree`), so they follow each bot's own settings.

Option limits are declared twice on purpose: as ``Range`` (so the Discord client refuses bad values as the user
types) and checked again here (a hand-made or replayed payload is not bound by the client).
"""

from __future__ import annotations

from typing import Optional

import discord
from discord import app_commands
from discord.app_commands import locale_str as _
from discord.ext import commands

from genmodels.data.emoji import THEMES
from genmodels.engine import Generation
from genmodels.images import MAX_SEED

from . import actions, render
from .errors import UserError
from .i18n import lang_of, t
from .views import MorphModal


async def theme_autocomplete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    gen = interaction.client.engine.loaded("image")  # type: ignore[attr-defined]
    themes = gen.themes if gen is not None else THEMES
    cur = current.lower().strip()
    return [app_commands.Choice(name=th, value=th) for th in themes if cur in th.lower()][:25]


class Create(commands.Cog):
    """/image, /poem, /interpolate."""

    def __init__(self, bot):
        self.bot = bot

    @app_commands.command(name=_("image"), description=_("Draw a grid of new images in a theme"))
    @app_commands.describe(theme=_("What to draw"), count=_("How many images (1-4)"),
                           seed=_("The same seed draws the same images (0-4294967295); empty = random"))
    @app_commands.rename(theme=_("theme"), count=_("count"), seed=_("seed"))
    @app_commands.autocomplete(theme=theme_autocomplete)
    async def image(self, interaction: discord.Interaction, theme: str,
                    count: app_commands.Range[int, 1, 4] = 4,
                    seed: Optional[app_commands.Range[int, 0, MAX_SEED]] = None) -> None:
        theme = actions.check_text("theme", theme, self.bot.settings.limits.max_text_chars)
        actions.check_range("count", count, 1, 4)
        seed = actions.check_seed(seed)
        await actions.post_image(interaction, theme, (Generation(seed, count),))

    @app_commands.command(name=_("poem"), description=_("Write a short poem"))
    @app_commands.describe(lang=_("English or Chinese"), theme=_("A few words to write about"),
                           temperature=_("Lower is calmer, higher is wilder (0.2-1.5)"),
                           seed=_("The same seed writes the same poem; empty = random"))
    @app_commands.rename(lang=_("lang"), theme=_("theme"), temperature=_("temperature"), seed=_("seed"))
    @app_commands.choices(lang=[app_commands.Choice(name=_("English"), value="en"),
                                app_commands.Choice(name=_("Chinese"), value="zh")])
    async def poem(self, interaction: discord.Interaction, lang: Optional[str] = None, theme: Optional[str] = None,
                   temperature: app_commands.Range[float, 0.2, 1.5] = 0.9,
                   seed: Optional[app_commands.Range[int, 0, MAX_SEED]] = None) -> None:
        lang = lang or ("zh" if lang_of(interaction.locale) == "zh" else "en")
        if lang not in ("en", "zh"):
            raise UserError("range", name="lang", lo="en", hi="zh", value=lang)
        theme = actions.check_text("theme", theme, self.bot.settings.limits.max_text_chars, optional=True)
        actions.check_range("temperature", temperature, 0.2, 1.5)
        seed = actions.check_seed(seed)
        await actions.post_poem(interaction, lang, theme, float(temperature), seed)

    interpolate = app_commands.Group(name=_("interpolate"), description=_("Morph one thing into another"))

    @interpolate.command(name=_("image"), description=_("Morph one image into another (animated GIF + strip)"))
    @app_commands.describe(from_=_("An emoji to start from"), to=_("An emoji to end at"),
                           from_image=_("Or an image to start from"), to_image=_("Or an image to end at"),
                           frames=_("Frames in the animation (2-24)"))
    @app_commands.rename(from_=_("from"), to=_("to"), from_image=_("from_image"), to_image=_("to_image"),
                         frames=_("frames"))
    async def interpolate_image(self, interaction: discord.Interaction, from_: Optional[str] = None,
                                to: Optional[str] = None, from_image: Optional[discord.Attachment] = None,
                                to_image: Optional[discord.Attachment] = None,
                                frames: app_commands.Range[int, 2, 24] = 8) -> None:
        actions.check_range("frames", frames, 2, 24)
        a = self._source(interaction, "from", from_, from_image)
        b = self._source(interaction, "to", to, to_image)
        await actions.post_morph(interaction, a, b, frames)

    @staticmethod
    def _source(interaction, name: str, text: Optional[str], att: Optional[discord.Attachment]) -> actions.Source:
        if (text is None or not text.strip()) == (att is None):
            raise UserError("need_one", name=name)
        if att is not None:
            actions.check_attachment(interaction, att)
            return actions.Source(att.filename, attachment=att)
        emoji = actions.check_emoji(text)
        return actions.Source(emoji, emoji=emoji)

    @interpolate.command(name=_("poem"), description=_("Morph one line of verse into another"))
    @app_commands.describe(from_=_("The first line"), to=_("The last line"),
                           steps=_("Lines from first to last (2-10)"))
    @app_commands.rename(from_=_("from"), to=_("to"), steps=_("steps"))
    async def interpolate_poem(self, interaction: discord.Interaction, from_: str, to: str,
                               steps: app_commands.Range[int, 2, 10] = 5) -> None:
        limit = self.bot.settings.limits.max_text_chars
        a = actions.check_text("from", from_, limit)
        b = actions.check_text("to", to, limit)
        actions.check_range("steps", steps, 2, 10)
        await actions.post_morph_poem(interaction, actions.guess_lang(a, b), a, b, steps)


# ---- message context menus (added to the tree in setup_hook; a Cog cannot hold them as methods) ----------------


def _muse_meta(interaction: discord.Interaction, message: discord.Message) -> dict[str, str]:
    me = interaction.client.user
    emb = message.embeds[0] if message.embeds else None
    meta = render.parse_footer(emb.footer.text if emb else None)
    if me is None or message.author.id != me.id or meta is None:
        raise UserError("not_muse")
    return meta


@app_commands.context_menu(name=_("Muse: details"))
async def details(interaction: discord.Interaction, message: discord.Message) -> None:
    """Provenance of a result: everything needed to reproduce it, read back from the message itself."""
    meta = _muse_meta(interaction, message)
    loc = interaction.locale
    names = {"kind": "f_kind", "theme": "f_theme", "seed": "f_seed", "count": "f_count", "model": "f_model",
             "lang": "f_lang", "temperature": "f_temperature", "frames": "f_frames", "steps": "f_steps",
             "from": "f_from", "to": "f_to", "parent": "f_parents"}
    embed = discord.Embed(title=t(loc, "details_title"), colour=discord.Colour.dark_grey(), url=message.jump_url)
    for key, value in meta.items():
        if key in names:
            embed.add_field(name=t(loc, names[key]), value=value[:1024] or "—")
    kind = meta.get("kind")
    if kind == "image":
        lineage = render.decode_lineage(meta["lineage"], base=10)
        parents = " → ".join(f"{g.seed}·V{g.cell + 1}" for g in lineage[:-1]) or t(loc, "none")
        embed.add_field(name=t(loc, "f_parents"), value=parents, inline=False)
        if len(lineage) == 1:
            repro = f"/image theme:{meta['theme']} count:{lineage[0].count} seed:{lineage[0].seed}"
        else:
            repro = f"lineage {meta['lineage']} (seed.count.cell per generation)"
        embed.add_field(name=t(loc, "f_reproduce"), value=f"`{repro}`", inline=False)
    elif kind == "poem":
        theme = f" theme:{meta['theme']}" if meta.get("theme") else ""
        embed.add_field(name=t(loc, "f_reproduce"), inline=False,
                        value=f"`/poem lang:{meta['lang']}{theme} temperature:{meta['temperature']} seed:{meta['seed']}`")
    if meta.get("by"):
        embed.add_field(name="👤", value=f"<@{meta['by']}>")
    await interaction.response.send_message(embed=embed, ephemeral=True)


@app_commands.context_menu(name=_("Muse: morph from here"))
async def morph_from_here(interaction: discord.Interaction, message: discord.Message) -> None:
    meta = _muse_meta(interaction, message)
    if meta.get("kind") != "image":
        raise UserError("not_image_result")
    try:
        lineage = render.decode_lineage(meta["lineage"], base=10)
        theme = int(meta["theme_index"])
    except (KeyError, ValueError) as e:
        raise UserError("stale", detail=str(e)) from None
    await MorphModal(interaction.locale, theme, lineage, message_id=message.id).send(interaction)


CONTEXT_MENUS = (details, morph_from_here)


async def setup(bot) -> None:
    from . import admin
    from .feedback import Reactions
    from .views import Fallback

    await bot.add_cog(Create(bot))
    await admin.setup(bot)  # /muse
    await bot.add_cog(Reactions(bot))
    await bot.add_cog(Fallback())
