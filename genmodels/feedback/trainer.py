"""The background trainer: watches feedback, fine-tunes in a worker process, gates, promotes, hot-swaps.

::

    store ──feedback(model, per-user cap)──► Trainer.train(model) ──spec──► worker process: run_job(spec)
                                                 ▲                              load parent version
    notify(model) / schedule / admin command ────┘                              fine-tune (finetune.py)
                                                                                save candidate vNNNN + card
    engine.reload(key, that version)  ◄── promoted ◄── gate.decide(candidate vs parent)
    store: model_versions, trainer_runs  (every version is kept, with its card; refused ones too)

The worker is a separate process (``spawn``), so a fine-tune never competes with the event loop for the GIL
and a crash, NaN or out-of-memory there leaves the served model untouched: the run is recorded as failed and
reported to admins. One run per model at a time. The store is written only from this (the bot's) process:
the worker returns plain data.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import multiprocessing
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Awaitable, Callable

from .. import checkpoints, paths
from ..engine import Engine
from .finetune import FinetuneConfig, NothingToLearn
from .store import FeedbackStore

log = logging.getLogger("muse.trainer")

MODELS = ("dcgan", "vae", "textvae-en", "textvae-zh")
ENGINE_KEYS = {"dcgan": "image", "vae": "morph", "textvae-en": "poem-en", "textvae-zh": "poem-zh"}


class TrainerError(Exception):
    """A request the trainer cannot do (unknown model, nothing to roll back to); the message is for people."""


class NothingToRollBack(TrainerError):
    """The served version is the oldest one this server has served."""


@dataclass
class TrainerConfig:
    min_feedback: int = 32  # new votes on a model that wake the trainer
    every_hours: float = 24.0  # also train on this schedule when there is new feedback (0 = off)
    per_user_cap: int = 16  # votes of one member that count in one fine-tune
    tolerance: float = 0.15  # the gate: quality and diversity may fall at most this fraction (of parent and base)
    models_dir: str | None = None  # where new versions go; None = the engine's root, else $MUSE_MODELS_DIR
    data_dir: str | None = None  # replay data; None = $MUSE_DATA_DIR (built from Debian packages when missing)
    device: str = "cpu"
    threads: int = 1  # torch threads in the worker: the other cores stay with inference
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)


@dataclass
class TrainOutcome:
    model: str
    outcome: str  # 'promoted' | 'refused' | 'failed' | 'skipped'
    version: str | None  # the candidate, if one was made
    served: str  # the version served after the run
    reason: str
    metrics: dict = field(default_factory=dict)
    feedback_used: int = 0
    run_id: int | None = None


def tag(version: int) -> str:
    return f"v{version:04d}"


def parse_tag(version: str) -> int:
    return int(str(version).rsplit("/", 1)[-1].lstrip("v"))


def load_served(model: str, version: int | None, root: str | None, device: str = "cpu"):
    """The engine-side object of ``model`` at ``version`` (ImageGenerator, Morpher or PoemModel)."""
    from ..images import ImageGenerator, Morpher
    from ..poetry import PoemModel

    if model == "dcgan":
        return ImageGenerator.load(root, version=version, device=device)
    if model == "vae":
        return Morpher.load(root, version=version, device=device)
    return PoemModel.load(model.split("-", 1)[1], root=root, device=device, version=version)


# ---- the worker process --------------------------------------------------------------------------------------

def run_job(spec: dict) -> dict:
    """Fine-tune ``spec['model']`` from version ``spec['parent']``, save the candidate, gate it. Runs in the
    worker process; returns plain data: {"version", "passed", "reason", "metrics", "parent_metrics"}."""
    import torch

    from ..data.emoji import build_emoji_dataset, load_image_dataset
    from ..data.poems import build_poem_dataset, load_poem_dataset
    from ..data.tokenizer import TOKENIZER_FILE
    from ..eval_images import load_feature_net
    from ..images import ImageGenerator, Morpher
    from ..poetry import PoemModel
    from . import finetune, gate
    from .preference import LatentPreference

    torch.set_num_threads(max(1, int(spec["threads"])))
    model, root, cfg = spec["model"], spec["root"], spec["finetune"]
    device = torch.device(spec["device"])
    data_dir = Path(spec["data_dir"])
    parent_root = paths.find_model(model, root, spec["parent"])
    tensors, card = checkpoints.load_version(parent_root, model, spec["parent"])
    parent_obj = load_served(model, spec["parent"], root)

    if model in ("dcgan", "vae"):
        data_path = data_dir / "images.npz"
        if not data_path.exists():  # the replay data, built from the Debian emoji font like `muse prepare images`
            build_emoji_dataset(data_path)
        fn = finetune.finetune_dcgan if model == "dcgan" else finetune.finetune_vae
        new_tensors, extra = fn((tensors, card), spec["items"], data_path, cfg, device)
    else:
        new_tensors, extra = finetune.finetune_textvae((tensors, card), spec["items"], data_dir, cfg, device,
                                                       poem=parent_obj)

    keep = {k: v for k, v in card.items() if k not in ("name", "version", "created", "sha256", "metrics", "gate",
                                                       "finetune", "preference", "base")}
    new_card = {**keep, **extra, "parent": f"{model}/{tag(spec['parent'])}", "device": str(device),
                "feedback": {"items": len(spec["items"]), "trigger": spec["trigger"]}}
    vdir = checkpoints.save_version(spec["models_dir"], model, new_tensors, new_card, version=spec["version"])
    if (checkpoints.version_dir(parent_root, model, spec["parent"]) / TOKENIZER_FILE).exists():
        shutil.copy(checkpoints.version_dir(parent_root, model, spec["parent"]) / TOKENIZER_FILE, vdir)

    # The candidate as users would get it (its preference included), against the parent, on held-out data.
    fresh, fresh_card = checkpoints.load_version(spec["models_dir"], model, spec["version"])
    pref = LatentPreference.from_version(fresh, fresh_card)
    if model == "dcgan":
        cand = ImageGenerator.load(spec["models_dir"], version=spec["version"])
    elif model == "vae":
        cand = Morpher.from_tensors(fresh, fresh_card)
    else:
        cand = PoemModel.load(model.split("-", 1)[1], root=spec["models_dir"], version=spec["version"])
    if model in ("dcgan", "vae"):
        fnet, _ = load_feature_net(root)
        data = load_image_dataset(data_dir / "images.npz")
        m_parent, m_cand = gate.image_metrics(parent_obj, fnet, data), gate.image_metrics(cand, fnet, data)
        kind = model
    else:
        lang = model.split("-", 1)[1]
        path = data_dir / f"poems-{lang}.json"
        if not path.exists():
            build_poem_dataset(lang, None, data_dir)
        ds = load_poem_dataset(path)
        m_parent, m_cand = gate.text_metrics(parent_obj, ds), gate.text_metrics(cand, ds)
        kind = "textvae"
    # The base: the first version of this chain of fine-tunes, with the metrics it had when the chain started.
    base = card.get("base") or {"version": f"{model}/{tag(spec['parent'])}", "metrics": m_parent}
    decision = gate.decide(kind, m_cand, m_parent, spec["tolerance"], base["metrics"])
    checkpoints.update_card(vdir, metrics=m_cand, base=base,
                            gate={"passed": decision.passed, "parent_metrics": m_parent, "base": base["version"],
                                  "tolerance": spec["tolerance"], "reasons": decision.reasons})
    return {"version": spec["version"], "passed": decision.passed, "reason": decision.summary(),
            "metrics": m_cand, "parent_metrics": m_parent, "preference": pref.stats if pref else None}


# ---- the trainer (lives in the bot's process, on its event loop) -------------------------------------------------

class Trainer:
    def __init__(self, store: FeedbackStore, engine: Engine, config: TrainerConfig | None = None,
                 report: Callable[[str], Awaitable[None]] | None = None):
        self.store, self.engine = store, engine
        self.config = config or TrainerConfig()
        self.report = report
        self.root = engine.config.root  # where the engine looks for models (None: ./models, then shipped)
        self.models_dir = Path(self.config.models_dir or self.root or paths.models_dir())
        self.data_dir = Path(self.config.data_dir or paths.data_dir())
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._locks = {m: asyncio.Lock() for m in MODELS}
        self._new: dict[str, int] = {m: 0 for m in MODELS}
        self._tasks: set[asyncio.Task] = set()
        self._schedule: asyncio.Task | None = None

    # ---- lifecycle ----

    async def start(self) -> None:
        """Serve the versions the store says are served (installing versioned loaders in the engine), record
        the current ones for models the store does not know yet, and start the schedule."""
        for model in MODELS:
            key = ENGINE_KEYS[model]
            served = await self.store.served_version(model)
            if served is None:
                current = self._current(model)
                if current is None:
                    continue
                served = tag(current)
                await self.store.set_model_version(model, served, "served", note="initial")
            # the engine loads exactly this version from now on (not merely the newest, which may be refused)
            self._install(model, parse_tag(served))
            loaded = self.engine.loaded(key)
            if loaded is not None and parse_tag(loaded.version) != parse_tag(served):
                await self.engine.reload(key)
            last = await self.store.last_run(model)
            self._new[model] = await self.store.feedback_count(model, since=(last or {}).get("started_at") or 0.0)
        if self.config.every_hours > 0:
            self._schedule = asyncio.create_task(self._every(), name="muse-trainer-schedule")

    async def close(self) -> None:
        for t in [self._schedule, *self._tasks]:
            if t is not None:
                t.cancel()
        for t in [self._schedule, *self._tasks]:
            if t is not None:
                try:
                    await t
                except (asyncio.CancelledError, Exception):
                    pass
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _current(self, model: str) -> int | None:
        """The version the engine serves now (loaded, or what it would load)."""
        m = self.engine.loaded(ENGINE_KEYS[model])
        if m is not None:
            return parse_tag(m.version)
        try:
            r = paths.find_model(model, self.root)
        except checkpoints.CheckpointError:
            return None
        return checkpoints.list_versions(r, model)[-1]

    def _install(self, model: str, version: int) -> None:
        root, device = self.root, self.engine.config.device
        self.engine.set_loader(ENGINE_KEYS[model], lambda: load_served(model, version, root, device))

    def _versions_everywhere(self, model: str) -> list[int]:
        roots = [self.models_dir, *paths.model_roots(self.root)]
        return sorted({v for r in roots for v in checkpoints.list_versions(r, model)})

    # ---- triggers ----

    def notify(self, model: str) -> None:
        """A vote on ``model``'s results changed. Wakes a run once ``min_feedback`` have arrived."""
        if model not in self._new:
            return
        self._new[model] += 1
        if self._new[model] >= self.config.min_feedback and not self._locks[model].locked():
            self._spawn(model, "feedback")

    def _spawn(self, model: str, trigger: str) -> None:
        task = asyncio.get_running_loop().create_task(self.train(model, trigger=trigger), name=f"muse-train-{model}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _every(self) -> None:
        while True:
            await asyncio.sleep(self.config.every_hours * 3600)
            for model in MODELS:
                if self._new[model] > 0 and not self._locks[model].locked():
                    self._spawn(model, "schedule")

    # ---- a run ----

    async def train(self, model: str, *, trigger: str = "admin") -> TrainOutcome:
        if model not in MODELS:
            raise TrainerError(f"Unknown model '{model}'; choose one of: {', '.join(MODELS)}.")
        async with self._locks[model]:
            return await self._train(model, trigger)

    async def _train(self, model: str, trigger: str) -> TrainOutcome:
        parent = self._current(model)
        if parent is None:
            raise TrainerError(f"There is no {model} model to fine-tune yet.")
        served = tag(parent)
        items = await self.store.feedback(model, per_user_cap=self.config.per_user_cap)
        rated = [i for i in items if i.value]
        if not rated:
            return TrainOutcome(model, "skipped", None, served, "no feedback yet")
        self._new[model] = 0
        run_id = await self.store.start_run(model, trigger)
        version = max(self._versions_everywhere(model), default=0) + 1
        spec = {
            "model": model, "parent": parent, "version": version, "root": str(self.root) if self.root else None,
            "models_dir": str(self.models_dir), "data_dir": str(self.data_dir), "device": self.config.device,
            "threads": self.config.threads, "finetune": self.config.finetune, "tolerance": self.config.tolerance,
            "trigger": trigger,
            "items": [{"value": i.value, "latent": i.latent, "params": i.params, "content": i.content,
                       "user": i.user_id, "source": i.source} for i in rated],
        }
        t0 = time.monotonic()
        try:
            res = await asyncio.get_running_loop().run_in_executor(self._worker(), run_job, spec)
        except NothingToLearn as e:
            await self.store.finish_run(run_id, "skipped", feedback_used=len(rated), detail={"reason": str(e)})
            return TrainOutcome(model, "skipped", None, served, str(e), {}, len(rated), run_id)
        except Exception as e:  # a crash, NaN (FinetuneError), OOM, a dead worker: the served model stays
            if isinstance(e, concurrent.futures.process.BrokenProcessPool):
                self._pool = None
            detail = {"error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc(limit=5)[-2000:]}
            log.error("fine-tune of %s failed: %s", model, detail["error"])
            await self.store.finish_run(run_id, "failed", feedback_used=len(rated), detail=detail)
            out = TrainOutcome(model, "failed", None, served, detail["error"], {}, len(rated), run_id)
            await self._report(out)
            return out
        cand = tag(res["version"])
        detail = {"gate": res["reason"], "parent_metrics": res["parent_metrics"], "seconds": round(time.monotonic() - t0, 1)}
        if res["passed"]:
            self._install(model, res["version"])
            await self.engine.reload(ENGINE_KEYS[model])  # hot swap between batches; queued jobs use the new one
            await self.store.set_model_version(model, cand, "served", res["metrics"], note=f"fine-tune run {run_id}")
            outcome, served = "promoted", cand
        else:
            await self.store.set_model_version(model, cand, "refused", res["metrics"], note=res["reason"])
            outcome = "refused"
        await self.store.finish_run(run_id, outcome, candidate_version=cand, feedback_used=len(rated), detail=detail)
        out = TrainOutcome(model, outcome, cand, served, res["reason"], res["metrics"], len(rated), run_id)
        log.info("fine-tune of %s: %s %s (%s)", model, outcome, cand, res["reason"])
        await self._report(out)
        return out

    def _worker(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    async def _report(self, out: TrainOutcome) -> None:
        if self.report is None:
            return
        text = {"promoted": f"Muse promoted {out.model} {out.version} ({out.reason}).",
                "refused": f"Muse kept {out.model} {out.served}: the candidate {out.version} was refused ({out.reason}).",
                "failed": f"Muse's fine-tune of {out.model} failed; {out.served} is still served. Error: {out.reason}"}
        try:
            await self.report(text.get(out.outcome, out.reason))
        except Exception:  # a report must never break training
            log.exception("trainer report failed")

    # ---- admin ----

    async def rollback(self, model: str) -> str:
        """Serve the version that was served before the current one; the current one is marked refused."""
        if model not in MODELS:
            raise TrainerError(f"Unknown model '{model}'; choose one of: {', '.join(MODELS)}.")
        async with self._locks[model]:
            versions = await self.store.model_versions(model)
            current = await self.store.served_version(model)
            earlier = [v for v in versions if v["status"] == "retired" and v["version"] != current]
            if current is None or not earlier:
                raise NothingToRollBack(f"There is no earlier {model} version to roll back to.")
            target = earlier[-1]["version"]
            self._install(model, parse_tag(target))
            await self.engine.reload(ENGINE_KEYS[model])
            await self.store.set_model_version(model, target, "served")
            await self.store.set_model_version(model, current, "refused", note="rolled back")
            log.info("rolled back %s: %s -> %s", model, current, target)
            return target

    async def status(self) -> list[dict]:
        out = []
        for model in MODELS:
            out.append({
                "model": model,
                "served": await self.store.served_version(model),
                "versions": await self.store.model_versions(model),
                "last_run": await self.store.last_run(model),
                "counts": await self.store.counts(model),
                "like_rates": await self.store.like_rates(model),
                "running": self._locks[model].locked(),
                "new_feedback": self._new[model],
            })
        return out


__all__ = ["ENGINE_KEYS", "MODELS", "NothingToRollBack", "TrainOutcome", "Trainer", "TrainerConfig", "TrainerError",
           "load_served",
           "run_job"]
