"""Checkerboard preview with whole-number nearest-neighbour zoom, and a file drag source."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData, QPoint, QRect, QSize, Qt, QUrl, Signal
from PySide6.QtGui import QDrag, QImage, QPainter, QPixmap
from PySide6.QtWidgets import QApplication, QSizePolicy, QWidget

from studio_gui.gallery.delegate import checker_tile


def checker(cell: int = 8) -> QPixmap:
    return checker_tile(cell, dark=153)


def zoom_for(image: QSize, box: QSize) -> float:
    """Whole-number zoom for anything that fits at least once (pixels stay square and
    crisp); only images larger than the box are shrunk, by a fraction."""
    if image.isEmpty():
        return 1.0
    fit = min(box.width() / image.width(), box.height() / image.height())
    return float(int(fit)) if fit >= 1 else fit


class SpritePreview(QWidget):
    """Paints one image over a checkerboard. ``tiles`` > 1 repeats it n×n (tile preview)."""

    def __init__(self, caption: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self._image = QImage()
        self._caption = caption
        self._tiles = 1
        self.setMinimumSize(160, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAccessibleName(caption or "Sprite preview")

    def set_image(self, image: QImage | None) -> None:
        self._image = image if image is not None else QImage()
        self.update()

    def image(self) -> QImage:
        return self._image

    def set_tiles(self, n: int) -> None:
        self._tiles = max(1, n)
        self.update()

    def set_caption(self, text: str) -> None:
        self._caption = text
        self.update()

    def zoom(self) -> float:
        area = self.rect().adjusted(4, 22, -4, -4)
        size = self._image.size() * self._tiles
        return zoom_for(size, area.size())

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), self.palette().window())
        if self._caption:
            p.drawText(QRect(4, 2, self.width() - 8, 18), Qt.AlignmentFlag.AlignLeft, self._caption)
        if self._image.isNull():
            p.end()
            return
        z = self.zoom()
        w, h = int(self._image.width() * z), int(self._image.height() * z)
        total = QSize(w * self._tiles, h * self._tiles)
        area = self.rect().adjusted(4, 22, -4, -4)
        origin = QPoint(area.x() + (area.width() - total.width()) // 2, area.y() + (area.height() - total.height()) // 2)
        p.drawTiledPixmap(QRect(origin, total), checker(8))
        # Nearest neighbour at whole zooms keeps pixel art honest; smooth only when shrinking.
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, z < 1)
        for ty in range(self._tiles):
            for tx in range(self._tiles):
                p.drawImage(QRect(origin.x() + tx * w, origin.y() + ty * h, w, h), self._image)
        p.end()


class FileDragSource(SpritePreview):
    """A preview the user drags out: the drag carries file URLs (CF_HDROP on Windows) of
    finished files, already written to a private temp folder before the drag starts."""

    drag_started = Signal()

    def __init__(self, caption: str = "", parent: QWidget | None = None):
        super().__init__(caption, parent)
        self._files: list[Path] = []
        self._press: QPoint | None = None
        self.setMinimumSize(96, 96)
        self.setToolTip("Drag this into Godot, Unity, Aseprite or a folder")
        self.setCursor(Qt.CursorShape.OpenHandCursor)

    def set_files(self, files: list[Path]) -> None:
        self._files = list(files)
        self.setEnabled(bool(files))

    def files(self) -> list[Path]:
        return list(self._files)

    def mime_data(self) -> QMimeData:
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(f)) for f in self._files])
        if not self.image().isNull():
            mime.setImageData(self.image())  # Aseprite also accepts image data
        return mime

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._press = event.position().toPoint()
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        if self._press is None or not self._files:
            return
        if (event.position().toPoint() - self._press).manhattanLength() < QApplication.startDragDistance():
            return
        self._press = None
        drag = QDrag(self)
        drag.setMimeData(self.mime_data())
        if not self.image().isNull():
            drag.setPixmap(QPixmap.fromImage(self.image()).scaled(
                64, 64, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation))
        self.drag_started.emit()
        # Copy only: a target that honoured "move" would delete our file.
        drag.exec(Qt.DropAction.CopyAction, Qt.DropAction.CopyAction)

    def mouseReleaseEvent(self, event) -> None:
        self._press = None
        super().mouseReleaseEvent(event)
