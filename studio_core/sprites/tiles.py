"""Seamless tiles: measure how well opposite edges meet, fix them by offset-and-blend."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from studio_core.sprites._np import rgba_array, to_image

SEAM_THRESHOLD = 0.06  # mean edge difference (0..1) above which a seam is visible


@dataclass(frozen=True, slots=True)
class SeamReport:
    horizontal: float  # left edge vs right edge, 0 = identical, 1 = opposite
    vertical: float  # top edge vs bottom edge

    @property
    def worst(self) -> float:
        return max(self.horizontal, self.vertical)

    def seamless(self, threshold: float = SEAM_THRESHOLD) -> bool:
        return self.worst <= threshold


def _edge_diff(a: np.ndarray, b: np.ndarray, inner_a: np.ndarray, inner_b: np.ndarray) -> float:
    # Compare the jump across the wrap-around seam with the texture's own pixel-to-pixel
    # change next to it, so a noisy texture is not reported as seamy.
    jump = np.abs(a - b).mean()
    natural = 0.5 * (np.abs(a - inner_a).mean() + np.abs(b - inner_b).mean())
    return float(max(0.0, jump - natural) / 255.0)


def seam_report(img: Image.Image) -> SeamReport:
    arr = rgba_array(img).astype(np.float32)
    if arr.shape[0] < 2 or arr.shape[1] < 2:
        return SeamReport(0.0, 0.0)
    h = _edge_diff(arr[:, 0], arr[:, -1], arr[:, 1], arr[:, -2])
    v = _edge_diff(arr[0], arr[-1], arr[1], arr[-2])
    return SeamReport(h, v)


def make_seamless(img: Image.Image, *, blend: float = 0.25) -> Image.Image:
    """Offset-and-blend: a half-size wrap puts the seams in the middle, where the
    untouched original is faded back in; the edges come from the wrapped copy, whose
    opposite edges were neighbours in the original and so always match."""
    arr = rgba_array(img).astype(np.float32)
    h, w = arr.shape[:2]
    rolled = np.roll(arr, (h // 2, w // 2), axis=(0, 1))
    blend = min(max(blend, 0.01), 0.5)

    def ramp(n: int) -> np.ndarray:
        edge = np.minimum(np.arange(n) + 0.5, n - np.arange(n) - 0.5)  # distance to the nearer edge
        return np.clip(edge / (n * blend), 0.0, 1.0)

    weight = np.minimum.outer(ramp(h), ramp(w))[..., None]
    out = weight * arr + (1.0 - weight) * rolled
    return to_image(np.clip(np.round(out), 0, 255))


def repeat(img: Image.Image, times: int = 3) -> Image.Image:
    out = Image.new("RGBA", (img.width * times, img.height * times))
    tile = img.convert("RGBA")
    for y in range(times):
        for x in range(times):
            out.paste(tile, (x * img.width, y * img.height))
    return out
