"""How fast each server is, measured: seconds per unit of work, per model family.

A unit of work is one sampler step on one megapixel (``steps × megapixels × batch``), so a
4-step sprite and a 30-step 1024² scene on the same server give the same figure. Each
server keeps an exponentially weighted figure per family (an SDXL step costs more than an
SD1.5 one, FLUX more again); the newest job weighs ``ALPHA``, so the figure follows a
server that got slower (another program on its GPU) within a few jobs without jumping on
one odd job.

A server that never ran a family is estimated from the servers that did, scaled by how it
compares with them on what both ran; with nothing measured anywhere every server gets the
same guess, and the user's order decides.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

ALPHA = 0.3  # weight of the newest job
DEFAULT_S_PER_UNIT = 0.05  # a guess (≈ 1 s for 20 steps at 1 MP) until something is measured
DEFAULT_STEPS = 20


def family_key(model: str) -> str:
    """The bucket a job's time goes to: its family when the name tells it, else the model itself."""
    from studio_core.hardware.families import family_id_from_name

    return family_id_from_name(model) or (f"model:{model}" if model else "")


def work_units(steps: int, width: int, height: int, batch: int = 1) -> float:
    return max(1, int(steps)) * max(1, int(width)) * max(1, int(height)) / 1e6 * max(1, int(batch))


def graph_units(graph: Mapping[str, Any]) -> float:
    """Work units of an API-format graph: every sampler's steps on the largest latent in it."""
    steps = 0
    pixels = 0
    batch = 1
    for node in graph.values():
        inputs = node.get("inputs") if isinstance(node, Mapping) else None
        if not isinstance(inputs, Mapping):
            continue
        if isinstance(inputs.get("steps"), int):
            steps += inputs["steps"]
        w, h = inputs.get("width"), inputs.get("height")
        if isinstance(w, int) and isinstance(h, int) and w * h > pixels:
            pixels = w * h
            batch = inputs["batch_size"] if isinstance(inputs.get("batch_size"), int) else 1
    return work_units(steps or DEFAULT_STEPS, *((pixels, 1) if pixels else (1024, 1024)), batch)


class SpeedBook:
    """One server's measured seconds per work unit, per family."""

    def __init__(self) -> None:
        self._by_family: dict[str, float] = {}
        self.jobs = 0

    def record(self, family: str, units: float, seconds: float) -> None:
        if units <= 0 or seconds <= 0:
            return
        x = seconds / units
        old = self._by_family.get(family)
        self._by_family[family] = x if old is None else old + ALPHA * (x - old)
        self.jobs += 1

    def get(self, family: str) -> float | None:
        return self._by_family.get(family)

    def families(self) -> dict[str, float]:
        return dict(self._by_family)


def seconds_per_unit(book: SpeedBook, family: str, others: Iterable[SpeedBook]) -> float:
    """``book``'s figure for ``family``, or the best guess from the other servers' books."""
    own = book.get(family)
    if own is not None:
        return own
    mine = book.families()
    guesses = []
    for other in others:
        if other is book or other.get(family) is None:
            continue
        theirs = other.families()
        shared = [f for f in mine if f in theirs]
        # This server against that one on what both ran; 1 when they share nothing.
        ratio = sum(mine[f] / theirs[f] for f in shared) / len(shared) if shared else 1.0
        guesses.append(other.get(family) * ratio)
    if guesses:
        return sum(guesses) / len(guesses)
    if mine:  # another family measured here, this one nowhere: the server's own pace
        return sum(mine.values()) / len(mine)
    return DEFAULT_S_PER_UNIT
