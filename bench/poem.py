"""`muse bench poem`: how long one `/poem` takes on this machine, and how its lines parse.

Loads the served poem model of a language (as the engine does), then writes ``count`` poems at seeds
``seed`` ... ``seed + count - 1`` one after another with `/poem`'s defaults (4 lines, temperature 0.9, top-p
0.9; ``form`` for a verse form), on ``threads`` torch threads, and reports seconds per poem (mean, median, p95,
max; the target is 2 s on the 2-core CPU). For English it also reports the lines' Link Grammar null links per
word and the share of lines that parse fully (`genmodels.grammar`), beside the same for ``heldout`` real
held-out lines and those lines shuffled when the poem dataset is in the data folder.
"""

from __future__ import annotations

import random
import statistics
import time
from pathlib import Path

import torch

from .timing import pct

TARGET_S = 2.0


def run(lang: str = "en", count: int = 20, seed: int = 0, form: str | None = None, threads: int = 1,
        models: str | Path | None = None, data: str | Path | None = None) -> dict:
    from genmodels import paths
    from genmodels.poetry import PoemModel

    if lang not in ("en", "zh") or count < 1:
        raise ValueError("--lang must be en or zh and --count at least 1.")
    torch.set_num_threads(max(1, int(threads)))
    t = time.perf_counter()
    model = PoemModel.load(lang, models)
    load_s = time.perf_counter() - t
    model.sample(seed, form=form)  # warm-up (first calls allocate)
    times, poems = [], []
    for s in range(seed, seed + count):
        t = time.perf_counter()
        out = model.sample(s, form=form)
        times.append(time.perf_counter() - t)
        poems.append(out.lines)
    result: dict = {
        "version": model.version, "lang": lang, "form": form or "free", "poems": count, "seeds": [seed, seed + count - 1],
        "threads": torch.get_num_threads(), "load_s": round(load_s, 3),
        "mean_s": round(statistics.mean(times), 3), "median_s": round(statistics.median(times), 3),
        "p95_s": round(pct(times, 95), 3), "max_s": round(max(times), 3), "target_s": TARGET_S,
        "rerank": model.rerank, "grammar_ranked": model.grammar is not None,
    }
    result["meets_target"] = result["mean_s"] <= TARGET_S
    if lang == "en":
        from genmodels.grammar import calibration, gap_share, grammar_check

        check = grammar_check()
        lines = [line for p in poems for line in p]
        result["null_links_per_word"] = round(check.null_rate(lines), 4)
        result["lines_parsed_fully"] = round(check.full_rate(lines), 4)
        held = Path(data or paths.data_dir()) / "poems-en.json"
        if held.exists():
            from genmodels.data.poems import load_poem_dataset

            ref = calibration(check, load_poem_dataset(held).lines("heldout", 1000), random.Random(0))
            result["reference"] = {k: round(v, 4) for k, v in ref.items()}
            result["gap_share"] = round(gap_share(result["null_links_per_word"], ref["heldout"], ref["shuffled"]), 4)
    result["sample"] = [" / ".join(p) for p in poems[:3]]
    return result
