"""Details: the "Muse: details" context menu, the provenance of a result read back from the message itself.

- `cog`: the context menu.
"""

from __future__ import annotations

from .cog import details


async def setup(bot) -> None:
    bot.tree.add_command(details)
