"""Saved tab (the seed's SavedImagesManager): every image kept, findable, reusable, draggable."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Sequence

import shiboken6
from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio_core.app_core import StudioCore
from studio_core.errors import StudioError
from studio_core.storage.cleanup import human_size, low_disk_message
from studio_core.plural import counted
from studio_core.storage.records import ImageQuery, ImageRecord, service_label
from studio_core.storage.index import to_thread
from studio_gui.bridge import bridge_for
from studio_gui.errors import present_error
from studio_gui.gallery import actions
from studio_gui.gallery.detail_pane import DetailPane, PreviewDialog
from studio_gui.gallery.filter_bar import FilterBar
from studio_gui.gallery.model import GalleryModel, thumb_key
from studio_gui.gallery.thumbnail_loader import ThumbnailLoader
from studio_gui.gallery.view import GalleryView, drag_name, prune_drag_folders
from studio_gui.tasks import TaskOwner

log = logging.getLogger(__name__)


class Banner(QWidget):
    """One line of news above the grid (index rebuilt, low disk, a failed action)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 4, 4, 4)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton()
        close.setText("✕")
        close.setToolTip("Dismiss")
        close.setAccessibleName("Dismiss message")
        close.clicked.connect(self.hide)
        lay.addWidget(self.label, 1)
        lay.addWidget(close)
        self.setAutoFillBackground(True)
        self.setStyleSheet("Banner { background: palette(alternate-base); border-radius: 4px; }")
        self.hide()

    def show_text(self, text: str) -> None:
        self.label.setText(text)
        self.show()


class _PaintWatch(QObject):
    """Calls ``done`` (on the next event-loop turn) once ``widget`` painted while ``ready()``."""

    def __init__(self, widget: QWidget, done, ready=lambda: True):
        super().__init__(widget)
        self._widget = widget
        self._done = done
        self._ready = ready
        widget.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Type.Paint and self._ready():
            self.stop()
            QTimer.singleShot(0, self._done)
        return False

    def stop(self) -> None:
        if shiboken6.isValid(self._widget):  # the viewport may be deleted before its watch is stopped
            self._widget.removeEventFilter(self)


class SavedTab(QWidget):
    def __init__(self, core: StudioCore, *, tasks: TaskOwner, parent=None):
        super().__init__(parent)
        self.core = core
        self.tasks = tasks
        self.index = core.index
        self.loader = ThumbnailLoader(core.paths.thumbnails, parent=self)
        self.model = GalleryModel(self.index, self.loader, tasks=tasks, images_root=core.paths.images, parent=self,
                                  bridge=bridge_for(core))
        self._preview: PreviewDialog | None = None
        self._grid_painted = False
        self._deferred: list = []
        self._paint_watch: _PaintWatch | None = None
        self._build()
        self._stats_timer = QTimer(self, singleShot=True, interval=400)
        self._stats_timer.timeout.connect(lambda: self.tasks.spawn(self._refresh_stats(), name="gallery-stats"))
        # The core's bridge: Qt drops these connections with this tab.
        bridge = bridge_for(core)
        bridge.index_reloaded.connect(self._on_index_reloaded)
        bridge.image_indexed.connect(self._on_index_changed)
        bridge.images_removed.connect(self._on_index_changed)

    # -- layout -------------------------------------------------------------------------
    def _build(self) -> None:
        outer = QVBoxLayout(self)
        self.banner = Banner(self)
        outer.addWidget(self.banner)

        top = QHBoxLayout()
        self.filters = FilterBar(self)
        self.filters.query_changed.connect(self._on_query_changed)
        top.addWidget(self.filters, 1)
        self.import_button = QPushButton("Import folder…")
        self.import_button.setToolTip("Bring in images from another folder (a ComfyUI output folder, for instance)"
                                      " with the settings stored in them")
        self.import_button.clicked.connect(self.choose_import_folder)
        self.rescan_button = QPushButton("Rescan")
        self.rescan_button.setToolTip("Re-read the images folder: add files put there by hand, drop missing ones")
        self.rescan_button.clicked.connect(lambda: self.tasks.spawn(self.rescan(), name="gallery-rescan"))
        self.cleanup_button = QPushButton("Clean up…")
        self.cleanup_button.setToolTip("Move old images to the trash, or keep the gallery under a size")
        self.cleanup_button.clicked.connect(self.open_cleanup)
        outer.addLayout(top)

        self.stack = QStackedWidget()
        self.empty = self._empty_state()
        self.stack.addWidget(self.empty)
        self.no_match = self._no_match_state()
        self.stack.addWidget(self.no_match)
        self.view = GalleryView(drag_root=self.core.paths.cache / "drag")
        self.view.setModel(self.model)
        self.view.full_image_for = self._full_image_for
        self.detail = DetailPane(tasks=self.tasks, images_root=self.core.paths.images,
                                 service_names=self._service_names())
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.view)
        self.splitter.addWidget(self.detail)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([700, 340])
        self.stack.addWidget(self.splitter)
        # The grid page is laid out with the window; switching to it only once the first
        # page arrived cost ~50 ms of first-time layout on the way to the first thumbnails.
        self.stack.setCurrentWidget(self.splitter)
        outer.addWidget(self.stack, 1)

        self.stats = QLabel("")
        self.stats.setAccessibleName("Storage statistics")
        # The storage actions sit with the storage figures: beside the filters they made the
        # tab ~1040 px wide at least, wider than a 1024 px screen.
        bottom = QHBoxLayout()
        bottom.addWidget(self.stats, 1)
        for b in (self.import_button, self.rescan_button, self.cleanup_button):
            bottom.addWidget(b)
        outer.addLayout(bottom)

        self.view.selectionModel().currentChanged.connect(self._on_current_changed)
        self.view.open_requested.connect(self.open_record)
        self.view.delete_requested.connect(self.delete_records)
        self.view.copy_requested.connect(self.copy_records)
        self.view.preview_requested.connect(self.preview_record)
        self.view.favourite_requested.connect(self.toggle_favourite)
        self.view.drag_failed.connect(lambda exc: present_error(self, exc))
        self.detail.reuse_requested.connect(lambda r: self.tasks.spawn(self.reuse_settings(r), name="reuse"))
        self.detail.copy_prompt_requested.connect(self.copy_prompt)
        self.detail.export_requested.connect(self._export_from_detail)
        self.detail.show_in_folder_requested.connect(self._show_in_folder)
        self.detail.open_requested.connect(self.open_record)
        self.detail.delete_requested.connect(lambda r: self.delete_records([r]))
        self.detail.favourite_requested.connect(lambda r: self.toggle_favourite([r]))
        self.detail.sprite_tools_requested.connect(self._sprite_tools_from_detail)
        self.detail.edit_requested.connect(lambda r: self.send_to_generate(r, "init"))
        self.detail.use_reference_requested.connect(lambda r: self.send_to_generate(r, "reference"))
        self.view.menu_handlers = actions.MenuHandlers(
            open=self.open_record,
            show_in_folder=self._show_in_folder,
            reuse=lambda r: self.tasks.spawn(self.reuse_settings(r), name="reuse"),
            edit=lambda r: self.send_to_generate(r, "init"),
            use_reference=lambda r: self.send_to_generate(r, "reference"),
            copy_prompt=self.copy_prompt,
            copy_image=self.copy_records,
            export=self.choose_export,
            export_many=self.choose_export_many,
            sprite_tools=self.open_sprite_tools,
            favourite=self.toggle_favourite,
            delete=self.delete_records,
        )
        self.model.total_changed.connect(lambda _n: self._update_visibility())
        self.model.modelReset.connect(self._on_model_reset)
        self.model.dataChanged.connect(self._on_data_changed)
        self.model.query_failed.connect(lambda exc: self.banner.show_text(getattr(exc, "user_message", str(exc))))
        QShortcut(QKeySequence.StandardKey.Find, self, activated=self.filters.search.setFocus)

    def _empty_state(self) -> QWidget:
        w = QWidget()
        lay = QVBoxLayout(w)
        lay.addStretch(2)
        line = QLabel("No saved images yet. Everything you generate is kept here, ready to find, reuse and drag"
                      " into your game.")
        font = line.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        line.setFont(font)
        line.setAlignment(Qt.AlignmentFlag.AlignCenter)
        line.setWordWrap(True)
        lay.addWidget(line)
        row = QHBoxLayout()
        row.addStretch(1)
        self.first_button = QPushButton("Generate your first sprite")
        self.first_button.setDefault(True)
        self.first_button.clicked.connect(self._go_generate)
        self.empty_import_button = QPushButton("Import a folder…")
        self.empty_import_button.clicked.connect(self.choose_import_folder)
        row.addWidget(self.first_button)
        row.addWidget(self.empty_import_button)
        row.addStretch(1)
        lay.addLayout(row)
        lay.addStretch(3)
        return w

    def _no_match_state(self) -> QWidget:
        # A blank grid after a search reads as "the gallery is broken"; say what was asked
        # and offer the one click that widens it.
        w = QWidget()
        w.setAccessibleName("No matching images")
        lay = QVBoxLayout(w)
        lay.addStretch(2)
        self.no_match_title = QLabel()
        font = self.no_match_title.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        self.no_match_title.setFont(font)
        self.no_match_hint = QLabel()
        for line in (self.no_match_title, self.no_match_hint):
            line.setAlignment(Qt.AlignmentFlag.AlignCenter)
            line.setWordWrap(True)
            line.setTextFormat(Qt.TextFormat.PlainText)
            lay.addWidget(line)
        row = QHBoxLayout()
        row.addStretch(1)
        self.clear_search_button = QPushButton("Clear search")
        self.clear_search_button.clicked.connect(self.filters.clear_search)
        self.clear_filters_button = QPushButton("Clear filters")
        self.clear_filters_button.clicked.connect(self.filters.clear_filters)
        row.addWidget(self.clear_search_button)
        row.addWidget(self.clear_filters_button)
        row.addStretch(1)
        lay.addLayout(row)
        lay.addStretch(3)
        return w

    def _describe_no_match(self) -> None:
        text = self.filters.search.text().strip()
        narrowing = self.filters.active_filters()
        if text and narrowing:
            title = f"No images match “{text}” with these filters."
        elif text:
            title = f"No images match “{text}”."
        else:
            title = "No images match these filters."
        hints = []
        if narrowing:
            hints.append("Showing only: " + " · ".join(narrowing) + ".")
        if text:
            hints.append("Every word must begin a word of the prompt or tags; try fewer or shorter words"
                         + (", or clear the filters." if narrowing else ", or clear the search."))
        else:
            hints.append("Clear the filters to see every image.")
        self.no_match_title.setText(title)
        self.no_match_hint.setText(" ".join(hints))
        self.clear_search_button.setVisible(bool(text))
        self.clear_filters_button.setVisible(bool(narrowing))

    # -- lifecycle --------------------------------------------------------------------------
    async def started(self) -> None:
        msgs = list(self.core.startup_messages)
        if self.index is None:
            msgs.append("The gallery is not available this time; new images are still saved and will appear"
                        " after the next start.")
            for b in (self.import_button, self.rescan_button, self.cleanup_button):
                b.setEnabled(False)
            self.banner.show_text("\n".join(msgs))
            return
        if msgs:
            self.banner.show_text("\n".join(msgs))
        self.model.first_thumbs = self._screenful()
        self.model.set_query(self.filters.query())
        # Statistics scan the whole index: start them once the first screen is in.
        self.model.loaded.connect(self._stats_timer.start, Qt.ConnectionType.SingleShotConnection)
        self.tasks.spawn(self._check_disk(), name="gallery-disk")
        self.tasks.spawn(to_thread(prune_drag_folders, self.core.paths.cache / "drag"), name="drag-prune")

    def _screenful(self) -> int:
        """How many tiles the grid shows at once (the first screen's thumbnails come in one batch)."""
        grid, vp = self.view.gridSize(), self.view.viewport().size()
        cols = max(1, vp.width() // max(1, grid.width()))
        lines = -(-max(vp.height(), 1) // max(1, grid.height()))
        return max(8, min(cols * lines, 400))

    def closing(self) -> None:
        self.model.detach()
        self.loader.close()

    # -- state ------------------------------------------------------------------------------
    def _update_visibility(self) -> None:
        nothing = self.model.total == 0 and not self.model.fetching
        filtering = self.filters.is_filtering()
        empty = nothing and not filtering
        if nothing and filtering:
            self._describe_no_match()
            self.stack.setCurrentWidget(self.no_match)
        else:
            self.stack.setCurrentWidget(self.empty if empty else self.splitter)
        # Nothing to search, sort or clean in an empty gallery: keep the first-run screen plain.
        for w in (self.filters, self.import_button, self.rescan_button, self.cleanup_button):
            w.setVisible(not empty)

    def _on_model_reset(self) -> None:
        self._update_visibility()
        if not self._grid_painted:
            # Filling the detail pane (and decoding its full image) waits until the grid's
            # first screen is painted with its thumbnails: it is not what the user looks at first.
            self._after_first_paint(self._select_first)
            return
        self._select_first()

    def _select_first(self) -> None:
        if self.model.rowCount() and not self.view.currentIndex().isValid():
            self.view.setCurrentIndex(self.model.index(0, 0))
        elif not self.model.rowCount():
            self.detail.show_record(None)

    def _after_first_paint(self, fn) -> None:
        self._deferred.append(fn)
        if self._paint_watch is None:
            self._paint_watch = _PaintWatch(self.view.viewport(), self._first_paint_done,
                                            lambda: self.loader.pending_count == 0)
            # Never painted (a hidden tab, offscreen tests): do it anyway, a little later.
            QTimer.singleShot(500, self._first_paint_done)

    def _first_paint_done(self) -> None:
        # QTimer.singleShot's callable is not dropped with the tab.
        if self._grid_painted or not shiboken6.isValid(self):
            return
        self._grid_painted = True
        if self._paint_watch is not None:
            self._paint_watch.stop()
        for fn in self._deferred:
            fn()
        self._deferred.clear()

    def _on_data_changed(self, top, bottom, roles=()) -> None:
        if list(roles) == [Qt.ItemDataRole.DecorationRole]:
            return  # a thumbnail arrived; the record is the same
        cur = self.view.currentIndex()
        if cur.isValid() and top.row() <= cur.row() <= bottom.row():
            self.detail.show_record(self.model.record(cur.row()))

    def _on_query_changed(self, query: ImageQuery) -> None:
        if self.index is not None:
            self.model.set_query(query)
            self._stats_timer.start()

    def _on_current_changed(self, current, _previous) -> None:
        self.detail.show_record(self.model.record(current.row()) if current.isValid() else None)

    def _on_index_reloaded(self) -> None:
        self.model.reload()
        self._stats_timer.start()

    def _on_index_changed(self, *_args) -> None:
        cur = self.view.currentIndex()
        rec = self.model.record(cur.row()) if cur.isValid() else None
        if rec is not None and rec != self.detail.record:
            self.detail.show_record(rec)
        elif not cur.isValid():
            self.detail.show_record(None)
        self._stats_timer.start()

    async def _refresh_stats(self) -> None:
        if self.index is None:
            return
        st = await self.index.stats()
        services, models = await self.index.distinct_values()
        names = self._service_names()
        self.filters.set_choices(services, models, service_names=names)
        self.filters.set_sets(await self.index.set_names())
        per = " · ".join(f"{service_label(s.service, names)} {s.count:,}" for s in st.per_service[:6])
        shown = "" if not self.filters.is_filtering() else f"{self.model.total:,} match · "
        self.stats.setText(f"{shown}{counted(st.count, 'image')} · {human_size(st.total_bytes)}"
                           + (f" · {per}" if per else ""))
        self._update_visibility()

    def _service_names(self) -> dict[str, str]:
        services = getattr(self.core, "services", None)
        return {s.id: s.name for s in services.all()} if services is not None else {}

    async def _check_disk(self) -> None:
        msg = await to_thread(low_disk_message, self.core.paths, self.core.settings.current.low_disk_warning_mb)
        if msg:
            self.banner.show_text(msg)

    def _full_image_for(self, rec: ImageRecord):
        if self.detail.record is not None and self.detail.record.id == rec.id:
            return self.detail.full_image
        return None

    def _guard(self, fn, *args) -> None:
        try:
            fn(*args)
        except StudioError as exc:
            present_error(self, exc)

    # -- actions -----------------------------------------------------------------------------
    def _go_generate(self) -> None:
        win = self.window()
        gen, tabs = getattr(win, "generate_tab", None), getattr(win, "tabs", None)
        if gen is not None and tabs is not None:
            tabs.setCurrentWidget(gen)
            focus = getattr(gen, "prompt", None)
            if isinstance(focus, QWidget):
                focus.setFocus()

    async def reuse_settings(self, rec: ImageRecord) -> None:
        request = await self.index.request_for(rec)
        win = self.window()
        gen = getattr(win, "generate_tab", None)
        if gen is None or not hasattr(gen, "apply_request"):
            self.banner.show_text("The Generate tab cannot take these settings in this version.")
            return
        gen.apply_request(request)
        self._go_generate()

    def send_to_generate(self, rec: ImageRecord, role: str) -> None:
        """"Edit this…" / "Use as reference": the Generate tab with this image as an input."""
        if not actions.send_to_generate(self, self.model.abs_path(rec), role):
            self.banner.show_text("The Generate tab cannot take images in this version.")

    def copy_prompt(self, rec: ImageRecord) -> None:
        QGuiApplication.clipboard().setText(rec.prompt)
        self.banner.show_text("Prompt copied.")

    def copy_records(self, recs: Sequence[ImageRecord]) -> None:
        self.tasks.spawn(actions.copy_to_clipboard([self.model.abs_path(r) for r in recs]), name="copy-image")

    def open_record(self, rec: ImageRecord) -> None:
        self.tasks.spawn(actions.open_in_viewer(self.model.abs_path(rec)), name="open")

    def _show_in_folder(self, rec: ImageRecord) -> None:
        self.tasks.spawn(actions.show_in_folder(self.model.abs_path(rec)), name="show in folder")

    def open_sprite_tools(self, recs: Sequence[ImageRecord]) -> None:
        """One image opens the Sprite tab, several the Sheet tab."""
        if recs:
            self._guard(actions.open_sprite_tools, self, self.core, [self.model.abs_path(r) for r in recs])

    def _sprite_tools_from_detail(self, rec: ImageRecord) -> None:
        # The pane shows the current image; when it is part of a larger selection, take them all.
        self.view.with_selected(
            lambda selected: self.open_sprite_tools(selected if any(r.id == rec.id for r in selected) else [rec]))

    def preview_record(self, rec: ImageRecord) -> None:
        if self._preview is not None:
            self._preview.close()
            self._preview = None
            return
        pm = self.detail.image.pixmap() if self.detail.record and self.detail.record.id == rec.id else None
        if pm is None:
            pm = self.loader.get(thumb_key(rec))
        if pm is None:
            return
        self._preview = PreviewDialog(pm, rec.title, self)
        self._preview.finished.connect(lambda _r: setattr(self, "_preview", None))
        self._preview.open()

    def delete_records(self, recs: Sequence[ImageRecord]) -> None:
        if recs and self.index is not None:
            self.tasks.spawn(self._delete(list(recs)), name="gallery-trash")

    async def _delete(self, recs: list[ImageRecord]) -> None:
        row = self.view.currentIndex().row()
        result = await actions.trash(self.index, recs)
        if result.problems:
            self.banner.show_text("Could not move to the trash: " + "; ".join(result.problems[:3]))
        else:
            n = len(result.trashed)
            self.banner.show_text(f"Moved {n} image{'s' if n != 1 else ''} to the trash.")
        if self.model.rowCount():
            self.view.setCurrentIndex(self.model.index(min(max(row, 0), self.model.rowCount() - 1), 0))

    def toggle_favourite(self, recs: Sequence[ImageRecord]) -> None:
        if recs and self.index is not None:
            value = not all(r.favourite for r in recs)
            self.tasks.spawn(self.index.set_favourite([r.id for r in recs], value), name="favourite")

    def choose_export(self, rec: ImageRecord) -> None:
        dlg = QFileDialog(self, "Export image", str(Path.home() / drag_name(rec)))
        dlg.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dlg.setNameFilters([f for f, _fmt, _meta in actions.EXPORT_FILTERS])
        dlg.fileSelected.connect(lambda path: self.tasks.spawn(
            self._export(rec, Path(path), dlg.selectedNameFilter()), name="export"))
        dlg.open()

    async def _export(self, rec: ImageRecord, dest: Path, name_filter: str) -> None:
        fmt, meta = next(((f, m) for n, f, m in actions.EXPORT_FILTERS if n == name_filter), ("png", True))
        out = await actions.export(self.model.abs_path(rec), dest, fmt=fmt, with_metadata=meta)
        self.banner.show_text(f"Exported to {out}")

    def _export_from_detail(self, rec: ImageRecord) -> None:
        # The pane shows the current image; when it is part of a larger selection, export them all.
        def go(selected: list[ImageRecord]) -> None:
            if len(selected) > 1 and any(r.id == rec.id for r in selected):
                self.choose_export_many(selected)
            else:
                self.choose_export(rec)

        self.view.with_selected(go)

    def choose_export_many(self, recs: Sequence[ImageRecord]) -> None:
        """Several images: a format, then a folder; names kept, nothing overwritten."""
        recs = list(recs)
        if not recs:
            return
        if len(recs) == 1:
            self.choose_export(recs[0])
            return

        def with_format(fmt: str, meta: bool) -> None:
            actions.ask_folder(self, f"Export {len(recs)} images to…", lambda folder: self.tasks.spawn(
                self.export_many(recs, folder, fmt=fmt, with_metadata=meta), name="export-many"))

        actions.ask_export_format(self, with_format)

    async def export_many(self, recs: Sequence[ImageRecord], folder: Path, *, fmt: str, with_metadata: bool) -> None:
        srcs = [self.model.abs_path(r) for r in recs]
        self.banner.show_text(f"Exporting {len(srcs)} images to {folder}…")

        def progress(done: int, total: int) -> None:
            # Queued on the loop by the export's worker thread: the tab may be gone by then.
            if shiboken6.isValid(self.banner):
                self.banner.show_text(f"Exporting {done}/{total} to {folder}…")

        try:
            result = await actions.export_many(srcs, folder, fmt=fmt, with_metadata=with_metadata, progress=progress)
        except StudioError as exc:
            if shiboken6.isValid(self.banner):  # after the await the tab may be gone
                self.banner.show_text("Export failed: " + exc.user_message)
            return
        # Queued progress calls run before this line's step; the result is the last word.
        await asyncio.sleep(0)
        if shiboken6.isValid(self.banner):  # after the await the tab may be gone
            self.banner.show_text(result.summary())

    def choose_import_folder(self) -> None:
        if self.index is None:
            return
        dlg = QFileDialog(self, "Import a folder of images")
        dlg.setFileMode(QFileDialog.FileMode.Directory)
        dlg.setOption(QFileDialog.Option.ShowDirsOnly, True)
        dlg.fileSelected.connect(lambda path: self.tasks.spawn(self.import_folder(Path(path)), name="import"))
        dlg.open()

    async def import_folder(self, folder: Path) -> None:
        self.banner.show_text(f"Importing {folder}…")
        self.import_button.setEnabled(False)
        try:
            report, problems = await self.index.import_folder(folder)
        finally:
            self.import_button.setEnabled(True)
        text = f"Imported {report.added} image{'s' if report.added != 1 else ''} from {folder.name}."
        if report.unreadable:
            text += f" {len(report.unreadable)} file(s) were not readable images."
        if problems:
            text += " Problems: " + "; ".join(problems[:3])
        self.banner.show_text(text)

    async def rescan(self) -> None:
        self.rescan_button.setEnabled(False)
        try:
            report = await self.index.rescan()
        finally:
            self.rescan_button.setEnabled(True)
        parts = [f"{report.added} added", f"{report.updated} updated", f"{report.removed} removed"]
        text = "Rescan done: " + ", ".join(parts) + "."
        if report.unreadable:
            text += f" Not readable as images: {', '.join(report.unreadable[:3])}" + (" …" if len(report.unreadable) > 3 else "")
        self.banner.show_text(text)

    def open_cleanup(self) -> None:
        from studio_gui.gallery.cleanup_dialog import CleanupDialog

        dlg = CleanupDialog(self.core, tasks=self.tasks, parent=self)
        dlg.done_cleaning.connect(lambda res: self.banner.show_text(
            f"Moved {len(res.trashed)} image(s) to the trash." if not res.problems else
            "Some files could not be moved to the trash."))
        dlg.open()
