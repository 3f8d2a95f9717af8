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

from genmodels import registry
from genmodels.checkpoints import CheckpointError
from genmodels.engine import EngineBusy, ModelUnavailable

from .i18n import t

log = logging.getLogger("muse.errors")


MESSAGE_MAX = 2000  # Discord refuses longer message content (and the member would see "did not respond")
ECHO_MAX = 100  # what a message quotes back of the member's own input


def clip(value, limit: int = ECHO_MAX):
    """``value`` cut to ``limit`` characters (with an ellipsis), so that quoting input never overflows a message."""
    if isinstance(value, str) and len(value) > limit:
        return value[: limit - 1] + "…"
    return value


class UserError(app_commands.AppCommandError):
    """Bad input; ``key`` and ``kw`` pick the localised message in `bot.i18n.MESSAGES`."""

    def __init__(self, key: str, **kw):
        self.key, self.kw = key, kw
        super().__init__(key)

    def message(self, locale) -> str:
        return t(locale, self.key, **{k: clip(v) for k, v in self.kw.items()})


class StaleButton(UserError):
    """A value in a button's or a form's custom_id that its option's check refuses (`bot.checks.from_custom_id`):
    said as "I can't rebuild this result any more", followed by the check's own sentence."""

    def __init__(self, inner: UserError):
        super().__init__("stale", detail=inner.key)
        self.inner = inner

    def message(self, locale) -> str:
        return t(locale, "stale", detail=self.inner.message(locale))


class Unanswerable(Exception):
    """Discord would not take the interaction's acknowledgement within its 3 s (`bot.replies.begin`), so nothing
    can answer it any more. Logged once where it happens; `report` sends nothing for it."""


def message_for(interaction: discord.Interaction, error: BaseException) -> str:
    """The sentence to show for ``error`` (logging unexpected errors with an id)."""
    loc = interaction.locale
    if isinstance(error, app_commands.CommandInvokeError):
        error = error.original
    if isinstance(error, app_commands.TransformerError) and isinstance(error.__cause__, UserError):
        error = error.__cause__
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
    # What only an outdated Discord client (or a hand-made payload) sends: the member can fix it by reloading.
    if isinstance(error, app_commands.TransformerError):
        log.info("an option of the wrong type: %s", error)
        return t(loc, "bad_option", name=_option_with(interaction, error.value), value=clip(str(error.value)),
                 kind=_KINDS.get(error.type.name, error.type.name))
    if isinstance(error, app_commands.CommandSignatureMismatch):
        missing = _missing_options(interaction, error.command)
        log.info("a command that does not match its definition: %s (missing %s)", error.command.qualified_name,
                 missing or "nothing")
        return t(loc, "stale_command", detail=f" (`{clip(', '.join(missing))}` missing)" if missing else "")
    if isinstance(error, app_commands.CommandNotFound):
        name = " ".join([*error.parents, error.name])
        log.info("an interaction for a command Muse no longer has: %r", name[:100])
        return t(loc, "gone_command", name=clip(name))
    cmd = interaction.command.qualified_name if interaction.command else (interaction.data or {}).get("custom_id")
    error_id = log_error(error, f"{cmd} (user {interaction.user.id})")
    return t(loc, "unexpected", id=error_id)


_KINDS = {"integer": "a whole number", "number": "a number", "string": "text", "boolean": "true or false",
          "attachment": "a file", "user": "a member", "channel": "a channel", "role": "a role"}


def _leaf_options(interaction: discord.Interaction) -> list[dict]:
    options = (interaction.data or {}).get("options") or []
    while options and options[0].get("type") in (1, 2):  # descend into the subcommand
        options = options[0].get("options") or []
    return options


def _option_with(interaction: discord.Interaction, value) -> str:
    """The name of the option that carried ``value`` (a TransformerError knows the value, not the option)."""
    return next((o["name"] for o in _leaf_options(interaction) if o.get("value") == value), "option")


def _missing_options(interaction: discord.Interaction, command) -> list[str]:
    params = getattr(command, "parameters", None) or []
    given = {o.get("name") for o in _leaf_options(interaction)}
    return [p.display_name for p in params if p.required and p.display_name not in given]


def log_error(error: BaseException, where: str, *, level: int = logging.ERROR) -> str:
    """Log ``error`` with its traceback under a fresh short id, and return the id (to show, or to grep for).

    Also for failures no user is waiting on (storing a result, a reaction): they are logged, never raised.
    """
    error_id = secrets.token_hex(4)
    log.log(level, "unexpected error %s in %s", error_id, where, exc_info=(type(error), error, error.__traceback__))
    return error_id


def _model_name(text: str) -> str:
    """The registry name of the model an error message is about (its names first, then the older aliases)."""
    spelled = [(m.name, m.name) for m in registry.MODELS] + [(a, m.name) for m in registry.MODELS for a in m.aliases]
    for word, name in spelled:
        if f"'{word}'" in text or f" {word} " in text:
            return name
    return "generation"


async def report(interaction: discord.Interaction, error: BaseException) -> None:
    """Tell the user, ephemerally, whatever state the interaction is in."""
    if isinstance(error, app_commands.CommandInvokeError):
        error = error.original
    if isinstance(error, Unanswerable):
        return  # already logged; the interaction expired unacknowledged, so nothing can reach the member
    text = clip(message_for(interaction, error), MESSAGE_MAX)
    try:
        if interaction.type is discord.InteractionType.autocomplete:
            if not interaction.response.is_done():  # suggestions are the only answer an autocomplete can get
                await interaction.response.autocomplete([])
            return
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
