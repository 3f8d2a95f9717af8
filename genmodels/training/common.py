"""What every training run shares: device choice, seeding, bf16 autocast, and a resumable loop.

Each model's trainer (``training/dcgan.py`` and friends) supplies a ``step(i) -> dict[str, float]`` closure
plus ``state()`` / ``load_state()`` for everything that must survive an interruption (models, optimizers,
RNGs, counters). `run_loop` does the rest: a tqdm progress bar, a resume file every ``save_every`` steps and
on Ctrl-C, and wall-time accounting that adds up across resumes.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import checkpoints
from ..nets import dataclass_from_dict  # noqa: F401  (the trainers' `common.dataclass_from_dict`)


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` means CUDA when present, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("CUDA was requested but no GPU is visible; use --device cpu.")
    return dev


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def cpu_has_native_bf16() -> bool:
    """True on CPUs with bf16 instructions (AVX512-BF16 or AMX), where oneDNN runs bf16 convs fast."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast(device: torch.device, cpu_bf16: bool = False):
    """bf16 autocast on CUDA (no loss scaling needed). On CPU fp32, unless ``cpu_bf16`` is asked for and the
    CPU has native bf16 instructions (elsewhere bf16 is emulated and slower)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if cpu_bf16 and cpu_has_native_bf16():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def set_threads(n: int | None) -> None:
    if n:
        torch.set_num_threads(n)


def file_hash(path: str | os.PathLike) -> str:
    return "sha256:" + checkpoints.sha256_file(path)


def config_dict(cfg) -> dict[str, Any]:
    return asdict(cfg) if is_dataclass(cfg) else dict(cfg)


def rng_state(gen: torch.Generator | None = None) -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "gen": gen.get_state() if gen is not None else None}


def set_rng_state(state: dict[str, Any], gen: torch.Generator | None = None) -> None:
    torch.set_rng_state(state["torch"])
    if gen is not None and state.get("gen") is not None:
        gen.set_state(state["gen"])


@dataclass
class LoopResult:
    steps: int
    wall_time_s: float
    last: dict[str, float] = field(default_factory=dict)
    interrupted: bool = False


def scalars(values: dict[str, float | torch.Tensor]) -> dict[str, float]:
    """Losses as plain floats (reading a CUDA tensor waits for the GPU: call it only when a value is shown)."""
    return {k: float(v) for k, v in values.items()}


def run_loop(
    *,
    total_steps: int,
    step: Callable[[int], dict[str, float | torch.Tensor]],
    state: Callable[[], dict[str, Any]],
    load_state: Callable[[dict[str, Any]], None],
    run_dir: str | os.PathLike,
    resume: bool = True,
    save_every: int = 500,
    desc: str = "train",
    progress: bool = True,
    on_eval: Callable[[int], dict[str, float] | None] | None = None,
    eval_every: int = 0,
) -> LoopResult:
    """Run ``step(i)`` for i in [start, total_steps), resuming from ``run_dir`` when a resume file exists.

    ``state()`` must return a dict of tensors / plain values; the loop adds ``_step`` and ``_wall``.
    ``step(i)`` may return its losses as 0-d tensors still on the device: the loop reads them (a host sync on
    CUDA) only when it shows them, every 25 steps, so the GPU can run ahead of Python in between.
    ``on_eval(i)`` may return a dict with ``{"stop": 1}`` to stop early (used for early stopping).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    start, wall_before = 0, 0.0
    if resume:
        saved = checkpoints.load_resume(run_dir)
        if saved is not None:
            load_state(saved)
            start, wall_before = int(saved["_step"]), float(saved["_wall"])
            if progress:
                tqdm.write(f"{desc}: resuming at step {start}/{total_steps} from {run_dir}")
    else:
        checkpoints.clear_resume(run_dir)

    t0 = time.perf_counter()

    def save(i: int) -> None:
        s = state()
        s["_step"], s["_wall"] = i, wall_before + time.perf_counter() - t0
        checkpoints.save_resume(run_dir, s)

    last: dict[str, float | torch.Tensor] = {}
    bar = tqdm(total=total_steps, initial=start, desc=desc, disable=not progress, dynamic_ncols=True, mininterval=2)
    i = start
    try:
        while i < total_steps:
            last = step(i)
            i += 1
            bar.update(1)
            if progress and (i % 25 == 0 or i == total_steps):
                bar.set_postfix({k: f"{v:.3g}" for k, v in scalars(last).items()}, refresh=False)
            stop = False
            if on_eval is not None and eval_every and (i % eval_every == 0 or i == total_steps):
                ev = on_eval(i) or {}
                stop = bool(ev.pop("stop", 0))
                last.update(ev)
            if i % save_every == 0 or stop:
                save(i)
            if stop:
                break
    except KeyboardInterrupt:
        save(i)
        bar.close()
        tqdm.write(f"{desc}: interrupted at step {i}; run the same command again to resume.")
        return LoopResult(i, wall_before + time.perf_counter() - t0, scalars(last), interrupted=True)
    bar.close()
    save(i)
    return LoopResult(i, wall_before + time.perf_counter() - t0, scalars(last))


def batch_indices(n: int, batch: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    """Indices of a random batch, drawn on the CPU generator (so CPU and GPU runs agree) then moved."""
    return torch.randint(0, n, (batch,), generator=gen).to(device, non_blocking=True)


def base_card(kind: str, cfg, tcfg, data_path: Path, data_stats: dict, result: LoopResult, batch: int,
              device: torch.device) -> dict[str, Any]:
    """The model-card fields every from-scratch image run shares; metrics are filled in by `muse eval`."""
    return {
        "kind": kind,
        "config": config_dict(cfg),
        "train_config": config_dict(tcfg),
        "data": {"path": str(data_path), "sha256": file_hash(data_path), **data_stats},
        "steps": result.steps,
        "images_seen": result.steps * batch,
        "wall_time_s": round(result.wall_time_s, 1),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "last_losses": result.last,
        "complete": not result.interrupted,
        "metrics": {},
        "parent": None,
    }
