"""The session: the one path every generation takes, for the window and for scripts alike.

    order → expand (prompt style, transparent-background plan, variants / animation
    frames) → ``core.jobs`` (one lane per service) → provider, through the fallback policy
    → :meth:`Session.store`: write the file → ImageSaved → index → post-processing (the
    in-app transparent copy, itself indexed) → JobSaved

A plain script drives it like the window does::

    core = await StudioCore.open(paths)
    handle = await core.session.generate(GenerationOrder(request, FrameSetSpec("animation", directions=4),
                                                         transparent=True))
    result = await handle.result()          # FrameSetResult: paths in frame order, names, failures
    async for ev in core.changes.events(): ...   # or follow every change

Once a file is on disk the image is saved, whatever a subscriber, the index or the
post-processing does afterwards: those problems are logged and told as notices, never
turned into a failed save (so "Retry saving" can never write a second copy).
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from studio_core.changes import ImageProcessed, ImageSaved, Notice, QueueRestored
from studio_core.errors import StudioError
from studio_core.frame_inputs import PoseKey, needs_pose_images, pose_keys, render_pose_images, with_frame_inputs
from studio_core.frame_plans import FramePlan, FrameSetSpec, plan_frames
from studio_core.inputs import ReferenceImage
from studio_core.frame_sets import FrameSetResult, FrameSetTracker
from studio_core.models import (
    BackgroundMode,
    GenerationRequest,
    JobCancelled,
    JobFailed,
    JobFinished,
    JobImage,
    JobQueued,
    SavedImage,
)
from studio_core.queue_store import WaitingJob

if TYPE_CHECKING:
    from studio_core.app_core import StudioCore
    from studio_core.input_store import InputStore
    from studio_core.recovery import RecoveredImage
    from studio_core.sprites.background_plan import BackgroundPlan
    from studio_core.sprites.styles import StyleBook, StylePreset

log = logging.getLogger(__name__)

OBJECT_INFO_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class GenerationOrder:
    """What the user asked for with one Generate click."""

    request: GenerationRequest
    frames: FrameSetSpec = FrameSetSpec()
    style: StylePreset | None = None
    transparent: bool = False
    # Consistent animation (studio_core.frame_inputs): the character every frame is drawn
    # from, and whether each animation frame follows its pose template through a pose control.
    character: ReferenceImage | None = None
    pose_control: bool = False


@dataclass
class FrameSetHandle:
    """A submitted order: its plan, its jobs, and the result once every job is over."""

    set_id: str
    plan: FramePlan
    job_ids: tuple[str, ...]
    _future: asyncio.Future

    async def result(self) -> FrameSetResult:
        return await asyncio.shield(self._future)

    @property
    def done(self) -> bool:
        return self._future.done()


def background_plan_for(service: str, *, object_info: Mapping[str, Any] | None = None,
                        custom_workflow: bool = False) -> BackgroundPlan:
    """Blocking (walks a big object_info): the best way to a transparent background. A
    ComfyUI removal node counts only if the built-in graph can wire it; a custom workflow
    is sent as it is, so its background is keyed out here."""
    from studio_core.sprites.background_plan import choose_background_method

    if service == "comfyui" and custom_workflow:
        return choose_background_method("", object_info=None)
    if service != "comfyui" or not object_info:
        return choose_background_method(service)
    from studio_core.providers.comfy import workflow

    return choose_background_method(service, object_info=object_info,
                                    node_usable=lambda n: workflow.image_node_wiring(object_info, n) is not None)


def with_background(request: GenerationRequest, plan: BackgroundPlan) -> GenerationRequest:
    from studio_core.sprites.background_plan import BackgroundPlan, apply_background_plan

    if plan.prompt_suffix and plan.prompt_suffix in request.prompt:
        plan = BackgroundPlan(plan.method, plan.node, plan.options)  # a reused prompt already asks for it
    return apply_background_plan(request, plan)


class Session:
    def __init__(self, core: StudioCore):
        self.core = core
        self.rng = random.Random()
        self.waiting: list[WaitingJob] = []  # from last time, until resumed or dismissed
        self._tracker = FrameSetTracker(core.changes.publish)
        self._sub = core.changes.subscribe(self._tracker.on_change)
        self._styles: StyleBook | None = None
        self._object_info: tuple[str, Mapping[str, Any] | None] | None = None
        self._tasks: set[asyncio.Task] = set()
        self._restores: dict[str, asyncio.Future] = {}

    # -- expansion ---------------------------------------------------------------------
    async def style_book(self) -> StyleBook:
        if self._styles is None:
            from studio_core.sprites.styles import load_styles

            self._styles = await asyncio.to_thread(load_styles)
        return self._styles

    async def background_plan(self, request: GenerationRequest) -> BackgroundPlan:
        """The transparent-background plan for ``request`` (asks ComfyUI for its node list)."""
        info = None
        if request.service == "comfyui" and request.workflow is None:
            info = await self._comfy_object_info()
        return await asyncio.to_thread(background_plan_for, request.service, object_info=info,
                                       custom_workflow=request.workflow is not None)

    async def _comfy_object_info(self) -> Mapping[str, Any] | None:
        url = self.core.settings.current.comfy_url
        if self._object_info is not None and self._object_info[0] == url:
            return self._object_info[1]
        try:
            fetch = getattr(self.core.services.provider("comfyui"), "object_info", None)
            info = await asyncio.wait_for(fetch(), OBJECT_INFO_TIMEOUT_S) if fetch is not None else None
        except (StudioError, TimeoutError, OSError) as exc:
            log.info("no ComfyUI node list for the background plan: %s", exc)
            return None
        self._object_info = (url, info if isinstance(info, Mapping) else None)
        return self._object_info[1]

    def batch_limit(self, request: GenerationRequest, catalog: Any = None) -> int:
        """Images one job may make: ComfyUI's Batch setting; a cloud model's catalog
        ``max_batch`` (when ``catalog`` is given); else 1."""
        if request.service == "comfyui":
            return max(1, request.batch)
        if catalog is not None and request.service in catalog.providers:
            return catalog.provider(request.service).model(request.model).max_batch
        return 1

    @property
    def input_store(self) -> InputStore:
        """Where input images (init, masks, references, pose skeletons) are kept by content."""
        store = getattr(self.core, "input_store", None)
        if store is None:
            from studio_core.input_store import InputStore

            store = InputStore.in_data_folder(self.core.paths.data)
        return store

    async def pose_images(self, plan: FramePlan) -> dict[PoseKey, str]:
        """The pose skeletons ``plan``'s frames follow, drawn and stored in a thread."""
        return await asyncio.to_thread(render_pose_images, pose_keys(plan), self.input_store)

    def expand(self, order: GenerationOrder, *, book: StyleBook | None = None,
               background: BackgroundPlan | None = None, max_batch: int = 1,
               poses: Mapping[PoseKey, str] | None = None) -> FramePlan:
        """Pure: the requests ``order`` queues, in frame order (style words first, then the
        background plan, so the key-colour words end the prompt), each carrying the order's
        character and, with ``poses`` (:meth:`pose_images`), its frame's pose control."""
        request = order.request
        if order.style is not None and book is not None:
            from studio_core.sprites.styles import apply_preset

            request = apply_preset(request, order.style, book)
        if order.transparent:
            request = with_background(request, background or background_plan_for(
                request.service, custom_workflow=request.workflow is not None))
        plan = plan_frames(request, order.frames, max_batch=max_batch, rng=self.rng)
        return with_frame_inputs(plan, character=order.character,
                                 poses=poses if needs_pose_images(plan, pose_control=order.pose_control) else None)

    async def plan(self, order: GenerationOrder | GenerationRequest) -> FramePlan:
        order = order if isinstance(order, GenerationOrder) else GenerationOrder(order)
        book = await self.style_book() if order.style is not None else None
        background = await self.background_plan(order.request) if order.transparent else None
        catalog = None
        if order.frames.mode == "variants" and order.request.service != "comfyui":
            from studio_core.providers.cloud import catalog as cloud_catalog

            catalog = await asyncio.to_thread(cloud_catalog.load)
        plan = self.expand(order, book=book, background=background,
                           max_batch=self.batch_limit(order.request, catalog))
        if needs_pose_images(plan, pose_control=order.pose_control):
            plan = with_frame_inputs(plan, poses=await self.pose_images(plan))
        return plan

    # -- submitting --------------------------------------------------------------------
    def submit_plan(self, plan: FramePlan) -> FrameSetHandle:
        """Queue every request of ``plan`` and follow them as one set (never blocks)."""
        job_ids = [self.core.jobs.submit(r) for r in plan.requests]
        fut = self._tracker.track(plan, job_ids, entry_of=self.core.jobs.entry)
        return FrameSetHandle(plan.set_id, plan, tuple(job_ids), fut)

    async def generate(self, order: GenerationOrder | GenerationRequest) -> FrameSetHandle:
        """Expand ``order`` and queue it; ``await handle.result()`` for the images."""
        return self.submit_plan(await self.plan(order))

    def cancel(self, handle: FrameSetHandle) -> None:
        for job_id in handle.job_ids:
            self.core.jobs.cancel(job_id)

    # -- the pipeline after the provider -------------------------------------------------
    async def store(self, image: JobImage, request: GenerationRequest) -> SavedImage:
        """The queue's save step: write ``image`` (raises StorageError/NotAnImage, nothing
        half-written), then index and post-process it. Only the write can fail."""
        from studio_core.fallback import request_for_image
        from studio_core.storage.images import save_generated_image

        request = request_for_image(request, image)
        saved = await asyncio.to_thread(
            save_generated_image, image.data, request, folder=self.core.paths.images, seed=image.seed,
            info=dict(image.info), extra_text=dict(image.extra_text))
        # Saved. From here on a problem is told, never raised.
        await self.announce(saved, job_id=image.job_id, index=image.index, origin="job")
        if request.background.mode is BackgroundMode.in_app:
            await self._transparent_copy(image.job_id, saved)
        return saved

    async def announce(self, saved: SavedImage, *, job_id: str = "", index: int = 0, origin: str = "job") -> None:
        """A file now on disk: tell the subscribers, then index it (awaited, so it is in
        the index before the job's end is announced)."""
        self.core.changes.publish(ImageSaved(saved, job_id, index, origin))
        index = self.core.index
        if index is not None:
            # If the row can't be written now the next start's reconcile adds it: only log.
            await index.on_image_saved(saved)

    async def _transparent_copy(self, job_id: str, saved: SavedImage) -> None:
        from studio_core.sprites.auto_transparency import make_transparent_copy

        source = Path(saved.path)
        try:
            copy = await asyncio.to_thread(make_transparent_copy, source)
        except StudioError as exc:
            log.info("no transparent copy of %s: %s", source.name, exc)
            event = ImageProcessed(job_id, source, "transparent",
                                   message=f"{source.name}: {exc.user_message} The original is kept.")
        except Exception as exc:  # a disk error on the copy must not look like a failed save
            log.exception("transparent copy of %s failed", source.name)
            event = ImageProcessed(job_id, source, "transparent",
                                   message=f"{source.name}: no transparent copy ({type(exc).__name__}). "
                                           "The original is kept.")
        else:
            await self.announce(copy, job_id=job_id, origin="processed")
            event = ImageProcessed(job_id, source, "transparent", copy=copy)
        self.core.changes.publish(event)

    # -- the queue from last time ------------------------------------------------------
    def restored(self, waiting: list[WaitingJob]) -> None:
        self.waiting = list(waiting)
        if waiting:
            self.core.changes.publish(QueueRestored(tuple(waiting)))

    def resume(self, job_ids: list[str] | None = None) -> list[str]:
        """Queue again the waiting jobs (all when ``job_ids`` is None); returns the new job ids."""
        chosen = [w for w in self.waiting if job_ids is None or w.job_id in job_ids]
        new_ids = [self.core.jobs.submit(w.request) for w in chosen]
        self.dismiss([w.job_id for w in chosen])
        return new_ids

    def dismiss(self, job_ids: list[str] | None = None) -> None:
        """Forget waiting jobs without running them."""
        gone = [w for w in self.waiting if job_ids is None or w.job_id in job_ids]
        self.waiting = [w for w in self.waiting if w not in gone]
        self.core.queue_store.drop(*(w.job_id for w in gone))
        self.core.changes.publish(QueueRestored(tuple(self.waiting)))

    def on_queue_event(self, ev: Any) -> None:
        """Keeps the persisted queue in step with the live one (a queue listener)."""
        store = self.core.queue_store
        if isinstance(ev, JobQueued) and ev.job_id not in store:
            entry = self.core.jobs.entry(ev.job_id)
            if entry is not None:
                store.put(ev.job_id, entry.request, paid=_paid(entry.request.service))
        elif isinstance(ev, (JobFinished, JobFailed, JobCancelled)):
            store.drop(ev.job_id)

    # -- images that could not be saved ------------------------------------------------
    async def keep_unsaved(self, item: Any) -> Path:
        """The queue's ``keep_unsaved``: bytes to the recovery folder at once."""
        reason = getattr(item.error, "user_message", "") or str(item.error)
        path = await asyncio.to_thread(self.core.recovery.keep, item.unsaved_id, item.image, item.request, reason)
        self.core.changes.publish(Notice(f"An image could not be saved and is kept in {path.parent}. "
                                         "Use Retry saving, or find it under Recovered images.", "warning",
                                         item.job_id))
        return path

    async def forget_unsaved(self, unsaved_id: str) -> None:
        await asyncio.to_thread(self.core.recovery.forget, unsaved_id)

    async def recovered(self) -> list[RecoveredImage]:
        """Images kept in the recovery folder (this run's and earlier runs')."""
        return await asyncio.to_thread(self.core.recovery.list)

    async def restore(self, unsaved_id: str) -> SavedImage:
        """Save a kept image into the gallery (at most once, however often it is asked)."""
        if unsaved_id in self.core.jobs.unsaved or self.core.jobs.retried(unsaved_id):
            return await self.core.jobs.retry_save(unsaved_id)
        pending = self._restores.get(unsaved_id)
        if pending is not None:
            return await asyncio.shield(pending)
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._restores[unsaved_id] = fut
        try:
            image, request = await asyncio.to_thread(self.core.recovery.load, unsaved_id)
            saved = await self.store(image, request)
        except BaseException as exc:
            self._restores.pop(unsaved_id, None)
            fut.set_exception(exc)
            fut.exception()
            raise
        fut.set_result(saved)
        await self.forget_unsaved(unsaved_id)
        return saved

    async def discard(self, unsaved_id: str) -> None:
        self.core.jobs.discard_unsaved(unsaved_id)
        await self.forget_unsaved(unsaved_id)

    # -- closing -----------------------------------------------------------------------
    def close(self) -> None:
        self._sub.close()


def _paid(service: str) -> bool:
    from studio_core.services import service_info

    try:
        return service_info(service).kind == "cloud"
    except StudioError:
        return False
