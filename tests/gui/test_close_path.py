"""Closing the window with work in flight asks; the answer decides what happens to the
queue (issue 12, "nothing lost"). The dialog is answered programmatically."""

from __future__ import annotations

import asyncio
import json
import os
import signal

import pytest

from studio_core.models import GenerationRequest
from studio_gui.close_dialog import CANCEL, KEEP, WAIT, WorkInFlight, describe
from tests.fakes import FakeProvider
from tests.gui.conftest import wait_until


class Gated(FakeProvider):
    """Runs until its gate opens, so a job is 'running' for as long as a test needs."""

    def __init__(self, id: str):
        super().__init__(id, steps=1)
        self.gate = asyncio.Event()

    async def generate(self, request, *, job_id):
        async for ev in super().generate(request, job_id=job_id):
            yield ev
            await self.gate.wait()


@pytest.fixture
def running_job(core, loop, monkeypatch):
    prov = Gated("replicate")
    monkeypatch.setattr(core.services, "provider", lambda sid: prov)
    job_id = core.jobs.submit(GenerationRequest("a red potion", service="replicate"))
    loop.run_until_complete(wait_until(lambda: prov.requests and core.work_in_flight()["running"] == 1))
    return prov, job_id


def queue_file_ids(core) -> list[str]:
    path = core.queue_store.path
    if not path.exists():
        return []
    return [j["job_id"] for j in json.loads(path.read_text())["jobs"]]


def test_nothing_in_flight_closes_without_asking(window, loop):
    assert window.close()
    assert window.close_dialog is None and window.close_choice == KEEP


def test_a_running_job_asks_and_keep_is_the_default(window, loop, core, running_job):
    prov, job_id = running_job
    assert not window.close(), "the window closed without asking"
    dlg = window.close_dialog
    assert dlg is not None and dlg.isVisible() and window.isVisible()
    assert dlg.defaultButton() is dlg.buttons[KEEP]
    assert "1 job is running" in dlg.text()
    assert "paid service" in dlg.informativeText()
    dlg.choose(KEEP)
    assert window.close_choice == KEEP and not window.isVisible()
    loop.run_until_complete(core.aclose(pending=window.close_choice))
    # Kept for next time (never re-run by itself); the paid job was stopped, not run again.
    assert queue_file_ids(core) == [job_id]
    assert len(prov.requests) == 1


def test_escape_means_dont_close(window, loop, core, running_job, qtbot):
    from PySide6.QtCore import Qt

    window.close()
    dlg = window.close_dialog
    qtbot.keyClick(dlg, Qt.Key.Key_Escape)
    assert window.isVisible() and window.close_choice is None and window.close_dialog is None
    assert core.work_in_flight()["running"] == 1
    running_job[0].gate.set()


def test_cancel_and_quit_cancels_the_job(window, loop, core, running_job):
    prov, job_id = running_job
    window.close()
    window.close_dialog.choose(CANCEL)
    assert window.close_choice == CANCEL and not window.isVisible()
    loop.run_until_complete(core.aclose(pending=window.close_choice))
    # Stopped, not finished, and not kept: nothing waits for next time.
    assert list(core.paths.images.rglob("*.png")) == []
    assert queue_file_ids(core) == []


def test_wait_keeps_the_window_until_the_job_is_done(window, loop, core, running_job):
    prov, _job_id = running_job
    window.close()
    window.close_dialog.choose(WAIT)
    assert window.isVisible() and window.close_choice is None
    assert "closes when" in window.status.currentMessage()
    prov.gate.set()
    loop.run_until_complete(wait_until(lambda: not window.isVisible()))
    assert window.close_choice == WAIT
    assert core.work_in_flight() == {"running": 0, "waiting": 0, "unsaved": 0}
    assert len(list(core.paths.images.rglob("*.png"))) == 1


@pytest.mark.skipif(os.name == "nt", reason="POSIX signal")
def test_sigterm_keeps_the_queue_without_a_dialog(window, loop, core, running_job, qapp):
    from studio_gui import shutdown_signals

    closed = asyncio.Event()
    qapp.lastWindowClosed.connect(closed.set)
    uninstall = shutdown_signals.install(qapp, window, closed)
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        loop.run_until_complete(wait_until(lambda: not window.isVisible()))
    finally:
        uninstall()
        qapp.lastWindowClosed.disconnect(closed.set)
    assert window.close_dialog is None and window.close_choice == KEEP


def test_the_question_names_what_would_be_interrupted():
    q, info = describe(WorkInFlight(running=1, waiting=2, unsaved=1, paid=2))
    assert q == "1 job is running, 2 jobs are waiting and 1 image could not be saved. Close anyway?"
    assert "2 jobs are on a paid service" in info and "recovery folder" in info
    q, info = describe(WorkInFlight(unsaved=3))
    assert q.startswith("3 images could not be saved") and "paid" not in info
