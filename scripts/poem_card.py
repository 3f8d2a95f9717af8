"""Print the poem parts of the model card (docs/MODELS.md) from the shipped (or given) text models, as Markdown.

    python scripts/poem_card.py [--models DIR] [--lang en|zh|all] [--samples 20] [--forms 200] [--json OUT]
                                [--read 40 --read-seed 3000] [--data DIR]

- ``--samples`` poems per language (`PoemModel.sample(seed)`, seeds 0.., 4 lines, the defaults `/poem` uses);
- five interpolations per language (`PoemModel.morph(a, b, steps=6)`) between the fixed line pairs below;
- ``--forms`` samples per verse form (seeds 0..): how often the form is met, seconds per poem, batches drawn;
- en, ``--read`` N: N poems at seeds ``--read-seed`` ..., every line numbered for reading, with Link Grammar's null
  links per word on them, on the morphs' middle lines and ends, and on real held-out lines and the same shuffled
  (`genmodels.grammar`; the held-out lines need the poem dataset in ``--data``), and each form's share of lines
  parsed fully.

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


def grammar_report(model: PoemModel, n: int, seed: int, morphs: list[list[str]], data: str | None) -> dict:
    """Link Grammar on N poems at seeds ``seed``..., every line printed; the morphs' middle lines and ends; real
    held-out and shuffled lines when the dataset is there."""
    import random
    from pathlib import Path

    from genmodels import paths
    from genmodels.grammar import calibration, gap_share, grammar_check

    check = grammar_check()
    t = time.perf_counter()
    poems = [model.sample(s).lines for s in range(seed, seed + n)]
    secs = (time.perf_counter() - t) / n
    lines = [line for p in poems for line in p]
    print(f"\n### {model.version}: {n} poems at seeds {seed}-{seed + n - 1}, every line ({secs:.2f} s a poem)\n")
    for i, line in enumerate(lines):
        p = check.parse(line)
        print(f"{i + 1:>3}. {line}   [{p.nulls}/{p.words} null, strict {p.strict_nulls}]")
    out = {"seeds": [seed, seed + n - 1], "lines": lines, "seconds_per_poem": round(secs, 3),
           "null_links_per_word": round(check.null_rate(lines), 4), "parsed_fully": round(check.full_rate(lines), 4),
           "morph_middle_null_links_per_word": round(check.null_rate([l for f in morphs for l in f[1:-1]]), 4),
           "morph_ends_null_links_per_word": round(check.null_rate([l for f in morphs for l in (f[0], f[-1])]), 4)}
    held = Path(data or paths.data_dir()) / "poems-en.json"
    if held.exists():
        from genmodels.data.poems import load_poem_dataset

        ref = calibration(check, load_poem_dataset(held).lines("heldout", 1000), random.Random(0))
        out["reference"] = {k: round(v, 4) for k, v in ref.items()}
        out["gap_share"] = round(gap_share(out["null_links_per_word"], ref["heldout"], ref["shuffled"]), 4)
    print("\n" + json.dumps({k: v for k, v in out.items() if k != "lines"}))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models")
    ap.add_argument("--lang", default="all", choices=["en", "zh", "all"])
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--forms", type=int, default=200, help="samples per verse form (0: skip)")
    ap.add_argument("--json", help="also write everything to this JSON file")
    ap.add_argument("--read", type=int, default=0, help="en: poems printed line by line with their parses (0: skip)")
    ap.add_argument("--read-seed", type=int, default=3000, help="en: the first seed of --read")
    ap.add_argument("--data", help="dataset folder for the held-out lines (default: $MUSE_DATA_DIR or ./data)")
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
        if lang == "en" and args.read:
            result[lang]["grammar"] = grammar_report(model, args.read, args.read_seed, morphs, args.data)
        if lang == "en" and table:
            from genmodels.grammar import grammar_check

            for r in table:
                ls = [l for s in range(min(args.forms, 40)) for l in model.sample(s, form=r["form"]).lines]
                r["parsed_fully_40"] = round(grammar_check().full_rate(ls), 4)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
