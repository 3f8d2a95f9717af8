"""The skeleton every result follows, and what buttons and forms share.

Order matters (Discord manners):
1. Validate cheap things (`bot.checks`) and reserve a place in the engine's queue (`begin`). Both are instant; a
   failure here is answered directly with an ephemeral message, because nothing has been sent yet.
2. ``defer()`` at once (callback type 5), well inside Discord's 3 s, before any slow work starts.
3. Submit the job; if others are ahead, show the place in the queue (`wait`).
4. Encode files off the event loop and edit the deferred message into the result (`finish`). A job that
   outlived the 15-minute interaction token is posted as a normal channel message instead.
5. Store the posted result, with its message id (`bot.recording.record`): after the reply, so the member never
   waits for it.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

import discord

from genmodels.engine import Job, Slot

from .errors import UserError, report
from .i18n import t

if TYPE_CHECKING:
    from .app import MuseBot

log = logging.getLogger("muse.replies")


TOKEN_LIFETIME = dt.timedelta(minutes=14)  # Discord's is 15; keep a margin
CUSTOM_ID_MAX = 100  # Discord's limit for a component's or a form's custom_id


def bot_of(interaction: discord.Interaction) -> "MuseBot":
    return interaction.client  # type: ignore[return-value]


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
    """Post the result; returns the message it became (its id ties votes to the stored result)."""
    if discord.utils.utcnow() - interaction.created_at > TOKEN_LIFETIME and interaction.channel is not None:
        # The interaction token is about to expire: post as a normal message that mentions the requester.
        return await interaction.channel.send(content=interaction.user.mention, embed=embed, files=files,
                                              view=view or discord.utils.MISSING)  # type: ignore[union-attr]
    return await interaction.edit_original_response(content=None, embed=embed, attachments=files,
                                                    view=view or discord.utils.MISSING)


def requester(interaction: discord.Interaction) -> str:
    return str(interaction.user.id)


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
