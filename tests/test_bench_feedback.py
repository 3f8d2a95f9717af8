"""The feedback benchmark's code path for morphs on the tiny models: one round of image morphs rated, stored with
their frame latents, and the VAE fine-tuned on them by the real trainer, full and as a delta (the figures
themselves live in docs/)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from bench.feedback import MORPH_FRAMES, run


def likes_even(image) -> str:
    """A stand-in taste for the tiny models (whose colours say little): the parity of the pixels' sum."""
    return "👍" if int(np.asarray(image).sum()) % 2 == 0 else "👎"


def test_feedback_bench_morphs_full_and_delta(tiny_models: Path, shapes_npz: Path, tmp_path: Path, monkeypatch):
    models = tmp_path / "models"
    shutil.copytree(tiny_models, models)
    monkeypatch.setenv("MUSE_DATA_DIR", str(shapes_npz.parent))  # the ends' emoji and the replayed data
    res = run("morph", "tests.test_bench_feedback:likes_even", rounds=1, per_round=12, models=str(models), steps=2,
              method="both")
    assert res["benchmark"] == "feedback-side-by-side" and res["kind"] == "morph" and res["model"] == "vae"
    for method in ("full", "delta"):
        one = res[f"{method}_run"]
        assert one["method"] == method and one["kind"] == "morph"
        rows = one["per_round_results"]
        assert [r["round"] for r in rows] == [0, 1]
        first = rows[0]
        assert first["version"] == "vae/v0001" and first["diversity_metric"] == "recon_accuracy"
        assert first["likes"] + first["dislikes"] == 12 and 0 < first["likes"] < 12
        # every vote reached the trainer through the store, and it ran to a verdict on a new candidate
        assert first["feedback_used"] == 12
        assert first["gate"] in ("promoted", "refused") and first["candidate"] == "v0002"
        for r in rows:
            assert 0 <= r["like_rate"] <= 1 and 0 <= r["diversity"] <= 1
        assert "gate" not in rows[1]
    assert res["delta"]["file"] == "v0002.safetensors" and res["delta"]["delta_bytes"] > 0
    assert set(res["like_rate_gain_points"]) == {"full", "delta"}
    json.dumps(res)  # what --json prints


def test_a_morph_is_stored_as_the_bot_stores_it(tiny_models: Path, shapes_npz: Path, monkeypatch):
    import asyncio
    import random

    from bench.feedback import _generate
    from genmodels.data.emoji import load_image_dataset
    from genmodels.engine import Engine, EngineConfig

    monkeypatch.setenv("MUSE_DATA_DIR", str(shapes_npz.parent))
    data = load_image_dataset(shapes_npz)

    async def one():
        engine = Engine(EngineConfig(models_dir=str(tiny_models)))
        await engine.start()
        try:
            return await _generate("morph", "vae", engine, random.Random(0), 0, data)
        finally:
            await engine.close()

    res = asyncio.run(one())
    assert res["latent"].shape == (MORPH_FRAMES, 8) and res["seed"] is None and res["content"] is None
    assert res["output"].size == (64, 64)
    ends = res["params"]["from"], res["params"]["to"]
    assert all(e["emoji"] in set(data.train_chars.tolist()) and e["style"] == "folder" for e in ends)
    assert ends[0]["emoji"] != ends[1]["emoji"] and res["params"]["frames"] == MORPH_FRAMES
