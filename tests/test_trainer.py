"""The feedback trainer end to end on tiny models: fine-tune in the worker process, gate, promote with a hot swap
under load, refuse, fail safely, roll back, serve the stored version after a restart, and stop a fine-tune in
flight (the worker process ends, the run is recorded interrupted, runs left by a dead process are cleaned up)."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from genmodels import checkpoints
from genmodels.engine import Engine, EngineConfig
from genmodels.feedback.finetune import FinetuneConfig, poem_lines
from genmodels.feedback.gate import decide, poem_distinct2
from genmodels.nets.preference import LatentPreference, PreferenceConfig
from genmodels.feedback.store import FeedbackStore
from genmodels.feedback.trainer import Trainer, TrainerConfig, TrainerError, save_candidate
from genmodels.images import ImageGenerator


@pytest.fixture()
def world(tiny_models: Path, shapes_npz: Path, tmp_path: Path):
    """A private copy of the tiny models (the trainer writes new versions there) and the data folder."""
    models = tmp_path / "models"
    shutil.copytree(tiny_models, models)
    return models, shapes_npz.parent, tmp_path / "muse.sqlite3"


def _config(data_dir: Path, **kw) -> TrainerConfig:
    steps = kw.pop("steps", 3)
    ft = FinetuneConfig(steps=steps, text_steps=steps, batch=8, lr_scale=kw.pop("lr_scale", 0.25))
    return TrainerConfig(min_feedback=kw.pop("min_feedback", 10**6), every_hours=0, data_dir=str(data_dir),
                         finetune=ft, **kw)


async def _rate_images(engine: Engine, store: FeedbackStore, n: int = 12, guild_id: int | None = None) -> None:
    """n posted 1-image results, liked when the image is reddish, disliked otherwise, by n members; in DMs (which
    train the base) unless ``guild_id`` names a server (which trains that server's lineage)."""
    for i in range(n):
        out = await engine.image(i % 3, count=1, seed=100 + i)
        mid = 5000 + i
        await store.record_result(kind="image", model="dcgan", model_version=out.version.split("/")[1], seed=100 + i,
                                  latent=out.latents.numpy(), params={"theme_index": out.theme_index, "count": 1},
                                  message_id=mid, channel_id=1, guild_id=guild_id, requester_id=1)
        a = np.asarray(out.images[0], dtype=np.float32)
        await store.add_reaction(mid, 700 + i, "👍" if a[..., 0].mean() >= a[..., 2].mean() or i % 2 else "👎")


@contextlib.asynccontextmanager
async def running(models: Path, db: Path, cfg: TrainerConfig, preload=("image",), trainer_class=Trainer):
    """An engine, a store and a started trainer on them, closed again even when the test fails."""
    engine = Engine(EngineConfig(models_dir=str(models)))
    await engine.start(preload=preload)
    store = await FeedbackStore.open(db)
    reports: list[str] = []

    async def report(text: str) -> None:
        reports.append(text)

    trainer = trainer_class(store, engine, cfg, report=report)
    try:
        await trainer.start()
        yield engine, store, trainer, reports
    finally:
        await trainer.close()
        await store.close()
        await engine.close()


def test_promotion_hot_swaps_under_load_then_rollback_and_restart(world):
    models, data_dir, db = world

    async def main():
        async with running(models, db, _config(data_dir, tolerance=10.0)) as (engine, store, trainer, reports):
            assert await store.served_version("dcgan") == "v0001"
            await _rate_images(engine, store)

            # Requests keep flowing while the worker trains and the new version is swapped in.
            load = [asyncio.create_task(engine.image(i % 3, count=2, seed=i, user=i)) for i in range(24)]
            result = await trainer.train("dcgan", trigger="test")
            load += [asyncio.create_task(engine.image(i % 3, count=2, seed=i, user=100 + i)) for i in range(24)]
            outs = await asyncio.gather(*load)
            assert all(len(o.images) == 2 for o in outs)
            assert {o.version for o in outs} <= {"dcgan/v0001", "dcgan/v0002"} and outs[-1].version == "dcgan/v0002"

            assert (result.outcome, result.version, result.served) == ("promoted", "v0002", "v0002")
            assert engine.loaded("image").version == "dcgan/v0002"
            assert engine.loaded("image").preference is not None  # the latent preference ships inside the version
            card = checkpoints.read_card(checkpoints.version_dir(models, "dcgan", 2))
            assert card["parent"] == "dcgan/v0001" and card["gate"]["passed"] and "precision" in card["metrics"]
            assert await store.served_version("dcgan") == "v0002"
            assert (await store.last_run("dcgan"))["outcome"] == "promoted"
            assert reports and "promoted" in reports[-1]

            # Rollback: v0001 again, v0002 marked; nothing older to go back to after that.
            assert await trainer.rollback("dcgan") == "v0001"
            assert engine.loaded("image").version == "dcgan/v0001"
            with pytest.raises(TrainerError):
                await trainer.rollback("dcgan")

        # A restart serves what the store says (v0001), not the newest folder on disk (v0002).
        async with running(models, db, _config(data_dir)) as (engine, store, trainer, _):
            assert engine.loaded("image").version == "dcgan/v0001"
            out = await engine.image(0, count=1, seed=1)
            assert out.version == "dcgan/v0001"

    asyncio.run(main())


def test_gate_refusal_keeps_the_served_model_and_the_candidate(world):
    models, data_dir, db = world

    async def main():
        # A learning rate 2000× too high wrecks the VAE (finite weights, but its held-out negative ELBO blows
        # up): the gate refuses the candidate, and everything stays as it was.
        cfg = _config(data_dir, tolerance=0.15, lr_scale=2000.0)
        async with running(models, db, cfg, preload=("morph",)) as (engine, store, trainer, reports):
            rng = np.random.default_rng(0)
            for i in range(4):
                await store.record_result(kind="morph", model="vae", model_version="v0001",
                                          latent=rng.standard_normal((3, 8)).astype(np.float32), message_id=40 + i)
                await store.add_reaction(40 + i, 80 + i, "👍")
            result = await trainer.train("vae")
            assert result.outcome == "refused" and result.served == "v0001" and "neg_elbo_nats rose" in result.reason
            assert engine.loaded("morph").version == "vae/v0001"
            versions = {v["version"]: v["status"] for v in await store.model_versions("vae")}
            assert versions == {"v0001": "served", "v0002": "refused"}
            assert checkpoints.list_versions(models, "vae") == [1, 2]  # every version is kept, with its card
            assert "refused" in reports[-1]

    asyncio.run(main())


def test_nan_in_training_fails_safely(world):
    models, data_dir, db = world

    async def main():
        async with running(models, db, _config(data_dir, lr_scale=1e30, steps=4)) as (engine, store, trainer, reports):
            await _rate_images(engine, store)
            result = await trainer.train("dcgan")
            assert result.outcome == "failed" and result.served == "v0001"
            assert "non-finite" in result.reason or "nan" in result.reason.lower()
            assert engine.loaded("image").version == "dcgan/v0001"
            assert (await store.last_run("dcgan"))["outcome"] == "failed"
            assert "failed" in reports[-1]
            # the trainer still works afterwards
            assert (await trainer.train("vae")).outcome == "skipped"

    asyncio.run(main())


def test_feedback_the_method_cannot_use_is_skipped_not_failed(world):
    models, data_dir, db = world

    async def main():
        async with running(models, db, _config(data_dir), preload=()) as (engine, store, trainer, reports):
            await store.record_result(kind="morph", model="vae", model_version="v0001",
                                      latent=np.zeros((3, 8), np.float32), message_id=77)
            await store.add_reaction(77, 5, "👎")  # the VAE only learns from liked morphs
            result = await trainer.train("vae")
            assert result.outcome == "skipped" and "no liked morphs" in result.reason and not reports
            assert (await store.last_run("vae"))["outcome"] == "skipped"

    asyncio.run(main())


def test_enough_feedback_wakes_the_trainer(world):
    models, data_dir, db = world

    async def main():
        async with running(models, db, _config(data_dir, tolerance=10.0, min_feedback=3)) as (engine, store, trainer, _):
            await _rate_images(engine, store, n=3)
            for _ in range(3):
                trainer.notify("dcgan")
            for _ in range(600):
                if (await store.last_run("dcgan") or {}).get("outcome") not in (None, "running"):
                    break
                await asyncio.sleep(0.1)
            assert (await store.last_run("dcgan"))["trigger"] == "feedback"

    asyncio.run(main())


def test_text_finetune_promotes(world, tmp_path):
    from genmodels.data.poems import build_poem_dataset
    from tests.e2e.conftest import EN_LINES
    from textmodels import save_text_model

    models, data_dir, db = world
    save_text_model(models, "en", EN_LINES)  # (the e2e fixtures may have saved one before: take the newest)
    parent = checkpoints.list_versions(models, "textvae-en")[-1]
    text = tmp_path / "poems.txt"
    text.write_text("\n\n".join("\n".join(EN_LINES[i:i + 3]) for i in range(0, len(EN_LINES), 3)), "utf-8")
    poems_dir = tmp_path / "data"
    build_poem_dataset("en", text, poems_dir)

    async def main():
        async with running(models, db, _config(poems_dir, tolerance=10.0), preload=()) as (engine, store, trainer, _):
            for i in range(6):
                poem = (await engine.run("poem-en", "poem.sample", seed=i, lines=2)).text
                await store.record_result(kind="poem", model="textvae-en", model_version=f"v{parent:04d}", seed=i, content=poem,
                                          message_id=900 + i)
                await store.add_reaction(900 + i, 70 + i, "👍" if i % 2 else "👎")
            result = await trainer.train("textvae-en")
            assert result.outcome == "promoted", result.reason
            assert engine.loaded("poem-en").version == f"textvae-en/v{parent + 1:04d}"
            assert (checkpoints.version_dir(models, "textvae-en", parent + 1) / "tokenizer.json").exists()
            assert isinstance((await engine.run("poem-en", "poem.sample", seed=1)).text, str)


    asyncio.run(main())


def test_gate_decisions():
    parent = {"precision": 0.8, "recall": 0.5, "theme_diversity": 4.0}
    assert decide("dcgan", {"precision": 0.79, "recall": 0.46, "theme_diversity": 3.9}, parent, 0.1).passed
    d = decide("dcgan", {"precision": 0.8, "recall": 0.3, "theme_diversity": 4.0}, parent, 0.1)
    assert not d.passed and "recall fell" in d.reasons[0]
    # every theme collapsing to look-alikes is refused even when recall holds
    d = decide("dcgan", {"precision": 0.8, "recall": 0.5, "theme_diversity": 2.0}, parent, 0.1)
    assert not d.passed and "theme_diversity fell" in d.reasons[0]
    # drift: fine against the parent, too far from the base the chain started from
    assert not decide("dcgan", {"precision": 0.8, "recall": 0.44, "theme_diversity": 4.0},
                      {"precision": 0.8, "recall": 0.46, "theme_diversity": 4.0}, 0.1, base=parent).passed
    assert not decide("textvae", {"neg_elbo": float("nan"), "distinct2": 0.7}, {"neg_elbo": 40, "distinct2": 0.7}, 0.1).passed
    assert not decide("vae", {"neg_elbo_nats": 3000, "classifier_accuracy_reconstructions": 0.7},
                      {"neg_elbo_nats": 2300, "classifier_accuracy_reconstructions": 0.7}, 0.1).passed
    # a negative reference (the VAE's neg-ELBO of continuous pixels): the tolerance is a share of its size
    parent = {"neg_elbo_nats": -1884.6, "classifier_accuracy_reconstructions": 0.7}
    assert decide("vae", {"neg_elbo_nats": -1700.0, "classifier_accuracy_reconstructions": 0.7}, parent, 0.15).passed
    d = decide("vae", {"neg_elbo_nats": -1472.4, "classifier_accuracy_reconstructions": 0.7}, parent, 0.15)
    assert not d.passed and "allowed: -1601.910" in d.reasons[0], d.reasons


def test_preference_tilts_sampling_deterministically():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(400, 8, generator=g)
    y = (z[:, 0] > 0.5).float()  # the community likes one direction
    pref = LatentPreference.fit(z, y, cfg=PreferenceConfig(candidates=4))
    a = pref.sample(500, torch.Generator().manual_seed(1))
    b = pref.sample(500, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert float((a[:, 0] > 0.5).float().mean()) > 0.6 > float(y.mean())
    again = LatentPreference.from_version(pref.tensors(), {"preference": pref.card()})
    assert torch.equal(again.sample(5, torch.Generator().manual_seed(2)), pref.sample(5, torch.Generator().manual_seed(2)))
    assert LatentPreference.from_version({}, {}) is None


def test_poem_helpers():
    assert poem_lines("床前明月光，疑是地上霜。\n举头望明月，低头思故乡。", "zh") == ["床前明月光", "疑是地上霜", "举头望明月", "低头思故乡"]
    assert poem_lines(" a b \n\n c d ", "en") == ["a b", "c d"]
    assert poem_distinct2(["a b a b"], "en") == pytest.approx(2 / 3)


# ---- stopping during a fine-tune -------------------------------------------------------------------------------

def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _cpu_seconds(pid: int) -> float:
    """CPU time process ``pid`` has used so far (user + system), 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _kill_leftovers(pids) -> None:
    """Never leave a worker behind, whatever the code under test did."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


async def _wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)
    return value


def test_close_during_a_finetune_ends_the_worker_and_records_it_interrupted(world):
    models, data_dir, db = world
    # ten million steps: this fine-tune would run for days; close() must not wait for it
    cfg = _config(data_dir, steps=10_000_000, tolerance=10.0)
    pids: list[int] = []

    async def main():
        async with running(models, db, cfg) as (engine, store, trainer, reports):
            await _rate_images(engine, store, n=4)
            before = {p.pid for p in multiprocessing.active_children()}  # e.g. another test's, still ending
            task = asyncio.create_task(trainer.train("dcgan", trigger="test"))
            workers = await _wait_for(lambda: [p for p in multiprocessing.active_children() if p.pid not in before],
                                      60, "the worker process")
            pids.extend(p.pid for p in workers)
            # Importing torch and the models costs the worker about 2 s of CPU; at 5 s it is fine-tuning.
            await _wait_for(lambda: _cpu_seconds(pids[0]) > 5, 90, "the worker to get into the fine-tune")
            assert all(_alive(pid) for pid in pids) and not task.done()
            assert (await store.last_run("dcgan"))["outcome"] == "running"

            t0 = time.monotonic()
            await asyncio.wait_for(trainer.close(), 30)
            assert time.monotonic() - t0 < 10
            assert not any(_alive(pid) for pid in pids), "the worker outlived Trainer.close()"
            out = await asyncio.wait_for(task, 10)
            assert (out.outcome, out.served) == ("interrupted", "v0001")
            run = await store.last_run("dcgan")
            assert run["outcome"] == "interrupted" and run["finished_at"] is not None and "stopped" in run["detail"]["reason"]
            assert not reports  # nothing to report to admins: Muse is going down
            with pytest.raises(TrainerError, match="shutting down"):
                await trainer.train("dcgan")
        assert ImageGenerator.load(str(models)).version == "dcgan/v0001"

    try:
        asyncio.run(asyncio.wait_for(main(), 240))
    finally:
        _kill_leftovers(pids)


def _save_candidate_then_wait(spec: dict) -> dict:
    """A worker job that writes its candidate exactly as `run_job` does, then stays "inside the gate"."""
    parent_root = Path(spec["root"])
    tensors, card = checkpoints.load_version(parent_root, spec["model"], spec["parent"])
    keep = {k: v for k, v in card.items() if k not in ("name", "version", "created", "sha256")}
    save_candidate(spec, checkpoints.version_dir(parent_root, spec["model"], spec["parent"]), tensors,
                   {**keep, "parent": f"{spec['model']}/v{spec['parent']:04d}"})
    time.sleep(120)
    raise AssertionError("the worker should have been stopped long ago")


class _TrainerStuckInTheGate(Trainer):
    job = staticmethod(_save_candidate_then_wait)


def test_close_deletes_a_candidate_the_gate_never_judged(world):
    models, data_dir, db = world
    pids: list[int] = []
    cand = checkpoints.version_dir(models, "dcgan", 2)

    async def main():
        async with running(models, db, _config(data_dir), trainer_class=_TrainerStuckInTheGate) as (
                engine, store, trainer, _):
            await _rate_images(engine, store, n=2)
            task = asyncio.create_task(trainer.train("dcgan"))
            await _wait_for(lambda: (cand / checkpoints.CARD_FILE).exists(), 60, "the candidate's card")
            pids.extend(trainer.worker_pids())
            assert pids and all(_alive(p) for p in pids)
            # written, not judged: no default loader serves it
            assert checkpoints.read_card(cand)["gate"] == {"passed": None}
            assert ImageGenerator.load(str(models)).version == "dcgan/v0001"

            await asyncio.wait_for(trainer.close(), 30)
            assert not any(_alive(p) for p in pids)
            assert not cand.exists() and checkpoints.list_versions(models, "dcgan") == [1]
            run = await store.last_run("dcgan")
            assert run["outcome"] == "interrupted" and run["candidate_version"] is None
            assert "v0002 deleted" in run["detail"]["candidate"]
            assert (await asyncio.wait_for(task, 10)).outcome == "interrupted"

    try:
        asyncio.run(asyncio.wait_for(main(), 240))
    finally:
        _kill_leftovers(pids)


def test_runs_left_running_by_an_earlier_process_are_interrupted_at_start(world):
    models, data_dir, db = world

    async def main():
        # An earlier Muse started a run and died (kill -9): its row says 'running'.
        store = await FeedbackStore.open(db)
        stale = await store.start_run("dcgan", "schedule")
        await store.close()
        async with running(models, db, _config(data_dir), preload=()) as (_, store, _, _):
            run = (await store.runs("dcgan"))[0]
            assert (run["id"], run["outcome"]) == (stale, "interrupted") and run["finished_at"] is not None

        # Again, this time with the candidate it had written before the gate could judge it.
        store = await FeedbackStore.open(db)
        tensors, card = checkpoints.load_version(models, "vae", 1)
        spec = {"models_dir": str(models), "model": "vae", "version": 2}
        save_candidate(spec, checkpoints.version_dir(models, "vae", 1), tensors, {"config": card["config"]})
        stale = await store.start_run("vae", "feedback", candidate_version="v0002")
        await store.close()
        async with running(models, db, _config(data_dir), preload=()) as (_, store, _, _):
            assert (await store.last_run("vae"))["outcome"] == "interrupted"
            assert checkpoints.list_versions(models, "vae") == [1]
            assert await store.served_version("vae") == "v0001"

    asyncio.run(asyncio.wait_for(main(), 120))


def _sleeping_job(spec: dict) -> dict:
    """A worker job that says it started, then sleeps."""
    Path(spec["marker"]).write_text("started")
    time.sleep(120)
    return {}


def test_the_worker_dies_with_the_bot_process(tmp_path):
    """Even a bot killed without any cleanup (here: os._exit) leaves no fine-tune running (Linux)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux only")
    marker = tmp_path / "started"
    script = textwrap.dedent(f"""
        import asyncio, os, sys, time
        sys.path[:0] = {[str(Path(__file__).parent), str(Path(__file__).parents[1])]!r}
        from genmodels.feedback.trainer import _Worker
        from test_trainer import _sleeping_job

        async def main():
            w = _Worker(_sleeping_job, {{"model": "dcgan", "marker": {str(marker)!r}}})
            print(w.pid, flush=True)
            deadline = time.monotonic() + 60
            while not os.path.exists({str(marker)!r}) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            os._exit(0)  # no atexit, no Trainer.close: as if killed

        asyncio.run(main())
    """)
    bot = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=120)
    assert bot.returncode == 0, bot.stderr
    pid = int(bot.stdout.split()[0])
    try:
        assert marker.exists(), "the worker never started"
        deadline = time.monotonic() + 15
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(pid), "the worker outlived the bot"
    finally:
        _kill_leftovers([pid])


def test_a_text_fine_tune_keeps_its_version_s_own_objective():
    from genmodels.training.textvae import RECIPES, version_recipe

    base = RECIPES["zh"][1]
    # a version trained with `--kl-target 16` fine-tunes against 16, not the recipe's threshold
    card = {"recipe": {**{k: getattr(base, k) for k in ("word_dropout", "bow_weight")}, "kl_target": 16.0,
                       "vae_steps": 6000}}
    assert version_recipe(card, "zh").kl_target == 16.0 != base.kl_target
    assert version_recipe(card, "zh").vae_steps == base.vae_steps  # only the objective comes from the card
    assert version_recipe({}, "zh") == base  # a card without its recipe: the language's


def test_a_text_fine_tune_says_when_it_replays_other_poems_than_its_version_learned_from(tmp_path):
    from genmodels.data.poems import build_poem_dataset, load_poem_dataset
    from genmodels.feedback.finetune import replay_mismatch

    src = tmp_path / "poems.txt"
    src.write_text("\n\n".join(f"the moon upon the sea {i}\nthe night is long and deep" for i in range(12)), "utf-8")
    ds = load_poem_dataset(build_poem_dataset("en", src, tmp_path / "data", seed=0))
    card = {"name": "textvae-en", "version": 4, "data": {"sha256": ds.sha256}}
    assert replay_mismatch(card, ds) is None
    assert replay_mismatch({"name": "textvae-en", "version": 4}, ds) is None  # a card that does not say
    line = replay_mismatch({**card, "data": {"sha256": "other"}}, ds)
    assert "textvae-en/v0004" in line and "muse prepare poems" in line and str(ds.path) in line


# ---- a candidate that passes the gate but cannot be loaded ---------------------------------------------------

def _passing_candidate_whose_weights_rot(spec: dict) -> dict:
    """A worker job: the candidate (a copy of its parent) is written and passes the gate, then its weights are
    damaged on disk before the bot's process loads it (a disk fault, a botched copy between gate and swap)."""
    parent_root = Path(spec["root"])
    tensors, card = checkpoints.load_version(parent_root, spec["model"], spec["parent"])
    keep = {k: v for k, v in card.items() if k not in ("name", "version", "created", "sha256")}
    vdir = save_candidate(spec, checkpoints.version_dir(parent_root, spec["model"], spec["parent"]), tensors,
                          {**keep, "parent": f"{spec['model']}/v{spec['parent']:04d}"})
    metrics = {"precision": 0.5}
    checkpoints.update_card(vdir, metrics=metrics, gate={"passed": True, "reasons": []})
    weights = vdir / checkpoints.MODEL_FILE
    data = bytearray(weights.read_bytes())
    data[-64:] = bytes(b ^ 0xFF for b in data[-64:])  # the tensors' bytes, not the header: only the checksum knows
    weights.write_bytes(bytes(data))
    return {"version": spec["version"], "passed": True, "reason": "passed: precision 0.5", "metrics": metrics,
            "parent_metrics": metrics, "preference": None, "warning": None}


def _passing_candidate(spec: dict) -> dict:
    """A worker job: the candidate (a copy of its parent, intact) is written and passes the gate."""
    parent_root = Path(spec["root"])
    tensors, card = checkpoints.load_version(parent_root, spec["model"], spec["parent"])
    keep = {k: v for k, v in card.items() if k not in ("name", "version", "created", "sha256")}
    vdir = save_candidate(spec, checkpoints.version_dir(parent_root, spec["model"], spec["parent"]), tensors,
                          {**keep, "parent": f"{spec['model']}/v{spec['parent']:04d}"})
    checkpoints.update_card(vdir, metrics={"precision": 0.5}, gate={"passed": True, "reasons": []})
    return {"version": spec["version"], "passed": True, "reason": "passed: precision 0.5",
            "metrics": {"precision": 0.5}, "parent_metrics": {"precision": 0.5}, "preference": None, "warning": None}


class _TrainerWithARottenCandidate(Trainer):
    job = staticmethod(_passing_candidate_whose_weights_rot)


class _TrainerWithAPassingCandidate(Trainer):
    job = staticmethod(_passing_candidate)


@pytest.mark.parametrize("fault", ["weights damaged after the gate", "the loader raises"])
def test_a_candidate_that_passes_the_gate_but_fails_to_load_is_recorded_failed(world, monkeypatch, fault):
    """The hot swap after the gate fails: the run is 'failed' with a finish time and the reason, the candidate is
    refused and withdrawn (never served by default), the engine keeps serving (and reloading) the served version,
    and the admins are told the candidate passed the gate but could not be loaded."""
    from genmodels import registry

    models, data_dir, db = world
    if fault == "the loader raises":
        trainer_class = _TrainerWithAPassingCandidate
        real_load = registry.load

        def load(name, root=None, version=None, *a, **kw):
            if version == 2:
                raise MemoryError("cannot allocate 3 GiB for the candidate")
            return real_load(name, root, version, *a, **kw)

        monkeypatch.setattr(registry, "load", load)
    else:
        trainer_class = _TrainerWithARottenCandidate

    async def main():
        async with running(models, db, _config(data_dir), trainer_class=trainer_class) as (
                engine, store, trainer, reports):
            await _rate_images(engine, store, n=2)
            result = await asyncio.wait_for(trainer.train("dcgan", trigger="test"), 120)
            assert (result.outcome, result.version, result.served) == ("failed", "v0002", "v0001")
            assert result.stage == "load"
            words = "checksum" if fault == "weights damaged after the gate" else "cannot allocate"
            assert words in result.reason

            run = await store.last_run("dcgan")
            assert run["outcome"] == "failed" and run["finished_at"] is not None
            assert run["candidate_version"] == "v0002"
            assert "passed the gate but could not be loaded" in run["detail"]["reason"]
            assert words in run["detail"]["reason"]
            assert await store.served_version("dcgan") == "v0001"
            versions = {v["version"]: v for v in await store.model_versions("dcgan")}
            assert versions["v0002"]["status"] == "refused" and "could not be loaded" in versions["v0002"]["note"]

            # the engine serves the previous version, and its loader was never pointed at the candidate
            assert engine.loaded("image").version == "dcgan/v0001"
            assert await engine.reload("image") == "dcgan/v0001"
            assert (await engine.image(0, count=1, seed=1)).version == "dcgan/v0001"
            card = checkpoints.read_card(checkpoints.version_dir(models, "dcgan", 2))
            assert card["withdrawn"] and not checkpoints.servable(card)

            assert len(reports) == 1
            assert "passed the gate but could not be loaded" in reports[0] and words in reports[0]
            assert "v0001 is still served" in reports[0]
        # a restart serves the served version too, by the store and by default
        assert ImageGenerator.load(str(models)).version == "dcgan/v0001"
        async with running(models, db, _config(data_dir), trainer_class=trainer_class) as (engine, store, _, _):
            assert engine.loaded("image").version == "dcgan/v0001"

    asyncio.run(asyncio.wait_for(main(), 240))
