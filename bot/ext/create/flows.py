"""The flows of /image and /poem (defer, generate, post, record), and the buttons under their results.

The buttons are `discord.ui.DynamicItem`s whose whole state is in the ``custom_id``. They are registered once, by this extension's ``setup``, so a click on a message posted by an earlier process is
parsed by the template regex and rebuilt by ``from_custom_id``; no view has to be stored. Every ``custom_id``
stays under Discord's 100 characters:

    muse:ir:<cond>:<count>                      🔁 reroll an image grid (a fresh seed)
    muse:iv:<cell>:<cond>:<lineage>             V1–V4: variations around one cell; lineage = seeds down to it
    muse:pr:<lang>:<temperature×100>            🔁 reroll a poem (theme read back from the message)
    muse:pv:<lang>:<temperature×100>:<seed>     🌱 a variation: a new poem that starts from this one's first line

``<cond>`` is the grid's theme index, with ``s<style>`` after it for a style other than the model's default
(`bot.render.encode_cond`); ids posted before styles hold the theme alone and draw the default style, Noto.
(🌀, ``muse:im:``, morphs from a cell: it belongs to the interpolate extension.) A press on 🔁 or on V1–V4 / 🌱
is also feedback on the result it was pressed on: a weak 'reroll' or 'variation' signal in the store (found by
the message id), stored with the new result once it is posted.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re

import discord

from genmodels import registry
from genmodels.latents import Generation
from genmodels.verse import FORMS, FormNotMet

from ... import checks, render
from ...render import MAX_LINEAGE
from ...checks import (check_cell, check_count, check_lang, check_lineage, check_seed, check_style_index,
                       check_temperature, check_theme_index, from_custom_id, random_seed)
from ...errors import UserError
from ...i18n import t
from ...provenance import Provenance
from ...recording import record
from ...replies import CUSTOM_ID_MAX, SafeItem, begin, bot_of, finish, model_key, parent_of, requester, wait
from ..interpolate.views import ImageMorph

log = logging.getLogger("muse.create")


async def post_image(interaction: discord.Interaction, theme: str | int, lineage: tuple[Generation, ...],
                     *, style: str | int | None = None, parent_cell: int | None = None,
                     signal: str | None = None) -> None:
    """``style``: a name, an index, "any" or None (the model's default); ``signal``: the button that asked for
    this ('variation' | 'reroll'), pressed on the interaction's message."""
    if len(lineage) > MAX_LINEAGE:
        raise UserError("too_deep", n=MAX_LINEAGE)
    theme = checks.resolve_theme(interaction, theme)
    style = checks.resolve_style(interaction, style, lineage[0].seed)
    bot = bot_of(interaction)
    key = model_key(interaction, "image")
    with await begin(interaction) as slot:
        job = slot.image(theme, lineage, style, model_key=key)
    out = await wait(interaction, job)  # an unknown theme found by the worker (model loaded late) is a UserError
    png = await asyncio.get_running_loop().run_in_executor(bot.encoder, render.grid_png, out.images,
                                                           bot.settings.limits.cell_px)
    loc = interaction.locale
    title = (t(loc, "variation_title", theme=out.theme, cell=parent_cell + 1) if parent_cell is not None
             else t(loc, "image_title", theme=out.theme))
    last = out.lineage[-1]
    prov = Provenance("image", registry.model_for("image").name, out.version, requester(interaction), seed=last.seed)
    prov.add("theme", out.theme, label="f_theme").add("theme_index", out.theme_index)
    prov.add("style", out.style, label="f_style").add("style_index", out.style_index)
    prov.add("count", last.count).add("seed", last.seed, label="f_seed", stored=False)
    prov.add("lineage", render.encode_lineage(out.lineage, base=10))
    if len(out.lineage) > 1:
        chain = " → ".join(f"{g.seed}·V{g.cell + 1}" for g in out.lineage[:-1])
        prov.add("parents", chain, label="f_parents", inline=False, footer=False, stored=False)
    if parent_cell is not None:
        prov.add("parent_cell", parent_cell, footer=False)
    prov.add("root_seed", out.lineage[0].seed, stored=False)
    embed = prov.fields(discord.Embed(title=title, colour=discord.Colour.blurple()), loc)
    embed.set_image(url="attachment://muse.png")
    embed.set_footer(text=prov.footer())
    msg = await finish(interaction, embed=embed, files=[discord.File(io.BytesIO(png), "muse.png")],
                       view=image_view(loc, out.theme_index, out.lineage, out.style_index))
    await record(interaction, msg, prov, latent=out.latents, parent_message=parent_of(interaction) if signal else None,
                 signal=signal, lineage=signal == "variation")


async def post_poem(interaction: discord.Interaction, lang: str, theme: str | None, temperature: float, seed: int,
                    *, parent: int | None = None, signal: str | None = None, form: str = "free") -> None:
    """``parent``: the seed of the poem this one varies; ``signal`` as in `post_image`; ``form``: a verse form of
    ``lang`` (`genmodels.verse.FORMS`), which sets the number of lines itself."""
    poet = registry.model_for("poem", lang).name
    with await begin(interaction) as slot:
        job = slot.run(model_key(interaction, "poem", lang), "poem.sample", seed=seed, lines=4,
                       temperature=temperature, theme=theme, form=form)
    try:
        out = await wait(interaction, job)
    except UserError as e:
        if isinstance(e.__cause__, FormNotMet):  # the form's constraints were not met within the tries
            raise UserError("form_not_met", form=form, detail=str(e.__cause__).split(";")[0]) from e.__cause__
        raise
    text = out.text
    loc = interaction.locale
    prov = Provenance("poem", poet, out.version, requester(interaction), seed=seed)
    prov.add("lang", lang).add("seed", seed, label="f_seed", stored=False)
    prov.add("temperature", temperature, label="f_temperature", shown=f"{temperature:g}")
    prov.add("form", form, label="f_form" if form != "free" else None, footer=form != "free")
    prov.add("theme", theme, label="f_theme" if theme else None, inline=False, footer=bool(theme))
    prov.add("lines", len(out.lines), footer=False)
    if parent is not None:
        prov.add("parent", parent, label="f_parents", stored_as="parent_seed")
    embed = prov.fields(discord.Embed(title=t(loc, "poem_var_title" if parent is not None else "poem_title"),
                                      description=text[:4000], colour=discord.Colour.gold()), loc)
    embed.set_footer(text=prov.footer())
    msg = await finish(interaction, embed=embed, files=[], view=poem_view(loc, lang, temperature, seed))
    # The latent has one row per line the text VAE decoded; seed + parameters also reproduce the poem exactly.
    await record(interaction, msg, prov, latent=out.latents if len(out.latents) else None, content=text,
                 parent_message=parent_of(interaction) if signal else None, signal=signal,
                 lineage=signal == "variation")


# ---- the buttons -------------------------------------------------------------------------------------------


class ImageReroll(SafeItem, discord.ui.DynamicItem[discord.ui.Button],
                  template=r"muse:ir:(?P<cond>" + render.COND_PATTERN + r"):(?P<count>\d{1,2})"):
    def __init__(self, theme: int, count: int, label: str | None = None, style: int = 0):
        self.theme, self.count, self.style = theme, count, style
        super().__init__(discord.ui.Button(emoji="🔁", label=label, style=discord.ButtonStyle.secondary,
                                           custom_id=f"muse:ir:{render.encode_cond(theme, style)}:{count}"))

    @classmethod
    async def from_custom_id(cls, interaction, item, match: re.Match[str]):
        theme, style = render.decode_cond(match["cond"])
        return cls(theme, int(match["count"]), style=style)

    async def run(self, interaction: discord.Interaction) -> None:
        with from_custom_id():  # every value of the id passes the check of /image's option
            count = check_count(self.count)
            check_theme_index(interaction, self.theme)
            check_style_index(interaction, self.style)
        await post_image(interaction, self.theme, (Generation(random_seed(), count),), style=self.style,
                         signal="reroll")


class ImageVariation(SafeItem, discord.ui.DynamicItem[discord.ui.Button],
                     template=r"muse:iv:(?P<cell>\d{1,2}):(?P<cond>" + render.COND_PATTERN
                     + r"):(?P<lineage>[0-9a-z._]{3,90})"):
    def __init__(self, cell: int, theme: int, lineage: str, style: int = 0):
        self.cell, self.theme, self.lineage, self.style = cell, theme, lineage, style
        super().__init__(discord.ui.Button(label=f"V{cell + 1}", style=discord.ButtonStyle.primary,
                                           custom_id=f"muse:iv:{cell}:{render.encode_cond(theme, style)}:{lineage}"))

    @classmethod
    async def from_custom_id(cls, interaction, item, match: re.Match[str]):
        theme, style = render.decode_cond(match["cond"])
        return cls(int(match["cell"]), theme, match["lineage"], style)

    async def run(self, interaction: discord.Interaction) -> None:
        try:
            parent = render.decode_lineage(self.lineage)
        except ValueError as e:
            raise UserError("stale", detail=str(e)) from None
        with from_custom_id():  # seeds, counts and cells as /image allows them, the theme and style the model's
            check_lineage(parent)
            check_cell(self.cell + 1, parent[-1].count)
            check_theme_index(interaction, self.theme)
            check_style_index(interaction, self.style)
        child = render.with_child(parent, self.cell, random_seed(), 4)
        await post_image(interaction, self.theme, child, style=self.style, parent_cell=self.cell,
                         signal="variation")


def _poem_state(interaction: discord.Interaction) -> tuple[dict[str, str], str]:
    msg = interaction.message
    emb = msg.embeds[0] if msg is not None and msg.embeds else None
    meta = render.parse_footer(emb.footer.text if emb else None)
    if not meta or meta.get("kind") != "poem":
        raise UserError("stale", detail="no poem here")
    return meta, (emb.description or "")


def _form_of(meta: dict[str, str], lang: str) -> str:
    """The verse form a poem result was written in (its footer's ``form``), so a reroll or a variation keeps it."""
    form = meta.get("form", "free")
    return form if form in FORMS[lang] else "free"


class PoemReroll(SafeItem, discord.ui.DynamicItem[discord.ui.Button], template=r"muse:pr:(?P<lang>en|zh):(?P<temp>\d{1,3})"):
    def __init__(self, lang: str, temp: int, label: str | None = None):
        self.lang, self.temp = lang, temp
        super().__init__(discord.ui.Button(emoji="🔁", label=label, style=discord.ButtonStyle.secondary,
                                           custom_id=f"muse:pr:{lang}:{temp}"))

    @classmethod
    async def from_custom_id(cls, interaction, item, match: re.Match[str]):
        return cls(match["lang"], int(match["temp"]))

    async def run(self, interaction: discord.Interaction) -> None:
        with from_custom_id():  # as /poem's options allow
            lang, temperature = check_lang(self.lang), check_temperature(self.temp / 100)
        meta, _ = _poem_state(interaction)
        await post_poem(interaction, lang, meta.get("theme"), temperature, random_seed(), signal="reroll",
                        form=_form_of(meta, lang))


class PoemVariation(SafeItem, discord.ui.DynamicItem[discord.ui.Button],
                    template=r"muse:pv:(?P<lang>en|zh):(?P<temp>\d{1,3}):(?P<seed>[0-9a-z]{1,7})"):
    def __init__(self, lang: str, temp: int, seed: str):
        self.lang, self.temp, self.seed = lang, temp, seed
        super().__init__(discord.ui.Button(emoji="🌱", style=discord.ButtonStyle.primary,
                                           custom_id=f"muse:pv:{lang}:{temp}:{seed}"))

    @classmethod
    async def from_custom_id(cls, interaction, item, match: re.Match[str]):
        return cls(match["lang"], int(match["temp"]), match["seed"])

    async def run(self, interaction: discord.Interaction) -> None:
        with from_custom_id():  # as /poem's options allow
            lang, temperature = check_lang(self.lang), check_temperature(self.temp / 100)
            parent = check_seed(int(self.seed, 36))
        meta, text = _poem_state(interaction)
        first = next((line.strip() for line in text.splitlines() if line.strip()), None)
        theme = first.rstrip("，。,.!?;:")[:200] if first else None
        await post_poem(interaction, lang, theme or None, temperature, random_seed(),
                        parent=parent, signal="variation", form=_form_of(meta, lang))


BUTTONS = (ImageReroll, ImageVariation, PoemReroll, PoemVariation)


def image_view(locale, theme: int, lineage: tuple[Generation, ...], style: int = 0) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(ImageReroll(theme, lineage[-1].count, t(locale, "b_reroll"), style))
    enc = render.encode_lineage(lineage)
    if len(lineage) < MAX_LINEAGE:
        for cell in range(lineage[-1].count):
            item = ImageVariation(cell, theme, enc, style)
            if len(item.item.custom_id) <= CUSTOM_ID_MAX:
                view.add_item(item)
    morph = ImageMorph(theme, enc, t(locale, "b_morph"), style)
    if len(morph.item.custom_id) <= CUSTOM_ID_MAX:
        view.add_item(morph)
    return view


def poem_view(locale, lang: str, temperature: float, seed: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    temp = int(round(temperature * 100))
    view.add_item(PoemReroll(lang, temp, t(locale, "b_reroll")))
    view.add_item(PoemVariation(lang, temp, render.b36(seed)))
    return view
