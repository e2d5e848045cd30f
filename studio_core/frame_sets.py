"""Following the jobs of one frame set and handing over its images in frame order.

Images arrive in completion order, and a batched job brings several; each saved image
goes in its slot (job order, then image index), so a walk cycle stays in playing order
whatever the service did first. A failed or cancelled job loses only its own frames: the
set still finishes with the others, and :attr:`FrameSetResult.failed` names the missing
frames with the reason. Transparent copies made by the pipeline are matched to their frame.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from studio_core.changes import FrameSetFinished, FrameSetProgress, ImageProcessed
from studio_core.models import JobCancelled, JobFailed, JobFinished, JobSaved, JobSaveFailed

log = logging.getLogger(__name__)


def _why(error: BaseException | None) -> str:
    if error is None:
        return "failed"
    return getattr(error, "user_message", "") or str(error) or type(error).__name__


@dataclass(frozen=True)
class FrameSetResult:
    """A finished set. ``paths``/``names``/``animations`` line up (missing frames left out);
    ``transparent`` maps a frame name to its transparent copy where one was made."""

    set_id: str
    kind: str
    paths: tuple[Path, ...]
    names: tuple[str, ...]
    animations: tuple[str | None, ...]
    failed: tuple[tuple[str, str], ...]
    transparent: dict[str, Path] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def sprite_paths(self) -> tuple[Path, ...]:
        """Per frame the transparent copy when there is one, else the image itself."""
        return tuple(self.transparent.get(n, p) for n, p in zip(self.names, self.paths))


@dataclass
class _JobSlots:
    job_id: str
    first: int
    count: int
    saved: dict[int, Path] = field(default_factory=dict)
    extra: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    outcome: str | None = None  # None while running; "" when clean, else why frames are missing

    def add(self, index: int, path: Path) -> None:
        if 0 <= index < self.count and index not in self.saved:
            self.saved[index] = path
        else:
            self.extra.append(path)

    def ordered(self) -> list[Path | None]:
        slots: list[Path | None] = [self.saved.get(i) for i in range(self.count)]
        extra = list(self.extra)
        for i, p in enumerate(slots):
            if p is None and extra:
                slots[i] = extra.pop(0)
        return slots + extra


@dataclass
class _Set:
    set_id: str
    kind: str
    names: tuple[str, ...]
    animations: tuple[str, ...]
    meta: dict[str, Any]
    jobs: dict[str, _JobSlots]
    total: int
    future: asyncio.Future
    failed: list[tuple[str, str]] = field(default_factory=list)
    copies: dict[Path, Path] = field(default_factory=dict)  # original -> transparent copy

    def name(self, n: int) -> str:
        return self.names[n] if n < len(self.names) else f"{self.kind}_{n:02d}"

    def done_images(self) -> int:
        return sum(len(j.saved) + len(j.extra) for j in self.jobs.values())


class FrameSetTracker:
    """Fed every change (``on_change``) by the session; publishes FrameSetProgress and
    FrameSetFinished through ``publish`` and resolves each set's future."""

    def __init__(self, publish: Callable[[Any], None]):
        self._publish = publish
        self._sets: dict[str, _Set] = {}
        self._by_job: dict[str, _Set] = {}

    @property
    def running(self) -> tuple[str, ...]:
        return tuple(self._sets)

    def track(self, plan: Any, job_ids: list[str], *, entry_of: Callable[[str], Any]) -> asyncio.Future:
        """Follow ``job_ids`` (one per ``plan.requests``) as the set ``plan.set_id``."""
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        jobs: dict[str, _JobSlots] = {}
        first = 0
        for job_id, req in zip(job_ids, plan.requests):
            count = max(1, req.batch)
            jobs[job_id] = _JobSlots(job_id, first, count)
            first += count
        anims = tuple(str(a) for a in plan.meta.get("animations") or ())
        fs = _Set(plan.set_id, plan.kind, tuple(plan.names), anims, dict(plan.meta), jobs, first, fut)
        self._sets[fs.set_id] = fs
        for job_id, slots in jobs.items():
            self._by_job[job_id] = fs
            entry = entry_of(job_id)
            if entry is None:
                self._job_over(fs, slots, "The job was not found in the queue.")
            elif entry.state.value in ("done", "failed", "cancelled"):
                for i, path in enumerate(entry.saved):
                    slots.add(i, Path(path))
                why = "" if entry.state.value == "done" else (
                    "cancelled" if entry.state.value == "cancelled" else _why(entry.error))
                self._job_over(fs, slots, why)
        if fs.set_id in self._sets:
            self._check_done(fs)
        return fut

    def on_change(self, ev: Any) -> None:
        if isinstance(ev, ImageProcessed):
            fs = self._by_job.get(ev.job_id)
            if fs is not None and ev.copy is not None:
                fs.copies[Path(ev.source)] = Path(ev.copy.path)
            return
        job_id = getattr(ev, "job_id", None)
        fs = self._by_job.get(job_id) if job_id else None
        if fs is None:
            return
        slots = fs.jobs[job_id]
        if isinstance(ev, JobSaved):
            slots.add(ev.index, Path(ev.saved.path))
            self._progress(fs)
        elif isinstance(ev, JobSaveFailed):
            slots.problems.append(f"not saved: {_why(ev.error)}")
        elif isinstance(ev, JobFinished):
            self._job_over(fs, slots, "")
        elif isinstance(ev, JobFailed):
            self._job_over(fs, slots, _why(ev.error))
        elif isinstance(ev, JobCancelled):
            self._job_over(fs, slots, "cancelled")

    def _job_over(self, fs: _Set, slots: _JobSlots, why: str) -> None:
        if slots.outcome is not None:
            return
        slots.outcome = why
        self._by_job.pop(slots.job_id, None)
        problems = list(slots.problems)
        for offset, path in enumerate(slots.ordered()[:slots.count]):
            if path is None:
                reason = problems.pop(0) if problems else (why or "the service returned no image")
                fs.failed.append((fs.name(slots.first + offset), reason))
        self._progress(fs)
        self._check_done(fs)

    def _progress(self, fs: _Set) -> None:
        self._publish(FrameSetProgress(fs.set_id, fs.done_images(), fs.total, len(fs.failed)))

    def _check_done(self, fs: _Set) -> None:
        if any(j.outcome is None for j in fs.jobs.values()):
            return
        self._sets.pop(fs.set_id, None)
        by_name = dict(zip(fs.names, fs.animations)) if len(fs.animations) == len(fs.names) else {}
        paths: list[Path] = []
        names: list[str] = []
        for slots in fs.jobs.values():
            for offset, path in enumerate(slots.ordered()):
                if path is not None:
                    paths.append(path)
                    names.append(fs.name(slots.first + offset) if offset < slots.count
                                 else f"{fs.kind}_extra_{len(names):02d}")
        transparent = {n: fs.copies[p] for n, p in zip(names, paths) if p in fs.copies}
        result = FrameSetResult(fs.set_id, fs.kind, tuple(paths), tuple(names), tuple(by_name.get(n) for n in names),
                                tuple(fs.failed), transparent,
                                dict(fs.meta, names=names, all_names=list(fs.names), expected=fs.total,
                                     failed=list(fs.failed)))
        log.info("frame set %s (%s): %d of %d images", fs.set_id, fs.kind, len(paths), fs.total)
        if not fs.future.done():
            fs.future.set_result(result)
        self._publish(FrameSetFinished(result))
