"""Start-up order: what waits for the window's first paint, and that waiting never leaves
a half-built Generate tab behind (benchmarks/bench_startup.py measures the gain)."""

from __future__ import annotations

import pytest

from tests.fakes import FakeProvider
from tests.gui.conftest import wait_until

PARTS = ("batch_button", "image_inputs", "style_picker", "transparency", "frames_panel")


@pytest.fixture
def deferred(qtbot, core, loop):
    from studio_gui.generate.tab import GenerateTab
    from studio_gui.tasks import TaskOwner

    core.settings.update(selected_service="openai")
    provider = FakeProvider(steps=2, delay=0.01)
    core.jobs.provider_for = lambda service: provider
    tasks = TaskOwner()
    tab = GenerateTab(core, tasks=tasks, defer_sections=True)
    qtbot.addWidget(tab)
    tab.resize(1100, 760)
    yield tab
    tab.closing()
    loop.run_until_complete(wait_until(lambda: not core.jobs.busy))
    loop.run_until_complete(tasks.cancel_all())


def _built(tab) -> list[str]:
    return [name for name in PARTS if tab._parts[name] is not None]


def test_parts_are_built_after_the_first_paint_one_per_turn(deferred, qtbot, loop):
    from studio_gui.sprites.frames_panel import FramesPanel

    tab = deferred
    # Only the prompt, settings and Generate exist before the tab paints.
    assert tab.parts_pending and _built(tab) == [] and not tab.findChildren(FramesPanel)
    tab._build_parts_in_slices()  # one turn builds one part (the ComfyUI panel's turn: none
    tab._build_parts_in_slices()  # for a cloud service), then hands the loop back
    assert _built(tab) == ["batch_button"] and tab.parts_pending
    tab.show()
    qtbot.waitExposed(tab)
    loop.run_until_complete(wait_until(lambda: not tab.parts_pending))
    assert _built(tab) == list(PARTS)
    assert tab.frames_panel.isVisibleTo(tab) and tab.batch_button.isVisibleTo(tab)
    assert len(tab.findChildren(FramesPanel)) == 1  # the paint and the loop did not build twice


def test_asking_for_a_part_builds_what_is_pending(deferred):
    from studio_gui.sprites.frames_panel import FramesPanel

    tab = deferred
    assert isinstance(tab.frames_panel, FramesPanel)
    assert not tab.parts_pending and _built(tab) == list(PARTS)


def test_a_click_before_the_parts_exist_builds_them_and_queues_the_full_order(deferred, loop, core):
    tab = deferred
    tab.prompt_panel.prompt.setPlainText("a blue slime")
    assert tab.parts_pending
    job = tab.generate()
    assert job is not None and not tab.parts_pending
    assert core.jobs.entry(job).request.prompt.startswith("a blue slime")


def test_reuse_settings_before_the_parts_exist_reaches_their_hooks(deferred):
    from studio_core.models import GenerationRequest

    tab = deferred
    tab.apply_request(GenerationRequest(prompt="an old knight", service="openai"))
    assert not tab.parts_pending  # the inputs and frames hooks were there to restore their share
    assert tab.prompt_panel.text() == "an old knight"


def test_window_reads_the_keys_after_its_first_paint_and_before_its_parts_start(qtbot, loop, paths):
    from studio_core.app_core import StudioCore
    from studio_core.services import SERVICES
    from studio_gui.main_window import MainWindow

    core = loop.run_until_complete(StudioCore.open(paths, preload_secrets=False))
    try:
        names = [s.secret_name for s in SERVICES if s.secret_name]
        assert names and not any(core.secrets.is_cached(n) for n in names)
        w = MainWindow(core)
        qtbot.addWidget(w)
        painted_when_read: list[bool] = []
        preload = core.services.preload_secrets

        async def watched_preload() -> None:
            painted_when_read.append(w._painted.is_set())
            await preload()

        core.services.preload_secrets = watched_preload
        w.show()
        loop.run_until_complete(w.started())
        assert painted_when_read == [True]
        assert all(core.secrets.is_cached(n) for n in names)
        w.close()
        loop.run_until_complete(w.tasks.cancel_all())
    finally:
        loop.run_until_complete(core.aclose())


def test_comfy_panel_is_the_first_slice_and_a_request_never_sees_the_loading_line(qtbot, core, loop):
    from studio_gui.comfy_settings.panel import ComfySettingsPanel
    from studio_gui.generate.tab import GenerateTab
    from studio_gui.tasks import TaskOwner

    core.settings.update(selected_service="comfyui", comfy_model="sdxl_base.safetensors")
    tasks = TaskOwner()
    tab = GenerateTab(core, tasks=tasks, defer_sections=True)
    qtbot.addWidget(tab)
    try:
        slot = tab.settings_slot
        assert slot.comfy_pending and not isinstance(slot.panel, ComfySettingsPanel)
        tab._build_parts_in_slices()
        assert isinstance(slot.panel, ComfySettingsPanel) and _built(tab) == []
        fresh = GenerateTab(core, tasks=tasks, defer_sections=True)
        qtbot.addWidget(fresh)
        # Asked for before its turn, the request comes from the real panel.
        assert fresh.build_request().model == "sdxl_base.safetensors"
        assert isinstance(fresh.settings_slot.panel, ComfySettingsPanel) and not fresh.parts_pending
        fresh.closing()
    finally:
        tab.closing()
        loop.run_until_complete(tasks.cancel_all())


def test_session_grid_follows_the_first_paint_and_shows_what_was_saved_before_it(deferred, loop, core):
    from studio_core.models import GenerationRequest
    from studio_gui.gallery.view import GalleryView

    tab = deferred
    # Not built with the tab: the gallery's model, view and index modules wait for the paint.
    assert tab._results_model is None and not tab.findChildren(GalleryView)
    core.jobs.submit(GenerationRequest(prompt="a blue slime", service="openai", width=64, height=64))
    loop.run_until_complete(wait_until(lambda: not core.jobs.busy))
    assert tab._results_model is None
    loop.run_until_complete(tab.started())
    assert tab.findChildren(GalleryView) == [tab.results_view]
    loop.run_until_complete(wait_until(lambda: tab.results_model.rowCount() == 1))
    assert tab.session_results()[0].prompt.startswith("a blue slime")


def test_a_grid_asked_for_before_the_index_opened_uses_the_index_once_open(qtbot, loop, paths):
    from studio_core.app_core import StudioCore
    from studio_gui.generate.tab import GenerateTab
    from studio_gui.tasks import TaskOwner

    core = loop.run_until_complete(StudioCore.open(paths, open_index=False))
    tasks = TaskOwner()
    try:
        tab = GenerateTab(core, tasks=tasks, defer_sections=True)
        qtbot.addWidget(tab)
        assert tab.results_model.image_index is None  # asked for early: built at once, no index yet
        loop.run_until_complete(core.ensure_index())
        loop.run_until_complete(tab.started())
        assert tab.results_model.image_index is core.index
        loop.run_until_complete(wait_until(lambda: tab.results_model.rowCount() == 0))
        tab.closing()
    finally:
        loop.run_until_complete(tasks.cancel_all())
        loop.run_until_complete(core.aclose())


def test_window_builds_the_comfy_health_button_after_its_first_paint(qtbot, loop, core):
    from PySide6.QtWidgets import QLabel

    from studio_gui.comfy_settings.health_panel import HealthStatusButton
    from studio_gui.main_window import MainWindow

    w = MainWindow(core)
    qtbot.addWidget(w)
    # Its place in the status bar is kept by a plain line until then.
    assert w._comfy_health is None and not w.status.findChildren(HealthStatusButton)
    assert "ComfyUI" in w._health_slot.findChild(QLabel).text()
    w.show()
    loop.run_until_complete(w.started())
    assert w._painted.is_set()
    buttons = w.status.findChildren(HealthStatusButton)
    assert buttons == [w.comfy_health] and w.comfy_health.parent() is w._health_slot
    assert w._health_placeholder is None
    w.close()
    loop.run_until_complete(w.tasks.cancel_all())
