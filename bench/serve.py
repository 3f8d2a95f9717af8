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

``--servers N --lru K`` (`_run_servers`): the requests come from servers drawn at random among N, each with its own
v0001 (a FiLM-only delta of random offsets on that generator, written to a temporary models folder), served
through an LRU of K loaded server models; side by side in one run: the same requests all served by the base (the
single-model run), and the servers' requests with one forward pass per model key (the engine's batching before
servers shared passes). It reports the engine's cold loads, evictions and forward passes, and checks that every
answer's footer names the version of the server it came from.
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


async def _phase(gen, *, batching: bool, requests: int, count: int, max_batch: int,
                 guilds: list[int] | None = None, models_dir: str | None = None, lru: int = 16) -> dict:
    """``guilds``: the server each request comes from (None: all from the fake Discord's one guild), each served
    its own v0001 from ``models_dir`` (`_write_deltas`) through an LRU of ``lru``; the result then also counts the
    engine's loads and passes and checks that every answer names its own server's version."""
    from bot.settings import load_settings
    from genmodels.engine import IMAGE_MODEL, Engine, EngineConfig

    from .fakediscord import APP_ID, FakeDiscord, Payloads, started_bot

    fake = await FakeDiscord().start()
    settings = load_settings(env={}, overrides={
        "discord": {"application_id": APP_ID, "test_guild": 0},
        "engine": {"max_queue": max(requests, 1), "per_user": 1, "max_batch_images": max_batch},
        "limits": {"cooldown_rate": 1_000_000}})
    engine = Engine(EngineConfig(max_queue=requests, per_user=1, max_batch_images=max_batch, batching=batching,
                                 threads=settings.engine.threads,  # as `muse run` would
                                 models_dir=models_dir, max_loaded_models=lru),
                     models={IMAGE_MODEL: gen})
    bot = await started_bot(settings, engine=engine, preload=(IMAGE_MODEL,))  # loaded and warmed, as at start-up
    for server in sorted(set(guilds or ())) if models_dir else ():  # after start-up, which reads the store's
        engine.lineages.set(IMAGE_MODEL, server, 1)  # (empty) lineages: each server is served its own v0001
    theme = gen.themes[0]
    payloads = [Payloads(user_id=10_000 + i).command("image", {"theme": theme, "count": count, "seed": i})
                for i in range(requests)]
    if guilds is not None:
        payloads = [_from_guild(p, g) for p, g in zip(payloads, guilds)]
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
        versions = [_version_of(r) for r in results]
    finally:
        lags = await lag.stop()
        await bot.close()
        await fake.stop()
    wall = t_end - t0
    out = {
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
    if guilds is not None:
        from genmodels import registry

        # every answer's footer names the lineage that made it: the server the request came from, or the base
        want = [registry.full_tag(f"{IMAGE_MODEL}:{g}", 1) if models_dir else gen.version for g in guilds]
        out.update({
            "forward_passes": engine.stats["passes"], "mixed_passes": engine.stats["mixed_passes"],
            "cold_loads": engine.stats["keyed_loads"], "evictions": engine.stats["evicted"],
            "answers_from_own_server": sum(v == w for v, w in zip(versions, want)),
            "answers_from_another_model": [(g, v) for g, v, w in zip(guilds, versions, want) if v != w][:5]})
    return out


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


# ---- many servers: each its own delta on the one base ----------------------------------------------------------

FIRST_SERVER = 1_200_000_000_000_000_000  # the servers' ids: snowflake-sized, like Discord's guild ids


def _from_guild(payload: dict, guild: int) -> dict:
    """An INTERACTION_CREATE payload of the fake Discord's guild, moved to server ``guild``."""
    payload["guild_id"] = str(guild)
    payload["channel"]["guild_id"] = str(guild)
    payload["authorizing_integration_owners"] = {"0": str(guild)}
    return payload


def _version_of(result) -> str | None:
    """The model version an answer's embed footer names (``dcgan:123/v0001``, ``dcgan/v0005``), or None."""
    from bot.render import parse_footer

    embeds = result.json.get("embeds") or [{}]
    return (parse_footer((embeds[0].get("footer") or {}).get("text")) or {}).get("model")


def _write_deltas(gen, root: Path, servers: list[int], std: float = 0.05, seed: int = 0) -> dict:
    """Server ``s``'s v0001 of the DCGAN for every ``s``: a delta of the config the trainer's delta fine-tunes
    write (`DeltaFinetuneConfig`: FiLM offsets, one row per class, no convolution offsets) holding random offsets
    (normal, ``std``) on ``gen``, saved as a fine-tune saves one (`genmodels.deltas.save_delta`; no preference)."""
    import torch

    from genmodels import deltas, lineage
    from genmodels.feedback.finetune import DeltaFinetuneConfig

    cfg = DeltaFinetuneConfig().dcgan
    g = torch.Generator().manual_seed(seed)
    sizes = []
    for server in servers:
        module = deltas.DCGANDelta(gen.cfg, cfg)
        with torch.no_grad():
            for p in module.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * std)
        path = lineage.delta_path(root, "dcgan", server, 1)
        path.parent.mkdir(parents=True, exist_ok=True)
        deltas.save_delta(path, deltas.make_delta("dcgan", gen.card, cfg, module, {"method": "bench"}))
        sizes.append(path.stat().st_size)
    return {"config": vars(cfg), "offset_std": std, "numbers": sum(p.numel() for p in module.parameters()),
            "file_bytes": max(sizes)}


def _cold_load_ms(gen, root: Path, servers: list[int]) -> dict:
    """Milliseconds to load one server's version cold, as the engine's LRU does on a miss (read the delta file,
    check its base, merge it into the base's tables: `genmodels.engine.load_server_model`), on the engine worker's
    thread count (``threads = 0``: all cores but one)."""
    import torch

    from genmodels.engine import EngineConfig, load_server_model
    from genmodels.registry import ModelKey

    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))  # this thread's intra-op pool, like the worker's
    cfg = EngineConfig(models_dir=str(root))
    load_server_model(ModelKey("dcgan", servers[0], 1), cfg, lambda _key: gen)  # the first read pays for imports
    ms = []
    for server in servers:
        t = time.perf_counter()
        load_server_model(ModelKey("dcgan", server, 1), cfg, lambda _key: gen)
        ms.append(1000 * (time.perf_counter() - t))
    return {"p50": round(pct(ms, 50), 2), "p99": round(pct(ms, 99), 2), "n": len(ms)}


class _OnePassPerKey:
    """The engine as it was before servers shared forward passes: every model key its own pass (no model has a
    trunk to share, `genmodels.engine._trunk`). The baseline of the mixed passes, in the same run."""

    def __enter__(self):
        from genmodels import engine

        self._trunk, engine._trunk = engine._trunk, lambda gen: None
        return self

    def __exit__(self, *exc):
        from genmodels import engine

        engine._trunk = self._trunk


async def _engine_only_servers(gen, keys: list[str], *, count: int, max_batch: int, models_dir: str | None,
                               lru: int) -> dict:
    """``keys[i]`` serves request i, straight into the engine: inference and cold loads alone, without Discord."""
    from genmodels.engine import IMAGE_MODEL, Engine, EngineConfig, Generation

    engine = Engine(EngineConfig(max_queue=len(keys), per_user=len(keys), max_batch_images=max_batch, threads=0,
                                 models_dir=models_dir, max_loaded_models=lru), models={IMAGE_MODEL: gen})
    await engine.start(preload=(IMAGE_MODEL,))
    try:
        t0 = time.perf_counter()
        await asyncio.gather(*(engine.run(k, "image.grid", theme=gen.themes[0], style=None, user=i,
                                          lineage=(Generation(i, count),)) for i, k in enumerate(keys)))
        wall = time.perf_counter() - t0
    finally:
        await engine.close()
    return {"wall_s": round(wall, 3), "images_per_s": round(len(keys) * count / wall, 1),
            "batches": engine.stats["batches"], "forward_passes": engine.stats["passes"],
            "cold_loads": engine.stats["keyed_loads"], "evictions": engine.stats["evicted"]}


async def _run_servers(requests: int, count: int, models: str | None, max_batch: int, servers: int, lru: int,
                       seed: int = 0) -> dict:
    """``requests`` concurrent /image interactions from servers drawn at random among ``servers``, each served its
    own delta through an LRU of ``lru``; beside them, the same requests all served by the base (the single-model
    run) and the servers' requests with one forward pass per key, in the same run."""
    import random
    import tempfile

    from genmodels.engine import IMAGE_MODEL

    load0 = os.getloadavg()[0]  # the box is shared: say how busy it was
    gen, kind = await asyncio.to_thread(_generator, models)
    ids = [FIRST_SERVER + i for i in range(servers)]
    rng = random.Random(seed)
    guilds = [rng.choice(ids) for _ in range(requests)]
    with tempfile.TemporaryDirectory(prefix="muse-bench-servers-") as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        delta = await asyncio.to_thread(_write_deltas, gen, root, ids)
        written = time.perf_counter() - t
        cold = await asyncio.to_thread(_cold_load_ms, gen, root, ids[:32])
        kw = dict(batching=True, requests=requests, count=count, max_batch=max_batch, guilds=guilds)
        await _phase(gen, **{**kw, "requests": min(8, requests), "guilds": guilds[:8]},
                     models_dir=tmp, lru=lru)  # warm-up, not reported: the process's first requests pay for imports
        single = await _phase(gen, **kw)
        mixed = await _phase(gen, **kw, models_dir=tmp, lru=lru)
        with _OnePassPerKey():
            per_key = await _phase(gen, **kw, models_dir=tmp, lru=lru)
        keys = [f"{IMAGE_MODEL}:{g}:v0001" for g in guilds]
        ekw = dict(count=count, max_batch=max_batch, lru=lru)
        inf = {"single_model": await _engine_only_servers(gen, [IMAGE_MODEL] * requests, models_dir=None, **ekw),
               "servers": await _engine_only_servers(gen, keys, models_dir=tmp, **ekw)}
        with _OnePassPerKey():
            inf["servers_one_pass_per_key"] = await _engine_only_servers(gen, keys, models_dir=tmp, **ekw)
    for name in ("servers", "servers_one_pass_per_key"):
        inf[f"{name}_vs_single_model"] = round(inf[name]["images_per_s"] / inf["single_model"]["images_per_s"], 2)
    return {
        "model": gen.version, "weights": kind, "requests": requests, "images_per_request": count,
        "servers": servers, "servers_hit": len(set(guilds)), "max_loaded_models": lru,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1),
        "load_average_1min": {"start": round(load0, 2), "end": round(os.getloadavg()[0], 2)},
        "delta": {**delta, "written_s": round(written, 2)}, "cold_load_ms": cold,
        "single_model": single, "servers_mixed": mixed, "servers_one_pass_per_key": per_key,
        "throughput_vs_single_model": round(mixed["requests_per_s"] / single["requests_per_s"], 2),
        "throughput_one_pass_per_key_vs_single_model": round(per_key["requests_per_s"] / single["requests_per_s"], 2),
        "inference_only": inf,
        "targets": {"ack_p99_under_100ms": mixed["ack_ms"]["p99"] < 100,
                    "loop_lag_p99_under_50ms": mixed["loop_lag_ms"]["p99"] < 50,
                    "every_answer_from_its_own_server": mixed["answers_from_own_server"] == requests},
    }


def run(requests: int = 64, count: int = 4, models: str | Path | None = None, max_batch: int = 64,
        servers: int = 0, lru: int = 16) -> dict:
    """``servers`` > 0: the requests come from that many servers, each with its own delta (`_run_servers`)."""
    if requests < 1 or not 1 <= count <= 4:
        raise ValueError("--requests must be at least 1 and --count between 1 and 4.")
    if servers < 0 or lru < 1:
        raise ValueError("--servers must be 0 or more and --lru at least 1.")
    if servers:
        return asyncio.run(_run_servers(requests, count, str(models) if models else None, max_batch, servers, lru))
    return asyncio.run(_run(requests, count, str(models) if models else None, max_batch))
