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


class QueueRow(QWidget):
    def __init__(self, entry: JobEntry, on_cancel, parent: QWidget | None = None):
        super().__init__(parent)
        self.job_id = entry.job_id
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        where = "running" if entry.state is JobState.running else f"#{entry.position}"
        self.label = QLabel()
        # Ignored: a long prompt is clipped instead of pushing the Cancel button out of view.
        self.label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.setToolTip(f"{entry.request.prompt}\n({entry.request.service})")
        self.label.setText(f"<b>{where}</b> · {_escape(short(entry.request.prompt))}")
        self.cancel = QToolButton()
        self.cancel.setText("✕")
        self.cancel.setAutoRaise(True)
        tip = "Stop this generation" if entry.state is JobState.running else "Remove from the queue"
        self.cancel.setToolTip(tip)
        self.cancel.setAccessibleName(f"{tip}: {short(entry.request.prompt, 30)}")
        self.cancel.clicked.connect(lambda: on_cancel(entry.job_id))
        lay.addWidget(self.label, 1)
        lay.addWidget(self.cancel)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


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
