"""The Discord side of learning from reactions: store what Muse posts, turn reactions and buttons into feedback.

- `record` stores every posted result (`FeedbackStore.record_result`) with the id of the message it was posted
  as, so a reaction on that message, even days and restarts later, finds its result. A button press that asked
  for the result (a variation, a reroll) is stored with it, as a weak signal on the result it was pressed on.
- `Reactions` listens to the *raw* reaction events, which arrive for every message, cached or not (old messages
  after a restart), and hands them to the store; when a user's vote changed it tells the trainer
  (``bot.trainer.notify(model)``), which decides whether that is reason enough to fine-tune.

Nothing here may break a reply or a listener: a store failure is logged with an error id
(`bot.errors.log_error`) and otherwise ignored. The rules (which emoji vote, one vote per user, replays, caps)
live in `genmodels.feedback.store`; this module only parses Discord's events.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
import numpy as np
from discord.ext import commands

from .errors import log_error

if TYPE_CHECKING:
    from .app import MuseBot

log = logging.getLogger("muse.feedback")

# the store's model names for the engine's model keys
MODEL_OF_KEY = {"image": "dcgan", "morph": "vae", "poem-en": "textvae-en", "poem-zh": "textvae-zh"}
KEY_OF_MODEL = {v: k for k, v in MODEL_OF_KEY.items()}


def as_latent(z: Any) -> np.ndarray | None:
    """A (rows, dims) float32 numpy copy of a torch tensor or array (one row per image cell or poem line)."""
    if z is None:
        return None
    if hasattr(z, "detach"):
        z = z.detach().cpu().numpy()
    a = np.asarray(z, dtype=np.float32)
    return a.reshape(1, -1) if a.ndim == 1 else a.reshape(len(a), -1)


async def record(interaction: discord.Interaction, message: discord.Message | None, *, kind: str, model: str,
                 version: str, seed: int | None = None, latent: Any = None, params: dict | None = None,
                 content: str | None = None, parent_message: int | None = None, signal: str | None = None,
                 lineage: bool = True) -> int | None:
    """Store a result Muse just posted as ``message``, and return its id (None if not stored). Never raises.

    ``parent_message``: the message of the result this one came from (the button's message, or the grid a
    morph started from). ``signal``: the button pressed on it ('variation' | 'reroll'), stored as a weak
    vote of the presser. ``lineage``: whether the parent is this result's parent (a variation or a morph is;
    a reroll is not: it asked for something else, not something derived).
    """
    bot: MuseBot = interaction.client  # type: ignore[assignment]
    store = bot.store
    if store is None:
        return None
    parents: list[int] = []
    try:
        if parent_message is not None:
            parent = await store.get_result(message_id=parent_message)
            if parent is not None:
                if signal is not None:
                    await store.add_signal(parent.id, interaction.user.id, signal)
                if lineage:
                    parents.append(parent.id)
        return await store.record_result(
            kind=kind, model=model, model_version=version_tag(version), seed=seed, latent=as_latent(latent), params=params,
            parents=parents, content=content, message_id=message.id if message is not None else None,
            channel_id=message.channel.id if message is not None else interaction.channel_id,
            guild_id=interaction.guild_id, requester_id=interaction.user.id)
    except Exception as e:  # noqa: BLE001 - the result is posted; losing its row must not turn into an error
        log_error(e, f"storing a {kind} result of user {interaction.user.id}")
        return None


def version_tag(version: str) -> str:
    """'dcgan/v0001' (the engine's, shown in embeds) → 'v0001' (the store's and trainer's: the model is a column)."""
    return version.rsplit("/", 1)[-1]


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

    def _notify(self, model: str) -> None:
        trainer = self.bot.trainer
        if trainer is not None:
            trainer.notify(model)

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
        emoji = emoji_text(payload.emoji)
        try:
            row = await store.get_result(message_id=payload.message_id)
            if row is None:
                return  # not a result Muse stored (an ordinary message, or one from before the store)
            before = await store.vote_of(row.id, payload.user_id)
            if add:
                after = await store.add_reaction(payload.message_id, payload.user_id, emoji)
            else:
                after = await store.remove_reaction(payload.message_id, payload.user_id, emoji)
            log.debug("reaction %s %s by %s on result %s: vote %s -> %s", "+" if add else "-", emoji,
                      payload.user_id, row.id, before, after)
            if after is not None and after != before:
                self._notify(row.model)
        except Exception as e:  # noqa: BLE001 - a listener has no one to answer; log and go on
            log_error(e, f"recording a reaction of user {payload.user_id} on message {payload.message_id}")

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
            self._notify(row.model)
        except Exception as e:  # noqa: BLE001
            log_error(e, f"clearing reactions on message {message_id}")
