"""The vote buttons under a round: one per candidate, and "None of these".

Each is a `discord.ui.DynamicItem` whose whole state is in its ``custom_id``, ``muse:sv:<round>:<choice>`` (the
round's id in base 36; the candidate's index, or ``n`` for none of these), so votes keep working on a round posted
before a restart. Approval voting: a press toggles that choice; "None of these" and the candidates exclude each
other. The tally stays hidden until the round closes (members see only their own choices, privately), so nobody
piles onto the leader.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import discord

from ... import render
from ...checks import need_store
from ...errors import UserError
from ...i18n import t
from ...replies import SafeItem, bot_of
from .present import ts

if TYPE_CHECKING:
    from .runner import SessionRunner

NONE = -1  # the stored choice of "None of these"


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
        store = need_store(interaction)
        name = getattr(interaction.user, "display_name", None) or interaction.user.name
        result = await store.toggle_vote(self.round_id, interaction.user.id, self.choice, name=name[:80])
        if result.status == "unknown":  # a candidate the round does not have: a forged or garbled button
            raise UserError("stale", detail=f"round {render.b36(self.round_id)} has no candidate {self.choice + 1}")
        if result.status != "ok":
            raise UserError("session_closed")
        loc, number = interaction.locale, result.round_number
        if not result.choices:
            text = t(loc, "session_vote_empty", round=number)
        elif result.choices == [NONE]:
            text = t(loc, "session_vote_none", round=number)
        else:
            deadline = f" ({ts(result.deadline)})" if result.session_status == "running" else ""
            text = t(loc, "session_vote_ok", round=number, choices=", ".join(str(c + 1) for c in result.choices),
                     deadline=deadline)
        await interaction.response.send_message(text, ephemeral=True)
        runner: SessionRunner | None = getattr(bot_of(interaction), "sessions", None)
        if runner is not None:
            runner.after_vote(result.session_id, self.round_id, result)


def round_view(locale: str, round_id: int, count: int) -> discord.ui.View:
    """Buttons 1…count and "None of these", five to a row (Discord's limit), none of them expiring."""
    view = discord.ui.View(timeout=None)
    for i in range(count):
        view.add_item(VoteButton(round_id, i))
    view.add_item(VoteButton(round_id, NONE, t(locale, "session_b_none")))
    return view


BUTTONS = (VoteButton,)
