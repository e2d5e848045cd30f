"""GalleryModel: the list of images behind the Saved tab and the Generate tab's session grid.

A windowed model: it knows how many images match the query (a COUNT from the index) and
keeps only a few pages of records near what the view shows, in an LRU of at most
``MAX_PAGES`` pages, so 100,000 rows cost a few thousand records whatever is scrolled
through. ``data()`` is O(1) and never does I/O: a row whose page is not loaded, like a
thumbnail not in the loader's LRU, comes back as a placeholder and its page is requested
once from the index worker; ``dataChanged`` follows when it arrives. New images are
inserted in place (later pages shift down) and deleted ones removed in place.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import logging
from pathlib import Path
from typing import Any, Hashable, Iterable, Sequence

import shiboken6
from PySide6.QtCore import (
    QAbstractListModel,
    QMimeData,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    QTimer,
    QUrl,
    Signal,
)
from PySide6.QtGui import QColor, QPainter, QPixmap

from studio_core.storage.index import ImageIndex
from studio_core.storage.records import ImageQuery, ImageRecord
from studio_gui.gallery.thumbnail_loader import ThumbnailLoader
from studio_gui.tasks import TaskOwner

log = logging.getLogger(__name__)

RecordRole = Qt.ItemDataRole.UserRole + 1
PathRole = Qt.ItemDataRole.UserRole + 2  # absolute path as str
ThumbStateRole = Qt.ItemDataRole.UserRole + 3  # "ready" | "loading" | "broken"
FIRST_PAGE = 160  # rows in the first round trip (with the COUNT): a screen or two, fast
# Rows per page fetched on demand: a few screens. A scroll-bar drag needs a new page almost
# every frame and shows ~50 rows of each; 500-row pages had the index thread building ten
# times the records shown, holding the GIL the GUI thread needs to paint.
PAGE = 200
MAX_PAGES = 20  # pages of records kept; older ones are dropped (and fetched again if shown)
PREFETCH = 60  # rows: serving a row this close to a loaded page's end fetches the next page
# Page fetches in flight at once. A scroll-bar drag asks for a new page every frame; each
# fetch turns rows into records on the index thread, holding the GIL the GUI thread needs
# to paint. Beyond this, only the newest row asked for is remembered and fetched when a
# fetch returns, so the screens flown past are never loaded at all. One: the index has one
# worker, so a second fetch would only queue behind the first and answer a stale screen.
MAX_IN_FLIGHT = 1
FIRST_THUMBS = 60  # thumbnails of the first screen requested with the first page
# Rows that arrived are announced (dataChanged) at most once per frame, and only those the
# view was actually shown a placeholder for: QListView walks every row of a dataChanged
# range, calling into Python (index → rowCount) several times per row.
FRAME_MS = 16
# While the user scrolls (and this long after), the index's background rescan waits: its
# Python on another thread would make each of Qt's calls into Python wait for the GIL.
HOLD_BACKGROUND_S = 0.5
SERVED_LIMIT = 4096  # placeholder rows remembered; beyond, those no fetch will answer are forgotten

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


def is_placeholder(pm: QPixmap) -> bool:
    """Whether ``pm`` is one of the shared placeholders (a tile still loading, or broken)."""
    key = pm.cacheKey()
    return any(p.cacheKey() == key for p in _placeholders.values())


def thumb_key(rec: ImageRecord) -> Hashable:
    return (rec.path, rec.mtime_ns, rec.file_size)


class _Page:
    """Consecutive loaded records from row ``start`` on (a page, possibly grown or cut by edits)."""

    __slots__ = ("start", "recs", "used", "keys")

    def __init__(self, start: int, recs: list[ImageRecord], used: int):
        self.start = start
        self.recs = recs
        self.used = used
        # Thumbnail key → offsets, built on first use and dropped when ``recs`` change. Per
        # page, so a page arriving mid-drag does not cost a map over every loaded record.
        self.keys: dict[Hashable, list[int]] | None = None

    def rows_of(self, key: Hashable) -> list[int]:
        if self.keys is None:
            m: dict[Hashable, list[int]] = {}
            for i, r in enumerate(self.recs):
                m.setdefault(thumb_key(r), []).append(i)
            self.keys = m
        offsets = self.keys.get(key)
        return [self.start + i for i in offsets] if offsets else []

    @property
    def end(self) -> int:
        return self.start + len(self.recs)


class GalleryModel(QAbstractListModel):
    """Records from an :class:`ImageIndex` query (windowed), or set by hand (``set_records``).

    Mutations run on the GUI thread. ``total_changed`` reports the number of matching
    images; ``query_failed`` carries a StudioError. ``record(row)`` is None for a row
    whose page is not loaded; :meth:`fetch_records` gets any rows' records.
    """

    total_changed = Signal(int)
    query_failed = Signal(object)
    loaded = Signal()  # a new query's first page is in

    def __init__(self, index: ImageIndex | None, loader: ThumbnailLoader, *, tasks: TaskOwner,
                 images_root: Path | None = None, query: ImageQuery = ImageQuery(), live: bool = True,
                 parent=None, bridge: Any = None):
        super().__init__(parent)
        self.image_index = index  # not `index`: that is QAbstractItemModel.index()
        self.loader = loader
        self.tasks = tasks
        self.images_root = Path(images_root if images_root is not None else index.images if index else ".")
        self.query = query
        self.page_size = PAGE
        self.max_pages = MAX_PAGES
        self.first_thumbs = FIRST_THUMBS  # the owner may set it from its view's size
        self._pages: list[_Page] = []  # sorted by start, never overlapping
        self._static = True  # set_records: everything is loaded, nothing is fetched
        self._total = 0
        self._clock = itertools.count(1)
        self._last: _Page | None = None
        self._pending: dict[int, int] = {}  # row ranges [start, end) of page requests in flight
        self._wanted: int | None = None  # the newest row asked for while MAX_IN_FLIGHT were out
        self._fetches: set[asyncio.Task] = set()
        self._row_of_id: dict[int, int] | None = None
        self._query_task: asyncio.Task | None = None
        self._generation = 0  # a new query
        self._epoch = 0  # any change of row numbering (insert, remove, reset)
        self.pages_fetched = 0  # for tests and the benchmark
        self._hold_background = getattr(index, "hold_background", None)  # absent on test doubles
        self._served: set[int] = set()  # rows shown as placeholders, waiting for their page
        self._dirty: list[tuple[int, int]] = []  # row ranges [first, end) to announce next frame
        self._flush = QTimer(self)
        self._flush.setSingleShot(True)
        self._flush.setInterval(FRAME_MS)
        self._flush.timeout.connect(self._flush_dirty)
        loader.ready.connect(self._on_thumbnail_ready)
        loader.ready_many.connect(self._on_thumbnails_ready)
        self._unsubscribe: list[tuple[list, Any]] = []
        if bridge is not None and live:
            # The core's bridge (studio_gui.bridge): Qt drops these connections with the model.
            bridge.image_indexed.connect(self._on_record_added)
            bridge.images_removed.connect(self._on_records_removed)
            bridge.images_changed.connect(self._on_records_changed)
        elif index is not None and live:
            # A model over an index without a core (tests, tools): the index's own lists.
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
        for t in (*self._fetches, self._query_task):
            if t is not None:
                t.cancel()

    # -- Qt model interface ------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else self._total

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        row = index.row()
        if not index.isValid() or not 0 <= row < self._total:
            return None
        page = self._page_of(row)
        if page is None:
            self._remember_served(row)
            self._request(row)
            if role == Qt.ItemDataRole.DecorationRole:
                return placeholder(self.loader.px)
            if role == ThumbStateRole:
                return "loading"
            return None
        if not self._static and page.end - row < PREFETCH and page.end < self._total:
            if self._page_of(page.end) is None:
                self._request(page.end)
        rec = page.recs[row - page.start]
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

    _TILE_FLAGS = (Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemNeverHasChildren
                   | Qt.ItemFlag.ItemIsDragEnabled)

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        # What QAbstractListModel gives a valid index, plus dragging; no call into the base.
        return self._TILE_FLAGS if index.isValid() else super().flags(index)

    def mimeTypes(self) -> list[str]:
        return ["text/uri-list"]

    def mimeData(self, indexes: Iterable[QModelIndex]) -> QMimeData:
        # The view's drag builds richer data (copies with meaningful names, image data);
        # this plain version serves any other consumer of the model.
        mime = QMimeData()
        urls, seen = [], set()
        for idx in indexes:
            rec = self.record(idx.row())
            if rec is not None and rec.id not in seen:
                seen.add(rec.id)
                urls.append(QUrl.fromLocalFile(str(self.images_root / rec.path)))
        mime.setUrls(urls)
        return mime

    def supportedDragActions(self) -> Qt.DropAction:
        return Qt.DropAction.CopyAction

    # -- pages -------------------------------------------------------------------------
    def _page_of(self, row: int) -> _Page | None:
        p = self._last
        if p is not None and p.start <= row < p.end:
            p.used = next(self._clock)
            return p
        for p in self._pages:
            if p.start <= row < p.end:
                p.used = next(self._clock)
                self._last = p
                return p
            if p.start > row:
                break
        return None

    def _request(self, row: int) -> None:
        """Fetch the page around ``row`` unless it is on its way (the `pending` pattern)."""
        if self._static or self.image_index is None or self._query_task is not None:
            return
        self.note_scrolling()
        start = row - row % self.page_size
        end = min(start + self.page_size, self._total)
        for p in self._pages:  # only the part not loaded yet
            if p.start <= start < p.end:
                start = p.end
            if p.start < end <= p.end:
                end = p.start
        if not start <= row < end:
            start, end = row, min(row + self.page_size, self._total)
        for s, e in self._pending.items():
            if s <= row < e:
                return
        if len(self._pending) >= MAX_IN_FLIGHT:
            self._wanted = row
            return
        self._pending[start] = end
        task = self.tasks.spawn(self._fetch(start, end - start, self._generation, self._epoch), name="gallery-page")
        self._fetches.add(task)
        task.add_done_callback(self._fetches.discard)

    def note_scrolling(self) -> None:
        """The user is moving through the grid: the index's background work waits meanwhile."""
        if self._hold_background is not None:
            self._hold_background(HOLD_BACKGROUND_S)

    async def _fetch(self, start: int, count: int, generation: int, epoch: int) -> None:
        try:
            await self._fetch_page(start, count, generation, epoch)
        finally:
            if generation == self._generation and self._alive():
                self._fetch_wanted()

    def _fetch_wanted(self) -> None:
        row, self._wanted = self._wanted, None
        if row is not None and row < self._total and self._page_of(row) is None:
            self._request(row)

    async def _fetch_page(self, start: int, count: int, generation: int, epoch: int) -> None:
        assert self.image_index is not None
        try:
            recs = await self.image_index.rows(self.query, start, count)
        except Exception as exc:
            if generation == self._generation:
                self._pending.pop(start, None)
                self.query_failed.emit(exc)
            return
        if generation != self._generation:
            return
        self._pending.pop(start, None)
        if epoch != self._epoch:
            # Rows moved while the page was on its way: let the view ask again.
            self._mark_dirty(start, start + count)
            return
        self.pages_fetched += 1
        self._store(start, recs)
        self._repaint_served(start, start + len(recs))

    def _remember_served(self, row: int) -> None:
        if row in self._served:
            return
        if len(self._served) >= SERVED_LIMIT:
            # Rows a drag flew past: no fetch will bring them, and if they come back into view
            # the view asks for them again.
            wanted, near = self._wanted, self.page_size
            self._served = {r for r in self._served
                            if any(s <= r < e for s, e in self._pending.items())
                            or (wanted is not None and abs(r - wanted) < near)}
        self._served.add(row)

    def _repaint_served(self, first: int, end: int) -> None:
        """Announce the rows of ``first`` … ``end - 1`` that were painted as placeholders."""
        if len(self._served) < end - first:
            rows = [r for r in self._served if first <= r < end]
        else:
            rows = [r for r in range(first, end) if r in self._served]
        if rows:
            self._served.difference_update(rows)
            self._mark_dirty(min(rows), max(rows) + 1)

    def _mark_dirty(self, first: int, end: int) -> None:
        self._dirty.append((first, end))
        if not self._flush.isActive():
            self._flush.start()

    def _flush_dirty(self) -> None:
        """One dataChanged per run of dirty rows (ranges that touch are merged)."""
        if not self._alive():
            return
        runs: list[list[int]] = []
        for first, end in sorted(self._dirty):
            end = min(end, self._total)
            if first >= end:
                continue
            if runs and first <= runs[-1][1]:
                runs[-1][1] = max(runs[-1][1], end)
            else:
                runs.append([first, end])
        self._dirty.clear()
        for first, end in runs:
            self.dataChanged.emit(self.index_for(first), self.index_for(end - 1))

    def _forget_served(self) -> None:
        """Row numbers changed: what was shown where is the view's to ask again."""
        self._served.clear()
        self._dirty.clear()
        self._flush.stop()

    def _store(self, start: int, recs: list[ImageRecord]) -> None:
        if not recs:
            return
        self._carve(start, start + len(recs))
        page = _Page(start, recs, next(self._clock))
        bisect.insort(self._pages, page, key=lambda p: p.start)
        while not self._static and len(self._pages) > self.max_pages:
            old = min((p for p in self._pages if p is not page), key=lambda p: p.used)
            self._pages.remove(old)
        self._last = page
        self._lookups_changed()

    def _carve(self, first: int, end: int) -> None:
        """Forget loaded rows ``first`` … ``end - 1`` (fresher ones replace them)."""
        out: list[_Page] = []
        for p in self._pages:
            if p.end <= first or p.start >= end:
                out.append(p)
                continue
            if p.start < first:
                out.append(_Page(p.start, p.recs[:first - p.start], p.used))
            if p.end > end:
                out.append(_Page(end, p.recs[end - p.start:], p.used))
        self._pages = out
        self._last = None

    # -- loading -------------------------------------------------------------------------
    @property
    def total(self) -> int:
        return self._total

    @property
    def fetching(self) -> bool:
        return self._query_task is not None or bool(self._pending)

    @property
    def loaded_count(self) -> int:
        """How many records the model holds now (bounded by the page LRU)."""
        return sum(len(p.recs) for p in self._pages)

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
                # The first rows and the COUNT in one worker round trip.
                records, total = await self.image_index.first_page(query, limit=FIRST_PAGE)
            except Exception as exc:
                self.query_failed.emit(exc)
                return
            if self._query_task is me:
                self._query_task = None  # done: listeners below may ask `fetching`
            # Start the first screen's thumbnails (one batch) before Qt lays out and paints.
            self._prefetch_thumbs(records[:self.first_thumbs])
            self._reset(records, total, static=False)
            self.loaded.emit()
        finally:
            if self._query_task is me:
                self._query_task = None

    def _prefetch_thumbs(self, records: Sequence[ImageRecord]) -> None:
        self.loader.request_many([(thumb_key(r), self.images_root / r.path, r.file_size, r.mtime_ns)
                                  for r in records])

    def _reset(self, records: list[ImageRecord], total: int, *, static: bool) -> None:
        self._generation += 1
        self._epoch += 1
        self._pending.clear()
        self._wanted = None
        self._forget_served()
        for t in list(self._fetches):
            t.cancel()
        self.beginResetModel()
        self._static = static
        self._pages = [_Page(0, records, next(self._clock))] if records else []
        self._last = None
        self._total = max(total, len(records))
        self._lookups_changed()
        self.endResetModel()
        self.total_changed.emit(self._total)

    def set_records(self, records: Sequence[ImageRecord]) -> None:
        """Show exactly these records (clean-up preview, tests); no paging."""
        recs = list(records)
        self._reset(recs, len(recs), static=True)

    def _set_total(self, total: int) -> None:
        self._total = total
        self.total_changed.emit(total)

    async def fetch_records(self, rows: Iterable[int]) -> list[ImageRecord]:
        """The records of ``rows`` (in row order), fetching those not loaded in one round trip.

        For actions on a selection that reaches beyond the loaded pages. Rows that moved
        meanwhile are fetched again; the result never mixes two numberings.
        """
        rows = sorted(set(r for r in rows if 0 <= r < self._total))
        for _attempt in range(3):
            epoch, generation = self._epoch, self._generation
            have = {r: self.record(r) for r in rows}
            missing = [r for r, rec in have.items() if rec is None]
            if not missing or self.image_index is None:
                return [rec for rec in have.values() if rec is not None]
            runs: list[tuple[int, int]] = []
            for r in missing:
                if runs and runs[-1][0] + runs[-1][1] == r and runs[-1][1] < 5000:
                    runs[-1] = (runs[-1][0], runs[-1][1] + 1)
                else:
                    runs.append((r, 1))
            got = await self.image_index.rows_many(self.query, runs)
            if epoch != self._epoch or generation != self._generation:
                continue
            for (start, _n), recs in zip(runs, got):
                for i, rec in enumerate(recs):
                    have[start + i] = rec
            return [rec for rec in have.values() if rec is not None]
        return [rec for r in rows if (rec := self.record(r)) is not None]

    def missing_rows(self, rows: Iterable[int], *, request: bool = False, first_only: bool = False) -> list[int]:
        """Which of ``rows`` have no loaded record; ``request``: fetch their pages too."""
        out = []
        for r in rows:
            if 0 <= r < self._total and self._page_of(r) is None:
                out.append(r)
                if first_only:
                    break
        if request:
            for r in out:
                if self._page_of(r) is None and not any(s <= r < e for s, e in self._pending.items()):
                    self._request(r)
        return out

    # -- lookups ---------------------------------------------------------------------------
    def _lookups_changed(self) -> None:
        self._row_of_id = None

    def _id_map(self) -> dict[int, int]:
        if self._row_of_id is None:
            self._row_of_id = {r.id: p.start + i for p in self._pages for i, r in enumerate(p.recs)}
        return self._row_of_id

    def _rows_of_key(self, key: Hashable) -> list[int]:
        return [r for p in self._pages for r in p.rows_of(key)]

    def record(self, row: int) -> ImageRecord | None:
        """The record of ``row`` if its page is loaded (no request, no I/O)."""
        if not 0 <= row < self._total:
            return None
        page = self._page_of(row)
        return page.recs[row - page.start] if page is not None else None

    def row_of(self, record_id: int) -> int | None:
        return self._id_map().get(record_id)

    def records(self) -> list[ImageRecord]:
        """The loaded records in row order (all of them after ``set_records``)."""
        return [r for p in self._pages for r in p.recs]

    def abs_path(self, rec: ImageRecord) -> Path:
        return self.images_root / rec.path

    # -- live changes ----------------------------------------------------------------------
    def _on_thumbnail_ready(self, key: Hashable) -> None:
        for row in self._rows_of_key(key):
            idx = self.index_for(row)
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])

    def _on_thumbnails_ready(self, keys: Sequence[Hashable]) -> None:
        rows = [r for k in keys for r in self._rows_of_key(k)]
        if rows:  # one signal, one repaint for a batch
            self.dataChanged.emit(self.index_for(min(rows)), self.index_for(max(rows)),
                                  [Qt.ItemDataRole.DecorationRole])

    def index_for(self, row: int) -> QModelIndex:
        return self.createIndex(row, 0)

    def _alive(self) -> bool:
        if shiboken6.isValid(self):  # a model over a bare index is called from the index's lists, which Qt never drops
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
        row = self._known_row(rec)
        if row is None:
            # Between pages that are not loaded: the index tells where it goes.
            self.tasks.spawn(self._insert_ranked(rec, self._generation), name="gallery-insert")
            return
        self._insert_at(row, rec)

    def _known_row(self, rec: ImageRecord) -> int | None:
        """``rec``'s row when the loaded pages decide it, else None."""
        if self._total == 0:
            return 0
        key = self._sort_key(rec)
        first = self._page_of(0)
        if first is not None and key <= self._sort_key(first.recs[0]):
            return 0  # a new image usually sorts first (newest)
        last = self._page_of(self._total - 1)
        if last is not None and key > self._sort_key(last.recs[-1]):
            return self._total
        for p in self._pages:
            if self._sort_key(p.recs[0]) < key <= self._sort_key(p.recs[-1]):
                return p.start + bisect.bisect_left(p.recs, key, key=self._sort_key)
        if self._static:
            return self._total
        return None

    async def _insert_ranked(self, rec: ImageRecord, generation: int) -> None:
        assert self.image_index is not None
        for _attempt in range(3):
            epoch = self._epoch
            try:
                row = await self.image_index.rank(self.query, rec)
            except Exception as exc:
                self.query_failed.emit(exc)
                return
            if generation != self._generation or rec.id in self._id_map():
                return
            if epoch == self._epoch:
                self._insert_at(min(row, self._total), rec)
                return
        self.reload()

    def _insert_at(self, row: int, rec: ImageRecord) -> None:
        self.beginInsertRows(QModelIndex(), row, row)
        self._epoch += 1
        self._forget_served()
        target = next((p for p in self._pages if p.start <= row <= p.end), None)
        for p in self._pages:
            if p is target:
                p.recs.insert(row - p.start, rec)
                p.keys = None
            elif p.start >= row:
                p.start += 1  # later pages shift down by one
        if target is None:  # the record is at hand: keep it as a page of one
            bisect.insort(self._pages, _Page(row, [rec], next(self._clock)), key=lambda p: p.start)
        self._last = None
        self._total += 1
        self._lookups_changed()
        self.endInsertRows()
        self.total_changed.emit(self._total)

    def _sort_key(self, r: ImageRecord) -> tuple:
        if self.query.sort == "prompt":
            return (r.prompt.casefold(), r.id)
        if self.query.sort == "oldest":
            return (r.created_ts, r.id)
        return (-r.created_ts, -r.id)

    def _on_records_removed(self, ids: Sequence[int]) -> None:
        if self._alive():
            self.remove_ids(ids)

    def remove_ids(self, ids: Iterable[int]) -> None:
        ids = set(ids)
        id_map = self._id_map()
        rows = sorted({id_map[i] for i in ids if i in id_map}, reverse=True)
        unseen = len(ids) - len(rows)
        if rows:
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
                self._remove_rows(first, last)
            self.total_changed.emit(self._total)
        if unseen and not self._static and self.image_index is not None:
            # Some were in pages not loaded (or not in this query): the COUNT tells.
            self.tasks.spawn(self._resync(self._generation), name="gallery-resync")

    def _remove_rows(self, first: int, last: int) -> None:
        n = last - first + 1
        self.beginRemoveRows(QModelIndex(), first, last)
        self._epoch += 1
        self._forget_served()
        out = []
        for p in self._pages:
            if p.end <= first:
                out.append(p)
            elif p.start > last:
                p.start -= n
                out.append(p)
            else:
                lo, hi = max(first, p.start) - p.start, min(last + 1, p.end) - p.start
                del p.recs[lo:hi]
                p.keys = None
                p.start = min(p.start, first)
                if p.recs:
                    out.append(p)
        self._pages = out
        self._last = None
        self._total -= n
        self._lookups_changed()
        self.endRemoveRows()

    async def _resync(self, generation: int) -> None:
        assert self.image_index is not None
        epoch = self._epoch
        try:
            total = await self.image_index.count(self.query)
        except Exception as exc:
            self.query_failed.emit(exc)
            return
        if generation == self._generation and epoch == self._epoch and total != self._total:
            # Rows went from pages nobody looked at; their places are unknown, so start over.
            self.reload()

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
        page = self._page_of(row)
        assert page is not None
        page.recs[row - page.start] = rec
        page.keys = None
        idx = self.index_for(row)
        self.dataChanged.emit(idx, idx)
