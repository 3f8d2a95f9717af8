"""Draw the feedback benchmark's curves (like-rate and diversity per round) as a PNG, with Pillow only.

    python scripts/plot_feedback.py docs/bench-feedback-image.json docs/bench-feedback-poem-en.json \
        --out docs/img/feedback_curves.png
"""

from __future__ import annotations

import argparse
import json

from PIL import Image, ImageDraw

W, H, PAD = 420, 300, 48
COLOURS = {"like_rate": (214, 84, 38), "diversity": (40, 110, 190)}


def panel(result: dict) -> Image.Image:
    im = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(im)
    rows = result["per_round_results"]
    n = len(rows) - 1
    x = lambda r: PAD + (W - 2 * PAD) * r / max(1, n)  # noqa: E731
    y = lambda v: H - PAD - (H - 2 * PAD) * v  # noqa: E731
    d.rectangle([PAD, PAD, W - PAD, H - PAD], outline=(120, 120, 120))
    for v in (0.0, 0.25, 0.5, 0.75, 1.0):
        d.line([PAD, y(v), W - PAD, y(v)], fill=(230, 230, 230))
        d.text((8, y(v) - 6), f"{v:.2f}", fill=(80, 80, 80))
    for r in range(n + 1):
        d.text((x(r) - 3, H - PAD + 6), str(r), fill=(80, 80, 80))
    d.text((W // 2 - 20, H - 20), "round", fill=(80, 80, 80))
    title = f"{result['kind']} · {result['rater'].split(':')[-1]} · {result['per_round']} per round"
    d.text((PAD, 4), title, fill=(0, 0, 0))
    for key, colour in COLOURS.items():
        pts = [(x(r["round"]), y(r["like_rate"] if key == "like_rate" else r["diversity"])) for r in rows]
        d.line(pts, fill=colour, width=3)
        for (px, py), r in zip(pts, rows):
            promoted = r.get("gate") == "promoted"
            d.ellipse([px - 4, py - 4, px + 4, py + 4], fill=colour if promoted or key == "diversity" else "white",
                      outline=colour, width=2)
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
