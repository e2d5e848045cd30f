"""GalleryModel: the list of images behind the Saved tab and the Generate tab's session grid.

``data()`` is O(1) and never does I/O: a thumbnail that is not in the loader's LRU comes
back as a shared placeholder and is requested once. Rows arrive page by page from the
index (``canFetchMore``/``fetchMore``), so 100,000 images cost only what is scrolled
through; new images are inserted in place and deleted ones removed in place.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from pathlib import Path
from typing import Any, Hashable, Iterable, Sequence

import shiboken6
from PySide6.QtCore import QAbstractListModel, QMimeData, QModelIndex, QPersistentModelIndex, Qt, QUrl, Signal
from PySide6.QtGui import QColor, QPainter, QPixmap

from studio_core.storage.index import ImageIndex
from studio_core.storage.records import ImageQuery, ImageRecord
from studio_gui.gallery.thumbnail_loader import ThumbnailLoader
from studio_gui.tasks import TaskOwner

log = logging.getLogger(__name__)

RecordRole = Qt.ItemDataRole.UserRole + 1
PathRole = Qt.ItemDataRole.UserRole + 2  # absolute path as str
ThumbStateRole = Qt.ItemDataRole.UserRole + 3  # "ready" | "loading" | "broken"
FIRST_PAGE = 300
PAGE = 1000
MAX_PAGE = 8000

_placeholders: dict[tuple[int, str], QPixmap] = {}


def placeholder(px: int, kind: str = "loading") -> QPixmap:
    key = (px, kind)
    pm = _placeholders.get(key)
    if pm is None:
        pm = QPixmap(px, px)
        pm.fill(QColor(0, 0, 0, 0))
        p = QPainter(pm)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(QColor(128, 128, 128, 120))
        p.setBrush(QColor(128, 128, 128, 40))
        p.drawRoundedRect(4, 4, px - 8, px - 8, 8, 8)
        if kind == "broken":
            p.setPen(QColor(200, 80, 80, 200))
            p.drawLine(px // 3, px // 3, 2 * px // 3, 2 * px // 3)
            p.drawLine(2 * px // 3, px // 3, px // 3, 2 * px // 3)
        p.end()
        _placeholders[key] = pm
    return pm


def thumb_key(rec: ImageRecord) -> Hashable:
    return (rec.path, rec.mtime_ns, rec.file_size)


class GalleryModel(QAbstractListModel):
    """Records from an :class:`ImageIndex` query, or set by hand (``index=None``).

    Mutations run on the GUI thread. ``total_changed`` reports the number of matching
    images (not only the loaded ones); ``query_failed`` carries a StudioError.
    """

    total_changed = Signal(int)
    query_failed = Signal(object)
    loaded = Signal()  # a new query's first page is in

    def __init__(self, index: ImageIndex | None, loader: ThumbnailLoader, *, tasks: TaskOwner,
                 images_root: Path | None = None, query: ImageQuery = ImageQuery(), live: bool = True,
                 parent=None):
        super().__init__(parent)
        self.image_index = index  # not `index`: that is QAbstractItemModel.index()
        self.loader = loader
        self.tasks = tasks
        self.images_root = Path(images_root if images_root is not None else index.images if index else ".")
        self.query = query
        self.page_size = PAGE
        self._records: list[ImageRecord] = []
        self._row_of_id: dict[int, int] | None = {}
        self._rows_of_key: dict[Hashable, list[int]] | None = {}
        self._total = 0
        self._exhausted = True
        self._fetch_task: asyncio.Task | None = None
        self._query_task: asyncio.Task | None = None
        self._generation = 0
        loader.ready.connect(self._on_thumbnail_ready)
        self._unsubscribe: list[tuple[list, Any]] = []
        if index is not None and live:
            for listeners, cb in ((index.record_added, self._on_record_added),
                                  (index.records_removed, self._on_records_removed),
                                  (index.records_changed, self._on_records_changed)):
                listeners.append(cb)
                self._unsubscribe.append((listeners, cb))

    def detach(self) -> None:
        """Stop listening to the index (the owning widget is going away)."""
        for listeners, cb in self._unsubscribe:
            if cb in listeners:
                listeners.remove(cb)
        self._unsubscribe.clear()
        for t in (self._fetch_task, self._query_task):
            if t is not None:
                t.cancel()

    # -- Qt model interface ------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._records)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        row = index.row()
        if not index.isValid() or not 0 <= row < len(self._records):
            return None
        rec = self._records[row]
        if role == Qt.ItemDataRole.DisplayRole:
            return rec.title
        if role == Qt.ItemDataRole.DecorationRole:
            key = thumb_key(rec)
            pm = self.loader.get(key)
            if pm is not None:
                return pm
            if self.loader.failed(key):
                return placeholder(self.loader.px, "broken")
            self.loader.request(key, self.images_root / rec.path, size=rec.file_size, mtime_ns=rec.mtime_ns)
            return placeholder(self.loader.px)
        if role == Qt.ItemDataRole.ToolTipRole:
            seed = f" · seed {rec.seed}" if rec.seed is not None else ""
            size = f"{rec.width}×{rec.height} · " if rec.width else ""
            prompt = rec.prompt or "(no prompt recorded)"
            return f"{prompt}\n{size}{rec.service}{seed}\n{rec.name}"
        if role == RecordRole:
            return rec
        if role == PathRole:
            return str(self.images_root / rec.path)
        if role == ThumbStateRole:
            key = thumb_key(rec)
            return "ready" if self.loader.get(key) is not None else "broken" if self.loader.failed(key) else "loading"
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return rec.prompt or rec.name
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        base = super().flags(index)
        return base | Qt.ItemFlag.ItemIsDragEnabled if index.isValid() else base

    def mimeTypes(self) -> list[str]:
        return ["text/uri-list"]

    def mimeData(self, indexes: Iterable[QModelIndex]) -> QMimeData:
        # The view's drag builds richer data (copies with meaningful names, image data);
        # this plain version serves any other consumer of the model.
        mime = QMimeData()
        urls, seen = [], set()
        for idx in indexes:
            rec = self.data(idx, RecordRole)
            if rec is not None and rec.id not in seen:
                seen.add(rec.id)
                urls.append(QUrl.fromLocalFile(str(self.images_root / rec.path)))
        mime.setUrls(urls)
        return mime

    def supportedDragActions(self) -> Qt.DropAction:
        return Qt.DropAction.CopyAction

    def canFetchMore(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> bool:
        return (not parent.isValid() and self.image_index is not None and not self._exhausted
                and self._fetch_task is None)

    def fetchMore(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> None:
        if not self.canFetchMore(parent):
            return
        self._fetch_task = self.tasks.spawn(self._fetch_page(self._generation), name="gallery-page")

    # -- loading -------------------------------------------------------------------------
    @property
    def total(self) -> int:
        return self._total

    @property
    def fetching(self) -> bool:
        return self._fetch_task is not None or self._query_task is not None

    def set_query(self, query: ImageQuery) -> asyncio.Task:
        """Show ``query``'s results; a query still running is cancelled (search as you type)."""
        self.query = query
        if self._query_task is not None:
            self._query_task.cancel()
        self._query_task = self.tasks.spawn(self._load_first(query), name="gallery-query")
        return self._query_task

    def reload(self) -> asyncio.Task:
        return self.set_query(self.query)

    async def _load_first(self, query: ImageQuery) -> None:
        assert self.image_index is not None
        me = asyncio.current_task()
        try:
            try:
                records, total = await self.image_index.first_page(query, limit=FIRST_PAGE)
            except Exception as exc:
                self.query_failed.emit(exc)
                return
            if self._query_task is me:
                self._query_task = None  # done: listeners below may ask `fetching`
            self._generation += 1
            self.page_size = PAGE
            if self._fetch_task is not None:
                self._fetch_task.cancel()
                self._fetch_task = None
            self.beginResetModel()
            self._records = records
            self._invalidate()
            self._exhausted = len(records) < FIRST_PAGE
            self.endResetModel()
            self._set_total(total)
            self.loaded.emit()
        finally:
            if self._query_task is me:
                self._query_task = None

    async def _fetch_page(self, generation: int) -> None:
        assert self.image_index is not None
        try:
            after = self._records[-1] if self._records else None
            try:
                page = await self.image_index.query(self.query, after=after, limit=self.page_size)
            except Exception as exc:
                self.query_failed.emit(exc)
                self._exhausted = True
                return
            if generation != self._generation:
                return
            ids = self._id_map()
            page = [r for r in page if r.id not in ids]  # a live insert may have shown it already
            if len(page) < 1:
                self._exhausted = True
                return
            # Pages grow so a long scroll needs few round trips; the first stays small for speed.
            self.page_size = min(self.page_size * 2, MAX_PAGE)
            first = len(self._records)
            self.beginInsertRows(QModelIndex(), first, first + len(page) - 1)
            self._records.extend(page)
            self._invalidate()
            self.endInsertRows()
        finally:
            if generation == self._generation:
                self._fetch_task = None

    def set_records(self, records: Sequence[ImageRecord]) -> None:
        """Show exactly these records (clean-up preview, tests); no paging."""
        self._generation += 1
        self.beginResetModel()
        self._records = list(records)
        self._invalidate()
        self._exhausted = True
        self.endResetModel()
        self._set_total(len(self._records))

    def _set_total(self, total: int) -> None:
        self._total = total
        self.total_changed.emit(total)

    # -- lookups ---------------------------------------------------------------------------
    def _invalidate(self) -> None:
        self._row_of_id = None
        self._rows_of_key = None

    def _id_map(self) -> dict[int, int]:
        if self._row_of_id is None:
            self._row_of_id = {r.id: i for i, r in enumerate(self._records)}
        return self._row_of_id

    def _key_map(self) -> dict[Hashable, list[int]]:
        if self._rows_of_key is None:
            m: dict[Hashable, list[int]] = {}
            for i, r in enumerate(self._records):
                m.setdefault(thumb_key(r), []).append(i)
            self._rows_of_key = m
        return self._rows_of_key

    def record(self, row: int) -> ImageRecord | None:
        return self._records[row] if 0 <= row < len(self._records) else None

    def row_of(self, record_id: int) -> int | None:
        return self._id_map().get(record_id)

    def records(self) -> list[ImageRecord]:
        return list(self._records)

    def abs_path(self, rec: ImageRecord) -> Path:
        return self.images_root / rec.path

    # -- live changes ----------------------------------------------------------------------
    def _on_thumbnail_ready(self, key: Hashable) -> None:
        for row in self._key_map().get(key, ()):
            idx = self.index_for(row)
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])

    def index_for(self, row: int) -> QModelIndex:
        return self.createIndex(row, 0)

    def _alive(self) -> bool:
        if shiboken6.isValid(self):
            return True
        self.detach()
        return False

    def _on_record_added(self, rec: ImageRecord) -> None:
        if not self._alive() or not self.query.matches(rec):
            return
        self.insert_record(rec)

    def insert_record(self, rec: ImageRecord) -> None:
        if rec.id in self._id_map():
            self._replace(rec)
            return
        # A new image usually sorts first (newest): skip building every key for that case.
        if not self._records or self._sort_key(rec) <= self._sort_key(self._records[0]):
            row = 0
        else:
            row = self._bisect(rec)
        if row >= len(self._records) and not self._exhausted:
            return  # belongs to a page not fetched yet; paging will bring it
        self.beginInsertRows(QModelIndex(), row, row)
        self._records.insert(row, rec)
        self._invalidate()
        self.endInsertRows()
        self._set_total(self._total + 1)

    def _sort_key(self, r: ImageRecord) -> tuple:
        if self.query.sort == "prompt":
            return (r.prompt.casefold(), r.id)
        if self.query.sort == "oldest":
            return (r.created_ts, r.id)
        return (-r.created_ts, -r.id)

    def _bisect(self, rec: ImageRecord) -> int:
        keys = [self._sort_key(r) for r in self._records]
        return bisect.bisect_left(keys, self._sort_key(rec))

    def _on_records_removed(self, ids: Sequence[int]) -> None:
        if self._alive():
            self.remove_ids(ids)

    def remove_ids(self, ids: Iterable[int]) -> None:
        id_map = self._id_map()
        rows = sorted({id_map[i] for i in ids if i in id_map}, reverse=True)
        if not rows:
            return
        # Remove contiguous runs bottom-up so earlier row numbers stay valid.
        start = end = rows[0]
        runs = []
        for r in rows[1:]:
            if r == start - 1:
                start = r
            else:
                runs.append((start, end))
                start = end = r
        runs.append((start, end))
        for first, last in runs:
            self.beginRemoveRows(QModelIndex(), first, last)
            del self._records[first:last + 1]
            self._invalidate()
            self.endRemoveRows()
        self._set_total(max(0, self._total - len(rows)))

    def _on_records_changed(self, recs: Sequence[ImageRecord]) -> None:
        if not self._alive():
            return
        for rec in recs:
            if rec.id in self._id_map():
                if self.query.matches(rec) or not self.query.favourites_only:
                    self._replace(rec)
                else:
                    self.remove_ids([rec.id])

    def _replace(self, rec: ImageRecord) -> None:
        row = self._id_map()[rec.id]
        self._records[row] = rec
        self._rows_of_key = None
        idx = self.index_for(row)
        self.dataChanged.emit(idx, idx)
