"""Speed and time left from byte counts, over a short sliding window."""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass
from typing import Callable

WINDOW_S = 5.0


@dataclass(frozen=True, slots=True)
class Transfer:
    done: int
    total: int
    speed: float  # bytes per second, 0 until measured
    eta_s: float | None  # None until there is a speed

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0


class RateMeter:
    """Bytes per second over the last few seconds: a stall shows at once, a burst is smoothed."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, window_s: float = WINDOW_S):
        self._clock = clock
        self._window = window_s
        self._samples: collections.deque[tuple[float, int]] = collections.deque()
        self.count = 0

    def add(self, n: int) -> None:
        self.count += n
        now = self._clock()
        self._samples.append((now, self.count))
        while len(self._samples) > 2 and now - self._samples[1][0] > self._window:
            self._samples.popleft()

    def speed(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        (t0, c0), (t1, c1) = self._samples[0], self._samples[-1]
        return (c1 - c0) / (t1 - t0) if t1 > t0 else 0.0

    def transfer(self, done: int, total: int) -> Transfer:
        speed = self.speed()
        eta = max(0.0, (total - done) / speed) if speed > 0 and total else None
        return Transfer(done, total, speed, eta)


def describe(t: Transfer) -> str:
    """"1.2 of 2.0 GB · 12.5 MB/s · 1 min 4 s left" for a progress line."""
    from studio_core.setup.plan import human_size

    parts = [f"{human_size(t.done)} of {human_size(t.total)}" if t.total else human_size(t.done)]
    if t.speed > 0:
        parts.append(f"{human_size(int(t.speed))}/s")
    if t.eta_s is not None:
        parts.append(f"{duration(t.eta_s)} left")
    return " · ".join(parts)


def duration(seconds: float) -> str:
    s = int(round(seconds))
    if s < 1:
        return "under 1 s"
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"
