"""The Muse bot object: a `commands.Bot` with explicit intents, the engine, and everything wired in ``setup_hook``.

`create_bot` builds it without connecting (tests, embedding); ``muse run`` (`bot.cli`) connects it.
"""

from __future__ import annotations

import concurrent.futures
import gc
import logging

import discord
from discord import app_commands
from discord.ext import commands

from genmodels.engine import Engine, EngineConfig

from .errors import report
from .i18n import MuseTranslator
from .settings import Settings, load_settings

log = logging.getLogger("muse")

PRELOAD = ("image", "morph", "poem-en", "poem-zh")


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
    def __init__(self, settings: Settings, engine: Engine | None = None, *, preload: tuple[str, ...] = PRELOAD):
        intents = discord.Intents.default()  # guilds + reactions; no privileged intents (no message content)
        super().__init__(command_prefix=commands.when_mentioned, intents=intents, tree_cls=MuseTree,
                         application_id=settings.discord.application_id or None, help_command=None)
        self.settings = settings
        es = settings.engine
        self.engine = engine or Engine(EngineConfig(
            device=es.device, root=es.models_dir or None, max_queue=es.max_queue, per_user=es.per_user,
            max_batch_images=es.max_batch_images, batch_window_ms=es.batch_window_ms, threads=es.threads))
        self._preload = preload
        # PNG/GIF encoding runs here: one thread, so encoders never crowd the event loop out of the CPU
        self.encoder = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="muse-encode")
        self._cooldowns: dict[tuple[str, int], app_commands.Cooldown] = {}

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

    async def setup_hook(self) -> None:
        from . import commands as muse_commands
        from .views import DYNAMIC_ITEMS

        await self.tree.set_translator(MuseTranslator())
        await self.engine.start(preload=self._preload)
        await muse_commands.setup(self)
        for menu in muse_commands.CONTEXT_MENUS:
            self.tree.add_command(menu)
        # Buttons of messages posted by any earlier process keep working: their state is in the custom_id.
        self.add_dynamic_items(*DYNAMIC_ITEMS)
        # Everything loaded so far (torch, the models, discord.py) lives as long as the process. Freezing it keeps
        # the garbage collector's full passes from walking it again: those passes stalled the event loop for
        # 100-200 ms under load (measured with `muse bench serve`).
        gc.freeze()
        guild_id = self.settings.discord.test_guild
        if guild_id:
            guild = discord.Object(guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            log.info("synced %d commands to test guild %s", len(synced), guild_id)

    async def close(self) -> None:
        await super().close()
        await self.engine.close()
        self.encoder.shutdown(wait=False, cancel_futures=True)

    async def on_ready(self) -> None:
        log.info("Muse is online as %s (%s); models: %s", self.user, getattr(self.user, "id", "?"),
                 self.engine.versions())


def create_bot(settings: Settings | None = None, *, engine: Engine | None = None,
               preload: tuple[str, ...] = PRELOAD) -> MuseBot:
    """Build the bot without connecting. No argument: defaults ← config file ← user file ← environment."""
    return MuseBot(settings or load_settings(), engine, preload=preload)
