"""What the serving benchmarks share: percentiles, and how late the event loop wakes up (its lag)."""

from __future__ import annotations

import asyncio
import time


def pct(xs: list[float], q: float) -> float:
    """The ``q``-th percentile of ``xs`` (nearest rank; NaN for no values)."""
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = min(len(xs) - 1, max(0, round(q / 100 * (len(xs) - 1))))
    return xs[k]


class LoopLag:
    """A ticker that sleeps ``period`` seconds at a time and records how much later than asked it woke up: the
    event loop's lag while something else runs on it. ``start()`` in a running loop, ``await stop()`` at the end;
    ``lags`` holds the seconds."""

    def __init__(self, period: float = 0.005):
        self.period = period
        self.lags: list[float] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def _tick(self) -> None:
        while not self._stop.is_set():
            t = time.perf_counter()
            await asyncio.sleep(self.period)
            self.lags.append(max(0.0, time.perf_counter() - t - self.period))

    def start(self) -> "LoopLag":
        self._task = asyncio.get_running_loop().create_task(self._tick(), name="bench-loop-lag")
        return self

    async def stop(self) -> list[float]:
        self._stop.set()
        if self._task is not None:
            await self._task
        return self.lags
