"""Transparent backgrounds: pick the best available way, or remove a key colour in the app.

Order of preference (:func:`choose_background_method`): the service's own transparent
output, then a background-removal node installed on the ComfyUI server, then the in-app
key colour: the prompt asks for a plain background of one colour and
:func:`remove_background` keys it out. The key fill starts at the image border, so pixels
of the background colour inside the subject (a green gem on a green screen) survive.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from studio_core.sprites._np import connected_to, dilate, rgba_array, to_image
from studio_core.sprites.errors import NoBackgroundFound

# Planning lives in its own numpy-free module; its names stay importable from here.
from studio_core.sprites.background_plan import (  # noqa: F401
    KEY_COLOURS,
    KEY_NEGATIVE,
    KEY_PROMPT,
    METHOD_OPTION,
    NATIVE_TRANSPARENCY,
    REMOVAL_NODES,
    BackgroundMethod,
    BackgroundPlan,
    apply_background_plan,
    choose_background_method,
    find_removal_node,
)


# ---------------------------------------------------------------------------------------
# In-app key colour removal


@dataclass(frozen=True, slots=True)
class BorderColour:
    rgb: tuple[int, int, int]
    coverage: float  # share of border pixels close to it, 0..1


def _border(arr: np.ndarray, width: int = 2) -> np.ndarray:
    h, w = arr.shape[:2]
    width = max(1, min(width, h // 2, w // 2))
    parts = [arr[:width].reshape(-1, arr.shape[2]), arr[-width:].reshape(-1, arr.shape[2]),
             arr[width:-width, :width].reshape(-1, arr.shape[2]), arr[width:-width, -width:].reshape(-1, arr.shape[2])]
    return np.concatenate(parts)


def detect_border_colour(img: Image.Image, *, tolerance: float = 48) -> BorderColour:
    """The dominant colour around the image edge and how much of the edge it covers."""
    px = _border(rgba_array(img)).astype(np.int32)
    opaque = px[px[:, 3] >= 16, :3]
    if len(opaque) == 0:
        return BorderColour((0, 0, 0), 0.0)
    bins = (opaque[:, 0] >> 4) << 8 | (opaque[:, 1] >> 4) << 4 | (opaque[:, 2] >> 4)
    mode = np.bincount(bins).argmax()
    key = np.median(opaque[bins == mode], axis=0)
    dist = np.sqrt(((opaque - key) ** 2).sum(axis=1))
    close = opaque[dist <= tolerance]
    key = np.median(close, axis=0) if len(close) else key
    coverage = float((np.sqrt(((opaque - key) ** 2).sum(axis=1)) <= tolerance).sum()) / len(px)
    return BorderColour(tuple(int(round(v)) for v in key), coverage)


def remove_background(
    img: Image.Image,
    *,
    tolerance: float = 48,
    softness: float = 48,
    despill: bool = True,
    key: tuple[int, int, int] | None = None,
    min_coverage: float = 0.6,
) -> Image.Image:
    """Key out the plain background that touches the border; return a new RGBA image.

    ``tolerance`` is the RGB distance (0–441) still counted as background; pixels just
    inside the subject within ``softness`` beyond it get partial alpha and, with
    ``despill``, have the key colour un-mixed from them (no green fringe).
    Raises :class:`NoBackgroundFound` when the edge is not mostly one colour, or is
    already transparent.
    """
    arr = rgba_array(img)
    h, w = arr.shape[:2]
    border_alpha = _border(arr)[:, 3]
    if (border_alpha < 16).mean() >= 0.6:
        raise NoBackgroundFound("border already transparent",
                                user_message="This image already has a transparent background.")
    if key is None:
        found = detect_border_colour(img, tolerance=tolerance)
        if found.coverage < min_coverage:
            raise NoBackgroundFound(f"border colour {found.rgb} covers {found.coverage:.0%} of the edge")
        key = found.rgb
    # Squared integer distances per channel plane: no full-size float or (H, W, 3) temporaries.
    dist2 = np.zeros((h, w), dtype=np.int32)
    for c in range(3):
        d = arr[..., c].astype(np.int32) - int(key[c])
        dist2 += d * d
    candidate = (dist2 <= int(tolerance * tolerance)) | (arr[..., 3] < 16)
    seeds = np.zeros((h, w), dtype=bool)
    seeds[0, :] = seeds[-1, :] = True
    seeds[:, 0] = seeds[:, -1] = True
    bg = connected_to(candidate, seeds)
    if not bg.any():
        raise NoBackgroundFound("no key-coloured pixel touches the edge")

    out = arr.copy()
    out[bg] = 0  # clean transparent pixels: no key colour bleeds back when a tool resamples
    band = dilate(bg) & ~bg
    soft = np.clip((np.sqrt(dist2[band].astype(np.float32)) - tolerance) / max(softness, 1e-3), 0.0, 1.0)
    out[band, 3] = np.round(arr[band, 3] * soft).astype(np.uint8)
    if despill and band.any():
        keyv = np.array(key, dtype=np.float32)
        rgb = arr[band, :3].astype(np.float32)
        a = np.maximum(soft, 1e-3)[:, None]
        unmixed = (rgb - (1.0 - a) * keyv) / a
        out[band, :3] = np.clip(np.where(soft[:, None] > 0, unmixed, rgb), 0, 255).astype(np.uint8)
    return to_image(out)
