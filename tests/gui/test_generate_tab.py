"""The Generate tab driven through the real JobQueue with a FakeProvider."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap

from studio_core.errors import DiskFull, ProviderUnavailable
from studio_core.models import GenerationRequest, JobImage, JobNotice, JobProgress, JobStarted
from studio_core.storage.images import read_metadata
from tests.fakes import FakeProvider, png_bytes
from tests.gui.conftest import shown_generate_tab, wait_until


def jpeg_bytes(color=(30, 120, 200)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (96, 96), color).save(buf, format="JPEG")
    return buf.getvalue()


@pytest.fixture
def fake(core):
    provider = FakeProvider(steps=3, delay=0.01)
    core.jobs.provider_for = lambda service: provider
    return provider


@pytest.fixture
def tab(qtbot, core, loop, fake):
    # A cloud service shows the basic settings; the ComfyUI panel (another part, with its
    # own background monitor) is covered by its own test below.
    with shown_generate_tab(qtbot, core, loop, service="openai") as w:
        yield w


def type_prompt(qtbot, tab, text: str) -> None:
    tab.prompt_panel.prompt.setPlainText(text)


def settle(loop, core, tab) -> None:
    """Leave nothing scheduled: pytest-qt processes events after each test, outside
    qasync's run loop, where asyncio task steps fail."""
    loop.run_until_complete(wait_until(lambda: not core.jobs.busy and tab.tasks.running == 0))


def test_prompt_has_focus_and_suggestions_load(tab, qtbot):
    assert tab.prompt_panel.prompt.hasFocus() or tab.focusProxy() is tab.prompt_panel.prompt
    chips = tab.prompt_panel.chip_buttons()
    assert len(chips) >= 8
    chips[0].click()
    assert tab.prompt_panel.text() == chips[0].toolTip()
    assert tab.generate_button.isEnabled()


def test_validation_disables_generate_and_says_why(tab, qtbot, loop, core):
    assert not tab.generate_button.isEnabled()
    assert "prompt" in tab.generate_button.toolTip().lower()
    type_prompt(qtbot, tab, "x" * 2001)
    assert not tab.generate_button.isEnabled()
    assert "2,001" in tab.prompt_panel.message.text() and "2,000" in tab.generate_button.toolTip()
    type_prompt(qtbot, tab, "   ")
    assert not tab.generate_button.isEnabled()
    type_prompt(qtbot, tab, "a red potion")
    assert tab.generate_button.isEnabled()
    assert tab.generate() is not None
    type_prompt(qtbot, tab, "")
    assert tab.generate() is None
    settle(loop, core, tab)


def test_ctrl_enter_generates_and_result_lands_on_disk_with_metadata(tab, qtbot, loop, core, fake):
    tab.activateWindow()
    tab.prompt_panel.prompt.setFocus()
    qtbot.keyClicks(tab.prompt_panel.prompt, "a blue slime")
    tab.basic_settings.random_seed.setChecked(False)
    tab.basic_settings.seed_box.setValue(42)
    qtbot.keyClick(tab.prompt_panel.prompt, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    loop.run_until_complete(wait_until(lambda: tab.results_model.rowCount() == 1))
    assert tab.prompt_panel.text() == "a blue slime"  # Ctrl+Enter did not add a newline
    assert fake.requests[0].prompt == "a blue slime" and fake.requests[0].seed == 42
    rec = tab.session_results()[0]
    path = tab.results_model.abs_path(rec)
    assert path.exists() and path.parent.is_relative_to(core.paths.images)
    assert rec.prompt == "a blue slime" and rec.seed == 42
    meta = read_metadata(path)
    assert meta.request.prompt == "a blue slime" and meta.seed == 42
    loop.run_until_complete(wait_until(lambda: tab.progress.label.text().startswith("Done")))
    assert not tab.cancel_button.isEnabled()
    # the thumbnail is made off the GUI thread and replaces the shared placeholder
    from studio_gui.gallery.model import ThumbStateRole, placeholder, thumb_key

    model = tab.results_model
    idx = model.index(0, 0)
    model.data(idx, Qt.ItemDataRole.DecorationRole)  # asks for it (the view may have already)
    loop.run_until_complete(wait_until(lambda: model.data(idx, ThumbStateRole) == "ready"))
    pm = model.data(idx, Qt.ItemDataRole.DecorationRole)
    assert isinstance(pm, QPixmap) and not pm.isNull()
    assert pm.cacheKey() == model.loader.get(thumb_key(rec)).cacheKey()
    assert pm.cacheKey() != placeholder(model.loader.px).cacheKey()
    assert model.data(idx, Qt.ItemDataRole.ToolTipRole).startswith("a blue slime")
    settle(loop, core, tab)


def test_progress_shows_steps_time_and_preview(tab, qtbot, loop, core):
    script = [JobStarted(""), JobProgress("", 1, 4), 0.05, JobProgress("", 2, 4, preview=jpeg_bytes()), 0.05,
              JobNotice("", "Connection to ComfyUI lost; reconnecting…"), JobProgress("", 3, 4), 30.0]
    core.jobs.provider_for = lambda s: FakeProvider(script=script)
    type_prompt(qtbot, tab, "a knight")
    tab.generate()
    loop.run_until_complete(wait_until(lambda: tab.progress.tracker.step == 3))
    text = tab.progress.label.text()
    assert text.startswith("step 3 of 4 · 0:0") and "left" in text
    assert tab.progress.bar.maximum() == 4 and tab.progress.bar.value() == 3
    assert tab.progress.notice.isVisible() and "reconnecting" in tab.progress.notice.text()
    loop.run_until_complete(wait_until(lambda: tab.progress.preview.pixmap() is not None
                                       and not tab.progress.preview.pixmap().isNull()))
    assert tab.cancel_button.isEnabled()
    # Esc cancels the running job
    qtbot.keyClick(tab.prompt_panel.prompt, Qt.Key.Key_Escape)
    loop.run_until_complete(wait_until(lambda: tab.progress.label.text() == "Cancelled."))
    settle(loop, core, tab)


def test_queue_shows_waiting_jobs_and_each_can_be_cancelled(tab, qtbot, loop, core):
    slow = FakeProvider(steps=200, delay=0.02)
    core.jobs.provider_for = lambda s: slow
    for p in ("first", "second", "third"):
        type_prompt(qtbot, tab, p)
        tab.generate()
    loop.run_until_complete(wait_until(lambda: tab.running_state() is not None))
    assert tab.generate_button.text() == "Add to queue"
    assert "2 waiting" in tab.queue_view.title.text()
    rows = tab.queue_view.rows
    assert "running" in rows[0].text() and "#1" in rows[1].text() and "#2" in rows[2].text()
    assert rows[2].text().endswith("third")
    second = rows[1].job_id
    rows[1].cancel.click()
    loop.run_until_complete(wait_until(lambda: "1 waiting" in tab.queue_view.title.text()))
    assert [r.job_id for r in tab.queue_view.rows if r.job_id == second] == []
    assert "#1" in tab.queue_view.rows[1].text()
    tab.cancel_button.click()  # stops the running one; the third starts
    loop.run_until_complete(wait_until(lambda: [r.prompt for r in slow.requests] == ["first", "third"]))
    assert slow.cancelled  # the provider saw the cancellation
    tab.cancel_current()
    settle(loop, core, tab)


def test_failure_shows_the_user_message_with_details(tab, qtbot, loop, core):
    core.jobs.provider_for = lambda s: FakeProvider(script=[JobStarted(""), ProviderUnavailable(
        "ConnectError: [Errno 111] connection refused", user_message="Start ComfyUI, or pick a cloud service.")])
    type_prompt(qtbot, tab, "a chest")
    tab.generate()
    loop.run_until_complete(wait_until(lambda: tab.error_area.isVisible()))
    assert tab.error_area.message.text() == "Start ComfyUI, or pick a cloud service."
    assert not tab.error_area.details.isVisible()
    tab.error_area.details_button.click()
    assert "connection refused" in tab.error_area.details.toPlainText()
    assert tab.progress.label.text() == "Failed."
    type_prompt(qtbot, tab, "a chest again")
    core.jobs.provider_for = lambda s: FakeProvider(steps=1)
    tab.generate()
    assert not tab.error_area.isVisible()  # a new attempt clears the old error
    settle(loop, core, tab)


def test_failure_after_an_image_keeps_it_in_the_grid(tab, qtbot, loop, core):
    from studio_core.errors import JobTimedOut

    core.jobs.provider_for = lambda s: FakeProvider(script=[JobStarted(""), JobImage("", png_bytes(), seed=5),
                                                            JobTimedOut("20 min")])
    type_prompt(qtbot, tab, "a coin")
    tab.generate()
    loop.run_until_complete(wait_until(lambda: tab.error_area.isVisible()))
    assert tab.results_model.rowCount() == 1
    assert tab.results_model.abs_path(tab.session_results()[0]).exists()
    settle(loop, core, tab)


def test_save_failure_offers_retry(tab, qtbot, loop, core):
    real_save = core.jobs._save_image
    state = {"fail": True}

    async def save(image, request):
        if state["fail"]:
            raise DiskFull("ENOSPC")
        return await real_save(image, request)

    core.jobs._save_image = save
    type_prompt(qtbot, tab, "a heart")
    tab.generate()
    loop.run_until_complete(wait_until(lambda: tab.error_area.action_button.isVisible()))
    assert "disk is full" in tab.error_area.message.text().lower()
    assert tab.results_model.rowCount() == 0
    state["fail"] = False
    tab.error_area.action_button.click()
    loop.run_until_complete(wait_until(lambda: tab.results_model.rowCount() == 1))
    assert not core.jobs.unsaved
    settle(loop, core, tab)


def test_drag_mime_data_has_file_urls(tab, qtbot, loop, core):
    type_prompt(qtbot, tab, "a tree")
    tab.generate()
    loop.run_until_complete(wait_until(lambda: tab.results_model.rowCount() == 1))
    model = tab.results_model
    idx = model.index(0, 0)
    rec = tab.session_results()[0]
    assert model.flags(idx) & Qt.ItemFlag.ItemIsDragEnabled
    mime = model.mimeData([idx])
    urls = mime.urls()
    assert len(urls) == 1 and urls[0].isLocalFile()
    assert Path(urls[0].toLocalFile()) == model.abs_path(rec)
    assert "text/uri-list" in model.mimeTypes()
    assert tab.results_view.dragEnabled()
    # what the view's drag carries: a named copy of the file, under the drag folder
    dragged = [Path(u.toLocalFile()) for u in tab.results_view.mime_for([rec]).urls()]
    assert [f.name for f in dragged] == [f"a_tree_{rec.seed}.png"]
    assert dragged[0].read_bytes() == model.abs_path(rec).read_bytes()
    assert dragged[0].parent.parent == core.paths.cache / "drag"
    # the tile's menu: Reuse settings fills the fields back, Copy prompt copies it
    menu = tab.results_view.menu_for([rec])
    qtbot.addWidget(menu)
    actions = {a.text(): a for a in menu.actions() if a.text()}
    assert {"Open", "Show in folder", "Reuse settings", "Copy prompt", "Sprite tools…"} <= set(actions)
    tab.prompt_panel.prompt.setPlainText("something else")
    actions["Reuse settings"].trigger()
    loop.run_until_complete(wait_until(lambda: tab.prompt_panel.text() == "a tree"))
    actions["Copy prompt"].trigger()
    from PySide6.QtGui import QGuiApplication

    assert QGuiApplication.clipboard().text() == "a tree"
    settle(loop, core, tab)


def test_session_grid_opens_sprite_tools_and_opens_files(tab, qtbot, loop, core, monkeypatch):
    import studio_gui.sprites
    from studio_gui.gallery import actions as gallery_actions

    calls = []
    monkeypatch.setattr(studio_gui.sprites, "open_sprite_tools",
                        lambda parent, c, paths: calls.append((parent, c, list(paths))))
    for p in ("a bat", "a rat"):
        type_prompt(qtbot, tab, p)
        tab.generate()
    loop.run_until_complete(wait_until(lambda: tab.results_model.rowCount() == 2))
    model, view = tab.results_model, tab.results_view
    newest = tab.session_results()[0]
    # one image (the right-clicked tile): the Sprite tab
    view.setCurrentIndex(model.index(0, 0))
    menu = view.menu_for(view.selected_records(), newest)
    qtbot.addWidget(menu)
    next(a for a in menu.actions() if a.text() == "Sprite tools…").trigger()
    assert calls == [(tab.window(), core, [model.abs_path(newest)])]
    # several selected: the Sheet tab gets them all
    view.selectAll()
    menu = view.menu_for(view.selected_records(), newest)
    qtbot.addWidget(menu)
    next(a for a in menu.actions() if a.text() == "Sprite tools…").trigger()
    assert calls[1][2] == [model.abs_path(r) for r in tab.session_results()] and len(calls[1][2]) == 2
    # Enter opens the current image with the system viewer
    opened = []
    monkeypatch.setattr(gallery_actions.QDesktopServices, "openUrl", staticmethod(lambda url: opened.append(url) or True))
    view.setFocus()
    view.setCurrentIndex(model.index(1, 0))
    qtbot.keyClick(view, Qt.Key.Key_Return)
    loop.run_until_complete(wait_until(lambda: opened))  # the file is checked in a worker first
    assert [Path(u.toLocalFile()) for u in opened] == [model.abs_path(model.record(1))]
    settle(loop, core, tab)


def test_session_grid_without_index_stays_empty(qtbot, core, loop, fake):
    from studio_gui.generate.tab import GenerateTab
    from studio_gui.tasks import TaskOwner

    index, core.index = core.index, None  # the gallery could not open this time
    core.settings.update(selected_service="openai")
    tasks = TaskOwner()
    w = GenerateTab(core, tasks=tasks)
    qtbot.addWidget(w)
    try:
        w.show()
        loop.run_until_complete(w.started())
        w.prompt_panel.prompt.setPlainText("a candle")
        w.generate()
        loop.run_until_complete(wait_until(lambda: w.progress.label.text().startswith("Done")))
        loop.run_until_complete(wait_until(lambda: not core.jobs.busy and tasks.running == 0))
        assert w.results_model.rowCount() == 0 and w.session_results() == []
        assert w.results_view.menu_for([]) is None
        assert not w.error_area.isVisible()
    finally:
        w.closing()
        loop.run_until_complete(tasks.cancel_all())
        core.index = index


def test_results_model_passes_modeltester(tab, qtbot, loop, core, qtmodeltester):
    type_prompt(qtbot, tab, "a sword")
    tab.generate()
    loop.run_until_complete(wait_until(lambda: tab.results_model.rowCount() == 1))
    qtmodeltester.check(tab.results_model)
    settle(loop, core, tab)


def test_apply_request_and_decorators(tab, qtbot, loop, fake):
    req = GenerationRequest(prompt="an iron helmet", negative_prompt="blurry", width=512, height=768,
                            steps=12, seed=99, service="openai")
    tab.apply_request(req)
    assert tab.prompt_panel.text() == "an iron helmet"
    assert tab.prompt_panel.negative_text() == "blurry" and tab.prompt_panel.negative.isVisible()
    tab.add_prompt_decorator(lambda r: r.replace(prompt=r.prompt + ", pixel art"))
    built = tab.build_request()
    assert (built.width, built.height, built.steps, built.seed) == (512, 768, 12, 99)
    assert built.prompt == "an iron helmet, pixel art" and built.negative_prompt == "blurry"
    assert built.service == "openai"


def test_service_change_switches_the_settings_panel(tab, core, loop):
    assert tab.settings_panel is tab.basic_settings
    assert "OpenAI" in tab.settings_toggle.text()
    tab.prompt_panel.prompt.setPlainText("a lamp")
    assert tab.build_request().service == "openai"
    core.settings.update(selected_service="comfyui")
    assert tab.settings_toggle.text() == "ComfyUI settings"
    panel = tab.settings_panel
    fields = panel.request_fields()
    assert {"width", "height", "steps", "seed"} <= set(fields)
    request = tab.build_request()
    assert request.service == "comfyui" and request.width == fields["width"]
    loop.run_until_complete(tab.tasks.cancel_all())  # the ComfyUI panel's monitors
    core.settings.update(selected_service="openai")
    assert tab.settings_panel is tab.basic_settings


def test_progress_follows_a_job_still_running_on_another_service(tab, qtbot, loop, core):
    slow = FakeProvider("slow", steps=200, delay=0.02)
    quick = FakeProvider("quick", steps=2, delay=0.01)
    core.jobs.provider_for = lambda s: slow if s == "comfyui" else quick
    tab.apply_request(GenerationRequest(prompt="slow one", service="comfyui"))
    slow_id = tab.generate()
    loop.run_until_complete(wait_until(lambda: tab.running_state() is not None))
    core.settings.update(selected_service="openai")
    loop.run_until_complete(tab.tasks.cancel_all())  # the ComfyUI panel's monitors
    tab.prompt_panel.prompt.setPlainText("quick one")
    tab.generate()
    loop.run_until_complete(wait_until(lambda: tab.results_model.rowCount() == 1))
    loop.run_until_complete(wait_until(lambda: tab._current_job == slow_id))
    assert tab.cancel_button.isEnabled()
    tab.cancel_current()
    settle(loop, core, tab)


def test_style_picker_adds_its_words_and_reuse_does_not_double_them(tab, qtbot, loop):
    picker = tab.style_picker
    assert picker is not None, "the style picker is part of the repository: it must attach"
    loop.run_until_complete(wait_until(lambda: picker.style_combo.count() > 1))
    from studio_core.sprites.styles import StylePreset

    picker.set_preset(StylePreset(asset_type="item_icon", style="pixel_art"))
    tab.prompt_panel.prompt.setPlainText("a key")
    order = tab.build_order()
    assert order.style == StylePreset(asset_type="item_icon", style="pixel_art")
    [built] = tab.plan(order).requests  # the core's session applies the style
    assert built.prompt.startswith("a key, ") and len(built.prompt) > len("a key, ")
    assert built.option("style_preset")
    tab.apply_request(built)
    assert picker.preset() == StylePreset()
    assert tab.plan(tab.build_order()).requests[0].prompt == built.prompt


def test_frames_panel_turns_one_generate_into_variants(tab, qtbot, loop, core, fake):
    panel = tab.frames_panel
    assert panel is not None, "the frames panel is part of the repository: it must attach"
    panel.set_mode("variants")
    panel.count.setValue(3)
    tab.prompt_panel.prompt.setPlainText("a shield")
    assert tab.generate() is not None
    loop.run_until_complete(wait_until(lambda: tab.results_model.rowCount() == 3, timeout=15))
    seeds = sorted(r.seed for r in tab.session_results())
    assert len(set(seeds)) == 3  # consecutive seeds, one image each
    settle(loop, core, tab)


def test_a_job_without_images_says_so(tab, qtbot, loop, core):
    core.jobs.provider_for = lambda s: FakeProvider(script=[JobStarted(""), JobProgress("", 1, 1)])
    tab.prompt_panel.prompt.setPlainText("a barrel")
    tab.generate()
    loop.run_until_complete(wait_until(lambda: tab.error_area.isVisible()))
    assert "no image" in tab.error_area.message.text()
    settle(loop, core, tab)


def _announce(core, service: str, status) -> None:
    """What the service selector does after each check."""
    from studio_gui.services.events import events_for

    hub = events_for(core)
    hub.last[service] = status
    hub.status_updated.emit(service, status)


def test_generate_is_off_while_the_selected_service_is_known_unreachable(tab, qtbot, loop, core):
    """Issue 11 item 5: a job that can only fail is not offered; the reason is in place."""
    from studio_core.models import ProviderStatus, ServiceState
    from studio_gui.services.events import events_for

    type_prompt(qtbot, tab, "a chest")
    assert tab.generate_button.isEnabled() and not tab.service_note.isVisible()
    _announce(core, "openai", ProviderStatus(ServiceState.unreachable, "Can't reach OpenAI. Check the internet connection."))
    assert not tab.generate_button.isEnabled()
    assert "Can't reach OpenAI" in tab.generate_button.toolTip()
    assert tab.service_note.isVisible() and "Check again" in tab.service_note.text()
    assert tab.generate() is None and not core.jobs.entries()
    rechecked: list[str] = []
    events_for(core).config_saved.connect(rechecked.append)
    tab.service_note.linkActivated.emit("check")
    assert rechecked == ["openai"]
    # Another service's trouble does not matter; a passed check turns Generate back on.
    _announce(core, "openai", ProviderStatus(ServiceState.ready, "Key accepted."))
    _announce(core, "replicate", ProviderStatus(ServiceState.needs_key, "Add a key."))
    assert tab.generate_button.isEnabled() and not tab.service_note.isVisible()
    _announce(core, "openai", ProviderStatus(ServiceState.needs_key, "OpenAI needs an API key."))
    assert not tab.generate_button.isEnabled() and "Set up" in tab.service_note.text()


def test_an_error_the_settings_already_show_is_not_shown_twice(tab, qtbot, loop, core):
    """Issue 11 item 5: ComfyUI's panel says "not answering at …" in place; the error area
    under it repeated the same words after the job failed."""
    from PySide6.QtWidgets import QLabel

    words = "ComfyUI is not answering at http://127.0.0.1:8188. Start ComfyUI."
    panel = tab.settings_panel
    note = QLabel(words, panel)
    note.show()
    core.jobs.provider_for = lambda s: FakeProvider(script=[JobStarted(""), ProviderUnavailable("refused", user_message=words)])
    type_prompt(qtbot, tab, "a chest")
    tab.generate()
    loop.run_until_complete(wait_until(lambda: tab.progress.label.text() == "Failed."))
    assert not tab.error_area.isVisible()
    # Different words still appear in the error area.
    core.jobs.provider_for = lambda s: FakeProvider(script=[JobStarted(""), ProviderUnavailable("x", user_message="Other.")])
    tab.generate()
    loop.run_until_complete(wait_until(lambda: tab.error_area.isVisible()))
    assert tab.error_area.message.text() == "Other."
    settle(loop, core, tab)


def test_progress_bar_shows_only_while_a_job_runs(tab, qtbot, loop, core):
    assert not tab.progress.bar.isVisible() and tab.progress.label.text() == "Ready."
    tab.progress.start()
    assert tab.progress.bar.isVisible()
    tab.progress.stop("Done · 1 image in 0:01")
    assert not tab.progress.bar.isVisible() and tab.progress.label.text().startswith("Done")
