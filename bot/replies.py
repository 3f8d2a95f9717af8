"""The skeleton every result follows, and what buttons and forms share.

Order matters (Discord manners):
1. Validate cheap things (`bot.checks`) and reserve a place in the engine's queue (`begin`). Both are instant; a
   failure here is answered directly with an ephemeral message, because nothing has been sent yet.
2. ``defer()`` at once (callback type 5), well inside Discord's 3 s, before any slow work starts. A 429 is
   retried while the 3 s allow (`acknowledge`); after that the interaction is lost, logged once, and its slot freed.
3. Submit the job; if others are ahead, show the place in the queue (`wait`).
4. Encode files off the event loop and edit the deferred message into the result (`finish`). A job that
   outlived the 15-minute interaction token is posted as a normal channel message instead; one whose deferred
   message was deleted meanwhile, as a followup.
5. Store the posted result, with its message id (`bot.recording.record`): after the reply, so the member never
   waits for it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import logging
from typing import TYPE_CHECKING, Any

import discord

from genmodels.engine import Job, Slot

from .errors import Unanswerable, UserError, report
from .i18n import t

if TYPE_CHECKING:
    from .app import MuseBot

log = logging.getLogger("muse.replies")


TOKEN_LIFETIME = dt.timedelta(minutes=14)  # Discord's is 15; keep a margin
CUSTOM_ID_MAX = 100  # Discord's limit for a component's or a form's custom_id


def bot_of(interaction: discord.Interaction) -> "MuseBot":
    return interaction.client  # type: ignore[return-value]


ACK_WINDOW = 3.0  # seconds Discord gives an interaction to be acknowledged, from its creation
ACK_MARGIN = 0.5  # what a retried acknowledgement needs to reach Discord within that window
ACK_GRACE = 2.0  # one still pending the window plus this long after it was sent is too late, whatever the clocks say
ACK_TRIES = 5  # acknowledgements sent at most, however short the waits a 429 asks for
RETRY_MIN = 0.1  # the shortest wait between two tries
RETRY_DEFAULT = 1.0  # the wait after a 429 that names none (a Cloudflare page without Retry-After)
FINISH_TRIES = 3  # attempts at posting a result that Discord answers 429
RETRY_MAX = 10.0  # the longest wait between them

UNKNOWN_INTERACTION = 10062  # acknowledged too late, or twice
UNKNOWN_MESSAGE = 10008  # the deferred "is thinking…" message was deleted
TOKEN_GONE = (10015, 50027)  # Unknown Webhook, Invalid Webhook Token: the interaction token has expired


def retry_after(error: discord.HTTPException, default: float = RETRY_DEFAULT) -> float:
    """The seconds a 429 asks to wait, from its headers: discord.py keeps no JSON body of an error, and a 429
    from Discord's edge (Cloudflare, no ``Via`` header) may be an HTML page."""
    headers = getattr(error.response, "headers", None) or {}
    for name in ("Retry-After", "X-RateLimit-Reset-After"):
        try:
            value = float(headers.get(name, ""))
        except ValueError:
            continue
        if value >= 0:
            return value
    return default


async def begin(interaction: discord.Interaction) -> Slot:
    """Reserve a queue place (or raise EngineBusy, answered ephemerally), then defer publicly (`acknowledge`)."""
    slot = bot_of(interaction).engine.reserve(interaction.user.id)
    try:
        await acknowledge(interaction)
    except BaseException:
        slot.release()
        raise
    interaction.extras["public_defer"] = True
    return slot


async def acknowledge(interaction: discord.Interaction) -> None:
    """Defer publicly ("Muse is thinking…"), retrying a 429 while Discord's 3 s allow it.

    discord.py retries a 429 itself only when it carries Discord's ``Via`` header, after its JSON ``retry_after``;
    a 429 from the edge (Cloudflare) is raised at once. That one is retried here after its ``Retry-After`` if the
    retry can still arrive within the window. When it cannot, or the callback is refused as too late (10062), or
    discord.py's own retries outlast the window, the interaction can no longer be answered at all: that is logged
    once and raised as `Unanswerable`, which `report` does not try to answer (the caller releases its slot).
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    tries = 0
    while True:
        tries += 1
        try:
            left = ACK_WINDOW + ACK_GRACE - (loop.time() - started)
            await asyncio.wait_for(interaction.response.defer(thinking=True), timeout=max(left, 0.1))
            return
        except asyncio.TimeoutError:
            reason = f"the acknowledgement was still pending after {loop.time() - started:.1f} s"
        except discord.HTTPException as e:
            if e.code == UNKNOWN_INTERACTION:
                reason = "Discord answered Unknown interaction (10062): it came too late"
            elif e.status == 429:
                wait = max(retry_after(e), RETRY_MIN)
                age = max((discord.utils.utcnow() - interaction.created_at).total_seconds(), loop.time() - started)
                if tries < ACK_TRIES and age + wait + ACK_MARGIN <= ACK_WINDOW:
                    log.info("Discord answered 429 to acknowledging interaction %s; retrying in %.2f s",
                             interaction.id, wait)
                    await asyncio.sleep(wait)
                    continue
                reason = (f"Discord answered 429 {tries} time(s) and asked to wait {wait:.1f} s, past the "
                          f"{ACK_WINDOW:.0f} s Discord allows")
            else:
                raise
        log.warning("interaction %s (%s, user %s) could not be acknowledged and went unanswered: %s",
                    interaction.id, _what(interaction), interaction.user.id, reason)
        raise Unanswerable(reason)


def _what(interaction: discord.Interaction) -> str:
    if interaction.command is not None:
        return "/" + interaction.command.qualified_name
    return str((interaction.data or {}).get("custom_id", interaction.type.name))[:100]


async def wait(interaction: discord.Interaction, job: Job) -> Any:
    """The job's output, showing the place in the queue meanwhile. A ValueError from the model is input it
    cannot use (a theme it does not know, text its tokenizer cannot read): the member's to fix."""
    if job.ahead > 0:
        try:
            await interaction.edit_original_response(content=t(interaction.locale, "queued", ahead=job.ahead))
        except discord.HTTPException:
            log.debug("could not show the queue position", exc_info=True)
    try:
        return await job.future
    except ValueError as e:
        raise UserError("bad_text", detail=str(e)) from e


async def finish(interaction: discord.Interaction, *, embed: discord.Embed, files: list[discord.File],
                 view: discord.ui.View | None = None) -> discord.Message:
    """Post the result; returns the message it became (its id ties votes to the stored result).

    The result edits the deferred message. If that message was deleted meanwhile (10008), it is posted as a
    followup instead; if the token has expired, as a channel message that mentions the requester. A 429 is
    retried; one that persists, or another failure from Discord, is said plainly (`UserError` "discord_refused").
    Each attempt sends fresh copies of ``files`` (discord.py leaves a sent file's buffer at its end).
    """
    blobs = [_read(f) for f in files]
    view_ = view or discord.utils.MISSING

    def copies() -> list[discord.File]:
        return [discord.File(io.BytesIO(data), f.filename, spoiler=f.spoiler, description=f.description)
                for f, data in zip(files, blobs)]

    async def to_channel() -> discord.Message:
        if interaction.channel is None:
            raise UserError("discord_refused", detail="the interaction expired")
        return await _retrying(interaction, lambda: interaction.channel.send(  # type: ignore[union-attr]
            content=interaction.user.mention, embed=embed, files=copies(), view=view_))

    if discord.utils.utcnow() - interaction.created_at > TOKEN_LIFETIME and interaction.channel is not None:
        # The interaction token is about to expire: post as a normal message that mentions the requester.
        return await to_channel()
    try:
        return await _retrying(interaction, lambda: interaction.edit_original_response(
            content=None, embed=embed, attachments=copies(), view=view_))
    except discord.HTTPException as e:
        if e.code in TOKEN_GONE:
            log.info("interaction %s can no longer be answered (past its 15 minutes); posting its result in the "
                     "channel", interaction.id)
            return await to_channel()
        if e.code != UNKNOWN_MESSAGE:
            raise
    log.info("the deferred message of interaction %s was deleted; posting its result as a followup", interaction.id)
    try:
        return await _retrying(interaction, lambda: interaction.followup.send(
            embed=embed, files=copies(), view=view_, wait=True))
    except discord.HTTPException as e:
        if e.code not in TOKEN_GONE:
            raise
    log.info("interaction %s can no longer be answered (past its 15 minutes); posting its result in the channel",
             interaction.id)
    return await to_channel()


def _read(file: discord.File) -> bytes:
    file.reset()
    data = file.fp.read()
    file.reset()
    return data


async def _retrying(interaction: discord.Interaction, send) -> Any:
    """``await send()``, again after a 429 (discord.py raises those from Discord's edge at once), up to
    `FINISH_TRIES` times; a 429 or a server error that persists is said plainly to the member."""
    for attempt in range(1, FINISH_TRIES + 1):
        try:
            return await send()
        except discord.HTTPException as e:
            if e.status == 429 and attempt < FINISH_TRIES:
                wait = min(max(retry_after(e), RETRY_MIN), RETRY_MAX)
                log.info("Discord answered 429 to the result of interaction %s; retrying in %.2f s",
                         interaction.id, wait)
                await asyncio.sleep(wait)
                continue
            if e.status == 429 or e.status >= 500:
                log.warning("Discord refused the result of interaction %s (%s, user %s): HTTP %s %s",
                            interaction.id, _what(interaction), interaction.user.id, e.status, e.text[:200])
                raise UserError("discord_refused", detail=f"HTTP {e.status}") from e
            raise
    raise AssertionError("unreachable")


def requester(interaction: discord.Interaction) -> str:
    return str(interaction.user.id)


def model_key(interaction: discord.Interaction, kind: str, lang: str | None = None) -> str:
    """The model key that serves this interaction: its server's own version of the model of ``kind`` (and
    ``lang``), or the base in a DM or a server without one (`genmodels.lineage.Lineages.key_for`)."""
    return bot_of(interaction).engine.lineages.key_for(kind, lang, interaction.guild_id)


def parent_of(interaction: discord.Interaction) -> int | None:
    """The message a button was pressed on (a parent result), if any."""
    return interaction.message.id if interaction.message is not None else None


class SafeItem:
    """A button's errors do not reach the command tree's handler; route them to the same ephemeral report.
    Mix in before ``discord.ui.DynamicItem`` and implement ``run``."""

    async def callback(self, interaction: discord.Interaction) -> None:  # type: ignore[override]
        try:
            await self.run(interaction)
        except Exception as e:  # noqa: BLE001 - every error becomes a message
            await report(interaction, e)

    async def run(self, interaction: discord.Interaction) -> None:
        raise NotImplementedError


def modal_values(interaction: discord.Interaction) -> dict[str, str]:
    """The text inputs of a modal submit, by custom_id (in action rows, or in labels: component type 18)."""
    out: dict[str, str] = {}
    for row in (interaction.data or {}).get("components", []):
        inner = row.get("components") or ([row["component"]] if "component" in row else [])
        for comp in inner:
            if "custom_id" in comp:
                out[comp["custom_id"]] = str(comp.get("value") or "")
    return out
