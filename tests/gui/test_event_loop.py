"""Slots on the real qasync loop, without the session-wide "running loop" of conftest.py:
here a slot or task step that needs a running loop fails as it would in the app."""

from __future__ import annotations

import asyncio
import sys

import pytest
from PySide6.QtCore import QObject, QTimer, Signal

from studio_core.models import GenerationRequest
from tests.fakes import FakeProvider
from tests.gui.conftest import real_loop_only, wait_until


class Emitter(QObject):
    fired = Signal()


class LoopUser(QObject):
    """A slot that needs the running loop (as TaskOwner.spawn's tasks and asyncio.sleep do)."""

    def __init__(self):
        super().__init__()
        self.loops: list = []
        self.errors: list[BaseException] = []

    def on_fired(self) -> None:
        try:
            self.loops.append(asyncio.get_running_loop())
        except RuntimeError as exc:
            self.errors.append(exc)


def test_a_slot_outside_the_loop_run_has_no_running_loop(loop):
    """The check has teeth: without the session-wide loop, a signal emitted outside
    qasync's run reaches a slot with no running loop."""
    e, user = Emitter(), LoopUser()
    e.fired.connect(user.on_fired)
    with real_loop_only():
        e.fired.emit()
    assert user.loops == [] and "no running event loop" in str(user.errors[0])


def test_a_slot_driven_by_qt_inside_the_loop_run_has_it(loop):
    e, user = Emitter(), LoopUser()
    e.fired.connect(user.on_fired)
    with real_loop_only():
        QTimer.singleShot(0, e.fired.emit)
        loop.run_until_complete(wait_until(lambda: user.loops or user.errors))
    assert user.errors == [] and user.loops == [loop]


@pytest.fixture
def slot_errors(monkeypatch):
    """Exceptions raised in slots (PySide reports them through sys.excepthook)."""
    seen: list = []
    monkeypatch.setattr(sys, "excepthook", lambda t, v, tb: seen.append(v))
    return seen


def test_generate_tab_runs_a_job_on_the_real_loop(qtbot, core, loop, slot_errors):
    """A click, the bridge's job signals, the preview and results tasks: all through
    qasync's run, none with the stand-in running loop."""
    from studio_gui.generate.tab import GenerateTab
    from studio_gui.tasks import TaskOwner

    fake = FakeProvider(steps=3, delay=0.01)
    core.jobs.provider_for = lambda service: fake
    core.settings.update(selected_service="openai")
    tasks = TaskOwner(on_error=slot_errors.append)
    with real_loop_only():
        tab = GenerateTab(core, tasks=tasks)
        qtbot.addWidget(tab)
        tab.show()
        loop.run_until_complete(tab.started())
        tab.apply_request(GenerationRequest("a red potion", service="openai", seed=3))
        QTimer.singleShot(0, tab.generate_button.click)
        loop.run_until_complete(wait_until(lambda: tab.results_model.rowCount() == 1, timeout=20))
        loop.run_until_complete(wait_until(lambda: not core.jobs.busy and tasks.running == 0))
        assert tab.progress.label.text().startswith("Done")  # the job_finished slot ran
        tab.closing()
        loop.run_until_complete(tasks.cancel_all())
    assert slot_errors == []
    assert [r.prompt for r in fake.requests] == ["a red potion"]
