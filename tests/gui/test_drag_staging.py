"""Dragging images out never links or copies files on the GUI thread: the named copies
are made in a worker when the selection changes (issue 12)."""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import Qt

from studio_gui.gallery import view as view_mod
from tests.gui.conftest import wait_until
from tests.gui.test_gallery_tab import add, host  # noqa: F401 - fixture


class FakeDrag:
    executed: list[list[str]] = []

    def __init__(self, source):
        self.mime = None

    def setMimeData(self, m):
        self.mime = m

    def setPixmap(self, pm):
        pass

    def exec(self, actions, default):
        FakeDrag.executed.append([u.toLocalFile() for u in self.mime.urls()])
        return default


def test_the_drag_uses_copies_staged_in_a_worker(host, core, loop, monkeypatch):  # noqa: F811
    tab = host.saved_tab
    add(core, loop, "goblin idle", seed=7)
    add(core, loop, "goblin walk", seed=8)
    staged_on: list[str] = []
    real = view_mod.stage_for_drag

    def recording(files, root):
        staged_on.append(threading.current_thread().name)
        return real(files, root)

    monkeypatch.setattr(view_mod, "stage_for_drag", recording)
    monkeypatch.setattr(view_mod, "QDrag", FakeDrag)
    FakeDrag.executed = []
    failed: list = []
    tab.view.drag_failed.connect(failed.append)
    tab.view.selectAll()  # the selection change starts the staging
    loop.run_until_complete(wait_until(lambda: staged_on))
    tab.view.drag_staging.wait(30)
    tab.view.startDrag(Qt.DropAction.CopyAction)
    assert failed == []
    (files,) = FakeDrag.executed
    assert sorted(Path(f).name for f in files) == ["goblin_idle_7.png", "goblin_walk_8.png"]
    assert staged_on and threading.main_thread().name not in staged_on


def test_a_drag_before_the_copies_are_ready_says_so_and_stages_nothing_here(host, core, loop, monkeypatch):  # noqa: F811
    tab = host.saved_tab
    add(core, loop, "bat wing", seed=2)
    gate = threading.Event()
    staged_on: list[str] = []
    real = view_mod.stage_for_drag

    def slow(files, root):
        staged_on.append(threading.current_thread().name)
        gate.wait(30)
        return real(files, root)

    monkeypatch.setattr(view_mod, "stage_for_drag", slow)
    monkeypatch.setattr(view_mod, "QDrag", FakeDrag)
    FakeDrag.executed = []
    failed: list = []
    tab.view.drag_failed.connect(failed.append)
    tab.view.selectAll()
    tab.view.prepare_drag()
    tab.view.startDrag(Qt.DropAction.CopyAction)
    assert FakeDrag.executed == [] and failed and "still being prepared" in failed[0].user_message
    gate.set()
    tab.view.drag_staging.wait(30)
    tab.view.startDrag(Qt.DropAction.CopyAction)
    assert len(FakeDrag.executed) == 1
    assert threading.main_thread().name not in staged_on
