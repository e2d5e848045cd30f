"""The Frames panel's pose strip: the chosen template's skeleton pictures, drawn off the GUI thread."""

from __future__ import annotations

import threading

import pytest

from tests.gui.conftest import wait_until


@pytest.fixture
def panel(qtbot, core, loop):
    from studio_gui.sprites.frames_panel import FramesPanel
    from studio_gui.tasks import TaskOwner

    tasks = TaskOwner()
    p = FramesPanel(core, tasks=tasks)
    qtbot.addWidget(p)
    p.show()
    yield p
    loop.run_until_complete(tasks.cancel_all())


def shown(loop, panel, cycle: int, turns: int):
    loop.run_until_complete(wait_until(lambda: (s := panel.pose_strip.shown()) is not None
                                       and (len(s.cycle), len(s.turns)) == (cycle, turns)))
    return panel.pose_strip.shown()


def test_strip_follows_template_directions_and_frame_count(loop, panel, monkeypatch):
    from studio_gui.sprites import pose_strip

    threads: list[str] = []
    real = pose_strip.render_strip
    monkeypatch.setattr(pose_strip, "render_strip", lambda *a: threads.append(threading.current_thread().name) or real(*a))
    assert panel.pose_strip.shown() is None  # single mode: nothing drawn
    panel.set_expanded(True)
    panel.set_mode("animation")
    assert panel.pose_strip.isVisible()
    walk = shown(loop, panel, 8, 0)
    assert walk.cycle_direction == "side" and walk.cycle[0].size().width() == pose_strip.RENDER
    panel.directions.setCurrentIndex(panel.directions.findData(8))
    eight = shown(loop, panel, 8, 8)
    assert eight.cycle_direction == "down" and eight.turn_names[2] == "left"
    assert eight.turns[0] != eight.turns[2]  # front and side differ
    panel.template.setCurrentIndex(panel.template.findData("jump"))
    shown(loop, panel, 5, 8)
    panel.per_direction.setValue(3)
    shown(loop, panel, 3, 8)
    assert threads and threading.main_thread().name not in threads
    # a choice seen before comes from the cache, at once
    calls = len(threads)
    panel.template.setCurrentIndex(panel.template.findData("walk"))
    panel.per_direction.setValue(8)
    assert panel.pose_strip.shown() is not None and len(panel.pose_strip.shown().cycle) == 8
    assert len(threads) == calls
    assert "8 poses, facing down" in panel.pose_strip.toolTip()
    panel.set_mode("variants")
    assert not panel.pose_strip.isVisible()


def test_every_template_is_offered_with_its_poses(panel):
    from studio_core.sprites import frames

    offered = [panel.template.itemData(i) for i in range(panel.template.count())]
    assert offered == ["idle", "walk", "run", "attack", "jump"] == list(frames.ANIMATIONS)
