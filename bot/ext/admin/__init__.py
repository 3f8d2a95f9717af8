"""Admin: ``/muse``, the models and their feedback (administrators), and each member's own stats.

- `cog`: the ``/muse`` command group.
"""

from __future__ import annotations

from .cog import ForgetServer, Muse


async def setup(bot) -> None:
    await bot.add_cog(Muse(bot))
    bot.add_dynamic_items(ForgetServer)
