"""Nothing lost: a SIGKILL mid-queue, a failed save, a close while a job finishes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from studio_core.errors import StorageError
from studio_core.models import GenerationRequest, JobImage, JobStarted
from studio_core.storage.records import ImageQuery
from tests.conftest import run_async
from tests.fakes import FakeProvider, png_bytes

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    sys.path.insert(0, {root!r})
    from studio_core.app_core import StudioCore
    from studio_core.models import GenerationRequest
    from studio_core.paths import AppPaths
    from tests.fakes import FakeProvider

    async def main():
        core = await StudioCore.open(AppPaths.portable(Path({home!r})), lock=True, use_keyring=False)
        slow = FakeProvider(steps=1000, delay=0.05)
        core.jobs.provider_for = lambda service: slow
        core.jobs.submit(GenerationRequest("running knight", service="comfyui", seed=1))
        core.jobs.submit(GenerationRequest("waiting slime", service="comfyui", seed=2))
        core.jobs.submit(GenerationRequest("paid dragon", service="openai", seed=3))
        while not slow.requests:
            await asyncio.sleep(0.01)
        await core.queue_store.flush()
        print("READY", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
""")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX; Windows ends processes with TerminateProcess")
def test_sigkill_mid_queue_loses_no_request_and_nothing_reruns_by_itself(paths, isolated_home):
    proc = subprocess.Popen([sys.executable, "-c", CHILD.format(root=str(ROOT), home=str(isolated_home))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "READY", proc.stderr.read()
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.stderr.close()

    async def main():
        from studio_core.app_core import StudioCore

        # The dead process's lock is stale: taken over.
        core = await StudioCore.open(paths, lock=True, use_keyring=False)
        fake = FakeProvider(steps=1)
        core.jobs.provider_for = lambda service: fake
        try:
            waiting = core.session.waiting
            assert [w.request.prompt for w in waiting] == ["running knight", "waiting slime", "paid dragon"]
            assert [w.paid for w in waiting] == [False, False, True]
            await asyncio.sleep(0.05)
            assert fake.requests == [] and not core.jobs.busy  # waiting, not re-run
            new = core.session.resume([waiting[1].job_id])
            assert len(new) == 1
            await core.jobs.drain()
            assert [r.prompt for r in fake.requests] == ["waiting slime"]
            assert [w.request.prompt for w in core.session.waiting] == ["running knight", "paid dragon"]
        finally:
            await core.aclose()
        # what was neither resumed nor dismissed is still offered at the next start
        core = await StudioCore.open(paths, use_keyring=False)
        try:
            assert [w.request.prompt for w in core.session.waiting] == ["running knight", "paid dragon"]
            core.session.dismiss()
            assert core.session.waiting == []
        finally:
            await core.aclose()
        core = await StudioCore.open(paths, use_keyring=False)
        try:
            assert core.session.waiting == []
        finally:
            await core.aclose()

    run_async(main())


def test_closing_with_keep_offers_the_unfinished_jobs_next_time(paths):
    async def main():
        from studio_core.app_core import StudioCore

        core = await StudioCore.open(paths)
        core.jobs.provider_for = lambda service: FakeProvider(steps=1000, delay=0.05)
        core.jobs.submit(GenerationRequest("one", service="fake"))
        core.jobs.submit(GenerationRequest("two", service="fake"))
        await asyncio.sleep(0.1)
        assert core.work_in_flight() == {"running": 1, "waiting": 1, "unsaved": 0}
        await core.aclose(pending="keep")
        core = await StudioCore.open(paths)
        try:
            assert [w.request.prompt for w in core.session.waiting] == ["one", "two"]
        finally:
            await core.aclose()  # default "cancel": nothing new is added; the waiting stay
        core = await StudioCore.open(paths)
        try:
            assert len(core.session.waiting) == 2
        finally:
            await core.aclose()

    run_async(main())


def test_the_last_image_of_a_job_finishing_during_close_is_in_the_index_without_a_reconcile(paths):
    """Close with pending="wait" while the job is still producing: its images, the
    transparent copies included, are rows in the index file when aclose returns."""
    import sqlite3

    from studio_core.session import background_plan_for, with_background

    async def main():
        from studio_core.app_core import StudioCore

        core = await StudioCore.open(paths)
        script = [JobStarted(""), JobImage("", png_bytes(), seed=1, index=0), 0.3,
                  JobImage("", png_bytes(), seed=2, index=1)]
        core.jobs.provider_for = lambda service: FakeProvider(script=script)
        request = with_background(GenerationRequest("last imp", service="fake", batch=2),
                                  background_plan_for("fake"))
        core.jobs.submit(request)
        await asyncio.sleep(0.1)  # the first image is in, the second not yet
        await core.aclose(pending="wait")

    run_async(main())
    conn = sqlite3.connect(paths.index_file)
    try:
        paths_in_index = [r[0] for r in conn.execute("SELECT path FROM images")]
    finally:
        conn.close()
    # two images and their two transparent copies
    assert len(paths_in_index) == 4 and sum("_transparent" in p for p in paths_in_index) == 2


def _failing_first_writes(monkeypatch, fails: int):
    from studio_core.storage import images

    real = images.save_generated_image
    calls = {"n": 0}

    def flaky(*a, **kw):
        calls["n"] += 1
        if calls["n"] <= fails:
            raise StorageError("disk gone", user_message="The images folder is gone.")
        return real(*a, **kw)

    monkeypatch.setattr(images, "save_generated_image", flaky)
    return calls


def test_unsaved_bytes_go_to_the_recovery_folder_and_retry_never_writes_twice(paths, monkeypatch):
    _failing_first_writes(monkeypatch, 1)

    async def main():
        from studio_core.app_core import StudioCore

        core = await StudioCore.open(paths)
        core.jobs.provider_for = lambda service: FakeProvider(steps=1)
        try:
            core.jobs.submit(GenerationRequest("lost imp", service="fake", seed=4))
            await core.jobs.drain()
            [(uid, item)] = core.jobs.unsaved.items()
            assert item.path is not None and Path(item.path).exists()  # on disk at once
            [kept] = await core.session.recovered()
            assert kept.unsaved_id == uid and kept.request.prompt == "lost imp" and "gone" in kept.reason
            # two clicks on "Retry saving" while the first is in flight, then a third
            first, second = await asyncio.gather(core.jobs.retry_save(uid), core.jobs.retry_save(uid))
            third = await core.session.restore(uid)
            assert first.path == second.path
            assert third.path == first.path
            assert len(list(paths.images.glob("*.png"))) == 1
            assert await core.session.recovered() == []
        finally:
            await core.aclose()

    run_async(main())


def test_recovered_images_are_offered_and_saved_after_a_restart(paths, monkeypatch):
    calls = _failing_first_writes(monkeypatch, 1)

    async def main():
        from studio_core.app_core import StudioCore

        core = await StudioCore.open(paths)
        core.jobs.provider_for = lambda service: FakeProvider(steps=1)
        core.jobs.submit(GenerationRequest("kept imp", service="fake", seed=9))
        await core.jobs.drain()
        await core.aclose()  # the app closes with the image unsaved

        core = await StudioCore.open(paths)
        try:
            [kept] = await core.session.recovered()
            saved, again = await asyncio.gather(core.session.restore(kept.unsaved_id),
                                                core.session.restore(kept.unsaved_id))
            assert saved.path == again.path and saved.seed == 9
            assert len(list(paths.images.glob("*.png"))) == 1
            assert await core.session.recovered() == []
            recs = await core.index.query(ImageQuery())
            assert [r.prompt for r in recs] == ["kept imp"]
        finally:
            await core.aclose()
        assert calls["n"] == 2

    run_async(main())


def test_a_subscriber_failing_after_the_write_does_not_make_the_image_unsaved(paths):
    async def main():
        from studio_core.app_core import StudioCore
        from studio_core.changes import ImageSaved

        core = await StudioCore.open(paths)
        core.jobs.provider_for = lambda service: FakeProvider(steps=1)

        def broken(ev):
            raise RuntimeError("subscriber bug")

        core.changes.subscribe(broken, ImageSaved)
        assert not hasattr(core, "image_saved")  # the old list is gone: the bus is the one way
        try:
            job_id = core.jobs.submit(GenerationRequest("safe imp", service="fake"))
            await core.jobs.drain()
            entry = core.jobs.entry(job_id)
            assert entry.state.value == "done" and len(entry.saved) == 1
            assert core.jobs.unsaved == {}
            assert len(list(paths.images.glob("*.png"))) == 1
        finally:
            await core.aclose()

    run_async(main())


def test_old_metadata_with_option_keys_loads_into_typed_fields():
    from studio_core.models import BackgroundMode, GenerationRequest

    old = {"prompt": "slime", "service": "comfyui", "options": {
        "workflow": '{"1": {"class_type": "X", "inputs": {}}}', "workflow_map": {"prompt": "1.text", "negative": None},
        "background_method": "comfy_node", "background_node": "BRIA_RMBG", "provider": "fal-ai",
        "style_preset": "character/pixel", "tiled_vae": True}}
    req = GenerationRequest.from_dict(old)
    assert req.options == (("tiled_vae", True),)  # only the provider extra stays an option
    assert req.workflow.graph.startswith('{"1"') and req.workflow.mapping == {"prompt": "1.text", "negative": None}
    assert req.background.mode is BackgroundMode.comfy_node and req.background.node == "BRIA_RMBG"
    assert req.cloud_provider == "fal-ai" and req.style_preset == "character/pixel"
    # old readers still work until they move
    assert req.option("workflow_map") == {"prompt": "1.text", "negative": None}
    assert req.option("background_method") == "comfy_node" and req.option("background") is None
    # and the new form round-trips
    assert GenerationRequest.from_dict(req.to_dict()) == req
    native = GenerationRequest.from_dict({"prompt": "x", "options": {"background": "transparent"}})
    assert native.background.mode is BackgroundMode.provider
    assert native.with_options(background_method=None).background.mode is BackgroundMode.none
    assert req.with_options(workflow=None).workflow is None
