"""Worker-thread output for the dialog: raw RGBA bytes that become a QImage on the GUI thread."""

from __future__ import annotations

import io
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from PySide6.QtGui import QImage

PREVIEW_MAX = 1024  # full-size generations are shown from a copy no larger than this


@dataclass(frozen=True, slots=True)
class Rendered:
    data: bytes
    size: tuple[int, int]
    true_size: tuple[int, int]

    def qimage(self) -> QImage:
        w, h = self.size
        return QImage(self.data, w, h, w * 4, QImage.Format.Format_RGBA8888).copy()


def render(img: Image.Image) -> Rendered:
    """Runs in a worker thread."""
    true_size = img.size
    rgba = img.convert("RGBA")
    if max(rgba.size) > PREVIEW_MAX:
        rgba = rgba.copy()
        rgba.thumbnail((PREVIEW_MAX, PREVIEW_MAX), Image.Resampling.LANCZOS)
    return Rendered(rgba.tobytes("raw", "RGBA"), rgba.size, true_size)


def drag_folder(base: Path) -> Path:
    """A private folder per drag: Aseprite's "import numbered sequence" then sees only our files."""
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="drag-", dir=base))


def write_png(img: Image.Image, path: Path) -> Path:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    path.write_bytes(buf.getvalue())
    return path


def clear_drag_folders(base: Path) -> None:
    """Old drag copies: targets have copied them by now (Godot, Unity, Aseprite all copy)."""
    if base.is_dir():
        for child in base.iterdir():
            if child.is_dir() and child.name.startswith("drag-"):
                shutil.rmtree(child, ignore_errors=True)
