"""Files and provenance: what a result looks like on Discord, with no Discord calls in it.

- Grids are upscaled with nearest neighbour, so 64 px cells become crisp 256 px cells that Discord shows large,
  and keep their alpha channel (`genmodels.media` draws them; they are re-exported here).
- Discord strips PNG metadata, so provenance travels in the embed footer as ``key=value`` pairs (machine
  readable, locale independent) and in the buttons' ``custom_id``. "Muse: details" reads it back from there.
- A lineage (the seeds and picked cells from an original grid down to a variation) is re-derivable from seeds
  alone, so it is all a button needs to rebuild a result after a restart.
"""

from __future__ import annotations

import re

from genmodels.latents import Generation
# the files themselves (grids, strips, GIFs) are drawn by `genmodels.media`, which the web pages use too
from genmodels.media import (  # noqa: F401 - re-exported for the extensions
    grid_image, grid_png, morph_gif, numbered_grid_png, strip_png, upscale,
)

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
