"""Which version is served when nothing pins one: never a candidate the gate refused or never judged, never a
version rolled back, whether the trainer is off, its database unreadable, or the database lost."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import numpy as np
import pytest

from genmodels import checkpoints
from genmodels.engine import Engine, EngineConfig
from genmodels.feedback.finetune import FinetuneConfig
from genmodels.feedback.store import FeedbackStore, StoreError
from genmodels.feedback.trainer import Trainer, TrainerConfig
from genmodels.images import ImageGenerator, Morpher


def _config(data_dir: Path, **kw) -> TrainerConfig:
    ft = FinetuneConfig(steps=3, text_steps=3, batch=8, lr_scale=kw.pop("lr_scale", 0.25))
    return TrainerConfig(min_feedback=10**6, every_hours=0, data_dir=str(data_dir), finetune=ft, **kw)


async def _served_without_trainer(models: Path, key: str) -> str:
    """The version an engine with its default loaders (no trainer pinning anything) serves for ``key``."""
    engine = Engine(EngineConfig(models_dir=str(models)))
    await engine.start(preload=(key,))
    try:
        return engine.loaded(key).version
    finally:
        await engine.close()


@pytest.fixture(scope="module")
def refused(tiny_models: Path, shapes_npz: Path, tmp_path_factory) -> tuple[Path, Path, Path]:
    """(models, data dir, database) after a real fine-tune of the VAE that the gate refused: a learning rate
    2000× too high blows its held-out negative ELBO up. vae/v0001 is served, vae/v0002 refused."""
    root = tmp_path_factory.mktemp("refused")
    models, db = root / "models", root / "muse.sqlite3"
    shutil.copytree(tiny_models, models)

    async def main():
        engine = Engine(EngineConfig(models_dir=str(models)))
        await engine.start(preload=("morph",))
        store = await FeedbackStore.open(db)
        trainer = Trainer(store, engine, _config(shapes_npz.parent, tolerance=0.15, lr_scale=2000.0))
        try:
            await trainer.start()
            rng = np.random.default_rng(0)
            for i in range(4):
                await store.record_result(kind="morph", model="vae", model_version="v0001",
                                          latent=rng.standard_normal((3, 8)).astype(np.float32), message_id=40 + i)
                await store.add_reaction(40 + i, 80 + i, "👍")
            out = await asyncio.wait_for(trainer.train("vae"), 300)
            assert (out.outcome, out.version, out.served) == ("refused", "v0002", "v0001"), out.reason
        finally:
            await trainer.close()
            await store.close()
            await engine.close()

    asyncio.run(main())
    return models, shapes_npz.parent, db


def _copy(world: tuple[Path, Path, Path], tmp_path: Path) -> tuple[Path, Path, Path]:
    models, data_dir, db = world
    shutil.copytree(models, tmp_path / "models")
    for f in db.parent.glob(db.name + "*"):  # the database and its -wal / -shm files
        shutil.copy(f, tmp_path / f.name)
    return tmp_path / "models", data_dir, tmp_path / db.name


def test_refused_candidate_is_not_served_when_the_trainer_is_off(refused, tmp_path):
    models, _, _ = _copy(refused, tmp_path)
    assert checkpoints.list_versions(models, "vae") == [1, 2]
    assert checkpoints.read_card(checkpoints.version_dir(models, "vae", 2))["gate"]["passed"] is False
    assert asyncio.run(_served_without_trainer(models, "morph")) == "vae/v0001"
    assert Morpher.load(str(models)).version == "vae/v0001"
    assert Morpher.load(str(models), version=2).version == "vae/v0002"  # asked for, it still loads


def test_refused_candidate_is_not_served_when_the_store_is_unreadable(refused, tmp_path):
    models, data_dir, db = _copy(refused, tmp_path)
    for f in db.parent.glob(db.name + "*"):
        f.write_bytes(b"this is not a database" * 100)

    async def main():
        # The bot then runs without a store and so without a trainer: the engine's default loaders decide.
        with pytest.raises(StoreError):
            await FeedbackStore.open(db)
        assert await _served_without_trainer(models, "morph") == "vae/v0001"

        # A new, empty database: the trainer records what the engine would serve as the initial version.
        fresh = tmp_path / "fresh.sqlite3"
        engine = Engine(EngineConfig(models_dir=str(models)))
        await engine.start()
        store = await FeedbackStore.open(fresh)
        trainer = Trainer(store, engine, _config(data_dir))
        try:
            await trainer.start()
            assert await store.served_version("vae") == "v0001"
            assert (await engine.run("morph", "model.version")) == "vae/v0001"
        finally:
            await trainer.close()
            await store.close()
            await engine.close()

    asyncio.run(main())


def test_rolled_back_version_is_not_picked_by_default(tiny_models, shapes_npz, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(tiny_models, models)
    # v0002: a fine-tune the gate passed (here: the parent's weights under a passed verdict), served since.
    tensors, card = checkpoints.load_version(models, "dcgan", 1)
    keep = {k: v for k, v in card.items() if k not in ("name", "version", "created", "sha256")}
    v2 = checkpoints.save_version(models, "dcgan", tensors, {**keep, "parent": "dcgan/v0001", "gate": {"passed": True}})
    assert ImageGenerator.load(str(models)).version == "dcgan/v0002"

    async def main():
        engine = Engine(EngineConfig(models_dir=str(models)))
        await engine.start(preload=("image",))
        store = await FeedbackStore.open(tmp_path / "muse.sqlite3")
        await store.set_model_version("dcgan", "v0001", "served", note="initial")
        await store.set_model_version("dcgan", "v0002", "served", note="fine-tune run 1")
        trainer = Trainer(store, engine, _config(shapes_npz.parent))
        try:
            await trainer.start()
            assert engine.loaded("image").version == "dcgan/v0002"
            assert await trainer.rollback("dcgan") == "v0001"
            assert engine.loaded("image").version == "dcgan/v0001"
            assert {v["version"]: v["status"] for v in await store.model_versions("dcgan")} == {
                "v0001": "served", "v0002": "refused"}
        finally:
            await trainer.close()
            await store.close()
            await engine.close()

    asyncio.run(main())
    # with the trainer off (or its database gone), v0002 is not served again
    assert asyncio.run(_served_without_trainer(models, "image")) == "dcgan/v0001"
    assert "rolled back" in checkpoints.read_card(v2)["withdrawn"]["reason"]
    assert ImageGenerator.load(str(models), version=2).version == "dcgan/v0002"
