"""What one Generate click queues: a single image, N variants, or an animation's frames.

Pure and Qt-free: the window's frames panel and a script get the same requests from the
same :class:`FrameSetSpec`. Each request of a set carries a typed
:class:`~studio_core.models.FrameRef` (``request.member``): the set, its frame number and
name, the animation row it plays in. The poses and directions come from
:mod:`studio_core.sprites.frames`.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from studio_core.models import FrameRef, GenerationRequest

Mode = Literal["single", "variants", "animation"]
MODES: dict[str, str] = {"single": "Single image", "variants": "Variants", "animation": "Animation"}
MAX_VARIANTS = 64


@dataclass(frozen=True)
class FrameSetSpec:
    """The frames choice: ``frames_per_direction`` 0 means every pose of the template."""

    mode: Mode = "single"
    count: int = 4
    animation: str = "walk"
    directions: int = 1
    frames_per_direction: int = 0


@dataclass(frozen=True)
class FramePlan:
    """``requests`` in frame order, ``names`` one per image, ``meta`` for the sheet tools."""

    set_id: str
    requests: tuple[GenerationRequest, ...]
    names: tuple[str, ...]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return str(self.meta.get("kind", "single"))

    @property
    def images(self) -> int:
        return sum(max(1, r.batch) for r in self.requests)


def new_set_id() -> str:
    return uuid.uuid4().hex[:12]


def plan_frames(request: GenerationRequest, spec: FrameSetSpec, *, max_batch: int = 1,
                rng: random.Random | None = None, set_id: str | None = None) -> FramePlan:
    """The requests for ``spec``. A request without a seed gets one here, so the whole set
    shares it (animation) or counts up from it (variants)."""
    from studio_core.sprites import frames

    set_id = set_id or new_set_id()
    if spec.mode == "single":
        return FramePlan(set_id, (request,), tuple(f"image_{i:02d}" for i in range(max(1, request.batch))),
                         {"kind": "single", "seed": request.seed})
    if request.seed is None:
        request = request.replace(seed=(rng or random.Random()).randint(0, frames.SEED_MAX))
    if spec.mode == "variants":
        reqs = frames.variant_requests(request, max(1, min(spec.count, MAX_VARIANTS)), max_batch=max_batch)
        total = sum(r.batch for r in reqs)
        names = tuple(f"variant_{i:02d}" for i in range(total))
        out, first = [], 0
        for r in reqs:
            out.append(r.replace(member=FrameRef(set_id, first, names[first], "variants", total=total)))
            first += r.batch
        return FramePlan(set_id, tuple(out), names, {"kind": "variants", "seed": request.seed, "count": total,
                                                     "prompt": request.prompt})
    per_dir = spec.frames_per_direction or None
    specs = frames.animation_requests(request, spec.animation, directions=spec.directions, frames=per_dir)
    total = len(specs)
    reqs = tuple(s.request.replace(member=FrameRef(set_id, n, s.name, "animation", s.animation, s.direction, total))
                 for n, s in enumerate(specs))
    return FramePlan(set_id, reqs, tuple(s.name for s in specs), {
        "kind": "animation", "seed": request.seed, "animation": spec.animation,
        "directions": spec.directions, "frames_per_direction": total // max(1, spec.directions),
        "animations": [s.animation for s in specs], "poses": [s.pose for s in specs], "prompt": request.prompt})


def describe(plan: FramePlan, *, seed_known: bool, cost: float | None = None) -> str:
    """The summary line: '8 frames · 8 jobs · seed 1234 fixed'."""
    n, jobs = plan.images, len(plan.requests)
    seed = plan.meta.get("seed")
    parts: list[str]
    if plan.kind == "single":
        parts = [f"{n} image" + ("s" if n != 1 else ""), "1 job"]
    elif plan.kind == "variants":
        per = max(r.batch for r in plan.requests)
        parts = [f"{n} variants", f"{jobs} job" + ("s" if jobs != 1 else "") + (f" of {per}" if per > 1 else "")]
        parts.append(f"seeds {seed}–{seed + n - 1}" if seed_known and n > 1 else
                     f"seed {seed}" if seed_known else "consecutive seeds from a random start")
    else:
        d = plan.meta["directions"]
        head = f"{n} frames" + (f" ({d} directions × {plan.meta['frames_per_direction']})" if d > 1 else "")
        parts = [head, f"{jobs} jobs", f"seed {seed} fixed" if seed_known else "one random seed, fixed"]
    if cost is not None:
        parts.append(f"≈ ${cost:.2f}" if cost >= 0.01 or cost == 0 else f"≈ ${cost:.4f}")
    return " · ".join(parts)
