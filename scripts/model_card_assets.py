"""Regenerate the sample sheets in docs/img/ from the shipped (or given) weights.

    python scripts/model_card_assets.py [--models DIR] [--data data/images.npz]

Everything is seeded, so the sheets are reproducible. The DCGAN gets one sheet per style it draws
(``dcgan_samples.png`` is the default style's); ``vae_morphs_cross_style.png`` needs the prepared dataset.
Cells are composited on light grey so they read in both light and dark viewers.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from PIL import Image

from genmodels.data.emoji import load_image_dataset
from genmodels.eval_images import SHEET_COLUMNS, SHEET_SEED
from genmodels.images import ImageGenerator, Morpher, gif_bytes, grid

OUT = Path(__file__).resolve().parent.parent / "docs" / "img"
PAIRS = [("🐱", "🐶"), ("🍎", "🚗"), ("😀", "😭"), ("🌞", "🌧️"), ("⚽", "🏀")]
CROSS_STYLE_PAIRS = [(("🐱", "noto"), ("🐶", "twemoji")), (("🍎", "openmoji"), ("🍎", "noto")),
                     (("😀", "emojione"), ("😭", "openmoji")), (("🚗", "twemoji"), ("🚀", "emojione"))]


def on_grey(im: Image.Image, scale: int = 2) -> Image.Image:
    bg = Image.new("RGBA", im.size, (228, 228, 228, 255))
    bg.alpha_composite(im)
    return bg.resize((im.width * scale, im.height * scale), Image.NEAREST)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models")
    ap.add_argument("--data", default="data/images.npz")
    args = ap.parse_args()
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)

    gen = ImageGenerator.load(args.models)
    for style in gen.styles:  # one sheet per style; rows = themes, 10 cells from seed 7 (`eval_images.SHEET_SEED`)
        rows = []
        for theme in gen.themes:
            rows += gen.generate(theme, count=SHEET_COLUMNS, seed=SHEET_SEED, style=style).images
        name = "dcgan_samples.png" if style == gen.styles[0] else f"dcgan_samples_{style}.png"
        on_grey(grid(rows, cols=SHEET_COLUMNS, pad=2)).save(OUT / name)

    morpher = Morpher.load(args.models)
    morpher.data_path = Path(args.data)
    strips = []
    for a, b in PAIRS:
        strips += morpher.morph(a, b, frames=10).frames
    on_grey(grid(strips, cols=10, pad=2)).save(OUT / "vae_morphs.png")
    cat_dog = morpher.morph("🐱", "🐶", frames=8).frames
    (OUT / "vae_morph_cat_dog.gif").write_bytes(gif_bytes(cat_dog, scale=2, bounce=True))
    if Path(args.data).exists():  # the other sets exist only in the prepared dataset
        strips = []
        for (a, sa), (b, sb) in CROSS_STYLE_PAIRS:
            strips += morpher.morph(a, b, frames=10, styles=(sa, sb)).frames
        on_grey(grid(strips, cols=10, pad=2)).save(OUT / "vae_morphs_cross_style.png")

    data = load_image_dataset(Path(args.data))
    originals = [Image.fromarray(a, "RGBA") for a in data.heldout_images[::12][:10]]
    recon = morpher.decode(morpher.encode(originals))
    on_grey(grid(originals + recon, cols=10, pad=2)).save(OUT / "vae_heldout_reconstructions.png")
    real = [Image.fromarray(a, "RGBA") for a in data.train_images[:: max(1, len(data.train_images) // 30)][:30]]
    on_grey(grid(real, cols=10, pad=2)).save(OUT / "real_training_emoji.png")
    print(f"wrote sheets to {OUT}")


if __name__ == "__main__":
    main()
