"""Print the poem parts of the model card (docs/MODELS.md) from the shipped (or given) text models, as Markdown.

    python scripts/poem_card.py [--models DIR] [--lang en|zh|all] [--samples 20] [--forms 200] [--json OUT]

- ``--samples`` poems per language (`PoemModel.sample(seed)`, seeds 0.., 4 lines, the defaults `/poem` uses);
- five interpolations per language (`PoemModel.morph(a, b, steps=6)`) between the fixed line pairs below;
- ``--forms`` samples per verse form (seeds 0..): how often the form is met, seconds per poem, batches drawn.

Everything is seeded, so the output is reproducible for given weights and thread count.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from genmodels.poetry import PoemModel
from genmodels.verse import FORMS, FormNotMet

PAIRS = {
    "en": [
        ("the moon is rising on the sea", "my heart is heavy with the years"),
        ("the winter wind is cold and grey", "the summer sun upon the hill"),
        ("I walked alone beside the river", "we danced together in the hall"),
        ("the rose is red upon the wall", "the stars are silent in the night"),
        ("O tell me where the children play", "the old king sleeps beneath the stone"),
    ],
    "zh": [
        ("明月照高楼", "孤舟泊远江"),
        ("春风吹柳绿", "秋雨打梧桐"),
        ("白日依山尽", "黄河入海流"),
        ("青山横北郭", "白水绕东城"),
        ("独坐幽篁里", "长歌怀采薇"),
    ],
}


def forms_table(model: PoemModel, n: int) -> list[dict]:
    rows = []
    for form in FORMS[model.lang]:
        times, batches, met = [], [], 0
        for seed in range(n):
            t = time.perf_counter()
            try:
                out = model.sample(seed, form=form)
            except FormNotMet:
                times.append(time.perf_counter() - t)
                continue
            times.append(time.perf_counter() - t)
            met += 1
            batches.append(out.params.get("batches", 1))
        times.sort()
        rows.append({"form": form, "met": met / n, "mean_s": statistics.mean(times),
                     "p95_s": times[int(0.95 * (len(times) - 1))],
                     "mean_batches": statistics.mean(batches) if batches else None})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models")
    ap.add_argument("--lang", default="all", choices=["en", "zh", "all"])
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--forms", type=int, default=200, help="samples per verse form (0: skip)")
    ap.add_argument("--json", help="also write everything to this JSON file")
    args = ap.parse_args()
    torch.set_num_threads(1)
    result: dict = {}
    for lang in (["en", "zh"] if args.lang == "all" else [args.lang]):
        model = PoemModel.load(lang, args.models)
        print(f"\n### {model.version}: {args.samples} samples (seeds 0-{args.samples - 1})\n")
        samples = [model.sample(seed).text for seed in range(args.samples)]
        for seed, text in enumerate(samples):
            print(f"{seed:>2}. " + " / ".join(text.splitlines()))
        print(f"\n### {model.version}: interpolations (6 steps)\n")
        morphs = [model.morph(a, b, steps=6).frames for a, b in PAIRS[lang]]
        for frames in morphs:
            print("```\n" + "\n".join(frames) + "\n```")
        table = forms_table(model, args.forms) if args.forms else []
        if table:
            print(f"\n### {model.version}: verse forms, {args.forms} samples each\n")
            print("| form | met | mean s / poem | p95 s | mean batches |\n|---|---|---|---|---|")
            for r in table:
                b = "–" if r["mean_batches"] is None else f"{r['mean_batches']:.2f}"
                print(f"| {lang} {r['form']} | {100 * r['met']:.1f} % | {r['mean_s']:.3f} | {r['p95_s']:.3f} | {b} |")
            print()
            for form in FORMS[lang]:
                try:
                    print(f"{form:<9} " + " / ".join(model.sample(0, form=form).text.splitlines()))
                except FormNotMet as e:
                    print(f"{form:<9} (not met: {e})")
        result[lang] = {"version": model.version, "samples": samples, "interpolations": morphs, "forms": table}
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
