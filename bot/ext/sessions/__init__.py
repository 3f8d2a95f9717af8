"""Group creative sessions: a channel votes on numbered candidates round by round, and Muse breeds the winners in
latent space (docs/BOT.md, "Group sessions").

- `cog`: ``/session start|status|stop|seed``;
- `views`: the vote buttons (``muse:sv:…``, dynamic items that survive restarts);
- `runner`: the rounds' timers, closing, breeding, posting, pausing and the end (state in the store);
- `present`: what the rounds and the final message say and show.

Breeding is the library's (`genmodels.breeding`), and everything a session is lives in the store
(`genmodels.feedback.store`, migration 3), so a restart resumes every session where it was.
"""

from __future__ import annotations

from .cog import Sessions
from .runner import SessionRunner
from .views import BUTTONS


async def setup(bot) -> None:
    await bot.add_cog(Sessions(bot))
    bot.add_dynamic_items(*BUTTONS)


def runner_of(bot) -> SessionRunner | None:
    """The session runner of a bot that loaded this extension (tests and the benchmark wait on it), else None."""
    cog = bot.get_cog(Sessions.__cog_name__)
    return cog.runner if cog is not None else None
