"""`WebPages`: the cog that starts the web pages (`web.server.start`) when it loads and stops them when it unloads."""

from __future__ import annotations

import logging

from discord.ext import commands

from web import server

log = logging.getLogger("muse.web")


class WebPages(commands.Cog):
    def __init__(self, bot):
        self.bot = bot
        self.runner = None

    async def cog_load(self) -> None:
        config = self.bot.settings.web
        if self.bot.store is None:
            log.warning("web: no database is open, so the pages are off")
            return
        try:
            self.runner = await server.start(self.bot.store, config, engine=self.bot.engine,
                                             known_guilds=self._guilds)
        except OSError as e:
            log.error("web: cannot listen on %s:%d (%s); serving Discord without the pages", config.host,
                      config.port, e.strerror or e)
        except ValueError as e:  # a malformed $MUSE_WEB_SECRET: the message names the variable, never its value
            log.error("web: %s; serving Discord without the pages", e)

    async def cog_unload(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def _guilds(self) -> set[int]:
        return {g.id for g in self.bot.guilds}
