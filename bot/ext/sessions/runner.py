"""The life of a group session: its rounds' timers, closing, breeding, posting, pausing and the end.

Everything a session is lives in the store (`genmodels.feedback.store`: sessions, rounds, candidates with their
latents, parents, operation and mutation size, votes, seeds), so this object holds only timers:

- A round has a stored ``deadline``. One asyncio task per session sleeps until it (Discord shows the countdown
  itself, ``<t:…:R>``, so nothing is edited while it runs). At start-up `resume_all` re-schedules every open round
  for ``deadline − now``: an overdue round closes at once, and every vote cast before the restart counts.
- At the deadline a round with fewer voters than ``[sessions] extend_below`` gets half a round more, once; a round
  nobody voted in pauses the session (instead of breeding at random) until a vote resumes it or
  ``idle_minutes`` pass. A round also closes as soon as ``quorum`` members have voted.
- Closing is the store's compare-and-set on the round's status (`FeedbackStore.close_round`): whichever timer, vote
  or restart gets there first closes it, and the others find it closed. The next round is stored under a unique
  (session, number) key (`FeedbackStore.add_round`), and breeding is a pure function of the stored state (the
  session's seed, the round number, the candidates' latents, the votes), so a restart between closing and posting
  breeds the same children, once.
- Making a round (`genmodels.rounds`: breeding and decoding) runs in the engine's worker as one named operation
  (``session.first_round`` / ``session.next_round``) with the stored state as plain arguments, and a round's images
  are rendered as one batch (``image.latents``), next to members' /image requests.

Every step for one session runs under that session's lock; different sessions run independently.
"""

from __future__ import annotations

import asyncio
import collections
import io
import logging
import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import discord
import numpy as np

from genmodels import breeding, registry
from genmodels.engine import EngineBusy
from genmodels.rounds import POEM_LINES, BroughtIn, Parent, SessionPlan, descent_path

from ... import render
from ...errors import log_error
from ...i18n import t
from ...recording import PendingWrite, as_latent, version_tag
from . import present
from .views import round_view

if TYPE_CHECKING:
    from genmodels.feedback.store import RoundRow, SessionRow, Tally, VoteResult

    from ...app import MuseBot

log = logging.getLogger("muse.sessions")

ACTIVE = ("running", "paused")
GIF_MAX_FRAMES = 48
ENGINE_RETRY_S = 3.0  # a full engine queue: try the round again this much later ...
ENGINE_TRIES = 20  # ... this many times (a minute), then leave the session for the next start


def plan_of(s: "SessionRow") -> SessionPlan:
    """What breeding needs of a stored session (`genmodels.rounds`)."""
    return SessionPlan(s.kind, s.seed, s.candidates, s.rounds,
                              theme=s.params.get("theme") if s.kind == "poem" else None,
                              temperature=float(s.params.get("temperature", 0.9)))


# ---- the runner --------------------------------------------------------------------------------------------


class SessionRunner:
    """Timers and steps of every session of this bot (one instance, ``bot.sessions``)."""

    def __init__(self, bot: "MuseBot"):
        self.bot = bot
        self._timers: dict[int, asyncio.Task] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task] = set()
        # seconds from a round's close to the next round's post (the benchmark reads it), the latest few hundred
        self.stats: dict[str, collections.deque[float]] = {"advance_s": collections.deque(maxlen=500)}

    @property
    def store(self):
        return self.bot.store

    @property
    def cfg(self):
        return self.bot.settings.sessions

    def seconds(self, s: float) -> float:
        return s * self.cfg.time_scale

    def lock(self, session_id: int) -> asyncio.Lock:
        return self._locks.setdefault(session_id, asyncio.Lock())

    # ---- tasks and timers -----------------------------------------------------------------------------------

    def spawn(self, coro, name: str) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log_error(task.exception(), task.get_name())  # type: ignore[arg-type]

    def schedule(self, session_id: int, when: float, action: str) -> None:
        """Run ``action`` ('deadline' or 'idle') for the session at ``when`` (a Unix time; past = now)."""
        self.cancel_timer(session_id)

        async def fire() -> None:
            await asyncio.sleep(max(0.0, when - time.time()))
            if self._timers.get(session_id) is asyncio.current_task():
                del self._timers[session_id]
            await self.step(session_id, action)

        self._timers[session_id] = self.spawn(fire(), f"muse-session-{session_id}-{action}")

    def cancel_timer(self, session_id: int) -> None:
        task = self._timers.pop(session_id, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def close(self) -> None:
        """Stop every timer (the state is in the store: the next start resumes it)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._timers.clear()

    async def idle(self) -> None:
        """Wait until no step is running or due now (tests and the benchmark)."""
        while True:
            busy = [t for t in self._tasks if t not in self._timers.values()]
            if not busy:
                return
            await asyncio.gather(*busy, return_exceptions=True)

    # ---- entry points ---------------------------------------------------------------------------------------

    async def resume_all(self) -> None:
        """At start-up: pick every running or paused session up where the store says it is."""
        if self.store is None:
            return
        for session in await self.store.active_sessions():
            self.spawn(self.step(session.id, "resume"), f"muse-session-{session.id}-resume")

    def after_vote(self, session_id: int, round_id: int, result: "VoteResult") -> None:
        """A vote was stored: resume a paused session, or close the round when the quorum is reached."""
        if result.session_status == "paused" and result.choices:
            self.spawn(self.step(session_id, "unpause", round_id=round_id), f"muse-session-{session_id}-unpause")
        elif self.cfg.quorum and result.voters >= self.cfg.quorum:
            self.spawn(self.step(session_id, "quorum", round_id=round_id), f"muse-session-{session_id}-quorum")

    async def step(self, session_id: int, action: str, **kw: Any) -> None:
        """One step of one session, under its lock; a session that has ended does nothing."""
        async with self.lock(session_id):
            s = await self.store.get_session(session_id)
            if s is None or s.status not in ACTIVE:
                return
            r = await self.store.round_of(session_id, s.current_round) if s.current_round else None
            if kw.get("round_id") is not None and (r is None or r.id != kw["round_id"]):
                return  # a vote on a round that has moved on
            if action == "resume":
                await self._resume(s, r)
            elif action == "deadline":
                await self._deadline(s, r)
            elif action == "quorum":  # re-checked here: a late or repeated trigger must not close a new round
                if r is not None and self.cfg.quorum and (await self.store.tally(r.id)).voters >= self.cfg.quorum:
                    await self._close(s, r, "quorum")
            elif action == "unpause":
                await self._unpause(s, r)
            elif action == "idle":
                await self._end(s, r, "abandoned")
            elif action == "stop":
                await self._end(s, r, "stopped", by=kw.get("by"))
            elif action == "start" and r is not None:
                if await self._post_round(s, r):
                    self.schedule(s.id, r.deadline, "deadline")

    # ---- the steps ------------------------------------------------------------------------------------------

    async def _resume(self, s: "SessionRow", r: "RoundRow | None") -> None:
        if r is None:  # Muse stopped between storing the session and its first round
            await self.store.end_session(s.id, "failed", "no first round")
            return
        if r.status == "closed":  # closed, but the next round was not stored or posted yet
            if r.number >= s.rounds:
                await self._end(s, r, "finished")
            else:
                await self._advance(s, r)
            return
        if r.message_id is None:  # stored but never posted
            if not await self._post_round(s, r):
                return
        if s.status == "paused":
            self.schedule(s.id, (s.paused_at or time.time()) + self.seconds(self.cfg.idle_minutes * 60), "idle")
        else:
            self.schedule(s.id, r.deadline, "deadline")

    async def _deadline(self, s: "SessionRow", r: "RoundRow | None") -> None:
        if r is None or r.status != "open" or s.status != "running":
            return
        now = time.time()
        if now < r.deadline - 0.005:  # resumed, or extended meanwhile
            self.schedule(s.id, r.deadline, "deadline")
            return
        tally = await self.store.tally(r.id)
        loc = present.locale_of(s)
        if tally.voters < self.cfg.extend_below and not r.extended:
            deadline = now + self.seconds(s.round_seconds) / 2
            if await self.store.extend_round(r.id, deadline):
                r = await self.store.get_round(r.id)
                await self._edit_open(s, r)
                await self._say(s, t(loc, "session_extended", voters=tally.voters, deadline=present.ts(deadline)))
                self.schedule(s.id, deadline, "deadline")
                return
        if tally.voters == 0:
            if await self.store.pause_session(s.id, now):
                ends = now + self.seconds(self.cfg.idle_minutes * 60)
                await self._say(s, t(loc, "session_paused", round=r.number, deadline=present.ts(ends)))
                self.schedule(s.id, ends, "idle")
            return
        await self._close(s, r, "deadline")

    async def _unpause(self, s: "SessionRow", r: "RoundRow | None") -> None:
        if r is None or r.status != "open" or s.status != "paused":
            return
        deadline = time.time() + self.seconds(s.round_seconds)
        if await self.store.resume_session(s.id, r.id, deadline):
            r = await self.store.get_round(r.id)
            await self._edit_open(s, r)
            await self._say(s, t(present.locale_of(s), "session_resumed", round=r.number,
                                 deadline=present.ts(deadline)))
            self.schedule(s.id, deadline, "deadline")

    async def _close(self, s: "SessionRow", r: "RoundRow | None", reason: str) -> None:
        if r is None or r.status != "open":
            return
        t0 = time.perf_counter()
        tally = await self.store.close_round(r.id, reason, signal_weight=self.bot.settings.feedback.session_weight)
        if tally is None:
            return  # another timer, a vote or a restart closed it first
        self.cancel_timer(s.id)
        await self._show_closed(s, r, tally, reason)
        if r.number >= s.rounds:
            await self._end(s, await self.store.get_round(r.id), "finished")
        else:
            await self._advance(s, r, tally)
            self.stats["advance_s"].append(time.perf_counter() - t0)

    async def _advance(self, s: "SessionRow", prev: "RoundRow", tally: "Tally | None" = None) -> None:
        """Breed, store and post the round after ``prev`` (which is closed). Safe to repeat: an existing next round
        is only posted if it was not yet."""
        number = prev.number + 1
        r = await self.store.round_of(s.id, number)
        if r is None:
            tally = tally or await self.store.tally(prev.id)
            cands = await self.store.candidates(prev.id)
            seeds = await self.store.seeds(s.id, number)
            r = await self.store_round(
                s, number, "session.next_round", plan=plan_of(s), number=number,
                prev=[Parent(c.latent, c.content) for c in cands], votes=list(tally.votes),
                none_votes=tally.none, brought_in=[BroughtIn(x.latent, x.content, x.user_id) for x in seeds],
                cfg=self.bot.settings.breeding)
        if r.status == "open" and r.message_id is None and not await self._post_round(s, r):
            return
        if r.status == "open":
            self.schedule(s.id, r.deadline, "deadline")

    async def _end(self, s: "SessionRow", r: "RoundRow | None", status: str, *, by: str | None = None,
                   detail: str | None = None) -> None:
        """Close the round in play (its votes count), end the session, and post the winner."""
        if r is not None and r.status == "open":
            reason = {"stopped": "stopped", "abandoned": "idle"}.get(status, status)
            tally = await self.store.close_round(r.id, reason,
                                                 signal_weight=self.bot.settings.feedback.session_weight)
            if tally is not None and r.message_id is not None:
                await self._show_closed(s, r, tally, reason)
        reason_text = detail or by or status
        if not await self.store.end_session(s.id, status, reason_text[:200]):
            return
        self.cancel_timer(s.id)
        s = await self.store.get_session(s.id)
        if status == "failed":
            await self._tell_parent(s, t(present.locale_of(s), "session_end_failed",
                                         round=s.current_round, detail=detail or "?"))
            return
        text = present.end_text(s, status, round_number=s.current_round, by=by, detail=detail,
                                idle_minutes=self.cfg.idle_minutes)
        await self._post_final(s, text)

    # ---- posting --------------------------------------------------------------------------------------------

    def model_key(self, s: "SessionRow") -> str:
        """The model key that serves the session's server now (`genmodels.lineage.Lineages`)."""
        return self.bot.engine.lineages.key(s.model, s.guild_id)

    def _result_spec(self, s: "SessionRow") -> dict:
        """How the candidates are stored as results (so that votes on them become feedback for the trainer)."""
        p = s.params
        params = ({"theme": p.get("theme"), "theme_index": p.get("theme_index")} if s.kind == "image"
                  else {"lang": p.get("lang"), "theme": p.get("theme"), "temperature": p.get("temperature"),
                        "lines": POEM_LINES})
        return {"kind": s.kind, "model": s.model, "guild_id": s.guild_id, "channel_id": s.thread_id or s.channel_id,
                "params": params}

    async def first_round(self, s: "SessionRow") -> "RoundRow":
        """Make and store a new session's first round."""
        return await self.store_round(s, 1, "session.first_round", plan=plan_of(s))

    async def store_round(self, s: "SessionRow", number: int, op: str, /, **args: Any) -> "RoundRow":
        """Make round ``number`` in the engine's worker (operation ``op``, ``session.first_round`` or
        ``session.next_round``, with ``args``) and store it, open, with its deadline and its candidates as results. A
        round already stored under that number is kept (`FeedbackStore.add_round`), so making it twice stores it
        once."""
        key = self.model_key(s)  # the server's own version, as it is when the round is made
        bred = await self._engine(s, lambda user: self.bot.engine.run(key, op, user=user, **args))
        round_id, _ = await self.store.add_round(
            s.id, number, deadline=time.time() + self.seconds(s.round_seconds),
            model_version=version_tag(bred.version), candidates=bred.rows,
            result={**self._result_spec(s), "lineage": registry.lineage_of(bred.version)})
        return await self.store.get_round(round_id)

    async def _engine(self, s: "SessionRow", submit: Callable[[Any], Awaitable[Any]]) -> Any:
        """``submit(user)``, an engine request on behalf of the session; a full queue is waited out (the session
        has time), at most `ENGINE_TRIES` times."""
        for _ in range(ENGINE_TRIES):
            try:
                return await submit(("session", s.id))
            except EngineBusy:
                await asyncio.sleep(ENGINE_RETRY_S)
        raise RuntimeError(f"the engine stayed busy; session {s.id} will continue at the next start")

    async def _render(self, s: "SessionRow", latents: np.ndarray) -> list:
        """Images of the session's theme from latents (N, nz): one batch through the engine."""
        key = self.model_key(s)
        out = await self._engine(s, lambda user: self.bot.engine.image_from_latents(s.params["theme_index"],
                                                                                    latents, user=user, model_key=key))
        return out.images

    async def _encode(self, fn, *args) -> bytes:
        return await asyncio.get_running_loop().run_in_executor(self.bot.encoder, fn, *args)

    async def _post_round(self, s: "SessionRow", r: "RoundRow") -> bool:
        """Post an open round (numbered grid or stanzas, lineage, vote buttons). False when the session ended
        because its channel is gone or closed to Muse."""
        cands = await self.store.candidates(r.id)
        names = await self._seeders(s, r.number)
        files = []
        if s.kind == "image":
            images = await self._render(s, np.stack([np.asarray(c.latent, np.float32) for c in cands]))
            png = await self._encode(render.numbered_grid_png, images, self.bot.settings.limits.cell_px)
            files.append(discord.File(io.BytesIO(png), "round.png"))
        loc = present.locale_of(s)
        msg = await self._send(s, content=present.header(s, r, self.cfg.quorum),
                               embed=present.round_embed(s, r, cands, names), files=files,
                               view=round_view(loc, r.id, len(cands)))
        if msg is None:
            return False
        await self.store.set_round_message(r.id, msg.id)
        return True

    async def _seeders(self, s: "SessionRow", number: int) -> dict[int, str]:
        return {seed.user_id: seed.name for seed in await self.store.seeds(s.id, number) if seed.name}

    def _channel(self, s: "SessionRow") -> discord.PartialMessageable:
        return self.bot.get_partial_messageable(s.thread_id or s.channel_id, guild_id=s.guild_id)

    async def _send(self, s: "SessionRow", **kw: Any) -> discord.Message | None:
        """Post in the session's thread (or channel). A thread that is gone or closed to Muse ends the session."""
        try:
            return await self._channel(s).send(allowed_mentions=discord.AllowedMentions.none(), **kw)
        except discord.NotFound:
            await self._fail(s, t(present.locale_of(s), "session_gone_thread"))
        except discord.Forbidden as e:
            await self._fail(s, t(present.locale_of(s), "session_gone_perms", detail=e.text or e.status))
        return None

    async def _say(self, s: "SessionRow", text: str) -> None:
        await self._send(s, content=text)

    async def _fail(self, s: "SessionRow", detail: str) -> None:
        log.warning("session %s in channel %s ends: %s", s.id, s.thread_id or s.channel_id, detail)
        await self._end(s, None, "failed", detail=detail)

    async def _tell_parent(self, s: "SessionRow", text: str) -> None:
        """A line in the channel the session was started from (when it runs in a thread of it)."""
        if not s.thread_id or s.thread_id == s.channel_id:
            return
        try:
            await self.bot.get_partial_messageable(s.channel_id, guild_id=s.guild_id).send(
                text, allowed_mentions=discord.AllowedMentions.none())
        except discord.HTTPException as e:
            log.info("could not tell channel %s about session %s: %s", s.channel_id, s.id, e)

    async def _edit(self, s: "SessionRow", r: "RoundRow", **kw: Any) -> bool:
        """Edit a round's message. False when it was deleted (or cannot be edited any more)."""
        if r.message_id is None:
            return False
        try:
            await self._channel(s).get_partial_message(r.message_id).edit(**kw)
            return True
        except discord.NotFound:
            log.info("the message of round %s of session %s was deleted", r.number, s.id)
        except discord.HTTPException as e:
            log.warning("could not edit round %s of session %s: %s", r.number, s.id, e)
        return False

    async def _edit_open(self, s: "SessionRow", r: "RoundRow") -> None:
        """Show an open round's new deadline. A deleted round message is posted again: its votes are kept."""
        if not await self._edit(s, r, content=present.header(s, r, self.cfg.quorum)):
            await self._post_round(s, r)

    async def _show_closed(self, s: "SessionRow", r: "RoundRow", tally: "Tally", reason: str) -> None:
        """Reveal the tallies on the round's message and take its buttons away (or post them, if it is gone)."""
        text = present.closed_header(s, r, tally, reason)
        if not await self._edit(s, r, content=text, view=None):
            await self._say(s, text)

    async def _post_final(self, s: "SessionRow", status_text: str) -> None:
        rounds = await self.store.rounds(s.id)
        cands = [await self.store.candidates(r.id) for r in rounds]
        loc = present.locale_of(s)
        winner = None
        if rounds:
            votes = (await self.store.tally(rounds[-1].id)).votes
            winner = breeding.session_winner(votes, [c.op for c in cands[-1]])
        if winner is None:
            await self._send(s, content=t(loc, "session_end_none", what=present.what(s)) + f"\n{status_text}")
            await self._tell_parent(s, t(loc, "session_ended_pointer", where=f"<#{s.thread_id}>"))
            return
        path = breeding.line_of_descent([[tuple(c.parents) for c in rc] for rc in cands], winner)
        chain = [(rounds[ri].number, cands[ri][ci]) for ri, ci in path]
        credit_rows = await self.store.lineage_credits([(rounds[ri].id, ci) for ri, ci in path])
        version = rounds[chain[-1][0] - 1].model_version or s.model
        files = []
        if s.kind == "image":
            path_z, between = descent_path([c.latent for _, c in chain], GIF_MAX_FRAMES)
            frames = await self._render(s, path_z)
            durations = [900 if i % (between + 1) == 0 else 90 for i in range(len(frames))]
            durations[-1] = 2000
            gif = await self._encode(render.morph_gif, frames, 256, durations, False)
            png = await self._encode(render.grid_png, [frames[-1]], 2 * self.bot.settings.limits.cell_px)
            files = [discord.File(io.BytesIO(png), "winner.png"), discord.File(io.BytesIO(gif), "descent.gif")]
        embed = present.final_embed(s, status_text, chain, credit_rows, version=version)
        msg = await self._send(s, embed=embed, files=files)
        if msg is None:
            return
        await self._record_winner(s, chain, msg, version)
        await self.store.set_final_message(s.id, msg.id)
        await self._tell_parent(s, t(loc, "session_ended_pointer", where=f"<#{s.thread_id}>"))

    async def _record_winner(self, s: "SessionRow", chain: list, msg: discord.Message, version: str) -> None:
        """The final message is a result like any other: reactions on it are votes for the winner."""
        store, winner = self.store, chain[-1][1]
        parents = [c.result_id for _, c in chain if c.result_id is not None]
        params = {**self._result_spec(s)["params"], "session": s.id, "round": chain[-1][0], "winner": True}

        async def write() -> int:
            made = winner.result_id is not None and await store.get_result(result_id=winner.result_id)
            return await store.record_result(
                kind=s.kind, model=s.model, model_version=version_tag(version), latent=as_latent(winner.latent),
                params=params, parents=parents, content=winner.content, message_id=msg.id,
                channel_id=s.thread_id or s.channel_id, guild_id=s.guild_id, requester_id=s.starter_id,
                lineage=made.lineage if made else 0)  # the lineage whose version bred the winner

        try:
            await self.bot.pending_writes.save(PendingWrite(f"the winner of session {s.id}", msg.id, write))
        except Exception as e:  # noqa: BLE001 - the winner is posted; losing its row must not break the end
            log_error(e, f"storing the winner of session {s.id}")
