"""This session's results: a small list model over SavedImage records and a grid view.

The roles match the Saved tab's gallery model, so the gallery can later swap in its own
model and delegate: DisplayRole = short title, DecorationRole = thumbnail pixmap,
ToolTipRole = prompt, RecordRole (UserRole + 1) = the SavedImage. Tiles drag out as
files (``text/uri-list``), which Explorer, Godot, Unity and Aseprite all accept.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractListModel, QMimeData, QModelIndex, QPersistentModelIndex, QSize, Qt, QUrl, Signal
from PySide6.QtGui import QColor, QDesktopServices, QGuiApplication, QImage, QImageReader, QPainter, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QListView, QMenu, QWidget

from studio_core.models import SavedImage

RecordRole = Qt.ItemDataRole.UserRole + 1
THUMB = 128
TITLE_CHARS = 22


def load_thumbnail(path: Path, size: int = THUMB) -> QImage:
    """Runs in a worker thread; QImageReader decodes straight at the small size."""
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)
    full = reader.size()
    if full.isValid() and (full.width() > size or full.height() > size):
        reader.setScaledSize(full.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio))
    return reader.read()


def _placeholder(size: int = THUMB) -> QPixmap:
    pm = QPixmap(size, size)
    pm.fill(QColor(0, 0, 0, 0))
    p = QPainter(pm)
    p.setPen(QColor(128, 128, 128))
    p.drawRect(0, 0, size - 1, size - 1)
    p.end()
    return pm


def title_for(record: SavedImage) -> str:
    text = " ".join(record.request.prompt.split())
    return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1] + "…"


class SessionResultsModel(QAbstractListModel):
    """Newest first. ``data()`` never does I/O: thumbnails arrive through :meth:`set_thumbnail`."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._records: list[SavedImage] = []
        self._thumbs: dict[str, QPixmap] = {}
        self._placeholder: QPixmap | None = None

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._records)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._records):
            return None
        rec = self._records[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return title_for(rec)
        if role == Qt.ItemDataRole.DecorationRole:
            pm = self._thumbs.get(str(rec.path))
            if pm is None:
                if self._placeholder is None:
                    self._placeholder = _placeholder()
                pm = self._placeholder
            return pm
        if role == Qt.ItemDataRole.ToolTipRole:
            seed = f"\nseed {rec.seed}" if rec.seed is not None else ""
            return f"{rec.request.prompt}\n{rec.width}×{rec.height} · {rec.request.service}{seed}\n{Path(rec.path).name}"
        if role == RecordRole:
            return rec
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        base = super().flags(index)
        return base | Qt.ItemFlag.ItemIsDragEnabled if index.isValid() else base

    def mimeTypes(self) -> list[str]:
        return ["text/uri-list"]

    def mimeData(self, indexes) -> QMimeData:
        mime = QMimeData()
        urls, seen = [], set()
        for idx in indexes:
            rec = self.data(idx, RecordRole)
            if rec is not None and str(rec.path) not in seen:
                seen.add(str(rec.path))
                urls.append(QUrl.fromLocalFile(str(rec.path)))
        mime.setUrls(urls)
        return mime

    def supportedDragActions(self) -> Qt.DropAction:
        return Qt.DropAction.CopyAction

    # -- mutation -------------------------------------------------------------------
    def add(self, record: SavedImage) -> None:
        self.beginInsertRows(QModelIndex(), 0, 0)
        self._records.insert(0, record)
        self.endInsertRows()

    def set_thumbnail(self, path: Path, pixmap: QPixmap) -> None:
        key = str(path)
        self._thumbs[key] = pixmap
        for row, rec in enumerate(self._records):
            if str(rec.path) == key:
                idx = self.index(row)
                self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])

    def records(self) -> list[SavedImage]:
        return list(self._records)


class SessionResultsView(QListView):
    """Icon grid; drag tiles out as files. Right-click offers Open, Show in folder,
    Reuse settings and Copy prompt (``reuse_requested`` carries the GenerationRequest)."""

    reuse_requested = Signal(object)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._on_context_menu)
        self.doubleClicked.connect(lambda idx: self.open_record(idx.data(RecordRole)))
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setIconSize(QSize(THUMB, THUMB))
        self.setGridSize(QSize(THUMB + 20, THUMB + 36))
        self.setUniformItemSizes(True)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setWordWrap(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setDefaultDropAction(Qt.DropAction.CopyAction)
        self.setAccessibleName("Results of this session")
        self.setToolTip("")

    def current_record(self) -> SavedImage | None:
        idx = self.currentIndex()
        return idx.data(RecordRole) if idx.isValid() else None

    def menu_for(self, record: SavedImage) -> QMenu:
        menu = QMenu(self)
        menu.addAction("Open", lambda: self.open_record(record))
        menu.addAction("Show in folder", lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(record.path).parent))))
        menu.addSeparator()
        menu.addAction("Reuse settings", lambda: self.reuse_requested.emit(record.request))
        menu.addAction("Copy prompt", lambda: QGuiApplication.clipboard().setText(record.request.prompt))
        return menu

    @staticmethod
    def open_record(record: SavedImage | None) -> None:
        if record is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(record.path)))

    def _on_context_menu(self, pos) -> None:
        idx = self.indexAt(pos)
        if not idx.isValid():
            return
        menu = self.menu_for(idx.data(RecordRole))
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.popup(self.viewport().mapToGlobal(pos))


async def load_thumbnail_into(model: SessionResultsModel, record: SavedImage) -> None:
    img = await asyncio.to_thread(load_thumbnail, Path(record.path))
    if not img.isNull():
        model.set_thumbnail(Path(record.path), QPixmap.fromImage(img))
