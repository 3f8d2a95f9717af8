"""What a group session looks like on Discord: round headers, the round embed with its lineage, closed-round tallies,
and the final message. Text and embeds only; no Discord calls, no store, no models.

Every text is in the session's language (the starter's locale): a session is one shared conversation, so its
posts are in one language, while each member's private confirmations follow their own locale (`views`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import discord

from ... import render
from ...errors import clip
from ...i18n import t

if TYPE_CHECKING:
    from genmodels.feedback.store import CandidateRow, RoundRow, SessionRow, Tally

EMBED_FIELD_MAX = 1024
EMBED_DESCRIPTION_MAX = 4096
CREDITS_SHOWN = 15  # names in the credits; the rest are counted


def ts(when: float, style: str = "R") -> str:
    """A Discord timestamp: clients show it in each member's time zone and keep a countdown (``R``) up to date."""
    return f"<t:{int(when)}:{style}>"


def locale_of(session: "SessionRow") -> str:
    return str(session.params.get("locale") or "en-US")


def what(session: "SessionRow") -> str:
    """A short label: "🎨 animals" or "📜 poems about “the sea”"."""
    loc, theme = locale_of(session), session.params.get("theme")
    if session.kind == "image":
        return t(loc, "what_image", theme=theme)
    return t(loc, "what_poem", about=t(loc, "what_about", theme=clip(theme, 60)) if theme else "")


def header(session: "SessionRow", rnd: "RoundRow", quorum: int) -> str:
    """The content line of an open round: which round, when it closes (a live countdown), how to vote."""
    loc = locale_of(session)
    return t(loc, "session_header", round=rnd.number, rounds=session.rounds, deadline=ts(rnd.deadline),
             quorum=t(loc, "session_quorum", n=quorum) if quorum else "")


def origin(loc: str, cand: "CandidateRow", prev_round: int, names: dict[int, str] | None = None) -> str:
    """Where one candidate comes from, in the numbering members saw (#1 is the first candidate)."""
    p = [i + 1 for i in cand.parents]
    if cand.op == "elite":
        return t(loc, "op_elite", prev=prev_round, a=p[0])
    if cand.op == "cross":
        return t(loc, "op_cross", a=p[0], b=p[1])
    if cand.op == "mutant":
        return t(loc, "op_mutant", a=p[0])
    if cand.op == "seeded":
        who = (names or {}).get(cand.seeded_by or 0) or (f"<@{cand.seeded_by}>" if cand.seeded_by else "?")
        return t(loc, "op_seeded", by=who)
    return t(loc, "op_fresh" if cand.op == "fresh" else "op_initial")


def round_embed(session: "SessionRow", rnd: "RoundRow", cands: Sequence["CandidateRow"],
                names: dict[int, str] | None = None) -> discord.Embed:
    """The round's embed. Images: the numbered grid (attachment ``round.png``) and one lineage line per candidate.
    Poems: one numbered field per stanza, its lineage in the field's name."""
    loc = locale_of(session)
    colour = discord.Colour.blurple() if session.kind == "image" else discord.Colour.gold()
    embed = discord.Embed(title=t(loc, "session_title", what=what(session), round=rnd.number, rounds=session.rounds),
                          colour=colour)
    prev = rnd.number - 1
    mutation = max((c.mutation for c in cands), default=0.0)
    note = t(loc, "session_mutation", prev=prev, m=mutation) if prev and mutation else ""
    if session.kind == "image":
        embed.set_image(url="attachment://round.png")
        if rnd.number > 1 or any(c.op == "seeded" for c in cands):
            lines = [f"**{c.idx + 1}** · {origin(loc, c, prev, names)}" for c in cands]
            embed.add_field(name=t(loc, "session_lineage"), value=clip("\n".join(lines), EMBED_FIELD_MAX),
                            inline=False)
        if note:
            embed.description = note
    else:
        if note:
            embed.description = note
        for c in cands:
            name = f"{c.idx + 1}" + (f" · {origin(loc, c, prev, names)}" if rnd.number > 1 or c.op == "seeded" else "")
            embed.add_field(name=clip(name, 256), value=clip(c.content or "…", EMBED_FIELD_MAX), inline=False)
    embed.set_footer(text=render.footer(kind="session", what=session.kind, theme=session.params.get("theme") or "",
                                        session=session.id, round=rnd.number, seed=session.seed,
                                        model=rnd.model_version or session.model))
    return embed


def tallies(loc: str, tally: "Tally") -> str:
    """"#3 ▰▰▰▰ 4 · #1 ▰▰ 2 · none of these 1": the votes of a closed round, most first (zeros left out)."""
    ranked = sorted(((v, i) for i, v in enumerate(tally.votes) if v > 0), key=lambda x: (-x[0], x[1]))
    parts = [f"**#{i + 1}** {'▰' * min(v, 10)} {v}" for v, i in ranked]
    if tally.none:
        parts.append(f"{t(loc, 'session_none_votes')} {tally.none}")
    return " · ".join(parts) or "—"


def closed_header(session: "SessionRow", rnd: "RoundRow", tally: "Tally", reason: str) -> str:
    loc = locale_of(session)
    why = {"quorum": "session_why_quorum", "stopped": "session_why_stopped", "idle": "session_why_idle"}.get(reason)
    return t(loc, "session_closed_header", round=rnd.number, rounds=session.rounds, why=t(loc, why) if why else "",
             voters=tally.voters, tallies=tallies(loc, tally))


def descent_line(chain: Sequence[tuple[int, "CandidateRow"]], loc: str) -> str:
    """"R1 #4 → R2 #1 (#4 × #7) → …": the winner's line, oldest first, each step with how it was made."""
    steps = []
    for number, cand in chain:
        how = ""
        if cand.op == "cross":
            how = f" ({t(loc, 'op_cross', a=cand.parents[0] + 1, b=cand.parents[1] + 1)})"
        elif cand.op == "seeded":
            how = " (🌱)"
        steps.append(f"R{number} #{cand.idx + 1}{how}")
    return " → ".join(steps)


def credits(loc: str, rows: Sequence[tuple[int, str, int]]) -> str:
    """The members who voted for the winning line, by the name they voted under (so a member who has since left
    is still credited), most votes first."""
    if not rows:
        return t(loc, "session_credits_none")
    shown = [f"**{discord.utils.escape_markdown(name or str(uid))}** ×{n}" for uid, name, n in rows[:CREDITS_SHOWN]]
    more = len(rows) - CREDITS_SHOWN
    text = " · ".join(shown) + (f" · {t(loc, 'session_credits_more', n=more)}" if more > 0 else "")
    return clip(text, EMBED_FIELD_MAX)


def end_text(session: "SessionRow", status: str, *, round_number: int, by: str | None = None,
             detail: str | None = None, idle_minutes: float = 0.0) -> str:
    loc = locale_of(session)
    if status == "finished":
        return t(loc, "session_end_finished", rounds=session.rounds)
    if status == "stopped":
        return t(loc, "session_end_stopped", by=by or "?", round=round_number)
    if status == "abandoned":
        return t(loc, "session_end_abandoned", minutes=idle_minutes, round=round_number)
    return t(loc, "session_end_failed", round=round_number, detail=detail or "?")


def final_embed(session: "SessionRow", status_text: str, chain: Sequence[tuple[int, "CandidateRow"]],
                credit_rows: Sequence[tuple[int, str, int]], *, version: str) -> discord.Embed:
    """The winner: for images the winning picture (``winner.png``) with its line of descent as an animated GIF
    beside it (``descent.gif``); for poems the winning poem and its ancestors."""
    loc = locale_of(session)
    winner = chain[-1][1]
    embed = discord.Embed(title=t(loc, "session_end_title", what=what(session)), colour=discord.Colour.green())
    if session.kind == "image":
        embed.description = status_text
        embed.set_image(url="attachment://winner.png")
    else:
        embed.description = clip(f"{winner.content or '…'}\n\n*{status_text}*", EMBED_DESCRIPTION_MAX)
        ancestors = [f"**R{n} #{c.idx + 1}**\n{c.content or '…'}" for n, c in chain[:-1]]
        if ancestors:
            embed.add_field(name=t(loc, "session_ancestors"), value=clip("\n\n".join(ancestors[-6:]), EMBED_FIELD_MAX),
                            inline=False)
    embed.add_field(name=t(loc, "session_descent"), value=clip(descent_line(chain, loc), EMBED_FIELD_MAX),
                    inline=False)
    embed.add_field(name=t(loc, "session_credits"), value=credits(loc, credit_rows), inline=False)
    embed.set_footer(text=render.footer(kind="session", what=session.kind, theme=session.params.get("theme") or "",
                                        session=session.id, round=chain[-1][0], seed=session.seed, model=version))
    return embed
