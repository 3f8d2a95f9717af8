"""Every server its own taste, on tiny models through the real store, trainer and engine: two servers' votes train
two lineages (deltas on the base), a request is only ever answered by its own server's version (also across LRU
evictions), a server's rollback, reset or crashed fine-tune leaves the others alone, lineages survive a restart,
and busy servers take turns with quiet ones."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np

from genmodels import lineage
from genmodels.engine import Engine, EngineConfig
from genmodels.feedback.store import FeedbackStore
from genmodels.feedback.trainer import TasteConfig, Trainer, run_job

from test_trainer import _config, _rate_images, running, world  # noqa: F401 - world is a fixture


async def _rate(engine, store, guild: int, n: int = 12, first_message: int = 0, likes_odd: bool = True) -> None:
    """n rated 1-image results in ``guild`` (message ids from ``first_message``): the odd ones liked and the even
    ones disliked, or the other way round."""
    for i in range(n):
        out = await engine.image(i % 3, count=1, seed=100 + i)
        mid = first_message + i
        await store.record_result(kind="image", model="dcgan", model_version="v0001", seed=100 + i,
                                  latent=out.latents.numpy(), params={"theme_index": out.theme_index, "count": 1},
                                  message_id=mid, channel_id=guild * 10, guild_id=guild, requester_id=1)
        await store.add_reaction(mid, 700 + i, "👍" if (i % 2 == 1) == likes_odd else "👎")


def _pixels(out) -> np.ndarray:
    return np.stack([np.asarray(im) for im in out.images])


def test_two_servers_train_two_lineages_and_never_serve_each_other(world):
    models, data_dir, db = world

    async def main():
        cfg = _config(data_dir, tolerance=10.0)
        async with running(models, db, cfg) as (engine, store, trainer, reports):
            await _rate(engine, store, guild=1, first_message=1000)
            await _rate(engine, store, guild=2, first_message=2000, likes_odd=False)  # the opposite taste
            one = await trainer.train("dcgan", 1, trigger="test")
            two = await trainer.train("dcgan", 2, trigger="test")
            assert (one.outcome, one.version, one.server) == ("promoted", "v0001", 1), one
            assert (two.outcome, two.version) == ("promoted", "v0001"), two
            # each learned from its own server's votes only, and the base did not move
            assert one.feedback_used == two.feedback_used == 12
            assert await store.served_version("dcgan") == "v0001"
            assert engine.lineages.key_for("image", None, 1) == "dcgan:1:v0001"
            assert engine.lineages.key_for("image", None, 2) == "dcgan:2:v0001"
            assert engine.lineages.key_for("image", None, None) == "dcgan"  # a DM: the base
            assert engine.lineages.key_for("image", None, 3) == "dcgan"  # a server without a version of its own
            # a delta, not a copy: ≤ 10% of the base's bytes
            base_bytes = sum(p.stat().st_size for p in (models / "dcgan" / "v0001").glob("*.safetensors"))
            for server in (1, 2):
                path = lineage.delta_path(models, "dcgan", server, 1)
                assert path.is_file() and path.stat().st_size <= 0.10 * base_bytes
            # through the engine's queue: each key answers with its own lineage's version
            outs = await asyncio.gather(*[engine.run(k, "image.grid", theme=0, style=None,
                                                     lineage=(engine_generation(3, 2),), user=i)
                                          for i, k in enumerate(["dcgan", "dcgan:1:v0001", "dcgan:2:v0001"] * 3)])
            assert [o.version for o in outs[:3]] == ["dcgan/v0001", "dcgan:1/v0001", "dcgan:2/v0001"]
            keys = ["dcgan", "dcgan:1:v0001", "dcgan:2:v0001"]
            expected = {k: _pixels(o) for k, o in zip(keys, outs[:3])}
            assert all(np.array_equal(_pixels(o), expected[keys[i % 3]]) for i, o in enumerate(outs))
            assert not np.array_equal(expected["dcgan:1:v0001"], expected["dcgan"])
            assert not np.array_equal(expected["dcgan:1:v0001"], expected["dcgan:2:v0001"])

            # a server's rollback takes it back to the base and leaves the other server alone
            assert await trainer.rollback("dcgan", 1, actor=42) == "base v0001"
            assert engine.lineages.key_for("image", None, 1) == "dcgan"
            assert engine.lineages.key_for("image", None, 2) == "dcgan:2:v0001"
            (change, *_) = await store.model_changes(1)
            assert (change["action"], change["actor_id"]) == ("rollback", 42)

        # a restart serves the lineages the store records
        engine2 = Engine(EngineConfig(models_dir=str(models), max_loaded_models=1))
        await engine2.start(preload=("image",))
        store2 = await FeedbackStore.open(db)
        trainer2 = Trainer(store2, engine2, cfg)
        try:
            await trainer2.start()
            assert engine2.lineages.key_for("image", None, 1) == "dcgan"
            assert engine2.lineages.key_for("image", None, 2) == "dcgan:2:v0001"
            # an LRU of one, switching keys on every request: every answer is the model its key names
            await trainer2.train("dcgan", 1, trigger="test")  # server 1's v0002
            keys = ["dcgan:1:v0002", "dcgan:2:v0001"] * 3
            for k in keys:
                got = await engine2.run(k, "image.grid", theme=0, style=None, lineage=(engine_generation(3, 2),))
                assert got.version == k.replace(":v", "/v")
                want = expected.get(k)
                if want is not None:
                    assert np.array_equal(_pixels(got), want)
            assert engine2.stats["evicted"] >= len(keys) - 2 and len(engine2.loaded_keys()) == 1
            # a reset that deletes the server's data leaves nothing of it, and nothing of the other changes
            out = await trainer2.reset(2, delete_data=True, actor=7)
            assert out["deleted"]["results"] == 12
            assert engine2.lineages.key_for("image", None, 2) == "dcgan"
            assert not (models / lineage.SERVERS_DIR / "2").exists()
            assert await store2.feedback("dcgan", server=2) == []
            assert len(await store2.feedback("dcgan", server=1)) == 12
            assert engine2.lineages.key_for("image", None, 1) == "dcgan:1:v0002"
        finally:
            await trainer2.close()
            await store2.close()
            await engine2.close()

    asyncio.run(main())


def engine_generation(seed: int, count: int):
    from genmodels.latents import Generation

    return Generation(seed, count)


def _quick_refusal(spec: dict) -> dict:
    """A stand-in fine-tune that takes a moment and is refused (the fairness test times only the order)."""
    time.sleep(0.5)
    return {"version": spec["version"], "passed": False, "reason": "test", "metrics": {}, "parent_metrics": {},
            "preference": None, "warning": None}


class _QuickTrainer(Trainer):
    job = staticmethod(_quick_refusal)


def test_busy_servers_take_turns_with_quiet_ones(world):
    """Server 1 votes all the time, server 2 once: server 2's run comes before server 1's second."""
    models, data_dir, db = world

    async def main():
        cfg = _config(data_dir, min_feedback=3, taste=TasteConfig(min_interval_minutes=0, check_seconds=0.1))
        async with running(models, db, cfg, trainer_class=_QuickTrainer) as (engine, store, trainer, _):
            await _rate(engine, store, guild=1, n=9, first_message=1000)
            await _rate(engine, store, guild=2, n=3, first_message=2000)
            for _ in range(3):
                trainer.notify("dcgan", 1)  # server 1's run starts
            for _ in range(3):
                trainer.notify("dcgan", 2)  # server 2 waits for the worker
            for _ in range(6):
                trainer.notify("dcgan", 1)  # server 1 again, while its first run is running
            deadline = time.monotonic() + 60
            while len([r for r in await store.runs(limit=10) if r["outcome"] != "running"]) < 3:
                assert time.monotonic() < deadline, await store.runs(limit=10)
                await asyncio.sleep(0.1)
            order = [r["server"] for r in reversed(await store.runs(limit=10))]
            assert order[:3] == [1, 2, 1], order

    asyncio.run(main())


def test_a_server_s_votes_train_the_base_only_when_the_owner_shares_them(world):
    models, data_dir, db = world

    async def main():
        async with running(models, db, _config(data_dir), trainer_class=_QuickTrainer) as (engine, store, trainer, _):
            await _rate(engine, store, guild=1, first_message=1000)
            private = await trainer.train("dcgan", trigger="test")  # the base: DMs only, and there are none
            trainer.notify("dcgan", 1)
            counted = {k: n for k, n in trainer._new.items() if n}
        shared = _config(data_dir, taste=TasteConfig(share_with_base=True))
        async with running(models, db, shared, trainer_class=_QuickTrainer) as (engine, store, trainer, _):
            base = await trainer.train("dcgan", trigger="test")
            trainer.notify("dcgan", 1)
            counted_shared = dict(trainer._new)
        return private, counted, base, counted_shared

    private, counted, base, counted_shared = asyncio.run(main())
    assert (private.outcome, private.reason) == ("skipped", "no feedback yet")
    assert counted == {("dcgan", 1): 1}  # toward the server's own lineage only
    assert (base.outcome, base.feedback_used, base.server) == ("refused", 12, 0)  # the stand-in job refuses
    assert counted_shared[("dcgan", 1)] >= 1 and counted_shared[("dcgan", 0)] == 1


def _crash_on_server_2(spec: dict) -> dict:
    """The real fine-tune, except that server 2's dies (as an out-of-memory or a bug in one server's data would)."""
    if int(spec.get("server") or 0) == 2:
        raise RuntimeError("a stand-in crash of server 2's fine-tune")
    return run_job(spec)


class _CrashingTrainer(Trainer):
    job = staticmethod(_crash_on_server_2)


def test_a_server_s_crashed_run_leaves_the_others_untouched(world):
    models, data_dir, db = world

    async def main():
        async with running(models, db, _config(data_dir, tolerance=10.0), trainer_class=_CrashingTrainer) as (
                engine, store, trainer, reports):
            await _rate(engine, store, guild=1, first_message=1000)
            await _rate(engine, store, guild=2, first_message=2000)
            one = await trainer.train("dcgan", 1, trigger="test")
            two = await trainer.train("dcgan", 2, trigger="test")
            again = await trainer.train("dcgan", 1, trigger="test")  # the worker serves the others after a crash
            keys = [engine.lineages.key_for("image", None, g) for g in (1, 2)]
            served = (await store.served_version("dcgan"), await store.served_version("dcgan", 2))
            return one, two, again, keys, served, list(reports)

    one, two, again, keys, served, reports = asyncio.run(main())
    assert (one.outcome, one.version) == ("promoted", "v0001")
    assert two.outcome == "failed" and "stand-in crash" in (two.reason or ""), two
    assert (again.outcome, again.version) == ("promoted", "v0002")
    assert keys == ["dcgan:1:v0002", "dcgan"]  # server 2 is still served the base, server 1 its newest
    assert served == ("v0001", None)  # the base did not move, and server 2 has no version
    assert not lineage.delta_path(models, "dcgan", 2, 1).exists()
    assert any("server 2" in r and "fail" in r.lower() for r in reports), reports


def test_old_delta_files_are_pruned_and_a_rollback_skips_them(world):
    models, data_dir, db = world

    async def main():
        cfg = _config(data_dir, tolerance=10.0, taste=TasteConfig(keep_versions=1))
        async with running(models, db, cfg) as (engine, store, trainer, _):
            await _rate(engine, store, guild=1, first_message=1000)
            for _ in range(3):  # v0001, v0002, v0003: each promoted, the one before retired
                assert (await trainer.train("dcgan", 1, trigger="test")).outcome == "promoted"
            files = sorted(p.name for p in lineage.delta_path(models, "dcgan", 1, 1).parent.iterdir())
            rows = [(v["version"], v["status"]) for v in await store.model_versions("dcgan", 1)]
            back = [await trainer.rollback("dcgan", 1), await trainer.rollback("dcgan", 1)]
            return files, rows, back

    files, rows, back = asyncio.run(main())
    assert files == ["v0002.safetensors", "v0003.safetensors"]  # the served one and the newest served before it
    assert rows == [("v0001", "retired"), ("v0002", "retired"), ("v0003", "served")]  # the store keeps every row
    assert back == ["v0002", "base v0001"]  # v0001's file is gone, so the second rollback goes to the base
