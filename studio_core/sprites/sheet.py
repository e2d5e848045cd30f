"""Sprite sheets: pack frames (grid or shelf), with padding and edge extrusion.

Layout rules shared by every exporter: frames keep their input order (animations stay
contiguous); ``margin`` = ``extrude`` around the sheet and ``spacing`` = ``padding`` +
2 × ``extrude`` between frames, which is exactly how Tiled describes a tileset image.
Writers for engine metadata live in :mod:`studio_core.sprites.exporters`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
from PIL import Image

from studio_core.sprites.errors import EmptySheet

Layout = Literal["grid", "packed"]


@dataclass(frozen=True)
class SheetFrame:
    name: str
    image: Image.Image
    animation: str = "default"
    duration_ms: int = 100


@dataclass(frozen=True, slots=True)
class Placement:
    name: str
    x: int
    y: int
    w: int
    h: int
    animation: str
    duration_ms: int


@dataclass(frozen=True)
class Sheet:
    image: Image.Image
    placements: tuple[Placement, ...]
    layout: Layout
    cell: tuple[int, int] | None  # grid layout only
    columns: int
    padding: int
    extrude: int

    @property
    def margin(self) -> int:
        return self.extrude

    @property
    def spacing(self) -> int:
        return self.padding + 2 * self.extrude

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size

    def animations(self) -> dict[str, list[int]]:
        """Animation name → frame indexes, in first-appearance order."""
        out: dict[str, list[int]] = {}
        for i, p in enumerate(self.placements):
            out.setdefault(p.animation, []).append(i)
        return out


def _extrude(arr: np.ndarray, x: int, y: int, w: int, h: int, e: int) -> None:
    if e <= 0:
        return
    arr[y - e:y, x:x + w] = arr[y, x:x + w]
    arr[y + h:y + h + e, x:x + w] = arr[y + h - 1, x:x + w]
    arr[y - e:y + h + e, x - e:x] = arr[y - e:y + h + e, x:x + 1]
    arr[y - e:y + h + e, x + w:x + w + e] = arr[y - e:y + h + e, x + w - 1:x + w]


def _grid(frames: Sequence[SheetFrame], columns: int | None, spacing: int, margin: int):
    cw = max(f.image.width for f in frames)
    ch = max(f.image.height for f in frames)
    n = len(frames)
    cols = max(1, min(columns or math.ceil(math.sqrt(n)), n))
    rows = math.ceil(n / cols)
    size = (2 * margin + cols * cw + (cols - 1) * spacing, 2 * margin + rows * ch + (rows - 1) * spacing)
    spots = [(margin + (i % cols) * (cw + spacing), margin + (i // cols) * (ch + spacing), cw, ch) for i in range(n)]
    return size, spots, cols, (cw, ch)


def _shelf(frames: Sequence[SheetFrame], spacing: int, margin: int):
    area = sum((f.image.width + spacing) * (f.image.height + spacing) for f in frames)
    target = max(max(f.image.width for f in frames), math.ceil(math.sqrt(area) * 1.1))
    order = sorted(range(len(frames)), key=lambda i: (-frames[i].image.height, i))
    spots: list[tuple[int, int, int, int]] = [(0, 0, 0, 0)] * len(frames)
    x = y = margin
    shelf_h = 0
    width = 0
    for i in order:
        w, h = frames[i].image.size
        if x > margin and x + w > margin + target:
            x, y = margin, y + shelf_h + spacing
            shelf_h = 0
        spots[i] = (x, y, w, h)
        width = max(width, x + w)
        x += w + spacing
        shelf_h = max(shelf_h, h)
    return (width + margin, y + shelf_h + margin), spots


def pack(frames: Sequence[SheetFrame], *, layout: Layout = "grid", columns: int | None = None,
         padding: int = 0, extrude: int = 0) -> Sheet:
    """Lay ``frames`` out on one RGBA image. In a grid every cell has the largest frame's
    size and smaller frames sit bottom-centred in theirs (their feet on the same line)."""
    if not frames:
        raise EmptySheet("zero frames")
    padding, extrude = max(0, int(padding)), max(0, int(extrude))
    spacing, margin = padding + 2 * extrude, extrude
    cell = None
    if layout == "grid":
        size, spots, cols, cell = _grid(frames, columns, spacing, margin)
    else:
        size, spots = _shelf(frames, spacing, margin)
        cols = 0
    arr = np.zeros((size[1], size[0], 4), dtype=np.uint8)
    placements = []
    for f, (x, y, w, h) in zip(frames, spots):
        img = np.asarray(f.image.convert("RGBA"))
        fh, fw = img.shape[:2]
        ox, oy = x + (w - fw) // 2, y + (h - fh)
        arr[oy:oy + fh, ox:ox + fw] = img
        _extrude(arr, x, y, w, h, extrude)
        placements.append(Placement(f.name, x, y, w, h, f.animation, int(f.duration_ms)))
    return Sheet(Image.fromarray(arr, "RGBA"), tuple(placements), layout, cell, cols, padding, extrude)
