"""The async engine on its own: batching, off-loop inference, admission, queue positions, hot swap."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from genmodels import checkpoints
from genmodels.engine import Engine, EngineBusy, EngineConfig, Generation, ModelUnavailable
from genmodels.latents import lineage_latents
from genmodels.images import ImageGenerator

from museharness import run


class Slow:
    """A real generator whose forward pass is made slower (and observed): how long it runs, on which thread."""

    def __init__(self, gen: ImageGenerator, delay: float = 0.0):
        self.gen, self.delay = gen, delay
        self.calls: list[tuple[int, str, float]] = []  # (batch size, thread name, start time)

    def __getattr__(self, name):
        return getattr(self.gen, name)

    def render(self, z, labels, styles=None):
        self.calls.append((len(z), threading.current_thread().name, time.perf_counter()))
        time.sleep(self.delay)
        return self.gen.render(z, labels, styles)


def test_micro_batching_matches_one_by_one(bot_models: Path):
    gen = ImageGenerator.load(bot_models)
    slow = Slow(gen, delay=0.05)

    async def main():
        engine = Engine(EngineConfig(max_batch_images=64), models={"image": slow})
        await engine.start()
        try:
            outs = await asyncio.gather(*(engine.image("squares", 2, seed=s, user=s) for s in range(8)))
        finally:
            await engine.close()
        return engine, outs

    engine, outs = run(main())
    # 8 jobs of 2 images went through fewer forward passes than jobs, all on the worker thread
    assert engine.stats["jobs"] == 8 and engine.stats["batches"] < 8
    assert max(n for n, _, _ in slow.calls) >= 4
    assert all(name.startswith("muse-engine") for _, name, _ in slow.calls)
    for s, out in enumerate(outs):
        ref = gen.generate("squares", count=2, seed=s)
        assert out.version == ref.version == "dcgan/v0001" and out.theme == "squares"
        assert torch.equal(out.latents, ref.latents)
        a = np.stack([np.asarray(im) for im in out.images]).astype(int)
        b = np.stack([np.asarray(im) for im in ref.images]).astype(int)
        assert a.shape == (2, 64, 64, 4) and np.abs(a - b).max() <= 2  # same pixels up to float rounding


def test_inference_runs_off_the_event_loop(bot_models: Path):
    slow = Slow(ImageGenerator.load(bot_models), delay=0.3)

    async def main():
        engine = Engine(models={"image": slow})
        await engine.start()
        gaps: list[float] = []
        done = asyncio.Event()

        async def tick():
            while not done.is_set():
                t = time.perf_counter()
                await asyncio.sleep(0.01)
                gaps.append(time.perf_counter() - t)

        ticker = asyncio.create_task(tick())
        out = await engine.image("circles", 1, seed=3)
        done.set()
        await ticker
        await engine.close()
        return out, gaps

    out, gaps = run(main())
    assert len(out.images) == 1
    assert len(gaps) >= 10 and max(gaps) < 0.2  # the loop kept ticking through a 0.3 s forward pass


def test_admission_caps_positions_and_release(bot_models: Path):
    slow = Slow(ImageGenerator.load(bot_models), delay=0.2)

    async def main():
        engine = Engine(EngineConfig(max_queue=3, per_user=2, batching=False), models={"image": slow})
        await engine.start()
        a = engine.reserve("alice")
        first = a.image("circles", [Generation(1, 1)])
        await asyncio.sleep(0.05)  # the first job is now running
        b = engine.reserve("alice")
        with pytest.raises(EngineBusy) as user_cap:
            engine.reserve("alice")
        second = b.image("circles", [Generation(2, 1)])
        c = engine.reserve("bob")
        with pytest.raises(EngineBusy) as full:
            engine.reserve("carol")
        third = c.image("circles", [Generation(3, 1)])
        positions = [first.ahead, second.ahead, third.ahead]
        await asyncio.gather(first.future, second.future, third.future)
        after = engine.queued
        with engine.reserve("alice"):  # a reserved slot that is never used is given back
            pass
        await engine.close()
        return user_cap.value, full.value, positions, after, engine.queued

    user_cap, full, positions, after, final = run(main())
    assert user_cap.reason == "user" and "2 requests" in str(user_cap)
    assert full.reason == "full" and "try again" in str(full)
    assert positions == [0, 1, 2]
    assert after == 0 and final == 0


def test_hot_swap_drops_nothing(bot_models: Path, tmp_path: Path):
    root = tmp_path / "models"
    shutil.copytree(bot_models / "dcgan", root / "dcgan")
    tensors, card = checkpoints.load_version(root, "dcgan")
    card = {k: v for k, v in card.items() if k not in ("name", "version", "created", "sha256")}
    checkpoints.save_version(root, "dcgan", tensors, card)  # v0002: same weights, a new version
    slow = Slow(ImageGenerator.load(root, version=1), delay=0.05)

    async def main():
        engine = Engine(EngineConfig(batching=False), models={"image": slow})
        await engine.start()
        jobs = [asyncio.create_task(engine.image("circles", 1, seed=s, user=s)) for s in range(10)]
        await asyncio.sleep(0.12)  # a few jobs done, the rest queued
        version = await engine.reload("image", lambda: ImageGenerator.load(root))
        outs = await asyncio.gather(*jobs)
        await engine.close()
        return version, outs

    version, outs = run(main())
    versions = [o.version for o in outs]
    assert version == "dcgan/v0002"
    assert len(outs) == 10 and all(len(o.images) == 1 for o in outs)
    assert versions[0] == "dcgan/v0001" and versions[-1] == "dcgan/v0002"
    assert versions == sorted(versions)  # the swap happened between batches, once


def test_lineage_rederives_variations(bot_models: Path):
    gen = ImageGenerator.load(bot_models)
    root = gen.generate("circles", count=4, seed=11)
    child = gen.variations(root.latents[2], "circles", count=4, seed=99)
    z = gen.lineage_latents([Generation(11, 4, 2), Generation(99, 4)], "circles")  # the engine's way, per theme
    assert torch.allclose(z, child.latents, atol=1e-6)
    assert gen.near_copy_pixels is not None  # this version keeps near-copies out of its grids...
    plain = ImageGenerator(gen.G, {k: v for k, v in gen.card.items() if k != "sampling"})  # ... as older ones do not
    z = lineage_latents(plain.latents, [Generation(11, 4, 2), Generation(99, 4)])
    assert torch.allclose(z, plain.variations(plain.generate("circles", 4, seed=11).latents[2], "circles", 4,
                                              seed=99).latents, atol=1e-6)
    with pytest.raises(ValueError, match="generations deep"):
        lineage_latents(gen.latents, [Generation(1, 4, 0)] * 8, max_depth=7)


def test_a_job_can_carry_latents_instead_of_seeds(bot_models: Path):
    gen = ImageGenerator.load(bot_models)
    slow = Slow(gen)

    async def main():
        engine = Engine(EngineConfig(max_batch_images=64), models={"image": slow})
        await engine.start()
        try:
            by_seed = await engine.image("circles", 4, seed=11, user=1)  # each alone: one forward pass of 4
            given = await engine.image_from_latents("circles", gen.lineage_latents([Generation(11, 4)], "circles"),
                                                user=1)
            with pytest.raises(ValueError, match="latents must have shape"), engine.reserve(2) as slot:
                slot.image_from_latents("circles", torch.zeros(16))
            assert engine.queued == 0  # the refused job gave its place back
            with pytest.raises(ValueError, match="dimensions"):
                await engine.image_from_latents("circles", torch.zeros(2, gen.cfg.nz + 1), user=2)
            # queued together, seed and latent jobs share one forward pass
            both = await asyncio.gather(engine.image("squares", 2, seed=3, user=3),
                                        engine.image_from_latents("squares", gen.lineage_latents([Generation(3, 2)], "squares"),
                                                                        user=4))
        finally:
            await engine.close()
        return by_seed, given, both

    by_seed, given, both = run(main())
    assert torch.equal(given.latents, by_seed.latents)
    assert [im.tobytes() for im in given.images] == [im.tobytes() for im in by_seed.images]  # byte-identical
    assert given.seed is None and given.lineage == () and by_seed.seed == 11
    assert (given.theme, given.theme_index, given.version) == (by_seed.theme, by_seed.theme_index, by_seed.version)
    assert both[0].batch_images == both[1].batch_images == 4
    a = np.stack([np.asarray(im) for im in both[0].images]).astype(int)
    b = np.stack([np.asarray(im) for im in both[1].images]).astype(int)
    assert np.abs(a - b).max() <= 2  # same pixels up to float rounding (different rows of one batch)


def test_missing_model_is_reported(tmp_path: Path):
    async def main():
        engine = Engine(EngineConfig(models_dir=str(tmp_path)))
        await engine.start()
        try:
            with pytest.raises(ModelUnavailable, match="dcgan"):
                await engine.image("animals", 1, seed=1)
            assert engine.queued == 0
        finally:
            await engine.close()

    run(main())


def test_the_engine_batches_plain_grids_and_sifts_only_those_with_a_near_copy(bot_models: Path):
    from genmodels.data.emoji import coarse_pixels
    from genmodels.images import GRID_CANDIDATES, _as_model

    base = ImageGenerator.load(bot_models)
    rows = base.latents(5, GRID_CANDIDATES * 4)
    px = coarse_pixels(_as_model(base.render(rows, [0] * len(rows))))
    d = np.linalg.norm(px[:, None] - px[None], axis=-1)[np.triu_indices(len(px), 1)]
    strict = ImageGenerator(base.G, {**base.card, "sampling": {"near_copy_pixels": float(np.median(d))}})
    slow = Slow(strict)

    async def main():
        engine = Engine(EngineConfig(max_batch_images=64), models={"image": slow})
        await engine.start()
        try:
            return await asyncio.gather(*(engine.image("circles", 4, seed=sd, user=sd) for sd in (5, 6, 7)))
        finally:
            await engine.close()

    outs = run(main())
    for sd, out in zip((5, 6, 7), outs):  # what the library draws for the seed, sifted or not
        want = strict.generate("circles", 4, seed=sd)
        assert torch.equal(out.latents, want.latents)
        a = np.stack([np.asarray(im) for im in out.images]).astype(int)
        assert np.abs(a - np.stack([np.asarray(im) for im in want.images]).astype(int)).max() <= 2
    assert not torch.equal(outs[0].latents, rows[:4])  # seed 5's plain grid holds a near-copy: it was sifted
    assert slow.calls[0][0] == 12  # the three plain grids went through one forward pass together


def test_jobs_are_named_operations_and_batch_only_with_their_own_model(bot_models: Path):
    """A job names an operation and the model it runs on, with plain arguments; image jobs share a forward pass
    only with jobs of the same model, so two models never answer each other's requests."""
    gen = ImageGenerator.load(bot_models)
    a, b = Slow(gen, delay=0.05), Slow(ImageGenerator(gen.G, {**gen.card, "version": 2}), delay=0.05)

    async def main():
        engine = Engine(EngineConfig(max_batch_images=64), models={"dcgan": a, "other": b})
        await engine.start()
        try:
            with pytest.raises(KeyError, match="unknown operation"):
                with engine.reserve(1) as slot:
                    slot.run("dcgan", "poem.rhyme")
            outs = await asyncio.gather(*(
                engine.run("dcgan" if s % 2 else "other", "image.grid", theme="squares",
                           lineage=(Generation(s, 2),), user=s) for s in range(8)))
            version = await engine.run("other", "model.version")
        finally:
            await engine.close()
        return outs, version

    outs, version = run(main())
    assert version == b.version != a.version
    assert [o.version for o in outs] == [a.version if s % 2 else b.version for s in range(8)]
    assert sum(n for n, _, _ in a.calls) == 8 and sum(n for n, _, _ in b.calls) == 8  # 4 jobs of 2 each
    assert max(n for n, _, _ in a.calls) >= 4  # batched, among their own
