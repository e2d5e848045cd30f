"""The custom-workflow picker and mapping dialog (issue 3 item 4, GUI part)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from studio_core.models import GenerationRequest, JobImage
from studio_core.providers.comfy.custom_workflow import WorkflowMap
from tests.gui.conftest import wait_until

DATA = Path(__file__).resolve().parents[1] / "data"
API = DATA / "comfy_workflow_api_sdxl.json"
UI = DATA / "comfy_workflow_ui.json"


def make_picker(qtbot, core):
    from studio_gui.comfy_workflow import WorkflowPicker
    from studio_gui.tasks import TaskOwner

    w = WorkflowPicker(core, tasks=TaskOwner())
    qtbot.addWidget(w)
    w.show()
    return w


@pytest.fixture
def api_file(tmp_path: Path) -> Path:
    return Path(shutil.copy(API, tmp_path / "my_flow.json"))


def test_loading_an_api_workflow_maps_inputs_automatically(qtbot, core, loop, api_file):
    picker = make_picker(qtbot, core)
    assert picker.request_options() == {}
    with qtbot.waitSignal(picker.changed, timeout=5000):
        assert loop.run_until_complete(picker.load(str(api_file)))
    opts = picker.request_options()
    assert opts["workflow"] == API.read_text(encoding="utf-8")
    assert opts["workflow_map"] == {"prompt": "6.text", "negative": "7.text", "seed": "3.seed",
                                    "width": "5.width", "height": "5.height", "steps": "3.steps"}
    assert picker.combo.currentText() == "my_flow.json (custom)"
    assert "7 nodes" in picker.status.text() and "prompt → node 6 text" in picker.status.text()
    assert picker.map_button.isEnabled() and picker.message.isHidden()
    # Built-in again: no options, and the choice is saved.
    picker.combo.setCurrentIndex(0)
    assert picker.request_options() == {}
    assert core.settings.current.comfy_workflow_file == ""
    picker.combo.setCurrentIndex(1)
    assert picker.request_options()["workflow_map"]["seed"] == "3.seed"


@pytest.mark.parametrize("content, needle", [
    (UI.read_text(encoding="utf-8"), "editor (UI) format"),
    ('{"3": {"inputs": {"seed": 1}, "class_type": "KSampler"', "not valid JSON"),
])
def test_bad_files_explain_the_api_export_inline(qtbot, core, loop, tmp_path, content, needle):
    bad = tmp_path / "bad.json"
    bad.write_text(content, encoding="utf-8")
    picker = make_picker(qtbot, core)
    assert not loop.run_until_complete(picker.load(str(bad)))
    assert picker.message.isVisible()
    assert needle in picker.message.text()
    assert "Export (API)" in picker.message.text()
    assert picker.request_options() == {}
    assert core.settings.current.comfy_workflow_file == ""


def test_a_bad_file_keeps_the_workflow_in_use(qtbot, core, loop, api_file, tmp_path):
    picker = make_picker(qtbot, core)
    loop.run_until_complete(picker.load(str(api_file)))
    bad = tmp_path / "broken.json"
    bad.write_text("{nope", encoding="utf-8")
    assert not loop.run_until_complete(picker.load(str(bad)))
    assert picker.message.text().startswith("'broken.json' was not loaded.")
    assert picker.request_options()["workflow"] == api_file.read_text(encoding="utf-8")
    assert core.settings.current.comfy_workflow_file == str(api_file)


def test_load_button_reads_the_chosen_file_off_the_gui_thread(qtbot, core, loop, api_file):
    picker = make_picker(qtbot, core)
    picker.load_button.click()
    dialog = picker._file_dialog
    assert dialog is not None and dialog.isVisible()
    dialog.fileSelected.emit(str(api_file))
    dialog.close()
    loop.run_until_complete(wait_until(lambda: picker.request_options()))
    assert picker.request_options()["workflow_map"]["prompt"] == "6.text"


def test_mapping_dialog_changes_request_options(qtbot, core, loop, api_file):
    picker = make_picker(qtbot, core)
    loop.run_until_complete(picker.load(str(api_file)))
    dlg = picker.open_mapping_dialog()
    assert dlg is not None and dlg.isVisible()  # open(): shown without a nested event loop
    # Preselected with the automatic guess; only kind-fitting inputs are offered.
    assert dlg.mapping() == picker.mapping
    texts = [dlg.combos["prompt"].itemText(i) for i in range(dlg.combos["prompt"].count())]
    assert texts[0] == "(not used)" and any(t.startswith("6 · CLIPTextEncode · text (automatic) = “") for t in texts)
    assert not any("seed" in t.split(" = ")[0] for t in texts)
    dlg.select("prompt", ("7", "text"))
    dlg.select("negative", None)
    with qtbot.waitSignal(picker.changed, timeout=2000):
        dlg.buttons.accepted.emit()
    wm = picker.request_options()["workflow_map"]
    assert wm["prompt"] == "7.text" and wm["negative"] is None and wm["seed"] == "3.seed"
    assert core.settings.current.provider("comfyui")["workflow_map"]["prompt"] == "7.text"
    assert "not used: negative prompt" in picker.status.text()
    # "Use automatic guess" puts the found inputs back.
    dlg = picker.open_mapping_dialog()
    dlg.reset_button.click()
    assert dlg.mapping() == WorkflowMap(("6", "text"), ("7", "text"), ("3", "seed"), ("5", "width"),
                                        ("5", "height"), ("3", "steps"))
    dlg.reject()
    assert picker.request_options()["workflow_map"]["prompt"] == "7.text"


def test_choice_persists_and_is_restored(qtbot, core, loop, api_file):
    picker = make_picker(qtbot, core)
    loop.run_until_complete(picker.load(str(api_file)))

    async def choose():  # inside the loop, as in the app: settings writes then queue in order
        picker.set_mapping(WorkflowMap(prompt=("7", "text"), seed=("3", "seed")))

    loop.run_until_complete(choose())
    saved = core.settings.current
    assert saved.comfy_workflow_file == str(api_file)
    assert saved.provider("comfyui")["workflow_file"] == str(api_file)
    loop.run_until_complete(core.settings.flush())

    again = make_picker(qtbot, core)
    assert again.request_options() == {}
    loop.run_until_complete(again.started())
    opts = again.request_options()
    assert opts["workflow"] == api_file.read_text(encoding="utf-8")
    assert opts["workflow_map"] == {"prompt": "7.text", "negative": None, "seed": "3.seed",
                                    "width": None, "height": None, "steps": None}
    # The file on disk is the source of truth: a fresh store reads the same choice.
    from studio_core.settings import SettingsStore

    assert SettingsStore(core.settings.path).current.provider("comfyui")["workflow_map"]["prompt"] == "7.text"


def test_vanished_file_falls_back_with_a_message(qtbot, core, loop, api_file):
    picker = make_picker(qtbot, core)
    loop.run_until_complete(picker.load(str(api_file)))
    api_file.unlink()
    again = make_picker(qtbot, core)
    loop.run_until_complete(again.started())
    assert again.request_options() == {}
    assert again.combo.currentIndex() == 0
    assert "no longer there" in again.message.text() and "built-in" in again.message.text()
    assert core.settings.current.comfy_workflow_file == ""
    assert core.settings.current.provider("comfyui")["workflow_file"] == ""


def test_custom_workflow_runs_through_the_comfy_provider(qtbot, core, loop, api_file):
    from tests.comfy_fake_server import FakeComfyServer

    picker = make_picker(qtbot, core)
    loop.run_until_complete(picker.load(str(api_file)))
    picker.set_mapping(picker.mapping.merged(WorkflowMap(negative=("7", "text"))))

    async def run():
        async with FakeComfyServer() as fake:
            core.settings.update(comfy_url=fake.url)
            provider = core.services.provider("comfyui")
            req = GenerationRequest(prompt="a red potion, pixel art", negative_prompt="blurry", seed=42,
                                    width=64, height=48, steps=3).with_options(**picker.request_options())
            images = [ev async for ev in provider.generate(req, job_id="j1") if isinstance(ev, JobImage)]
            return images, fake.posted("/prompt")

    images, posts = loop.run_until_complete(asyncio.wait_for(run(), 20))
    assert len(images) == 1 and images[0].data.startswith(b"\x89PNG") and images[0].seed == 42
    graph = posts[0]["prompt"]
    assert graph["6"]["inputs"]["text"] == "a red potion, pixel art"
    assert graph["7"]["inputs"]["text"] == "blurry"
    assert graph["3"]["inputs"]["seed"] == 42 and graph["3"]["inputs"]["steps"] == 3
    assert (graph["5"]["inputs"]["width"], graph["5"]["inputs"]["height"]) == (64, 48)
