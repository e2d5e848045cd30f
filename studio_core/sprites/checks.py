"""Consistency checks across the frames of a sheet; each warning names its frame."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PIL import Image

from studio_core.sprites.drift import DriftReport
from studio_core.sprites.frames import Pivot, alpha_bbox, pivot_of
from studio_core.sprites.palettes import Palette
from studio_core.sprites.tiles import SEAM_THRESHOLD, seam_report

PIVOT_TOLERANCE = 1.5  # px: a frame whose feet move more than this will visibly jitter


@dataclass(frozen=True, slots=True)
class SheetWarning:
    frame: str
    kind: str  # "size" | "pivot" | "palette" | "seam" | "empty" | "drift"
    message: str


def check_frames(
    frames: Sequence[tuple[str, Image.Image]],
    *,
    palette: Palette | None = None,
    tiles: bool = False,
    pivot: Pivot = "bottom-centre",
    drift: DriftReport | None = None,
) -> tuple[SheetWarning, ...]:
    """Warnings for ``frames``; with ``drift`` (from :func:`studio_core.sprites.drift.measure_drift`
    on the same frames) also one per frame whose character drifted over the report's limit."""
    out: list[SheetWarning] = []
    if not frames:
        return ()
    sizes = Counter(img.size for _, img in frames)
    common = sizes.most_common(1)[0][0]
    pivots: list[tuple[str, tuple[float, float]]] = []
    pal = np.array(palette.colours, dtype=np.int32) if palette else None
    for name, img in frames:
        if img.size != common:
            out.append(SheetWarning(name, "size", f"{name} is {img.width}×{img.height}; most frames are {common[0]}×{common[1]}."))
        rgba = img.convert("RGBA")
        box = alpha_bbox(rgba)
        if box is None:
            out.append(SheetWarning(name, "empty", f"{name} is fully transparent."))
            continue
        if not tiles:
            # Relative to the frame's bottom centre: that is where pack() anchors a frame
            # in its grid cell, so this is the offset the engine will actually show.
            px, py = pivot_of(box, pivot)
            pivots.append((name, (px - img.width / 2, py - img.height)))
        if pal is not None:
            arr = np.asarray(rgba).reshape(-1, 4)
            colours = np.unique(arr[arr[:, 3] >= 128, :3].astype(np.int32), axis=0)
            if len(colours):
                inside = (colours[:, None, :] == pal[None]).all(-1).any(1)
                stray = int((~inside).sum())
                if stray:
                    out.append(SheetWarning(name, "palette",
                                            f"{name} uses {stray} colour{'s' if stray > 1 else ''} outside the {palette.name} palette."))
        if tiles:
            rep = seam_report(rgba)
            if not rep.seamless(SEAM_THRESHOLD):
                side = "left/right" if rep.horizontal >= rep.vertical else "top/bottom"
                out.append(SheetWarning(name, "seam", f"{name} has a visible {side} seam when tiled."))
    if len(pivots) > 1:
        ref = tuple(np.median([p for _, p in pivots], axis=0))
        for name, (px, py) in pivots:
            dx, dy = px - ref[0], py - ref[1]
            if max(abs(dx), abs(dy)) > PIVOT_TOLERANCE:
                out.append(SheetWarning(name, "pivot",
                                        f"{name}'s {pivot.replace('-', ' ')} is off by ({dx:+.0f}, {dy:+.0f}) px; "
                                        "it will jump when animated. Use Align frames."))
    for d in drift.over if drift is not None else ():
        outline = f", outline overlap {d.overlap:.0%}" if d.overlap is not None else ""
        out.append(SheetWarning(d.name, "drift",
                                f"{d.name} may show a different character: drift {d.score:.2f} is over the limit "
                                f"{drift.threshold:.2f} (colour difference ΔE {d.palette:.0f}{outline})."))
    return tuple(out)


def check_same_size(frames: Sequence[tuple[str, Image.Image]]) -> None:
    """Raise FrameMismatch naming the odd frames (for formats that need one size)."""
    from studio_core.sprites.errors import FrameMismatch

    sizes = Counter(img.size for _, img in frames)
    if len(sizes) <= 1:
        return
    common = sizes.most_common(1)[0][0]
    odd = [f"{n} ({i.width}×{i.height})" for n, i in frames if i.size != common]
    raise FrameMismatch(f"sizes {dict(sizes)}",
                        user_message=f"The selected images have different sizes: {', '.join(odd[:4])}"
                                     f"{'…' if len(odd) > 4 else ''} differ from {common[0]}×{common[1]}. "
                                     "Use Align frames, or pick images of one size.")
