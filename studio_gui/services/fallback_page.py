"""Settings → Fallback: which services to try, in the user's order, when the chosen one is unavailable.

Stored as ``settings.fallback_services`` (the ticked services, in order). Unticked ones
keep their place in the list only while the page is open.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget

_ID = Qt.ItemDataRole.UserRole


class FallbackPage(QWidget):
    def __init__(self, core, *, tasks=None, parent=None):
        super().__init__(parent)
        self.core = core
        self.setObjectName("FallbackPage")
        lay = QVBoxLayout(self)
        intro = QLabel(
            "When the service you picked can't be reached or needs setup, the studio tries the ticked services "
            "below, top to bottom. Every image says which service made it. Cloud services charge per image."
        )
        intro.setWordWrap(True)
        lay.addWidget(intro)

        row = QHBoxLayout()
        self.list = QListWidget()
        self.list.setAccessibleName("Fallback order")
        self.list.setDragDropMode(QListWidget.DragDropMode.InternalMove)
        row.addWidget(self.list, 1)
        col = QVBoxLayout()
        self.up_button = QPushButton("Move up")
        self.up_button.setToolTip("Try this service earlier")
        self.up_button.clicked.connect(lambda: self.move(-1))
        self.down_button = QPushButton("Move down")
        self.down_button.setToolTip("Try this service later")
        self.down_button.clicked.connect(lambda: self.move(1))
        col.addWidget(self.up_button)
        col.addWidget(self.down_button)
        col.addStretch(1)
        row.addLayout(col)
        lay.addLayout(row, 1)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        lay.addWidget(self.summary)

        names = {s.id: s.name for s in core.services.all()}
        chosen = [sid for sid in core.settings.current.fallback_services if sid in names]
        for sid in chosen + [sid for sid in names if sid not in chosen]:
            item = QListWidgetItem(names[sid])
            item.setData(_ID, sid)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if sid in chosen else Qt.CheckState.Unchecked)
            self.list.addItem(item)
        self.list.setCurrentRow(0)
        self.list.itemChanged.connect(lambda _item: self._store())
        self.list.model().rowsMoved.connect(lambda *_: self._store())
        self.list.currentRowChanged.connect(lambda _r: self._update_buttons())
        self._update_buttons()
        self._show_summary()

    def order(self) -> list[str]:
        return [self.list.item(i).data(_ID) for i in range(self.list.count())]

    def enabled(self) -> tuple[str, ...]:
        return tuple(
            self.list.item(i).data(_ID)
            for i in range(self.list.count())
            if self.list.item(i).checkState() == Qt.CheckState.Checked
        )

    def set_enabled(self, service_id: str, on: bool) -> None:
        for i in range(self.list.count()):
            item = self.list.item(i)
            if item.data(_ID) == service_id:
                item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)

    def move(self, delta: int) -> None:
        row = self.list.currentRow()
        target = row + delta
        if row < 0 or not 0 <= target < self.list.count():
            return
        self.list.blockSignals(True)
        item = self.list.takeItem(row)
        self.list.insertItem(target, item)
        self.list.blockSignals(False)
        self.list.setCurrentRow(target)
        self._store()

    def _update_buttons(self) -> None:
        row = self.list.currentRow()
        self.up_button.setEnabled(row > 0)
        self.down_button.setEnabled(0 <= row < self.list.count() - 1)

    def _store(self) -> None:
        self.core.settings.update(fallback_services=self.enabled())
        self._show_summary()
        self._update_buttons()

    def _show_summary(self) -> None:
        names = {s.id: s.name for s in self.core.services.all()}
        on = [names.get(s, s) for s in self.enabled()]
        self.summary.setText("Fallback order: " + " → ".join(on) if on else "No fallback: if the chosen service fails, you are told and nothing else is tried.")
