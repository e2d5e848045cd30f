"""Does a job fit the card, and if not, what to change.

:func:`assess` compares the estimate with the profile's safe budget and, when it is over,
proposes changes in a fixed order, each building on the one before, until one fits:

1. a smaller batch (the largest that fits; the profile's batch limit also applies),
2. tiled VAE decoding (``VAEDecodeTiled``), when the decode phase is what is over,
3. a lower resolution, upscaled afterwards to the size asked for,
4. running the server with ``--lowvram`` (ComfyUI streams weights from system RAM).

Nothing is applied here: the GUI shows the proposals and the user picks one.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any

from studio_core.hardware.estimator import Precision, VramEstimate, estimate_vram
from studio_core.hardware.families import ModelFamily
from studio_core.hardware.profiles import HardwareProfile


class FitLevel(enum.StrEnum):
    ok = "ok"  # green
    near = "near"  # amber: within 10% of the budget
    over = "over"  # red


class ProposalKind(enum.StrEnum):
    smaller_batch = "smaller_batch"
    tiled_vae = "tiled_vae"
    lower_resolution = "lower_resolution"
    lowvram = "lowvram"


@dataclass(frozen=True, slots=True)
class JobShape:
    family: ModelFamily
    width: int
    height: int
    batch: int = 1
    precision: Precision = Precision.fp16
    tiled_vae: bool = False
    lowvram: bool = False  # the server already runs with --lowvram

    def estimate(self) -> VramEstimate:
        est = estimate_vram(self.family, width=self.width, height=self.height, batch=self.batch,
                            precision=self.precision, tiled_vae=self.tiled_vae)
        return est


@dataclass(frozen=True, slots=True)
class Proposal:
    kind: ProposalKind
    title: str
    explanation: str
    # Request fields to change (batch, width, height) and options to set (tiled_vae, upscale_to).
    changes: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    server_flag: str = ""  # for lowvram: a server restart, not a request change
    peak_mib: float = 0.0
    fits: bool = False


@dataclass(frozen=True, slots=True)
class Assessment:
    estimate: VramEstimate
    budget_mib: float
    level: FitLevel
    proposals: tuple[Proposal, ...] = ()

    @property
    def peak_mib(self) -> float:
        return self.estimate.peak_mib


def _gpu_peak(shape: JobShape, budget: float) -> float:
    est = shape.estimate()
    if not shape.lowvram:
        return est.peak_mib
    # --lowvram: ComfyUI loads only as much of the weights as fits ("lowvram_model_memory" in
    # comfy/model_management.py: load_models_gpu) and streams the rest, keeping at least 64 MiB.
    fixed = est.sampling_mib - est.weights_mib
    sampling = max(fixed + 64, min(est.sampling_mib, budget))
    return max(est.text_mib, sampling, est.decode_mib)


def level_for(peak_mib: float, budget_mib: float) -> FitLevel:
    if peak_mib > budget_mib:
        return FitLevel.over
    if peak_mib > budget_mib * 0.9:
        return FitLevel.near
    return FitLevel.ok


def _gb(mib: float) -> str:
    return f"{mib / 1024:.1f} GB"


def assess(shape: JobShape, profile: HardwareProfile) -> Assessment:
    budget = float(profile.safe_mib)
    est = shape.estimate()
    peak = _gpu_peak(shape, budget)
    level = level_for(peak, budget)
    if level is not FitLevel.over and shape.batch <= profile.max_batch:
        return Assessment(est, budget, level)
    return Assessment(est, budget, level, tuple(_proposals(shape, profile, budget)))


def _proposals(shape: JobShape, profile: HardwareProfile, budget: float) -> list[Proposal]:
    out: list[Proposal] = []
    changes: dict[str, Any] = {}
    options: dict[str, Any] = {}
    cur = shape

    def add(kind: ProposalKind, title: str, why: str, flag: str = "") -> bool:
        peak = _gpu_peak(cur, budget)
        fits = peak <= budget
        tail = f" Estimated peak afterwards: {_gb(peak)} of {_gb(budget)} — " + ("fits." if fits else "still over.")
        # Steps build on each other, so the title names what this one carries from before.
        full = title if not out else f"{out[-1].title}, and {title[0].lower()}{title[1:]}"
        out.append(Proposal(kind, full, why + tail, dict(changes), dict(options), flag, peak, fits))
        return fits

    # 1. Smaller batch.
    if cur.batch > 1:
        best = 1
        for b in range(min(cur.batch - 1, profile.max_batch), 0, -1):
            if _gpu_peak(_with(cur, batch=b), budget) <= budget:
                best = b
                break
        cur = _with(cur, batch=best)
        changes["batch"] = best
        if add(ProposalKind.smaller_batch, f"Batch {best} instead of {shape.batch}",
               f"Each image in a batch is sampled at the same time, so memory grows with the batch. "
               f"Batch {best} makes the same images one run at a time (press Generate again for more)."):
            return out

    # 2. Tiled VAE decode, when decoding is the phase over budget.
    est = cur.estimate()
    if not cur.tiled_vae and est.decode_mib > budget * 0.9 and (est.dominant == "VAE decode" or est.decode_mib > budget):
        cur = _with(cur, tiled_vae=True)
        options["tiled_vae"] = True
        if add(ProposalKind.tiled_vae, "Decode in tiles (VAEDecodeTiled)",
               f"Turning the latent into pixels needs {_gb(est.decode_mib)} at this size. Decoding in "
               f"512-pixel tiles needs about a quarter of that, takes a few seconds longer and can leave "
               f"faint seams on smooth gradients."):
            return out

    # 3. Lower resolution, then upscale to the size asked for.
    smaller = _fit_resolution(cur, budget)
    if smaller is not None:
        w, h = smaller
        cur = _with(cur, width=w, height=h)
        changes.update(width=w, height=h)
        options["upscale_to"] = f"{shape.width}x{shape.height}"
        if add(ProposalKind.lower_resolution, f"Generate at {w}×{h}, then upscale to {shape.width}×{shape.height}",
               f"Memory for sampling grows with the number of pixels. Generating at {w}×{h} and upscaling "
               f"afterwards keeps the size you asked for, with slightly softer detail."):
            return out

    # 4. --lowvram on the server.
    if not cur.lowvram:
        cur = _with(cur, lowvram=True)
        add(ProposalKind.lowvram, "Run ComfyUI with --lowvram",
            "ComfyUI then keeps part of the model in system RAM and moves it to the GPU as needed. "
            "Nothing about the image changes, but generation is slower (often 2–3×). The app restarts a "
            "server it manages with this flag; a server you started yourself needs it added to its command.",
            flag="--lowvram")
    return out


def _with(shape: JobShape, **changes: Any) -> JobShape:
    return JobShape(**{**{f: getattr(shape, f) for f in JobShape.__dataclass_fields__}, **changes})


def _fit_resolution(shape: JobShape, budget: float) -> tuple[int, int] | None:
    """The largest size with the same aspect, in steps of 64 px, down to half the native side."""
    floor = max(256, shape.family.native[0] // 2)
    aspect = shape.width / shape.height
    scale = 1.0
    while True:
        scale -= 0.05
        w = int(math.floor(shape.width * scale / 64) * 64)
        h = int(math.floor(w / aspect / 64) * 64) if aspect >= 1 else int(math.floor(shape.height * scale / 64) * 64)
        if aspect < 1:
            w = int(math.floor(h * aspect / 64) * 64)
        if min(w, h) < floor or scale <= 0.2:
            return None
        if (w, h) == (shape.width, shape.height):
            continue
        if _gpu_peak(_with(shape, width=w, height=h), budget) <= budget:
            return w, h


__all__ = ["Assessment", "FitLevel", "JobShape", "Proposal", "ProposalKind", "assess", "level_for"]
