"""``/session``: start a group session, see where it stands, stop it, bring a result into it.

    /session start kind:<image|poem> theme:<...> rounds:<2-12> round_seconds:<30-900> candidates:<4-9> [lang] [seed]
    /session status              where the session in this channel (or thread) stands; tallies stay hidden
    /session stop                its starter or a server admin ends it now; the winner is posted
    /session seed result:<link>  bring one of your Muse results into the next round (Picbreeder's branching)

Thin, like every command: validate (`bot.checks`), then hand over to the runner (`.runner`), which owns the rounds.
"""

from __future__ import annotations

import logging
import random
import re
import time
from typing import TYPE_CHECKING, Optional

import discord
import numpy as np
from discord import app_commands
from discord.app_commands import locale_str as _
from discord.ext import commands

from genmodels import registry
from genmodels.feedback.store import SessionBusy
from genmodels.images import MAX_SEED

from ... import checks
from ...errors import UserError
from ...i18n import lang_of, t
from . import present
from .runner import SessionRunner
from .views import VOTE_EVENT

if TYPE_CHECKING:
    from genmodels.feedback.store import VoteResult

    from ...app import MuseBot

log = logging.getLogger("muse.sessions")

KINDS = ("image", "poem")
THREAD_TYPES = (discord.ChannelType.public_thread, discord.ChannelType.private_thread,
                discord.ChannelType.news_thread)
THREAD_PARENTS = (discord.ChannelType.text, discord.ChannelType.news)
_MESSAGE_ID = re.compile(r"(?:/|^)(\d{15,21})/?$")  # the last snowflake of a message link, or a bare id


def message_id_of(text: str) -> int:
    """The message id in a message link (``…/channels/<guild>/<channel>/<message>``) or a bare id."""
    m = _MESSAGE_ID.search(text.strip().strip("<>"))
    if m is None:
        raise UserError("session_seed_bad", detail="give a message link (right-click the result → Copy Message "
                                                   "Link) or its id")
    return int(m[1])


def _missing_permissions(perms: discord.Permissions, kind: str) -> list[str]:
    need = [("send_messages", "Send Messages"), ("embed_links", "Embed Links")]
    if kind == "image":
        need.append(("attach_files", "Attach Files"))
    return [name for flag, name in need if not getattr(perms, flag)]


class Sessions(commands.Cog):
    """The ``/session`` command group."""

    session = app_commands.Group(name=_("session"),
                                 description=_("A group creative session: the channel votes, Muse breeds the winners"))

    def __init__(self, bot: "MuseBot"):
        self.bot = bot
        self.runner = SessionRunner(bot)

    async def cog_load(self) -> None:
        # Resume what a previous process left running; posting waits for nothing but Discord's REST API.
        self.runner.spawn(self.runner.resume_all(), "muse-sessions-resume")

    async def cog_unload(self) -> None:
        await self.runner.close()

    @commands.Cog.listener(f"on_{VOTE_EVENT}")
    async def on_vote(self, round_id: int, result: "VoteResult") -> None:
        """A vote was stored (`views.VOTE_EVENT`): the runner may resume the session or close the round."""
        self.runner.after_vote(result.session_id, round_id, result)

    def _guild_store(self, interaction: discord.Interaction):
        if interaction.guild_id is None:
            raise UserError("session_dm")
        return checks.need_store(interaction)

    # ---- /session start -------------------------------------------------------------------------------------

    @session.command(name=_("start"), description=_("Start a group session in this channel"))
    @app_commands.describe(kind=_("What to breed: images or poems"),
                           theme=_("Images: the theme; poems: a few words to write about (optional)"),
                           rounds=_("How many rounds (2-12)"), round_seconds=_("Seconds per round (30-900)"),
                           candidates=_("Candidates per round (4-9)"), lang=_("Poems: English or Chinese"),
                           seed=_("The same seed draws the same images (0-4294967295); empty = random"))
    @app_commands.rename(kind=_("kind"), theme=_("theme"), rounds=_("rounds"), round_seconds=_("round_seconds"),
                         candidates=_("candidates"), lang=_("lang"), seed=_("seed"))
    @app_commands.choices(kind=[app_commands.Choice(name=_("Images"), value="image"),
                                app_commands.Choice(name=_("Poems"), value="poem")],
                          lang=[app_commands.Choice(name=_("English"), value="en"),
                                app_commands.Choice(name=_("Chinese"), value="zh")])
    @app_commands.autocomplete(theme=checks.theme_autocomplete)
    async def start(self, interaction: discord.Interaction, kind: str = "image", theme: Optional[str] = None,
                    rounds: app_commands.Range[int, 2, 12] = 6,
                    round_seconds: app_commands.Range[int, 30, 900] = 120,
                    candidates: app_commands.Range[int, 4, 9] = 9, lang: Optional[str] = None,
                    seed: Optional[app_commands.Range[int, 0, MAX_SEED]] = None) -> None:
        bot, cfg = self.bot, self.bot.settings.sessions
        if not cfg.enabled:
            raise UserError("session_off")
        store = self._guild_store(interaction)
        checks.check_choice("kind", kind, KINDS)
        checks.check_range("rounds", rounds, 2, 12)
        checks.check_range("round_seconds", round_seconds, 30, 900)
        checks.check_range("candidates", candidates, 4, 9)
        seed = checks.check_seed(seed)
        missing = _missing_permissions(interaction.app_permissions, kind)
        if missing:
            raise UserError("session_perms", perms=", ".join(missing))
        if await store.active_session(interaction.channel_id) is not None:
            raise UserError("session_busy_channel")
        loc = str(interaction.locale.value if isinstance(interaction.locale, discord.Locale) else interaction.locale)
        if kind == "image":
            gen = bot.engine.loaded(registry.model_for("image").name)
            if theme is None:
                themes = gen.themes if gen is not None else ["smileys"]
                theme = random.Random(seed).choice(themes)
            theme = checks.check_text("theme", theme, bot.settings.limits.max_text_chars)
            index = checks.resolve_theme(interaction, theme)
            name = gen.themes[index] if gen is not None and isinstance(index, int) else theme
            model = registry.model_for("image").name
            params = {"theme": name, "theme_index": index, "locale": loc}
        else:
            lang = lang or ("zh" if lang_of(interaction.locale) == "zh" else "en")
            checks.check_lang(lang)
            theme = checks.check_text("theme", theme, bot.settings.limits.max_text_chars, optional=True)
            model = registry.model_for("poem", lang).name
            params = {"theme": theme, "lang": lang, "temperature": 0.9, "locale": loc}
        await interaction.response.defer(thinking=True)
        interaction.extras["public_defer"] = True  # an error from here on replaces "thinking…" privately
        try:
            session_id = await store.create_session(
                guild_id=interaction.guild_id, channel_id=interaction.channel_id, starter_id=interaction.user.id,
                kind=kind, model=model, params=params, rounds=rounds, round_seconds=float(round_seconds),
                candidates=candidates, seed=seed, per_guild_limit=cfg.per_guild)
        except SessionBusy as e:
            raise UserError("session_busy_channel" if e.reason == "channel" else "session_busy_guild",
                            limit=cfg.per_guild) from None
        s = await store.get_session(session_id)
        try:
            await self.runner.first_round(s)
        except BaseException as e:
            await store.end_session(session_id, "failed", "the first round could not be made")
            if isinstance(e, ValueError):  # the model cannot use the member's text (words it does not know)
                raise UserError("bad_text", detail=str(e)) from e
            raise
        where = await self._open_thread(interaction, s)
        await store.set_session_thread(session_id, where)
        text = t(loc, "session_started", by=interaction.user.mention, where=f"<#{where}>", rounds=rounds,
                 seconds=round_seconds, n=candidates)
        if where == interaction.channel_id:
            text += "\n" + t(loc, "session_no_thread") if cfg.threads else ""
        embed = discord.Embed(title=present.what(s), description=text, colour=discord.Colour.blurple())
        embed.set_footer(text=f"/session start kind:{kind} rounds:{rounds} round_seconds:{round_seconds} "
                              f"candidates:{candidates} seed:{seed}")
        try:
            await interaction.edit_original_response(content=None, embed=embed,
                                                     allowed_mentions=discord.AllowedMentions.none())
        except discord.HTTPException as e:
            log.info("could not edit the announcement of session %s: %s", session_id, e)
        self.runner.spawn(self.runner.step(session_id, "start"), f"muse-session-{session_id}-start")

    async def _open_thread(self, interaction: discord.Interaction, s) -> int:
        """The thread the session is played in: a new one from the announcement, the thread the command was used
        in, or (threads off, not allowed, or refused) the channel itself."""
        channel_type = getattr(interaction.channel, "type", None)
        if channel_type in THREAD_TYPES:
            return interaction.channel_id
        perms = interaction.app_permissions
        if not (self.bot.settings.sessions.threads and channel_type in THREAD_PARENTS
                and perms.create_public_threads and perms.send_messages_in_threads):
            return interaction.channel_id
        try:
            announcement = await interaction.original_response()
            name = t(present.locale_of(s), "session_thread_name", what=present.what(s))[:100]
            data = await self.bot.http.start_thread_with_message(
                interaction.channel_id, announcement.id, name=name, auto_archive_duration=1440,
                rate_limit_per_user=None)
            return int(data["id"])
        except discord.HTTPException as e:
            log.info("could not open a thread for session %s (%s %s); using the channel", s.id, e.status, e.text)
            return interaction.channel_id

    # ---- /session status, stop, seed -------------------------------------------------------------------------

    async def _session_here(self, interaction: discord.Interaction):
        store = self._guild_store(interaction)
        s = await store.active_session(interaction.channel_id)
        if s is None:
            raise UserError("session_none")
        return store, s

    @session.command(name=_("status"), description=_("Where the session in this channel stands"))
    async def status(self, interaction: discord.Interaction) -> None:
        store, s = await self._session_here(interaction)
        loc = interaction.locale
        r = await store.round_of(s.id, s.current_round)
        voters = (await store.tally(r.id)).voters if r is not None else 0
        if s.status == "paused":
            ends = (s.paused_at or time.time()) + self.runner.seconds(self.bot.settings.sessions.idle_minutes * 60)
            state = t(loc, "session_state_paused", deadline=present.ts(ends))
        else:
            state = t(loc, "session_state_running", deadline=present.ts(r.deadline) if r is not None else "—")
        link = ""
        if r is not None and r.message_id is not None:
            link = f"https://discord.com/channels/{s.guild_id}/{s.thread_id or s.channel_id}/{r.message_id}"
        embed = discord.Embed(title=t(loc, "session_status_title"), colour=discord.Colour.blurple(),
                              description=t(loc, "session_status_body", what=present.what(s), round=s.current_round,
                                            rounds=s.rounds, state=state, voters=voters, by=f"<@{s.starter_id}>",
                                            link=link))
        await interaction.response.send_message(embed=embed, ephemeral=True)

    @session.command(name=_("stop"), description=_("End the session now (its starter or an admin)"))
    async def stop(self, interaction: discord.Interaction) -> None:
        _store, s = await self._session_here(interaction)
        if interaction.user.id != s.starter_id:
            try:
                await checks.require_admin(interaction)
            except UserError:
                raise UserError("session_stop_denied") from None
        where = f"<#{s.thread_id or s.channel_id}>"
        await interaction.response.send_message(t(interaction.locale, "session_stopping", where=where),
                                                ephemeral=True)
        by = getattr(interaction.user, "display_name", None) or interaction.user.name
        self.runner.spawn(self.runner.step(s.id, "stop", by=by), f"muse-session-{s.id}-stop")

    @session.command(name=_("seed"), description=_("Bring one of your Muse results into the next round"))
    @app_commands.describe(result=_("A link to (or the id of) a Muse result message"),
                           cell=_("Which image of a grid (1-4)"))
    @app_commands.rename(result=_("result"), cell=_("cell"))
    async def seed(self, interaction: discord.Interaction, result: str,
                   cell: app_commands.Range[int, 1, 4] = 1) -> None:
        store, s = await self._session_here(interaction)
        loc = interaction.locale
        if s.current_round >= s.rounds:
            raise UserError("session_seed_last")
        row = await store.get_result(message_id=message_id_of(result))
        if row is None or row.latent is None:
            raise UserError("session_seed_bad", detail="that message is not a Muse result I have stored")
        if row.model != s.model:
            kind = t(loc, f"kind_{s.kind}")
            raise UserError("session_seed_bad", detail=f"this session breeds {kind}s from {s.model}; that result "
                                                       f"came from {row.model}")
        current = await store.round_of(s.id, s.current_round)
        shape = tuple(np.asarray((await store.candidates(current.id))[0].latent).shape)
        if s.kind == "image":
            checks.check_range("cell", cell, 1, len(row.latent))
            latent = np.asarray(row.latent[cell - 1], np.float32)
        else:
            latent = np.asarray(row.latent, np.float32)
        if tuple(latent.shape) != shape:
            raise UserError("session_seed_bad", detail=f"its latent has shape {tuple(latent.shape)}, the session's "
                                                       f"candidates {shape} (a different model version)")
        number = s.current_round + 1
        name = getattr(interaction.user, "display_name", None) or interaction.user.name
        outcome = await store.add_seed(s.id, number, interaction.user.id, latent=latent, name=name[:80],
                                       content=row.content, result_id=row.id,
                                       max_per_round=self.bot.settings.breeding.max_seeds)
        if outcome == "duplicate":
            raise UserError("session_seed_duplicate", round=number)
        if outcome == "full":
            raise UserError("session_seed_full", round=number, n=self.bot.settings.breeding.max_seeds)
        if outcome != "ok":
            raise UserError("session_seed_last")
        await interaction.response.send_message(t(loc, "session_seed_ok", round=number), ephemeral=True)
