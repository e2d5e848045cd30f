"""GalleryView: the icon grid, keyboard shortcuts, and dragging images out as files.

Game editors take files, not pixels: Godot, Unity, Aseprite and Explorer all read the
``text/uri-list`` (CF_HDROP on Windows) a QDrag with URLs carries. The dragged files are
copies (hard links where possible) with short, meaningful names in a private folder per
drag, because editors keep the name they receive and Aseprite would otherwise offer to
import unrelated numbered files next to them.

Those copies are made in a worker when the selection changes (:class:`DragStaging`), so
a drag only picks up files already there: linking or copying hundreds of files on the
GUI thread froze the window at the start of every drag.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Callable, Sequence

from PySide6.QtCore import QItemSelectionModel, QMimeData, QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QContextMenuEvent, QDrag, QImage, QKeySequence, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QListView, QMenu, QWidget

from studio_core.storage.records import ImageRecord
from studio_gui.gallery.actions import MenuHandlers, image_menu
from studio_gui.gallery.delegate import GalleryDelegate
from studio_gui.gallery.model import GalleryModel, RecordRole, thumb_key

log = logging.getLogger(__name__)

MAX_DRAG = 500  # each selected file is staged (linked) in a worker, ready for a drag


def drag_name(rec: ImageRecord) -> str:
    # Imported on first drag: storage.images loads Pillow, which the first screen does not need.
    from studio_core.storage.images import safe_component

    stem = safe_component(rec.prompt, max_len=32, fallback="") if rec.prompt else ""
    if not stem:
        stem = Path(rec.name).stem
    if rec.seed is not None:
        stem = f"{stem}_{rec.seed}"
    return stem + (Path(rec.name).suffix.lower() or ".png")


def stage_for_drag(files: Sequence[tuple[Path, str]], drag_root: Path) -> list[Path]:
    """Place each ``(source, name)`` in a fresh folder under ``drag_root``; returns the new paths.

    A hard link costs no disk and no copy time; a copy is the fallback (other drive, FAT).
    """
    folder = Path(drag_root) / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    folder.mkdir(parents=True, exist_ok=True)
    out, used = [], set()
    for src, name in files:
        base, ext = os.path.splitext(name)
        candidate, n = name, 2
        while candidate.lower() in used:
            candidate, n = f"{base}-{n}{ext}", n + 1
        used.add(candidate.lower())
        target = folder / candidate
        try:
            os.link(src, target)
        except OSError:
            shutil.copy2(src, target)
        out.append(target)
    return out


def prune_drag_folders(drag_root: Path, *, older_than_s: float = 86400) -> None:
    """Old drag folders are safe to drop: the editors copied the files on drop. Blocking."""
    now = time.time()
    try:
        entries = list(os.scandir(drag_root))
    except OSError:
        return
    for e in entries:
        try:
            if e.is_dir() and now - e.stat().st_mtime > older_than_s:
                shutil.rmtree(e.path, ignore_errors=True)
        except OSError:
            pass


class DragStaging:
    """Named copies of the selection, made on one worker thread as the selection changes.

    ``prepare(key, sources)`` starts staging (``key`` identifies the selection); ``ready(key)``
    is the staged files once done, None while not (or for another selection), and raises
    the OSError that stopped it. A superseded folder nobody dragged is removed in the same
    worker, after its staging, so the drag folder does not fill up while the user clicks around.
    """

    def __init__(self, drag_root: Path):
        self.drag_root = Path(drag_root)
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="drag-stage")
        self._key: object = None
        self._future: concurrent.futures.Future | None = None
        self._dragged = False

    def prepare(self, key: object, sources: Sequence[tuple[Path, ImageRecord]]) -> None:
        if key == self._key:
            return
        old, self._future = self._future, None
        if old is not None and not self._dragged:
            self._pool.submit(_drop_staged, old)
        self._key, self._dragged = key, False
        self._future = self._pool.submit(_stage, list(sources), self.drag_root)

    def ready(self, key: object) -> list[Path] | None:
        if key != self._key or self._future is None or not self._future.done():
            return None
        files = self._future.result()
        self._dragged = True  # a drop target may read these after the drag: keep them (pruned later)
        return files

    def wait(self, timeout: float | None = None) -> None:
        """Blocking; for tests and tools."""
        if self._future is not None:
            concurrent.futures.wait([self._future], timeout)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _stage(sources: list[tuple[Path, ImageRecord]], drag_root: Path) -> list[Path]:
    return stage_for_drag([(src, drag_name(rec)) for src, rec in sources], drag_root)


def _drop_staged(future: concurrent.futures.Future) -> None:
    try:
        files = future.result()
    except Exception:  # nothing was staged
        return
    if files:
        shutil.rmtree(files[0].parent, ignore_errors=True)


class GalleryView(QListView):
    open_requested = Signal(object)  # ImageRecord (Enter / double-click)
    delete_requested = Signal(list)  # list[ImageRecord]
    copy_requested = Signal(list)
    preview_requested = Signal(object)
    favourite_requested = Signal(list)
    drag_failed = Signal(object)  # exception

    def __init__(self, parent: QWidget | None = None, *, drag_root: Path | None = None, thumb: int = 128,
                 show_text: bool = True):
        super().__init__(parent)
        self.drag_root = drag_root
        # Returns the full-size QImage when one is already decoded (the detail pane's), so a
        # drag never decodes on the GUI thread.
        self.full_image_for: Callable[[ImageRecord], QImage | None] = lambda rec: None
        # What the right-click menu offers (the owner fills it in); None: no menu.
        self.menu_handlers: MenuHandlers | None = None
        self.gallery_delegate = GalleryDelegate(self, thumb=thumb, show_text=show_text)
        self.setItemDelegate(self.gallery_delegate)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setUniformItemSizes(True)  # measured: 26–29 ms vs 137–153 ms to lay out 10k rows
        self.setGridSize(self.gallery_delegate.tile_size())
        self.setIconSize(QSize(thumb, thumb))
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(500)
        self.setMovement(QListView.Movement.Static)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setDefaultDropAction(Qt.DropAction.CopyAction)
        self.setMouseTracking(True)
        self.setSpacing(0)
        self.setAccessibleName("Saved images")
        self.doubleClicked.connect(self._on_double_clicked)
        self.drag_staging = DragStaging(drag_root) if drag_root is not None else None
        self.destroyed.connect(lambda *_, st=self.drag_staging: st.close() if st else None)
        self._stage_timer = QTimer(self, singleShot=True, interval=0)  # one staging per burst of changes
        self._stage_timer.timeout.connect(self.prepare_drag)
        self.verticalScrollBar().valueChanged.connect(self._on_scrolled)

    def _on_scrolled(self, _value: int) -> None:
        # Even through loaded pages: painting while a rescan runs Python elsewhere stalls.
        m = self.gallery_model()
        if m is not None:
            m.note_scrolling()

    def gallery_model(self) -> GalleryModel | None:
        m = self.model()
        return m if isinstance(m, GalleryModel) else None

    def selected_rows(self) -> list[int]:
        sel = self.selectionModel()
        if sel is None:
            return []
        rows: list[int] = []
        for rng in sel.selection():  # ranges: Ctrl+A over 100k rows is one, not 100k indexes
            rows.extend(range(rng.top(), rng.bottom() + 1))
        return sorted(set(rows))

    def selected_records(self) -> list[ImageRecord]:
        """Records of the selected rows whose pages are loaded (see :meth:`with_selected`)."""
        m = self.model()
        out = [m.index(r, 0).data(RecordRole) for r in self.selected_rows()]
        return [r for r in out if r is not None]

    def with_selected(self, fn: Callable[[list[ImageRecord]], object]) -> None:
        """Call ``fn(records)`` with every selected record: at once when their pages are
        loaded, else once the windowed model fetched the missing ones (off the GUI thread)."""
        m = self.gallery_model()
        rows = self.selected_rows()
        if m is None or not m.missing_rows(rows, first_only=True):
            fn(self.selected_records())
            return

        async def fetch() -> None:
            recs = await m.fetch_records(rows)
            if recs:
                fn(recs)

        m.tasks.spawn(fetch(), name="gallery-selection")

    def current_record(self) -> ImageRecord | None:
        idx = self.currentIndex()
        return idx.data(RecordRole) if idx.isValid() else None

    # -- keyboard ------------------------------------------------------------------------
    def keyPressEvent(self, event) -> None:
        def emit_if_any(signal):
            return lambda recs: signal.emit(recs) if recs else None

        if event.matches(QKeySequence.StandardKey.Copy):
            self.with_selected(emit_if_any(self.copy_requested))
            event.accept()
            return
        key = event.key()
        if key == Qt.Key.Key_Delete or (key == Qt.Key.Key_Backspace and event.modifiers() & Qt.KeyboardModifier.ControlModifier):
            self.with_selected(emit_if_any(self.delete_requested))
            event.accept()
            return
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            rec = self.current_record()
            if rec is not None:
                self.open_requested.emit(rec)
            event.accept()
            return
        if key == Qt.Key.Key_Space and not event.modifiers():
            rec = self.current_record()
            if rec is not None:
                self.preview_requested.emit(rec)
            event.accept()
            return
        if key == Qt.Key.Key_F and not event.modifiers():
            self.with_selected(emit_if_any(self.favourite_requested))
            event.accept()
            return
        super().keyPressEvent(event)

    def _on_double_clicked(self, index) -> None:
        rec = index.data(RecordRole)
        if rec is not None:
            self.open_requested.emit(rec)

    # -- right-click menu -----------------------------------------------------------------
    def menu_for(self, records: Sequence[ImageRecord], current: ImageRecord | None = None) -> QMenu | None:
        if self.menu_handlers is None or not records:
            return None
        return image_menu(self, records, self.menu_handlers, current)

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        by_keyboard = event.reason() == QContextMenuEvent.Reason.Keyboard
        idx = self.currentIndex() if by_keyboard else self.indexAt(event.pos())
        if not idx.isValid():
            event.ignore()  # empty space: nothing to act on
            return
        sel = self.selectionModel()
        if sel is not None and not sel.isSelected(idx):
            # Right-clicking outside the selection acts on that tile alone, as file managers do.
            sel.setCurrentIndex(idx, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        elif sel is not None:
            sel.setCurrentIndex(idx, QItemSelectionModel.SelectionFlag.NoUpdate)
        if self.menu_handlers is None:
            event.ignore()
            return
        pos = self.viewport().mapToGlobal(self.visualRect(idx).center()) if by_keyboard else event.globalPos()
        current = idx.data(RecordRole)

        def show(recs: list[ImageRecord]) -> None:
            menu = self.menu_for(recs, current)
            if menu is not None:
                menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
                menu.popup(pos)

        self.with_selected(show)
        event.accept()

    # -- drag out ----------------------------------------------------------------------------
    def selectionChanged(self, selected, deselected) -> None:
        super().selectionChanged(selected, deselected)
        if self.drag_staging is not None:
            self._stage_timer.start()

    def _drag_key(self, records: Sequence[ImageRecord]) -> tuple:
        m = self.gallery_model()
        return tuple((r.id, str(m.abs_path(r))) for r in records) if m is not None else ()

    def prepare_drag(self) -> None:
        """Stage the selection's named copies in the worker (loaded pages only: a selection
        still loading is staged again when a later change completes it)."""
        m = self.gallery_model()
        rows = self.selected_rows()
        if self.drag_staging is None or m is None or not rows or len(rows) > MAX_DRAG:
            return
        records = self.selected_records()
        if len(records) == len(rows):
            self.drag_staging.prepare(self._drag_key(records), [(m.abs_path(r), r) for r in records])

    def mime_for(self, records: Sequence[ImageRecord], *, staged: Sequence[Path] | None = None) -> QMimeData:
        """Mime data for dragging ``records`` out: file URLs (named copies; ``staged`` when
        the worker made them, else made here) and, for a single image whose pixels are
        already decoded, the image itself (Aseprite takes it)."""
        m = self.gallery_model()
        if m is None:
            raise RuntimeError("no gallery model")
        sources = [(m.abs_path(r), drag_name(r)) for r in records]
        if staged is not None:
            files = list(staged)
        elif self.drag_root is not None:
            files = stage_for_drag(sources, self.drag_root)
        else:
            files = [s for s, _n in sources]
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(f)) for f in files])
        if len(records) == 1:
            img = self.full_image_for(records[0])
            if img is not None and not img.isNull():
                mime.setImageData(img)
        return mime

    def startDrag(self, supportedActions) -> None:
        rows = self.selected_rows()
        if not rows:
            return
        m = self.gallery_model()
        if len(rows) <= MAX_DRAG and m is not None and m.missing_rows(rows, request=True):
            # A drag starts now or never; the missing pages are on their way for the next try.
            from studio_core.errors import StudioError

            self.drag_failed.emit(StudioError("selection not loaded", user_message=(
                "Some selected images are still loading; start the drag again in a moment.")))
            return
        records = self.selected_records() if len(rows) <= MAX_DRAG else rows
        if not records:
            return
        if len(records) > MAX_DRAG:
            from studio_core.errors import StudioError

            self.drag_failed.emit(StudioError(f"{len(records)} selected", user_message=(
                f"Drag at most {MAX_DRAG} images at a time; for more, use Export or Show in folder.")))
            return
        staged = None
        try:
            if self.drag_staging is not None:
                staged = self.drag_staging.ready(self._drag_key(records))
                if staged is None:
                    from studio_core.errors import StudioError

                    self.prepare_drag()
                    self.drag_failed.emit(StudioError("drag files not staged yet", user_message=(
                        "The files are still being prepared; start the drag again in a moment.")))
                    return
            mime = self.mime_for(records, staged=staged)
        except OSError as exc:
            from studio_core.errors import StorageError

            self.drag_failed.emit(StorageError(str(exc), user_message=f"Could not prepare the files to drag: {exc.strerror or exc}."))
            return
        drag = QDrag(self)
        drag.setMimeData(mime)
        m = self.gallery_model()
        pm = m.loader.get(thumb_key(records[0])) if m is not None else None
        if isinstance(pm, QPixmap) and not pm.isNull():
            drag.setPixmap(pm.scaled(64, 64, Qt.AspectRatioMode.KeepAspectRatio))
        # Copy only: a target that honoured "move" would delete the gallery's file.
        drag.exec(Qt.DropAction.CopyAction, Qt.DropAction.CopyAction)
