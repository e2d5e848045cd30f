"""Settings → Storage: where things are kept, which key store is in use, storage care defaults.

Paths are computed (no disk access); the key store is asked in a worker thread; values are
saved through ``core.settings.update`` after an in-place check (whole numbers, not negative).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import shiboken6
from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from studio_core.app_core import StudioCore
from studio_core.storage.index import to_thread
from studio_gui.tasks import TaskOwner

# (settings field, label, unit, tooltip)
NUMBER_FIELDS = (
    ("low_disk_warning_mb", "Warn when free disk space is below", "MB (0: never)",
     "A warning shows before saving when the images folder's disk has less free space than this (0: never)."),
    ("cleanup_days", "Clean-up proposes images older than", "days (0: any age)",
     "The default age for Clean-up; favourites are never proposed (0: no age limit)."),
    ("storage_budget_mb", "Clean-up keeps the gallery under", "MB (0: no budget)",
     "The default size budget for Clean-up: the oldest images beyond it are proposed (0: no budget)."),
)


def _path_label(path: Path) -> QLabel:
    lab = QLabel(str(path))
    lab.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    lab.setWordWrap(True)
    return lab


class StoragePage(QWidget):
    def __init__(self, core: StudioCore, *, tasks: TaskOwner, parent=None):
        super().__init__(parent)
        self.core = core
        self.tasks = tasks
        paths = core.paths
        lay = QVBoxLayout(self)

        where = QGroupBox("Where things are kept")
        form = QFormLayout(where)
        images_row = QHBoxLayout()
        self.images_label = _path_label(paths.images)
        self.show_images_button = QPushButton("Show in folder")
        self.show_images_button.setToolTip("Open the images folder in your file manager")
        self.show_images_button.clicked.connect(self.show_images_folder)
        images_row.addWidget(self.images_label, 1)
        images_row.addWidget(self.show_images_button)
        form.addRow("Images:", images_row)
        self.index_label = _path_label(paths.index_file)
        form.addRow("Gallery index:", self.index_label)
        self.log_label = _path_label(paths.log_file)
        form.addRow("Log file:", self.log_label)
        self.cache_label = _path_label(paths.thumbnails)
        form.addRow("Thumbnail cache:", self.cache_label)
        self.keys_label = QLabel("Checking where API keys are stored…")
        self.keys_label.setWordWrap(True)
        self.keys_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addRow("API keys:", self.keys_label)
        lay.addWidget(where)

        care = QGroupBox("Storage care")
        cform = QFormLayout(care)
        self.fields: dict[str, QLineEdit] = {}
        self.errors: dict[str, QLabel] = {}
        current = core.settings.current
        for name, label, unit, tip in NUMBER_FIELDS:
            edit = QLineEdit(str(getattr(current, name)))
            edit.setToolTip(tip)
            edit.setAccessibleName(label)
            edit.setMaximumWidth(120)
            edit.textChanged.connect(lambda _t, n=name: self._validate_one(n))
            err = QLabel("")
            err.setStyleSheet("color: palette(bright-text); background: #b3261e; padding: 1px 4px;")
            err.hide()
            row = QHBoxLayout()
            row.addWidget(edit)
            row.addWidget(QLabel(unit))
            row.addWidget(err, 1)
            cform.addRow(label + ":", row)
            self.fields[name], self.errors[name] = edit, err
        buttons = QHBoxLayout()
        self.status = QLabel("")
        self.save_button = QPushButton("Save")
        self.save_button.clicked.connect(self.save)
        buttons.addWidget(self.status, 1)
        buttons.addWidget(self.save_button)
        cform.addRow(buttons)
        lay.addWidget(care)
        lay.addStretch(1)

        self.tasks.spawn(self._load_key_store(), name="storage-page-keys")

    async def _load_key_store(self) -> None:
        try:
            info = await to_thread(self.core.secrets.info)
            text = info.description
        except Exception as exc:  # shown in place; the rest of the page works
            text = "Could not tell where API keys are stored: " + getattr(exc, "user_message", str(exc))
        if shiboken6.isValid(self.keys_label):  # after the await the label may be gone
            self.keys_label.setText(text)

    def show_images_folder(self) -> None:
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.core.paths.images))):
            self.status.setText("No file manager is set up to open folders.")

    def _validate_one(self, name: str) -> int | None:
        text = self.fields[name].text().strip()
        err = self.errors[name]
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < 0:
            err.setText("Enter a whole number, 0 or more.")
            err.show()
            return None
        err.hide()
        return value

    def values(self) -> dict[str, int] | None:
        """The entered numbers, or None (with the faults shown in place) if any is wrong."""
        out: dict[str, Any] = {}
        for name in self.fields:
            out[name] = self._validate_one(name)
        return None if any(v is None for v in out.values()) else out

    def save(self) -> bool:
        values = self.values()
        if values is None:
            self.status.setText("Not saved: fix the values marked.")
            return False
        self.core.settings.update(**values)
        self.status.setText("Saved.")
        return True

    def save_on_close(self) -> None:
        """Settings closes with its Close button only: keep valid, changed values then too."""
        values = self.values()
        current = self.core.settings.current
        if values is not None and any(getattr(current, k) != v for k, v in values.items()):
            self.core.settings.update(**values)
