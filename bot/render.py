"""Files and provenance: what a result looks like on Discord, with no Discord calls in it.

- Grids are upscaled with nearest neighbour, so 64 px cells become crisp 256 px cells that Discord shows large,
  and keep their alpha channel.
- Discord strips PNG metadata, so provenance travels in the embed footer as ``key=value`` pairs (machine
  readable, locale independent) and in the buttons' ``custom_id``. "Muse: details" reads it back from there.
- A lineage (the seeds and picked cells from an original grid down to a variation) is re-derivable from seeds
  alone, so it is all a button needs to rebuild a result after a restart.
"""

from __future__ import annotations

import io
import math
import re
import zlib

from PIL import Image, ImageDraw, ImageFont

from genmodels.latents import Generation

# Generations of variations a lineage may hold: a lineage travels in a button's custom_id, which Discord caps at
# 100 characters (`replies.CUSTOM_ID_MAX`), next to the button's prefix and theme. Deeper grids get no buttons.
MAX_LINEAGE = 7

FOOTER_SEP = " · "

# An image grid's condition inside a custom_id: the theme index, then "s" and the style index when the style is not
# the model's default ("3", "3s1"). Ids written before styles carry the theme alone and still parse.
COND_PATTERN = r"\d{1,3}(?:s\d)?"
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def encode_cond(theme: int, style: int = 0) -> str:
    return f"{theme}s{style}" if style else str(theme)


def decode_cond(text: str) -> tuple[int, int]:
    """(theme, style) from `encode_cond`'s text."""
    theme, _, style = text.partition("s")
    return int(theme), int(style or 0)


# ---- images -----------------------------------------------------------------------------------------------


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


# ---- lineage: the state a variation button carries ---------------------------------------------------------


def b36(n: int) -> str:
    if n == 0:
        return "0"
    s = ""
    while n:
        n, r = divmod(n, 36)
        s = _B36[r] + s
    return s


def encode_lineage(lineage: tuple[Generation, ...] | list[Generation], base: int = 36) -> str:
    """``seed.count[.cell]`` per generation, joined by ``_``; seeds in base 36 (custom_id) or 10 (footer)."""
    enc = b36 if base == 36 else str
    parts = []
    for g in lineage:
        parts.append(f"{enc(g.seed)}.{g.count}" + (f".{g.cell}" if g.cell is not None else ""))
    return "_".join(parts)


_GEN = re.compile(r"([0-9a-z]{1,13})\.([1-9]\d?)(?:\.(\d{1,2}))?")


def decode_lineage(text: str, base: int = 36) -> tuple[Generation, ...]:
    parts = text.split("_")
    if not text or len(parts) > MAX_LINEAGE:
        raise ValueError(f"a lineage has 1 to {MAX_LINEAGE} generations")
    out = []
    for i, p in enumerate(parts):
        m = _GEN.fullmatch(p)
        if not m:
            raise ValueError(f"bad lineage step {p!r}")
        cell = int(m[3]) if m[3] is not None else None
        if (cell is None) != (i == len(parts) - 1):
            raise ValueError("every step but the last picks a cell")
        out.append(Generation(int(m[1], base), int(m[2]), cell))
    return tuple(out)


def with_child(lineage: tuple[Generation, ...], cell: int, child_seed: int, count: int = 4) -> tuple[Generation, ...]:
    last = lineage[-1]
    return (*lineage[:-1], Generation(last.seed, last.count, cell), Generation(child_seed, count))


# ---- provenance in the footer ------------------------------------------------------------------------------


def footer(**fields) -> str:
    """``muse`` then ``key=value`` pairs; values must not contain the separator."""
    return FOOTER_SEP.join(["muse"] + [f"{k}={str(v).replace(FOOTER_SEP, ' ')}" for k, v in fields.items()])


def parse_footer(text: str | None) -> dict[str, str] | None:
    if not text or not text.startswith("muse" + FOOTER_SEP):
        return None
    out = {}
    for part in text.split(FOOTER_SEP)[1:]:
        k, sep, v = part.partition("=")
        if sep:
            out[k] = v
    return out or None
