"""JobQueue against FakeProvider: order, one at a time, cancel, failures keep images, save failures."""

from __future__ import annotations

import asyncio

import pytest

from studio_core.errors import DiskFull, GenerationFailed, ProviderUnavailable, ServerError, StudioError
from studio_core.jobs import JobQueue, JobSaved, JobSaveFailed, JobState
from studio_core.models import (
    GenerationRequest,
    JobCancelled,
    JobFailed,
    JobFinished,
    JobImage,
    JobNotice,
    JobProgress,
    JobQueued,
    JobStarted,
)
from studio_core.storage.images import read_metadata
from tests.conftest import run_async
from tests.fakes import FakeProvider, png_bytes


def req(prompt: str = "a red potion", **kw) -> GenerationRequest:
    return GenerationRequest(prompt=prompt, service=kw.pop("service", "fake"), **kw)


async def open_core(paths):
    from studio_core.app_core import StudioCore

    return await StudioCore.open(paths)


async def wait_for(cond, timeout: float = 5.0):
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.005)


class Recorder:
    def __init__(self, queue: JobQueue):
        self.events: list = []
        queue.subscribe(self.events.append)

    def of(self, kind, job_id: str | None = None) -> list:
        return [e for e in self.events if isinstance(e, kind) and (job_id is None or e.job_id == job_id)]

    def ended(self, job_id: str) -> bool:
        return bool(self.of((JobFinished, JobFailed, JobCancelled), job_id))


def test_runs_in_order_one_at_a_time_and_saves_with_metadata(paths):
    async def main():
        core = await open_core(paths)
        fake = FakeProvider(steps=3, delay=0.01)
        core.jobs.provider_for = lambda service: fake
        rec = Recorder(core.jobs)
        running: list[str] = []
        overlap = []

        def watch(ev):
            if isinstance(ev, JobStarted):
                if running:
                    overlap.append(ev.job_id)
                running.append(ev.job_id)
            elif isinstance(ev, (JobFinished, JobFailed, JobCancelled)):
                running.remove(ev.job_id)

        core.jobs.subscribe(watch)
        ids = [core.jobs.submit(req(f"sprite {n}", seed=n)) for n in range(3)]
        assert [e.position for e in rec.of(JobQueued)][:3] == [1, 2, 3]
        await wait_for(lambda: all(rec.ended(i) for i in ids))
        assert not overlap
        assert [e.job_id for e in rec.of(JobStarted)] == ids
        assert [r.prompt for r in fake.requests] == ["sprite 0", "sprite 1", "sprite 2"]
        saved = rec.of(JobSaved)
        assert len(saved) == 3 and all(s.saved.path.exists() for s in saved)
        meta = read_metadata(saved[1].saved.path)
        assert meta.request.prompt == "sprite 1" and meta.seed == 1
        # the final event follows the save of the job's image
        kinds = [type(e) for e in rec.events if getattr(e, "job_id", None) == ids[0]]
        assert kinds.index(JobSaved) < kinds.index(JobFinished)
        assert core.jobs.entry(ids[0]).state is JobState.done
        assert not core.jobs.busy and core.jobs.entries() == []
        done = core.jobs.entries(include_finished=True)
        assert [e.job_id for e in done] == ids[::-1] and all(len(e.saved) == 1 for e in done)
        await core.aclose()

    run_async(main())


def test_waiting_jobs_learn_their_new_place(paths):
    async def main():
        core = await open_core(paths)
        core.jobs.provider_for = lambda s: FakeProvider(steps=2, delay=0.02)
        rec = Recorder(core.jobs)
        a, b, c = (core.jobs.submit(req(p)) for p in "abc")
        await wait_for(lambda: rec.of(JobStarted, a))
        entries = core.jobs.entries()
        assert [(e.job_id, e.state, e.position) for e in entries] == [
            (a, JobState.running, 0), (b, JobState.queued, 1), (c, JobState.queued, 2)]
        assert rec.of(JobQueued, c)[-1].position == 2
        assert core.jobs.waiting == 2
        await core.aclose()

    run_async(main())


def test_cancel_pending_removes_it_and_others_move_up(paths):
    async def main():
        core = await open_core(paths)
        fake = FakeProvider(steps=3, delay=0.02)
        core.jobs.provider_for = lambda s: fake
        rec = Recorder(core.jobs)
        a, b, c = (core.jobs.submit(req(p)) for p in ("one", "two", "three"))
        await wait_for(lambda: rec.of(JobStarted, a))
        assert rec.of(JobQueued, c)[-1].position == 2
        assert core.jobs.cancel(b) is True
        assert rec.of(JobCancelled, b)
        assert rec.of(JobQueued, c)[-1].position == 1
        await wait_for(lambda: rec.ended(a) and rec.ended(c))
        assert [r.prompt for r in fake.requests] == ["one", "three"]
        assert core.jobs.entry(b).state is JobState.cancelled
        assert core.jobs.cancel(b) is False
        await core.aclose()

    run_async(main())


def test_cancel_running_reaches_the_provider_and_the_lane_goes_on(paths):
    async def main():
        core = await open_core(paths)
        fake = FakeProvider(steps=50, delay=0.05)
        core.jobs.provider_for = lambda s: fake
        rec = Recorder(core.jobs)
        a = core.jobs.submit(req("slow"))
        b = core.jobs.submit(req("next"))
        await wait_for(lambda: rec.of(JobProgress, a))
        assert core.jobs.cancel(a)
        await wait_for(lambda: rec.ended(a))
        assert rec.of(JobCancelled, a)
        assert a in fake.cancelled
        await wait_for(lambda: rec.of(JobStarted, b))
        core.jobs.cancel(b)
        await wait_for(lambda: rec.ended(b))
        await core.aclose()

    run_async(main())


def test_failure_after_images_keeps_the_saved_images(paths):
    async def main():
        core = await open_core(paths)
        script = [JobStarted(""), JobProgress("", 1, 2),
                  JobImage("", png_bytes(), seed=7, index=0),
                  JobNotice("", "reconnecting"),
                  JobImage("", png_bytes(color=(0, 0, 255, 255)), seed=8, index=1),
                  ServerError("socket died")]
        core.jobs.provider_for = lambda s: FakeProvider(script=script)
        rec = Recorder(core.jobs)
        a = core.jobs.submit(req("two images then boom", batch=2))
        await wait_for(lambda: rec.ended(a))
        failed = rec.of(JobFailed, a)
        assert failed and isinstance(failed[0].error, ServerError)
        assert rec.of(JobNotice, a)[0].message == "reconnecting"
        paths_saved = [e.saved.path for e in rec.of(JobSaved, a)]
        assert len(paths_saved) == 2 and all(p.exists() for p in paths_saved)
        entry = core.jobs.entry(a)
        assert entry.state is JobState.failed and len(entry.saved) == 2
        await core.aclose()

    run_async(main())


def test_unexpected_exception_becomes_a_studio_error(paths):
    async def main():
        core = await open_core(paths)
        core.jobs.provider_for = lambda s: FakeProvider(script=[KeyError("boom")])
        rec = Recorder(core.jobs)
        a = core.jobs.submit(req())
        await wait_for(lambda: rec.ended(a))
        err = rec.of(JobFailed, a)[0].error
        assert isinstance(err, GenerationFailed) and err.user_message
        await core.aclose()

    run_async(main())


def test_provider_unavailable_is_a_failed_job_not_a_crash(paths):
    async def main():
        core = await open_core(paths)

        def provider_for(service):
            raise ProviderUnavailable("connect refused", user_message="Start ComfyUI, or pick a cloud service.")

        core.jobs.provider_for = provider_for
        rec = Recorder(core.jobs)
        a = core.jobs.submit(req())
        await wait_for(lambda: rec.ended(a))
        assert rec.of(JobFailed, a)[0].error.user_message == "Start ComfyUI, or pick a cloud service."
        await core.aclose()

    run_async(main())


def test_save_failure_keeps_the_bytes_and_retry_saves_them(paths, monkeypatch):
    async def main():
        core = await open_core(paths)
        core.jobs.provider_for = lambda s: FakeProvider(steps=1)
        real_save = core.save_image
        failing = {"on": True}

        async def save(image, request):
            if failing["on"]:
                raise DiskFull("No space left on device")
            return await real_save(image, request)

        core.jobs._save_image = save
        rec = Recorder(core.jobs)
        a = core.jobs.submit(req("keep me"))
        await wait_for(lambda: rec.ended(a))
        assert rec.of(JobFinished, a)  # the generation itself succeeded
        fail = rec.of(JobSaveFailed, a)[0]
        assert isinstance(fail.error, DiskFull)
        kept = core.jobs.unsaved[fail.unsaved_id]
        assert kept.image.data.startswith(b"\x89PNG")
        with pytest.raises(DiskFull):
            await core.jobs.retry_save(fail.unsaved_id)
        assert fail.unsaved_id in core.jobs.unsaved
        failing["on"] = False
        saved = await core.jobs.retry_save(fail.unsaved_id)
        assert saved.path.exists() and fail.unsaved_id not in core.jobs.unsaved
        assert rec.of(JobSaved, a)[0].saved == saved
        assert core.jobs.entry(a).saved == (saved.path,)
        await core.aclose()

    run_async(main())


def test_separate_services_run_side_by_side(paths):
    async def main():
        core = await open_core(paths)
        fakes = {"local": FakeProvider("local", steps=20, delay=0.02), "cloud": FakeProvider("cloud", steps=1)}
        core.jobs.provider_for = fakes.__getitem__
        rec = Recorder(core.jobs)
        slow = core.jobs.submit(req(service="local"))
        quick = core.jobs.submit(req(service="cloud"))
        await wait_for(lambda: rec.ended(quick))
        assert not rec.ended(slow)
        await core.aclose()
        assert rec.of(JobCancelled, slow)

    run_async(main())


def test_async_iterator_and_aclose_cancels_everything(paths):
    async def main():
        core = await open_core(paths)
        fake = FakeProvider(steps=100, delay=0.05)
        core.jobs.provider_for = lambda s: fake
        seen: list = []

        async def consume():
            async for ev in core.jobs.events():
                seen.append(ev)

        consumer = asyncio.create_task(consume())
        await asyncio.sleep(0)
        a = core.jobs.submit(req("running"))
        b = core.jobs.submit(req("waiting"))
        await wait_for(lambda: any(isinstance(e, JobProgress) for e in seen))
        await core.aclose()
        await asyncio.wait_for(consumer, 2)  # the iterator ends with the queue
        cancelled = {e.job_id for e in seen if isinstance(e, JobCancelled)}
        assert cancelled == {a, b}
        assert a in fake.cancelled
        with pytest.raises(StudioError):
            core.jobs.submit(req())

    run_async(main())


def test_a_listener_that_raises_does_not_stop_the_queue(paths):
    async def main():
        core = await open_core(paths)
        core.jobs.provider_for = lambda s: FakeProvider(steps=1)

        def bad(ev):
            raise RuntimeError("listener bug")

        core.jobs.subscribe(bad)
        rec = Recorder(core.jobs)
        a = core.jobs.submit(req())
        await wait_for(lambda: rec.ended(a))
        assert rec.of(JobFinished, a)
        await core.aclose()

    run_async(main())


def test_a_job_cancelled_before_its_first_step_is_reported_once(paths):
    async def main():
        core = await open_core(paths)
        fake = FakeProvider(steps=2, delay=0.01)
        core.jobs.provider_for = lambda s: fake
        rec = Recorder(core.jobs)
        a = core.jobs.submit(req("quick cancel"))
        await wait_for(lambda: core.jobs.entry(a).state is JobState.running)
        core.jobs.cancel(a)  # its task exists but has not run a step yet
        b = core.jobs.submit(req("after"))
        await wait_for(lambda: rec.ended(a) and rec.ended(b))
        assert len(rec.of(JobCancelled, a)) == 1 and rec.of(JobFinished, b)
        assert len([e for e in core.jobs.entries(include_finished=True) if e.job_id == a]) == 1
        await core.aclose()

    run_async(main())


def test_low_disk_warning_is_a_notice_before_the_job_and_the_job_still_runs(tmp_path):
    import asyncio

    from studio_core.jobs import JobQueue
    from studio_core.models import GenerationRequest, JobNotice
    from tests.fakes import FakeProvider

    async def go():
        saved = []

        async def save(image, request):
            saved.append(image)
            from studio_core.models import SavedImage

            return SavedImage(path=tmp_path / f"{len(saved)}.png", request=request, created="now")

        q = JobQueue(lambda s: FakeProvider(), save, disk_warning=lambda: "Only 12 MB free on the disk that holds your images.")
        events = []
        q.subscribe(events.append)
        job = q.submit(GenerationRequest(prompt="x", service="fake"))
        for _ in range(200):
            if q.entry(job).state.value in ("done", "failed"):
                break
            await asyncio.sleep(0.01)
        await q.aclose()
        return events, saved

    events, saved = asyncio.run(go())
    notices = [e for e in events if isinstance(e, JobNotice)]
    assert notices and "12 MB free" in notices[0].message
    assert len(saved) == 1
