"""One server of the running pool: its provider, what it can run, and how it is doing.

A member wraps a ComfyProvider (built with the entry's Connection: headers, query token,
pinned TLS, connect timeout) or a RunPodProvider. Its health comes from ``/system_stats``
and ``/queue`` (polled by the pool), its capabilities from ``/object_info``, re-read when it
comes back after being away, after a missing-model error, and on request.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Mapping

from studio_core.errors import ProviderUnavailable, RequestTimedOut, StudioError
from studio_core.pool import capabilities as caps_mod
from studio_core.pool.capabilities import Capabilities
from studio_core.pool.connection import SecretLookup, connection_for
from studio_core.pool.errors import CertificateMismatch
from studio_core.pool.servers import ServerKind, ServerSpec
from studio_core.pool.speed import SpeedBook

log = logging.getLogger(__name__)

RUNNING, IDLE, OFFLINE, ERROR, UNKNOWN = "running", "idle", "offline", "error", "unknown"


class _Anything:
    """Capabilities of a server that answers but whose /object_info could not be read:
    let it try, its own validation names what is missing."""

    def missing(self, models, nodes) -> tuple[str, ...]:
        return ()


@dataclass(frozen=True, slots=True)
class ServerState:
    """One server as the status bar and the servers page show it (plain data)."""

    id: str
    name: str
    url: str
    state: str  # running | idle | offline | error | unknown
    message: str = ""
    queue_length: int = 0  # everyone's jobs on the server (running + pending)
    ours: int = 0  # the pool's jobs there
    vram_total: int | None = None
    vram_free: int | None = None
    device: str = ""
    current_job: str = ""  # the pool's job id running there, "" if none
    paid: bool = False
    enabled: bool = True


class Member:
    def __init__(self, spec: ServerSpec, *, secret: SecretLookup, timeout_s: float | None, model: str,
                 lost_server_grace_s: float):
        self.spec = spec
        self.provider: Any = None
        self.config_error: StudioError | None = None
        self.state = UNKNOWN
        self.message = ""
        self.caps: Capabilities | _Anything | None = None
        self.caps_stale = True
        self.jobs: list[str] = []  # the pool's job ids on this server, in start order
        self.last_model = ""
        self.queue_length = 0
        self.stats: Mapping[str, Any] = {}
        self.speed = SpeedBook()  # measured seconds per work unit, per model family
        self.last_end = 0.0  # monotonic time our last job here ended: the next one starts no earlier
        self.last_poll = 0.0
        try:
            if spec.kind is ServerKind.runpod:
                from studio_core.pool.runpod import RunPodProvider

                self.provider = RunPodProvider(spec, api_key=secret(spec.secret_name("auth")))
                self.caps = caps_mod.from_model_list(spec.models)
                self.caps_stale = False
            else:
                from studio_core.providers.comfy.provider import ComfyProvider

                conn = connection_for(spec, secret)
                self.provider = ComfyProvider(spec.url, timeout_s=timeout_s, model=model, connection=conn,
                                              server_name=spec.name, lost_server_grace_s=lost_server_grace_s)
        except StudioError as exc:
            self.config_error = exc
            self.state, self.message = ERROR, exc.user_message

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def usable(self) -> bool:
        return self.spec.enabled and self.provider is not None

    @property
    def online(self) -> bool:
        return self.state == RUNNING

    def snapshot(self) -> ServerState:
        dev = (self.stats.get("devices") or [{}])[0] if isinstance(self.stats.get("devices"), list) else {}
        dev = dev if isinstance(dev, Mapping) else {}
        return ServerState(
            id=self.id, name=self.name, url=self.spec.url, state=self.state if self.spec.enabled else IDLE,
            message=self.message if self.spec.enabled else "switched off in Settings",
            queue_length=self.queue_length, ours=len(self.jobs),
            vram_total=dev.get("vram_total"), vram_free=dev.get("vram_free"), device=str(dev.get("name") or ""),
            current_job=self.jobs[0] if self.jobs else "", paid=self.spec.paid, enabled=self.spec.enabled)

    def use_input_store(self, store: Any) -> None:
        """Read request input images from ``store`` (each server uploads what its jobs load)."""
        if self.provider is not None:
            self.provider.input_store = store

    def went_away(self, error: StudioError) -> None:
        """Not answering: idle when the user said it may be switched off, offline otherwise."""
        self.state = IDLE if self.spec.may_be_off else OFFLINE
        self.message = "not answering (may be switched off)" if self.spec.may_be_off else error.user_message

    def run_start(self, sent_at: float) -> float:
        """When a job sent at ``sent_at`` began to run: not before the job ahead of it ended
        (time spent waiting in this server's queue is not this server's pace)."""
        return max(sent_at, self.last_end)

    def job_ended(self, now: float) -> None:
        self.last_end = now

    def record_job(self, family: str, units: float, sent_at: float, now: float) -> None:
        self.speed.record(family, units, now - self.run_start(sent_at))

    async def poll(self) -> bool:
        """Read health (and capabilities when stale); True when the server just came back."""
        if not self.usable:
            return False
        was = self.state
        self.last_poll = time.monotonic()
        if self.spec.kind is ServerKind.runpod:
            status = await self.provider.check()
            ready = getattr(status.state, "value", status.state) == "ready"
            self.state, self.message = (RUNNING if ready else ERROR), status.message
            return ready and was != RUNNING
        try:
            self.stats = await self.provider.system_stats()
            q = await self.provider.queue_info()
            self.queue_length = q["running"] + q["pending"]
        except CertificateMismatch as exc:  # it answers, with the wrong certificate: not "switched off"
            self.state, self.message = ERROR, exc.user_message
            return False
        except (ProviderUnavailable, RequestTimedOut) as exc:
            self.went_away(exc)
            return False
        except StudioError as exc:  # answers, but not usably: rejected token, not ComfyUI, wrong certificate
            self.state, self.message = ERROR, exc.user_message
            return False
        back = was != RUNNING
        self.state, self.message = RUNNING, ""
        if back or self.caps_stale:
            await self.refresh_capabilities()
        return back and was != UNKNOWN

    async def refresh_capabilities(self) -> None:
        if self.spec.kind is ServerKind.runpod or self.provider is None:
            return
        try:
            info = await self.provider.object_info(refresh=True)
            self.caps = caps_mod.from_object_info(info)
            self.caps_stale = False
        except StudioError as exc:
            log.info("no /object_info from %s: %s", self.name, exc)
            self.caps = _Anything()  # it answers; let its own validation speak
            self.caps_stale = True

    async def aclose(self) -> None:
        if self.provider is not None:
            await self.provider.aclose()
