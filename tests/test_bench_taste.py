"""The taste benchmark's code path on the tiny models: two servers, one round, the real store, trainer and engine
(the figures themselves live in docs/)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from bench.taste import run


def likes_even(image) -> str:
    """A stand-in taste for the tiny models (whose colours say little): the parity of the pixels' sum."""
    return "👍" if int(np.asarray(image).sum()) % 2 == 0 else "👎"


def likes_odd(image) -> str:
    return "👎" if likes_even(image) == "👍" else "👍"


def test_taste_bench_trains_two_lineages(tiny_models: Path, shapes_npz: Path, tmp_path: Path):
    models = tmp_path / "models"
    shutil.copytree(tiny_models, models)
    kw = dict(per_round=12, models=str(models), steps=2, data=str(shapes_npz.parent), raters=(likes_even, likes_odd),
              tolerance=10.0, batch=8, out=str(tmp_path / "out"))
    res = run("image", 1, plot=str(tmp_path / "taste.png"), **kw)
    assert res["benchmark"] == "taste" and res["kind"] == "image" and res["rounds"] == 1
    assert set(res["servers"]) == {"A", "B"} and set(res["targets"]) == {"A", "B"}
    keys = set()
    for name, guild in (("A", 1001), ("B", 2002)):
        srv = res["servers"][name]
        rows = srv["per_round_results"]
        assert [r["round"] for r in rows] == [0, 1]
        assert rows[0]["key"] == "dcgan" and rows[0]["gate"] == "promoted" and "gate" not in rows[1]
        assert rows[1]["key"] == f"dcgan:{guild}:v0001" and rows[1]["version"] == f"dcgan:{guild}/v0001"
        assert rows[0]["feedback_used"] == 12  # its own server's votes, never the other's
        for r in rows:
            assert 0 <= r["like_rate_own"] <= 1 and 0 <= r["like_rate_other"] <= 1 and r["diversity"] >= 0
        assert srv["lineage_files"] == ["v0001.safetensors"] and srv["served"] == rows[1]["key"]
        assert set(res["targets"][name]) == {"own_rater_gain>=25pts", "other_rater<=round0+5pts",
                                             "diversity>=80%_of_round0"}
        assert all(set(t) == {"value", "pass"} for t in res["targets"][name].values())
        keys.add(srv["served"])
    assert len(keys) == 2 and res["distinct_lineages"]
    assert isinstance(res["all_targets_pass"], bool)
    assert (tmp_path / "taste.png").stat().st_size > 0
    assert not (models / "servers").exists()  # the lineages grew in the bench's own models folder
    json.dumps(res)  # what --json prints

    # the same command with more rounds resumes: round 0 and 1 are not measured again
    more = run("image", 2, **kw)
    for name in ("A", "B"):
        rows = more["servers"][name]["per_round_results"]
        assert len(rows) == 3 and rows[0] == res["servers"][name]["per_round_results"][0]
        assert rows[1]["gate"] in ("promoted", "refused", "skipped")


def short_poems(poem: str) -> str:
    """A stand-in taste for the tiny text model's poems: an even number of characters."""
    return "👍" if len(poem) % 2 == 0 else "👎"


def long_poems(poem: str) -> str:
    return "👎" if short_poems(poem) == "👍" else "👍"


def test_taste_bench_poems(tmp_path: Path):
    from genmodels.data.poems import build_poem_dataset
    from tests.e2e.conftest import EN_LINES
    from textmodels import save_text_model

    models = tmp_path / "models"
    save_text_model(models, "en", EN_LINES)
    text = tmp_path / "poems.txt"
    text.write_text("\n\n".join("\n".join(EN_LINES[i:i + 3]) for i in range(0, len(EN_LINES), 3)), "utf-8")
    build_poem_dataset("en", text, tmp_path / "data")
    res = run("poem", 1, per_round=6, lang="en", models=str(models), steps=2, data=str(tmp_path / "data"),
              raters=(short_poems, long_poems), tolerance=10.0, batch=8)
    assert res["model"] == "textvae-en" and res["lang"] == "en"
    for name, guild in (("A", 1001), ("B", 2002)):
        first, last = res["servers"][name]["per_round_results"]
        assert first["key"] == "textvae-en" and first["gate"] == "promoted", first
        assert last["key"] == f"textvae-en:{guild}:v0001" and 0 <= last["diversity"] <= 1
    assert res["distinct_lineages"]
