"""Small numpy helpers shared by the sprite modules (masks, shifts, conversions)."""

from __future__ import annotations

import numpy as np
from PIL import Image


def rgba_array(img: Image.Image) -> np.ndarray:
    if img.mode != "RGBA":
        img = img.convert("RGBA")
    return np.asarray(img, dtype=np.uint8)


def to_image(arr: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(arr, dtype=np.uint8), "RGBA")


def dilate(mask: np.ndarray, *, diagonal: bool = True) -> np.ndarray:
    """One-pixel dilation of a 2-D bool mask (8- or 4-connected)."""
    out = mask.copy()
    out[1:, :] |= mask[:-1, :]
    out[:-1, :] |= mask[1:, :]
    out[:, 1:] |= mask[:, :-1]
    out[:, :-1] |= mask[:, 1:]
    if diagonal:
        out[1:, 1:] |= mask[:-1, :-1]
        out[1:, :-1] |= mask[:-1, 1:]
        out[:-1, 1:] |= mask[1:, :-1]
        out[:-1, :-1] |= mask[1:, 1:]
    return out


def _sweep_rows(mask: np.ndarray, reached: np.ndarray) -> np.ndarray:
    # A horizontal run of mask pixels is reached as soon as one of its pixels is.
    start = mask.copy()
    start[:, 1:] &= ~mask[:, :-1]
    ids = np.cumsum(start.ravel()).reshape(mask.shape) * mask
    hit = np.zeros(int(ids.max()) + 1, dtype=bool)
    hit[ids[reached]] = True
    hit[0] = False
    return hit[ids]


def connected_to(mask: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` 4-connected to ``seeds`` (flood fill without a per-pixel loop).

    Alternating row and column sweeps spread the fill one whole run at a time, so the
    number of passes grows with how winding the region is, not with its size.
    """
    reached = seeds & mask
    while True:
        new = _sweep_rows(mask, reached)
        new = _sweep_rows(mask.T, new.T).T
        if np.array_equal(new, reached):
            return new
        reached = new


BAYER4 = (np.array([[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]], dtype=np.float32) + 0.5) / 16 - 0.5
