"""The Muse bot object: a `commands.Bot` with explicit intents, the engine, and everything wired in ``setup_hook``.

`create_bot` builds it without connecting (tests, embedding); ``muse run`` (`bot.cli`) connects it.

Besides the engine it holds the feedback store (``bot.store``: every posted result, the votes on it) and the
trainer (``bot.trainer``: fine-tunes a model from those votes). Both are opened in ``setup_hook`` and closed in
``close``; either may be None (the store could not be opened, the trainer is off), and every feature that uses
them says so politely instead of failing.
"""

from __future__ import annotations

import concurrent.futures
import gc
import logging
import re
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import discord
from discord import app_commands
from discord.ext import commands

from genmodels import registry
from genmodels.engine import Engine

from .errors import UserError, log_error, report
from .i18n import MuseTranslator
from .logs import protect_library_loggers
from .recording import PendingWrites
from .settings import Settings, load_settings

ModalHandler = Callable[[discord.Interaction, "re.Match[str]"], Awaitable[None]]

if TYPE_CHECKING:
    from genmodels.feedback.store import FeedbackStore

log = logging.getLogger("muse")

GC_YOUNG_THRESHOLD = 50_000  # allocations between young garbage collections once the bot is up (default 700)

PRELOAD = registry.NAMES  # every served model is loaded and warmed at start-up

# One extension per feature, loaded in this order by `MuseBot.setup_hook`. Each one's ``setup(bot)`` adds its own
# cog, buttons (dynamic items), forms (modal routes), context menus and listeners. A new feature is a new package
# under bot/ext/ and one line here.
INITIAL_EXTENSIONS = (
    "bot.ext.create",  # /image, /poem, their reroll and variation buttons
    "bot.ext.interpolate",  # /interpolate image|poem, the 🌀 button, the morph form, "Muse: morph from here"
    "bot.ext.details",  # "Muse: details": provenance
    "bot.ext.feedback",  # reactions become votes
    "bot.ext.admin",  # /muse: models (owner, home guild), feedback export, stats
    "bot.ext.sessions",  # /session: group creative sessions, their vote buttons and round timers
    "bot.ext.web",  # the web pages, when [web] enabled: every server's gallery and results
)


class GuildSyncError(RuntimeError):
    """Discord refused to register the commands in a guild; the message is one paragraph saying what to fix."""


def guild_sync_error(guild_id: int, error: discord.HTTPException, setting: str) -> GuildSyncError:
    """Explain a refused guild sync: the bot is not in the guild, or the id names no guild."""
    said = f'Discord answered "{error.status} {error.text or error.response.reason}"'
    if error.status == 404 or error.code == 10004:
        why = (f"Discord knows no server with the id {guild_id}. Check the id: in Discord, turn on Developer Mode "
               "(User Settings → Advanced), right-click the server's icon and choose \"Copy Server ID\".")
    elif error.status == 403:
        why = (f"the bot is not in that server ({guild_id}), or was invited without the `applications.commands` "
               "scope. Invite it with the `bot` and `applications.commands` scopes (docs/BOT.md), or check the "
               "id: right-click the server's icon in Discord (Developer Mode on) and choose \"Copy Server ID\".")
    else:
        why = "Discord had a problem; try again in a minute."
    return GuildSyncError(f"muse: I could not register the slash commands in server {guild_id} ({setting}): {said}. "
                          f"Most likely {why} Then start Muse again.")


class MuseTree(app_commands.CommandTree):
    """The command tree with Muse's two global rules: the DM policy, and friendly errors."""

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        bot: MuseBot = interaction.client  # type: ignore[assignment]
        if interaction.guild_id is None and not bot.settings.discord.allow_dms:
            raise app_commands.NoPrivateMessage()
        cmd = interaction.command
        if isinstance(cmd, app_commands.Command):  # slash commands; the context menus only read a message
            bot.check_cooldown(cmd.qualified_name, interaction.user.id)
        return True

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError, /) -> None:
        await report(interaction, error)


class MuseBot(commands.Bot):
    def __init__(self, settings: Settings, engine: Engine | None = None, *, preload: tuple[str, ...] = PRELOAD,
                 store: "FeedbackStore | None" = None, trainer: Any = None, feedback: bool = True):
        # Intents.default(): guilds, and guild_reactions + dm_reactions for the votes. No privileged intent:
        # Muse never reads message content, members or presences.
        intents = discord.Intents.default()
        super().__init__(command_prefix=commands.when_mentioned, intents=intents, tree_cls=MuseTree,
                         application_id=settings.discord.application_id or None, help_command=None)
        self.settings = settings
        protect_library_loggers()  # no interaction token in discord.py's DEBUG lines, whoever handles them
        self.engine = engine or Engine(settings.engine)  # [engine] is the engine's own config
        self._preload = preload
        # PNG/GIF encoding runs here: one thread, so encoders never crowd the event loop out of the CPU
        self.encoder = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="muse-encode")
        self._cooldowns: dict[tuple[str, int], app_commands.Cooldown] = {}
        # Injected store / trainer belong to the caller (neither opened nor closed here); otherwise setup_hook
        # builds them from the settings, unless ``feedback`` is False (`muse sync` needs neither).
        self.store = store
        self.trainer = trainer
        self._feedback = feedback
        self._own_store = self._own_trainer = False
        # results (and votes) the database could not take yet: kept and retried, never dropped silently
        self.pending_writes = PendingWrites(settings.database.retry_seconds,
                                            report=lambda text: self.report_to_admins(text),
                                            database=settings.database.path)
        # what the extensions registered: the templates of their buttons, and their forms by custom_id pattern
        self.button_templates: list[re.Pattern[str]] = []
        self.modal_routes: list[tuple[re.Pattern[str], ModalHandler]] = []

    def check_cooldown(self, command: str, user_id: int) -> None:
        """Per user and command: at most ``limits.cooldown_rate`` uses per ``limits.cooldown_per_s`` seconds."""
        lim = self.settings.limits
        if lim.cooldown_per_s <= 0:
            return
        key = (command, user_id)
        bucket = self._cooldowns.get(key)
        if bucket is None:
            if len(self._cooldowns) > 10_000:  # forget idle buckets now and then
                self._cooldowns = {k: b for k, b in self._cooldowns.items() if b.get_tokens() < b.rate}
            bucket = self._cooldowns[key] = app_commands.Cooldown(lim.cooldown_rate, lim.cooldown_per_s)
        retry_after = bucket.update_rate_limit()
        if retry_after:
            raise app_commands.CommandOnCooldown(bucket, retry_after)

    def add_dynamic_items(self, *items) -> None:
        """Register buttons whose state is in their custom_id (they keep working on messages of any earlier
        process), remembering their templates so that `on_interaction` can tell a stale button from a live one."""
        super().add_dynamic_items(*items)
        self.button_templates.extend(item.__discord_ui_compiled_template__ for item in items)

    def add_modal_route(self, template: re.Pattern[str], handler: ModalHandler) -> None:
        """Send every submitted form whose custom_id matches ``template`` to ``handler(interaction, match)``.
        Forms are routed by their custom_id, never held in memory, so they survive restarts like buttons."""
        self.modal_routes.append((template, handler))

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """Route forms; answer what discord.py would drop silently: a form or a button whose custom_id matches
        nothing registered (an older Muse's, or garbled). Slash commands Muse no longer has are answered by the
        tree's error handler (`bot.errors`)."""
        custom_id = str((interaction.data or {}).get("custom_id", ""))
        if interaction.type is discord.InteractionType.modal_submit:
            for template, handler in self.modal_routes:
                match = template.fullmatch(custom_id)
                if match is not None:
                    await handler(interaction, match)
                    return
            log.info("a form with an unknown custom_id %r was submitted", custom_id[:100])
            await report(interaction, UserError("old_form"))
        elif interaction.type is discord.InteractionType.component and not any(
                template.fullmatch(custom_id) for template in self.button_templates):
            log.info("a button with an unknown custom_id %r was pressed", custom_id[:100])
            await report(interaction, UserError("old_button"))

    async def setup_hook(self) -> None:
        await self.tree.set_translator(MuseTranslator())
        await self.engine.start(preload=self._preload)
        if self._feedback:
            await self._open_feedback()
        for extension in INITIAL_EXTENSIONS:
            await self.load_extension(extension)
        # Everything loaded so far (torch, the models, discord.py) lives as long as the process. Freezing it keeps
        # the garbage collector's full passes from walking it again: those passes stalled the event loop for
        # 100-200 ms under load (measured with `muse bench serve`).
        gc.freeze()
        # Young collections every 700 allocations (CPython's default) ran hundreds of times a second under a
        # burst of interactions, each one walking every young discord.py object: raising the first threshold
        # makes them rare and the pauses shorter in all (measured with `muse bench session --voters 1000`).
        gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 100)
        guild_id = self.settings.discord.test_guild
        if guild_id:
            guild = discord.Object(guild_id)
            self.tree.copy_global_to(guild=guild)
            try:
                synced = await self.tree.sync(guild=guild)
            except (discord.Forbidden, discord.NotFound) as e:  # a configuration mistake: say what to fix, stop
                raise guild_sync_error(guild_id, e, "[discord] test_guild, $MUSE_DISCORD_TEST_GUILD") from None
            except discord.HTTPException as e:  # Discord's own trouble: the commands synced before still work
                log.warning("could not sync the commands to test guild %s (%s %s); serving anyway, they may be "
                            "out of date until the next start", guild_id, e.status, e.text)
            else:
                log.info("synced %d commands to test guild %s", len(synced), guild_id)

    async def _open_feedback(self) -> None:
        """The store, then the trainer. A failure is logged and leaves that part off: generating must still work."""
        if self.store is None:
            from genmodels.feedback.store import FeedbackStore, StoreCorrupt

            try:  # [feedback] is the store's VoteConfig
                self.store = await FeedbackStore.open(self.settings.database.path, self.settings.feedback)
                self._own_store = True
            except StoreCorrupt as e:  # found at open, nothing written to it: one warning saying what to do
                log.warning("%s Until then Muse serves without it: results and votes are not recorded, and "
                            "/muse stats, the feedback export, group sessions and the trainer are off.", e)
                return
            except Exception as e:  # noqa: BLE001 - a broken database must not keep Muse offline
                log_error(e, f"opening the feedback store {self.settings.database.path!r}; "
                             "results and votes will not be recorded")
                return
        if self.trainer is None and self.settings.trainer.enabled:
            from genmodels.feedback.trainer import Trainer

            # [trainer] is the trainer's own config; it writes where the engine reads, on the engine's device
            config = self.settings.trainer.for_engine(self.settings.engine, self.settings.taste)
            try:
                trainer = Trainer(self.store, self.engine, config, report=self.report_to_admins)
                await trainer.start()
            except Exception as e:  # noqa: BLE001
                log_error(e, "starting the trainer; models will not be fine-tuned")
            else:
                self.trainer, self._own_trainer = trainer, True
                return  # it serves the lineages the store records (`Trainer.start`)
        if self.trainer is not None:
            return
        try:  # no trainer: each server is still served its own promoted version
            await self.engine.lineages.refresh(self.store)
        except Exception as e:  # noqa: BLE001
            log_error(e, "reading the servers' model versions; every server is served the base")

    async def report_to_admins(self, text: str) -> None:
        """Post a trainer report to ``[trainer] report_channel``, or DM the application's owner when it is 0.

        Never raises: a report that cannot be delivered is logged.
        """
        text = text[:2000]
        try:
            channel_id = self.settings.trainer.report_channel
            if channel_id:
                channel = self.get_channel(channel_id) or await self.fetch_channel(channel_id)
                await channel.send(text)  # type: ignore[union-attr]
                return
            owner_id = self.owner_id or (min(self.owner_ids) if self.owner_ids else None)
            if owner_id is None:
                app = await self.application_info()
                owner_id = app.team.owner_id if app.team and app.team.owner_id else app.owner.id
            owner = self.get_user(owner_id) or await self.fetch_user(owner_id)
            await owner.send(text)
        except Exception as e:  # noqa: BLE001
            log_error(e, "delivering a trainer report", level=logging.WARNING)

    async def close(self) -> None:
        await super().close()
        if self._own_trainer and self.trainer is not None:
            try:
                await self.trainer.close()
            except Exception as e:  # noqa: BLE001 - closing the rest must go on
                log_error(e, "closing the trainer")
        await self.engine.close()
        await self.pending_writes.close()
        if self._own_store and self.store is not None:
            try:
                await self.store.close()
            except Exception as e:  # noqa: BLE001
                log_error(e, "closing the feedback store")
        self.encoder.shutdown(wait=False, cancel_futures=True)

    async def on_ready(self) -> None:
        log.info("Muse is online as %s (%s); models: %s", self.user, getattr(self.user, "id", "?"),
                 self.engine.versions())


def create_bot(settings: Settings | None = None, *, engine: Engine | None = None,
               preload: tuple[str, ...] = PRELOAD, store: "FeedbackStore | None" = None, trainer: Any = None,
               feedback: bool = True) -> MuseBot:
    """Build the bot without connecting. No argument: defaults ← config file ← user file ← environment.

    ``store`` / ``trainer``: use these instead of opening ``[database] path`` and building ``[trainer]`` (the
    caller keeps them: the bot does not close them). ``feedback=False``: neither (as `muse sync` does).
    """
    return MuseBot(settings or load_settings(), engine, preload=preload, store=store, trainer=trainer,
                   feedback=feedback)
