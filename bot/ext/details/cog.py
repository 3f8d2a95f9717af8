"""Details: the "Muse: details" context menu, the provenance of a result read back from the message itself."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.app_commands import locale_str as _

from genmodels.data.emoji_sets import CREDITS

from ... import checks, render
from ...i18n import t


@app_commands.context_menu(name=_("Muse: details"))
async def details(interaction: discord.Interaction, message: discord.Message) -> None:
    """Provenance of a result: everything needed to reproduce it, read back from the message itself."""
    meta = checks.muse_result(interaction, message)
    loc = interaction.locale
    names = {"kind": "f_kind", "theme": "f_theme", "style": "f_style", "seed": "f_seed", "count": "f_count", "model": "f_model",
             "lang": "f_lang", "temperature": "f_temperature", "frames": "f_frames", "steps": "f_steps",
             "from": "f_from", "to": "f_to", "parent": "f_parents", "form": "f_form"}
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
            style = f" style:{meta['style']}" if meta.get("style_index", "0") != "0" else ""  # not the default
            repro = f"/image theme:{meta['theme']}{style} count:{lineage[0].count} seed:{lineage[0].seed}"
        else:
            repro = f"lineage {meta['lineage']} (seed.count.cell per generation)"
        embed.add_field(name=t(loc, "f_reproduce"), value=f"`{repro}`", inline=False)
        credit = CREDITS.get(meta.get("style", "noto"))
        if credit is not None:  # whose designs the model learned this style from, and the images' licence
            embed.add_field(name=t(loc, "f_licence"), inline=False,
                            value=t(loc, "licence_text", licence=credit.image_licence, credit=credit.credit)[:1024])
    elif kind == "poem":
        theme = f" theme:{meta['theme']}" if meta.get("theme") else ""
        form = f" form:{meta['form']}" if meta.get("form") else ""
        embed.add_field(name=t(loc, "f_reproduce"), inline=False,
                        value=f"`/poem lang:{meta['lang']}{theme} temperature:{meta['temperature']} seed:{meta['seed']}"
                              f"{form}`")
    if meta.get("by"):
        embed.add_field(name="👤", value=f"<@{meta['by']}>")
    await interaction.response.send_message(embed=embed, ephemeral=True)
