"""CoreBridge: the core's change stream (``core.changes``) as Qt signals, one per core.

The bridge is the window's only subscriber to the bus. Widgets connect *bound methods*
to its signals, so Qt drops a connection when its widget is deleted: no widget keeps a
callback in a core list, and none has to ask whether it is still alive when called.

    bridge = bridge_for(core)
    bridge.settings_changed.connect(self._on_settings)   # a method, never a lambda

Bus subscribers run on the asyncio loop, which under qasync is the GUI thread, so the
signals are emitted there. An event published from a worker thread arrives on the loop
(``publish_threadsafe``); should anything emit from another thread anyway, Qt's automatic
connection queues the call to the receiver's thread.

Besides the core's events the bridge carries the few GUI-only facts several widgets share
(the latest status of each service as the selector shows it, "this service's settings were
saved") and holds the hardware monitor, so there is no module-level registry of either.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal

# The change stream is the one place naming every event (the queue's are re-exported there).
from studio_core.changes import (
    FrameSetFinished,
    FrameSetProgress,
    ImageIndexed,
    ImageProcessed,
    ImageSaved,
    ImagesChanged,
    ImagesRemoved,
    IndexReloaded,
    JobCancelled,
    JobFailed,
    JobFinished,
    JobImage,
    JobNotice,
    JobPreview,
    JobProgress,
    JobQueued,
    JobSaved,
    JobSaveFailed,
    JobStarted,
    Notice,
    PoolStateChanged,
    QueueRestored,
    ServerOutput,
    ServerStateChanged,
    ServiceStatusChanged,
    SettingsChanged,
    SettingsWriteFailed,
    UnsavedKept,
)

ATTRIBUTE = "front_end_bridge"  # where the bridge lives on its core: it lives and dies with it


class CoreBridge(QObject):
    change = Signal(object)  # every event, in bus order

    # jobs (see studio_core.models)
    job_queued = Signal(str, int)  # job_id, place in line (1 = next)
    job_started = Signal(str)
    job_progress = Signal(object)  # JobProgress (without its preview)
    job_preview = Signal(object)  # JobPreview
    job_notice = Signal(str, str)  # job_id, message
    job_image = Signal(object)  # JobImage
    job_saved = Signal(object)  # JobSaved
    job_save_failed = Signal(object)  # JobSaveFailed
    job_finished = Signal(str, int)  # job_id, images
    job_failed = Signal(str, object)  # job_id, exception
    job_cancelled = Signal(str)
    queue_changed = Signal()  # membership or order changed: re-read core.jobs.entries()

    # images
    image_saved = Signal(object)  # ImageSaved
    image_processed = Signal(object)  # ImageProcessed
    image_indexed = Signal(object)  # ImageRecord
    images_changed = Signal(object)  # tuple[ImageRecord, ...]
    images_removed = Signal(object)  # tuple[int, ...]
    index_reloaded = Signal()
    unsaved_kept = Signal(object)  # UnsavedKept

    # the session
    frame_set_progress = Signal(object)  # FrameSetProgress
    frame_set_finished = Signal(object)  # FrameSetResult
    queue_restored = Signal(object)  # tuple[WaitingJob, ...]
    notice = Signal(object)  # Notice

    # settings, services, the managed ComfyUI server
    settings_changed = Signal(object, object)  # Settings, frozenset of changed field names
    settings_write_failed = Signal(str)
    service_status = Signal(str, object)  # service id, ProviderStatus (core.check_service)
    server_state = Signal(str, str)  # ServerState value, message
    server_output = Signal(str)
    pool_state = Signal(object)  # PoolStateChanged (every server of the ComfyUI pool)

    # GUI-only: a settings page checked a service (the selector shows the result) …
    status_checked = Signal(str, object)
    # … or saved its key or settings (the selector checks it again) …
    config_saved = Signal(str)
    # … and the selector's latest view of a service, from any check (also in ``last``).
    status_updated = Signal(str, object)

    def __init__(self, core: Any, parent: QObject | None = None):
        super().__init__(parent)
        self.core = core
        self.last: dict[str, object] = {}  # service id -> the selector's latest ProviderStatus
        self.hardware: QObject | None = None  # comfy_settings.monitor.HardwareMonitor, on first use
        self._subscription = core.changes.subscribe(self._on_change)

    def detach(self) -> None:
        """Stop re-emitting (the bus also forgets every subscriber when the core closes)."""
        self._subscription.close()

    def set_status(self, service_id: str, status: object) -> None:
        """The selector's latest view of a service, for every widget that shows one."""
        self.last[service_id] = status
        self.status_updated.emit(service_id, status)

    def _on_change(self, ev: Any) -> None:
        self.change.emit(ev)
        match ev:
            case JobQueued():
                self.job_queued.emit(ev.job_id, ev.position)
                self.queue_changed.emit()
            case JobStarted():
                self.job_started.emit(ev.job_id)
                self.queue_changed.emit()
            case JobProgress():
                self.job_progress.emit(ev)
            case JobPreview():
                self.job_preview.emit(ev)
            case JobNotice():
                self.job_notice.emit(ev.job_id, ev.message)
            case JobImage():
                self.job_image.emit(ev)
            case JobSaved():
                self.job_saved.emit(ev)
            case JobSaveFailed():
                self.job_save_failed.emit(ev)
            case JobFinished():
                self.job_finished.emit(ev.job_id, ev.images)
                self.queue_changed.emit()
            case JobFailed():
                self.job_failed.emit(ev.job_id, ev.error)
                self.queue_changed.emit()
            case JobCancelled():
                self.job_cancelled.emit(ev.job_id)
                self.queue_changed.emit()
            case ImageSaved():
                self.image_saved.emit(ev)
            case ImageProcessed():
                self.image_processed.emit(ev)
            case ImageIndexed():
                self.image_indexed.emit(ev.record)
            case ImagesChanged():
                self.images_changed.emit(ev.records)
            case ImagesRemoved():
                self.images_removed.emit(ev.ids)
            case IndexReloaded():
                self.index_reloaded.emit()
            case UnsavedKept():
                self.unsaved_kept.emit(ev)
            case FrameSetProgress():
                self.frame_set_progress.emit(ev)
            case FrameSetFinished():
                self.frame_set_finished.emit(ev.result)
            case QueueRestored():
                self.queue_restored.emit(ev.entries)
            case Notice():
                self.notice.emit(ev)
            case SettingsChanged():
                self.settings_changed.emit(ev.settings, ev.changed)
            case SettingsWriteFailed():
                self.settings_write_failed.emit(ev.message)
            case ServiceStatusChanged():
                self.service_status.emit(ev.service, ev.status)
            case ServerStateChanged():
                self.server_state.emit(ev.state, ev.message)
            case ServerOutput():
                self.server_output.emit(ev.line)
            case PoolStateChanged():
                self.pool_state.emit(ev)


def bridge_for(core: Any) -> CoreBridge:
    """The core's bridge, made on first use. It is kept on the core itself (not in a
    module-level table), so it goes when the core goes and a second core gets its own."""
    bridge = getattr(core, ATTRIBUTE, None)
    if bridge is None:
        bridge = CoreBridge(core)
        setattr(core, ATTRIBUTE, bridge)
    return bridge
