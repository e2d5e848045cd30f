"""QueueView: the jobs waiting or running, in order, each with its own Cancel button.

A queue holds a handful of jobs, so one small row widget per job is fine here (the
image grids use model/view instead).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QToolButton, QVBoxLayout, QWidget

from studio_core.jobs import JobEntry, JobState

TITLE_CHARS = 28


def short(text: str, n: int = TITLE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


class ElidedLabel(QLabel):
    """One line of plain text that ends in "…" when the column is too narrow for it."""

    def __init__(self, text: str, parent: QWidget | None = None):
        super().__init__(parent)
        self._full = text
        # Ignored: a long prompt shrinks instead of pushing the Cancel button out of view.
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setText(text)

    def full_text(self) -> str:
        return self._full

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.setText(self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight, self.width()))


class QueueRow(QWidget):
    def __init__(self, entry: JobEntry, on_cancel, parent: QWidget | None = None):
        super().__init__(parent)
        self.job_id = entry.job_id
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        running = entry.state is JobState.running
        self.place = QLabel(f"<b>{'running' if running else f'#{entry.position}'}</b>")
        self.prompt = ElidedLabel(" ".join(entry.request.prompt.split()))
        self.prompt.setToolTip(f"{entry.request.prompt}\n({entry.request.service})")
        self.cancel = QToolButton()
        self.cancel.setText("✕")
        self.cancel.setAutoRaise(True)
        tip = "Stop this generation" if running else "Remove from the queue"
        self.cancel.setToolTip(tip)
        self.cancel.setAccessibleName(f"{tip}: {short(entry.request.prompt, 30)}")
        self.cancel.clicked.connect(lambda: on_cancel(entry.job_id))
        lay.addWidget(self.place)
        lay.addWidget(self.prompt, 1)
        lay.addWidget(self.cancel)

    def text(self) -> str:
        return f"{self.place.text()} {self.prompt.full_text()}"


class QueueView(QWidget):
    cancel_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        self.title = QLabel()
        lay.addWidget(self.title)
        self.rows_box = QVBoxLayout()
        self.rows_box.setSpacing(0)
        lay.addLayout(self.rows_box)
        lay.addStretch(1)
        self.rows: list[QueueRow] = []
        self.set_entries([])

    def set_entries(self, entries: list[JobEntry]) -> None:
        for row in self.rows:
            row.setParent(None)
            row.deleteLater()
        self.rows = [QueueRow(e, self.cancel_requested.emit, self) for e in entries]
        for row in self.rows:
            self.rows_box.addWidget(row)
        waiting = sum(1 for e in entries if e.state is JobState.queued)
        self.title.setText(f"<b>Queue</b>: {waiting} waiting" if entries else "<b>Queue</b>: empty")

    def row(self, job_id: str) -> QueueRow | None:
        return next((r for r in self.rows if r.job_id == job_id), None)
