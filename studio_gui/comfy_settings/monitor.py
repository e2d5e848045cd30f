"""HardwareMonitor: one poller per core for the GPU (NVML) and the server (/system_stats, /queue).

NVML is read about once a second through ``asyncio.to_thread`` (it is a blocking driver
call) and only when the server is on this computer: for a remote server the local GPU says
nothing. Server health is read every few seconds through the ComfyUI provider when it is
installed, else with a plain httpx request. Widgets listen to ``updated``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from urllib.parse import urlparse

from PySide6.QtCore import QObject, Signal

from studio_core import gpu
from studio_core.gpu import VramInfo
from studio_core.hardware.health import ServerHealth, fetch_health, health_from
from studio_core.hardware.profiles import DEFAULT_PROFILE, HardwareProfile, profile_for_total
from studio_gui.tasks import TaskOwner

log = logging.getLogger(__name__)

GPU_INTERVAL_S = 1.0
HEALTH_INTERVAL_S = 3.0
REPROBE_S = 15.0  # with no address set and nothing answering, look on 8188/8000 again this often


def is_local(url: str) -> bool:
    host = (urlparse(url).hostname or "").lower()
    return host in ("127.0.0.1", "localhost", "::1", "0.0.0.0") or host.startswith("127.")


class HardwareMonitor(QObject):
    updated = Signal()

    def __init__(self, core, *, tasks: TaskOwner, parent: QObject | None = None):
        super().__init__(parent)
        self.core = core
        self.tasks = tasks
        self.nvml: VramInfo | None = None
        self.nvml_checked = False
        self.health: ServerHealth | None = None
        self._task: asyncio.Task | None = None
        self._last_probe = 0.0

    # -- what widgets read -----------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.core.settings.current.comfy_active_url

    @property
    def gpu(self) -> VramInfo | None:
        """The best reading: NVML for a local server, else what the server reports."""
        if self.nvml is not None and is_local(self.url):
            return self.nvml
        return self.health.vram if self.health else None

    @property
    def profile(self) -> HardwareProfile:
        info = self.gpu
        return profile_for_total(int(info.total_mib)) if info else DEFAULT_PROFILE

    @property
    def profile_is_guess(self) -> bool:
        return self.gpu is None

    def note(self) -> str:
        """One plain sentence on where the VRAM figures come from, or why there are none."""
        h = self.health
        if self.nvml is not None and is_local(self.url):
            return ""
        if h is not None and h.cpu_only:
            return "The ComfyUI server runs on the CPU only: there is no GPU memory to watch."
        if h is not None and h.vram is not None:
            return "" if not self.nvml_checked or not is_local(self.url) else \
                "No NVIDIA driver found here; VRAM figures come from the server."
        if self.nvml_checked and self.nvml is None:
            base = "No NVIDIA driver found on this computer, so VRAM can't be read"
            return base + (" and the server is not answering." if h is None or h.status != "running" else ".")
        return "Reading the GPU…"

    # -- polling ---------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = self.tasks.spawn(self._run(), name="hardware-monitor")

    async def refresh(self) -> None:
        await asyncio.gather(self._read_gpu(), self._read_health())
        self.updated.emit()

    async def _run(self) -> None:
        # The loop is captured once: a task step that Qt runs outside qasync's run loop (a
        # modal dialog, a test's processEvents) has no *running* loop, and asyncio.sleep or
        # to_thread would fail there, while call_later/run_in_executor on the loop still work.
        loop = asyncio.get_running_loop()
        ticks = 0
        while True:
            try:
                await self._read_gpu(loop)
                if ticks % int(HEALTH_INTERVAL_S / GPU_INTERVAL_S) == 0:
                    await self._read_health()
                self.updated.emit()
            except asyncio.CancelledError:
                raise
            except RuntimeError as exc:
                log.debug("hardware monitor step skipped: %s", exc)
            except Exception:  # a monitor must never stop the app or spam dialogs
                log.exception("hardware monitor")
            ticks += 1
            tick = loop.create_future()
            handle = loop.call_later(GPU_INTERVAL_S, lambda f=tick: f.done() or f.set_result(None))
            try:
                await tick
            finally:
                handle.cancel()

    async def _read_gpu(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        if not is_local(self.url) and self.nvml_checked:
            return
        loop = loop or asyncio.get_running_loop()
        self.nvml = await loop.run_in_executor(None, gpu.probe)
        self.nvml_checked = True

    async def _read_health(self) -> None:
        url = self.url
        provider = None
        try:
            provider = self.core.services.provider("comfyui")
        except Exception:
            provider = None
        if provider is not None and hasattr(provider, "system_stats"):
            from studio_core.errors import NotAComfyServer, StudioError

            try:
                stats = await provider.system_stats()
                q = await provider.queue_info()
                queue = {"queue_running": [None] * q.get("running", 0), "queue_pending": [None] * q.get("pending", 0)}
                self.health = health_from(url, stats, queue)
            except NotAComfyServer:
                self.health = health_from(url, {}, None)
            except StudioError as exc:
                self.health = health_from(url, None, None, error=exc.user_message)
        else:
            self.health = await fetch_health(url)
        await self._maybe_find_server()

    async def _maybe_find_server(self) -> None:
        """A ComfyUI started after the app (on 8188, or Desktop on 8000) is found without a restart."""
        s = self.core.settings.current
        if s.comfy_url or s.comfy_managed_url or (self.health is not None and self.health.status == "running"):
            return
        now = time.monotonic()
        if now - self._last_probe < REPROBE_S:
            return
        self._last_probe = now
        from studio_core.providers.comfy import discovery

        await discovery.refresh_found_url(self.core.settings)


def monitor_for(core, *, tasks: TaskOwner) -> HardwareMonitor:
    """The core's shared monitor, started on first use. It is kept by the core's bridge
    (not a module-level table), so it goes with its core."""
    from studio_gui.bridge import bridge_for

    bridge = bridge_for(core)
    mon = bridge.hardware
    if mon is None:
        mon = bridge.hardware = HardwareMonitor(core, tasks=tasks, parent=bridge)
    mon.start()
    return mon
