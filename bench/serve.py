"""``muse bench serve``: N concurrent ``/image`` interactions through the real discord.py, offline.

The same path as the end-to-end tests: real INTERACTION_CREATE payloads go into the bot, its HTTP goes to the
loopback fake Discord (`bench.fakediscord.FakeDiscord`). Each request is timed from the moment its payload is handed
to discord.py:

- ``ack``: until the fake Discord receives the interaction callback (the defer, type 5);
- ``result``: until it receives the edit that carries the grid PNG;
- event-loop lag: how late a 5 ms ticker wakes up while the requests are served (p99, max);
- throughput: requests and images per second, with micro-batching and with batch size 1, in the same run;
  end to end (Discord round trips and PNG encoding included) and for inference alone;
- where the time went: process CPU, event-loop-thread CPU and forward-pass seconds per phase, and the upper
  bound on the end-to-end speedup that the work batching cannot touch sets
  (``speedup_bound_if_inference_were_free``);
- how much batching could win inside the forward pass at all: the generator's FLOPs per image, the GFLOP/s it
  reaches at each batch size, and this CPU's fp32 matmul peak on the same threads. Their ratio at the request's
  own batch size bounds the inference speedup (``inference_speedup_bound_from_batching``).

The generator is the newest trained ``dcgan`` when there is one; otherwise a freshly initialised generator of the
default architecture (the same compute per image) stands in, and the JSON says so.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from pathlib import Path

from .timing import LoopLag, pct



def _generator(models: str | None):
    from genmodels.checkpoints import CheckpointError
    from genmodels.images import ImageGenerator

    try:
        return ImageGenerator.load(models), "trained"
    except CheckpointError:
        import torch

        from genmodels.nets.dcgan import DCGANConfig, Generator

        torch.manual_seed(0)
        card = {"name": "dcgan-untrained", "version": 0, "config": {}, "data": {}}
        return ImageGenerator(Generator(DCGANConfig()), card), "untrained (no dcgan model found; same compute)"


async def _phase(gen, *, batching: bool, requests: int, count: int, max_batch: int) -> dict:
    from bot.settings import load_settings
    from genmodels.engine import IMAGE_MODEL, Engine, EngineConfig

    from .fakediscord import APP_ID, FakeDiscord, Payloads, started_bot

    fake = await FakeDiscord().start()
    settings = load_settings(env={}, overrides={
        "discord": {"application_id": APP_ID, "test_guild": 0},
        "engine": {"max_queue": max(requests, 1), "per_user": 1, "max_batch_images": max_batch},
        "limits": {"cooldown_rate": 1_000_000}})
    engine = Engine(EngineConfig(max_queue=requests, per_user=1, max_batch_images=max_batch, batching=batching,
                                 threads=settings.engine.threads),  # as `muse run` would
                     models={IMAGE_MODEL: gen})
    bot = await started_bot(settings, engine=engine, preload=(IMAGE_MODEL,))  # loaded and warmed, as at start-up
    theme = gen.themes[0]
    payloads = [Payloads(user_id=10_000 + i).command("image", {"theme": theme, "count": count, "seed": i})
                for i in range(requests)]
    lag = LoopLag().start()
    await asyncio.sleep(0.02)
    try:
        sent: dict[str, float] = {}
        cpu0, loop0 = time.process_time(), time.thread_time()  # this coroutine runs on the event-loop thread
        t0 = time.perf_counter()
        for p in payloads:
            sent[p["token"]] = time.perf_counter()
            bot._connection.parse_interaction_create(p)
        results = await asyncio.gather(*(fake.result_of(p["token"], timeout=600) for p in payloads))
        t_end = max(r.t for r in results)
        cpu, loop_cpu = time.process_time() - cpu0, time.thread_time() - loop0
        acks = {r.token: r.t for r in fake.requests if r.path.endswith("/callback")}
        ack_ms = [1000 * (acks[tok] - s) for tok, s in sent.items()]
        res_ms = [1000 * (r.t - sent[r.token]) for r in results]
        ok = sum(1 for r in results if "files[0]" in r.files)
    finally:
        lags = await lag.stop()
        await bot.close()
        await fake.stop()
    wall = t_end - t0
    return {
        "requests": requests, "ok": ok, "wall_s": round(wall, 3),
        "requests_per_s": round(requests / wall, 2), "images_per_s": round(requests * count / wall, 1),
        "ack_ms": {"p50": round(pct(ack_ms, 50), 1), "p99": round(pct(ack_ms, 99), 1), "max": round(max(ack_ms), 1)},
        "result_ms": {"p50": round(pct(res_ms, 50), 1), "p99": round(pct(res_ms, 99), 1)},
        "loop_lag_ms": {"p99": round(1000 * pct(lags, 99), 2), "max": round(1000 * max(lags, default=0), 2),
                        "mean": round(1000 * statistics.fmean(lags), 2) if lags else 0.0},
        "batches": engine.stats["batches"], "mean_batch_images": round(engine.stats["images"] / max(1, engine.stats["batches"]), 1),
        # Where the time went: CPU seconds of the whole process and of the event-loop thread alone (discord.py,
        # aiohttp on both ends, the store), and the wall seconds of the generator's forward passes.
        "cpu_s": {"process": round(cpu, 3), "event_loop": round(loop_cpu, 3),
                  "inference": round(engine.stats["inference_s"], 3)},
    }


async def _engine_only(gen, *, batching: bool, requests: int, count: int, max_batch: int) -> dict:
    """The same requests straight into the engine: inference alone, without Discord, PNG encoding or HTTP."""
    from genmodels.engine import IMAGE_MODEL, Engine, EngineConfig

    engine = Engine(EngineConfig(max_queue=requests, per_user=requests, max_batch_images=max_batch,
                                 batching=batching, threads=0), models={IMAGE_MODEL: gen})
    await engine.start(preload=(IMAGE_MODEL,))
    try:
        t0 = time.perf_counter()
        await asyncio.gather(*(engine.image(gen.themes[0], count, seed=i, user=i) for i in range(requests)))
        wall = time.perf_counter() - t0
    finally:
        await engine.close()
    return {"wall_s": round(wall, 3), "images_per_s": round(requests * count / wall, 1),
            "batches": engine.stats["batches"]}


def _flop_per_image(gen) -> float:
    """Floating-point operations of one generator forward pass per image (torch's own FLOP counter)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    z, y = torch.randn(4, gen.cfg.nz), torch.zeros(4, dtype=torch.long)
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        gen.G(z, y)
    return counter.get_total_flops() / 4


def _matmul_peak_gflops(n: int = 1024, reps: int = 8) -> float:
    """fp32 GFLOP/s of a large square matmul on the current thread count: what this CPU's best kernel reaches."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        best = min(best, (time.perf_counter() - t) / reps)
    return 2 * n**3 / best / 1e9


def _forward_costs(gen, threads: int, sizes=(1, 4, 16, 64, 256), images: int = 256) -> dict:
    """Milliseconds per image of the bare generator forward pass by batch size, on the engine's thread count;
    in fp32 (what Muse serves) and, on CPUs with native bf16, under bf16 autocast for comparison. Best of 3."""
    import torch

    from genmodels.training.common import cpu_has_native_bf16

    torch.set_num_threads(threads)  # this thread's intra-op pool, like the engine's worker
    out: dict[str, dict[str, float]] = {}
    for precision in ("fp32", "bf16") if cpu_has_native_bf16() else ("fp32",):
        row = {}
        for n in (n for n in sizes if n <= images):
            z, y = torch.randn(n, gen.cfg.nz), torch.zeros(n, dtype=torch.long)
            reps = max(1, images // n)
            best = float("inf")
            with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16"):
                gen.G(z, y)  # warm
                for _ in range(3):
                    t = time.perf_counter()
                    for _ in range(reps):
                        gen.G(z, y)
                    best = min(best, (time.perf_counter() - t) / (reps * n))
            row[str(n)] = round(1000 * best, 3)
        out[precision] = row
    return out


async def _run(requests: int, count: int, models: str | None, max_batch: int) -> dict:
    gen, kind = await asyncio.to_thread(_generator, models)
    batched = await _phase(gen, batching=True, requests=requests, count=count, max_batch=max_batch)
    single = await _phase(gen, batching=False, requests=requests, count=count, max_batch=max_batch)
    inf_b = await _engine_only(gen, batching=True, requests=requests, count=count, max_batch=max_batch)
    inf_1 = await _engine_only(gen, batching=False, requests=requests, count=count, max_batch=max_batch)
    import torch

    threads = max(1, (os.cpu_count() or 2) - 1)  # as the engine
    sizes = tuple(sorted({1, count, 4, 16, 64, 256}))

    def profile():  # one worker thread for all three: the intra-op thread count is set per thread
        return (_forward_costs(gen, threads, sizes, images=max(16, min(256, requests * count))),
                _flop_per_image(gen), _matmul_peak_gflops())

    forward, flop, peak = await asyncio.to_thread(profile)
    gflops = {b: round(flop / (ms / 1000) / 1e9, 1) for b, ms in forward["fp32"].items()}
    share = min(1.0, single["cpu_s"]["inference"] / max(1e-9, single["cpu_s"]["process"]))

    # Batching can only shorten the forward passes. Everything else (the event loop's discord.py and HTTP work,
    # PNG encoding, the store) is the same in both modes. Even if batched inference cost nothing, the batched
    # run would still need that work: at least its CPU seconds spread over every core, and at least the event
    # loop's share, which runs on one thread. Single wall time over that floor bounds the end-to-end speedup.
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    rest = batched["cpu_s"]["process"] - batched["cpu_s"]["inference"]
    floor = max(batched["cpu_s"]["event_loop"], rest / cores, 1e-9)
    return {
        "model": gen.version, "weights": kind, "torch_threads": torch.get_num_threads(),
        "requests": requests, "images_per_request": count,
        "batched": batched, "batch_size_1": single,
        "speedup": round(batched["requests_per_s"] / single["requests_per_s"], 2),
        "inference_only": {"batched": inf_b, "batch_size_1": inf_1,
                           "speedup": round(inf_b["images_per_s"] / inf_1["images_per_s"], 2)},
        "cores": cores,
        "forward_ms_per_image_by_batch": forward,
        # Batching can only remove per-call overhead. If the forward pass at the request's own batch size already
        # runs near the CPU's matmul peak, there is little overhead left to remove.
        "forward_gflop_per_image": round(flop / 1e9, 4),
        "forward_gflops_fp32_by_batch": gflops,
        "matmul_peak_gflops": round(peak, 1),
        "inference_speedup_bound_from_batching": round(peak / gflops[str(count)], 2),
        # Amdahl: only the inference share of the CPU can shrink, and by at most the bound above.
        "speedup_bound_from_batching_end_to_end": round(1 / ((1 - share) + share * gflops[str(count)] / peak), 2),
        "speedup_bound_if_inference_were_free": round(single["wall_s"] / floor, 2),
        "inference_share_of_cpu_batch_size_1": round(share, 2),
        "targets": {"ack_under_100ms": batched["ack_ms"]["max"] < 100 and single["ack_ms"]["max"] < 100,
                    "loop_lag_p99_under_50ms": batched["loop_lag_ms"]["p99"] < 50,
                    "batched_at_least_2x": batched["requests_per_s"] >= 2 * single["requests_per_s"],
                    "inference_batched_at_least_2x": inf_b["images_per_s"] >= 2 * inf_1["images_per_s"]},
    }


def run(requests: int = 64, count: int = 4, models: str | Path | None = None, max_batch: int = 64) -> dict:
    if requests < 1 or not 1 <= count <= 4:
        raise ValueError("--requests must be at least 1 and --count between 1 and 4.")
    return asyncio.run(_run(requests, count, str(models) if models else None, max_batch))
