"""ProgressPanel: "step x of y · elapsed · ~time left", notices, and the live preview."""

from __future__ import annotations

import asyncio
import time

from PySide6.QtCore import QByteArray, Qt, QTimer
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QLabel, QProgressBar, QSizePolicy, QVBoxLayout, QWidget

PREVIEW_SIZE = 220


def clock(seconds: float) -> str:
    s = max(0, int(round(seconds)))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class ProgressTracker:
    """Elapsed time and a time-left estimate from the step rate.

    The rate is measured from the first step seen, not from the start, so model loading
    (often longer than the sampling) does not inflate the estimate. ComfyUI reports steps
    per node, so a step counter that goes back or a new total starts a new measurement.
    """

    def __init__(self) -> None:
        self.started: float | None = None
        self.step = 0
        self.total = 0
        self._base: tuple[float, int] | None = None
        self._last_at: float | None = None

    def start(self, now: float) -> None:
        self.started = now
        self.step = self.total = 0
        self._base = None

    def update(self, step: int, total: int, now: float) -> None:
        if self.started is None:
            self.started = now
        if self._base is None or total != self.total or step < self.step:
            self._base = (now, step)
        self.step, self.total = step, total
        self._last_at = now

    def elapsed(self, now: float) -> float:
        return 0.0 if self.started is None else now - self.started

    def remaining(self, now: float) -> float | None:
        if self._base is None or self.total <= 0:
            return None
        t0, s0 = self._base
        done = self.step - s0
        if done <= 0:
            return None
        per_step = (now - t0) / done if self._last_at is None else (self._last_at - t0) / done
        return max(0.0, per_step * (self.total - self.step))

    def text(self, now: float) -> str:
        if self.total <= 0:
            return f"Starting… · {clock(self.elapsed(now))}"
        parts = [f"step {self.step} of {self.total}", clock(self.elapsed(now))]
        left = self.remaining(now)
        if left is not None:
            parts.append(f"~{clock(left)} left")
        return " · ".join(parts)


def decode_preview(data: bytes) -> QImage:
    """Runs in a worker thread: QImage is thread-safe, QPixmap is not."""
    img = QImage.fromData(QByteArray(data))
    if img.isNull():
        return img
    return img.scaled(PREVIEW_SIZE, PREVIEW_SIZE, Qt.AspectRatioMode.KeepAspectRatio,
                      Qt.TransformationMode.SmoothTransformation)


class ProgressPanel(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.tracker = ProgressTracker()
        self._running = False
        self._pending_preview: bytes | None = None
        self._decoding = False

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.bar = QProgressBar()
        self.bar.setTextVisible(False)
        self.bar.setAccessibleName("Generation progress")
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        # An empty bar reads as an empty input field: it shows only while a job waits or runs.
        self.bar.setVisible(False)
        self.label = QLabel("Ready.")
        self.label.setAccessibleName("Progress")
        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.notice.setVisible(False)
        self.notice.setStyleSheet("color: #b9770e;")
        lay.addWidget(self.bar)
        lay.addWidget(self.label)
        lay.addWidget(self.notice)

        self.preview = QLabel()
        self.preview.setFixedSize(PREVIEW_SIZE, PREVIEW_SIZE)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setAccessibleName("Live preview")
        self.preview.setStyleSheet("QLabel { border: 1px dashed palette(mid); border-radius: 4px; }")
        self.preview.setText("Live preview")
        self.preview.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        # The preview is placed by the owner (beside the queue); this panel only feeds it.

        self._timer = QTimer(self)
        self._timer.setInterval(1000)
        self._timer.timeout.connect(self._refresh)

    @property
    def running(self) -> bool:
        return self._running

    def show_waiting(self, position: int) -> None:
        if self._running:
            return
        self.bar.setRange(0, 0)
        self.bar.setVisible(True)
        self.label.setText(f"Waiting in the queue (place {position})…")

    def start(self) -> None:
        self._running = True
        self.tracker.start(time.monotonic())
        self.bar.setRange(0, 0)  # busy until the first step arrives
        self.bar.setVisible(True)
        self.notice.setVisible(False)
        self.preview.clear()
        self.preview.setText("Live preview")
        self._refresh()
        self._timer.start()

    def update_progress(self, step: int, total: int) -> None:
        self.tracker.update(step, total, time.monotonic())
        if total > 0:
            self.bar.setRange(0, total)
            self.bar.setValue(min(step, total))
        self._refresh()

    def show_notice(self, message: str) -> None:
        self.notice.setText(message)
        self.notice.setVisible(bool(message))

    def stop(self, text: str) -> None:
        self._running = False
        self._timer.stop()
        self._pending_preview = None
        self.bar.setRange(0, 1)
        self.bar.setValue(1 if text.startswith("Done") else 0)
        self.bar.setVisible(False)  # the line of text says how it ended
        self.label.setText(text)
        self.notice.setVisible(False)

    def elapsed_text(self) -> str:
        return clock(self.tracker.elapsed(time.monotonic()))

    async def show_preview(self, data: bytes) -> None:
        """Show the newest preview. Frames that arrive while one decodes replace each
        other, so a fast sampler never builds a backlog of decodes."""
        self._pending_preview = data
        if self._decoding:
            return
        self._decoding = True
        try:
            while self._pending_preview is not None:
                data, self._pending_preview = self._pending_preview, None
                img = await asyncio.to_thread(decode_preview, data)
                if not img.isNull() and self._running:
                    self.preview.setPixmap(QPixmap.fromImage(img))
        finally:
            self._decoding = False

    def _refresh(self) -> None:
        if self._running:
            self.label.setText(self.tracker.text(time.monotonic()))
