"""Feedback: reactions on Muse's results become votes in the store (`genmodels.feedback.store`).

`Reactions` listens to the *raw* reaction events, which arrive for every message, cached or not (old messages
after a restart), and hands them to the store; when a member's vote changed it tells the trainer
(``bot.trainer.notify(model, guild_id)``, for that server's lineage), which decides whether that is reason enough
to fine-tune. The rules (which emoji vote, one vote per member, replays, caps) live in the store; this extension
only parses Discord's events. A vote
the database cannot take now waits in ``bot.pending_writes`` (`bot.recording.PendingWrites`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from ...errors import log_error
from ...recording import PendingWrite

if TYPE_CHECKING:
    from ...app import MuseBot

log = logging.getLogger("muse.feedback")


def emoji_text(emoji: discord.PartialEmoji) -> str:
    """How the settings name an emoji: the character itself, or ``<:name:id>`` for a custom one."""
    return (emoji.name or "") if emoji.is_unicode_emoji() else str(emoji)


class Reactions(commands.Cog):
    """Reactions on Muse's results become votes in the store. Raw events: no message cache needed."""

    def __init__(self, bot: "MuseBot"):
        self.bot = bot

    def _ignored(self, user_id: int, member: discord.Member | None = None) -> bool:
        me = self.bot.user
        if me is not None and user_id == me.id:
            return True  # Muse's own reactions (if it ever adds any) are not votes
        user = member or self.bot.get_user(user_id)
        return bool(user is not None and user.bot)

    def _is_vote(self, emoji: discord.PartialEmoji) -> bool:
        store = self.bot.store
        return store is not None and store.votes.value(emoji_text(emoji)) is not None

    def _notify(self, row) -> None:
        """Tell the trainer a vote on ``row`` (a stored result) changed: it counts toward the lineage of the server
        the result was posted in (the base's for a DM)."""
        trainer = self.bot.trainer
        if trainer is not None:
            trainer.notify(row.model, row.guild_id)

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        # Cheap checks first: the gateway sends every reaction in every channel Muse can see.
        me = self.bot.user
        if payload.message_author_id is not None and me is not None and payload.message_author_id != me.id:
            return
        if not self._is_vote(payload.emoji) or self._ignored(payload.user_id, payload.member):
            return
        await self._change(payload, add=True)

    @commands.Cog.listener()
    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        # No member on a remove: a bot's add was ignored, so its remove finds nothing in the store.
        if not self._is_vote(payload.emoji) or self._ignored(payload.user_id):
            return
        await self._change(payload, add=False)

    async def _change(self, payload: discord.RawReactionActionEvent, *, add: bool) -> None:
        store = self.bot.store
        assert store is not None
        emoji, user, message_id = emoji_text(payload.emoji), payload.user_id, payload.message_id
        pending = self.bot.pending_writes

        async def write() -> None:
            row = await store.get_result(message_id=message_id)
            if row is None:
                return  # not a result Muse stored (an ordinary message, or one from before the store)
            before = await store.vote_of(row.id, user)
            if add:
                after = await store.add_reaction(message_id, user, emoji)
            else:
                after = await store.remove_reaction(message_id, user, emoji)
            log.debug("reaction %s %s by %s on result %s: vote %s -> %s", "+" if add else "-", emoji,
                      user, row.id, before, after)
            if after is not None and after != before:
                self._notify(row)

        what = f"a reaction of user {user}"
        try:
            if pending.holds(message_id):  # its result waits for the database: the vote waits behind it
                pending.add(PendingWrite(what, message_id, write), "its result is not saved yet")
                return
            await self.bot.pending_writes.save(PendingWrite(what, message_id, write))
        except Exception as e:  # noqa: BLE001 - a listener has no one to answer; log and go on
            log_error(e, f"recording a reaction of user {user} on message {message_id}")

    @commands.Cog.listener()
    async def on_raw_reaction_clear(self, payload: discord.RawReactionClearEvent) -> None:
        await self._clear(payload.message_id, None)

    @commands.Cog.listener()
    async def on_raw_reaction_clear_emoji(self, payload: discord.RawReactionClearEmojiEvent) -> None:
        if self._is_vote(payload.emoji):
            await self._clear(payload.message_id, emoji_text(payload.emoji))

    async def _clear(self, message_id: int, emoji: str | None) -> None:
        store = self.bot.store
        if store is None:
            return
        try:
            row = await store.get_result(message_id=message_id)
            if row is None:
                return
            await store.clear_reactions(message_id, emoji)
            log.debug("reactions %s cleared on result %s", emoji or "all", row.id)
            self._notify(row)
        except Exception as e:  # noqa: BLE001
            log_error(e, f"clearing reactions on message {message_id}")
