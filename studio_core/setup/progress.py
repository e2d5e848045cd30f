"""Speed and time left from byte counts, over a short sliding window."""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass
from typing import Callable

WINDOW_S = 5.0
# No byte for this long and the line says "stalled" instead of the last speed it had.
STALL_S = 5.0


@dataclass(frozen=True, slots=True)
class Transfer:
    done: int
    total: int
    speed: float  # bytes per second, 0 until measured (and while stalled)
    eta_s: float | None  # None until there is a speed
    idle_s: float = 0.0  # seconds since the last byte arrived (or since the meter started)
    stalled: bool = False

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0


class RateMeter:
    """Bytes per second over the last few seconds: a stall shows at once, a burst is smoothed.

    The speed is measured up to *now*, not up to the last byte, so a meter asked again while
    nothing arrives (the installer's timer does that) slows down and then says stalled,
    instead of repeating the last speed it saw.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, window_s: float = WINDOW_S,
                 stall_s: float = STALL_S):
        self._clock = clock
        self._window = window_s
        self._stall = stall_s
        self._samples: collections.deque[tuple[float, int]] = collections.deque()
        self._started = clock()
        self.count = 0

    def add(self, n: int) -> None:
        self.count += n
        now = self._clock()
        self._samples.append((now, self.count))
        self._prune(now)

    def _prune(self, now: float) -> None:
        while len(self._samples) > 2 and now - self._samples[1][0] > self._window:
            self._samples.popleft()

    def idle(self) -> float:
        last = self._samples[-1][0] if self._samples else self._started
        return max(0.0, self._clock() - last)

    def speed(self) -> float:
        now = self._clock()
        self._prune(now)
        if len(self._samples) < 2 or self.idle() >= self._stall:
            return 0.0
        (t0, c0), (_t1, c1) = self._samples[0], self._samples[-1]
        return (c1 - c0) / (now - t0) if now > t0 else 0.0

    def transfer(self, done: int, total: int) -> Transfer:
        speed = self.speed()
        idle = self.idle()
        eta = max(0.0, (total - done) / speed) if speed > 0 and total else None
        return Transfer(done, total, speed, eta, idle, idle >= self._stall and done < total)


def describe(t: Transfer) -> str:
    """"1.2 of 2.0 GB · 12.5 MB/s · 1 min 4 s left" for a progress line."""
    from studio_core.setup.plan import human_size

    parts = [f"{human_size(t.done)} of {human_size(t.total)}" if t.total else human_size(t.done)]
    if t.stalled:
        parts.append(f"0 B/s · stalled, nothing received for {duration(t.idle_s)}")
        return " · ".join(parts)
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
