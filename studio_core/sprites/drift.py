"""Character drift: how far each frame of a set strays from the character the others show.

Image models redraw the character on every frame, so an 8-direction walk can change its
colours or its build halfway. Two measures catch that, both after the frames are lined
up on their bottom-centre pivot:

* palette distance: each frame's colours reduced to a small k-means palette in CIE Lab,
  compared as a weighted nearest-colour distance (ΔE76), so the same colours in other
  proportions (a leg in front of the tunic) cost little and a new colour costs a lot;
* silhouette overlap: intersection over union of the alpha masks.

A frame is compared with the other frames of its animation (one direction of a walk):
its drift is the median over them, so one odd frame does not make its neighbours look
odd too. Legs that swing in a walk move the silhouette a little; a different character
moves both measures a lot. The score is 0 (same) to 1 (nothing in common).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PIL import Image

from studio_core.sprites.frames import Pivot, align_frames

DRIFT_THRESHOLD = 0.3
PALETTE_COLOURS = 8
DELTA_E_FULL = 20.0  # ΔE76 at which a palette counts as wholly different (2.3 is "just noticeable")
PALETTE_WEIGHT = 0.6  # colours say more about identity than an outline that legs change
MASK_SIDE = 64  # silhouettes are compared at this size: enough for a sprite's outline
SAMPLE = 4096  # pixels per frame fed to k-means


@dataclass(frozen=True, slots=True)
class FrameDrift:
    name: str
    score: float
    palette: float  # median ΔE76 to the other frames
    overlap: float | None  # median IoU; None when the frame has no other frame of its animation

    def over(self, threshold: float) -> bool:
        return self.score > threshold


@dataclass(frozen=True)
class DriftReport:
    frames: tuple[FrameDrift, ...]
    threshold: float = DRIFT_THRESHOLD

    @property
    def over(self) -> tuple[FrameDrift, ...]:
        return tuple(f for f in self.frames if f.over(self.threshold))

    @property
    def worst(self) -> FrameDrift | None:
        return max(self.frames, key=lambda f: f.score, default=None)

    def summary(self) -> str:
        worst = self.worst
        if worst is None:
            return "Character drift: needs two frames or more."
        over = self.over
        if over:
            names = ", ".join(f"{f.name} {f.score:.2f}" for f in sorted(over, key=lambda f: -f.score)[:4])
            more = "…" if len(over) > 4 else ""
            return (f"Character drift: {len(over)} of {len(self.frames)} frames over the limit "
                    f"{self.threshold:.2f} ({names}{more}).")
        return f"Character drift: highest {worst.score:.2f} ({worst.name}), under the limit {self.threshold:.2f}."


# ---------------------------------------------------------------------------------------
# Colour


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(n, 3) uint8 sRGB → (n, 3) CIE Lab, D65."""
    c = rgb.astype(np.float64) / 255.0
    c = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124564, 0.3575761, 0.1804375],
                  [0.2126729, 0.7151522, 0.0721750],
                  [0.0193339, 0.1191920, 0.9503041]])
    xyz = c @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1)


def palette(rgba: np.ndarray, k: int = PALETTE_COLOURS) -> tuple[np.ndarray, np.ndarray]:
    """The frame's opaque colours as ``k`` Lab centres and their shares (summing to 1).
    Deterministic: the same frame always gives the same palette."""
    px = rgba.reshape(-1, 4)
    px = px[px[:, 3] >= 128, :3]
    if not len(px):
        return np.zeros((0, 3)), np.zeros(0)
    colours, counts = np.unique(px, axis=0, return_counts=True)
    if len(colours) <= k:  # pixel art: its palette is exact
        return srgb_to_lab(colours), counts / counts.sum()
    step = max(1, len(px) // SAMPLE)
    lab = srgb_to_lab(px[::step])
    rng = np.random.default_rng(0)
    centres = [lab[rng.integers(len(lab))]]
    for _ in range(1, k):  # k-means++ start: spread-out seeds
        d = np.min(((lab[:, None, :] - np.array(centres)[None]) ** 2).sum(-1), axis=1)
        total = d.sum()
        centres.append(lab[rng.choice(len(lab), p=d / total)] if total > 0 else lab[0])
    c = np.array(centres)
    for _ in range(12):
        label = np.argmin(((lab[:, None, :] - c[None]) ** 2).sum(-1), axis=1)
        moved = np.array([lab[label == j].mean(0) if (label == j).any() else c[j] for j in range(k)])
        if np.allclose(moved, c, atol=0.05):
            break
        c = moved
    label = np.argmin(((lab[:, None, :] - c[None]) ** 2).sum(-1), axis=1)
    share = np.bincount(label, minlength=k) / len(label)
    return c[share > 0], share[share > 0]


def palette_distance(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """Weighted nearest-colour ΔE76, averaged both ways."""
    (ca, wa), (cb, wb) = a, b
    if not len(ca) or not len(cb):
        return 0.0 if len(ca) == len(cb) else DELTA_E_FULL
    d = np.sqrt(((ca[:, None, :] - cb[None]) ** 2).sum(-1))
    return float((wa @ d.min(1) + wb @ d.min(0)) / 2)


# ---------------------------------------------------------------------------------------
# Silhouette


def silhouettes(images: Sequence[Image.Image], pivot: Pivot) -> np.ndarray:
    """(n, MASK_SIDE², bool) alpha masks of the frames lined up on ``pivot``."""
    aligned = align_frames(images, pivot=pivot)
    w, h = aligned.size
    f = MASK_SIDE / max(w, h)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    return np.stack([np.asarray(im.getchannel("A").resize(size, Image.Resampling.BOX)).reshape(-1) >= 128
                     for im in aligned.images])


def overlap_matrix(masks: np.ndarray) -> np.ndarray:
    m = masks.astype(np.float32)
    inter = m @ m.T
    area = m.sum(1)
    union = area[:, None] + area[None] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


# ---------------------------------------------------------------------------------------


def score(palette_de: float, overlap: float | None) -> float:
    colour = min(1.0, palette_de / DELTA_E_FULL)
    if overlap is None:
        return colour
    return PALETTE_WEIGHT * colour + (1 - PALETTE_WEIGHT) * (1.0 - overlap)


def measure_drift(frames: Sequence[tuple[str, Image.Image]], *, groups: Sequence[str] | None = None,
                  pivot: Pivot = "bottom-centre", threshold: float = DRIFT_THRESHOLD) -> DriftReport:
    """Drift of every frame that has something drawn. ``groups`` (one per frame, e.g. the
    animation: walk_down, walk_left) says which frames should share a silhouette; frames
    of other groups still share the palette. Without groups all frames are one group."""
    named = [(n, im.convert("RGBA"), g) for (n, im), g in
             zip(frames, groups if groups is not None else [""] * len(frames))]
    named = [(n, im, g) for n, im, g in named if np.asarray(im.getchannel("A")).max() >= 16]
    if len(named) < 2:
        return DriftReport((), threshold)
    pals = [palette(np.asarray(im)) for _, im, _ in named]
    n = len(named)
    de = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            de[i, j] = de[j, i] = palette_distance(pals[i], pals[j])
    iou: dict[int, float] = {}
    members: dict[str, list[int]] = {}
    for i, (_, _, g) in enumerate(named):
        members.setdefault(g, []).append(i)
    for idx in members.values():
        if len(idx) < 2:
            continue
        ov = overlap_matrix(silhouettes([named[i][1] for i in idx], pivot))
        for a, i in enumerate(idx):
            iou[i] = float(np.median(np.delete(ov[a], a)))
    out = []
    for i, (name, _, g) in enumerate(named):
        peers = [j for j in members[g] if j != i] or [j for j in range(n) if j != i]
        p = float(np.median(de[i, peers]))
        o = iou.get(i)
        out.append(FrameDrift(name, round(score(p, o), 4), round(p, 2), None if o is None else round(o, 4)))
    return DriftReport(tuple(out), threshold)
