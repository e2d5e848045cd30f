"""A contact sheet: one PNG grid of images, each with a caption under it (a batch's set at a glance).

Blocking (decodes every image): call through ``asyncio.to_thread``. An image that cannot be
read keeps its cell with a "could not be read" caption, so the sheet still matches the list.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from studio_core.errors import StudioError
from studio_core.storage.atomic import atomic_write_bytes

CELL = 256
PAD = 8
CAPTION_LINES = 2
FONT_PX = 13
MAX_IMAGES = 2000  # a 45×45 grid of 256-px cells is already ~12k px wide


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # FreeType build of Pillow: a scalable default font
    except (TypeError, OSError):
        return ImageFont.load_default()


def wrap(text: str, font, width: int, lines: int) -> list[str]:
    """Greedy word wrap to ``lines`` lines of at most ``width`` px; an ellipsis marks the cut."""
    words = " ".join(text.split()).split(" ") if text.strip() else []
    out: list[str] = []
    cur = ""
    i = 0
    while i < len(words) and len(out) < lines:
        trial = f"{cur} {words[i]}".strip()
        if font.getlength(trial) <= width or not cur:
            cur = trial
            i += 1
            if font.getlength(cur) > width:  # one word longer than the cell: cut it
                while cur and font.getlength(cur + "…") > width:
                    cur = cur[:-1]
                cur += "…"
        else:
            out.append(cur)
            cur = ""
    if cur and len(out) < lines:
        out.append(cur)
    if i < len(words) and out and not out[-1].endswith("…"):
        last = out[-1]
        while last and font.getlength(last + "…") > width:
            last = last[:-1]
        out[-1] = last.rstrip() + "…"
    return out


def contact_sheet(items: Sequence[tuple[Path, str]], *, columns: int | None = None, cell: int = CELL):
    """A PIL image: ``items`` (path, caption) in rows of ``columns`` (about square when None)."""
    from PIL import Image, ImageDraw, UnidentifiedImageError

    if not items:
        raise StudioError("empty contact sheet", user_message="There are no images to put on a contact sheet.")
    if len(items) > MAX_IMAGES:
        raise StudioError(f"{len(items)} images", user_message=(
            f"A contact sheet holds at most {MAX_IMAGES:,} images; this set has {len(items):,}. "
            "Filter it to fewer first."))
    cols = max(1, min(columns or math.ceil(math.sqrt(len(items))), len(items)))
    rows = math.ceil(len(items) / cols)
    font = _font(FONT_PX)
    line_h = FONT_PX + 4
    cell_h = cell + PAD + CAPTION_LINES * line_h
    sheet = Image.new("RGB", (PAD + cols * (cell + PAD), PAD + rows * (cell_h + PAD)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for n, (path, caption) in enumerate(items):
        x = PAD + (n % cols) * (cell + PAD)
        y = PAD + (n // cols) * (cell_h + PAD)
        try:
            with Image.open(path) as im:
                im.draft("RGB", (cell, cell))
                im.thumbnail((cell, cell))
                tile = im.convert("RGBA")
            # transparent sprites on a light checker-free grey so their edges show
            bg = Image.new("RGBA", tile.size, (236, 236, 236, 255))
            bg.alpha_composite(tile)
            sheet.paste(bg.convert("RGB"), (x + (cell - tile.width) // 2, y + (cell - tile.height) // 2))
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
            draw.rectangle((x, y, x + cell - 1, y + cell - 1), outline=(200, 60, 60))
            caption = f"(could not be read) {Path(path).name}"
        for k, line in enumerate(wrap(caption, font, cell, CAPTION_LINES)):
            draw.text((x, y + cell + PAD // 2 + k * line_h), line, fill=(30, 30, 30), font=font)
    return sheet


def write_contact_sheet(items: Sequence[tuple[Path, str]], dest: Path, *, columns: int | None = None,
                        cell: int = CELL) -> Path:
    """Make the sheet and write it to ``dest`` atomically (no half-written PNG)."""
    import io

    img = contact_sheet(items, columns=columns, cell=cell)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    dest = Path(dest)
    atomic_write_bytes(dest, buf.getvalue())
    return dest
