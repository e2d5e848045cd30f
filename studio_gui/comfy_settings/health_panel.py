"""Server health (the seed's /api/comfyui/health and /progress shapes) as a panel and a
compact status-bar button that opens it.

Both read the shared HardwareMonitor; the active generation comes from the core's job
queue's events on the core's bridge (``job_started``/``job_progress``) through a ProgressTracker.
"""

from __future__ import annotations

import shiboken6
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QDialog, QFormLayout, QLabel, QProgressBar, QToolButton, QVBoxLayout, QWidget

from studio_core.hardware.health import ProgressTracker, ServerHealth, fmt_duration
from studio_core.models import JobProgress
from studio_gui.bridge import bridge_for
from studio_gui.comfy_settings.monitor import HardwareMonitor, monitor_for
from studio_gui.tasks import TaskOwner

_STATUS = {"running": "● running", "unreachable": "○ not reachable", "not_comfy": "✕ not a ComfyUI server"}


class ActiveJobs(QObject):
    """Follows the core's job events (through its bridge) and keeps the running job's progress."""

    changed = Signal()

    def __init__(self, core, parent: QObject | None = None):
        super().__init__(parent)
        self.tracker: ProgressTracker | None = None
        self._jobs = getattr(core, "jobs", None)
        bridge = bridge_for(core)
        bridge.job_started.connect(self._on_started)
        bridge.job_progress.connect(self._on_progress)
        for ended in (bridge.job_finished, bridge.job_failed, bridge.job_cancelled):
            ended.connect(self._on_ended)

    def _is_comfy(self, job_id: str) -> bool:
        # This panel is ComfyUI's: a cloud job's progress is not the server's.
        entry = self._jobs.entry(job_id) if self._jobs is not None else None
        return entry is None or entry.request.service == "comfyui"

    def _on_started(self, job_id: str) -> None:
        if self._is_comfy(job_id):
            self.tracker = ProgressTracker(job_id)
            self.changed.emit()

    def _on_progress(self, ev: JobProgress) -> None:
        if ev.total <= 0 or not self._is_comfy(ev.job_id):
            return
        if self.tracker is None or self.tracker.job_id != ev.job_id:
            self.tracker = ProgressTracker(ev.job_id)
        self.tracker.update(ev.step, ev.total)
        self.changed.emit()

    def _on_ended(self, job_id: str, *_: object) -> None:
        if self.tracker is not None and self.tracker.job_id == job_id:
            self.tracker = None
            self.changed.emit()

    @property
    def snapshot(self):
        return self.tracker.last if self.tracker else None

    def close(self) -> None:
        """Stop following the jobs (deleting it does the same)."""
        self.deleteLater()


def _vram_text(mon: HardwareMonitor, h: ServerHealth | None) -> str:
    info = mon.gpu
    if info is None:
        return mon.note() or (h.vram_text() if h else "unknown")
    text = f"{info.used_mib / 1024:.1f} GB / {info.total_mib / 1024:.1f} GB"
    extra = [f"{info.utilisation_pct}% busy" if info.utilisation_pct is not None else "",
             f"{info.temperature_c} °C" if info.temperature_c is not None else "",
             "from the server" if info.source == "system_stats" else ""]
    return text + "".join(f" · {e}" for e in extra if e)


class HealthPanel(QWidget):
    def __init__(self, core, *, tasks: TaskOwner, parent: QWidget | None = None,
                 monitor: HardwareMonitor | None = None, active: ActiveJobs | None = None):
        super().__init__(parent)
        self.core = core
        self.monitor = monitor or monitor_for(core, tasks=tasks)
        self.active = active or ActiveJobs(core, self)
        form = QFormLayout(self)
        self.fields: dict[str, QLabel] = {}
        for key, label in (("status", "Status"), ("server", "Server"), ("version", "ComfyUI version"),
                           ("device", "Device"), ("vram", "VRAM"), ("queue", "Queue"), ("active", "Generating")):
            lab = QLabel("–")
            lab.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            lab.setAccessibleName(label)
            lab.setWordWrap(True)
            form.addRow(label, lab)
            self.fields[key] = lab
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        form.addRow("", self.progress)
        self.monitor.updated.connect(self.refresh)
        self.active.changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        h, mon = self.monitor.health, self.monitor
        f = self.fields
        f["status"].setText(_STATUS.get(h.status, h.status) + (f" — {h.message}" if h.message else "") if h else "checking…")
        f["server"].setText(h.server if h else mon.url)
        f["version"].setText((h.version or "not reported (older ComfyUI)") if h and h.status == "running" else "–")
        f["device"].setText((h.device or "–") if h else "–")
        f["vram"].setText(_vram_text(mon, h))
        f["queue"].setText(f"{h.queue_running} running, {h.queue_pending} waiting" if h and h.status == "running" else "–")
        snap = self.active.snapshot
        if snap is None:
            f["active"].setText("nothing")
            self.progress.setValue(0)
        else:
            f["active"].setText(f"step {snap.step}/{snap.total} · {fmt_duration(snap.elapsed_s)} elapsed · "
                                f"~{fmt_duration(snap.eta_s)} left")
            self.progress.setValue(int(snap.fraction * 1000))


class HealthDialog(QDialog):
    def __init__(self, core, *, tasks: TaskOwner, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("ComfyUI health")
        lay = QVBoxLayout(self)
        self.panel = HealthPanel(core, tasks=tasks, parent=self)
        lay.addWidget(self.panel)
        self.resize(460, 280)


class HealthStatusButton(QToolButton):
    """“ComfyUI 0.3.64 @127.0.0.1:8188 · RTX 3050 6 GB · queue 0”; a click opens the panel."""

    def __init__(self, core, *, tasks: TaskOwner, parent: QWidget | None = None):
        super().__init__(parent)
        self.core = core
        self.tasks = tasks
        self.setAutoRaise(True)
        self.setAccessibleName("ComfyUI status")
        self.setToolTip("ComfyUI server health: click for details")
        self.setText("ComfyUI: checking…")
        self.monitor: HardwareMonitor | None = None
        self.active: ActiveJobs | None = None
        self._dialog: HealthDialog | None = None
        self.clicked.connect(self.open_panel)
        self.pool: tuple = ()  # the last PoolStateChanged.servers: with several, the button sums them
        from studio_gui.bridge import bridge_for

        bridge_for(core).pool_state.connect(self._on_pool)

    def _on_pool(self, ev) -> None:
        self.pool = tuple(ev.servers)
        self.refresh()

    def pool_text(self) -> str:
        """"ComfyUI: 2 of 3 servers running · queue 4" for a pool; "" for one server (its own line says more)."""
        servers = [s for s in self.pool if s.enabled]
        if len(servers) < 2:
            return ""
        up = [s for s in servers if s.state == "running"]
        idle = sum(1 for s in servers if s.state == "idle")
        text = f"ComfyUI: {len(up)} of {len(servers)} servers running · queue {sum(s.queue_length for s in up)}"
        return text + (f" · {idle} switched off" if idle else "")

    def attach(self) -> None:
        """Start following the server (call once the window is shown)."""
        if self.monitor is None:
            self.monitor = monitor_for(self.core, tasks=self.tasks)
            self.monitor.updated.connect(self.refresh)
            self.active = ActiveJobs(self.core, self)
            self.active.changed.connect(self.refresh)

    def refresh(self) -> None:
        if self.monitor is None and not self.pool_text():
            return
        if self.monitor is None:
            self.setText(self.pool_text())
            return
        h = self.monitor.health
        host = self.monitor.url.split("://", 1)[-1].rstrip("/")
        if h is None:
            text = f"ComfyUI @{host}: checking…"
        elif h.status != "running":
            text = f"ComfyUI @{host}: not reachable" if h.status == "unreachable" else f"@{host}: not ComfyUI"
        else:
            gpu = self.monitor.gpu
            dev = f"{gpu.name} {gpu.total_mib / 1024:.0f} GB" if gpu else (h.device or "?")
            text = f"ComfyUI {h.version or ''} @{host} · {dev} · queue {h.queue_length}".replace("  ", " ")
        text = self.pool_text() or text
        snap = self.active.snapshot if self.active else None
        if snap is not None:
            text += f" · step {snap.step}/{snap.total}, ~{fmt_duration(snap.eta_s)} left"
        self.setText(text)

    def open_panel(self) -> None:
        # The dialog is a child of the window, which may delete it on its own (closing
        # the window's children); then a new one is made.
        if self._dialog is None or not shiboken6.isValid(self._dialog):
            self._dialog = HealthDialog(self.core, tasks=self.tasks, parent=self.window())
        self._dialog.show()
        self._dialog.raise_()

    def detach(self) -> None:
        if self.active is not None:
            self.active.close()
            self.active = None

    # MainWindow's part hooks.
    async def started(self) -> None:
        self.attach()
        self.refresh()
        from studio_core import comfy_autostart

        self.tasks.spawn(comfy_autostart.on_start(self.core), name="comfyui-autostart")

    def closing(self) -> None:
        self.detach()
