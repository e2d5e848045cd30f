"""Variants and animation frames: the requests that make them, and lining frames up.

Generic image models do not draw sprite sheets. The studio asks for each frame on its
own with the same seed and settings and a prompt that names the pose, then aligns the
results on one canvas by their alpha bounding box and a shared pivot point.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Sequence

if TYPE_CHECKING:  # Pillow is imported where frames are aligned: the Generate tab loads this module
    from PIL import Image

from studio_core.models import GenerationRequest
from studio_core.sprites.errors import EmptySheet

Pivot = Literal["bottom-centre", "centre", "top-left"]
SEED_MAX = 2**32 - 1

# Poses per animation, in playing order. Wording follows common sprite-sheet tutorials.
ANIMATIONS: dict[str, tuple[str, ...]] = {
    "idle": ("idle pose, standing relaxed", "idle pose, breathing in, chest slightly raised",
             "idle pose, standing relaxed", "idle pose, breathing out, shoulders slightly lowered"),
    "walk": ("walk cycle contact pose, left foot forward", "walk cycle down pose, weight on left foot",
             "walk cycle passing pose, right leg passing", "walk cycle up pose, rising on left foot",
             "walk cycle contact pose, right foot forward", "walk cycle down pose, weight on right foot",
             "walk cycle passing pose, left leg passing", "walk cycle up pose, rising on right foot"),
    "run": ("run cycle contact pose, left foot striking the ground", "run cycle push-off pose, driving off the left foot",
            "run cycle flight pose, both feet off the ground, right knee forward",
            "run cycle contact pose, right foot striking the ground", "run cycle push-off pose, driving off the right foot",
            "run cycle flight pose, both feet off the ground, left knee forward"),
    "attack": ("attack anticipation, winding up", "attack strike, weapon swinging forward",
               "attack impact, arm fully extended", "attack recovery, returning to stance"),
    "jump": ("jump anticipation, crouching low, arms swung back", "jump take-off, pushing off the ground, arms swinging up",
             "jump apex, high in the air, knees tucked", "jump falling, legs reaching down",
             "jump landing, knees bent absorbing the impact"),
}
DIRECTIONS: dict[int, tuple[tuple[str, str], ...]] = {
    1: (("side", "side view facing right"),),
    4: (("down", "front view facing the viewer"), ("left", "side view facing left"),
        ("right", "side view facing right"), ("up", "back view facing away")),
    8: (("down", "front view facing the viewer"), ("down_left", "three-quarter view facing down-left"),
        ("left", "side view facing left"), ("up_left", "three-quarter back view facing up-left"),
        ("up", "back view facing away"), ("up_right", "three-quarter back view facing up-right"),
        ("right", "side view facing right"), ("down_right", "three-quarter view facing down-right")),
}
CONSISTENCY = "same character, same outfit, same colours, full body, centred"


def _seed(base: GenerationRequest, rng: random.Random | None) -> int:
    if base.seed is not None:
        return base.seed
    return (rng or random.Random()).randint(0, SEED_MAX)


def variant_requests(base: GenerationRequest, count: int, *, max_batch: int = 1,
                     rng: random.Random | None = None) -> tuple[GenerationRequest, ...]:
    """``count`` variants with consecutive seeds (seed, seed+1, …).

    With ``max_batch`` > 1 (a service that batches), requests carry ``batch`` > 1 and
    the seed of their first image; the provider numbers the rest.
    """
    if count < 1:
        return ()
    seed = _seed(base, rng)
    out = []
    i = 0
    while i < count:
        n = min(max(1, max_batch), count - i)
        out.append(base.replace(seed=(seed + i) % (SEED_MAX + 1), batch=n))
        i += n
    return tuple(out)


@dataclass(frozen=True, slots=True)
class FrameSpec:
    name: str  # file-name friendly, e.g. "walk_left_03"
    animation: str
    direction: str
    index: int
    request: GenerationRequest
    # The template and the pose within it (``ANIMATIONS[template][pose]``): with fewer frames
    # than poses, ``index`` counts frames while ``pose`` picks the matching pose image.
    template: str = ""
    pose: int = 0


def pick_poses(poses: Sequence[str], frames: int | None) -> tuple[str, ...]:
    """``frames`` poses spread evenly over the cycle (all of them when None or more):
    a 4-frame walk keeps the contact and passing poses of both feet."""
    return tuple(poses[i] for i in pick_indices(len(poses), frames))


def pick_indices(count: int, frames: int | None) -> tuple[int, ...]:
    """The pose numbers :func:`pick_poses` keeps out of ``count``."""
    if frames is None or frames >= count:
        return tuple(range(count))
    n = max(1, frames)
    return tuple(i * count // n for i in range(n))


def animation_requests(base: GenerationRequest, animation: str, *, directions: int = 1,
                       frames: int | None = None, rng: random.Random | None = None) -> tuple[FrameSpec, ...]:
    """One request per frame and direction: same seed and settings, the pose in the prompt.
    ``frames`` per direction picks that many of the template's poses (see :func:`pick_poses`)."""
    try:
        picked = pick_indices(len(ANIMATIONS[animation]), frames)
        poses = tuple(ANIMATIONS[animation][i] for i in picked)
    except KeyError:
        raise ValueError(f"unknown animation {animation!r}; choose from {sorted(ANIMATIONS)}") from None
    if directions not in DIRECTIONS:
        raise ValueError("directions must be 1, 4 or 8")
    seed = _seed(base, rng)
    specs = []
    for dir_key, dir_words in DIRECTIONS[directions]:
        for i, pose in enumerate(poses):
            prompt = ", ".join(p for p in (base.prompt.strip(), dir_words, pose, CONSISTENCY) if p)
            name = f"{animation}_{dir_key}_{i:02d}" if directions > 1 else f"{animation}_{i:02d}"
            specs.append(FrameSpec(name, animation if directions == 1 else f"{animation}_{dir_key}",
                                   dir_key, i, base.replace(prompt=prompt, seed=seed, batch=1), animation, picked[i]))
    return tuple(specs)


# ---------------------------------------------------------------------------------------
# Alignment


def alpha_bbox(img: Image.Image, threshold: int = 16) -> tuple[int, int, int, int] | None:
    # numpy is imported where used: the Generate tab reads this module's tables at start-up.
    import numpy as np

    a = np.asarray(img.convert("RGBA"))[..., 3] >= threshold
    rows, cols = np.flatnonzero(a.any(1)), np.flatnonzero(a.any(0))
    if not len(rows):
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def pivot_of(box: tuple[int, int, int, int], pivot: Pivot) -> tuple[float, float]:
    x0, y0, x1, y1 = box
    if pivot == "bottom-centre":
        return (x0 + x1) / 2, float(y1)
    if pivot == "centre":
        return (x0 + x1) / 2, (y0 + y1) / 2
    return float(x0), float(y0)


@dataclass(frozen=True)
class AlignedFrames:
    images: tuple[Image.Image, ...]
    size: tuple[int, int]
    pivot: tuple[int, int]  # in canvas pixels, the same for every frame


def align_frames(images: Sequence[Image.Image], *, pivot: Pivot = "bottom-centre", margin: int = 0) -> AlignedFrames:
    """Put every frame on one canvas with its pivot (from the alpha bounding box) on the
    same point. The canvas keeps the largest input size when everything fits, with the
    pivot where the typical frame had it, so a 32×32 walk stays 32×32; it grows only
    when a frame would otherwise be cut."""
    import numpy as np
    from PIL import Image

    if not images:
        raise EmptySheet("no frames to align")
    crops, offsets, pivots = [], [], []
    for img in images:
        rgba = img.convert("RGBA")
        box = alpha_bbox(rgba) or (0, 0, rgba.width, rgba.height)
        px, py = pivot_of(box, pivot)
        crops.append(rgba.crop(box))
        offsets.append((px - box[0], py - box[1]))  # pivot inside the crop
        pivots.append((px, py))
    left = max(ox for ox, _ in offsets)
    top = max(oy for _, oy in offsets)
    right = max(c.width - ox for c, (ox, _) in zip(crops, offsets))
    bottom = max(c.height - oy for c, (_, oy) in zip(crops, offsets))
    tx, ty = (float(v) for v in np.median(np.array(pivots), axis=0))
    pvx, pvy = max(left, tx), max(top, ty)
    w = max(max(im.width for im in images), int(np.ceil(pvx + right))) + 2 * margin
    h = max(max(im.height for im in images), int(np.ceil(pvy + bottom))) + 2 * margin
    pv = (int(round(pvx)) + margin, int(round(pvy)) + margin)
    out = []
    for crop, (ox, oy) in zip(crops, offsets):
        canvas = Image.new("RGBA", (w, h))
        canvas.paste(crop, (int(round(pv[0] - ox)), int(round(pv[1] - oy))))
        out.append(canvas)
    return AlignedFrames(tuple(out), (w, h), pv)
