"""Train one text-VAE variant (a recipe/config override of the shipped recipe) and print its held-out metrics.

Used to search the recipe on a GPU machine; the chosen variant then becomes ``RECIPES`` in
``genmodels/training/textvae.py``. Example::

    python scripts/text_sweep.py en bow03 '{"recipe": {"bow_weight": 0.3}, "config": {"bow_dim": 256}}' out/

An override may also name another data folder with "data" (a folder holding poems-{lang}.json), and the
importance samples of the final evaluation with "eval_k" (default: the evaluation's K = 1000).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, replace
from pathlib import Path

from genmodels import checkpoints
from genmodels.training import textvae


def main(lang: str, name: str, overrides: str, out: str) -> None:
    ov = json.loads(overrides)
    cfg, recipe = textvae.RECIPES[lang]
    textvae.RECIPES[lang] = (replace(cfg, **ov.get("config", {})), replace(recipe, **ov.get("recipe", {})))
    root = Path(out) / name
    vae_dir = textvae.train(lang, data_dir=Path(ov.get("data", "data")), runs_dir=root / "runs", models_dir=root / "models",
                            device=ov.get("device", "auto"), progress=False, eval_k=ov.get("eval_k"))
    card = checkpoints.read_card(vae_dir)
    cfg2, rec2 = textvae.RECIPES[lang]
    res = {"lang": lang, "name": name, "overrides": ov, "config": asdict(cfg2), "recipe": asdict(rec2),
           "metrics": card["metrics"], "vae_wall_s": card.get("wall_time_s"), "steps": card.get("steps")}
    (Path(out) / f"{name}.json").write_text(json.dumps(res, indent=1), "utf-8")
    m = card["metrics"]
    print(name, json.dumps({k: m.get(k) for k in sorted(m) if not isinstance(m.get(k), (list, dict))}))


if __name__ == "__main__":
    main(*sys.argv[1:5])
