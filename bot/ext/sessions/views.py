"""The vote buttons under a round: one per candidate, and "None of these".

Each is a `discord.ui.DynamicItem` whose whole state is in its ``custom_id``, ``muse:sv:<round>:<choice>`` (the
round's id in base 36; the candidate's index, or ``n`` for none of these), so votes keep working on a round posted
before a restart. Approval voting: a press toggles that choice; "None of these" and the candidates exclude each
other. The tally stays hidden until the round closes (members see only their own choices, privately), so nobody
piles onto the leader.

Answering within Discord's 3 s under a burst (a thousand members pressing at once): the store writes the votes
that arrive together in one transaction (`FeedbackStore.queue_vote`, group commit), and a press is answered with
its confirmation as soon as its vote is committed: one request, and the acknowledgement is the confirmation. A
vote not committed within `ANSWER_WITHIN_S` (a database stalled by another process, an enormous burst) is
acknowledged then with a private "thinking…" (a deferred ephemeral response) and confirmed by a followup when it
is stored. Either way a member sees their choices only for a vote that is stored, and no press waits longer than
`ANSWER_WITHIN_S` for its acknowledgement (less when it reached Muse late: `ACK_BY_AGE_S`). Deferring every press
instead would cost a second request each, which under a burst slows every answer (docs/BENCHMARKS.md).

A ``custom_id`` is whatever the click carries: a round id beyond SQLite's integers, or one the store does not
have, is answered as a button Muse does not know, never as an error id nor as a "closed" round.
"""

from __future__ import annotations

import asyncio
import functools
import re
import weakref

import discord

from ... import render
from ...checks import need_store
from ...errors import UserError
from ...i18n import t
from ...replies import SafeItem, bot_of
from .present import ts

NONE = -1  # the stored choice of "None of these"
ID_MAX = 2**63 - 1  # SQLite's INTEGER: no round has a larger id (13 base-36 digits can say up to 36**13 - 1)
ANSWER_WITHIN_S = 0.75  # a vote not stored by then is acknowledged with a private "thinking…", then confirmed
ACK_BY_AGE_S = 2.0  # ... and never later than this after the interaction was created (Discord allows 3 s)
# Vote answers on their way to Discord at once, at most. Unbounded, a burst's thousand answers open a thousand
# connections at once (discord.py's pool has no limit; against Discord, a TLS handshake each) and share the event
# loop among them, so that all of them arrive late; bounded, the connections are reused and answers go out in
# order. At 100 ms to Discord this still sends 1,000 answers a second.
ANSWERS_IN_FLIGHT = 100
_answer_slots: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore]" = weakref.WeakKeyDictionary()


class VoteButton(SafeItem, discord.ui.DynamicItem[discord.ui.Button],
                 template=r"muse:sv:(?P<round>[0-9a-z]{1,13}):(?P<choice>[0-8]|n)"):
    def __init__(self, round_id: int, choice: int, label: str | None = None):
        self.round_id, self.choice = round_id, choice
        code = "n" if choice == NONE else str(choice)
        style = discord.ButtonStyle.secondary if choice == NONE else discord.ButtonStyle.primary
        super().__init__(discord.ui.Button(label=label or (str(choice + 1) if choice != NONE else "∅"), style=style,
                                           custom_id=f"muse:sv:{render.b36(round_id)}:{code}"))

    @classmethod
    async def from_custom_id(cls, interaction, item, match: re.Match[str]):
        return cls(int(match["round"], 36), NONE if match["choice"] == "n" else int(match["choice"]))

    async def run(self, interaction: discord.Interaction) -> None:
        if interaction.user.bot:
            raise UserError("session_bot")
        if not 0 < self.round_id <= ID_MAX:  # forged: no round of the store can have this id
            raise UserError("session_unknown_round")
        store = need_store(interaction)
        name = getattr(interaction.user, "display_name", None) or interaction.user.name
        vote = store.queue_vote(self.round_id, interaction.user.id, self.choice, name=name[:80])
        # The runner hears of every stored vote (quorum, resume), whatever becomes of this interaction.
        vote.add_done_callback(functools.partial(_after_vote, bot_of(interaction), self.round_id))
        await asyncio.wait((vote,), timeout=_answer_within(interaction))
        if not vote.done():  # not stored yet: acknowledge now, privately, and confirm once it is
            async with _slots():
                await interaction.response.defer(ephemeral=True, thinking=True)
        result = await vote
        text = self.confirmation(interaction.locale, result)
        async with _slots():
            if interaction.response.is_done():
                await interaction.followup.send(text, ephemeral=True)
            else:
                await interaction.response.send_message(text, ephemeral=True)

    def confirmation(self, loc, result) -> str:
        """What the member is told of their stored vote; a refused one raises the `UserError` that says why."""
        if result.status == "missing":  # no round the store has: a forged button, or a database started afresh
            raise UserError("session_unknown_round")
        if result.status == "unknown":  # a candidate the round does not have: a forged or garbled button
            raise UserError("stale", detail=f"round {render.b36(self.round_id)} has no candidate {self.choice + 1}")
        if result.status != "ok":
            raise UserError("session_closed")
        number = result.round_number
        if not result.choices:
            return t(loc, "session_vote_empty", round=number)
        if result.choices == [NONE]:
            return t(loc, "session_vote_none", round=number)
        deadline = f" ({ts(result.deadline)})" if result.session_status == "running" else ""
        return t(loc, "session_vote_ok", round=number, choices=", ".join(str(c + 1) for c in result.choices),
                 deadline=deadline)


def _slots() -> asyncio.Semaphore:
    """This event loop's `ANSWERS_IN_FLIGHT` slots (one bot per loop; tests run a loop each)."""
    loop = asyncio.get_running_loop()
    slots = _answer_slots.get(loop)
    if slots is None:
        slots = _answer_slots[loop] = asyncio.Semaphore(ANSWERS_IN_FLIGHT)
    return slots


def _answer_within(interaction: discord.Interaction) -> float:
    """How long a press may wait for its vote to be stored before it is deferred: `ANSWER_WITHIN_S`, less when the
    interaction reached us late (a busy event loop), so that it is acknowledged by `ACK_BY_AGE_S` after its
    creation. A clock behind Discord's (a negative age) leaves the full wait."""
    age = (discord.utils.utcnow() - interaction.created_at).total_seconds()
    return ANSWER_WITHIN_S if age < 0 else max(0.0, min(ANSWER_WITHIN_S, ACK_BY_AGE_S - age))


VOTE_EVENT = "muse_session_vote"  # dispatched with (round_id, VoteResult) for every stored vote


def _after_vote(bot, round_id: int, vote: asyncio.Future) -> None:
    """A vote's write is done: a stored one is announced as the bot event `VOTE_EVENT`, which the sessions cog hears
    (it may resume the session or reach the quorum: `SessionRunner.after_vote`). These buttons never call the
    runner, which puts them under its rounds."""
    if vote.cancelled() or vote.exception() is not None:
        return
    result = vote.result()
    if result.status == "ok":
        bot.dispatch(VOTE_EVENT, round_id, result)


def round_view(locale: str, round_id: int, count: int) -> discord.ui.View:
    """Buttons 1…count and "None of these", five to a row (Discord's limit), none of them expiring."""
    view = discord.ui.View(timeout=None)
    for i in range(count):
        view.add_item(VoteButton(round_id, i))
    view.add_item(VoteButton(round_id, NONE, t(locale, "session_b_none")))
    return view


BUTTONS = (VoteButton,)
