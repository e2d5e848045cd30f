"""How long a set of frames will take, in words. Qt-free.

Measured beats guessed: the recent finished jobs of the same service give seconds per
image; without any, ComfyUI's quality tier gives its per-image time hint (the planner's,
for the assumed card), and a cloud service says nothing rather than invent a figure.
"""

from __future__ import annotations

import statistics
from typing import Any, Iterable

RECENT_JOBS = 5


def seconds_per_image(entries: Iterable[Any], service: str) -> float | None:
    """Median seconds per image over the latest finished jobs of ``service`` (JobEntry-like)."""
    rates: list[float] = []
    for e in entries:
        state = str(getattr(e, "state", ""))
        if state != "done" or e.request.service != service or not e.images:
            continue
        if e.started is None or e.ended is None or e.ended <= e.started:
            continue
        rates.append((e.ended - e.started) / e.images)
        if len(rates) >= RECENT_JOBS:
            break
    return statistics.median(rates) if rates else None


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def time_text(*, images: int, service: str, per_image: float | None, quality: Any = None) -> str:
    """'~12 min' from a measured rate; '~25 s–45 s each' from ComfyUI's tier hint; '' when unknown."""
    if per_image is not None:
        return f"~{duration(per_image * images)}"
    if service == "comfyui" and quality is not None:
        from studio_core.hardware.presets import quality_spec

        try:
            return f"{quality_spec(quality).time_hint} each"
        except ValueError:
            return ""
    return ""
