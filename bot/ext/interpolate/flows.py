"""The flows of /interpolate image and poem, the 🌀 button and the morph form."""

from __future__ import annotations

import io
import logging
import threading

import discord

from genmodels.data import DataError
from genmodels.data.imagefile import ImageTooLarge
from genmodels import registry
from genmodels.latents import Generation

from ... import render
from ...errors import UserError
from ...i18n import t
from ...recording import record
from ...replies import begin, bot_of, finish, requester, wait

log = logging.getLogger("muse.interpolate")


_renderer_lock = threading.Lock()


_renderer = None


def _emoji_image(text: str):
    """Render one emoji (in the worker thread). Never treats the text as a path."""
    global _renderer
    from genmodels.data.emoji import EmojiRenderer

    with _renderer_lock:
        if _renderer is None:
            _renderer = EmojiRenderer()
        im = _renderer.render(text)
    if im is None:
        raise UserError("unknown_emoji", text=text)
    return im


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

    def image(self, engine, morpher):  # worker thread
        if self.emoji is not None and self.emoji_style not in (None, "noto"):
            try:
                return morpher.emoji_in_style(self.emoji, self.emoji_style)
            except DataError:
                raise UserError("style_unprepared", style=self.emoji_style) from None
            except ValueError:
                raise UserError("not_in_style", text=self.emoji, style=self.emoji_style) from None
        if self.emoji is not None:
            return _emoji_image(self.emoji)
        if self.data is not None:
            # the library decodes with an explicit list of formats and a pixel budget, checked from the header
            try:
                return morpher.image_from(self.data)
            except ImageTooLarge as e:
                raise UserError("too_many_pixels", name=self.label, size=f"{e.width}×{e.height}" if e.width else "?",
                                mp=e.limit / 1e6) from None
            except (DataError, ValueError):
                raise UserError("not_image", name=self.label) from None
        gen = engine.model("dcgan")
        style = gen.style_index(self.style)
        z = gen.lineage_latents(self.lineage, self.theme, style)  # `render.decode_lineage`: ≤ MAX_LINEAGE deep
        return gen.render(z[self.cell:self.cell + 1], [self.theme], [style])[0]


async def post_morph(interaction: discord.Interaction, a: Source, b: Source, frames: int) -> None:
    bot = bot_of(interaction)
    engine = bot.engine
    cell_px = bot.settings.limits.cell_px
    with await begin(interaction) as slot:
        await a.fetch()
        await b.fetch()

        def work(morpher):
            ims = [a.image(engine, morpher), b.image(engine, morpher)]
            out = morpher.morph(ims[0], ims[1], frames=frames)
            seq = out.frames
            gif, strip = render.morph_gif(seq, cell_px), render.strip_png(seq, max(64, cell_px // 2))
            return gif, strip, out.version, out.latents

        job = slot.call("vae", work)
    gif, strip, version, latents = await wait(interaction, job)
    loc = interaction.locale
    embed = discord.Embed(title=t(loc, "morph_title"), colour=discord.Colour.teal())
    embed.set_image(url="attachment://morph.gif")
    embed.add_field(name=t(loc, "f_from"), value=a.label[:256])
    embed.add_field(name=t(loc, "f_to"), value=b.label[:256])
    embed.add_field(name=t(loc, "f_frames"), value=str(frames))
    embed.add_field(name=t(loc, "f_model"), value=version)
    embed.set_footer(text=render.footer(kind="morph", frames=frames, model=version, by=requester(interaction),
                                        **{"from": a.label[:300], "to": b.label[:300]}))
    msg = await finish(interaction, embed=embed, files=[discord.File(io.BytesIO(gif), "morph.gif"),
                                                        discord.File(io.BytesIO(strip), "strip.png")])
    parent = a.message_id if a.message_id is not None else b.message_id
    await record(interaction, msg, kind="morph", model="vae", version=version, parent_message=parent,
                 latent=latents, params={"from": a.describe(), "to": b.describe(), "frames": frames})


async def post_morph_poem(interaction: discord.Interaction, lang: str, a: str, b: str, steps: int) -> None:
    poet = registry.poem_model(lang).name
    with await begin(interaction) as slot:
        job = slot.call(poet, lambda m: m.morph(a, b, steps=steps))
    out = await wait(interaction, job)
    lines, version = out.frames, out.version
    loc = interaction.locale
    body = "\n".join(f"`{i + 1:>2}` {line}" for i, line in enumerate(lines))
    embed = discord.Embed(title=t(loc, "morph_poem_title"), description=body[:4000], colour=discord.Colour.teal())
    embed.add_field(name=t(loc, "f_steps"), value=str(steps))
    embed.add_field(name=t(loc, "f_model"), value=version)
    embed.set_footer(text=render.footer(kind="morph-poem", lang=lang, steps=steps, model=version,
                                        by=requester(interaction), **{"from": a, "to": b}))
    msg = await finish(interaction, embed=embed, files=[])
    await record(interaction, msg, kind="morph-poem", model=poet, version=version,
                 params={"lang": lang, "from": a, "to": b, "steps": steps}, content="\n".join(lines))


def guess_lang(*texts: str) -> str:
    return "zh" if any("\u4e00" <= c <= "\u9fff" for s in texts for c in s) else "en"
