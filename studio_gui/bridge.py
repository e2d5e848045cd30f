"""JobBridge: the core's job events as Qt signals.

The JobQueue calls its listeners on the asyncio loop, which under qasync is the GUI
thread, so the signals are emitted directly. The bridge unsubscribes when it is
destroyed or :meth:`detach` is called, so a closed window never receives events.
"""

from __future__ import annotations

import shiboken6
from PySide6.QtCore import QObject, Signal

from studio_core.jobs import JobQueue, JobSaved, JobSaveFailed, QueueEvent
from studio_core.models import (
    JobCancelled,
    JobFailed,
    JobFinished,
    JobImage,
    JobNotice,
    JobProgress,
    JobQueued,
    JobStarted,
)


class JobBridge(QObject):
    event = Signal(object)  # every QueueEvent
    queued = Signal(str, int)  # job_id, place in line (1 = next)
    started = Signal(str)
    progress = Signal(object)  # JobProgress
    notice = Signal(str, str)  # job_id, message
    image = Signal(object)  # JobImage
    saved = Signal(object)  # JobSaved
    save_failed = Signal(object)  # JobSaveFailed
    finished = Signal(str, int)  # job_id, images
    failed = Signal(str, object)  # job_id, exception
    cancelled = Signal(str)
    queue_changed = Signal()  # membership or order changed: re-read JobQueue.entries()

    def __init__(self, queue: JobQueue, parent: QObject | None = None):
        super().__init__(parent)
        self.queue = queue
        self._unsubscribe = queue.subscribe(self._on_event)
        self.destroyed.connect(self._unsubscribe)

    def detach(self) -> None:
        self._unsubscribe()

    def _on_event(self, ev: QueueEvent) -> None:
        if not shiboken6.isValid(self):
            self._unsubscribe()
            return
        self.event.emit(ev)
        match ev:
            case JobQueued():
                self.queued.emit(ev.job_id, ev.position)
                self.queue_changed.emit()
            case JobStarted():
                self.started.emit(ev.job_id)
                self.queue_changed.emit()
            case JobProgress():
                self.progress.emit(ev)
            case JobNotice():
                self.notice.emit(ev.job_id, ev.message)
            case JobImage():
                self.image.emit(ev)
            case JobSaved():
                self.saved.emit(ev)
            case JobSaveFailed():
                self.save_failed.emit(ev)
            case JobFinished():
                self.finished.emit(ev.job_id, ev.images)
                self.queue_changed.emit()
            case JobFailed():
                self.failed.emit(ev.job_id, ev.error)
                self.queue_changed.emit()
            case JobCancelled():
                self.cancelled.emit(ev.job_id)
                self.queue_changed.emit()
