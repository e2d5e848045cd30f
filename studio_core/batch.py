"""Batch runs: a prompt list's jobs through ``core.session``, persisted so nothing is lost or made twice.

A batch is written once when it starts (``batches/<id>.json``: its name, the request
template and every job with its stable id) and its small state file
(``batches/<id>.state.json``: running / paused / cancelled / finished, failures) is replaced
atomically on each change. Which jobs are *done* is never kept here: every image a batch
makes carries ``batch_id`` and ``batch_job`` in its saved metadata, and the gallery index
(which reads them back from the file after a crash) is asked. So a restart, or a kill
between "file written" and "state updated", resumes exactly the jobs with no image:
no duplicate, none missing.

Use from the loop (the GUI thread or a script)::

    manager = BatchManager(core)
    await manager.open()                        # unfinished batches from last time, not running
    run = await manager.start(name, template, jobs)
    run.pause(); run.resume(); run.cancel()
    await run.wait()

Progress is published on ``core.changes`` as :class:`BatchProgress`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from studio_core.errors import StorageError, StudioError
from studio_core.models import GenerationRequest
from studio_core.pool.prompt_list import BatchJob
from studio_core.storage.atomic import atomic_write_text

if TYPE_CHECKING:
    from studio_core.app_core import StudioCore

log = logging.getLogger(__name__)

FOLDER = "batches"
# Option keys an image of a batch carries into its metadata (and the index's columns).
OPT_BATCH, OPT_JOB, OPT_SET = "batch_id", "batch_job", "batch_set"
# Jobs handed to the queue at once: enough to keep a pool's servers fed, few enough that a
# pause stops new work within a job or two and the persisted queue stays small.
DEFAULT_WINDOW = 4
STATES = ("running", "paused", "cancelled", "finished")


@dataclass(frozen=True, slots=True)
class BatchProgress:
    """A batch moved on: ``done`` images saved (earlier runs included), ``failed`` jobs this
    run could not make, ``eta_s`` from this run's measured pace (None until two finish)."""

    batch_id: str
    name: str
    state: str
    total: int
    done: int
    failed: int
    running: int = 0
    eta_s: float | None = None
    message: str = ""


@dataclass(slots=True)
class BatchRecord:
    id: str
    name: str
    template: GenerationRequest
    jobs: list[BatchJob]
    created: float = 0.0
    state: str = "running"
    failed: dict[str, str] = field(default_factory=dict)  # job id -> why, in words

    @property
    def service(self) -> str:
        return self.template.service

    def request_for(self, job: BatchJob) -> GenerationRequest:
        req = self.template.replace(prompt=job.prompt, negative_prompt=job.negative, seed=job.seed,
                                    width=job.width, height=job.height, batch=1, member=None)
        return req.with_options(**{OPT_BATCH: self.id, OPT_JOB: job.id, OPT_SET: self.name})

    def spec_json(self) -> str:
        return json.dumps({"id": self.id, "name": self.name, "created": self.created,
                           "template": self.template.to_dict(),
                           "jobs": [dataclasses.asdict(j) for j in self.jobs]}, ensure_ascii=False)

    def state_json(self) -> str:
        return json.dumps({"state": self.state, "failed": self.failed}, ensure_ascii=False)


class BatchStore:
    """The ``batches/`` folder. Blocking: call through ``asyncio.to_thread``. Every write is
    atomic (temp file + rename), so a crash leaves the old file or the new one."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def _spec(self, batch_id: str) -> Path:
        return self.folder / f"{batch_id}.json"

    def _state(self, batch_id: str) -> Path:
        return self.folder / f"{batch_id}.state.json"

    def create(self, rec: BatchRecord) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self._spec(rec.id), rec.spec_json())
        atomic_write_text(self._state(rec.id), rec.state_json())

    def save_state(self, rec: BatchRecord) -> None:
        atomic_write_text(self._state(rec.id), rec.state_json())

    def load(self) -> tuple[list[BatchRecord], list[str]]:
        """Every batch on disk, oldest first, and a line for each file that cannot be read."""
        out: list[BatchRecord] = []
        problems: list[str] = []
        if not self.folder.is_dir():
            return out, problems
        for spec in sorted(self.folder.glob("*.json")):
            if spec.name.endswith(".state.json") or spec.name.startswith(".tmp-"):
                continue
            try:
                data = json.loads(spec.read_text("utf-8"))
                template = GenerationRequest.from_dict(data["template"])
                jobs = [BatchJob(**j) for j in data["jobs"]]
                rec = BatchRecord(str(data["id"]), str(data["name"]), template, jobs, float(data.get("created", 0)))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("batch file %s unreadable: %s", spec, exc)
                problems.append(f"The batch file {spec.name} could not be read and was left as it is.")
                continue
            try:
                state = json.loads(self._state(rec.id).read_text("utf-8"))
                rec.state = state.get("state") if state.get("state") in STATES else "paused"
                rec.failed = {str(k): str(v) for k, v in dict(state.get("failed") or {}).items()}
            except (OSError, ValueError, AttributeError, TypeError):
                rec.state = "paused"  # the spec is there; what it was doing is not: wait for the user
            out.append(rec)
        out.sort(key=lambda r: r.created)
        return out, problems

    def delete(self, batch_id: str) -> None:
        for p in (self._spec(batch_id), self._state(batch_id)):
            p.unlink(missing_ok=True)


def unique_name(wanted: str, taken: Iterable[str]) -> str:
    """``wanted`` or ``wanted 2``, ``wanted 3``… so the gallery's set filter tells batches apart."""
    base = " ".join((wanted or "").split())[:80] or "Batch"
    taken = set(taken)
    if base not in taken:
        return base
    m = re.match(r"(.*?) (\d+)$", base)
    stem, n = (m.group(1), int(m.group(2))) if m else (base, 1)
    while f"{stem} {n}" in taken or n == 1:
        n += 1
    return f"{stem} {n}"


class BatchRun:
    """One batch running through the session. Never more than ``window`` of its jobs are
    in the queue; pause stops handing out new ones (those running finish), resume goes on,
    cancel stops the running ones too. Failures are recorded and the run goes on."""

    def __init__(self, core: StudioCore, rec: BatchRecord, store: BatchStore, *, window: int = DEFAULT_WINDOW):
        self.core = core
        self.rec = rec
        self.store = store
        self.window = max(1, window)
        self.done: set[str] = set()
        self.running: dict[str, Any] = {}  # job id -> FrameSetHandle (None while being planned)
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._finish_times: list[float] = []
        self._started = 0.0

    # -- control -------------------------------------------------------------------------
    @property
    def state(self) -> str:
        return self.rec.state

    @property
    def total(self) -> int:
        return len(self.rec.jobs)

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"batch {self.rec.id}")

    async def wait(self) -> None:
        if self._task is not None:
            await asyncio.shield(self._task)

    def pause(self) -> None:
        if self.rec.state == "running":
            self._set_state("paused")

    def resume(self) -> None:
        if self.rec.state in ("paused", "cancelled", "running"):
            self.rec.failed.clear()  # a resumed batch tries its failed jobs again
            self._set_state("running")
            self.start()

    def cancel(self) -> None:
        if self.rec.state in ("running", "paused"):
            self._set_state("cancelled")
            for handle in list(self.running.values()):
                if handle is not None:
                    self.core.session.cancel(handle)

    # -- the loop ------------------------------------------------------------------------
    def _set_state(self, state: str) -> None:
        self.rec.state = state
        self._save_state_soon()
        self._wake.set()
        self._publish()

    def _save_state_soon(self) -> None:
        # Small file, one thread hop; a failure is told, the run's images are safe regardless.
        async def save() -> None:
            try:
                await asyncio.to_thread(self.store.save_state, self.rec)
            except StorageError as exc:
                self._publish(message=exc.user_message)

        asyncio.get_running_loop().create_task(save())

    async def saved_jobs(self) -> set[str]:
        """Job ids of this batch with an image on disk (the index, after its start-up reconcile)."""
        index = self.core.index
        if index is None:
            return set()
        await index.wait_reconciled()
        return await index.batch_jobs_saved(self.rec.id)

    def _claim_waiting(self) -> None:
        # Jobs of this batch the queue kept from a crashed run are this run's to make: offering
        # them again as "waiting" as well would make their images twice.
        mine = [w.job_id for w in self.core.session.waiting if w.request.option(OPT_BATCH) == self.rec.id]
        if mine:
            self.core.session.dismiss(mine)

    async def _run(self) -> None:
        self._claim_waiting()
        self.done |= await self.saved_jobs()
        self._started = time.monotonic()
        self._finish_times.clear()
        self._publish()
        pending = [j for j in self.rec.jobs if j.id not in self.done and j.id not in self.running]
        tasks: set[asyncio.Task] = set()
        while True:
            while self.rec.state == "running" and pending and len(self.running) < self.window:
                job = pending.pop(0)
                self.running[job.id] = None
                t = asyncio.get_running_loop().create_task(self._one(job))
                tasks.add(t)
                t.add_done_callback(tasks.discard)
            if not self.running and (self.rec.state != "running" or not pending):
                break
            self._wake.clear()
            await self._wake.wait()
        if self.rec.state == "running":
            missing = [j for j in self.rec.jobs if j.id not in self.done]
            self._set_state("finished" if not missing else "paused")
        else:
            self._publish()

    async def _one(self, job: BatchJob) -> None:
        from studio_core.session import GenerationOrder

        try:
            handle = await self.core.session.generate(GenerationOrder(self.rec.request_for(job)))
            self.running[job.id] = handle
            if self.rec.state == "cancelled":
                self.core.session.cancel(handle)
            result = await handle.result()
            if result.paths:
                self.done.add(job.id)
                self._finish_times.append(time.monotonic())
            elif result.failed:
                self._fail(job, result.failed[0][1] or "the job failed")
        except StudioError as exc:
            self._fail(job, exc.user_message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # one broken job must not stop the other 9,999
            log.exception("batch job %s failed", job.id)
            self._fail(job, f"{type(exc).__name__}: {exc}")
        finally:
            self.running.pop(job.id, None)
            self._wake.set()
            self._publish()

    def _fail(self, job: BatchJob, why: str) -> None:
        if self.rec.state == "cancelled":
            return
        self.rec.failed[job.id] = f"Row {job.row}: {why}"
        self._save_state_soon()

    # -- progress ------------------------------------------------------------------------
    def eta_s(self) -> float | None:
        """Seconds left from this run's pace (images per second since the first finished)."""
        times = self._finish_times
        left = self.total - len(self.done)
        if len(times) < 2 or left <= 0:
            return 0.0 if left <= 0 else None
        rate = (len(times) - 1) / max(times[-1] - times[0], 1e-6)
        return left / rate

    def progress(self, message: str = "") -> BatchProgress:
        return BatchProgress(self.rec.id, self.rec.name, self.rec.state, self.total, len(self.done),
                             len(self.rec.failed), len(self.running), self.eta_s(), message)

    def _publish(self, message: str = "") -> None:
        self.core.changes.publish(self.progress(message))


class BatchManager:
    """Every batch of this data folder: starts new ones, offers the unfinished ones again."""

    def __init__(self, core: StudioCore, *, window: int = DEFAULT_WINDOW):
        self.core = core
        self.store = BatchStore(Path(core.paths.data) / FOLDER)
        self.window = window
        self.runs: dict[str, BatchRun] = {}
        self.problems: list[str] = []
        self._opened = False

    async def open(self) -> list[BatchRun]:
        """Load the batches on disk (none runs by itself); returns the unfinished ones.
        Their jobs the queue kept from last time are claimed at once, so they are not also
        offered as waiting jobs."""
        if not self._opened:
            records, self.problems = await asyncio.to_thread(self.store.load)
            for rec in records:
                if rec.id not in self.runs:
                    if rec.state == "running":
                        rec.state = "paused"  # it was running when the app stopped: resume asks the user
                    self.runs[rec.id] = BatchRun(self.core, rec, self.store, window=self.window)
            self._opened = True
            for run in self.unfinished():
                run._claim_waiting()
        return self.unfinished()

    def unfinished(self) -> list[BatchRun]:
        return [r for r in self.runs.values() if r.state in ("running", "paused")]

    def names(self) -> list[str]:
        return [r.rec.name for r in self.runs.values()]

    async def start(self, name: str, template: GenerationRequest, jobs: list[BatchJob], *,
                    window: int | None = None) -> BatchRun:
        """Persist a new batch, then run it. Raises StorageError (nothing started) when it cannot be written."""
        if not jobs:
            raise StudioError("empty batch", user_message="The list makes no images: add at least one prompt.")
        await self.open()
        rec = BatchRecord(uuid.uuid4().hex[:12], unique_name(name, self.names()), template.replace(seed=None),
                          list(jobs), time.time())
        await asyncio.to_thread(self.store.create, rec)
        run = BatchRun(self.core, rec, self.store, window=window or self.window)
        self.runs[rec.id] = run
        run.start()
        return run

    async def forget(self, batch_id: str) -> None:
        """Drop a batch from the list (its images stay in the gallery)."""
        run = self.runs.pop(batch_id, None)
        if run is not None:
            run.cancel()
        await asyncio.to_thread(self.store.delete, batch_id)
