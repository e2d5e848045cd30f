"""The change bus: order, isolation of a failing subscriber, unsubscribe, async iteration,
and the core's sources (queue, settings, index) publishing through it."""

from __future__ import annotations

import asyncio
import logging

from studio_core.changes import (
    ChangeBus,
    ImageIndexed,
    ImageSaved,
    JobPreview,
    Notice,
    SettingsChanged,
    SettingsWriteFailed,
)
from studio_core.models import GenerationRequest, JobFinished, JobImage, JobProgress, JobQueued, JobSaved, JobStarted
from tests.conftest import run_async
from tests.fakes import FakeProvider, png_bytes


def test_every_subscriber_sees_one_order_even_when_one_publishes_while_delivering():
    bus = ChangeBus()
    a, b = [], []

    def first(ev):
        a.append(ev.message)
        if ev.message == "1":
            bus.publish(Notice("2"))  # published during delivery of "1"

    bus.subscribe(first)
    bus.subscribe(lambda ev: b.append(ev.message))
    bus.publish(Notice("1"))
    assert a == b == ["1", "2"]  # b got "1" before "2", although "2" was published inside "1"


def test_a_raising_subscriber_is_logged_and_the_others_still_hear(caplog):
    bus = ChangeBus()
    heard = []

    def broken(ev):
        raise RuntimeError("boom")

    bus.subscribe(broken)
    bus.subscribe(heard.append)
    with caplog.at_level(logging.ERROR, logger="studio_core.changes"):
        bus.publish(Notice("x"))
        bus.publish(Notice("y"))
    assert [e.message for e in heard] == ["x", "y"]
    assert "boom" in caplog.text


def test_unsubscribe_and_kinds_filter():
    bus = ChangeBus()
    got = []
    sub = bus.subscribe(got.append, Notice)
    bus.publish(SettingsChanged(None))
    bus.publish(Notice("a"))
    sub()
    bus.publish(Notice("b"))
    assert [e.message for e in got] == ["a"] and not sub.active


def test_async_iteration_ends_when_the_bus_closes():
    async def main():
        bus = ChangeBus()
        got = []

        async def reader():
            async for ev in bus.events(Notice):
                got.append(ev.message)

        task = asyncio.create_task(reader())
        await asyncio.sleep(0)
        bus.publish(Notice("a"))
        bus.publish(SettingsChanged(None))
        bus.publish(Notice("b"))
        bus.close()
        await asyncio.wait_for(task, 5)
        assert got == ["a", "b"]

    run_async(main())


def test_core_publishes_job_settings_and_index_changes_in_order(paths):
    async def main():
        from studio_core.app_core import StudioCore

        core = await StudioCore.open(paths)
        seen = []
        core.changes.subscribe(seen.append)
        fake = FakeProvider(script=[JobStarted(""), JobProgress("", 1, 2, preview=png_bytes(8, 8)),
                                    JobImage("", png_bytes(), seed=3)])
        core.jobs.provider_for = lambda service: fake
        try:
            core.settings.update(width=512)
            job_id = core.jobs.submit(GenerationRequest("imp", service="fake"))
            async for ev in core.changes.events(JobFinished):
                if ev.job_id == job_id:
                    break
            kinds = [type(e).__name__ for e in seen]
            assert kinds[0] == "SettingsChanged" and seen[0].changed == frozenset({"width"})
            assert isinstance(seen[1], JobQueued)
            # the preview is split out of the progress, and the progress no longer carries bytes
            progress = next(e for e in seen if isinstance(e, JobProgress))
            assert progress.preview is None and any(isinstance(e, JobPreview) for e in seen)
            # saved → indexed → the queue's JobSaved → finished
            order = [k for k in kinds if k in ("ImageSaved", "ImageIndexed", "JobSaved", "JobFinished")]
            assert order == ["ImageSaved", "ImageIndexed", "JobSaved", "JobFinished"]
            assert isinstance(seen[kinds.index("ImageIndexed")], ImageIndexed)
            assert isinstance(seen[kinds.index("ImageSaved")], ImageSaved)
            assert isinstance(seen[kinds.index("JobSaved")], JobSaved)
        finally:
            await core.aclose()

    run_async(main())


def test_a_settings_write_that_fails_is_published(paths, monkeypatch):
    async def main():
        from studio_core import settings as settings_mod
        from studio_core.app_core import StudioCore
        from studio_core.errors import StorageError

        core = await StudioCore.open(paths)
        got = []
        core.changes.subscribe(got.append, SettingsWriteFailed)

        def refuse(path, text):
            raise StorageError("read-only", user_message="The folder is read-only.")

        monkeypatch.setattr(settings_mod, "atomic_write_text", refuse)
        try:
            core.settings.update(width=640)
            await core.settings.flush()
            for _ in range(50):
                if got:
                    break
                await asyncio.sleep(0.01)
            assert got and "read-only" in got[0].message
            assert core.settings.current.width == 640  # still in force in memory
        finally:
            monkeypatch.undo()
            await core.aclose()

    run_async(main())
