"""The async generation engine: the one door between an asyncio program (the bot) and the models.

Why it exists:
- The models are loaded once and kept; each request only pays for inference.
- Inference never runs on the event loop. One worker thread owns the models (torch already spreads one
  forward pass over its intra-op threads, so a second inference thread would only fight it for the cores).
- Concurrent ``/image`` requests are **micro-batched**: while one batch runs, new requests pile up in the
  queue, and the next batch takes all of them at once (up to ``max_batch_images``). On a CPU a DCGAN forward
  pass costs far less per image at batch 64 than at batch 1. An image job names its latents by seeds (a lineage
  of `Generation`s, which the image model turns into latents) or carries them (`Slot.image_from_latents`); both
  share the same forward passes, and only jobs of the same model share one.
- Every job is a **named operation with plain arguments** (`genmodels.operations`: ``slot.run("textvae-en",
  "poem.sample", seed=7)``), never a function, so another backend could run it from its name and arguments, and
  each job names the model it runs on.
- The queue is **bounded** and each user has a **cap** on their share of it. Admission is a cheap, synchronous
  `Engine.reserve` that the bot calls *before* it answers Discord, so a full queue gets a polite ephemeral
  reply instead of a failure, and every accepted job knows how many jobs are ahead of it.
- A model can be **hot-swapped** (`Engine.swap` / `Engine.reload`): the new model is loaded in another thread,
  then the reference is replaced between batches. Jobs already in a batch finish on the old model, queued jobs
  run on the new one, and nothing is dropped.
- **Every server its own lineage** (`genmodels.lineage`). A job names a model key: ``dcgan`` (the base served
  now, kept loaded) or ``dcgan:123:v0002`` (server 123's version 2: its delta applied to the base it was learned
  on). Keyed models are kept in an LRU of ``max_loaded_models`` and loaded again on demand; a promoted version is
  a new key, so nothing is swapped for a server. A batch may hold several servers' keys of one model, yet each
  job is drawn, sifted and labelled by its own key's model, so a request is only ever answered by the model its key
  names; servers' FiLM-only deltas on one base share a single forward pass, each row through its own server's
  class tables (`_render_stacked`). `Engine.lineages` says which key serves which server.

Models are named as `genmodels.registry` names them ("dcgan", "vae", "textvae-en", "textvae-zh"); the older keys
("image", "morph", "poem-en", "poem-zh") are accepted everywhere a key is taken and mean the same models. Limits
of the application (how deep a lineage may go, what fits in a Discord message) are the caller's to enforce.

The engine never imports discord. Every result carries the model version that made it.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import copy
import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from . import deltas, lineage, operations, paths, registry
from .latents import Generation
from .outputs import ImageOutput

log = logging.getLogger(__name__)

IMAGE_MODEL = registry.model_for("image").name  # the model image jobs run on unless they name another ("dcgan")


class EngineBusy(Exception):
    """The job was not queued. ``reason`` is "full" (the whole queue) or "user" (this user's share)."""

    def __init__(self, reason: str, limit: int):
        self.reason, self.limit = reason, limit
        if reason == "user":
            msg = f"You already have {limit} requests waiting; please wait for one to finish."
        else:
            msg = f"Muse is busy right now ({limit} requests waiting); please try again in a minute."
        super().__init__(msg)


class ModelUnavailable(RuntimeError):
    """A model could not be loaded; the message says what to do (train it, re-copy the weights...)."""


@dataclass
class EngineConfig:
    device: str = "cpu"
    models_dir: str | None = None  # models folder; None = $MUSE_MODELS_DIR, then the shipped weights
    max_queue: int = 64  # jobs waiting or running, all users together
    per_user: int = 4  # jobs waiting or running, per user
    max_batch_images: int = 64  # images per DCGAN forward pass
    batching: bool = True  # False: one job per forward pass (the benchmark's baseline)
    batch_window_ms: float = 2.0  # after the first job arrives, wait this long for company
    threads: int | None = None  # torch intra-op threads (None: leave as is; 0: all cores but one, for the loop)
    max_loaded_models: int = 16  # servers' models (and pinned base versions) kept loaded, least recently used out

    @property
    def lineage_root(self) -> Path:
        """Where the servers' lineages live (``<models_dir>/servers/``): the models folder Muse writes to."""
        return Path(self.models_dir) if self.models_dir else paths.models_dir()

    @property
    def root(self) -> str | None:
        """The models folder under its older name (``models_dir``)."""
        return self.models_dir


@dataclass
class Job:
    """One queued operation (`genmodels.operations`): its name, the model it runs on, and its plain arguments."""

    op: str  # an operation's name: "image.grid", "poem.sample", ...
    user: Any
    future: asyncio.Future
    model_key: str  # the model the job runs on (a registry name), loaded before it runs
    args: dict[str, Any] = field(default_factory=dict)
    submitted: float = field(default_factory=time.perf_counter)
    ahead: int = 0  # jobs ahead of this one when it was queued (0: it starts right away)

    @property
    def batched(self) -> bool:
        """An image job: it shares the DCGAN's forward pass with the other image jobs of its model."""
        return self.op in operations.BATCHED

    @property
    def count(self) -> int:
        """Images the job renders (0 for a job that is not batched)."""
        if self.op == "image.latents":
            return len(self.args["latents"])
        if self.op == "image.grid":
            lineage = self.args["lineage"]
            return lineage[-1].count if lineage else 0
        return 0


class Slot:
    """A reserved place in the queue. Submit exactly one job through it; it frees itself when the job ends."""

    def __init__(self, engine: "Engine", user: Any):
        self.engine, self.user = engine, user
        self._used = False
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self.engine._release(self.user)

    def __enter__(self) -> "Slot":
        return self

    def __exit__(self, *exc) -> None:
        if not self._used:
            self.release()

    def run(self, model_key: str, op: str, **args: Any) -> Job:
        """Queue operation ``op`` (`genmodels.operations`) on the model named ``model_key`` with plain ``args``."""
        if op not in operations.NAMES:
            raise KeyError(f"unknown operation {op!r}; the operations are {', '.join(operations.NAMES)}")
        if self._used or self._released:
            raise RuntimeError("a slot takes one job")
        self._used = True
        job = Job(op, self.user, self.engine._loop().create_future(), registry.canonical(model_key), args)
        return self.engine._enqueue(job, self)

    def image(self, theme: str | int, lineage: Sequence[Generation], style: str | int | None = None, *,
              model_key: str = IMAGE_MODEL) -> Job:
        """Render the last grid of ``lineage`` in ``style`` (``image.grid``); the job's result is an `ImageOutput`."""
        return self.run(model_key, "image.grid", theme=theme, style=style, lineage=tuple(lineage))

    def image_from_latents(self, theme: str | int, latents: Any, style: str | int | None = None, *,
                           model_key: str = IMAGE_MODEL) -> Job:
        """Render explicit latents (count, nz) (``image.latents``: crossovers, mutations, stored rows), batched with
        the seed jobs through the same forward pass. The result's ``lineage`` is empty and ``seed`` None."""
        z = torch.as_tensor(latents, dtype=torch.float32).detach().cpu().clone()  # the caller may reuse theirs
        if z.ndim != 2 or not 1 <= len(z) <= self.engine.config.max_batch_images:
            raise ValueError(f"latents must have shape (1 to {self.engine.config.max_batch_images}, nz); "
                             f"got {tuple(z.shape)}")
        return self.run(model_key, "image.latents", theme=theme, style=style, latents=z)


def _default_loader(key: str, cfg: EngineConfig):
    """The newest servable version of ``key`` from ``cfg.models_dir`` (KeyError for a model the registry lacks)."""
    return registry.load(key, cfg.models_dir, device=cfg.device)


def load_server_model(key: registry.ModelKey, cfg: EngineConfig, base_of: Callable[[str], Any]) -> Any:
    """Server ``key.server``'s version ``key.version`` of ``key.name``: its delta file applied to the base it was
    learned on. ``base_of(base key)`` gives a loaded base (the engine's own, so a base is loaded once)."""
    path = lineage.delta_path(cfg.lineage_root, key.name, key.server, key.version)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing (server {key.server}'s {key.name} {registry.tag(key.version)})")
    delta = deltas.load_delta(path)
    base = base_of(key.name)
    if deltas.base_of(base.card) != delta.base:  # learned on an older base version than the one served now
        base = base_of(str(registry.ModelKey(key.name, registry.BASE, int(delta.base["version"]))))
    model = deltas.apply(base, delta)
    model.version = key.full_tag  # "dcgan:123/v0002": every output names the lineage and version that made it
    return model


class Engine:
    """Async front of the models. Create it, ``await start()``, then ``reserve()`` → ``slot.image(...)``.

    ``loaders`` maps a model key to a zero-argument function that returns the model; by default the newest
    version is loaded from ``config.models_dir`` (`genmodels.registry.load`). ``models`` pre-seeds already built
    models (tests, embedding). Keys are registry names; the older aliases are turned into them.
    """

    def __init__(self, config: EngineConfig | None = None, *, loaders: dict[str, Callable[[], Any]] | None = None,
                 models: dict[str, Any] | None = None):
        self.config = config or EngineConfig()
        self._loaders = {registry.canonical(k): v for k, v in (loaders or {}).items()}
        self._models: dict[str, Any] = {registry.canonical(k): v for k, v in (models or {}).items()}
        self._lru: collections.OrderedDict[str, Any] = collections.OrderedDict()  # keyed versions, oldest use first
        self.lineages = lineage.Lineages()  # which key serves which server (the trainer and the bot keep it)
        self._load_errors: dict[str, str] = {}
        self._pending: collections.deque[Job] = collections.deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._busy = 0  # jobs in the running batch
        self._reserved = 0
        self._per_user: collections.Counter = collections.Counter()
        self._load_lock = threading.RLock()  # a server's model loads its base under it
        self.stats = collections.Counter()  # batches, images, jobs, inference_s: for tests and the benchmark
        self.worker_threads: int | None = None  # torch's intra-op threads in the worker, once it has started
        self._owner_loop: asyncio.AbstractEventLoop | None = None

    # ---- lifecycle ------------------------------------------------------------------------------------------

    def _loop(self) -> asyncio.AbstractEventLoop:
        if self._owner_loop is None:
            raise RuntimeError("Engine.start() has not been awaited")
        return self._owner_loop

    async def start(self, preload: Sequence[str] = ()) -> None:
        if self._task is not None:
            return
        self._owner_loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="muse-engine",
                                                               initializer=self._init_worker)
        self._task = asyncio.create_task(self._run(), name="muse-engine")
        for key in preload:
            try:
                await self._loop().run_in_executor(self._executor, self._load_and_warm, key)
            except ModelUnavailable as e:
                log.warning("model %s not loaded: %s", key, e)

    def _load_and_warm(self, key: str) -> None:
        """Load a model and run one tiny forward pass in the worker: the first pass on a thread is slow (kernel
        selection, allocations) and would otherwise land on the first user's request."""
        m = self.model(key)
        if registry.canonical(key) == IMAGE_MODEL:
            m.render(m.latents(0, 1), [0])

    def _init_worker(self) -> None:
        n = self.config.threads
        if n == 0:  # leave one core to the event loop, so acknowledgements stay fast under load
            n = max(1, (os.cpu_count() or 2) - 1)
        if n:
            torch.set_num_threads(n)
        self.worker_threads = torch.get_num_threads()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        for job in self._pending:
            if not job.future.done():
                job.future.set_exception(RuntimeError("Muse is shutting down"))
        self._pending.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    # ---- models ---------------------------------------------------------------------------------------------

    def model(self, key: str) -> Any:
        """The loaded model ``key``, loading it on first use (from a worker thread; never on the event loop).

        A base key (``dcgan``) stays loaded; a versioned key (``dcgan:123:v0002``, ``dcgan:0:v0004``) goes into
        the LRU, which drops its least recently used model past ``max_loaded_models``."""
        key = registry.canonical(key)
        m = self._models.get(key)
        if m is not None:
            return m
        m = self._lru.get(key)
        if m is not None:
            try:
                self._lru.move_to_end(key)
            except KeyError:  # evicted by another load just now: it is still the right model for this job
                pass
            return m
        with self._load_lock:
            m = self._models.get(key) or self._lru.get(key)
            if m is not None:
                return m
            try:
                mk = registry.parse_key(key)
                loader = self._loaders.get(key) or (lambda: self._default_load(mk))
                m = loader()
            except Exception as e:  # CheckpointError, DataError, KeyError, a missing delta...
                self._load_errors[key] = str(e)
                raise ModelUnavailable(f"The {key} model is not available: {e}") from e
            if mk.version is None:
                # a swap that landed while this loaded (on the loop, which never waits for this lock) wins
                m = self._models.setdefault(key, m)
            else:
                self._lru[key] = m
                while len(self._lru) > max(1, self.config.max_loaded_models):
                    old, _ = self._lru.popitem(last=False)
                    self.stats["evicted"] += 1
                    log.debug("unloaded %s (least recently used)", old)
                self.stats["keyed_loads"] += 1
            log.info("loaded %s (%s)", key, getattr(m, "version", "?"))
            return m

    def _default_load(self, key: registry.ModelKey) -> Any:
        if key.version is None:
            return _default_loader(key.name, self.config)
        if key.server == registry.BASE:
            return registry.load(key.name, self.config.models_dir, key.version, self.config.device)
        return load_server_model(key, self.config, self.model)

    def loaded(self, key: str) -> Any | None:
        """The model if it is already loaded, else None (never loads)."""
        key = registry.canonical(key)
        return self._models.get(key) or self._lru.get(key)

    def loaded_keys(self) -> list[str]:
        """The keyed models loaded now, least recently used first (the base models are always loaded)."""
        return list(self._lru)

    def unload(self, key: str) -> None:
        """Drop a keyed model (a deleted server's, say); a later job loads it again if its files are still there."""
        self._lru.pop(registry.canonical(key), None)

    def versions(self) -> dict[str, str]:
        return {k: getattr(m, "version", "?") for k, m in [*self._models.items(), *self._lru.items()]}

    def set_loader(self, key: str, loader: Callable[[], Any]) -> None:
        """How ``key`` is loaded from now on (its next load or `reload`); the trainer pins served versions so."""
        self._loaders[registry.canonical(key)] = loader

    def swap(self, key: str, model: Any) -> Any:
        """Replace a model between batches. Returns the old one. Queued jobs run on the new model."""
        key = registry.canonical(key)
        old = self._models.get(key)
        self._models[key] = model
        log.info("swapped %s: %s -> %s", key, getattr(old, "version", None), getattr(model, "version", "?"))
        return old

    async def reload(self, key: str, loader: Callable[[], Any] | None = None) -> str:
        """Load a new version of ``key`` off the event loop and off the inference thread, then swap it in."""
        key = registry.canonical(key)
        loader = loader or self._loaders.get(key) or (lambda: _default_loader(key, self.config))
        model = await asyncio.to_thread(loader)
        self.swap(key, model)
        return getattr(model, "version", "?")

    # ---- admission ------------------------------------------------------------------------------------------

    @property
    def queued(self) -> int:
        """Jobs reserved, waiting or running."""
        return self._reserved

    def reserve(self, user: Any) -> Slot:
        """Reserve a place for one job of ``user``, or raise `EngineBusy`. Synchronous and instant."""
        if self._per_user[user] >= self.config.per_user:
            raise EngineBusy("user", self.config.per_user)
        if self._reserved >= self.config.max_queue:
            raise EngineBusy("full", self.config.max_queue)
        self._reserved += 1
        self._per_user[user] += 1
        return Slot(self, user)

    def _release(self, user: Any) -> None:
        self._reserved -= 1
        self._per_user[user] -= 1
        if self._per_user[user] <= 0:
            del self._per_user[user]

    def _enqueue(self, job: Job, slot: Slot) -> Job:
        if self._task is None:
            slot.release()
            raise RuntimeError("Engine.start() has not been awaited")
        job.ahead = len(self._pending) + (1 if self._busy else 0)
        job.future.add_done_callback(lambda _f: slot.release())
        self._pending.append(job)
        self._wake.set()
        return job

    # ---- convenience: reserve + submit + await --------------------------------------------------------------

    async def image(self, theme: str | int, count: int = 4, seed: int = 0, *, user: Any = None,
                    lineage: Sequence[Generation] | None = None, style: str | int | None = None,
                    model_key: str = IMAGE_MODEL) -> ImageOutput:
        lineage = lineage or [Generation(seed, count)]
        with self.reserve(user) as slot:
            return await slot.image(theme, lineage, style, model_key=model_key).future

    async def image_from_latents(self, theme: str | int, latents: Any, *, user: Any = None,
                                 style: str | int | None = None, model_key: str = IMAGE_MODEL) -> ImageOutput:
        with self.reserve(user) as slot:
            return await slot.image_from_latents(theme, latents, style, model_key=model_key).future

    async def run(self, model_key: str, op: str, *, user: Any = None, **args: Any) -> Any:
        """Reserve a place, run operation ``op`` on ``model_key`` with ``args``, and return its result."""
        with self.reserve(user) as slot:
            return await slot.run(model_key, op, **args).future

    # ---- the dispatcher -------------------------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
                if self.config.batching and self.config.batch_window_ms > 0:
                    await asyncio.sleep(self.config.batch_window_ms / 1000)
            batch = self._take_batch()
            self._busy = len(batch)
            try:
                if batch[0].batched:
                    outputs = await loop.run_in_executor(self._executor, self._render_batch, batch)
                else:
                    outputs = [await loop.run_in_executor(self._executor, self._call, batch[0])]
            except asyncio.CancelledError:
                for job in batch:
                    if not job.future.done():
                        job.future.cancel()
                raise
            except BaseException as e:  # a whole batch failed (e.g. the model is missing)
                outputs = [e] * len(batch)
            finally:
                self._busy = 0
            for job, out in zip(batch, outputs):
                if job.future.done():
                    continue
                if isinstance(out, BaseException):
                    job.future.set_exception(out)
                else:
                    job.future.set_result(out)
            self.stats["batches"] += 1
            self.stats["jobs"] += len(batch)

    def _take_batch(self) -> list[Job]:
        """The next job, with every queued image job of the same model that fits its forward pass: jobs of the same
        key, and of other versions of the same model (``dcgan``, ``dcgan:123:v0002``, ``dcgan:456:v0001``: the
        servers' lineages). `_render_batch` gives each key its own model and shares forward passes only where the
        models allow it (`_trunk`)."""
        first = self._pending.popleft()
        batch = [first]
        if not first.batched or not self.config.batching:
            return batch
        family = _family(first.model_key)
        images = first.count
        rest: collections.deque[Job] = collections.deque()
        while self._pending:
            job = self._pending.popleft()
            if (job.batched and _family(job.model_key) == family
                    and images + job.count <= self.config.max_batch_images):
                batch.append(job)
                images += job.count
            else:
                rest.append(job)
        self._pending.extendleft(reversed(rest))
        return batch

    # ---- worker-thread side ---------------------------------------------------------------------------------

    def _call(self, job: Job) -> Any:
        try:
            return operations.get(job.op)(self.model(job.model_key), self.model, **job.args)
        except BaseException as e:
            return e

    def _render_batch(self, batch: list[Job]) -> list[Any]:
        """Runs in the worker: the batch's image jobs in as few DCGAN forward passes as their models allow; per-job
        errors stay per job.

        Every job is prepared (its theme and style, its grid's rows drawn with its model's own preference) and
        finished (a grid sifted for near-copies, the output's theme, style and version) by the model its key names.
        Jobs of one model share one pass through it. Jobs of several versions that differ only in their class tables
        (servers' FiLM-only deltas merged on the same base object, and that base: `_trunk`) share one pass too, each
        row looking up its own version's tables (`_render_stacked`); any other version gets a pass of its own."""
        gens: dict[str, Any] = {}  # read once per key: a swap during this batch affects only the next one
        trunks: dict[str, tuple | None] = {}  # and its trunk, once per key, not per job
        failed: dict[str, BaseException] = {}
        for key in dict.fromkeys(job.model_key for job in batch):
            try:
                gens[key] = self.model(key)
                trunks[key] = _trunk(gens[key])
            except BaseException as e:  # a missing model or delta fails its own jobs only
                failed[key] = e
        outs: list[Any] = [None] * len(batch)
        passes: dict[Any, list[tuple]] = {}  # one forward pass each: [(index in batch, job, gen, z, y, s, rows)]
        for k, job in enumerate(batch):
            if job.model_key in failed:
                outs[k] = failed[job.model_key]
                continue
            gen = gens[job.model_key]
            try:
                a = job.args
                lineage = a.get("lineage", ())
                y = gen.theme_index(a["theme"])
                s = gen.style_index(a.get("style"), lineage[0].seed if lineage else None)
                rows = None
                if job.op == "image.grid":
                    # the plain grid goes into the batch; its other candidates wait in case it holds a near-copy
                    rows = gen.grid_rows(lineage, y, s)
                    z = rows[:lineage[-1].count]
                elif a["latents"].shape[1] != gen.cfg.nz:
                    raise ValueError(f"latents have {a['latents'].shape[1]} dimensions; the model takes {gen.cfg.nz}")
                else:
                    z = a["latents"]
            except BaseException as e:
                outs[k] = e
                continue
            trunk = trunks[job.model_key]
            passes.setdefault(("model", id(gen)) if trunk is None else ("trunk", trunk), []).append(
                (k, job, gen, z, y, s, rows))
        for group in passes.values():
            models = list({id(p[2]): p[2] for p in group}.values())  # the distinct versions in this pass
            try:
                t0 = time.perf_counter()
                z = torch.cat([p[3] for p in group])
                if len(models) == 1:
                    ys = [p[4] for p in group for _ in range(len(p[3]))]
                    ss = [p[5] for p in group for _ in range(len(p[3]))]
                    images = models[0].render(z, ys, ss)
                else:
                    which = {id(m): i for i, m in enumerate(models)}
                    cfg = models[0].cfg
                    classes = [which[id(p[2])] * cfg.n_conditions + p[4] + cfg.n_classes * p[5]
                               for p in group for _ in range(len(p[3]))]
                    images = _render_stacked(models, z, classes)
                    self.stats["mixed_passes"] += 1
                self.stats["inference_s"] += time.perf_counter() - t0
            except Exception as e:  # the pass failed: its jobs fail, the batch's other passes stand
                for p in group:
                    outs[p[0]] = e
                continue
            total = len(images)
            self.stats["images"] += total
            self.stats["passes"] += 1
            i = 0
            for k, job, gen, z, y, s, rows in group:
                n = len(z)
                grid = images[i:i + n]
                i += n
                if rows is not None and len(rows) > n:
                    try:  # the plain grid when it holds no near-copy, else a choice among its candidates; one
                        # measure of this pass's images serves both (`sift_grid` starts from them)
                        z, grid = gen.sift_grid(rows, n, y, s, first=grid)
                    except BaseException as e:
                        outs[k] = e
                        continue
                lineage = job.args.get("lineage", ())
                seed = lineage[-1].seed if job.op == "image.grid" else None
                outs[k] = ImageOutput(grid, z, gen.themes[y], y, gen.version, seed=seed,
                                      lineage=lineage, batch_images=total, style=gen.styles[s], style_index=s)
        return outs


_TABLE = re.compile(r"embed\.weight|norms\.\d+\.(gamma|beta)\.weight")  # a DCGAN generator's class tables


def _family(key: str) -> str:
    """The model a key is a version of (``dcgan:123:v0002`` → ``dcgan``); a key that is no model key, itself."""
    try:
        return registry.parse_key(key).name
    except ValueError:
        return key


def _trunk(gen: Any) -> tuple | None:
    """What an image model computes with besides its class tables, by identity: its generator's config, its device
    and every tensor of its generator but the tables the class rows look up (the class embedding and the conditional
    batch norms' scales and shifts). A server's FiLM-only delta (``conv_rank`` 0) merged on a base
    (`genmodels.deltas.merge_dcgan`) shares every one of those tensors with that base object, so the base and all
    such versions have one trunk and can share a forward pass. None for a model that cannot (not an
    `ImageGenerator` of a plain `Generator` in eval mode); such a model renders alone."""
    from .images import ImageGenerator
    from .nets.dcgan import Generator

    G = getattr(gen, "G", None)
    if type(gen) is not ImageGenerator or type(G) is not Generator or G.training:
        return None
    shared = tuple((name, id(t)) for name, t in (*G.named_parameters(), *G.named_buffers())
                   if not _TABLE.fullmatch(name))
    return repr(G.cfg), str(gen.device), shared


@torch.no_grad()
def _render_stacked(models: list[Any], z: torch.Tensor, classes: list[int]) -> list[Any]:
    """One forward pass for rows of several versions with one trunk (`_trunk`): the versions' class tables are
    stacked (version i's rows from ``i · n_conditions``) on a generator that shares every other tensor with the
    first version, and row r looks up row ``classes[r]`` (its version's offset plus its theme × style class). Row
    for row the same arithmetic as that version's own `ImageGenerator.render`."""
    first = models[0]
    stacked = deltas._share(first.G)  # the trunk's modules and tensors; only the tables are replaced
    deltas._put(stacked, "embed.weight", torch.cat([m.G.embed.weight for m in models]))  # (V·n_conditions, nz)
    for i in range(len(first.G.norms)):
        for table in ("gamma", "beta"):
            deltas._put(stacked, f"norms.{i}.{table}.weight",
                        torch.cat([getattr(m.G.norms[i], table).weight for m in models]))  # (V·n_conditions, C_i)
    view = copy.copy(first)  # the first version's render (device, decoding), through the stacked generator
    view.G = stacked
    return view.render(z, classes, None)  # style None: the class index is the row, as `condition` reads it


__all__ = ["Engine", "EngineBusy", "EngineConfig", "Generation", "IMAGE_MODEL", "ImageOutput", "Job",
           "ModelUnavailable", "Slot"]
