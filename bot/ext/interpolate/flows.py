"""The flows of /interpolate image and poem, the 🌀 button and the morph form."""

from __future__ import annotations

import asyncio
import io
import logging

import discord

from genmodels import registry
from genmodels.latents import Generation
from genmodels.operations import EndUnusable, ImageEnd

from ... import render
from ...errors import UserError
from ...i18n import t
from ...provenance import Provenance
from ...recording import record
from ...replies import begin, bot_of, finish, model_key, requester, wait

log = logging.getLogger("muse.interpolate")


class Source:
    """One end of an image morph: an emoji, an attachment's bytes, or a cell of an earlier Muse grid (posted as
    ``message_id``, when known: that result becomes the morph's parent)."""

    def __init__(self, label: str, emoji: str | None = None, attachment: discord.Attachment | None = None,
                 theme: int | None = None, lineage: tuple[Generation, ...] | None = None, cell: int = 0,
                 message_id: int | None = None, style: int = 0, emoji_style: str | None = None):
        self.label, self.emoji, self.attachment = label, emoji, attachment
        self.emoji_style = emoji_style  # the emoji set an emoji end is drawn from (None / "noto": the font)
        self.theme, self.lineage, self.cell, self.style = theme, lineage, cell, style
        self.message_id = message_id
        self.data: bytes | None = None

    def describe(self) -> dict:
        """What the store keeps of this end (an attachment's bytes are not kept)."""
        if self.emoji is not None:
            return {"emoji": self.emoji, "style": self.emoji_style or "noto"}
        if self.attachment is not None:
            return {"attachment": self.label}
        return {"theme_index": self.theme, "style_index": self.style, "cell": self.cell,
                "lineage": render.encode_lineage(self.lineage, base=10) if self.lineage else None}

    async def fetch(self) -> None:
        if self.attachment is not None:
            try:
                self.data = await self.attachment.read()
            except (discord.HTTPException, OSError) as e:  # deleted, expired, or Discord's CDN failed
                log.info("could not download attachment %r: %s", self.label[:100], e)
                raise UserError("attachment_gone", name=self.label) from None

    def end(self) -> ImageEnd:
        """This end as the ``morph.images`` operation takes it (after `fetch`)."""
        if self.emoji is not None:
            return ImageEnd(self.label, emoji=self.emoji, emoji_style=self.emoji_style)
        if self.attachment is not None:
            return ImageEnd(self.label, data=self.data)
        return ImageEnd(self.label, theme=self.theme, style=self.style, lineage=tuple(self.lineage or ()),
                        cell=self.cell)


def unusable(e: EndUnusable) -> UserError:
    """What the member is told about an end the morph could not use."""
    end = e.end
    if e.reason == "unknown_emoji":
        return UserError("unknown_emoji", text=end.emoji or end.label)
    if e.reason == "style_unprepared":
        return UserError("style_unprepared", style=end.emoji_style)
    if e.reason == "not_in_style":
        return UserError("not_in_style", text=end.emoji or end.label, style=end.emoji_style)
    if e.reason == "too_many_pixels":
        if e.width and e.height:
            return UserError("too_many_pixels", name=end.label, size=f"{e.width}×{e.height}", mp=e.limit / 1e6)
        return UserError("too_many_pixels_unread", name=end.label, mp=(e.limit or 0) / 1e6)
    return UserError("not_image", name=end.label)


def _morph_files(frames: list, cell_px: int) -> tuple[bytes, bytes]:
    return render.morph_gif(frames, cell_px), render.strip_png(frames, max(64, cell_px // 2))


async def post_morph(interaction: discord.Interaction, a: Source, b: Source, frames: int) -> None:
    bot = bot_of(interaction)
    cell_px = bot.settings.limits.cell_px
    model = registry.model_for("morph").name
    with await begin(interaction) as slot:
        await a.fetch()
        await b.fetch()
        job = slot.run(model_key(interaction, "morph"), "morph.images", a=a.end(), b=b.end(), frames=frames)
    try:
        out = await wait(interaction, job)
    except EndUnusable as e:
        raise unusable(e) from None
    gif, strip = await asyncio.get_running_loop().run_in_executor(bot.encoder, _morph_files, out.frames, cell_px)
    loc = interaction.locale
    prov = Provenance("morph", model, out.version, requester(interaction))
    for key, label, end in (("from", "f_from", a), ("to", "f_to", b)):
        prov.add(key, end.label[:300], label=label, shown=end.label[:256], stored=False)  # as the member named it
        prov.add(key, end.describe(), footer=False)  # what the store keeps of it
    prov.add("frames", frames, label="f_frames")
    embed = prov.fields(discord.Embed(title=t(loc, "morph_title"), colour=discord.Colour.teal()), loc)
    embed.set_image(url="attachment://morph.gif")
    embed.set_footer(text=prov.footer())
    msg = await finish(interaction, embed=embed, files=[discord.File(io.BytesIO(gif), "morph.gif"),
                                                        discord.File(io.BytesIO(strip), "strip.png")])
    parent = a.message_id if a.message_id is not None else b.message_id
    await record(interaction, msg, prov, parent_message=parent, latent=out.latents)


async def post_morph_poem(interaction: discord.Interaction, lang: str, a: str, b: str, steps: int) -> None:
    poet = registry.model_for("poem", lang).name
    with await begin(interaction) as slot:
        job = slot.run(model_key(interaction, "poem", lang), "poem.morph", a=a, b=b, steps=steps)
    out = await wait(interaction, job)
    lines = out.frames
    loc = interaction.locale
    prov = Provenance("morph-poem", poet, out.version, requester(interaction))
    prov.add("lang", lang).add("steps", steps, label="f_steps").add("from", a).add("to", b)
    body = "\n".join(f"`{i + 1:>2}` {line}" for i, line in enumerate(lines))
    embed = prov.fields(discord.Embed(title=t(loc, "morph_poem_title"), description=body[:4000],
                                      colour=discord.Colour.teal()), loc)
    embed.set_footer(text=prov.footer())
    msg = await finish(interaction, embed=embed, files=[])
    await record(interaction, msg, prov, content="\n".join(lines))


def guess_lang(*texts: str) -> str:
    return "zh" if any("\u4e00" <= c <= "\u9fff" for s in texts for c in s) else "en"
