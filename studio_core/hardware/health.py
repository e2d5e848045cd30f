"""Server health and job progress as plain data, in the seed's shapes.

The seed served ``GET /api/comfyui/health`` → ``{status, server, vramUsage, queueLength,
activeGeneration}`` and ``GET /api/comfyui/progress/{id}`` → ``{promptId, status, progress,
currentStep, totalSteps, elapsedTime, estimatedRemaining}``. :class:`ServerHealth` and
:class:`ProgressSnapshot` carry the same facts; ``to_seed_dict`` renders those shapes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any


from studio_core.gpu import VramInfo, from_system_stats

if TYPE_CHECKING:
    import httpx


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    s = int(round(max(0.0, seconds)))
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m {s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h {m:02d}m"


@dataclass(frozen=True, slots=True)
class ProgressSnapshot:
    job_id: str
    step: int
    total: int
    elapsed_s: float
    eta_s: float | None
    status: str = "generating"

    @property
    def fraction(self) -> float:
        return self.step / self.total if self.total else 0.0

    def to_seed_dict(self) -> dict[str, Any]:
        return {"promptId": self.job_id, "status": self.status, "progress": round(self.fraction, 3),
                "currentStep": self.step, "totalSteps": self.total,
                "elapsedTime": fmt_duration(self.elapsed_s), "estimatedRemaining": fmt_duration(self.eta_s)}


class ProgressTracker:
    """Turns step counts into elapsed time and time left (linear in steps since the first one)."""

    def __init__(self, job_id: str, *, clock=time.monotonic):
        self.job_id = job_id
        self._clock = clock
        self._t0 = clock()
        self._first: tuple[float, int] | None = None
        self.last: ProgressSnapshot | None = None

    def update(self, step: int, total: int) -> ProgressSnapshot:
        now = self._clock()
        if self._first is None or step < self._first[1]:
            self._first = (now, step)
        t1, s1 = self._first
        eta = None
        if step > s1 and total > step:
            eta = (now - t1) / (step - s1) * (total - step)
        elif total and step >= total:
            eta = 0.0
        self.last = ProgressSnapshot(self.job_id, step, total, now - self._t0, eta)
        return self.last


@dataclass(frozen=True, slots=True)
class ServerHealth:
    status: str  # "running" | "unreachable" | "not_comfy"
    server: str
    version: str = ""
    device: str = ""
    cpu_only: bool = False
    vram: VramInfo | None = None
    queue_running: int = 0
    queue_pending: int = 0
    message: str = ""
    active: ProgressSnapshot | None = None

    @property
    def queue_length(self) -> int:
        return self.queue_running + self.queue_pending

    def vram_text(self) -> str:
        if self.vram is None:
            return "CPU only (no GPU memory)" if self.cpu_only else "unknown"
        return f"{self.vram.used_mib / 1024:.1f}GB / {self.vram.total_mib / 1024:.0f}GB"

    def to_seed_dict(self) -> dict[str, Any]:
        return {"status": self.status, "server": self.server, "vramUsage": self.vram_text(),
                "queueLength": self.queue_length,
                "activeGeneration": self.active.to_seed_dict() if self.active else None}


def health_from(url: str, stats: dict | None, queue: dict | None, *, error: str = "") -> ServerHealth:
    if stats is None:
        return ServerHealth("unreachable", url, message=error or "ComfyUI is not answering at this address.")
    if not isinstance(stats, dict) or "devices" not in stats:
        return ServerHealth("not_comfy", url, message="Something answers here, but it is not a ComfyUI server.")
    system = stats.get("system") if isinstance(stats.get("system"), dict) else {}
    devices = [d for d in stats.get("devices") or [] if isinstance(d, dict)]
    device = ""
    if devices:
        device = str(devices[0].get("name", ""))
        if device.startswith("cuda:"):
            device = device.split(" ", 1)[-1].rsplit(" : ", 1)[0]
    cpu_only = bool(devices) and all(d.get("type") == "cpu" for d in devices)
    running = pending = 0
    if isinstance(queue, dict):
        running = len(queue.get("queue_running") or [])
        pending = len(queue.get("queue_pending") or [])
    return ServerHealth("running", url, version=str(system.get("comfyui_version") or ""),
                        device="CPU" if cpu_only else device, cpu_only=cpu_only, vram=from_system_stats(stats),
                        queue_running=running, queue_pending=pending)


async def fetch_health(url: str, *, client: httpx.AsyncClient | None = None, timeout: float = 3.0) -> ServerHealth:
    """GET /system_stats and /queue from ``url``; never raises for an unreachable server."""
    import httpx  # here, not at module level: start-up need not pay for it

    own = client is None
    client = client or httpx.AsyncClient(timeout=timeout)
    try:
        try:
            r = await client.get(url.rstrip("/") + "/system_stats")
            stats = r.json() if r.status_code == 200 else {}
        except (httpx.HTTPError, OSError) as exc:
            return health_from(url, None, None, error=f"ComfyUI is not answering at {url} ({type(exc).__name__}).")
        except ValueError:
            stats = {}
        try:
            q = await client.get(url.rstrip("/") + "/queue")
            queue = q.json() if q.status_code == 200 else None
        except (httpx.HTTPError, OSError, ValueError):
            queue = None
        return health_from(url, stats, queue)
    finally:
        if own:
            await client.aclose()
