"""Image inputs in the Generate tab: drops, the role question, init image + mask, references,
LoRAs with trigger words, the gallery's "Edit this…", and a consistent animation whose
frames each carry the character and their own pose skeleton (FakeProvider, real queue)."""

from __future__ import annotations

import copy
import hashlib
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from studio_core.inputs import LoraSpec
from studio_core.sprites import poses
from studio_gui.inputs.section import INIT, REFERENCE, ROLE_TEXT
from tests.fakes import FakeProvider
from tests.gui.conftest import shown_generate_tab, wait_until


def write_png(path: Path, size=(96, 64), color=(200, 40, 40)) -> Path:
    img = Image.new("RGB", size, (20, 20, 30))
    img.paste(Image.new("RGB", (size[0] // 2, size[1] // 2), color), (size[0] // 4, size[1] // 4))
    img.save(path, "PNG")
    return path


@pytest.fixture
def fake(core):
    provider = FakeProvider(steps=1)
    core.jobs.provider_for = lambda service: provider
    return provider


@pytest.fixture
def tab(qtbot, core, loop, fake):
    # openai: a cloud service that takes an init image and a mask
    with shown_generate_tab(qtbot, core, loop, service="openai", size=(1100, 800)) as w:
        loop.run_until_complete(wait_until(lambda: w.image_inputs.catalog is not None))
        yield w
        loop.run_until_complete(wait_until(lambda: not core.jobs.busy))


def drop(widget, paths: list[Path]) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = QPointF(widget.width() / 2, widget.height() / 2)
    with warnings.catch_warnings():  # PySide marks the only QDragEnterEvent constructor deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        enter = QDragEnterEvent(pos.toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    ev = QDropEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, ev)


def answer(loop, section, role: str) -> None:
    loop.run_until_complete(wait_until(lambda: section.role_box is not None))
    box = section.role_box
    (button,) = [b for b in box.buttons() if b.text() == ROLE_TEXT[role]]
    button.click()


def test_dropped_file_asks_then_becomes_the_init_image_of_the_order(tab, loop, tmp_path, fake, core):
    path = write_png(tmp_path / "hero.png")
    section = tab.image_inputs.section
    drop(tab, [path])
    loop.run_until_complete(wait_until(lambda: section.role_box is not None or section.message.text()))
    assert section.message.text() == ""
    texts = [b.text() for b in section.role_box.buttons()]
    assert ROLE_TEXT[INIT] in texts and ROLE_TEXT[REFERENCE] in texts
    answer(loop, section, INIT)
    loop.run_until_complete(wait_until(lambda: section.init_row.digest))
    expected = hashlib.sha256(path.read_bytes()).hexdigest()  # a plain PNG is kept byte for byte
    assert section.init_row.digest == expected
    assert section.store.path(expected).read_bytes() == path.read_bytes()
    assert section.init_row.thumb.pixmap() is not None and not section.init_row.thumb.pixmap().isNull()
    section.init_row.denoise.setValue(35)
    tab.prompt_panel.prompt.setPlainText("the hero with a red cape")
    order = tab.build_order()
    assert order.request.inputs.init.image == expected and order.request.inputs.init.denoise == 0.35
    assert order.request.inputs.mask is None
    assert tab.problem() == ""
    assert tab.generate() is not None
    loop.run_until_complete(wait_until(lambda: fake.requests))
    assert fake.requests[0].inputs.init.image == expected
    assert "init image" in section.toggle.text()


def test_a_dropped_reference_carries_its_weight_and_can_be_removed(tab, loop, tmp_path):
    section = tab.image_inputs.section
    drop(tab, [write_png(tmp_path / "a.png"), write_png(tmp_path / "b.png", color=(0, 200, 0))])
    loop.run_until_complete(wait_until(lambda: section.role_box is not None))
    assert "Only the first of 2" in section.message.text()
    answer(loop, section, REFERENCE)
    loop.run_until_complete(wait_until(lambda: section.references))
    section.references[0].weight.setValue(0.6)
    tab.prompt_panel.prompt.setPlainText("a knight")
    (ref,) = tab.build_request().inputs.references
    assert ref.weight == 0.6 and ref.image == hashlib.sha256((tmp_path / "a.png").read_bytes()).hexdigest()
    section.references[0].remove.click()
    assert tab.build_request().inputs.references == ()


def test_a_dropped_non_image_is_named_and_nothing_changes(tab, loop, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture")
    section = tab.image_inputs.section
    drop(tab, [notes])
    loop.run_until_complete(wait_until(lambda: section.message.isVisible()))
    assert "'notes.txt' is not an image" in section.message.text()
    assert section.role_box is None
    tab.prompt_panel.prompt.setPlainText("a knight")
    assert tab.build_request().inputs.empty


def test_painted_mask_goes_with_the_init_image(tab, loop, tmp_path, qtbot):
    path = write_png(tmp_path / "slime.png", size=(120, 80))
    section = tab.image_inputs.section
    assert loop.run_until_complete(section.add(path, INIT))
    dlg = section.open_mask_painter()
    qtbot.addWidget(dlg)
    loop.run_until_complete(dlg.loaded)
    painter = dlg.painter
    assert painter.isEnabled() and painter.canvas.image().size().width() == 120
    painter.size.setValue(10)
    c = painter.canvas
    pts = [c.to_widget(QPointF(x, 40)).toPoint() for x in (20, 60, 100)]
    QTest.mousePress(c, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pts[0])
    for p in pts[1:]:
        QTest.mouseMove(c, p)
    QTest.mouseRelease(c, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pts[-1])
    painter.save_button.click()
    loop.run_until_complete(dlg.saving)
    digest = section.init_row.mask_digest
    assert digest and not dlg.isVisible()
    tab.prompt_panel.prompt.setPlainText("a slime with a hat")
    inputs = tab.build_order().request.inputs
    assert inputs.mask.image == digest and inputs.init.image == section.init_row.digest
    m = np.asarray(Image.open(section.store.path(digest)))
    assert m.shape == (80, 120) and m[40, 60] == 255 and m[5, 5] == 0
    assert "+ mask" in section.toggle.text()
    section.init_row.clear_mask.click()
    assert tab.build_order().request.inputs.mask is None


def test_gallery_edit_this_fills_the_generate_tab(tab, loop, fake):
    tab.prompt_panel.prompt.setPlainText("a blue potion")
    tab.generate()
    loop.run_until_complete(wait_until(lambda: tab.results_model.rowCount() == 1))
    rec = tab.session_results()[0]
    from studio_gui.gallery.actions import image_menu

    handlers = tab.results_view.menu_handlers
    menu = image_menu(tab, [rec], handlers, rec)
    texts = [a.text() for a in menu.actions()]
    assert "Edit this…" in texts and "Use as reference" in texts
    next(a for a in menu.actions() if a.text() == "Edit this…").trigger()
    section = tab.image_inputs.section
    loop.run_until_complete(wait_until(lambda: section.init_row.digest))
    saved = tab.results_model.abs_path(rec)
    assert section.init_row.digest == hashlib.sha256(saved.read_bytes()).hexdigest()
    assert tab.build_order().request.inputs.init.image == section.init_row.digest


def test_detail_pane_offers_edit_and_reference(qtbot, tmp_path):
    from studio_core.storage.records import ImageRecord
    from studio_gui.gallery.detail_pane import DetailPane
    from studio_gui.tasks import TaskOwner

    pane = DetailPane(tasks=TaskOwner(), images_root=tmp_path)
    qtbot.addWidget(pane)
    assert not pane.edit_button.isEnabled()
    pane.record = ImageRecord.__new__(ImageRecord)  # any record: the pane hands it on untouched
    pane.edit_button.setEnabled(True)
    pane.reference_button.setEnabled(True)
    with qtbot.waitSignal(pane.edit_requested) as got:
        pane.edit_button.click()
    assert got.args == [pane.record]
    with qtbot.waitSignal(pane.use_reference_requested):
        pane.reference_button.click()


def lora_info(*names: str) -> dict:
    from tests.core.test_comfy_inputs_graphs import server

    return server("0.3.64", loras=names)


def test_lora_picker_adds_trigger_words_and_lora_specs_and_names_a_missing_one(tab, loop, core):
    core.settings.update(selected_service="comfyui")  # the picker is ComfyUI's
    hook = tab.image_inputs
    section = hook.section
    assert not section.loras.isHidden()
    hook.set_object_info(lora_info("pixel-art-xl.safetensors", "chibi.safetensors"))
    picker = section.loras
    assert [picker.choice.itemText(i) for i in range(picker.choice.count())] == ["pixel-art-xl.safetensors",
                                                                                "chibi.safetensors"]
    row = picker.add("pixel-art-xl.safetensors")
    row.model.setValue(0.7)
    row.triggers.setText("pixel art, 16-bit")
    row.triggers.editingFinished.emit()
    assert core.settings.current.lora_notes["pixel-art-xl.safetensors"] == {"triggers": "pixel art, 16-bit",
                                                                             "strength": 0.7}
    chibi = picker.add("chibi.safetensors")
    chibi.triggers.setText("chibi")
    chibi.enabled.setChecked(False)  # off: neither its words nor its weights are used
    tab.prompt_panel.prompt.setPlainText("a frog knight")
    request = tab.build_request()
    assert request.prompt == "a frog knight, pixel art, 16-bit"
    assert request.inputs.loras == (LoraSpec("pixel-art-xl.safetensors", 0.7, 1.0),
                                    LoraSpec("chibi.safetensors", 1.0, 1.0, enabled=False))
    assert request.inputs.active_loras == (LoraSpec("pixel-art-xl.safetensors", 0.7, 1.0),)
    # the words are not added twice (a reused prompt already has them)
    tab.prompt_panel.prompt.setPlainText(request.prompt)
    assert tab.build_request().prompt == request.prompt
    # the LoRA's strength and words come back the next time it is added
    picker.remove("pixel-art-xl.safetensors")
    again = picker.add("pixel-art-xl.safetensors")
    assert again.model.value() == 0.7 and again.triggers.text() == "pixel art, 16-bit"
    # another server without it: named before Generate
    hook.set_object_info(lora_info("chibi.safetensors"))
    assert "pixel-art-xl.safetensors" in picker.problem() and "not on the chosen ComfyUI server" in picker.problem()
    assert not again.missing.isHidden()
    assert "pixel-art-xl.safetensors" in hook.problem()
    tab.settings_panel.problem = lambda: ""  # whatever the offline server panel says, this is ours
    tab._update_buttons()
    assert "pixel-art-xl.safetensors" in tab.problem()
    assert not tab.generate_button.isEnabled() and "pixel-art-xl" in tab.generate_button.toolTip()
    loop.run_until_complete(tab.tasks.cancel_all())  # the ComfyUI panel's monitors
    core.settings.update(selected_service="openai")
    assert section.loras.isHidden() and tab.build_request().inputs.loras == ()


def test_cloud_model_without_image_input_says_so_before_generate(tab, loop, tmp_path, core):
    core.settings.update(selected_service="huggingface")
    section = tab.image_inputs.section
    assert loop.run_until_complete(section.add(write_png(tmp_path / "x.png"), INIT))
    tab.prompt_panel.prompt.setPlainText("a knight")
    problem = tab.problem()
    assert "does not take an init image" in problem
    assert not tab.generate_button.isEnabled() and tab.generate() is None
    assert tab.image_inputs.problem_label.isVisible() and tab.image_inputs.problem_label.text() == problem
    section.remove_init()
    assert tab.problem() == "" and not tab.image_inputs.problem_label.isVisible()
    core.settings.update(selected_service="openai")


def test_animation_frames_carry_the_character_and_their_own_pose(tab, loop, tmp_path, fake, core):
    from tests.core.test_comfy_inputs_graphs import IPADAPTER_PACK, server

    core.settings.update(selected_service="comfyui")
    hook = tab.image_inputs
    info = server("0.3.64", controlnets=("control_v11p_sd15_openpose.pth",), extra=copy.deepcopy(IPADAPTER_PACK))
    hook.set_object_info(info)
    panel = tab.frames_panel
    from studio_gui.sprites.frames_panel import FrameSettings

    panel.set_settings(FrameSettings(mode="animation", animation="walk", directions=4, frames_per_direction=2))
    # the gallery's "Use as reference" while the panel makes an animation sets its character
    hero = write_png(tmp_path / "hero.png", size=(64, 64), color=(30, 90, 220))
    assert loop.run_until_complete(hook.send(hero, "reference"))
    char = hashlib.sha256(hero.read_bytes()).hexdigest()
    assert panel.character.digest == char and panel.pose_control.isChecked()
    tab.prompt_panel.prompt.setPlainText("a blue knight")
    fields = tab.settings_panel.request_fields()
    size = (fields["width"], fields["height"])
    order = tab.build_order()
    assert order.character.image == char and order.pose_control
    assert hook.problem() == "", hook.problem()
    assert tab.generate() is None  # the skeletons are drawn in a worker first
    task = tab._preparing
    assert task is not None and not tab.generate_button.isEnabled()
    loop.run_until_complete(task)
    loop.run_until_complete(wait_until(lambda: len(fake.requests) == 8 and not core.jobs.busy))
    picked = [0, 4]  # 2 of the walk's 8 poses
    from studio_core.frame_inputs import pose_size

    for r in fake.requests:
        assert r.inputs.references[0].image == char
        (pose,) = r.inputs.controls
        assert pose.type == "pose"
        i = int(r.member.name.rsplit("_", 1)[1])
        expected = poses.render_pose("walk", r.member.direction, picked[i], pose_size(*size))
        got = Image.open(core.session.input_store.path(pose.image)).convert("RGB")
        assert got.tobytes() == expected.tobytes(), r.member.name
    assert len({r.inputs.controls[0].image for r in fake.requests}) == 8
    loop.run_until_complete(tab.tasks.cancel_all())  # the ComfyUI panel's monitors
    core.settings.update(selected_service="openai")


def test_reuse_settings_restores_the_inputs(tab, loop, tmp_path, fake):
    section = tab.image_inputs.section
    assert loop.run_until_complete(section.add(write_png(tmp_path / "i.png"), INIT))
    assert loop.run_until_complete(section.add(write_png(tmp_path / "r.png", color=(1, 2, 3)), REFERENCE))
    section.init_row.denoise.setValue(42)
    tab.prompt_panel.prompt.setPlainText("a chest")
    request = tab.build_request()
    section.clear()
    assert tab.build_request().inputs.empty
    tab.apply_request(request)
    loop.run_until_complete(wait_until(lambda: section.init_row.digest and section.references))
    assert tab.build_request().inputs == request.inputs


def test_saved_tab_detail_pane_and_menu_send_the_image_to_the_generate_tab(qtbot, core, loop):
    from PySide6.QtWidgets import QMainWindow, QTabWidget, QWidget

    from studio_core.models import GenerationRequest, JobImage
    from studio_gui.gallery.saved_tab import SavedTab
    from studio_gui.tasks import TaskOwner
    from tests.fakes import png_bytes

    sent: list[tuple[Path, str]] = []

    class Inputs:
        async def send(self, path, role):
            sent.append((path, role))
            return True

    class Generate(QWidget):
        def __init__(self, tasks):
            super().__init__()
            self.tasks = tasks
            self.image_inputs = Inputs()

    class Host(QMainWindow):
        def __init__(self):
            super().__init__()
            self.tasks = TaskOwner()
            self.tabs = QTabWidget()
            self.generate_tab = Generate(self.tasks)
            self.saved_tab = SavedTab(core, tasks=self.tasks)
            self.tabs.addTab(self.generate_tab, "Generate")
            self.tabs.addTab(self.saved_tab, "Saved")
            self.tabs.setCurrentWidget(self.saved_tab)
            self.setCentralWidget(self.tabs)

    host = Host()
    qtbot.addWidget(host)
    host.show()
    saved = host.saved_tab
    loop.run_until_complete(saved.started())
    try:
        req = GenerationRequest(prompt="a goblin", service="openai", seed=3)
        loop.run_until_complete(core.save_image(JobImage("j", png_bytes(48, 48), seed=3), req))
        loop.run_until_complete(wait_until(lambda: saved.model.rowCount() == 1))
        rec = saved.model.record(0)
        saved.detail.show_record(rec)
        saved.detail.edit_button.click()
        loop.run_until_complete(wait_until(lambda: sent))
        assert sent[-1] == (saved.model.abs_path(rec), "init")
        assert host.tabs.currentWidget() is host.generate_tab
        host.tabs.setCurrentWidget(saved)
        saved.view.menu_handlers.use_reference(rec)
        loop.run_until_complete(wait_until(lambda: len(sent) == 2))
        assert sent[-1] == (saved.model.abs_path(rec), "reference")
        assert host.tabs.currentWidget() is host.generate_tab
    finally:
        saved.closing()
        loop.run_until_complete(host.tasks.cancel_all())
