"""Every failure ends in an ephemeral message that says what to fix: never a traceback, never silence.

`report` is shared by the command tree's ``on_error`` and by the buttons and modals (whose errors do not pass
through the tree). Expected problems (bad input, a full queue, a cooldown) become a localised sentence;
anything else is logged with a short error id, and the user is shown the same id.
"""

from __future__ import annotations

import logging
import secrets

import discord
from discord import app_commands

from genmodels.checkpoints import CheckpointError
from genmodels.engine import EngineBusy, ModelUnavailable

from .i18n import t

log = logging.getLogger("muse.errors")


class UserError(app_commands.AppCommandError):
    """Bad input; ``key`` and ``kw`` pick the localised message in `bot.i18n.MESSAGES`."""

    def __init__(self, key: str, **kw):
        self.key, self.kw = key, kw
        super().__init__(key)

    def message(self, locale) -> str:
        return t(locale, self.key, **self.kw)


def message_for(interaction: discord.Interaction, error: BaseException) -> str:
    """The sentence to show for ``error`` (logging unexpected errors with an id)."""
    loc = interaction.locale
    if isinstance(error, (app_commands.CommandInvokeError, app_commands.TransformerError)) and error.__cause__:
        error = error.__cause__ if not isinstance(error, app_commands.CommandInvokeError) else error.original
    if isinstance(error, UserError):
        return error.message(loc)
    if isinstance(error, EngineBusy):
        return t(loc, "busy_user" if error.reason == "user" else "busy_full", limit=error.limit)
    if isinstance(error, (ModelUnavailable, CheckpointError)):
        log.warning("model unavailable: %s", error)
        return t(loc, "model_missing", model=_model_name(str(error)))
    if isinstance(error, app_commands.CommandOnCooldown):
        return t(loc, "cooldown", s=max(1.0, error.retry_after))
    if isinstance(error, app_commands.NoPrivateMessage):
        return t(loc, "dm")
    if isinstance(error, app_commands.TransformerError):
        return t(loc, "bad_text", detail=str(error))
    cmd = interaction.command.qualified_name if interaction.command else (interaction.data or {}).get("custom_id")
    error_id = log_error(error, f"{cmd} (user {interaction.user.id})")
    return t(loc, "unexpected", id=error_id)


def log_error(error: BaseException, where: str, *, level: int = logging.ERROR) -> str:
    """Log ``error`` with its traceback under a fresh short id, and return the id (to show, or to grep for).

    Also for failures no user is waiting on (storing a result, a reaction): they are logged, never raised.
    """
    error_id = secrets.token_hex(4)
    log.log(level, "unexpected error %s in %s", error_id, where, exc_info=(type(error), error, error.__traceback__))
    return error_id


def _model_name(text: str) -> str:
    for name in ("dcgan", "vae", "textvae-en", "textvae-zh", "image", "morph", "poem-en", "poem-zh"):
        if f"'{name}'" in text or f" {name} " in text:
            return {"image": "dcgan", "morph": "vae", "poem-en": "textvae-en", "poem-zh": "textvae-zh"}.get(name, name)
    return "generation"


async def report(interaction: discord.Interaction, error: BaseException) -> None:
    """Tell the user, ephemerally, whatever state the interaction is in."""
    text = message_for(interaction, error)
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(text, ephemeral=True)
            return
        if interaction.extras.get("public_defer"):
            # The "Muse is thinking…" placeholder is public; remove it so the error can be private.
            try:
                await interaction.delete_original_response()
            except discord.HTTPException:
                pass
        await interaction.followup.send(text, ephemeral=True)
    except discord.HTTPException:
        log.warning("could not deliver an error message to %s", interaction.user.id, exc_info=True)
