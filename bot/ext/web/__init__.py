"""Web pages: when ``[web] enabled``, the bot serves each server's gallery on its own event loop (`web.server`).

The pages read the bot's store and draw pictures with its engine; a member sees the servers they share with the
bot (``bot.guilds``). A port that is taken, or no database, is logged and leaves the bot running without pages.
"""

from __future__ import annotations

from .cog import WebPages


async def setup(bot) -> None:
    if bot.settings.web.enabled:
        await bot.add_cog(WebPages(bot))
