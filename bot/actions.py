"""The flows behind commands, buttons and menus: reserve a queue place, defer, run the engine, post the result.

Order matters (Discord manners):
1. Validate cheap things and reserve a place in the engine's queue. Both are instant; a failure here is
   answered directly with an ephemeral message, because nothing has been sent yet.
2. ``defer()`` at once (callback type 5), well inside Discord's 3 s, before any slow work starts.
3. Submit the job; if others are ahead, show the place in the queue.
4. Encode files off the event loop and edit the deferred message into the result. A job that outlived the
   15-minute interaction token is posted as a normal channel message instead.
5. Store the posted result, with its message id, in the feedback store (`bot.feedback.record`): after the
   reply, so the user never waits for it, and a store failure is only logged.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import logging
import random
import threading
from typing import TYPE_CHECKING, Any

import discord

from genmodels.data import DataError
from genmodels.data.imagefile import ImageTooLarge
from genmodels.engine import MAX_LINEAGE, Generation, Job, Slot
from genmodels.images import MAX_SEED

from . import render
from .errors import UserError
from .feedback import record
from .i18n import t

if TYPE_CHECKING:
    from .app import MuseBot

log = logging.getLogger("muse.actions")

TOKEN_LIFETIME = dt.timedelta(minutes=14)  # Discord's is 15; keep a margin


def random_seed() -> int:
    return random.SystemRandom().randint(0, MAX_SEED)


def check_number(name: str, value, *, whole: bool = True):
    """An option's value must be a number: an outdated client (or a hand-made payload) may send text."""
    if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)):
        raise UserError("bad_option", name=name, value=str(value), kind="a whole number" if whole else "a number")
    return value


def check_seed(seed: int | None) -> int:
    if seed is None:
        return random_seed()
    check_number("seed", seed)
    if not 0 <= seed <= MAX_SEED:
        raise UserError("seed_range", max=MAX_SEED, seed=seed)
    return seed


def check_range(name: str, value, lo, hi):
    if isinstance(lo, (int, float)):
        check_number(name, value, whole=isinstance(lo, int) and isinstance(hi, int))
    if not lo <= value <= hi:
        raise UserError("range", name=name, lo=lo, hi=hi, value=value)
    return value


def check_text(name: str, text: str | None, limit: int, *, optional: bool = False) -> str | None:
    if text is None and optional:
        return None
    text = (text or "").strip()
    if not text:
        if optional:
            return None
        raise UserError("text_empty", name=name)
    if len(text) > limit:
        raise UserError("text_long", name=name, n=len(text), limit=limit)
    if not readable(text):
        raise UserError("text_chars", name=name)
    return text


def readable(text: str) -> bool:
    """False for text that cannot be encoded (lone surrogates, as a broken client sends) or holds control
    characters other than line breaks and tabs."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return not any(ord(c) < 32 and c not in "\n\t" or ord(c) == 127 for c in text)


def bot_of(interaction: discord.Interaction) -> "MuseBot":
    return interaction.client  # type: ignore[return-value]


# ---- the common skeleton ----------------------------------------------------------------------------------


async def begin(interaction: discord.Interaction) -> Slot:
    """Reserve a queue place (or raise EngineBusy, answered ephemerally), then defer publicly."""
    slot = bot_of(interaction).engine.reserve(interaction.user.id)
    try:
        await interaction.response.defer(thinking=True)
    except BaseException:
        slot.release()
        raise
    interaction.extras["public_defer"] = True
    return slot


async def wait(interaction: discord.Interaction, job: Job) -> Any:
    if job.ahead > 0:
        try:
            await interaction.edit_original_response(content=t(interaction.locale, "queued", ahead=job.ahead))
        except discord.HTTPException:
            log.debug("could not show the queue position", exc_info=True)
    return await job.future


async def finish(interaction: discord.Interaction, *, embed: discord.Embed, files: list[discord.File],
                 view: discord.ui.View | None = None) -> discord.Message:
    """Post the result; returns the message it became (its id ties votes to the stored result)."""
    if discord.utils.utcnow() - interaction.created_at > TOKEN_LIFETIME and interaction.channel is not None:
        # The interaction token is about to expire: post as a normal message that mentions the requester.
        return await interaction.channel.send(content=interaction.user.mention, embed=embed, files=files,
                                              view=view or discord.utils.MISSING)  # type: ignore[union-attr]
    return await interaction.edit_original_response(content=None, embed=embed, attachments=files,
                                                    view=view or discord.utils.MISSING)


def requester(interaction: discord.Interaction) -> str:
    return str(interaction.user.id)


# ---- images -------------------------------------------------------------------------------------------------


def resolve_theme(interaction: discord.Interaction, theme: str | int) -> str | int:
    """Check a theme against the loaded generator (if loaded; otherwise the worker checks it)."""
    gen = bot_of(interaction).engine.loaded("image")
    if gen is None:
        return theme
    try:
        return gen.theme_index(theme.strip().lower() if isinstance(theme, str) else theme)
    except ValueError:
        raise UserError("unknown_theme", theme=theme, themes=", ".join(gen.themes)) from None


def parent_of(interaction: discord.Interaction) -> int | None:
    """The message a button was pressed on (a parent result), if any."""
    return interaction.message.id if interaction.message is not None else None


async def post_image(interaction: discord.Interaction, theme: str | int, lineage: tuple[Generation, ...],
                     *, parent_cell: int | None = None, signal: str | None = None) -> None:
    """``signal``: the button that asked for this ('variation' | 'reroll'), pressed on the interaction's message."""
    if len(lineage) > MAX_LINEAGE:
        raise UserError("too_deep", n=MAX_LINEAGE)
    theme = resolve_theme(interaction, theme)
    bot = bot_of(interaction)
    with await begin(interaction) as slot:
        job = slot.image(theme, lineage)
    try:
        out = await wait(interaction, job)
    except ValueError as e:  # an unknown theme found by the worker (model loaded late)
        raise UserError("bad_text", detail=str(e)) from e
    png = await asyncio.get_running_loop().run_in_executor(bot.encoder, render.grid_png, out.images,
                                                           bot.settings.limits.cell_px)
    loc = interaction.locale
    title = (t(loc, "variation_title", theme=out.theme, cell=parent_cell + 1) if parent_cell is not None
             else t(loc, "image_title", theme=out.theme))
    root = out.lineage[0]
    embed = discord.Embed(title=title, colour=discord.Colour.blurple())
    embed.set_image(url="attachment://muse.png")
    embed.add_field(name=t(loc, "f_theme"), value=out.theme)
    embed.add_field(name=t(loc, "f_seed"), value=str(out.lineage[-1].seed))
    embed.add_field(name=t(loc, "f_model"), value=out.version)
    if len(out.lineage) > 1:
        chain = " → ".join(f"{g.seed}·V{g.cell + 1}" for g in out.lineage[:-1])
        embed.add_field(name=t(loc, "f_parents"), value=chain, inline=False)
    embed.set_footer(text=render.footer(kind="image", theme=out.theme, theme_index=out.theme_index,
                                        count=out.lineage[-1].count, seed=out.lineage[-1].seed,
                                        lineage=render.encode_lineage(out.lineage, base=10),
                                        model=out.version, by=requester(interaction), root_seed=root.seed))
    from .views import image_view

    msg = await finish(interaction, embed=embed, files=[discord.File(io.BytesIO(png), "muse.png")],
                       view=image_view(loc, out.theme_index, out.lineage))
    params = {"theme": out.theme, "theme_index": out.theme_index, "count": out.lineage[-1].count,
              "lineage": render.encode_lineage(out.lineage, base=10)}
    if parent_cell is not None:
        params["parent_cell"] = parent_cell
    await record(interaction, msg, kind="image", model="dcgan", version=out.version, seed=out.lineage[-1].seed,
                 latent=out.latents, params=params, parent_message=parent_of(interaction) if signal else None,
                 signal=signal, lineage=signal == "variation")


# ---- poems --------------------------------------------------------------------------------------------------


async def post_poem(interaction: discord.Interaction, lang: str, theme: str | None, temperature: float, seed: int,
                    *, parent: int | None = None, signal: str | None = None) -> None:
    """``parent``: the seed of the poem this one varies; ``signal`` as in `post_image`."""
    with await begin(interaction) as slot:
        job = slot.call(f"poem-{lang}", lambda m: (m.sample(seed, lines=4, temperature=temperature, theme=theme),
                                                   m.version))
    try:
        text, version = await wait(interaction, job)
    except ValueError as e:
        raise UserError("bad_text", detail=str(e)) from e
    loc = interaction.locale
    embed = discord.Embed(title=t(loc, "poem_var_title" if parent is not None else "poem_title"),
                          description=text[:4000], colour=discord.Colour.gold())
    if theme:
        embed.add_field(name=t(loc, "f_theme"), value=theme, inline=False)
    embed.add_field(name=t(loc, "f_seed"), value=str(seed))
    embed.add_field(name=t(loc, "f_temperature"), value=f"{temperature:g}")
    embed.add_field(name=t(loc, "f_model"), value=version)
    if parent is not None:
        embed.add_field(name=t(loc, "f_parents"), value=str(parent))
    fields = dict(kind="poem", lang=lang, seed=seed, temperature=f"{temperature:g}", model=version,
                  by=requester(interaction))
    if parent is not None:
        fields["parent"] = parent
    if theme:
        fields["theme"] = theme
    embed.set_footer(text=render.footer(**fields))
    from .views import poem_view

    msg = await finish(interaction, embed=embed, files=[], view=poem_view(loc, lang, temperature, seed))
    # No latent here: `PoemModel.sample` keeps it inside; seed + parameters reproduce the poem exactly.
    params = {"lang": lang, "theme": theme, "temperature": temperature, "lines": 4}
    if parent is not None:
        params["parent_seed"] = parent
    await record(interaction, msg, kind="poem", model=f"textvae-{lang}", version=version, seed=seed, params=params,
                 content=text, parent_message=parent_of(interaction) if signal else None, signal=signal,
                 lineage=signal == "variation")


# ---- morphs -------------------------------------------------------------------------------------------------

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


def check_emoji(text: str) -> str:
    s = text.strip()
    if not s or len(s) > 16 or any(c.isascii() and (c.isalnum() or c in "/.\\~") for c in s):
        raise UserError("unknown_emoji", text=s[:40])
    return s


def check_attachment(interaction: discord.Interaction, att: discord.Attachment) -> discord.Attachment:
    limit = bot_of(interaction).settings.limits.max_attachment_mb
    if att.content_type is not None and not att.content_type.startswith("image/"):
        raise UserError("not_image", name=att.filename)
    if att.size > limit * 1024 * 1024:
        raise UserError("too_big", name=att.filename, size=att.size / 1024 / 1024, limit=limit)
    return att


class Source:
    """One end of an image morph: an emoji, an attachment's bytes, or a cell of an earlier Muse grid (posted as
    ``message_id``, when known: that result becomes the morph's parent)."""

    def __init__(self, label: str, emoji: str | None = None, attachment: discord.Attachment | None = None,
                 theme: int | None = None, lineage: tuple[Generation, ...] | None = None, cell: int = 0,
                 message_id: int | None = None):
        self.label, self.emoji, self.attachment = label, emoji, attachment
        self.theme, self.lineage, self.cell = theme, lineage, cell
        self.message_id = message_id
        self.data: bytes | None = None

    def describe(self) -> dict:
        """What the store keeps of this end (an attachment's bytes are not kept)."""
        if self.emoji is not None:
            return {"emoji": self.emoji}
        if self.attachment is not None:
            return {"attachment": self.label}
        return {"theme_index": self.theme, "cell": self.cell,
                "lineage": render.encode_lineage(self.lineage, base=10) if self.lineage else None}

    async def fetch(self) -> None:
        if self.attachment is not None:
            try:
                self.data = await self.attachment.read()
            except (discord.HTTPException, OSError) as e:  # deleted, expired, or Discord's CDN failed
                log.info("could not download attachment %r: %s", self.label[:100], e)
                raise UserError("attachment_gone", name=self.label) from None

    def image(self, engine, morpher):  # worker thread
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
        from genmodels.engine import lineage_latents

        gen = engine.model("image")
        z = lineage_latents(gen.latents, self.lineage)
        return gen.render(z[self.cell:self.cell + 1], [self.theme])[0]


async def post_morph(interaction: discord.Interaction, a: Source, b: Source, frames: int) -> None:
    bot = bot_of(interaction)
    engine = bot.engine
    cell_px = bot.settings.limits.cell_px
    with await begin(interaction) as slot:
        await a.fetch()
        await b.fetch()

        def work(morpher):
            ims = [a.image(engine, morpher), b.image(engine, morpher)]
            seq, z = morpher.morph_with_latents(ims[0], ims[1], frames=frames)
            return render.morph_gif(seq, cell_px), render.strip_png(seq, max(64, cell_px // 2)), morpher.version, z

        job = slot.call("morph", work)
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
    with await begin(interaction) as slot:
        job = slot.call(f"poem-{lang}", lambda m: (m.morph(a, b, steps=steps), m.version))
    try:
        lines, version = await wait(interaction, job)
    except ValueError as e:
        raise UserError("bad_text", detail=str(e)) from e
    loc = interaction.locale
    body = "\n".join(f"`{i + 1:>2}` {line}" for i, line in enumerate(lines))
    embed = discord.Embed(title=t(loc, "morph_poem_title"), description=body[:4000], colour=discord.Colour.teal())
    embed.add_field(name=t(loc, "f_steps"), value=str(steps))
    embed.add_field(name=t(loc, "f_model"), value=version)
    embed.set_footer(text=render.footer(kind="morph-poem", lang=lang, steps=steps, model=version,
                                        by=requester(interaction), **{"from": a, "to": b}))
    msg = await finish(interaction, embed=embed, files=[])
    await record(interaction, msg, kind="morph-poem", model=f"textvae-{lang}", version=version,
                 params={"lang": lang, "from": a, "to": b, "steps": steps}, content="\n".join(lines))


def guess_lang(*texts: str) -> str:
    return "zh" if any("\u4e00" <= c <= "\u9fff" for s in texts for c in s) else "en"
