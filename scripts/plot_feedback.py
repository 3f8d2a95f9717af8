"""Draw the feedback benchmark's curves (like-rate and diversity per round) as a PNG, with Pillow only.

    python scripts/plot_feedback.py docs/bench-feedback-image.json docs/bench-feedback-poem-en.json \
        --out docs/img/feedback_curves.png
"""

from __future__ import annotations

import argparse
import json

from PIL import Image, ImageDraw

from bench.plot import promotion_dots, rounds_axes

W, H, PAD = 420, 300, 48
COLOURS = {"like_rate": (214, 84, 38), "diversity": (40, 110, 190)}


def panel(result: dict) -> Image.Image:
    im = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(im)
    rows = result["per_round_results"]
    x, y = rounds_axes(d, (W, H), PAD, len(rows) - 1, label_x=8)
    d.text((W // 2 - 20, H - 20), "round", fill=(80, 80, 80))
    title = f"{result['kind']} · {result['rater'].split(':')[-1]} · {result['per_round']} per round"
    d.text((PAD, 4), title, fill=(0, 0, 0))
    for key, colour in COLOURS.items():
        pts = [(x(r["round"]), y(r["like_rate"] if key == "like_rate" else r["diversity"])) for r in rows]
        d.line(pts, fill=colour, width=3)
        promotion_dots(d, pts, rows, colour, filled_all=key == "diversity")
    label = "diversity (recall)" if result["kind"] == "image" else "diversity (distinct-2)"
    d.text((PAD, 18), "like-rate (filled: the fine-tune after it was promoted)", fill=COLOURS["like_rate"])
    d.text((PAD, 31), label, fill=COLOURS["diversity"])
    return im


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("results", nargs="+")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    panels = [panel(json.load(open(p, encoding="utf-8"))) for p in args.results]
    sheet = Image.new("RGB", (W * len(panels), H), "white")
    for i, p in enumerate(panels):
        sheet.paste(p, (i * W, 0))
    sheet.save(args.out)


if __name__ == "__main__":
    main()
