"""What the gallery does with an image: open, show in folder, clipboard, export, trash.

Everything touching the disk runs in a worker thread; only Qt objects are made here.
"""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from PySide6.QtCore import QMimeData, QUrl
from PySide6.QtGui import QDesktopServices, QImage
from PySide6.QtWidgets import QApplication

from studio_core.storage.index import to_thread
from studio_core.errors import StorageError
from studio_core.storage.cleanup import TrashResult, trash_files
from studio_core.storage.export import export_image
from studio_core.storage.index import ImageIndex
from studio_core.storage.records import ImageRecord

EXPORT_FILTERS = (
    ("PNG with generation settings (*.png)", "png", True),
    ("PNG without settings (*.png)", "png", False),
    ("WebP, smaller, with settings (*.webp)", "webp", True),
    ("WebP, smaller, without settings (*.webp)", "webp", False),
)


def _missing(path: Path) -> StorageError:
    return StorageError(f"{path} missing", user_message=f"{path.name} is no longer in the images folder."
                        " It was moved or deleted outside the studio; use Rescan to update the gallery.")


def open_in_viewer(path: Path) -> None:
    if not path.exists():
        raise _missing(path)
    if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))):
        raise StorageError(f"openUrl failed for {path}", user_message="No image viewer is set up to open PNG files.")


def show_in_folder(path: Path) -> None:
    if not path.exists():
        raise _missing(path)
    try:
        if sys.platform == "win32":
            subprocess.Popen(["explorer", "/select,", str(path)])
            return
        if sys.platform == "darwin":
            subprocess.Popen(["open", "-R", str(path)])
            return
    except OSError:
        pass
    # Linux desktops have no portable "select this file"; opening the folder is the common ground.
    QDesktopServices.openUrl(QUrl.fromLocalFile(str(path.parent)))


def load_images(paths: Sequence[Path]) -> list[QImage]:
    """Worker thread."""
    return [QImage(str(p)) for p in paths]


async def copy_to_clipboard(paths: Sequence[Path]) -> None:
    """Put the image (the first one's pixels) and every file on the clipboard."""
    images = await to_thread(load_images, list(paths[:1]))
    if not images or images[0].isNull():
        raise _missing(Path(paths[0])) if paths and not Path(paths[0]).exists() else StorageError(
            "unreadable", user_message="That image could not be read.")
    mime = QMimeData()
    mime.setImageData(images[0])
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    QApplication.clipboard().setMimeData(mime)


async def export(src: Path, dest: Path, *, fmt: str, with_metadata: bool) -> Path:
    if not src.exists():
        raise _missing(src)
    return await to_thread(functools.partial(export_image, src, dest, with_metadata=with_metadata, fmt=fmt))


async def trash(index: ImageIndex, records: Sequence[ImageRecord]) -> TrashResult:
    """Send the files to the system trash, then drop their rows (the view updates in place)."""
    result = await to_thread(trash_files, index.images, list(records))
    if result.trashed:
        await index.remove(result.trashed)
    return result
