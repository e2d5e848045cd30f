"""JobQueue: runs generation requests one at a time per service, in order, and saves every image.

Threads: use from the asyncio loop only (the GUI's qasync loop or a script's). Listeners
are served by a :class:`studio_core.changes.ChangeBus` of the queue's own: callbacks run
synchronously on that loop, all in one order (an event emitted by a listener comes after
the one being delivered), and a listener that raises is logged and skipped.

Each finished image is written through ``save_image`` the moment it arrives, so a job
that later fails, times out or is cancelled keeps what it already produced. A write that
fails (disk full, folder gone) keeps the bytes under :attr:`JobQueue.unsaved` and hands
them to ``keep_unsaved`` (the core writes them to the recovery folder at once, so nothing
lives only in memory); :meth:`JobQueue.retry_save` writes them again, at most once.

Cancellation: a waiting job is simply removed; a running job's task is cancelled, which
the Provider contract turns into a cancel on the server. Writes already started are
never cancelled with the job.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import itertools
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable

from studio_core.changes import ChangeBus, Subscription
from studio_core.errors import GenerationFailed, StorageError, StudioError
from studio_core.models import (
    GenerationRequest,
    JobCancelled,
    JobEvent,
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
from studio_core.providers.base import Provider

log = logging.getLogger(__name__)

ProviderFor = Callable[[str], Provider]
SaveImage = Callable[[JobImage, GenerationRequest], Awaitable[SavedImage]]
Listener = Callable[["QueueEvent"], None]

FINISHED_KEPT = 50


class JobState(enum.StrEnum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"
    cancelled = "cancelled"


QueueEvent = JobEvent | JobSaved | JobSaveFailed


@dataclass(frozen=True, slots=True)
class JobEntry:
    """A snapshot of one job as the queue sees it. ``position`` is 0 while running, 1.. while waiting."""

    job_id: str
    request: GenerationRequest
    state: JobState
    position: int = 0
    lane: str = ""
    step: int = 0
    total: int = 0
    images: int = 0
    saved: tuple[Any, ...] = ()  # paths
    error: StudioError | None = None
    submitted: float = 0.0
    started: float | None = None
    ended: float | None = None


@dataclass(frozen=True, slots=True)
class UnsavedImage:
    """A finished image that could not be saved, kept for "Retry saving"."""

    unsaved_id: str
    job_id: str
    image: JobImage
    request: GenerationRequest
    error: StudioError
    path: Any = None  # where the recovery copy of the bytes is, if one could be written


KeepUnsaved = Callable[[UnsavedImage], Awaitable[Any]]
ForgetUnsaved = Callable[[str], Awaitable[None]]


class CloseMode(enum.StrEnum):
    """What :meth:`JobQueue.aclose` does with work in flight."""

    cancel = "cancel"  # cancel running and waiting jobs (they are forgotten)
    wait = "wait"  # let every job run to its end first
    keep = "keep"  # stop now; unfinished jobs stay persisted for "resume?" at the next start


@dataclass(slots=True)
class _Job:
    """The queue's record of one job, updated as its events pass."""

    job_id: str
    request: GenerationRequest
    lane: str
    submitted: float
    state: JobState = JobState.queued
    step: int = 0
    total: int = 0
    images: int = 0
    saved: list[Any] = field(default_factory=list)
    error: StudioError | None = None
    started: float | None = None
    ended: float | None = None
    server_job_id: str = ""
    task: asyncio.Task | None = None


@dataclass(slots=True)
class _Lane:
    """One lane's line of jobs and the worker running its current one."""

    pending: collections.deque[_Job] = field(default_factory=collections.deque)
    current: _Job | None = None
    worker: asyncio.Task | None = None


def default_lane(request: GenerationRequest) -> str:
    # One GPU server can only do one generation at a time (a 6 GB card runs out of memory
    # otherwise), and cloud services are rate-limited per account: one lane per service.
    return request.service


class JobQueue:
    """Queues :class:`GenerationRequest` s and runs them through the provider of their service.

    - ``submit`` never blocks and never raises for a bad service: problems surface as a
      ``JobFailed`` event (``provider_for`` may raise ProviderUnavailable/DependencyMissing;
      a fallback policy can live in a ``provider_for`` wrapper).
    - Jobs in the same lane (by default the same service) run one at a time, in
      submission order; different lanes run side by side.
    - Every event reaches listeners: ``JobQueued`` (again whenever the place changes),
      ``JobStarted``, ``JobProgress``, ``JobNotice``, ``JobImage``, ``JobSaved`` /
      ``JobSaveFailed``, then exactly one of ``JobFinished``, ``JobFailed``,
      ``JobCancelled``. The final event comes after every image of the job was written.
    """

    def __init__(self, provider_for: ProviderFor, save_image: SaveImage, *,
                 lane_for: Callable[[GenerationRequest], str] = default_lane,
                 disk_warning: Callable[[], str | None] | None = None,
                 keep_unsaved: KeepUnsaved | None = None, forget_unsaved: ForgetUnsaved | None = None):
        self.provider_for = provider_for
        self._keep_unsaved = keep_unsaved
        self._forget_unsaved = forget_unsaved
        # unsaved_id -> the one retry in flight (or done), so "Retry saving" twice never writes twice.
        self._retries: dict[str, asyncio.Future] = {}
        self.close_mode = CloseMode.cancel
        # Blocking check (statvfs) run in a thread before each job; a sentence means "warn".
        self._disk_warning = disk_warning
        self._save_image = save_image
        self._lane_for = lane_for
        self._lanes: dict[str, _Lane] = {}
        self._jobs: dict[str, _Job] = {}
        self._finished: collections.deque[_Job] = collections.deque(maxlen=FINISHED_KEPT)
        self._listeners = ChangeBus()
        self._save_tasks: set[asyncio.Task] = set()
        self.unsaved: dict[str, UnsavedImage] = {}
        self._ids = itertools.count(1)
        self._closed = False
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None

    # -- listening ----------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> Subscription:
        """Call ``listener(event)`` for every event; call the result to unsubscribe."""
        return self._listeners.subscribe(listener)

    def events(self) -> AsyncIterator[QueueEvent]:
        """Every event from now on, as an async iterator (ends when the queue closes)."""
        return self._listeners.events()

    def _emit(self, event: QueueEvent) -> None:
        self._listeners.publish(event)

    # -- queries ------------------------------------------------------------------------
    def entries(self, *, include_finished: bool = False) -> list[JobEntry]:
        """Running jobs first, then waiting ones in order; optionally the recent finished ones (newest first)."""
        out: list[JobEntry] = []
        for lane in self._lanes.values():
            # current stays set until the lane resumes, a moment after the job ended
            if lane.current is not None and lane.current.state is JobState.running:
                out.append(self._snapshot(lane.current, 0))
        for lane in self._lanes.values():
            out.extend(self._snapshot(job, n) for n, job in enumerate(lane.pending, start=1))
        if include_finished:
            out.extend(self._snapshot(job, 0) for job in reversed(self._finished))
        return out

    def entry(self, job_id: str) -> JobEntry | None:
        job = self._jobs.get(job_id)
        if job is None:
            job = next((j for j in self._finished if j.job_id == job_id), None)
            return self._snapshot(job, 0) if job else None
        return self._snapshot(job, self._position(job))

    @property
    def waiting(self) -> int:
        return sum(len(lane.pending) for lane in self._lanes.values())

    @property
    def busy(self) -> bool:
        return any(lane.pending or (lane.current is not None and lane.current.state is JobState.running)
                   for lane in self._lanes.values())

    def _position(self, job: _Job) -> int:
        lane = self._lanes.get(job.lane)
        if lane is None or job.state is not JobState.queued:
            return 0
        return next((n for n, j in enumerate(lane.pending, start=1) if j is job), 0)

    @staticmethod
    def _snapshot(job: _Job, position: int) -> JobEntry:
        return JobEntry(
            job_id=job.job_id, request=job.request, state=job.state, position=position, lane=job.lane,
            step=job.step, total=job.total, images=job.images, saved=tuple(job.saved), error=job.error,
            submitted=job.submitted, started=job.started, ended=job.ended,
        )

    # -- commands -----------------------------------------------------------------------
    def submit(self, request: GenerationRequest) -> str:
        """Queue ``request``; returns its job id. Safe to call from a plain Qt slot."""
        if self._closed:
            raise StudioError("job queue is closed", user_message="The studio is shutting down.")
        job_id = f"job-{next(self._ids)}-{uuid.uuid4().hex[:8]}"
        lane_id = self._lane_for(request)
        job = _Job(job_id, request, lane_id, submitted=time.monotonic())
        lane = self._lanes.setdefault(lane_id, _Lane())
        lane.pending.append(job)
        self._jobs[job_id] = job
        self._emit(JobQueued(job_id, len(lane.pending)))
        if lane.worker is None or lane.worker.done():
            lane.worker = self._get_loop().create_task(self._run_lane(lane_id), name=f"jobs:{lane_id}")
        return job_id

    def cancel(self, job_id: str) -> bool:
        """Cancel a waiting or running job. Returns False when it is unknown or already over."""
        job = self._jobs.get(job_id)
        if job is None:
            return False
        if job.state is JobState.queued:
            lane = self._lanes[job.lane]
            with contextlib.suppress(ValueError):
                lane.pending.remove(job)
            self._end(job, JobState.cancelled)
            self._emit(JobCancelled(job_id))
            self._announce_positions(lane)
            return True
        if job.state is JobState.running and job.task is not None and not job.task.done():
            job.task.cancel()
            return True
        return False

    def cancel_all(self) -> None:
        for lane in list(self._lanes.values()):
            for job in list(lane.pending):
                self.cancel(job.job_id)
            if lane.current is not None:
                self.cancel(lane.current.job_id)

    async def retry_save(self, unsaved_id: str) -> SavedImage:
        """Write a kept image again. Raises the StorageError if it fails again (the bytes stay kept).

        Calls for the same image while one is in flight, or after one succeeded, get that
        one's result: the image is written at most once.
        """
        pending = self._retries.get(unsaved_id)
        if pending is not None:
            return await asyncio.shield(pending)
        item = self.unsaved[unsaved_id]
        fut: asyncio.Future = self._get_loop().create_future()
        self._retries[unsaved_id] = fut
        try:
            saved = await self._save_image(item.image, item.request)
        except BaseException as exc:
            self._retries.pop(unsaved_id, None)
            err = exc if isinstance(exc, StudioError) else StorageError(f"{type(exc).__name__}: {exc}")
            if isinstance(exc, Exception):
                self.unsaved[unsaved_id] = UnsavedImage(unsaved_id, item.job_id, item.image, item.request, err,
                                                        item.path)
            fut.set_exception(err)
            fut.exception()  # retrieved: only callers waiting on it care
            if err is exc or not isinstance(exc, Exception):
                raise
            raise err from exc
        fut.set_result(saved)
        self.unsaved.pop(unsaved_id, None)
        if self._forget_unsaved is not None:
            try:
                await self._forget_unsaved(unsaved_id)
            except Exception:
                log.exception("recovery copy of %s not removed", unsaved_id)
        job = self._jobs.get(item.job_id) or next((j for j in self._finished if j.job_id == item.job_id), None)
        if job is not None:
            job.saved.append(saved.path)
        self._emit(JobSaved(item.job_id, saved, item.image.index))
        return saved

    def retried(self, unsaved_id: str) -> bool:
        """Whether a retry of ``unsaved_id`` is in flight or succeeded (retry_save returns its result)."""
        fut = self._retries.get(unsaved_id)
        return fut is not None and (not fut.done() or fut.exception() is None)

    def discard_unsaved(self, unsaved_id: str) -> None:
        self.unsaved.pop(unsaved_id, None)

    async def drain(self) -> None:
        """Wait until no job is waiting or running (new submissions still allowed)."""
        while self.busy:
            tasks = [lane.worker for lane in self._lanes.values() if lane.worker is not None and not lane.worker.done()]
            if not tasks:
                break
            await asyncio.wait(tasks)

    async def aclose(self, mode: CloseMode | str | None = None) -> None:
        """Refuse new submissions, then: ``cancel`` every job (waiting ones dropped, running
        ones cancelled on the server), ``wait`` for all of them to end, or ``keep`` them
        (stopped here; a persisted queue offers them again). Writes already started finish
        in every case."""
        self.close_mode = CloseMode(mode or self.close_mode)
        if self.close_mode is CloseMode.wait and not self._closed:
            await self.drain()
        self._closed = True
        self.cancel_all()
        tasks = [lane.worker for lane in self._lanes.values() if lane.worker is not None]
        tasks += [j.task for j in self._jobs.values() if j.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._save_tasks:
            await asyncio.gather(*self._save_tasks, return_exceptions=True)
        self._listeners.end_streams()

    # -- running ------------------------------------------------------------------------
    def _get_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.get_event_loop()
        return self._loop

    def _announce_positions(self, lane: _Lane) -> None:
        for n, job in enumerate(lane.pending, start=1):
            self._emit(JobQueued(job.job_id, n))

    def _end(self, job: _Job, state: JobState, error: StudioError | None = None) -> None:
        job.state = state
        job.error = error
        job.ended = time.monotonic()
        self._jobs.pop(job.job_id, None)
        self._finished.append(job)

    async def _run_lane(self, lane_id: str) -> None:
        lane = self._lanes[lane_id]
        while lane.pending and not self._closed:
            job = lane.pending.popleft()
            lane.current = job
            job.state = JobState.running
            job.started = time.monotonic()
            self._announce_positions(lane)
            job.task = self._get_loop().create_task(self._run_job(job), name=f"job:{job.job_id}")
            try:
                # wait() rather than await: a cancelled job must not end the lane.
                await asyncio.wait({job.task})
            finally:
                lane.current = None
                if not job.task.done():
                    # The lane itself was cancelled (loop shutdown): take the job with it;
                    # its own handler reports the cancellation.
                    job.task.cancel()
                elif job.state is JobState.running:
                    # Cancelled before its first step: _run_job never ran its handlers.
                    self._end(job, JobState.cancelled)
                    self._emit(JobCancelled(job.job_id))

    async def _run_job(self, job: _Job) -> None:
        saves: list[asyncio.Task] = []
        outcome: QueueEvent
        self._emit(JobStarted(job.job_id))
        try:
            if self._disk_warning is not None:
                warning = await asyncio.to_thread(self._disk_warning)
                if warning:
                    self._emit(JobNotice(job.job_id, warning))
            provider = self.provider_for(job.request.service)
            async with contextlib.aclosing(provider.generate(job.request, job_id=job.job_id)) as stream:
                async for ev in stream:
                    self._forward(job, ev, saves)
            outcome = JobFinished(job.job_id, job.images)
            state, error = JobState.done, None
        except asyncio.CancelledError:
            # Swallowed on purpose: cancelling a job ends the job, not the lane; uncancel()
            # keeps asyncio.timeout() and friends in callers working.
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            outcome = JobCancelled(job.job_id)
            state, error = JobState.cancelled, None
        except StudioError as exc:
            log.warning("job %s failed: %s", job.job_id, exc)
            outcome = JobFailed(job.job_id, exc)
            state, error = JobState.failed, exc
        except Exception as exc:
            log.exception("job %s failed unexpectedly", job.job_id)
            err = GenerationFailed(f"{type(exc).__name__}: {exc}")
            err.__cause__ = exc
            outcome = JobFailed(job.job_id, err)
            state, error = JobState.failed, err
        if saves:
            # Writes were started as their own tasks; wait for them so the final event
            # comes after every image is on disk (or kept in memory).
            try:
                await asyncio.wait(saves)
            except asyncio.CancelledError:
                self._end(job, JobState.cancelled)
                self._emit(JobCancelled(job.job_id))
                raise
        self._end(job, state, error)
        self._emit(outcome)

    def _forward(self, job: _Job, ev: JobEvent, saves: list[asyncio.Task]) -> None:
        if isinstance(ev, JobStarted):
            # The queue already announced the start; the provider's only adds the server id.
            job.server_job_id = ev.server_job_id
            return
        if isinstance(ev, JobProgress):
            job.step, job.total = ev.step, ev.total
        elif isinstance(ev, JobImage):
            job.images += 1
            task = self._get_loop().create_task(self._save(job, ev))
            self._save_tasks.add(task)
            task.add_done_callback(self._save_tasks.discard)
            saves.append(task)
        elif not isinstance(ev, JobNotice):
            log.debug("ignoring %s from provider", type(ev).__name__)
            return
        self._emit(ev)

    async def _save(self, job: _Job, image: JobImage) -> None:
        try:
            saved = await self._save_image(image, job.request)
        except Exception as exc:
            err = exc if isinstance(exc, StudioError) else StorageError(f"{type(exc).__name__}: {exc}")
            log.warning("job %s: image %d not saved: %s", job.job_id, image.index, err)
            # File-name safe on every platform: it names the recovery copy too.
            unsaved_id = f"{job.job_id}-{image.index}-{uuid.uuid4().hex[:6]}"
            item = UnsavedImage(unsaved_id, job.job_id, image, job.request, err)
            self.unsaved[unsaved_id] = item
            if self._keep_unsaved is not None:
                try:
                    path = await self._keep_unsaved(item)
                except Exception:
                    log.exception("image %s could not be kept in the recovery folder", unsaved_id)
                else:
                    self.unsaved[unsaved_id] = UnsavedImage(unsaved_id, job.job_id, image, job.request, err, path)
            self._emit(JobSaveFailed(job.job_id, unsaved_id, err))
            return
        job.saved.append(saved.path)
        self._emit(JobSaved(job.job_id, saved, image.index))
