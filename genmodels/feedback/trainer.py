"""The background trainer: watches feedback, fine-tunes in a worker process, gates, promotes, hot-swaps.

::

    store ──feedback(model, per-user cap)──► Trainer.train(model) ──spec──► worker process: run_job(spec)
                                                 ▲                              load parent version
    notify(model) / schedule / admin command ────┘                              fine-tune (finetune.py)
                                                                                save candidate vNNNN, card
                                                                                  marked "gate pending"
    engine.reload(model, that version) ◄── promoted ◄── gate.decide(candidate vs parent) → verdict on the card
    store: model_versions, trainer_runs  (every judged version is kept, with its card; refused ones too)

The worker is a separate process (``spawn``), one per run, so a fine-tune never competes with the event loop for
the GIL and a crash, NaN or out-of-memory there leaves the served model untouched: the run is recorded as failed
and reported to admins. One run per model at a time, and one worker at a time (the runs of other models wait
their turn). The store is written only from this (the bot's) process: the worker returns plain data through a
pipe.

What is served
--------------
A candidate's card says ``"gate": {"passed": null}`` from the moment it is written until the gate's verdict is
recorded on it, and a loader that is not told which version to load serves only versions whose gate passed (or
that never went through one), skipping corrupt ones (`genmodels.checkpoints`). So a refused or half-judged
candidate is never served, even when the trainer is off or could not start and the engine falls back to its
default loaders. With the trainer on, `Trainer.start` pins each model to the version the store says is served.
A rollback marks the version it takes out of service ``withdrawn`` on its card as well as ``refused`` in the
store, so no default loader picks it again either.

A passed candidate is loaded before anything points at it: the engine swaps it in only once it has loaded, and
only then is the engine's loader pinned to it and the store told it is served. A candidate that passed the gate
but does not load (its files damaged since the gate, out of memory) leaves the served version in place; it is
marked ``refused`` in the store and ``withdrawn`` on its card, the run is recorded ``failed`` (stage ``load``),
and the admins are told.

Stopping
--------
`Trainer.close` ends a fine-tune in flight within seconds: it terminates the worker process (SIGTERM, then
SIGKILL after ``stop_grace`` seconds) and waits for it, records the run as ``interrupted``, and deletes the
candidate folder if the gate had not judged it yet (such a folder holds no usable model; a judged one is kept).
A run that has its answer and is only recording it is allowed to finish. On Linux the worker also dies with
the bot's process (``PR_SET_PDEATHSIG``), and `Trainer.start` marks runs an earlier process left ``running``
(a crash, ``kill -9``) as ``interrupted`` and deletes their unjudged candidates in the same way.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import multiprocessing
import os
import shutil
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

from .. import checkpoints, lineage, paths, registry
from ..engine import Engine
from ..registry import BASE, ModelKey, parse_tag, tag
from .finetune import FinetuneConfig, NothingToLearn
from .store import FeedbackStore

log = logging.getLogger("muse.trainer")

MODELS = registry.NAMES  # ("dcgan", "vae", "textvae-en", "textvae-zh")
GATE_PENDING = {"passed": None}  # the gate field of a candidate's card until the gate has judged it


class TrainerError(Exception):
    """A request the trainer cannot do (unknown model, nothing to roll back to); the message is for people."""


class NothingToRollBack(TrainerError):
    """The served version is the oldest one this server has served."""


class WorkerDied(RuntimeError):
    """The worker process ended without an answer (killed, out of memory, a crash in native code)."""


@dataclass
class TasteConfig:
    """[taste]: how the servers' lineages are trained."""

    share_with_base: bool = False  # true: every server's votes also train the base (the owner's choice)
    min_interval_minutes: float = 60.0  # a lineage is fine-tuned at most this often by votes or the schedule
    check_seconds: float = 60.0  # how often the trainer looks for lineages that are due
    keep_versions: int = 10  # a server's delta files kept besides the served one, per kind (see `Trainer.prune`)


@dataclass
class TrainerConfig:
    min_feedback: int = 32  # new votes on a model that wake the trainer
    every_hours: float = 24.0  # also train on this schedule when there is new feedback (0 = off)
    per_user_cap: int = 16  # votes of one member that count in one fine-tune
    tolerance: float = 0.15  # the gate: quality and diversity may fall at most this fraction (of parent and base)
    models_dir: str | None = None  # where new versions go; None = the engine's models_dir, else $MUSE_MODELS_DIR
    data_dir: str | None = None  # replay data; None = $MUSE_DATA_DIR (built from Debian packages when missing)
    device: str = "cpu"  # torch device the worker fine-tunes on ("cpu", "cuda", "cuda:1"...)
    threads: int = 1  # torch threads in the worker: the other cores stay with inference
    stop_grace: float = 2.0  # seconds a worker gets to end after SIGTERM (at close) before it is killed
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)  # one fine-tune: steps, learning rates, mix
    taste: TasteConfig = field(default_factory=TasteConfig)  # the servers' lineages ([taste])


@dataclass
class TrainOutcome:
    model: str
    outcome: str  # 'promoted' | 'refused' | 'failed' | 'skipped' | 'interrupted'
    version: str | None  # the candidate, if one was made (and kept)
    served: str  # the version served after the run
    reason: str
    metrics: dict = field(default_factory=dict)
    feedback_used: int = 0
    run_id: int | None = None
    stage: str | None = None  # where a 'failed' run failed: None (the fine-tune), 'load' (passed the gate, unloadable)
    server: int = 0  # the lineage: a server's, or 0 for the base


# ---- the worker process --------------------------------------------------------------------------------------

def save_candidate(spec: dict, parent_dir: Path, tensors: dict, card: dict) -> Path:
    """Write the candidate version ``spec['version']`` with its card marked `GATE_PENDING`, so that no loader
    serves it by default before the gate's verdict is on the card; copy the parent's tokenizer, if any."""
    from ..data.tokenizer import TOKENIZER_FILE

    vdir = checkpoints.save_version(spec["models_dir"], spec["model"], tensors, {**card, "gate": dict(GATE_PENDING)},
                                    version=spec["version"])
    if (parent_dir / TOKENIZER_FILE).exists():
        shutil.copy(parent_dir / TOKENIZER_FILE, vdir)
    return vdir


def run_job(spec: dict) -> dict:
    """Fine-tune ``spec['model']`` from version ``spec['parent']``, save the candidate, gate it. Runs in the
    worker process; returns plain data: {"version", "passed", "reason", "metrics", "parent_metrics"}."""
    if spec.get("server"):  # a server's lineage: a delta on its base (`genmodels.feedback.server_job`)
        from .server_job import run_delta_job

        return run_delta_job(spec)
    import torch

    from ..data.emoji import build_emoji_dataset
    from ..data.poems import build_poem_dataset, load_poem_dataset
    from . import finetune, gate
    from ..nets.preference import LatentPreference

    torch.set_num_threads(max(1, int(spec["threads"])))
    model, root, cfg = spec["model"], spec["root"], spec["finetune"]
    device = torch.device(spec["device"])
    data_dir = Path(spec["data_dir"])
    parent_root = paths.find_model(model, root, spec["parent"])
    tensors, card = checkpoints.load_version(parent_root, model, spec["parent"])
    parent_obj = registry.load(model, root, spec["parent"])
    spec_of = registry.get(model)
    image_model = spec_of.kind in ("image", "morph")

    if image_model:
        data_path = data_dir / "images.npz"
        if not data_path.exists():  # the replay data, built from the Debian emoji font like `muse prepare images`
            build_emoji_dataset(data_path)
        fn = finetune.finetune_dcgan if model == "dcgan" else finetune.finetune_vae
        new_tensors, extra = fn((tensors, card), spec["items"], data_path, cfg, device)
    else:  # one read of the poem dataset (2M lines for the big corpora) serves the replay and the gate
        lang = spec_of.lang
        path = data_dir / f"poems-{lang}.json"
        if not path.exists():
            build_poem_dataset(lang, None, data_dir)
        ds = load_poem_dataset(path)
        new_tensors, extra = finetune.finetune_textvae((tensors, card), spec["items"], ds, cfg, device,
                                                       poem=parent_obj)

    keep = {k: v for k, v in card.items() if k not in ("name", "version", "created", "sha256", "metrics", "gate",
                                                       "withdrawn", "finetune", "preference", "base")}
    new_card = {**keep, **extra, "parent": f"{model}/{tag(spec['parent'])}", "device": str(device),
                "feedback": {"items": len(spec["items"]), "trigger": spec["trigger"]}}
    vdir = save_candidate(spec, checkpoints.version_dir(parent_root, model, spec["parent"]), new_tensors, new_card)

    # The candidate as users would get it (its preference included), against the parent, on held-out data.
    fresh, fresh_card = checkpoints.load_version(spec["models_dir"], model, spec["version"])
    pref = LatentPreference.from_version(fresh, fresh_card)
    cand = registry.load(model, spec["models_dir"], spec["version"])
    kind, m_parent, m_cand = gate.compare(model, parent_obj, cand, root, data_dir, None if image_model else ds)
    # The base: the first version of this chain of fine-tunes, with the metrics it had when the chain started.
    base = card.get("base") or {"version": f"{model}/{tag(spec['parent'])}", "metrics": m_parent}
    decision = gate.decide(kind, m_cand, m_parent, spec["tolerance"], base["metrics"])
    # The verdict: from here on a passed candidate is servable by default, a refused one never is.
    checkpoints.update_card(vdir, metrics=m_cand, base=base,
                            gate={"passed": decision.passed, "parent_metrics": m_parent, "base": base["version"],
                                  "tolerance": spec["tolerance"], "reasons": decision.reasons})
    return {"version": spec["version"], "passed": decision.passed, "reason": decision.summary(),
            "metrics": m_cand, "parent_metrics": m_parent, "preference": pref.stats if pref else None,
            "warning": None if image_model else finetune.replay_mismatch(card, ds)}


def _die_with_parent(parent_pid: int) -> None:
    """On Linux, have the kernel send this process SIGTERM when the process that started it dies (even by
    ``kill -9``), so no fine-tune outlives the bot. Elsewhere this does nothing."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    PR_SET_PDEATHSIG = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)


def _worker_main(answers, job: Callable[[dict], dict], spec: dict, parent_pid: int) -> None:
    """The worker process: run ``job(spec)`` and send ("ok", result) or ("error", exception, traceback text).

    SIGINT is ignored (a Ctrl-C in the bot's terminal reaches the whole process group): the bot decides when a
    fine-tune stops, by ending this process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent_pid)
    try:
        answer: tuple = ("ok", job(spec))
    except BaseException as e:  # noqa: BLE001 - everything goes back to the bot, which records it
        answer = ("error", e, traceback.format_exc())
    try:
        answers.send(answer)
    except Exception:  # the exception (or result) does not pickle: send its text instead
        if answer[0] == "ok":
            raise
        e = answer[1]
        answers.send(("error", RuntimeError(f"{type(e).__name__}: {e}"), answer[2]))
    finally:
        answers.close()


class _Worker:
    """``job(spec)`` in a process of its own (``spawn``) that answers through a pipe; `stop` ends it for sure."""

    POLL_S = 0.1  # how often the event loop looks for the answer (the pipe is polled, never read blocking)

    def __init__(self, job: Callable[[dict], dict], spec: dict):
        ctx = multiprocessing.get_context("spawn")
        self._answers, send = ctx.Pipe(duplex=False)
        # daemon: should the bot exit without `Trainer.close`, multiprocessing still terminates the worker
        self.process = ctx.Process(target=_worker_main, args=(send, job, spec, os.getpid()),
                                   name=f"muse-finetune-{spec['model']}", daemon=True)
        try:
            self.process.start()
        finally:
            send.close()  # only the worker holds the sending end: its death reads as end-of-file here
        self.pid = self.process.pid
        self._stopping: asyncio.Task | None = None

    @property
    def running(self) -> bool:
        """The process is alive and nobody has asked it to stop."""
        return self._stopping is None and self.process.is_alive()

    async def answer(self) -> tuple:
        """("ok", result) or ("error", exception, traceback text); a worker that dies without answering gives
        ("error", WorkerDied(...), "")."""
        while not self._answers.poll():  # also true at end-of-file
            await asyncio.sleep(self.POLL_S)
        try:
            answer = self._answers.recv()
        except EOFError:
            await self._exited(5.0)
            return "error", WorkerDied(self._death()), ""
        except Exception as e:  # noqa: BLE001 - an answer that does not unpickle here is a failed run
            return "error", RuntimeError(f"the worker's answer could not be read: {type(e).__name__}: {e}"), ""
        await self._exited(5.0)  # it exits by itself once it has answered
        return answer

    def _death(self) -> str:
        code = self.process.exitcode
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            hint = " (perhaps it ran out of memory)" if -code == signal.SIGKILL else ""
            return f"the worker process was killed by {name}{hint}"
        return f"the worker process ended with exit code {code} without an answer"

    async def _exited(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the process to end (it is reaped); True when it has."""
        deadline = time.monotonic() + timeout
        while self.process.is_alive():
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    async def stop(self, grace: float) -> None:
        """End the process: SIGTERM, then SIGKILL after ``grace`` seconds; return once it is gone. Idempotent,
        and finishes even if the caller is cancelled."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop(grace))
        await asyncio.shield(self._stopping)

    async def _stop(self, grace: float) -> None:
        if self.process.is_alive():
            self.process.terminate()
            if not await self._exited(grace):
                log.warning("the fine-tune worker %d did not stop within %.1f s; killing it", self.pid, grace)
                self.process.kill()
                if not await self._exited(10.0):
                    log.error("the fine-tune worker %d survived SIGKILL", self.pid)

    def release(self) -> None:
        """Close the pipe and the process handle, once `answer` has returned and `stop` has run."""
        self._answers.close()
        if not self.process.is_alive():
            self.process.close()


def _for(server: int) -> str:
    """`` for server 123`` in a log line or report about a server's lineage; nothing for the base."""
    return f" for server {server}" if server != BASE else ""


class _Run:
    """A fine-tune in flight, from its `store.start_run` row until its outcome is recorded."""

    def __init__(self, model: str, run_id: int, version: int, served: str, feedback_used: int, server: int = 0):
        self.model, self.run_id, self.version, self.served = model, run_id, version, served
        self.server = server
        self.actor: int | None = None  # who asked for it (an admin's id), None for the trainer itself
        self.trigger = ""
        self.feedback_used = feedback_used
        self.worker: _Worker | None = None
        self.stopping: asyncio.Task | None = None  # interrupting it (`Trainer._interrupt`), once started
        self.concluding: asyncio.Task | None = None  # recording its answer (`Trainer._conclude`), once started
        self.reason = ""  # why it was interrupted
        self.kept: str | None = None  # the candidate left on disk by an interrupted run (a judged one)


# ---- the trainer (lives in the bot's process, on its event loop) -------------------------------------------------

class Trainer:
    # The function the worker process runs on a spec: `run_job`. A subclass may run another importable function
    # with the same contract (the tests use one that stays inside a fine-tune on purpose).
    job: Callable[[dict], dict] = staticmethod(run_job)

    def __init__(self, store: FeedbackStore, engine: Engine, config: TrainerConfig | None = None,
                 report: Callable[[str], Awaitable[None]] | None = None):
        self.store, self.engine = store, engine
        self.config = config or TrainerConfig()
        self.report = report
        self.root = engine.config.models_dir  # where the engine looks for models (None: ./models, then shipped)
        self.models_dir = Path(self.config.models_dir or self.root or paths.models_dir())
        self.data_dir = Path(self.config.data_dir or paths.data_dir())
        self.lineages = engine.lineages  # which version serves which server: moved here, read by the bot
        self.lineage_root = Path(engine.config.lineage_root)  # the servers' deltas, where the engine reads them
        # per lineage, (model, server): one run at a time, new votes, when its last run started
        self._locks: collections.defaultdict[tuple[str, int], asyncio.Lock] = collections.defaultdict(asyncio.Lock)
        # one worker process at a time, whatever the model or server; asyncio.Lock wakes its waiters first come,
        # first served, and a lineage waits with at most one run, so busy servers take turns with quiet ones
        self._slot = asyncio.Lock()
        self._runs: dict[int, _Run] = {}  # by run id
        self._new: collections.Counter[tuple[str, int]] = collections.Counter()
        self._last_start: dict[tuple[str, int], float] = {}
        self._tasks: set[asyncio.Task] = set()
        self._schedule: asyncio.Task | None = None
        self._closing = False

    # ---- lifecycle ----

    async def start(self) -> None:
        """Clean up after an earlier process, serve the versions the store says are served (installing versioned
        loaders in the engine), record the current ones for models the store does not know yet, and start the
        schedule.

        Runs an earlier process left 'running' (it crashed or was killed mid-run) are marked 'interrupted', and
        their candidates deleted when the gate never judged them."""
        for run in await self.store.interrupt_stale_runs("Muse stopped during this run (found at the next start)"):
            deleted = False  # (a server's candidate is written only once judged: there is nothing to delete)
            if run["model"] in MODELS and run["candidate_version"] and not run.get("server"):
                deleted = self._discard_unjudged(run["model"], parse_tag(run["candidate_version"]))
            log.warning("trainer run %d (%s) was left running by an earlier Muse; marked interrupted%s", run["id"],
                        run["model"], f", unjudged candidate {run['candidate_version']} deleted" if deleted else "")
        for model in MODELS:
            served = await self.store.served_version(model)
            if served is None:
                current = self._current(model)
                if current is None:
                    continue
                served = tag(current)
                await self.store.set_model_version(model, served, "served", note="initial")
            # the engine loads exactly this version from now on (not merely the newest servable one)
            self._install(model, parse_tag(served))
            loaded = self.engine.loaded(model)
            if loaded is not None and parse_tag(loaded.version) != parse_tag(served):
                await self.engine.reload(model)
            last = await self.store.last_run(model)
            self._new[(model, BASE)] = await self.store.feedback_count(
                model, since=(last or {}).get("started_at") or 0.0, server=None if self._shared else BASE)
            if last:
                self._last_start[(model, BASE)] = last["started_at"]
            for server, n in (await self.store.new_feedback_by_server(model)).items():
                if server != BASE:
                    self._new[(model, server)] = n
                    last = await self.store.last_run(model, server)
                    if last:
                        self._last_start[(model, server)] = last["started_at"]
        await self._serve_lineages()
        self._schedule = asyncio.create_task(self._every(), name="muse-trainer-schedule")

    @property
    def _shared(self) -> bool:
        return self.config.taste.share_with_base

    async def _serve_lineages(self) -> None:
        """Serve every server's version the store says is served, unless its delta file is gone (then the base
        serves that server, and a warning says so)."""
        await self.lineages.refresh(self.store)
        for (model, server), version in self.lineages.items().items():
            if not lineage.delta_path(self.lineage_root, model, server, version).is_file():
                log.warning("server %d's %s %s is missing from %s; the base serves that server", server, model,
                            tag(version), self.lineage_root)
                self.lineages.set(model, server, None)

    async def close(self) -> None:
        """Stop: no new runs; a fine-tune in flight has its worker process ended (within ``stop_grace`` seconds
        plus a moment) and is recorded 'interrupted'; a run already recording its answer finishes doing so."""
        self._closing = True
        if self._schedule is not None:
            self._schedule.cancel()
        waits = []
        for run in list(self._runs.values()):
            if run.concluding is not None:
                waits.append(asyncio.wait({run.concluding}, timeout=30))
            else:
                waits.append(self._interrupt(run, "Muse stopped during the fine-tune"))
        for res in await asyncio.gather(*waits, return_exceptions=True):
            if isinstance(res, BaseException):
                log.error("stopping a fine-tune: %s: %s", type(res).__name__, res)
        for t in [self._schedule, *self._tasks]:
            if t is not None:
                t.cancel()
        for t in [self._schedule, *self._tasks]:
            if t is not None:
                try:
                    await t
                except (asyncio.CancelledError, Exception):
                    pass

    def _current(self, model: str) -> int | None:
        """The version the engine serves now (loaded, or what its default loader would load)."""
        m = self.engine.loaded(model)
        if m is not None:
            return parse_tag(m.version)
        try:
            return paths.resolve_model(model, self.root)[1]
        except checkpoints.CheckpointError:
            return None

    def _loader(self, model: str, version: int) -> Callable[[], Any]:
        """A function that loads exactly ``version`` of ``model`` the way the engine serves it."""
        root, device = self.root, self.engine.config.device
        return lambda: registry.load(model, root, version, device)

    def _install(self, model: str, version: int) -> None:
        self.engine.set_loader(model, self._loader(model, version))

    def _roots(self) -> list[Path]:
        roots = [self.models_dir, *paths.model_roots(self.root)]
        return [r for i, r in enumerate(roots) if r not in roots[:i]]

    def _versions_everywhere(self, model: str) -> list[int]:
        return sorted({v for r in self._roots() for v in checkpoints.list_versions(r, model)})

    def _discard_unjudged(self, model: str, version: int) -> bool:
        """Delete the candidate folder ``version`` of ``model`` in the models folder if the gate never judged it:
        its card still says `GATE_PENDING`, or the save never got as far as the card. Such a folder holds no
        usable model. True when a folder was deleted."""
        vdir = checkpoints.version_dir(self.models_dir, model, version)
        if not vdir.is_dir():
            return False
        if (vdir / checkpoints.CARD_FILE).exists():
            try:
                gate = checkpoints.read_card(vdir).get("gate")
            except checkpoints.CheckpointError:
                return False  # unreadable: not ours to judge; it is never served by default anyway
            if not (isinstance(gate, dict) and "passed" in gate and gate["passed"] is None):
                return False
        shutil.rmtree(vdir, ignore_errors=True)
        return True

    # ---- triggers ----

    def notify(self, model: str, server: int | None = None) -> None:
        """A vote on ``model``'s results in ``server`` (None or 0: a DM) changed. Wakes a run of that server's
        lineage once ``min_feedback`` have arrived, if its last run started ``[taste] min_interval_minutes`` ago;
        with ``[taste] share_with_base`` the vote counts toward the base as well."""
        if model not in MODELS or self._closing:
            return
        server = lineage.server_of(server)
        keys = [(model, server)] + ([(model, BASE)] if self._shared and server != BASE else [])
        for key in keys:
            self._new[key] += 1
            if self._new[key] >= self.config.min_feedback and self._due(key):
                self._spawn(key, "feedback")

    def _due(self, key: tuple[str, int], every_s: float = 0.0) -> bool:
        """No run of this lineage is running or waiting, and its last one started long enough ago."""
        if self._locks[key].locked():
            return False
        wait = max(self.config.taste.min_interval_minutes * 60, every_s)
        return time.time() - self._last_start.get(key, 0.0) >= wait

    def _spawn(self, key: tuple[str, int], trigger: str) -> None:
        model, server = key
        task = asyncio.get_running_loop().create_task(self.train(model, server, trigger=trigger),
                                                      name=f"muse-train-{model}-{server}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _every(self) -> None:
        """Every ``check_seconds``: start the lineages that have ``min_feedback`` new votes and are due (a burst
        that arrived within a lineage's minimum interval), and, every ``every_hours``, those with any."""
        every_s = self.config.every_hours * 3600
        while True:
            await asyncio.sleep(self.config.taste.check_seconds)
            for key, n in list(self._new.items()):
                if n >= self.config.min_feedback and self._due(key):
                    self._spawn(key, "feedback")
                elif every_s > 0 and n > 0 and self._due(key, every_s):
                    self._spawn(key, "schedule")

    # ---- a run ----

    async def train(self, model: str, server: int | None = None, *, trigger: str = "admin",
                    actor: int | None = None) -> TrainOutcome:
        """Fine-tune ``server``'s lineage of ``model`` (None or 0: the base) on that server's votes now;
        ``actor``: who asked (kept in the change log), None for the trainer itself."""
        if model not in MODELS:
            raise TrainerError(f"Unknown model '{model}'; choose one of: {', '.join(MODELS)}.")
        server = lineage.server_of(server)
        async with self._locks[(model, server)]:
            return await self._train(model, server, trigger, actor)

    async def _train(self, model: str, server: int, trigger: str, actor: int | None = None) -> TrainOutcome:
        if self._closing:
            raise TrainerError("Muse is shutting down; fine-tune after it restarts.")
        base = self._current(model)
        if base is None:
            raise TrainerError(f"There is no {model} model to fine-tune yet.")
        if server == BASE:
            parent, served = base, tag(base)
            version = max(self._versions_everywhere(model), default=0) + 1
            source = None if self._shared else BASE  # the base learns from DMs, or from everyone when shared
        else:
            parent = self.lineages.served(model, server)  # None: the lineage starts at the base
            served = tag(parent) if parent is not None else f"base {tag(base)}"
            known = [parse_tag(v["version"]) for v in await self.store.model_versions(model, server)]
            version = max([*known, *lineage.delta_versions(self.lineage_root, model, server)], default=0) + 1
            source = server
        items = await self.store.feedback(model, per_user_cap=self.config.per_user_cap, server=source)
        rated = [i for i in items if i.value]
        if not rated:
            return TrainOutcome(model, "skipped", None, served, "no feedback yet", server=server)
        self._new[(model, server)] = 0
        self._last_start[(model, server)] = time.time()
        run_id = await self.store.start_run(model, trigger, candidate_version=tag(version), server=server)
        run = self._runs[run_id] = _Run(model, run_id, version, served, len(rated), server)
        run.actor = actor
        run.trigger = trigger
        spec = {
            "model": model, "server": server, "base": base, "lineage_root": str(self.lineage_root),
            "parent": parent, "version": version, "root": str(self.root) if self.root else None,
            "models_dir": str(self.models_dir), "data_dir": str(self.data_dir), "device": self.config.device,
            "threads": self.config.threads, "finetune": self.config.finetune, "tolerance": self.config.tolerance,
            "trigger": trigger,
            "items": [{"value": i.value, "latent": i.latent, "params": i.params, "content": i.content,
                       "user": i.user_id, "source": i.source} for i in rated],
        }
        try:
            return await self._run(run, spec)
        except asyncio.CancelledError:
            if run.concluding is None:  # a run recording its answer finishes that (it is shielded)
                await self._interrupt(run, "the fine-tune was cancelled")
            raise
        finally:
            self._runs.pop(run_id, None)

    async def _run(self, run: _Run, spec: dict) -> TrainOutcome:
        t0 = time.monotonic()
        async with self._slot:
            if self._closing or run.stopping is not None:
                return await self._interrupted(run, "Muse stopped before the fine-tune began")
            try:
                run.worker = _Worker(self.job, spec)
            except Exception as e:  # noqa: BLE001 - no process could be started (out of memory, too many)
                answer = ("error", e, traceback.format_exc())
            else:
                try:
                    answer = await run.worker.answer()
                finally:
                    await run.worker.stop(self.config.stop_grace)  # at once when it answered (it has exited)
                    run.worker.release()
        if run.stopping is not None:  # `close` ended the worker: that, not its dying, is the outcome
            return await self._interrupted(run)
        run.concluding = asyncio.ensure_future(self._conclude(run, answer, time.monotonic() - t0))
        return await asyncio.shield(run.concluding)

    async def _conclude(self, run: _Run, answer: tuple, seconds: float) -> TrainOutcome:
        """Record the worker's answer: skipped, failed, or the gate's verdict (and promote a passed candidate)."""
        model, served, used = run.model, run.served, run.feedback_used
        if answer[0] == "error":
            e, trace = answer[1], answer[2]
            if isinstance(e, NothingToLearn):
                await self.store.finish_run(run.run_id, "skipped", feedback_used=used, detail={"reason": str(e)})
                return TrainOutcome(model, "skipped", None, served, str(e), {}, used, run.run_id, server=run.server)
            # a crash, NaN (FinetuneError), OOM, a dead worker: the served model stays
            detail = {"error": f"{type(e).__name__}: {e}", "trace": trace[-2000:]}
            if run.server == BASE and self._discard_unjudged(model, run.version):
                detail["candidate"] = f"{tag(run.version)} deleted: the gate never judged it"
            log.error("fine-tune of %s%s failed: %s", model, _for(run.server), detail["error"])
            await self.store.finish_run(run.run_id, "failed", feedback_used=used, detail=detail)
            out = TrainOutcome(model, "failed", None, served, detail["error"], {}, used, run.run_id, server=run.server)
            await self._report(out)
            return out
        res = answer[1]
        cand = tag(res["version"])
        if res.get("warning"):  # the worker's own log goes nowhere; its warnings come back with the result
            log.warning("fine-tune of %s: %s", model, res["warning"])
        detail = {"gate": res["reason"], "parent_metrics": res["parent_metrics"], "seconds": round(seconds, 1)}
        server = run.server
        if res["passed"]:
            try:  # loaded before anything points at it. A load that fails changes nothing
                if server == BASE:  # hot swap between batches; queued jobs use the new one
                    await self.engine.reload(model, self._loader(model, res["version"]))
                else:  # a new key: loaded into the engine's LRU now, served from the next request on
                    await asyncio.to_thread(self.engine.model, str(ModelKey(model, server, res["version"])))
            except Exception as e:  # noqa: BLE001 - corrupt files, out of memory, a bug in a loader
                return await self._unloadable(run, res, e, detail)
            if server == BASE:
                self._install(model, res["version"])  # the engine loads this version from now on
            else:
                self.lineages.set(model, server, res["version"])
            await self.store.set_model_version(model, cand, "served", res["metrics"], note=f"fine-tune run {run.run_id}",
                                               server=server)
            outcome, served = "promoted", cand
        else:
            await self.store.set_model_version(model, cand, "refused", res["metrics"], note=res["reason"],
                                               server=server)
            outcome = "refused"
        await self.store.finish_run(run.run_id, outcome, candidate_version=cand, feedback_used=used, detail=detail)
        await self.store.log_model_change(model, server, outcome, cand, actor_id=run.actor,
                                          detail={"run": run.run_id, "trigger": run.trigger,
                                                  "reason": res["reason"][:500]})
        out = TrainOutcome(model, outcome, cand, served, res["reason"], res["metrics"], used, run.run_id,
                           server=server)
        log.info("fine-tune of %s%s: %s %s (%s)", model, _for(server), outcome, cand, res["reason"])
        if server != BASE:
            try:
                await self.prune(model, server)
            except Exception as e:  # noqa: BLE001 - pruning must never cost a run its outcome
                log.error("pruning %s%s: %s: %s", model, _for(server), type(e).__name__, e)
        await self._report(out)
        return out

    async def _unloadable(self, run: _Run, res: dict, error: BaseException, detail: dict) -> TrainOutcome:
        """The candidate passed the gate but the engine could not load it (its files damaged since the gate, out
        of memory, a loader's bug): the served version stays, in the engine and in the store; the candidate is
        refused in the store and withdrawn on its card, so no default loader serves it; the run is 'failed'."""
        model, version, cand = run.model, res["version"], tag(res["version"])
        error_text = f"{type(error).__name__}: {error}"
        reason = f"{cand} passed the gate but could not be loaded ({error_text})"
        log.error("fine-tune of %s%s: %s; %s is still served", model, _for(run.server), reason, run.served)
        if run.server == BASE:
            self._withdraw(model, version, f"passed the gate but could not be loaded: {error_text}"[:500])
        await self.store.set_model_version(model, cand, "refused", res["metrics"],
                                           note=f"passed the gate but could not be loaded: {error_text}"[:1000],
                                           server=run.server)
        detail = {**detail, "reason": reason[:2000], "error": error_text[:2000], "stage": "load"}
        await self.store.finish_run(run.run_id, "failed", candidate_version=cand, feedback_used=run.feedback_used,
                                    detail=detail)
        out = TrainOutcome(model, "failed", cand, run.served, error_text, res["metrics"], run.feedback_used,
                           run.run_id, stage="load", server=run.server)
        await self._report(out)
        return out

    async def _interrupt(self, run: _Run, reason: str) -> None:
        """End ``run``'s worker and record the run 'interrupted' (once, whoever asks first; shielded)."""
        if run.stopping is None:
            run.stopping = asyncio.ensure_future(self._stop_run(run, reason))
        await asyncio.shield(run.stopping)

    async def _stop_run(self, run: _Run, reason: str) -> None:
        run.reason = reason
        if run.worker is not None:
            await run.worker.stop(self.config.stop_grace)
        detail: dict[str, Any] = {"reason": reason}
        if run.server != BASE:  # a server's candidate is on disk only once judged
            if lineage.delta_path(self.lineage_root, run.model, run.server, run.version).is_file():
                run.kept = tag(run.version)
        elif self._discard_unjudged(run.model, run.version):
            detail["candidate"] = f"{tag(run.version)} deleted: the gate never judged it"
        elif checkpoints.version_dir(self.models_dir, run.model, run.version).is_dir():
            run.kept = tag(run.version)  # judged just before the end: kept, but neither promoted nor recorded
        try:
            await self.store.finish_run(run.run_id, "interrupted", candidate_version=run.kept,
                                        feedback_used=run.feedback_used, detail=detail)
        except Exception as e:  # noqa: BLE001 - the next start marks the run interrupted anyway
            log.error("recording the interrupted run %d: %s: %s", run.run_id, type(e).__name__, e)
        log.warning("fine-tune of %s interrupted: %s", run.model, reason)

    async def _interrupted(self, run: _Run, reason: str | None = None) -> TrainOutcome:
        await self._interrupt(run, reason or "Muse stopped during the fine-tune")
        return TrainOutcome(run.model, "interrupted", run.kept, run.served, run.reason, {}, run.feedback_used,
                            run.run_id, server=run.server)

    async def _report(self, out: TrainOutcome) -> None:
        if self.report is None:
            return
        m = f"{out.model}{_for(out.server)}"
        text = {"promoted": f"Muse promoted {m} {out.version} ({out.reason}).",
                "refused": f"Muse kept {m} {out.served}: the candidate {out.version} was refused ({out.reason}).",
                "failed": f"Muse's fine-tune of {m} failed; {out.served} is still served. Error: {out.reason}"}
        if out.outcome == "failed" and out.stage == "load":
            text["failed"] = (f"Muse's fine-tune of {m}: the candidate {out.version} passed the gate but could "
                              f"not be loaded ({out.reason}); {out.served} is still served, and {out.version} is "
                              "withdrawn.")
        try:
            await self.report(text.get(out.outcome, out.reason))
        except Exception:  # a report must never break training
            log.exception("trainer report failed")

    # ---- admin ----

    async def rollback(self, model: str, server: int | None = None, *, actor: int | None = None) -> str:
        """Serve the version of ``server``'s lineage (None or 0: the base) that was served before the current one;
        a server whose first version is served goes back to the base. The current one is marked refused in the
        store (and, for the base, withdrawn on its card, so that no default loader serves it again either).
        Returns the version now served (``base v0005`` for a server back on the base)."""
        if model not in MODELS:
            raise TrainerError(f"Unknown model '{model}'; choose one of: {', '.join(MODELS)}.")
        server = lineage.server_of(server)
        async with self._locks[(model, server)]:
            versions = await self.store.model_versions(model, server)
            current = await self.store.served_version(model, server)
            earlier = [v for v in versions if v["status"] == "retired" and v["version"] != current]
            if server != BASE:  # only what is still on disk (`prune`)
                earlier = [v for v in earlier if self._delta_file(model, server, v["version"]).is_file()]
                if current is None:
                    raise NothingToRollBack(f"This server has no {model} version of its own; it is served the base.")
                target = earlier[-1]["version"] if earlier else None
                await self.store.set_model_version(model, current, "refused", note="rolled back", server=server)
                if target is not None:
                    await self.store.set_model_version(model, target, "served", server=server)
                self.lineages.set(model, server, parse_tag(target) if target else None)
                shown = target or f"base {tag(self._current(model) or 0)}"
                await self.store.log_model_change(model, server, "rollback", target, actor_id=actor,
                                                  detail={"from": current})
                log.info("rolled back %s%s: %s -> %s", model, _for(server), current, shown)
                return shown
            if current is None or not earlier:
                raise NothingToRollBack(f"There is no earlier {model} version to roll back to.")
            target = earlier[-1]["version"]
            self._install(model, parse_tag(target))
            await self.engine.reload(model)
            await self.store.set_model_version(model, target, "served")
            await self.store.set_model_version(model, current, "refused", note="rolled back")
            self._withdraw(model, parse_tag(current), f"rolled back to {target}")
            await self.store.log_model_change(model, BASE, "rollback", target, actor_id=actor, detail={"from": current})
            log.info("rolled back %s: %s -> %s", model, current, target)
            return target

    def _delta_file(self, model: str, server: int, version: str) -> Path:
        return lineage.delta_path(self.lineage_root, model, server, parse_tag(version))

    async def prune(self, model: str, server: int) -> list[str]:
        """Delete the delta files of ``server``'s lineage of ``model`` beyond `TasteConfig.keep_versions`, after
        each of its runs: it keeps the served version, the newest ``keep_versions`` versions served before it (what
        a rollback goes back to) and the newest ``keep_versions`` refused candidates (their cards say why). The
        store keeps every version's row, its metrics and its like-rate. 0 keeps everything. Returns the versions
        whose files were deleted."""
        keep = self.config.taste.keep_versions
        if keep <= 0 or lineage.server_of(server) == BASE:
            return []
        versions = await self.store.model_versions(model, server)
        doomed = []
        for status in ("retired", "refused"):
            older = sorted((v["version"] for v in versions if v["status"] == status), key=parse_tag)[:-keep]
            doomed += [v for v in older if self._delta_file(model, server, v).is_file()]
        for version in doomed:
            self._delta_file(model, server, version).unlink(missing_ok=True)
        if doomed:
            log.info("pruned %d delta file(s) of %s%s: %s", len(doomed), model, _for(server), ", ".join(doomed))
        return doomed

    async def reset(self, server: int, models: tuple[str, ...] = MODELS, *, delete_data: bool = False,
                    actor: int | None = None) -> dict:
        """Serve ``server`` the base again for ``models``: its versions stay recorded (retired) unless
        ``delete_data``, which deletes its lineage's files and everything the store holds of the server (its
        results, votes, sessions, versions and runs; `FeedbackStore.delete_server_data`). Refused while one of its
        fine-tunes runs. Returns {"models": [the models reset], "deleted": {table: rows}}."""
        server = lineage.server_of(server)
        if server == BASE:
            raise TrainerError("The base lineage is not one server's; roll it back instead.")
        for model in models:
            if model not in MODELS:
                raise TrainerError(f"Unknown model '{model}'; choose one of: {', '.join(MODELS)}.")
        keys = [(m, server) for m in (MODELS if delete_data else models)]
        if any(self._locks[k].locked() for k in keys):
            raise TrainerError("A fine-tune of this server's models is running or waiting; try again when it ends.")
        reset = []
        for model in models:
            current = await self.store.served_version(model, server)
            if current is not None:
                await self.store.set_model_version(model, current, "retired", note="reset to the base", server=server)
                reset.append(model)
            self.lineages.set(model, server, None)
        deleted: dict = {}
        if delete_data:
            for model in MODELS:
                self.lineages.set(model, server, None)
                for key in [k for k in self.engine.loaded_keys() if registry.parse_key(k).server == server]:
                    self.engine.unload(key)
                self._new.pop((model, server), None)
                self._last_start.pop((model, server), None)
            shutil.rmtree(self.lineage_root / lineage.SERVERS_DIR / str(server), ignore_errors=True)
            deleted = await self.store.delete_server_data(server)
        for model in models:  # after a deletion, only this line says who reset the server
            await self.store.log_model_change(model, server, "delete" if delete_data else "reset", None,
                                              actor_id=actor, detail={"deleted": deleted} if delete_data else {})
        log.info("reset server %d's %s to the base%s", server, ", ".join(models),
                 " and deleted its data" if delete_data else "")
        return {"models": reset, "deleted": deleted}

    def _withdraw(self, model: str, version: int, reason: str) -> None:
        """Mark ``version`` withdrawn on its card, in every model root that holds it."""
        for r in self._roots():
            if version not in checkpoints.list_versions(r, model):
                continue
            try:
                checkpoints.withdraw(checkpoints.version_dir(r, model, version), reason)
            except (OSError, checkpoints.CheckpointError) as e:  # e.g. the read-only shipped weights
                log.warning("could not mark %s %s withdrawn in %s (%s); the store still has it refused",
                            model, tag(version), r, e)

    async def status(self, server: int | None = None) -> list[dict]:
        """Per model: the version served, the versions kept, the last run, counts, like-rates, and whether a run
        is running; of ``server``'s lineage (None or 0: the base's, with every server's results counted)."""
        server = lineage.server_of(server)
        out = []
        for model in MODELS:
            key = (model, server)
            base = await self.store.served_version(model) or (tag(self._current(model)) if self._current(model)
                                                              else None)
            out.append({
                "model": model,
                "server": server,
                "served": await self.store.served_version(model, server) if server != BASE else base,
                "base": base,
                "versions": await self.store.model_versions(model, server),
                "last_run": await self.store.last_run(model, server),
                "counts": await self.store.counts(model, server if server != BASE else None),
                "like_rates": await self.store.like_rates(model, server if server != BASE else None),
                "running": self._locks[key].locked(),
                "new_feedback": self._new[key],
            })
        return out

    def worker_pids(self) -> list[int]:
        """The process ids of the fine-tune workers running now (for status pages and tests)."""
        return [r.worker.pid for r in self._runs.values() if r.worker is not None and r.worker.running]


__all__ = ["GATE_PENDING", "MODELS", "NothingToRollBack", "TasteConfig", "TrainOutcome", "Trainer", "TrainerConfig",
           "TrainerError", "WorkerDied", "run_job", "save_candidate"]
