"""Sprite sheets: pack frames (grid or shelf), with padding and edge extrusion.

Layout rules shared by every exporter: frames of one animation are kept together, in
their input order, and animations follow in the order they first appear (so an Aseprite
tag or a Godot animation is always one contiguous run of frames); ``margin`` = ``extrude`` around the sheet and ``spacing`` = ``padding`` +
2 × ``extrude`` between frames, which is exactly how Tiled describes a tileset image.
Writers for engine metadata live in :mod:`studio_core.sprites.exporters`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal, Sequence, TypeVar

import numpy as np
from PIL import Image

from studio_core.sprites.errors import EmptySheet

Layout = Literal["grid", "packed"]
T = TypeVar("T")
_NUMBERED = re.compile(r"^(.+?)_(\d+)$")


def split_frame_name(name: str) -> tuple[str, int] | None:
    """``walk_down_03`` → (``walk_down``, 3): the animation a numbered frame belongs to.
    Names without a trailing ``_NN`` (``hero.png``'s stem, a gallery time stamp) give None."""
    m = _NUMBERED.match(name)
    return (m.group(1), int(m.group(2))) if m else None


def animations_from_names(names: Sequence[str], default: str) -> list[str]:
    """One animation per frame, read from names like ``walk_left_02``.

    Only when the names split the frames into two or more animations; otherwise (no
    numbered names, or all of one animation) every frame gets ``default``, the name
    the user typed for the sheet. A name without a number also gets ``default``.
    """
    found = [split_frame_name(n) for n in names]
    anims = [f[0] if f else default for f in found]
    return anims if len(set(anims)) > 1 else [default] * len(names)


# The gallery's file names: ``{service}_{prompt snippet}_{UTC time}[-n]``, and the Sprite
# tab's processed copies of them (``…_sprite``).
_GALLERY_STEM = re.compile(r"^[a-z0-9]+_(?P<content>.+?)_\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z(?:-\d+)?(?:_sprite)?$")
DEFAULT_SHEET_NAME = "sheet"


def content_of(stem: str) -> str:
    """What a file name says about the picture: the prompt snippet of a gallery name
    (``comfyui_red_knight_2025-09-07T19-00-00-123Z`` → ``red_knight``), else the stem."""
    m = _GALLERY_STEM.match(stem)
    return m.group("content") if m else stem


def sheet_name_for(labels: Sequence[str], animations: Sequence[str | None] = ()) -> str:
    """A name for a sheet of these frames, from what they show rather than a fixed word.

    ``labels`` are frame names or file stems; ``animations`` those a frame set gave. The
    words all frames share lead: one animation names the sheet (``walk_down``), several
    give their common part (``walk_down``, ``walk_up`` → ``walk``), one gallery image its
    prompt (``red_knight``). Frames with nothing in common give ``sheet``."""
    if not labels:
        return DEFAULT_SHEET_NAME
    contents = [content_of(label) for label in labels]
    if animations and len(animations) == len(labels) and all(animations):
        parts = [str(a) for a in animations]
    else:
        numbered = [split_frame_name(c) for c in contents]
        parts = [n[0] for n in numbered] if all(numbered) else contents  # type: ignore[index]
    words = [p.split("_") for p in parts]
    common: list[str] = []
    for column in zip(*words):
        if len(set(column)) != 1 or not column[0]:
            break
        common.append(column[0])
    return "_".join(common)[:40].rstrip("_") or DEFAULT_SHEET_NAME


def group_by_animation(items: Sequence[T], animations: Sequence[str]) -> list[T]:
    """``items`` with each animation's frames together: animations in order of first
    appearance, frames in their given order within each (a stable grouping)."""
    first: dict[str, int] = {}
    for a in animations:
        first.setdefault(a, len(first))
    order = sorted(range(len(items)), key=lambda i: first[animations[i]])
    return [items[i] for i in order]


def frame_names(labels: Sequence[str | None], animations: Sequence[str]) -> list[str]:
    """Names for the exported frames: the given labels when every frame has one and they
    are unique (a frame set's ``walk_down_00``…), else ``<animation>_NN`` counted per
    animation in the given order. Names are keys in Aseprite's and TexturePacker's
    hash form, so they must not repeat."""
    if all(labels) and len(set(labels)) == len(labels):
        return [str(n) for n in labels]
    seen: dict[str, int] = {}
    out = []
    for a in animations:
        k = seen.get(a, 0)
        seen[a] = k + 1
        out.append(f"{a}_{k:02d}")
    return out


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
    size and smaller frames sit bottom-centred in theirs (their feet on the same line).

    Frames of one animation are placed together (see :func:`group_by_animation`), so the
    placements may come in another order than ``frames`` when animations interleave."""
    if not frames:
        raise EmptySheet("zero frames")
    frames = group_by_animation(frames, [f.animation for f in frames])
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
