"""Widgets and the window's helpers follow the core through the CoreBridge: they live as
long as the widget (not until a dialog is first closed) and the packaged build's smoke
check waits for its own job, through the same change stream as everything else."""

from __future__ import annotations

import asyncio

import pytest

from studio_core.errors import GenerationFailed
from studio_core.models import GenerationRequest
from tests.fakes import FakeProvider
from tests.gui.conftest import wait_until


class FailsOn(FakeProvider):
    def __init__(self, marker: str, **kw):
        super().__init__(**kw)
        self.marker = marker

    async def generate(self, request, *, job_id):
        if self.marker in request.prompt:
            raise GenerationFailed("boom", user_message="The server refused this one.")
            yield  # pragma: no cover  (makes this an async generator)
        async for ev in super().generate(request, job_id=job_id):
            yield ev


def test_smoke_check_waits_for_its_own_job_and_not_another(window, core, loop):
    fake = FailsOn("other job", steps=2, delay=0.05)
    core.jobs.provider_for = lambda service: fake
    # Another job failing first must not end the smoke check: it waits for its own job id.
    core.jobs.submit(GenerationRequest("other job", service=core.settings.current.selected_service))
    loop.run_until_complete(window.smoke_check(timeout=20))
    assert [r.prompt for r in fake.requests][-1].startswith("smoke test sprite")
    assert len(list(core.paths.images.glob("*.png"))) == 1
    # Its temporary slots were disconnected: a later job's events do not reach them.
    assert window.core.jobs.busy is False


def test_smoke_check_raises_what_stopped_its_job(window, core, loop):
    core.jobs.provider_for = lambda service: FailsOn("smoke test", steps=1)
    with pytest.raises(GenerationFailed):
        loop.run_until_complete(window.smoke_check(timeout=20))


def test_smoke_check_gives_up_after_its_timeout(window, core, loop):
    core.jobs.provider_for = lambda service: FakeProvider(steps=50, delay=0.2)
    with pytest.raises(asyncio.TimeoutError):
        loop.run_until_complete(window.smoke_check(timeout=0.3))


def test_batch_dialog_shown_again_still_follows_its_run(qtbot, core, loop):
    """The Batch… button shows the same dialog again after it was closed; it used to stop
    listening at its first close, so a reopened dialog's bar stood still."""
    from studio_core.batch import BatchManager
    from studio_gui.batch.dialog import BatchDialog
    from studio_gui.tasks import TaskOwner

    provider = FakeProvider(steps=1, delay=0.01)
    core.jobs.provider_for = lambda service: provider
    tasks = TaskOwner()
    manager = BatchManager(core)
    loop.run_until_complete(manager.open())
    dlg = BatchDialog(core, manager, tasks=tasks,
                      template_source=lambda: GenerationRequest("", service="comfyui", width=512, height=512))
    qtbot.addWidget(dlg)
    dlg.show()
    try:
        dlg.set_list("slime {1|2|3|4}", csv_mode=False)
        loop.run_until_complete(dlg.refresh_preview())
        run = loop.run_until_complete(dlg.start())
        assert run is not None
        dlg.close()  # finished(): hidden, not deleted
        dlg.show()
        loop.run_until_complete(run.wait())
        assert run.state == "finished"
        loop.run_until_complete(wait_until(lambda: dlg.progress.value() == 4))
        assert dlg.progress.maximum() == 4
    finally:
        for r in manager.runs.values():
            r.cancel()
        loop.run_until_complete(wait_until(lambda: not core.jobs.busy))
        loop.run_until_complete(tasks.cancel_all())


def test_a_deleted_servers_page_is_not_called_by_pool_changes(qtbot, core, loop, caplog):
    from studio_core.changes import PoolStateChanged
    from studio_gui.servers.page import servers_page
    from studio_gui.tasks import TaskOwner

    tasks = TaskOwner()
    page = servers_page(core, tasks=tasks)
    page.deleteLater()
    qtbot.waitUntil(lambda: not __import__("shiboken6").isValid(page))
    with caplog.at_level("ERROR"):
        core.changes.publish(PoolStateChanged(()))
        core.settings.update(pool_allow_paid=True)
    assert "failed" not in caplog.text
    loop.run_until_complete(tasks.cancel_all())


def test_a_deleted_comfy_panel_is_not_called_by_the_monitor_or_pool_changes(qtbot, core, loop, monkeypatch):
    """Why the panel's guards on its monitor and bridge slots could go: both are bound
    methods on Qt signals, which Qt drops with the panel."""
    import shiboken6

    from studio_core.changes import PoolStateChanged
    from studio_gui.comfy_settings.panel import ComfySettingsPanel
    from studio_gui.tasks import TaskOwner
    from tests.gui.test_comfy_settings import FakeMonitor

    async def nothing(*_a, **_k):
        return None

    monitor = FakeMonitor()
    panel = ComfySettingsPanel(core, tasks=TaskOwner(), monitor=monitor)
    monkeypatch.setattr(panel, "load_models", nothing)
    monkeypatch.setattr(panel, "_start_workflow", nothing)
    loop.run_until_complete(panel.started())
    called: list = []
    monkeypatch.setattr(ComfySettingsPanel, "refresh_fit", lambda self: called.append(self))
    monitor.updated.emit()
    assert len(called) == 1  # connected while alive
    panel.deleteLater()
    qtbot.waitUntil(lambda: not shiboken6.isValid(panel))
    monitor.updated.emit()
    core.changes.publish(PoolStateChanged(()))
    assert len(called) == 1
