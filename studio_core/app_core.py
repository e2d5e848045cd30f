"""StudioCore: the object a front end (the Qt GUI, a script, a test) opens and closes.

It owns the settings, the secrets store, the gallery index, the providers and the job
queue, and closes all of them in :meth:`aclose`. Usable without Qt::

    core = await StudioCore.open(AppPaths.portable(Path("studio-home")))
    try:
        ...
    finally:
        await core.aclose()
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

from studio_core.models import GenerationRequest, JobImage, SavedImage
from studio_core.paths import AppPaths
from studio_core.secrets import SecretStore
from studio_core.services import ServiceRegistry
from studio_core.settings import SettingsStore

log = logging.getLogger(__name__)


class StudioCore:
    def __init__(self, paths: AppPaths, *, use_keyring: bool = True):
        self.paths = paths
        self.settings = SettingsStore(paths.settings_file)
        self.secrets = SecretStore(paths.secrets_file, use_keyring=use_keyring)
        self.services = ServiceRegistry(self.settings, self.secrets)
        # Called on the loop after each image is written (the gallery index subscribes).
        self.image_saved: list[Callable[[SavedImage], Awaitable[None] | None]] = []
        # Lines for the user about what happened while opening (an index rebuilt…).
        self.startup_messages: list[str] = []
        self.index = None  # studio_core.storage.index.ImageIndex once open(); None if unusable
        self._closers: list[Callable[[], Awaitable[Any]]] = []
        self._closed = False
        self._index_opened = False
        self._comfy_server = None  # studio_core.comfy_server.ManagedServer, built on first use

    @classmethod
    async def open(cls, paths: AppPaths, *, use_keyring: bool = True, open_index: bool = True) -> StudioCore:
        """Open everything; with ``open_index=False`` the caller opens the gallery index later
        through :meth:`ensure_index` (the GUI does, right after its window first paints)."""
        await asyncio.to_thread(paths.ensure)
        core = cls(paths, use_keyring=use_keyring)
        if open_index:
            await core.ensure_index()
        from studio_core.jobs import JobQueue
        from studio_core.providers.cloud.fallback import fallback_provider_for, request_for_image

        # The lambdas look the registry and settings up on each job, so a provider rebuilt
        # after a settings change (or a test's stand-in) and the current fallback order are used.
        # Images are saved under the service that really made them (a fallback may have).
        core.jobs = JobQueue(
            fallback_provider_for(lambda service: core.services.provider(service),
                                  lambda: core.settings.current.fallback_services),
            lambda image, request: core.save_image(image, request_for_image(request, image)),
            disk_warning=core.low_disk_warning,
        )
        core.on_close(core.jobs.aclose)
        return core

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
        self.image_saved.append(self.index.on_image_saved)
        self.on_close(self.index.aclose)

    async def save_image(self, image: JobImage, request: GenerationRequest) -> SavedImage:
        """Write a finished image (off the loop's thread) and tell the subscribers.

        Raises StorageError/NotAnImage; the bytes are never half-written.
        """
        # Imported here: Pillow costs ~50 ms, which start-up need not pay.
        from studio_core.storage.images import save_generated_image

        saved = await asyncio.to_thread(
            save_generated_image,
            image.data,
            request,
            folder=self.paths.images,
            seed=image.seed,
            info=dict(image.info),
            extra_text=dict(image.extra_text),
        )
        for cb in list(self.image_saved):
            result = cb(saved)
            if asyncio.iscoroutine(result):
                await result
        return saved

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

    async def _close_settings(self) -> None:
        await self.settings.flush()
        self.settings.close()

    def on_close(self, closer: Callable[[], Awaitable[Any]]) -> None:
        """Register an async cleanup; run in reverse order by :meth:`aclose`."""
        self._closers.append(closer)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._closers.insert(0, self._close_settings)
        self._closers.insert(1, self.services.aclose)
        for closer in reversed(self._closers):
            try:
                await closer()
            except Exception:
                log.exception("error while closing")
