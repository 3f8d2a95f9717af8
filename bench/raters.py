"""Example raters for ``muse bench feedback``: a simulated community's taste, as a plain function.

A rater takes one output (a PIL image for ``--kind image``, a morph's middle frame, a PIL image too, for
``--kind morph``, the poem text for ``--kind poem``) and returns "👍", "👎" or None (no reaction). Any importable
function works: ``--rater mypackage.taste:likes_cats``.
"""

from __future__ import annotations

import re

import numpy as np
from PIL import Image

NIGHT_EN = re.compile(r"\b(moon|moons|moonlight|moonlit|night|nights|star|stars|starry|sky|skies|dark|dream|dreams)\b")
NIGHT_ZH = re.compile("[月]")
DAY_EN = re.compile(r"\b(sun|suns|sunlight|sunny|sunshine|sunrise|day|days|daylight|dawn|morning|noon|light|bright|"
                    r"summer|gold|golden)\b")
DAY_ZH = re.compile("[日阳]")


def warmth(image: Image.Image) -> float:
    """Mean (R - B) / 255 over the image's visible pixels, weighted by alpha: > 0 is warm, < 0 cool."""
    a = np.asarray(image.convert("RGBA"), dtype=np.float32)
    alpha = a[..., 3] / 255.0
    if alpha.sum() < 1.0:
        return 0.0
    return float(((a[..., 0] - a[..., 2]) * alpha).sum() / alpha.sum() / 255.0)


def warm_colours(image: Image.Image) -> str | None:
    """Prefers warm colours: 👍 for clearly warm images (reds, oranges, yellows), 👎 for the rest.

    About a third of the shipped DCGAN's samples pass (warmth > 0.35)."""
    return "👍" if warmth(image) > 0.35 else "👎"


def cool_colours(image: Image.Image) -> str | None:
    """Prefers cool colours, the opposite of `warm_colours`: 👍 for clearly cool images (blues, greens, purples:
    blue outweighs red), 👎 for the rest.

    About a quarter of the shipped DCGAN's samples pass (warmth < -0.05)."""
    return "👍" if warmth(image) < -0.05 else "👎"


def moon_and_night(poem: str) -> str | None:
    """Prefers poems of the night sky: 👍 when a poem mentions the moon, night, stars, the sky, the dark or dreams
    (Chinese: 月, the moon), 👎 otherwise."""
    if NIGHT_ZH.search(poem) or NIGHT_EN.search(poem.lower()):
        return "👍"
    return "👎"


def sun_and_day(poem: str) -> str | None:
    """Prefers poems of the daylight, the other taste to `moon_and_night`: 👍 when a poem mentions the sun, the day,
    dawn, morning, noon, light, summer or gold (Chinese: 日 or 阳, the sun), 👎 otherwise."""
    if DAY_ZH.search(poem) or DAY_EN.search(poem.lower()):
        return "👍"
    return "👎"


def indifferent(_output) -> str | None:
    """Never reacts: with no feedback there is nothing to learn (a control)."""
    return None
