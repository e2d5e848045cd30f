"""StudioCore: the object a front end (the Qt GUI, a script, a test) opens and closes.

It owns the settings, the secrets store, the gallery index, the providers, the job
queue (persisted), the session (the generation pipeline) and the change stream, and
closes all of them in :meth:`aclose`, in an order that loses nothing. Usable without Qt::

    core = await StudioCore.open(AppPaths.portable(Path("studio-home")))
    try:
        handle = await core.session.generate(GenerationRequest("a slime", service="comfyui"))
        print(await handle.result())
    finally:
        await core.aclose()
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

from studio_core.changes import (
    ChangeBus,
    ImageIndexed,
    ImagesChanged,
    ImagesRemoved,
    IndexReloaded,
    JobPreview,
    PoolStateChanged,
    ServiceStatusChanged,
    SettingsChanged,
    SettingsWriteFailed,
    UnsavedKept,
)
from studio_core.models import GenerationRequest, JobImage, JobProgress, JobSaveFailed, ProviderStatus, SavedImage
from studio_core.paths import AppPaths
from studio_core.secrets import SecretStore
from studio_core.services import ServiceRegistry
from studio_core.settings import Settings, SettingsStore

log = logging.getLogger(__name__)


class StudioCore:
    def __init__(self, paths: AppPaths, *, use_keyring: bool = True):
        from studio_core.queue_store import FILE as QUEUE_FILE
        from studio_core.queue_store import QueueStore
        from studio_core.recovery import RecoveryStore, folder_for

        self.paths = paths
        # Every change the front end may show, in order (see studio_core.changes).
        self.changes = ChangeBus()
        self.settings = SettingsStore(paths.settings_file)
        self.secrets = SecretStore(paths.secrets_file, use_keyring=use_keyring)
        self.services = ServiceRegistry(self.settings, self.secrets)
        self.services.data_dir = paths.data  # providers read image inputs from its input store
        self.services.on_pool_state = lambda servers: self.changes.publish(PoolStateChanged(servers))
        # Lines for the user about what happened while opening (an index rebuilt…).
        self.startup_messages: list[str] = []
        self.index = None  # studio_core.storage.index.ImageIndex once open(); None if unusable
        self.queue_store = QueueStore(paths.data / QUEUE_FILE)
        self.recovery = RecoveryStore(folder_for(paths.data))
        self.instance_lock = None  # studio_core.instance_lock.InstanceLock when open(lock=True)
        self._closers: list[Callable[[], Awaitable[Any]]] = []
        self._closed = False
        self._index_opened = False
        self._comfy_server = None  # studio_core.comfy_server.ManagedServer, built on first use
        # A front end's adapter of ``changes`` (the Qt window's CoreBridge); the core never uses it.
        self.front_end_bridge: Any = None
        self._settings_seen: Settings = self.settings.current

    @classmethod
    async def open(cls, paths: AppPaths, *, use_keyring: bool = True, open_index: bool = True,
                   lock: bool = False, preload_secrets: bool = True) -> StudioCore:
        """Open everything; with ``open_index=False`` the caller opens the gallery index later
        through :meth:`ensure_index` (the GUI does, right after its window first paints).

        With ``lock`` the data folder is claimed for this process first (raises
        :class:`~studio_core.instance_lock.AlreadyRunning` when another live studio has it).
        Jobs left unfinished last time wait in ``core.session.waiting`` (never re-run by themselves).
        With ``preload_secrets=False`` the caller awaits ``core.services.preload_secrets()``
        itself before anything asks for a key (the GUI does, after its first paint: the
        keyring import and read took ~150–300 ms of a ~700 ms start).
        """
        await asyncio.to_thread(paths.ensure)
        instance_lock = None
        if lock:
            from studio_core.instance_lock import InstanceLock

            instance_lock = InstanceLock(paths.data)
            await asyncio.to_thread(instance_lock.acquire)
        core = cls(paths, use_keyring=use_keyring)
        core.instance_lock = instance_lock
        core._wire_changes()
        # Keys are read once, here, off the loop: a keyring read on the GUI thread can block it.
        if preload_secrets:
            await core.services.preload_secrets()
        if open_index:
            await core.ensure_index()
        from studio_core.fallback import fallback_provider_for
        from studio_core.jobs import JobQueue
        from studio_core.session import Session

        core.session = Session(core)
        # The lambdas look the registry and settings up on each job, so a provider rebuilt
        # after a settings change (or a test's stand-in) and the current fallback order are used.
        core.jobs = JobQueue(
            fallback_provider_for(lambda service: core.services.provider(service),
                                  lambda: core.settings.current.fallback_services),
            lambda image, request: core.session.store(image, request),
            disk_warning=core.low_disk_warning,
            keep_unsaved=lambda item: core.session.keep_unsaved(item),
            forget_unsaved=lambda uid: core.session.forget_unsaved(uid),
        )
        core.jobs.subscribe(core._job_event)
        core.jobs.subscribe(core.session.on_queue_event)
        core.session.restored(await asyncio.to_thread(core.queue_store.load))
        return core

    # -- the change stream's sources ---------------------------------------------------
    def _wire_changes(self) -> None:
        self.changes.bind_loop(asyncio.get_running_loop())
        self.settings.subscribe(self._settings_changed)
        self.settings.on_write_failed = lambda message: self.changes.publish_threadsafe(SettingsWriteFailed(message))

    def _settings_changed(self, new: Settings) -> None:
        old, self._settings_seen = self._settings_seen, new
        changed = frozenset(k for k in new.__dataclass_fields__ if getattr(old, k) != getattr(new, k))
        self.changes.publish(SettingsChanged(new, changed))

    def _job_event(self, ev: Any) -> None:
        if isinstance(ev, JobProgress) and ev.preview:
            self.changes.publish(JobProgress(ev.job_id, ev.step, ev.total, message=ev.message))
            self.changes.publish(JobPreview(ev.job_id, ev.preview, ev.preview_mime))
            return
        self.changes.publish(ev)
        if isinstance(ev, JobSaveFailed):
            item = self.jobs.unsaved.get(ev.unsaved_id)
            self.changes.publish(UnsavedKept(ev.job_id, ev.unsaved_id, ev.error, item.path if item else None))

    async def check_service(self, service_id: str) -> ProviderStatus:
        """Ask a service how it is (never raises) and publish ServiceStatusChanged."""
        from studio_core.providers.cloud.common import status_from_error

        try:
            status = await self.services.provider(service_id).check()
        except Exception as exc:
            status = status_from_error(exc)
        self.changes.publish(ServiceStatusChanged(service_id, status))
        return status

    # -- the gallery index -------------------------------------------------------------
    async def ensure_index(self) -> None:
        if self._index_opened:
            return
        self._index_opened = True
        await self._open_index()

    async def _open_index(self) -> None:
        from studio_core.errors import StudioError
        from studio_core.storage.index import ImageIndex

        try:
            self.index = await ImageIndex.open(self.paths)
        except StudioError as exc:
            # Images still save without an index; the next start rebuilds it from them.
            log.warning("gallery index unavailable: %s", exc)
            self.startup_messages.append(exc.user_message)
            return
        self.startup_messages.extend(self.index.messages)
        publish = self.changes.publish
        self.index.record_added.append(lambda rec: publish(ImageIndexed(rec)))
        self.index.records_changed.append(lambda recs: publish(ImagesChanged(tuple(recs))))
        self.index.records_removed.append(lambda ids: publish(ImagesRemoved(tuple(ids))))
        self.index.reloaded.append(lambda: publish(IndexReloaded()))

    async def save_image(self, image: JobImage, request: GenerationRequest) -> SavedImage:
        """Write a finished image through the session's pipeline (index, post-processing).

        Raises StorageError/NotAnImage; the bytes are never half-written.
        """
        return await self.session.store(image, request)

    async def announce_saved(self, saved: SavedImage, *, origin: str = "tool") -> None:
        """A file something else wrote (the sprite tools): publish it and index it."""
        await self.session.announce(saved, origin=origin)

    @property
    def comfy_server(self):
        """The ComfyUI server the app manages (configured in Settings); stopped by :meth:`aclose`."""
        if self._comfy_server is None:
            from studio_core.comfy_server import for_core

            self._comfy_server = for_core(self)
        return self._comfy_server

    def low_disk_warning(self) -> str | None:
        """A sentence when the images disk is nearly full (blocking: one statvfs)."""
        from studio_core.storage.cleanup import low_disk_message

        return low_disk_message(self.paths, self.settings.current.low_disk_warning_mb)

    # -- closing -----------------------------------------------------------------------
    def work_in_flight(self) -> dict[str, int]:
        """What closing now would interrupt: jobs ``running`` and ``waiting``, images
        ``unsaved`` (kept in the recovery folder, but not in the gallery)."""
        entries = self.jobs.entries()
        return {"running": sum(1 for e in entries if e.state.value == "running"),
                "waiting": sum(1 for e in entries if e.state.value == "queued"),
                "unsaved": len(self.jobs.unsaved)}

    def on_close(self, closer: Callable[[], Awaitable[Any]]) -> None:
        """Register an async cleanup; run in reverse order by :meth:`aclose`, after the
        queue has stopped and before the index and settings close."""
        self._closers.append(closer)

    async def aclose(self, pending: str = "cancel") -> None:
        """Close in the order that loses nothing: the queue drains (``pending="wait"``), is
        cancelled (``"cancel"``) or is kept for next time (``"keep"``) → saves finish, with
        their post-processing and index rows → registered closers (the ComfyUI server) →
        index → settings written → providers → lock released."""
        if self._closed:
            return
        self._closed = True
        steps: list[tuple[str, Callable[[], Awaitable[Any]]]] = []
        jobs = getattr(self, "jobs", None)
        if jobs is not None:
            if pending == "keep":
                self.queue_store.freeze()
            steps.append(("queue", lambda: jobs.aclose(pending)))
        steps += [(f"closer {c!r}", c) for c in reversed(self._closers)]
        if self.index is not None:
            steps.append(("index", self.index.aclose))
        steps += [("settings", self._close_settings), ("providers", self.services.aclose),
                  ("queue file", self._close_queue_store)]
        for what, step in steps:
            try:
                await step()
            except Exception:
                log.exception("error while closing the %s", what)
        session = getattr(self, "session", None)
        if session is not None:
            session.close()
        if self.instance_lock is not None:
            await asyncio.to_thread(self.instance_lock.release)
        self.changes.close()

    async def _close_settings(self) -> None:
        await self.settings.flush()
        self.settings.close()

    async def _close_queue_store(self) -> None:
        await self.queue_store.flush()
        self.queue_store.close()
