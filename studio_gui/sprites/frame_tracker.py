"""FrameSetTracker: follows the jobs of one frame set and hands over its images in frame order.

    tracker = FrameSetTracker(core)
    tracker.set_finished.connect(on_set)           # (paths: list[Path], meta: dict)
    tracker.track(job_ids, "animation", {"names": [...], ...})

Images arrive in completion order, and a batched job brings several; the tracker puts
each saved image in its slot (job order, then image index) so a walk cycle stays in
playing order whatever the service did first. A failed or cancelled job loses only its
own frames: the set still finishes with the others, and ``meta["failed"]`` names the
missing frames with the reason.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, Signal

from studio_core.app_core import StudioCore
from studio_core.jobs import JobSaved, JobSaveFailed, JobState, QueueEvent
from studio_core.models import JobCancelled, JobFailed, JobFinished
from studio_gui.errors import user_text

log = logging.getLogger(__name__)

_OVER = (JobState.done, JobState.failed, JobState.cancelled)


@dataclass
class _JobSlots:
    job_id: str
    first: int  # frame number of the job's first image
    count: int  # images the job should bring (its request's batch)
    saved: dict[int, Path] = field(default_factory=dict)
    extra: list[Path] = field(default_factory=list)  # images beyond ``count`` or with a repeated index
    problems: list[str] = field(default_factory=list)  # save failures, in arrival order
    outcome: str | None = None  # None while running; "" when it finished cleanly, else why frames are missing

    def add(self, index: int, path: Path) -> None:
        if 0 <= index < self.count and index not in self.saved:
            self.saved[index] = path
        else:
            self.extra.append(path)

    def ordered(self) -> list[Path | None]:
        """One entry per expected image; extras fill the gaps first (a provider that numbers
        images across calls differently still gives all of them), then go at the end."""
        slots: list[Path | None] = [self.saved.get(i) for i in range(self.count)]
        extra = list(self.extra)
        for i, p in enumerate(slots):
            if p is None and extra:
                slots[i] = extra.pop(0)
        return slots + list(extra)


@dataclass
class _FrameSet:
    set_id: int
    kind: str
    meta: dict[str, Any]
    jobs: dict[str, _JobSlots]
    total: int

    def done_images(self) -> int:
        return sum(len(j.saved) + len(j.extra) for j in self.jobs.values())

    def name(self, n: int) -> str:
        names = self.meta.get("names") or ()
        return str(names[n]) if n < len(names) else f"{self.kind}_{n:02d}"


class FrameSetTracker(QObject):
    """Collects the saved images of frame sets from ``core.jobs``.

    Runs on the GUI thread (the queue calls listeners on the qasync loop). Several sets
    may run at once; each ``track`` returns the set's id, which ``meta["set_id"]`` repeats.
    """

    set_finished = Signal(list, dict)  # paths in frame order (missing frames left out), meta
    set_progress = Signal(int, int, int, int)  # set id, images saved, images expected, frames lost
    frame_failed = Signal(int, str, str)  # set id, frame name, plain-words reason

    def __init__(self, core: StudioCore, parent: QObject | None = None):
        super().__init__(parent)
        self.core = core
        self._sets: dict[int, _FrameSet] = {}
        self._by_job: dict[str, _FrameSet] = {}
        self._ids = itertools.count(1)
        self._unsubscribe = core.jobs.subscribe(self._on_event)
        self.destroyed.connect(self._unsubscribe)

    @property
    def running(self) -> int:
        return len(self._sets)

    def is_running(self, set_id: int) -> bool:
        return set_id in self._sets

    def meta(self, set_id: int) -> dict[str, Any]:
        fs = self._sets.get(set_id)
        return dict(fs.meta) if fs else {}

    def track(self, job_ids: list[str], kind: str, meta: dict[str, Any] | None = None) -> int:
        """Follow ``job_ids`` (in frame order) as one set; ``meta["names"]`` names the frames."""
        set_id = next(self._ids)
        jobs: dict[str, _JobSlots] = {}
        first = 0
        for job_id in job_ids:
            entry = self.core.jobs.entry(job_id)
            count = max(1, entry.request.batch) if entry is not None else 1
            jobs[job_id] = _JobSlots(job_id, first, count)
            first += count
        fs = _FrameSet(set_id, kind, dict(meta or {}, kind=kind, set_id=set_id), jobs, first)
        self._sets[set_id] = fs
        for job_id, slots in jobs.items():
            self._by_job[job_id] = fs
            entry = self.core.jobs.entry(job_id)
            # A job can end before track() is called (an instant failure): read what it left.
            if entry is None:
                self._job_over(fs, slots, "The job was not found in the queue.")
            elif entry.state in _OVER:
                for i, path in enumerate(entry.saved):
                    slots.add(i, Path(path))
                self._job_over(fs, slots, self._why(entry.state, entry.error))
        if fs.set_id in self._sets:
            self._check_done(fs)
        return set_id

    # -- events -----------------------------------------------------------------------
    def _on_event(self, ev: QueueEvent) -> None:
        if not shiboken6.isValid(self):
            self._unsubscribe()
            return
        fs = self._by_job.get(ev.job_id)
        if fs is None:
            return
        slots = fs.jobs[ev.job_id]
        match ev:
            case JobSaved():
                slots.add(ev.index, Path(ev.saved.path))
                self._progress(fs)
            case JobSaveFailed():
                slots.problems.append(f"not saved: {user_text(ev.error)}")
            case JobFinished():
                self._job_over(fs, slots, "")
            case JobFailed():
                self._job_over(fs, slots, self._why(JobState.failed, ev.error))
            case JobCancelled():
                self._job_over(fs, slots, self._why(JobState.cancelled, None))

    @staticmethod
    def _why(state: JobState, error: BaseException | None) -> str:
        if state is JobState.cancelled:
            return "cancelled"
        if state is JobState.failed:
            return user_text(error) if error is not None else "failed"
        return ""

    def _job_over(self, fs: _FrameSet, slots: _JobSlots, why: str) -> None:
        if slots.outcome is not None:
            return
        slots.outcome = why
        self._by_job.pop(slots.job_id, None)
        problems = list(slots.problems)
        for offset, path in enumerate(slots.ordered()[:slots.count]):
            if path is None:
                reason = problems.pop(0) if problems else (why or "the service returned no image")
                name = fs.name(slots.first + offset)
                fs.meta.setdefault("failed", []).append((name, reason))
                self.frame_failed.emit(fs.set_id, name, reason)
        self._progress(fs)
        self._check_done(fs)

    def _progress(self, fs: _FrameSet) -> None:
        self.set_progress.emit(fs.set_id, fs.done_images(), fs.total, len(fs.meta.get("failed", ())))

    def _check_done(self, fs: _FrameSet) -> None:
        if any(j.outcome is None for j in fs.jobs.values()):
            return
        self._sets.pop(fs.set_id, None)
        paths: list[Path] = []
        names: list[str] = []
        for slots in fs.jobs.values():
            for offset, path in enumerate(slots.ordered()):
                if path is not None:
                    paths.append(path)
                    names.append(fs.name(slots.first + offset) if offset < slots.count
                                 else f"{fs.kind}_extra_{len(names):02d}")
        meta = dict(fs.meta, names=names, expected=fs.total)
        meta.setdefault("failed", [])
        log.info("frame set %d (%s): %d of %d images", fs.set_id, fs.kind, len(paths), fs.total)
        self.set_finished.emit(paths, meta)
