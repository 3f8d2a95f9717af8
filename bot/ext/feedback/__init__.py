"""Feedback: reactions on Muse's results become votes in the store (`genmodels.feedback.store`).

- `cog`: `Reactions`, the listener of the raw reaction events.
"""

from __future__ import annotations

from .cog import Reactions


async def setup(bot) -> None:
    await bot.add_cog(Reactions(bot))
