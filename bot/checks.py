"""Checks shared by every feature: the validators of option values, and who may do what.

Validators raise `UserError`, which becomes an ephemeral sentence saying what to fix. Option limits are declared
twice on purpose: as ``Range`` on the command (so the Discord client refuses bad values as the member types) and
checked again here (a hand-made or replayed payload, or an outdated client, is not bound by the client).

Who may do what: the ``app_commands`` check `server_admin` (a decorator), and `require_manager` and
`require_models_admin`, which a command awaits once it knows the scope it acts on (a server's own models, or the
shared base).
"""

from __future__ import annotations

import contextlib
import random
from typing import Iterator, Sequence

import discord
from discord import app_commands

from genmodels import registry
from genmodels.data.emoji import THEMES
from genmodels.images import ANY_STYLE, MAX_SEED
from genmodels.latents import Generation
from genmodels.verse import FORMS

from . import render
from .errors import StaleButton, UserError
from .i18n import t
from .replies import bot_of


# ---- option values ------------------------------------------------------------------------------------------


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


def check_choice(name: str, value, choices: Sequence[str]):
    """An option with choices (``lang``, ``kind``): an outdated client or a hand-made payload may send another."""
    if value not in choices:
        raise UserError("choice", name=name, choices=", ".join(choices), value=value)
    return value


# ---- the options' limits ----------------------------------------------------------------------------------
# One check each, used by the slash command's option and by the same value read back from a button's or a form's
# custom_id (wrapped in `from_custom_id`), so a hand-made id is held to exactly what the command allows.

COUNT = (1, 4)  # images in a grid: /image count, 🔁, and every generation of a lineage
TEMPERATURE = (0.2, 1.5)  # /poem temperature; 🔁 and 🌱 carry it ×100
FRAMES = (2, 24)  # /interpolate image frames
STEPS = (2, 10)  # /interpolate poem steps
LANGS = ("en", "zh")  # /poem lang, and the language a poem button carries
SNOWFLAKE_MAX = 2**63 - 1  # a Discord id; anything larger overflows SQLite's INTEGER


def check_count(count) -> int:
    return check_range("count", count, *COUNT)


def check_temperature(temperature) -> float:
    return float(check_range("temperature", temperature, *TEMPERATURE))


def check_frames(frames) -> int:
    return check_range("frames", frames, *FRAMES)


def check_steps(steps) -> int:
    return check_range("steps", steps, *STEPS)


def check_lang(lang) -> str:
    return check_choice("lang", lang, LANGS)


def check_cell(number, count: int) -> int:
    """A cell of a grid of ``count``, numbered from 1 as the member sees it (V1–V4, "which cell")."""
    return check_range("cell", number, 1, count)


def check_lineage(lineage: Sequence[Generation]) -> tuple[Generation, ...]:
    """A lineage read back from a custom_id: 1 to `render.MAX_LINEAGE` generations, each seed and count within
    what /image allows, and each picked cell inside its own grid."""
    if not 1 <= len(lineage) <= render.MAX_LINEAGE:
        raise UserError("too_deep", n=render.MAX_LINEAGE)
    for g in lineage:
        check_seed(g.seed)
        check_count(g.count)
        if g.cell is not None:
            check_cell(g.cell + 1, g.count)
    return tuple(lineage)


def resolve_theme(interaction: discord.Interaction, theme: str | int) -> str | int:
    """A theme (a name or an index) as the loaded image model's index; unchanged when the model is not loaded yet
    (the worker checks it then, the same way)."""
    gen = bot_of(interaction).engine.loaded(registry.model_for("image").name)
    if gen is None:
        return theme
    try:
        return gen.theme_index(theme.strip().lower() if isinstance(theme, str) else theme)
    except ValueError:
        raise UserError("unknown_theme", theme=theme, themes=", ".join(gen.themes)) from None


def resolve_style(interaction: discord.Interaction, style: str | int | None, seed: int | None = None) -> str | int | None:
    """A style (a name, an index, "any" drawn from ``seed``, or None for the default) as the loaded image model's
    index; unchanged when the model is not loaded yet (the worker does both then, the same way)."""
    gen = bot_of(interaction).engine.loaded(registry.model_for("image").name)
    if gen is None or style is None:
        return style
    try:
        return gen.style_index(style, seed)
    except ValueError:
        raise UserError("unknown_style", style=style, styles=", ".join(gen.styles + [ANY_STYLE])) from None


def check_theme_index(interaction: discord.Interaction, theme: int) -> int:
    """A theme index against the loaded image model (if it is not loaded yet, the worker checks it)."""
    resolve_theme(interaction, theme)
    return theme


def check_style_index(interaction: discord.Interaction, style: int) -> int:
    """A style index against the loaded image model (if it is not loaded yet, the worker checks it)."""
    resolve_style(interaction, style)
    return style


async def theme_autocomplete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    """The themes of the loaded image model (or the default ones) that contain what the member typed."""
    gen = bot_of(interaction).engine.loaded(registry.model_for("image").name)
    themes = gen.themes if gen is not None else THEMES
    cur = current.lower().strip()
    return [app_commands.Choice(name=th, value=th) for th in themes if cur in th.lower()][:25]


def check_message_id(message_id: int) -> int:
    if not 0 < message_id <= SNOWFLAKE_MAX:
        raise UserError("range", name="message", lo=1, hi=SNOWFLAKE_MAX, value=message_id)
    return message_id


@contextlib.contextmanager
def from_custom_id() -> Iterator[None]:
    """Around the checks of values read from a button's or a form's custom_id: a value its check refuses (a forged
    or garbled id, or one written by a Muse with other limits) becomes `StaleButton`, the "can't rebuild this"
    answer quoting the check's own sentence, given before anything is posted."""
    try:
        yield
    except StaleButton:
        raise
    except UserError as e:
        raise StaleButton(e) from None


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


def check_form(form: str | None, lang: str) -> str:
    """A verse form of ``lang`` ("free" for None); a form of the other language says which forms ``lang`` has."""
    form = "free" if form is None else str(form).strip().lower()
    if form in FORMS[lang]:
        return form
    names = {"en": "English", "zh": "Chinese"}
    other = next((names[k] for k, fs in FORMS.items() if form in fs and k != lang), None)
    if other is None:
        raise UserError("bad_option", name="form", value=form, kind="a verse form Muse knows")
    raise UserError("form_lang", form=form, other=other, lang=names[lang], forms=", ".join(FORMS[lang]))


# The emoji sets /image draws like (`genmodels.data.emoji_sets.STYLES`) and "any" (one drawn from the seed), with the
# labels the choices show. A model trained before styles draws Noto alone and answers another choice politely.
STYLE_CHOICES = (("noto", "Noto (Google)"), ("twemoji", "Twemoji (Twitter)"), ("emojione", "EmojiOne 2"),
                 ("openmoji", "OpenMoji (outlined)"), ("any", "Any: drawn from the seed"))


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


def muse_result(interaction: discord.Interaction, message: discord.Message) -> dict[str, str]:
    """The provenance fields of ``message`` if it is one of this bot's results (else `UserError`)."""
    me = interaction.client.user
    emb = message.embeds[0] if message.embeds else None
    meta = render.parse_footer(emb.footer.text if emb else None)
    if me is None or message.author.id != me.id or meta is None:
        raise UserError("not_muse")
    return meta


# ---- who may ------------------------------------------------------------------------------------------------


async def require_admin(interaction: discord.Interaction) -> None:
    """Guild administrators (in that guild) and the bot's owner may pass; everyone else gets `UserError`."""
    if interaction.guild_id is not None and interaction.permissions.administrator:
        return
    if await bot_of(interaction).is_owner(interaction.user):
        return
    raise UserError("admin_only")


async def require_models_admin(interaction: discord.Interaction) -> None:
    """The bot's owner, and administrators of ``[discord] home_guild`` (when set), may pass."""
    bot = bot_of(interaction)
    if await bot.is_owner(interaction.user):
        return
    home = bot.settings.discord.home_guild
    if home and interaction.guild_id == home and interaction.permissions.administrator:
        return
    raise UserError("models_owner_only", home=t(interaction.locale, "models_home") if home else "")


async def require_manager(interaction: discord.Interaction) -> None:
    """Members with Manage Server (or Administrator) in the guild the command is used in, and the bot's owner:
    who may steer that server's own models."""
    p = interaction.permissions
    if interaction.guild_id is not None and (p.manage_guild or p.administrator):
        return
    if await bot_of(interaction).is_owner(interaction.user):
        return
    raise UserError("manager_only")


def server_admin():
    """Check: administrators of the guild the command is used in, and the bot's owner."""
    async def predicate(interaction: discord.Interaction) -> bool:
        await require_admin(interaction)
        return True

    return app_commands.check(predicate)


def need_store(interaction: discord.Interaction):
    store = bot_of(interaction).store
    if store is None:
        raise UserError("store_off")
    return store


def need_trainer(interaction: discord.Interaction):
    trainer = bot_of(interaction).trainer
    if trainer is None:
        raise UserError("trainer_off")
    return trainer
