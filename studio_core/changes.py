"""The change stream: frozen "what changed" events and the one bus that carries them.

Everything the core does that a front end may want to show is published on
``core.changes`` (a :class:`ChangeBus`): job events (the queue's, see
:mod:`studio_core.models`), saved/indexed/removed images, settings, service and
ComfyUI-server state, and notices for the user. A window subscribes once (the Qt bridge
re-emits them as signals); a script iterates them::

    async for ev in core.changes.events(JobFinished, ImageIndexed):
        ...

Rules: publish and subscribe on the asyncio loop (``publish_threadsafe`` from other
threads). Every subscriber sees every event in the same order, including events
published by another subscriber while one is being delivered. A subscriber that raises
is logged and the others still get the event.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Callable

from studio_core.models import (
    JobCancelled,
    JobFailed,
    JobFinished,
    JobImage,
    JobNotice,
    JobProgress,
    JobQueued,
    JobSaved,
    JobSaveFailed,
    JobStarted,
    SavedImage,
)

log = logging.getLogger(__name__)

__all__ = [
    "ChangeBus", "Subscription", "Change",
    "JobQueued", "JobStarted", "JobProgress", "JobPreview", "JobImage", "JobNotice", "JobSaved", "JobSaveFailed",
    "JobFinished", "JobFailed", "JobCancelled",
    "ImageSaved", "ImageProcessed", "ImageIndexed", "ImagesChanged", "ImagesRemoved", "IndexReloaded",
    "SettingsChanged", "SettingsWriteFailed", "ServiceStatusChanged", "ServerStateChanged", "PoolStateChanged", "ServerOutput",
    "Notice", "QueueRestored", "FrameSetProgress", "FrameSetFinished", "UnsavedKept",
]


# ---------------------------------------------------------------------------------------
# Events beyond the queue's own (JobQueued … JobCancelled, JobSaved, JobSaveFailed).


@dataclass(frozen=True, slots=True)
class JobPreview:
    """A live preview of a running job (the bus splits it out of ``JobProgress.preview``)."""

    job_id: str
    data: bytes
    mime: str = "image/jpeg"


@dataclass(frozen=True, slots=True)
class ImageSaved:
    """A file is on disk. ``origin``: "job" (a generated image), "processed" (a copy the
    pipeline made, e.g. the transparent one), "tool" (sprite tools), "recovered"."""

    saved: SavedImage
    job_id: str = ""
    index: int = 0
    origin: str = "job"


@dataclass(frozen=True, slots=True)
class ImageProcessed:
    """Post-processing of one saved image: ``copy`` is the new file, or None and ``message``
    says why not (in plain words; the original is always kept)."""

    job_id: str
    source: Path
    kind: str  # "transparent"
    copy: SavedImage | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.copy is not None


@dataclass(frozen=True, slots=True)
class ImageIndexed:
    """One image was added to the gallery index."""

    record: Any  # studio_core.storage.records.ImageRecord


@dataclass(frozen=True, slots=True)
class ImagesChanged:
    """Images already in the index changed (favourite, tags): their new records."""

    records: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class ImagesRemoved:
    """Images left the index (deleted or gone from the folder), by id."""

    ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class IndexReloaded:
    """A bulk change (rescan, import): re-read what is shown."""


@dataclass(frozen=True, slots=True)
class SettingsChanged:
    """The settings now in force, and the names of the fields that changed."""

    settings: Any  # studio_core.settings.Settings
    changed: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class SettingsWriteFailed:
    """The settings could not be written; they stay in force in memory until the next try."""

    message: str


@dataclass(frozen=True, slots=True)
class ServiceStatusChanged:
    """A service check finished with ``status``."""

    service: str
    status: Any  # studio_core.models.ProviderStatus


@dataclass(frozen=True, slots=True)
class ServerStateChanged:
    """The managed ComfyUI server's state (studio_core.comfy_server.ServerState)."""

    state: str
    message: str = ""


@dataclass(frozen=True, slots=True)
class PoolStateChanged:
    """Every ComfyUI server of the pool as last polled (studio_core.pool.member.ServerState each)."""

    servers: tuple[Any, ...]

    @property
    def running(self) -> int:
        return sum(1 for s in self.servers if s.state == "running")

    @property
    def queue_length(self) -> int:
        return sum(s.queue_length for s in self.servers if s.state == "running")


@dataclass(frozen=True, slots=True)
class ServerOutput:
    """A line the managed ComfyUI server printed."""

    line: str


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the user should read: ``level`` is "info", "warning" or "error"."""

    message: str
    level: str = "info"
    job_id: str = ""


@dataclass(frozen=True, slots=True)
class UnsavedKept:
    """A finished image could not be saved; its bytes are in the recovery folder (``path``)
    or, if even that failed, in memory only (``path`` None)."""

    job_id: str
    unsaved_id: str
    error: Exception
    path: Path | None = None


@dataclass(frozen=True, slots=True)
class QueueRestored:
    """Jobs left unfinished last time, waiting for the user to resume them (never auto-run)."""

    entries: tuple[Any, ...]  # studio_core.queue_store.WaitingJob


@dataclass(frozen=True, slots=True)
class FrameSetProgress:
    """A frame set has ``saved`` of its ``total`` frames; ``lost`` failed or were cancelled."""

    set_id: str
    saved: int
    total: int
    lost: int = 0


@dataclass(frozen=True, slots=True)
class FrameSetFinished:
    """A frame set ended; ``result`` lists its frames in order and what failed."""

    result: Any  # studio_core.session.FrameSetResult


Change = Any  # any of the event classes above or the queue's


# ---------------------------------------------------------------------------------------


class Subscription:
    """Returned by :meth:`ChangeBus.subscribe`; call it (or ``close()``) to unsubscribe."""

    __slots__ = ("_bus", "callback", "kinds")

    def __init__(self, bus: ChangeBus, callback: Callable[[Any], None], kinds: tuple[type, ...]):
        self._bus: ChangeBus | None = bus
        self.callback = callback
        self.kinds = kinds

    def wants(self, event: Any) -> bool:
        return not self.kinds or isinstance(event, self.kinds)

    @property
    def active(self) -> bool:
        return self._bus is not None

    def close(self) -> None:
        bus, self._bus = self._bus, None
        if bus is not None:
            with contextlib.suppress(ValueError):
                bus._subs.remove(self)

    __call__ = close

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class ChangeBus:
    def __init__(self) -> None:
        self._subs: list[Subscription] = []
        self._pending: collections.deque[Any] = collections.deque()
        self._delivering = False
        self._inboxes: list[asyncio.Queue] = []
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop :meth:`publish_threadsafe` delivers on."""
        self._loop = loop

    def subscribe(self, callback: Callable[[Any], None], *kinds: type) -> Subscription:
        """``callback(event)`` for every event (or only instances of ``kinds``)."""
        sub = Subscription(self, callback, tuple(kinds))
        self._subs.append(sub)
        return sub

    def publish(self, event: Any) -> None:
        """Deliver ``event`` to every subscriber, after any event still being delivered."""
        if self._loop is None:
            with contextlib.suppress(RuntimeError):
                self._loop = asyncio.get_running_loop()
        self._pending.append(event)
        if self._delivering:
            return  # the outer publish delivers it next, so all subscribers see one order
        self._delivering = True
        try:
            while self._pending:
                ev = self._pending.popleft()
                for sub in list(self._subs):
                    if not sub.active or not sub.wants(ev):
                        continue
                    try:
                        sub.callback(ev)
                    except Exception:
                        log.exception("change subscriber %r failed on %s", sub.callback, type(ev).__name__)
        finally:
            self._delivering = False

    def publish_threadsafe(self, event: Any) -> None:
        """From a worker thread: publish on the loop that last published (or drop with a log)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            log.warning("change %s from a thread with no loop to deliver it", type(event).__name__)
            return
        loop.call_soon_threadsafe(self.publish, event)

    async def events(self, *kinds: type) -> AsyncIterator[Any]:
        """Every event from now on (or only ``kinds``) until :meth:`close`."""
        inbox: asyncio.Queue[Any] = asyncio.Queue()
        sub = self.subscribe(inbox.put_nowait, *kinds)
        self._inboxes.append(inbox)
        try:
            if self._closed:
                return
            while True:
                ev = await inbox.get()
                if ev is _CLOSED:
                    return
                yield ev
        finally:
            sub.close()
            with contextlib.suppress(ValueError):
                self._inboxes.remove(inbox)

    def end_streams(self) -> None:
        """End every :meth:`events` iterator, now and later; callback subscribers still hear.

        The job queue ends its iterators when it closes but keeps its callbacks: a "Retry
        saving" after the close still reports the image it wrote."""
        self._closed = True
        for inbox in list(self._inboxes):
            inbox.put_nowait(_CLOSED)

    def close(self) -> None:
        """End every :meth:`events` iterator (subscribers simply stop hearing anything)."""
        self.end_streams()
        self._subs.clear()


_CLOSED = object()
