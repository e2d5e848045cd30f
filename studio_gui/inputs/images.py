"""Images coming into the Generate tab: which dropped things are files, reading them in a
worker, and the small QImages the input rows show. No widget here.

Everything that reads or decodes runs in a worker thread (QImage is allowed there,
QPixmap is not); the GUI thread only turns the result into a pixmap.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QMimeData, QSize, Qt
from PySide6.QtGui import QImage, QImageReader

from studio_core.errors import NotAnImage, StorageError

THUMB = 72


@dataclass(frozen=True)
class Looked:
    """A dropped file that is an image: its path, pixel size and a small picture of it."""

    path: Path
    width: int
    height: int
    thumb: QImage


def dropped_files(mime: QMimeData) -> list[Path]:
    """Local files in a drop: Explorer's and both gallery grids' drags carry file URLs."""
    if not mime.hasUrls():
        return []
    return [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile() and u.toLocalFile()]


def look(path: Path, *, thumb: int = THUMB) -> Looked:
    """Worker thread: check that ``path`` is a readable image and make its thumbnail.
    Raises NotAnImage / StorageError with a sentence for the user."""
    name = f"'{path.name}'"
    if not path.is_file():
        raise StorageError(f"{path} is not a file", user_message=f"{name} is not a file the studio can open.")
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)
    size = reader.size()
    if not reader.canRead() or not size.isValid():
        raise NotAnImage(f"{path}: {reader.errorString()}", user_message=(
            f"{name} is not an image. Drop a PNG, JPEG or WebP file, or a sprite from the gallery."))
    reader.setScaledSize(size.scaled(QSize(thumb, thumb), Qt.AspectRatioMode.KeepAspectRatio))
    img = reader.read()
    if img.isNull():
        raise NotAnImage(f"{path}: {reader.errorString()}", user_message=(
            f"{name} could not be read as an image ({reader.errorString()}). Try another file."))
    return Looked(path, size.width(), size.height(), img)


def thumbnail(path: Path, *, thumb: int = THUMB) -> QImage:
    """Worker thread: a small picture of a stored input (a null QImage when unreadable)."""
    reader = QImageReader(str(path))
    size = reader.size()
    if size.isValid():
        reader.setScaledSize(size.scaled(QSize(thumb, thumb), Qt.AspectRatioMode.KeepAspectRatio))
    return reader.read()


def png_bytes(image: QImage) -> bytes:
    """Worker thread: ``image`` as PNG bytes (the input store re-checks them)."""
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buf, "PNG")
    buf.close()
    return bytes(data.data())


def full_image(path: Path) -> QImage:
    """Worker thread: the whole image, for the mask painter."""
    return QImage(str(path))

