"""The benchmarks' line charts, drawn with Pillow alone: a frame of rounds against a share from 0 to 1.

`rounds_axes` draws the frame, its grid and its labels onto an ``ImageDraw`` and returns the two functions that
place a point (round → x, share → y); `promotion_dots` marks each round's point, filled where that round's
fine-tune was promoted. `bench.taste` and `scripts/plot_feedback.py` draw their curves with them.
"""

from __future__ import annotations

from typing import Callable

GRID, FRAME, INK = (230, 230, 230), (120, 120, 120), (80, 80, 80)


def rounds_axes(d, size: tuple[int, int], pad: int, rounds: int,
                label_x: int = 10) -> tuple[Callable[[float], float], Callable[[float], float]]:
    """Frame, grid lines at 0, 0.25 … 1 (labelled at ``label_x``) and round numbers 0 … ``rounds`` on ``d``;
    returns (x of a round, y of a share)."""
    w, h = size
    x = lambda r: pad + (w - 2 * pad) * r / max(1, rounds)  # noqa: E731
    y = lambda v: h - pad - (h - 2 * pad) * v  # noqa: E731
    d.rectangle([pad, pad, w - pad, h - pad], outline=FRAME)
    for v in (0.0, 0.25, 0.5, 0.75, 1.0):
        d.line([pad, y(v), w - pad, y(v)], fill=GRID)
        d.text((label_x, y(v) - 6), f"{v:.2f}", fill=INK)
    for r in range(rounds + 1):
        d.text((x(r) - 3, h - pad + 6), str(r), fill=INK)
    return x, y


def promotion_dots(d, points: list[tuple[float, float]], rows: list[dict], colour, filled_all: bool = False) -> None:
    """A dot on each point: filled where its row's fine-tune was promoted (``row["gate"]``), or everywhere."""
    for (px, py), r in zip(points, rows):
        filled = filled_all or r.get("gate") == "promoted"
        d.ellipse([px - 4, py - 4, px + 4, py + 4], fill=colour if filled else "white", outline=colour, width=2)
