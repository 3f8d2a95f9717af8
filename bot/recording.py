"""Storing what Muse posts, so that reactions and buttons on it become feedback.

`record` stores every posted result (`FeedbackStore.record_result`) with the id of the message it was posted as,
so a reaction on that message, even days and restarts later, finds its result (`bot.ext.feedback`). A button
press that asked for the result (a variation, a reroll) is stored with it, as a weak signal on the result it was
pressed on.

Nothing here may break a reply or a listener. A write the database refuses for a reason that passes (locked past
the busy timeout, disk full, an I/O error) is kept in memory by `PendingWrites` and retried every
``[database] retry_seconds``, with the votes that arrive on that result meanwhile, and the admins are told once
when the outage starts and once when it ends; any other store failure is logged with an error id
(`bot.errors.log_error`).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Protocol

import discord
import numpy as np

from genmodels import registry

from .errors import log_error

if TYPE_CHECKING:
    from genmodels.feedback.store import FeedbackStore

    from .provenance import Provenance

log = logging.getLogger("muse.feedback")




def as_latent(z: Any) -> np.ndarray | None:
    """A (rows, dims) float32 numpy copy of a torch tensor or array (one row per image cell or poem line)."""
    if z is None:
        return None
    if hasattr(z, "detach"):
        z = z.detach().cpu().numpy()
    a = np.asarray(z, dtype=np.float32)
    return a.reshape(1, -1) if a.ndim == 1 else a.reshape(len(a), -1)


TRANSIENT = (sqlite3.OperationalError, OSError)


MAX_PENDING = 10_000  # writes kept in memory during an outage; older ones are dropped (and logged) beyond this


@dataclass
class PendingWrite:
    """One postponed write: a result (``message_id`` is its message) or a reaction on ``message_id``."""

    what: str
    message_id: int | None
    run: Callable[[], Awaitable[Any]]
    after: Callable[[Any], Awaitable[None]] | None = None
    tries: int = field(default=1)


class PendingWrites:
    """Writes the database refused for now, retried in order until it takes them.

    A reaction on a result that is still waiting here waits behind it (`holds`), so no vote is dropped because
    its result was not stored yet. The admins get one report when an outage starts and one when it ends, through
    ``report(text)``; ``database`` names the file in it.
    """

    def __init__(self, retry_seconds: float, *, report: Callable[[str], Awaitable[Any]], database: str):
        self.retry_seconds, self._report, self.database = retry_seconds, report, database
        self._queue: list[PendingWrite] = []
        self._task: asyncio.Task | None = None
        self._saved = 0

    def __len__(self) -> int:
        return len(self._queue)

    def holds(self, message_id: int) -> bool:
        return any(w.message_id == message_id for w in self._queue)

    def add(self, write: PendingWrite, error: object) -> None:
        """Queue ``write``; ``error`` says why it waits (the database's error, or the result it waits behind)."""
        first = not self._queue
        self._queue.append(write)
        if len(self._queue) > MAX_PENDING:
            dropped = self._queue.pop(0)
            log.error("the database has refused writes for too long: dropped %s (message %s)", dropped.what,
                      dropped.message_id)
        log.warning("could not save %s (message %s): %s; keeping it and retrying every %g s", write.what,
                    write.message_id, error, self.retry_seconds)
        if first:
            self._saved = 0
            self._tell(f"⚠️ Muse could not save a result to its database ({error}). Results and the votes on "
                       f"them are kept in memory and retried every {self.retry_seconds:g} s, so nothing is lost "
                       "unless Muse stops before the database works again. Check the free disk space, and that "
                       f"no other program holds `{self.database}` locked.")
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._retry(), name="muse-pending-writes")

    async def flush(self) -> bool:
        """Try the writes in order; stop at the first that still fails. True when none are left."""
        while self._queue:
            write = self._queue[0]
            try:
                value = await write.run()
            except TRANSIENT as e:
                write.tries += 1
                log.debug("still cannot save %s: %s", write.what, e)
                return False
            except Exception as e:  # noqa: BLE001 - not the database's weather: retrying will not help
                self._queue.pop(0)
                log_error(e, f"saving {write.what} (message {write.message_id}) on retry")
                continue
            self._queue.pop(0)
            self._saved += 1
            if write.after is not None:
                try:
                    await write.after(value)
                except Exception as e:  # noqa: BLE001
                    log_error(e, f"after saving {write.what}")
        return True

    async def _retry(self) -> None:
        while self._queue:
            await asyncio.sleep(self.retry_seconds)
            if await self.flush():
                log.warning("the database works again: saved %d results and votes that had waited", self._saved)
                self._tell(f"✅ Muse's database works again: the {self._saved} results and votes that waited "
                           "are saved.")

    def _tell(self, text: str) -> None:
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._report(text), name="muse-pending-report")
        task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    async def close(self) -> None:
        """One last try; whatever the database still refuses is logged as lost."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        if self._queue and not await self.flush():
            log.error("Muse stopped before the database worked again: %d results and votes were not saved: %s",
                      len(self._queue), ", ".join(f"{w.what} (message {w.message_id})" for w in self._queue[:20]))


    async def save(self, write: PendingWrite) -> Any:
        """Run ``write`` now; if the database refuses it for now, keep it here and retry it."""
        try:
            value = await write.run()
        except TRANSIENT as e:
            self.add(write, e)
            return None
        if write.after is not None:
            await write.after(value)
        return value


class Recorder(Protocol):
    """What storing a result needs of the bot (`bot.app.MuseBot` is one)."""

    store: "FeedbackStore | None"
    pending_writes: PendingWrites


async def record(interaction: discord.Interaction, message: discord.Message | None, prov: "Provenance", *,
                 latent: Any = None, content: str | None = None, parent_message: int | None = None,
                 signal: str | None = None, lineage: bool = True) -> int | None:
    """Store a result Muse just posted as ``message`` with its provenance (kind, model, version, seed and
    ``prov.params()``), and return its id (None if not stored yet). Never raises.

    ``parent_message``: the message of the result this one came from (the button's message, or the grid a
    morph started from). ``signal``: the button pressed on it ('variation' | 'reroll'), stored as a weak
    vote of the presser. ``lineage``: whether the parent is this result's parent (a variation or a morph is;
    a reroll is not: it asked for something else, not something derived).
    """
    bot: Recorder = interaction.client  # type: ignore[assignment]
    store = bot.store
    if store is None:
        return None
    user, message_id = interaction.user.id, message.id if message is not None else None
    kind = prov.kind
    signalled = False

    async def write() -> int:
        nonlocal signalled
        parents: list[int] = []
        if parent_message is not None:
            parent = await store.get_result(message_id=parent_message)
            if parent is not None:
                if signal is not None and not signalled:
                    await store.add_signal(parent.id, user, signal)
                    signalled = True  # a retry after a failed record_result must not count the press twice
                if lineage:
                    parents.append(parent.id)
        return await store.record_result(
            kind=kind, model=prov.model, model_version=version_tag(prov.version), seed=prov.seed,
            latent=as_latent(latent), params=prov.params(), parents=parents, content=content, message_id=message_id,
            channel_id=message.channel.id if message is not None else interaction.channel_id,
            guild_id=interaction.guild_id, requester_id=user, lineage=registry.lineage_of(prov.version))

    try:
        return await bot.pending_writes.save(PendingWrite(f"a {kind} result of user {user}", message_id, write))
    except Exception as e:  # noqa: BLE001 - the result is posted; losing its row must not turn into an error
        log_error(e, f"storing a {kind} result of user {user}")
        return None


version_tag = registry.short_tag  # 'dcgan/v0001' (a model's, shown in embeds) → 'v0001' (the store's and trainer's)
