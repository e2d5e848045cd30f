""""Frames ready → Align & make sheet" hands the sheet the transparent copies when the set
made them, not the originals with their key-colour background."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from studio_core.frame_plans import FrameSetSpec
from tests.gui.conftest import wait_until


def test_sheet_gets_each_frames_copy_and_the_original_where_none_was_made(qtbot, tmp_path):
    from studio_gui.sprites.frames_ready_bar import FramesReadyBar

    bar = FramesReadyBar()
    qtbot.addWidget(bar)
    originals = [tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"]
    copy_a, copy_c = tmp_path / "a_transparent.png", tmp_path / "c_transparent.png"
    meta = {"kind": "animation", "names": ["walk_00", "walk_01", "walk_02"], "seed": 1,
            "transparent": {"walk_00": str(copy_a), "walk_02": str(copy_c)}}
    bar.show_set("Walk", originals, meta)
    handed: list = []
    bar.make_sheet.connect(lambda paths, m: handed.append((paths, m)))
    bar.sheet_button.click()
    [(paths, got_meta)] = handed
    assert paths == [copy_a, originals[1], copy_c]
    assert got_meta["names"] == meta["names"]
    assert bar.paths() == originals  # what was saved is still the originals


def test_sheet_gets_the_originals_without_the_transparent_option(qtbot, tmp_path):
    from studio_gui.sprites.frames_ready_bar import FramesReadyBar

    bar = FramesReadyBar()
    qtbot.addWidget(bar)
    originals = [tmp_path / "a.png", tmp_path / "b.png"]
    bar.show_set("Variants", originals, {"kind": "variants", "names": ["variant_00", "variant_01"]})
    handed: list = []
    bar.make_sheet.connect(lambda paths, m: handed.append(paths))
    bar.sheet_button.click()
    assert handed == [originals]


def test_generate_tab_transparent_walk_opens_the_sheet_on_the_copies(qtbot, core, loop, monkeypatch):
    """The whole path: Generate tab with Transparent background ticked → the core's
    pipeline makes the copies → the ready bar's button opens the Sheet tab on them."""
    from studio_gui.generate.tab import GenerateTab
    from studio_gui.sprites import dialog
    from studio_gui.tasks import TaskOwner
    from tests.core.test_same_as_gui import KeyColourProvider
    from tests.gui.test_same_as_gui import ASKED

    core.settings.update(selected_service="huggingface")
    fake = KeyColourProvider(steps=1)
    core.jobs.provider_for = lambda service: fake
    tasks = TaskOwner()
    tab = GenerateTab(core, tasks=tasks)
    qtbot.addWidget(tab)
    tab.resize(1100, 760)
    tab.show()
    qtbot.waitExposed(tab)
    try:
        loop.run_until_complete(tab.started())
        opened: list = []
        monkeypatch.setattr(dialog, "open_sprite_tools", lambda parent, core, paths: opened.append(paths))
        finished: list = []
        tab.bridge.frame_set_finished.connect(finished.append)
        tab.apply_request(ASKED)
        tab.frames_panel.set_settings(FrameSetSpec(mode="animation", animation="idle", directions=1))
        tab.transparency.checkbox.setChecked(True)
        loop.run_until_complete(tab.transparency.started())
        tab.generate_button.click()
        loop.run_until_complete(wait_until(lambda: finished, timeout=60))
        [result] = finished
        assert result.failed == () and set(result.transparent) == set(result.names)
        bar = tab.frames_panel.ready_bar
        loop.run_until_complete(wait_until(lambda: bar.sheet_button.isVisibleTo(bar)))
        bar.sheet_button.click()
        [paths] = opened
        assert paths == [result.transparent[n] for n in result.names]
        assert all(Path(p) not in result.paths for p in paths)
        for p in paths:  # the copies are what the user asked for: a see-through background
            with Image.open(p) as im:
                assert im.mode == "RGBA" and im.getpixel((0, 0))[3] == 0
    finally:
        tab.closing()
        loop.run_until_complete(tasks.cancel_all())
