"""Create: /image and /poem, and the buttons under their results (reroll, variations)."""

from __future__ import annotations

from .cog import Create
from .flows import BUTTONS


async def setup(bot) -> None:
    await bot.add_cog(Create(bot))
    bot.add_dynamic_items(*BUTTONS)
