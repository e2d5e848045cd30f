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


def _samples(img: Image.Image, gw: int, gh: int) -> np.ndarray:
    """(channels, samples, cells) view of a few nearest-neighbour samples inside each cell.

    Pillow's NEAREST resize to ``samples`` × the grid reads only the sampled pixels, at
    cell-interior positions (never on a border, where generated edges blur), so the full
    image is never copied or converted. Samples are the rows and cells the columns: every
    per-cell reduction is then an element-wise pass over contiguous rows, which numpy
    does far faster than reducing many short rows. Returns a 5-D view
    (channels, sy, sx, rows, columns); reshaping it makes the one copy.
    """
    w, h = img.size
    s = max(1, min(_MAX_SAMPLES_PER_SIDE, w // gw, h // gh))
    arr = np.asarray(img.resize((gw * s, gh * s), Image.Resampling.NEAREST))
    c = arr.shape[2]
    return arr.reshape(gh, s, gw, s, c).transpose(4, 1, 3, 0, 2)


def _first(mask: np.ndarray) -> np.ndarray:
    """Row of the first True in each column of a (samples, cells) mask that has one,
    as argmin/argmax would pick it, without numpy's slow reduction across short rows."""
    n = mask.shape[0]
    rev = np.arange(n - 1, -1, -1, dtype=np.int8 if n < 128 else np.int32)[:, None]
    return (n - 1) - np.max(mask * rev, axis=0).astype(np.intp)


def _kcentroid(x: np.ndarray, wgt: np.ndarray | None, iters: int = 3) -> np.ndarray:
    """Two-means per cell on (3, samples, cells) float32 ``x``; the bigger cluster's
    centre is the cell colour. ``wgt``: (samples, cells) bool of the samples that count
    (None: all of them). Returns (cells, 3).

    All cells run at once. Nearest-of-two is a half-space test, so each pass is one
    weighted dot product per sample; a pass whose assignments match the one before ends
    the loop early, since the centres would come out the same again.
    """
    _, n, cells = x.shape
    lum = 0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]
    if wgt is None:
        lo, hi = _first(lum == lum.min(0)), _first(lum == lum.max(0))
    else:
        lo_l, hi_l = np.where(wgt, lum, np.inf), np.where(wgt, lum, -np.inf)
        lo, hi = _first(lo_l == lo_l.min(0)), _first(hi_l == hi_l.max(0))
    flat = x.reshape(3, n * cells)
    col = np.arange(cells)
    c0, c1 = flat.take(lo * cells + col, axis=1), flat.take(hi * cells + col, axis=1)
    if wgt is None:
        n_all = np.full(cells, n, dtype=np.float32)
        total = x.sum(1)
    else:
        wf = wgt.astype(np.float32)
        n_all = wf.sum(0)
        total = np.einsum("sc,ksc->kc", wf, x)
    w = _WEIGHTS[:, None]
    masks = np.empty((2, n, cells), dtype=bool)
    mf = np.empty((n, cells), dtype=np.float32)
    proj, tmp = np.empty_like(mf), np.empty_like(mf)
    n0 = n1 = n_all
    for it in range(iters):
        m = masks[it % 2]
        v = (c1 - c0) * w
        thresh = 0.5 * ((c1 * c1 - c0 * c0) * w).sum(0)
        # The same sum, in the same order, as the per-cell formula: results do not depend on layout.
        np.multiply(x[0], v[0], out=proj)
        proj += np.multiply(x[1], v[1], out=tmp)
        proj += np.multiply(x[2], v[2], out=tmp)
        np.greater(proj, thresh, out=m)
        if wgt is not None:
            m &= wgt
        if it and np.array_equal(m, masks[(it - 1) % 2]):
            break
        mf[...] = m
        n1 = mf.sum(0)
        n0 = n_all - n1
        s1 = np.einsum("sc,ksc->kc", mf, x)
        # An empty cluster keeps its centre.
        np.divide(s1, n1, out=c1, where=n1 > 0)
        np.divide(total - s1, n0, out=c0, where=n0 > 0)
    return np.where(n1 > n0, c1, c0).T


def _dominant(x: np.ndarray, wgt: np.ndarray) -> np.ndarray:
    """Mean of the most common colour (4 bits a channel) among each cell's counted samples;
    ties go to the smaller colour key. ``x`` (3, samples, cells) float32, ``wgt`` (samples,
    cells) bool with at least one True per cell. Returns (cells, 3).

    Each sample counts the samples of its cell with the same key, one row at a time over
    all cells: samples² cheap passes instead of sorting every (cell, key) pair.
    """
    n = x.shape[1]
    xi = x.astype(np.int16)
    key = (xi[0] >> 4) << 8 | (xi[1] >> 4) << 4 | (xi[2] >> 4)
    key[~wgt] = -1  # matches no counted sample
    count = np.zeros(key.shape, dtype=np.int32)
    for s in range(n):
        count += key == key[s]
    score = count * 8192 - key  # most common first, then the smallest key
    score[~wgt] = -(1 << 30)  # a transparent sample never wins
    best = (-score.max(0)) % 8192
    pick = (key == best) & wgt
    cnt = np.maximum(pick.sum(0), 1)
    return (np.einsum("sc,ksc->kc", pick.astype(np.float32), x) / cnt).T


def downscale(img: Image.Image, grid: int, *, method: Method = "kcentroid") -> Image.Image:
    """Shrink ``img`` so its longer side is ``grid`` pixels, one clean colour per cell.

    Alpha becomes the mean alpha of the cell; colour comes only from its opaque pixels,
    so a transparent background never tints the sprite's edge.
    """
    if img.mode not in ("RGB", "RGBA"):
        img = img.convert("RGBA")
    gw, gh = grid_size(img.width, img.height, grid)
    samples = _samples(img, gw, gh)
    n = samples.shape[1] * samples.shape[2]
    samples = samples.reshape(-1, n, gh * gw)  # one uint8 copy lays the data out; then a contiguous cast
    x = samples[:3].astype(np.float32)
    out = np.empty((gh * gw, 4), dtype=np.uint8)
    if samples.shape[0] == 4:
        a = samples[3]
        wgt = a >= 128
        wgt |= ~wgt.any(0)  # an all-transparent cell still gets some colour
        # Mean alpha of the cell: an exact integer sum, then one division.
        out[:, 3] = np.round(a.sum(0, dtype=np.uint32) / a.shape[0])
    else:
        wgt = None
        out[:, 3] = 255
    if method == "kcentroid":
        colour = _kcentroid(x, None if wgt is None or wgt.all() else wgt)
    else:
        full = np.ones(x.shape[1:], dtype=bool) if wgt is None else wgt
        colour = _dominant(x, full)
    out[:, :3] = np.clip(np.round(colour), 0, 255)
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
    if img.mode != "RGBA":
        img = img.convert("RGBA")
    alpha = img.getchannel("A")
    lo, _ = alpha.getextrema()
    if lo > 0:  # nothing transparent (the usual case): stay in Pillow
        q = img.convert("RGB").quantize(colors=colours, method=Image.Quantize.MEDIANCUT).convert("RGB")
        q.putalpha(alpha)
        return q
    arr = rgba_array(img)
    solid = arr[..., 3] > 0
    if not solid.any():
        return to_image(arr)
    rgb = arr[..., :3].copy()
    # Transparent pixels take an opaque pixel's colour so they do not use up a palette slot.
    first = np.unravel_index(int(solid.argmax()), solid.shape)
    rgb[~solid] = rgb[first]
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
