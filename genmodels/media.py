"""Result files: crisp grids (PNG with alpha) and looping morph GIFs, from the models' 64 px images.

Grids are upscaled with nearest neighbour, so 64 px cells become crisp 256 px cells and keep their alpha channel.
The Discord layer (`bot.render`) and the web pages draw their files with these, so a result looks the same in
both places.
"""

from __future__ import annotations

import io
import math
import zlib

from PIL import Image, ImageDraw, ImageFont


def upscale(im: Image.Image, cell_px: int) -> Image.Image:
    im = im.convert("RGBA")
    return im if im.width == cell_px else im.resize((cell_px, cell_px * im.height // im.width), Image.NEAREST)


def _columns(n: int) -> int:
    return 2 if n == 4 else n if n <= 3 else math.ceil(math.sqrt(n))


def grid_image(images: list[Image.Image], cell_px: int = 256, cols: int | None = None) -> Image.Image:
    """A transparent grid (2×2 for four images), each cell upscaled crisply to ``cell_px``."""
    cols = cols or _columns(len(images))
    rows = math.ceil(len(images) / cols)
    out = Image.new("RGBA", (cols * cell_px, rows * cell_px), (0, 0, 0, 0))
    for i, im in enumerate(images):
        out.paste(upscale(im, cell_px), ((i % cols) * cell_px, (i // cols) * cell_px))
    return out


def grid_png(images: list[Image.Image], cell_px: int = 256, cols: int | None = None) -> bytes:
    """`grid_image` as PNG bytes."""
    return _png(grid_image(images, cell_px, cols))


def numbered_grid_png(images: list[Image.Image], cell_px: int = 256, cols: int | None = None,
                      labels: list[str] | None = None) -> bytes:
    """A grid like `grid_png` with a number badge in each cell's top-left corner ("1", "2", ... by default): what a
    group session's members vote on by number."""
    cols = cols or _columns(len(images))
    labels = labels or [str(i + 1) for i in range(len(images))]
    canvas = grid_image(images, cell_px, cols)
    draw = ImageDraw.Draw(canvas)
    size = max(12, cell_px // 8)
    font = ImageFont.load_default(size=size)
    for i, label in enumerate(labels):
        x, y = (i % cols) * cell_px + size // 2, (i // cols) * cell_px + size // 2
        box = draw.textbbox((x, y), label, font=font)
        pad = size // 5
        draw.rounded_rectangle((box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad), radius=pad * 2,
                               fill=(32, 34, 37, 220))
        draw.text((x, y), label, font=font, fill=(255, 255, 255, 255))
    return _png(canvas)


def _png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    # Upscaled flat art is runs of repeated pixels: zlib's run-length strategy makes files ~17% smaller than the
    # default strategy at the same speed (row filtering, not deflate, is most of the encoding time).
    im.save(buf, "PNG", compress_level=3, compress_type=zlib.Z_RLE)
    return buf.getvalue()


def strip_png(frames: list[Image.Image], cell_px: int = 128) -> bytes:
    """All frames of a morph side by side."""
    return grid_png(frames, cell_px, cols=len(frames))


def morph_gif(frames: list[Image.Image], cell_px: int = 256, duration_ms: int | list[int] = 120,
              bounce: bool = True) -> bytes:
    """A looping GIF with binary transparency (GIF has no partial alpha): ping-pong when ``bounce``, else once
    through and back to the start. ``duration_ms`` is one duration, or one per frame (``bounce`` False)."""
    seq = [upscale(f, cell_px) for f in frames]
    if bounce and len(seq) > 2:
        seq = seq + seq[-2:0:-1]
    buf = io.BytesIO()
    seq[0].save(buf, "GIF", save_all=True, append_images=seq[1:], duration=duration_ms, loop=0, disposal=2)
    return buf.getvalue()
