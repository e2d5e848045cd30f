"""Pixel-art mode: grid downscale that keeps edges crisp, palettes, dithering, outline.

The downscale never blends neighbouring cells: each output pixel takes the colour of
the biggest cluster inside its cell (k-centroid, as Retro Diffusion does) or the most
common colour there (dominant). Plain bilinear would smear outlines into mud.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from PIL import Image

from studio_core.sprites._np import BAYER4, dilate, rgba_array, to_image
from studio_core.sprites.errors import GridTooLarge
from studio_core.sprites.palettes import Palette, palette_from_image

Method = Literal["kcentroid", "dominant"]
Dither = Literal["none", "ordered"]
GRID_CHOICES = (16, 32, 48, 64, 128)
# At most this many samples per cell side keeps the cost flat however large the cells;
# 5×5 evenly spread samples still land in every region a generated 16-px cell holds.
_MAX_SAMPLES_PER_SIDE = 5
_WEIGHTS = np.array([2.0, 4.0, 3.0], dtype=np.float32)  # cheap perceptual RGB weighting


def grid_size(width: int, height: int, grid: int) -> tuple[int, int]:
    """Output size whose longer side is ``grid`` cells, keeping the aspect ratio."""
    if grid < 1:
        raise GridTooLarge(f"grid {grid}", user_message="The pixel grid must be at least 1 pixel.")
    if width >= height:
        gw, gh = grid, max(1, round(grid * height / width))
    else:
        gw, gh = max(1, round(grid * width / height)), grid
    if gw > width or gh > height:
        raise GridTooLarge(f"grid {gw}x{gh} > image {width}x{height}",
                           user_message=f"A {grid}-pixel grid is larger than this {width}×{height} image. "
                                        f"Pick a grid of at most {max(width, height)}.")
    return gw, gh


def _cells(img: Image.Image, gw: int, gh: int) -> np.ndarray:
    """(cells, samples, channels): a few nearest-neighbour samples from inside each cell.

    Pillow's NEAREST resize to ``samples`` × the grid reads only the sampled pixels, at
    cell-interior positions (never on a border, where generated edges blur), so the full
    image is never copied or converted.
    """
    w, h = img.size
    s = max(1, min(_MAX_SAMPLES_PER_SIDE, w // gw, h // gh))
    arr = np.asarray(img.resize((gw * s, gh * s), Image.Resampling.NEAREST))
    c = arr.shape[2]
    return arr.reshape(gh, s, gw, s, c).transpose(0, 2, 1, 3, 4).reshape(gh * gw, s * s, c)


def _kcentroid(x: np.ndarray, wgt: np.ndarray, iters: int = 3) -> np.ndarray:
    """Two-means per cell; the bigger cluster's centre is the cell colour.

    Nearest-of-two is a half-space test, so each pass is one dot product per sample.
    Data is laid out as (samples, cells) planes per channel: every per-cell quantity is
    then a contiguous row that broadcasts cheaply, and per-cell sums are BLAS mat-vecs.
    """
    planes = [np.ascontiguousarray(x[..., k].T) for k in range(3)]
    wf = np.ascontiguousarray(wgt.T, dtype=np.float32)
    ones = np.ones(wf.shape[0], dtype=np.float32)
    cells = np.arange(wf.shape[1])
    lum = 0.299 * planes[0] + 0.587 * planes[1] + 0.114 * planes[2]
    lo = np.where(wf > 0, lum, np.inf).argmin(0)
    hi = np.where(wf > 0, lum, -np.inf).argmax(0)
    c0 = [p[lo, cells] for p in planes]
    c1 = [p[hi, cells] for p in planes]
    n_all = ones @ wf
    total = [ones @ (wf * p) for p in planes]
    n0 = n1 = n_all
    for _ in range(iters):
        v = [(a1 - a0) * wk for a0, a1, wk in zip(c0, c1, _WEIGHTS)]
        thresh = 0.5 * sum((a1 * a1 - a0 * a0) * wk for a0, a1, wk in zip(c0, c1, _WEIGHTS))
        proj = planes[0] * v[0] + planes[1] * v[1] + planes[2] * v[2]
        w1 = wf * (proj > thresh)
        n1 = ones @ w1
        n0 = n_all - n1
        s1 = [ones @ (w1 * p) for p in planes]
        d1, d0 = np.maximum(n1, 1), np.maximum(n0, 1)
        c1 = [np.where(n1 > 0, s / d1, a1) for s, a1 in zip(s1, c1)]
        c0 = [np.where(n0 > 0, (t - s) / d0, a0) for t, s, a0 in zip(total, s1, c0)]
    pick1 = n1 > n0
    return np.stack([np.where(pick1, a1, a0) for a0, a1 in zip(c0, c1)], 1)


def _dominant(x: np.ndarray, wgt: np.ndarray) -> np.ndarray:
    cells, n = wgt.shape
    xi = x.astype(np.int64)
    key = (xi[..., 0] >> 4) << 8 | (xi[..., 1] >> 4) << 4 | (xi[..., 2] >> 4)
    key = np.where(wgt, key, 4096) + np.arange(cells)[:, None] * 4097
    uniq, inv, counts = np.unique(key.ravel(), return_inverse=True, return_counts=True)
    cell_of = uniq // 4097
    counts = np.where(uniq % 4097 == 4096, -1, counts)  # transparent never wins
    order = np.lexsort((-counts, cell_of))
    first = np.ones(len(order), dtype=bool)
    first[1:] = cell_of[order][1:] != cell_of[order][:-1]
    best = np.full(cells, -1, dtype=np.int64)
    best[cell_of[order][first]] = order[first]
    pick = (inv.reshape(cells, n) == best[:, None]) & wgt
    cnt = np.maximum(pick.sum(1), 1)[:, None]
    return np.einsum("cn,cnk->ck", pick.astype(np.float32), x) / cnt


def downscale(img: Image.Image, grid: int, *, method: Method = "kcentroid") -> Image.Image:
    """Shrink ``img`` so its longer side is ``grid`` pixels, one clean colour per cell.

    Alpha becomes the mean alpha of the cell; colour comes only from its opaque pixels,
    so a transparent background never tints the sprite's edge.
    """
    if img.mode not in ("RGB", "RGBA"):
        img = img.convert("RGBA")
    gw, gh = grid_size(img.width, img.height, grid)
    cells = _cells(img, gw, gh)
    x = cells[..., :3].astype(np.float32)
    a = cells[..., 3] if cells.shape[2] == 4 else np.full(cells.shape[:2], 255, dtype=np.uint8)
    wgt = a >= 128
    none_opaque = ~wgt.any(1)
    wgt = wgt | none_opaque[:, None]  # an all-transparent cell still gets some colour
    colour = _kcentroid(x, wgt) if method == "kcentroid" else _dominant(x, wgt)
    out = np.empty((gh * gw, 4), dtype=np.uint8)
    out[:, :3] = np.clip(np.round(colour), 0, 255)
    out[:, 3] = np.round(a.astype(np.float32) @ np.full(a.shape[1], 1 / a.shape[1], dtype=np.float32))
    return to_image(out.reshape(gh, gw, 4))


def snap_alpha(img: Image.Image, threshold: int = 128) -> Image.Image:
    arr = rgba_array(img).copy()
    arr[..., 3] = np.where(arr[..., 3] >= threshold, 255, 0)
    arr[arr[..., 3] == 0, :3] = 0
    return to_image(arr)


def _nearest(rgb: np.ndarray, pal: np.ndarray) -> np.ndarray:
    out = np.empty(len(rgb), dtype=np.int64)
    step = max(1, 1_000_000 // max(len(pal), 1))  # bounded memory on full-size previews
    for i in range(0, len(rgb), step):
        d = (((rgb[i:i + step, None, :] - pal[None]) ** 2) * _WEIGHTS).sum(-1)
        out[i:i + step] = d.argmin(1)
    return out


def apply_palette(img: Image.Image, palette: Palette, *, dither: Dither = "none", strength: float = 1.0) -> Image.Image:
    """Map every pixel to the nearest palette colour (ordered Bayer dither optional); alpha kept."""
    arr = rgba_array(img)
    h, w = arr.shape[:2]
    pal = np.array(palette.colours, dtype=np.float32)
    rgb = arr[..., :3].astype(np.float32)
    if dither == "ordered":
        # The threshold spread matches the typical gap between palette colours.
        spread = 255.0 / max(len(pal) ** (1 / 3), 1.0) * strength
        tile = np.tile(BAYER4, (h // 4 + 1, w // 4 + 1))[:h, :w]
        rgb = rgb + tile[..., None] * spread
    idx = _nearest(rgb.reshape(-1, 3), pal)
    out = arr.copy()
    out[..., :3] = pal[idx].reshape(h, w, 3).astype(np.uint8)
    out[out[..., 3] == 0, :3] = 0
    return to_image(out)


def reduce_colours(img: Image.Image, colours: int, *, dither: Dither = "none") -> Image.Image:
    """At most ``colours`` colours picked from the image itself (median cut)."""
    if dither != "none":
        palette = palette_from_image(img, max_colours=colours, name=f"{colours} colours")
        return apply_palette(img, palette, dither=dither)
    arr = rgba_array(img)
    solid = arr[..., 3] > 0
    if not solid.any():
        return to_image(arr)
    rgb = arr[..., :3].copy()
    # Transparent pixels take an opaque pixel's colour so they do not use up a palette slot.
    rgb[~solid] = rgb[solid][0]
    q = Image.fromarray(rgb, "RGB").quantize(colors=colours, method=Image.Quantize.MEDIANCUT)
    out = arr.copy()
    out[..., :3] = np.asarray(q.convert("RGB"))
    out[~solid, :3] = 0
    return to_image(out)


def add_outline(img: Image.Image, colour: tuple[int, int, int] = (0, 0, 0), *, diagonal: bool = False) -> Image.Image:
    """A 1-px outline on transparent pixels that touch the sprite. The canvas size stays."""
    arr = rgba_array(img).copy()
    solid = arr[..., 3] >= 128
    ring = dilate(solid, diagonal=diagonal) & ~solid
    arr[ring] = (*colour, 255)
    return to_image(arr)


def upscale(img: Image.Image, factor: int) -> Image.Image:
    factor = max(1, int(factor))
    return img.resize((img.width * factor, img.height * factor), Image.Resampling.NEAREST)


def fit_factor(size: tuple[int, int], box: tuple[int, int]) -> int:
    """Largest whole-number zoom that fits ``size`` into ``box`` (at least 1)."""
    w, h = size
    return max(1, min(box[0] // max(w, 1), box[1] // max(h, 1)))


def pixelate(
    img: Image.Image,
    *,
    grid: int,
    method: Method = "kcentroid",
    palette: Palette | int | None = 16,
    dither: Dither = "none",
    outline: tuple[int, int, int] | None = None,
    alpha_snap: bool = True,
) -> Image.Image:
    """The whole pixel-art recipe in one call (the order matters: grid, alpha, palette, outline)."""
    out = downscale(img, grid, method=method)
    if alpha_snap:
        out = snap_alpha(out)
    if isinstance(palette, Palette):
        out = apply_palette(out, palette, dither=dither)
    elif isinstance(palette, int) and palette > 0:
        out = reduce_colours(out, palette, dither=dither)
    if outline is not None:
        out = add_outline(out, outline)
    return out
