"""Clean-up: propose old or over-budget images (never favourites), trash them on confirmation."""

from __future__ import annotations

import asyncio
from datetime import datetime

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListView,
    QSpinBox,
    QStyledItemDelegate,
    QVBoxLayout,
)

from studio_core.app_core import StudioCore
from studio_core.storage.cleanup import human_size
from studio_gui.gallery import actions
from studio_gui.gallery.model import GalleryModel, RecordRole
from studio_gui.gallery.thumbnail_loader import ThumbnailLoader
from studio_gui.tasks import TaskOwner


class _RowDelegate(QStyledItemDelegate):
    """Small icon + "title — date · size" rows; a QPixmap decoration would be drawn full size."""

    def initStyleOption(self, option, index) -> None:
        super().initStyleOption(option, index)
        pm = index.data(Qt.ItemDataRole.DecorationRole)
        if isinstance(pm, QPixmap):
            option.icon = QIcon(pm)
            option.decorationSize = QSize(40, 40)
        rec = index.data(RecordRole)
        if rec is not None:
            when = datetime.fromtimestamp(rec.created_ts).strftime("%Y-%m-%d") if rec.created_ts else "?"
            option.text = f"{rec.title}  —  {when} · {human_size(rec.file_size)}"


class CleanupDialog(QDialog):
    done_cleaning = Signal(object)  # TrashResult

    def __init__(self, core: StudioCore, *, tasks: TaskOwner, parent=None):
        super().__init__(parent)
        self.core = core
        self.tasks = tasks
        self._preview_task: asyncio.Task | None = None
        self.setWindowTitle("Clean up saved images")
        self.resize(640, 520)
        s = core.settings.current
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("Choose what to move to the trash. Favourites are never included, and you can"
                             " restore anything from the system trash."))
        form = QFormLayout()
        row = QHBoxLayout()
        self.use_age = QCheckBox("Older than")
        self.use_age.setChecked(s.cleanup_days > 0)
        self.days = QSpinBox()
        self.days.setRange(1, 3650)
        self.days.setValue(s.cleanup_days or 90)
        self.days.setSuffix(" days")
        row.addWidget(self.use_age)
        row.addWidget(self.days)
        row.addStretch(1)
        form.addRow(row)
        row2 = QHBoxLayout()
        self.use_budget = QCheckBox("Keep the gallery under")
        self.use_budget.setChecked(s.storage_budget_mb > 0)
        self.budget = QSpinBox()
        self.budget.setRange(10, 10_000_000)
        self.budget.setValue(s.storage_budget_mb or 2000)
        self.budget.setSuffix(" MB")
        row2.addWidget(self.use_budget)
        row2.addWidget(self.budget)
        row2.addStretch(1)
        form.addRow(row2)
        lay.addLayout(form)

        self.summary = QLabel()
        self.summary.setWordWrap(True)
        lay.addWidget(self.summary)
        self.loader = ThumbnailLoader(core.paths.thumbnails, capacity=300, px=128, parent=self)
        self.model = GalleryModel(core.index, self.loader, tasks=tasks, live=False, parent=self)
        self.list = QListView()
        self.list.setModel(self.model)
        self.list.setIconSize(QSize(40, 40))
        self.list.setItemDelegate(_RowDelegate(self.list))
        self.list.setUniformItemSizes(True)
        self.list.setAccessibleName("Images that would be moved to the trash")
        lay.addWidget(self.list, 1)

        self.buttons = QDialogButtonBox()
        self.trash_button = self.buttons.addButton("Move to trash", QDialogButtonBox.ButtonRole.DestructiveRole)
        self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.trash_button.clicked.connect(self._on_trash)
        self.buttons.rejected.connect(self.reject)
        lay.addWidget(self.buttons)

        self._debounce = QTimer(self, singleShot=True, interval=250)
        self._debounce.timeout.connect(self.refresh)
        for w in (self.days, self.budget):
            w.valueChanged.connect(self._debounce.start)
        for w in (self.use_age, self.use_budget):
            w.toggled.connect(self._debounce.start)
        self.finished.connect(lambda _r: self.loader.close())
        self.refresh()

    def refresh(self) -> None:
        if self._preview_task is not None:
            self._preview_task.cancel()
        self._preview_task = self.tasks.spawn(self._preview(), name="cleanup-preview")

    async def _preview(self) -> None:
        self.trash_button.setEnabled(False)
        if self.core.index is None:
            self.summary.setText("The gallery index is not available.")
            return
        days = self.days.value() if self.use_age.isChecked() else None
        budget = self.budget.value() * 1024 * 1024 if self.use_budget.isChecked() else None
        recs = await self.core.index.cleanup_candidates(older_than_days=days, budget_bytes=budget)
        self.model.set_records(recs)
        if not recs:
            self.summary.setText("Nothing to clean up with these settings.")
        else:
            size = human_size(sum(r.file_size for r in recs))
            self.summary.setText(f"<b>{len(recs)} image(s), {size}</b> would be moved to the trash.")
        self.trash_button.setEnabled(bool(recs))

    def _on_trash(self) -> None:
        self.trash_button.setEnabled(False)
        self.tasks.spawn(self._trash(), name="cleanup-trash")

    async def _trash(self) -> None:
        recs = self.model.records()
        try:
            self.core.settings.update(cleanup_days=self.days.value() if self.use_age.isChecked() else 0,
                                      storage_budget_mb=self.budget.value() if self.use_budget.isChecked() else 0)
        except Exception:  # remembering the choice is a nicety; the clean-up still runs
            pass
        result = await actions.trash(self.core.index, recs)
        self.done_cleaning.emit(result)
        if result.problems:
            self.summary.setText("Some files could not be moved to the trash:\n" + "\n".join(result.problems[:5]))
            await self._preview()
            return
        self.accept()
