from __future__ import annotations

import asyncio
import shutil
import socket
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, Signal

from studio_core.gpu import VramInfo
from studio_core.hardware.health import health_from
from studio_core.hardware.planner import FitLevel, ProposalKind
from studio_core.hardware.profiles import profile_for_total
from studio_core.models import GenerationRequest, JobProgress, JobStarted, ModelInfo, QualityTier
from tests.gui.conftest import wait_until

MODELS = (ModelInfo("v1-5-pruned-emaonly.safetensors"), ModelInfo("sd_xl_base_1.0.safetensors"),
          ModelInfo("flux1-schnell-fp8.safetensors"))


class FakeMonitor(QObject):
    updated = Signal()

    def __init__(self, total_mib=6144.0, used_mib=1000.0):
        super().__init__()
        self.gpu = VramInfo("NVIDIA GeForce RTX 3050", "560.94", total_mib, used_mib, total_mib - used_mib, 40, 60)
        self.profile = profile_for_total(int(total_mib))
        self.profile_is_guess = False
        self.url = "http://127.0.0.1:8188"
        self.health = health_from(self.url, {"system": {"comfyui_version": "0.3.64"}, "devices": [
            {"name": "cuda:0 NVIDIA GeForce RTX 3050 : cudaMallocAsync", "type": "cuda", "vram_total": total_mib * 2**20,
             "vram_free": (total_mib - used_mib) * 2**20}]}, {"queue_running": [1], "queue_pending": []})

    def note(self):
        return ""


@pytest.fixture
def panel(qtbot, core):
    from studio_gui.comfy_settings.panel import ComfySettingsPanel
    from studio_gui.tasks import TaskOwner

    p = ComfySettingsPanel(core, tasks=TaskOwner(), monitor=FakeMonitor())
    qtbot.addWidget(p)
    p.models.set_models(MODELS)
    return p


def test_contract_fields_and_defaults(panel):
    f = panel.request_fields()
    assert set(f) == {"model", "width", "height", "steps", "cfg", "sampler", "scheduler", "seed", "batch", "quality",
                      "options"}
    assert f["model"] == "sd_xl_base_1.0.safetensors"  # SDXL Base 1.0 is the default when present
    assert (f["width"], f["height"], f["steps"], f["cfg"], f["seed"], f["batch"]) == (1024, 1024, 20, 6.0, None, 1)
    assert f["quality"] is QualityTier.optimized and f["options"] == {}
    GenerationRequest(prompt="x", **f)  # the fields build a request as they are


def test_quality_tiers_set_steps_and_cfg(panel, qtbot):
    with qtbot.waitSignal(panel.changed):
        panel.tier_buttons[QualityTier.ultra].click()
    f = panel.request_fields()
    assert (f["steps"], f["cfg"], f["quality"]) == (35, 7.5, QualityTier.ultra)
    assert "up to 20 min" in panel.tier_hint.text()


def test_presets_follow_the_model(panel):
    labels = [panel.preset.itemText(i) for i in range(panel.preset.count())]
    assert len(labels) == 9 and labels[-1].startswith("Custom") and "1024×1024" in labels[0]
    panel.models.select("v1-5-pruned-emaonly.safetensors")
    assert "512×512" in panel.preset.itemText(0)
    panel.preset.setCurrentIndex(2)  # Landscape 768×512
    assert (panel.request_fields()["width"], panel.request_fields()["height"]) == (768, 512)


@pytest.mark.parametrize("w,needle", [("0", "more than 0"), ("7", "too small"), ("100000", "too large"),
                                      ("abc", "whole number"), ("-64", "more than 0")])
def test_bad_sizes_are_shown_in_place(panel, w, needle):
    panel.width_edit.setText(w)
    panel._on_size_typed()
    assert needle in panel.problem()
    assert not panel.size_error.isHidden() and needle in panel.size_error.text()
    assert panel.request_fields()["width"] == 1024  # nothing invalid leaks into a request


def test_custom_size_rounds_to_8(panel):
    panel.width_edit.setText("1001")
    panel.width_edit.editingFinished.emit()
    assert panel.width_edit.text() == "1000" and panel.problem() == ""
    assert panel.preset.currentText().startswith("Custom")


def test_seed_fixed_and_bad(panel):
    panel.random_seed.setChecked(False)
    panel.seed_edit.setText("-3")
    assert "negative" in panel.problem()
    panel.seed_edit.setText("12345")
    assert panel.problem() == "" and panel.request_fields()["seed"] == 12345


def test_apply_request_round_trip(panel):
    req = GenerationRequest(prompt="p", model="v1-5-pruned-emaonly.safetensors", width=640, height=448, steps=31,
                            cfg=5.5, sampler="dpmpp_2m", scheduler="karras", seed=7, batch=2,
                            quality=QualityTier.high, options={"tiled_vae": True})
    panel.apply_request(req)
    f = panel.request_fields()
    assert GenerationRequest(prompt="p", **f) == req


def test_over_budget_offers_fixes_and_changes_nothing_until_clicked(panel):
    panel.models.select("v1-5-pruned-emaonly.safetensors")
    panel.width_edit.setText("1024")
    panel.height_edit.setText("1024")
    panel.batch.setValue(4)
    a = panel.fit.assessment
    assert a.level is FitLevel.over and a.proposals[0].kind is ProposalKind.smaller_batch
    assert not panel.fit.fix_row.isHidden() and "Batch 1" in panel.fit.fix_text.text()
    assert panel.batch.value() == 4  # not applied silently
    panel.fit.fix_button.click()
    assert panel.batch.value() == 1 and panel.fit.assessment.level is not FitLevel.over
    assert panel.fit.fix_row.isHidden()


def test_lowvram_for_an_unmanaged_server_explains_in_place(panel):
    panel.width_edit.setText("1024")
    panel._on_size_typed()
    a = panel.fit.assessment  # SDXL fp16 on 6 GB: over, and only --lowvram fits
    assert a.proposals[-1].kind is ProposalKind.lowvram
    panel.apply_proposal(a.proposals[-1])
    assert "--lowvram" in panel.server_note.text() and not panel.server_note.isHidden()


def test_empty_server_state(panel):
    panel.models.set_models(())
    assert not panel.models.empty.isHidden()
    assert "sd_xl_base_1.0.safetensors" in panel.models.empty.text()
    assert "models/checkpoints" in panel.models.empty.text()


def test_model_entries_describe_family_size_and_need(panel):
    texts = [panel.models.combo.itemText(i) for i in range(panel.models.combo.count())]
    assert any("SDXL · 1024×1024 · needs ~" in t for t in texts)
    assert any("SD 1.5 · 512×512" in t for t in texts)
    panel.models.set_models(MODELS, wanted="missing_model.safetensors")
    assert "not on the server" in panel.models.combo.itemText(panel.models.combo.count() - 1)


def test_health_panel_shows_server_and_progress(qtbot, core):
    from studio_gui.comfy_settings.health_panel import ActiveJobs, HealthPanel
    from studio_gui.tasks import TaskOwner

    active = ActiveJobs(core)
    hp = HealthPanel(core, tasks=TaskOwner(), monitor=FakeMonitor(used_mib=2150), active=active)
    qtbot.addWidget(hp)
    # through the core's change stream and its bridge, as the queue's events arrive
    core.changes.publish(JobStarted("j1"))
    core.changes.publish(JobProgress("j1", 1, 20))
    core.changes.publish(JobProgress("j1", 5, 20))
    f = hp.fields
    assert f["status"].text().startswith("● running") and f["version"].text() == "0.3.64"
    assert f["device"].text() == "NVIDIA GeForce RTX 3050"
    assert f["vram"].text().startswith("2.1 GB / 6.0 GB") and f["queue"].text() == "1 running, 0 waiting"
    assert f["active"].text().startswith("step 5/20") and "left" in f["active"].text()
    active.close()


def test_real_monitor_without_driver_or_server(core, loop):
    from studio_gui.comfy_settings.monitor import HardwareMonitor
    from studio_gui.tasks import TaskOwner

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    core.settings.update(comfy_url=f"http://127.0.0.1:{port}")
    mon = HardwareMonitor(core, tasks=TaskOwner())
    loop.run_until_complete(mon.refresh())
    assert mon.nvml is None and mon.gpu is None  # this machine has no NVIDIA driver
    assert mon.health.status == "unreachable"
    assert "No NVIDIA driver found" in mon.note()
    assert mon.profile.name  # falls back to the seed's card


def test_status_button_in_main_window_opens_health(qtbot, core, loop):
    from studio_gui.main_window import MainWindow

    w = MainWindow(core)
    qtbot.addWidget(w)
    loop.run_until_complete(w.comfy_health.started())
    loop.run_until_complete(wait_until(lambda: w.comfy_health.monitor.health is not None, timeout=20))
    assert "ComfyUI" in w.comfy_health.text()
    w.comfy_health.click()
    assert w.comfy_health._dialog is not None and w.comfy_health._dialog.isVisible()
    w.comfy_health._dialog.close()
    loop.run_until_complete(w.tasks.cancel_all())


def test_server_page_rejects_a_folder_that_is_not_comfyui(qtbot, core, tmp_path):
    from studio_gui.comfy_settings.server_page import ServerPage
    from studio_gui.settings_dialog import PAGES
    from studio_gui.tasks import TaskOwner

    assert "ComfyUI server" in [t for t, _ in PAGES]
    page = ServerPage(core, tasks=TaskOwner())
    qtbot.addWidget(page)
    page.folder.setText(str(tmp_path))
    page.start_button.click()
    assert "not a ComfyUI folder" in page.error.text() and not page.error.isHidden()
    assert core.settings.current.comfy_server_folder == str(tmp_path)
    assert page.state_label.text() == "Stopped"


# ---- the custom-workflow row ------------------------------------------------------------------

API_WORKFLOW = Path(__file__).resolve().parents[1] / "data" / "comfy_workflow_api_sdxl.json"


@pytest.fixture
def api_file(tmp_path):
    return Path(shutil.copy(API_WORKFLOW, tmp_path / "my_flow.json"))


def load_workflow(panel, qtbot, loop, path):
    with qtbot.waitSignal(panel.changed, timeout=5000):  # the picker's changed reaches the panel's
        assert loop.run_until_complete(panel.workflow_picker.load(str(path)))


def test_custom_workflow_goes_into_options_and_greys_the_built_in_controls(panel, qtbot, loop, api_file):
    from studio_gui.comfy_settings.panel import CUSTOM_NOTE

    panel.tiled.setChecked(True)
    assert panel.request_fields()["options"] == {"tiled_vae": True}
    assert panel.models.combo.isEnabled() and panel.workflow_note.isHidden()
    built_in_tip = panel.models.combo.toolTip()
    load_workflow(panel, qtbot, loop, api_file)
    f = panel.request_fields()
    assert f["options"]["workflow"] == API_WORKFLOW.read_text(encoding="utf-8")
    assert f["options"]["workflow_map"]["prompt"] == "6.text" and f["options"]["workflow_map"]["seed"] == "3.seed"
    assert "tiled_vae" not in f["options"]  # only the built-in graph reads it
    GenerationRequest(prompt="x", **f)
    # The model (and sampler, scheduler, CFG, tiled decode) come from the file: greyed, and said so.
    assert not panel.models.combo.isEnabled() and not panel.sampler.isEnabled() and not panel.tiled.isEnabled()
    assert "workflow file" in panel.models.combo.toolTip() and "built-in" in panel.tiled.toolTip()
    assert not panel.workflow_note.isHidden() and panel.workflow_note.text() == CUSTOM_NOTE
    # Back to the built-in graph: everything as before.
    with qtbot.waitSignal(panel.changed):
        panel.workflow_picker.combo.setCurrentIndex(0)
    assert panel.request_fields()["options"] == {"tiled_vae": True}
    assert panel.models.combo.isEnabled() and panel.models.combo.toolTip() == built_in_tip
    assert panel.workflow_note.isHidden()


def test_custom_workflow_greys_the_planners_built_in_only_fixes(panel, qtbot, loop, api_file):
    from studio_gui.comfy_settings.fit_view import BUILT_IN_ONLY_TIP, built_in_only

    panel.width_edit.setText("1536")
    panel.height_edit.setText("1536")
    panel.batch.setValue(2)
    panel._on_size_typed()
    a = panel.fit.assessment  # SDXL fp16 at 1536² on 6 GB: smaller batch, then tiled decode, then --lowvram
    assert [p.kind for p in a.proposals] == [ProposalKind.smaller_batch, ProposalKind.tiled_vae, ProposalKind.lowvram]
    assert any(built_in_only(p) for p in a.proposals)
    assert all(act.isEnabled() for act in panel.fit.menu.actions())
    load_workflow(panel, qtbot, loop, api_file)
    actions = panel.fit.menu.actions()
    assert len(actions) == len(panel.fit.assessment.proposals)
    for p, act in zip(panel.fit.assessment.proposals, actions):
        assert act.isEnabled() is not built_in_only(p)
        if built_in_only(p):
            assert act.toolTip() == BUILT_IN_ONLY_TIP
    assert panel.fit._best.kind is ProposalKind.smaller_batch  # the one fix that a custom workflow honours
    assert not panel.fit.fix_row.isHidden() and "Batch 1" in panel.fit.fix_text.text()
    panel.batch.setValue(1)  # only built-in-only fixes are left: none is offered, and the text says why
    assert not panel.fit.fix_button.isEnabled() and "custom workflow" in panel.fit.fix_text.text()


@pytest.mark.parametrize("custom", [True, False])
def test_apply_request_leaves_the_workflow_choice_alone(panel, qtbot, loop, api_file, custom):
    if custom:
        load_workflow(panel, qtbot, loop, api_file)
    req = GenerationRequest(prompt="p", model="v1-5-pruned-emaonly.safetensors", width=640, height=448, steps=12,
                            seed=3, options={"workflow": '{"1": {"class_type": "X", "inputs": {}}}',
                                             "workflow_map": {"prompt": "1.text"}})
    panel.apply_request(req)
    assert panel.workflow_picker.is_custom() is custom
    f = panel.request_fields()
    assert (f["width"], f["height"], f["steps"], f["seed"]) == (640, 448, 12, 3)
    assert ("workflow" in f["options"]) is custom
    if custom:
        assert f["options"]["workflow"] == api_file.read_text(encoding="utf-8")
    assert panel.models.combo.isEnabled() is not custom


def test_started_restores_the_saved_workflow(qtbot, core, loop, api_file):
    from studio_gui.comfy_settings.panel import ComfySettingsPanel
    from studio_gui.tasks import TaskOwner

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    core.settings.update(comfy_url=f"http://127.0.0.1:{port}")  # nobody answers: the models stay offline
    core.settings.update_provider("comfyui", workflow_file=str(api_file))
    p = ComfySettingsPanel(core, tasks=TaskOwner(), monitor=FakeMonitor())
    qtbot.addWidget(p)
    assert "workflow" not in p.request_fields()["options"]
    loop.run_until_complete(asyncio.wait_for(p.started(), 20))
    assert p.workflow_picker.is_custom() and not p.models.combo.isEnabled()
    assert p.request_fields()["options"]["workflow"] == api_file.read_text(encoding="utf-8")


# ---- unknown card: no verdict colour ----------------------------------------------------------

class UnknownCardMonitor(FakeMonitor):
    """No NVIDIA driver here and no GPU from the server: the budget is the assumed profile's."""

    def __init__(self):
        super().__init__()
        from studio_core.hardware.profiles import DEFAULT_PROFILE

        self.gpu = None
        self.health = None
        self.profile = DEFAULT_PROFILE
        self.profile_is_guess = True

    def note(self):
        return "No NVIDIA driver found on this computer, so VRAM can't be read and the server is not answering."


@pytest.mark.parametrize("monitor", [UnknownCardMonitor, None])
def test_unknown_card_shows_the_estimate_in_a_neutral_colour(qtbot, core, monitor):
    from studio_gui.comfy_settings.panel import ComfySettingsPanel
    from studio_gui.comfy_settings.vram_gauge import COLOURS, NEUTRAL
    from studio_gui.tasks import TaskOwner

    p = ComfySettingsPanel(core, tasks=TaskOwner(), monitor=monitor() if monitor else None)
    qtbot.addWidget(p)
    p.models.set_models(MODELS)
    p.width_edit.setText("1024")
    p._on_size_typed()
    assert p.fit.assessment.level is FitLevel.over  # the default SDXL at 1024² against the assumed 6 GB budget
    text = p.fit.verdict.text()
    # No verdict against a card nobody said the user has (the first screen without an NVIDIA driver).
    assert "Estimated peak" in text and "card size unknown" in text and "or more has room for it" in text
    assert "not fit" not in text and "would" not in text and "6 GB" not in text
    assert NEUTRAL.name() in text
    assert not any(c.name() in text for c in COLOURS.values())
    assert "over the safe budget" not in text
    assert p.fit.gauge.colour() == NEUTRAL and p.fit.gauge.guessed
    assert p.fit.gauge.estimate_mib <= p.fit.gauge.budget_mib  # drawn against a card with room for it
    assert "card size unknown" in p.fit.numbers.text()
    assert p.fit.fix_row.isHidden()  # no "Make it fit" for an assumed card
    # Small: still neutral, still no verdict.
    p.models.select("v1-5-pruned-emaonly.safetensors")
    p.width_edit.setText("512")
    p.height_edit.setText("512")
    p._on_size_typed()
    assert p.fit.assessment.level is FitLevel.ok
    assert "card size unknown" in p.fit.verdict.text() and p.fit.gauge.colour() == NEUTRAL


@pytest.mark.parametrize("batch,level", [(4, FitLevel.over), (1, FitLevel.ok)])
def test_known_card_keeps_the_verdict_colours(panel, batch, level):
    from studio_gui.comfy_settings.vram_gauge import COLOURS, NEUTRAL

    panel.models.select("v1-5-pruned-emaonly.safetensors")
    side = "1024" if level is FitLevel.over else "512"
    panel.width_edit.setText(side)
    panel.height_edit.setText(side)
    panel._on_size_typed()
    panel.batch.setValue(batch)
    assert panel.fit.assessment.level is level
    text = panel.fit.verdict.text()
    assert COLOURS[level].name() in text and NEUTRAL.name() not in text
    assert "unknown" not in text and "on this 6 GB card" in text
    assert panel.fit.gauge.colour() == COLOURS[level] and not panel.fit.gauge.guessed
    if level is FitLevel.over:
        assert "over the safe budget" in text


def test_health_progress_ignores_cloud_jobs(loop, core):
    from studio_core.models import GenerationRequest, JobProgress
    from studio_gui.comfy_settings.health_panel import ActiveJobs
    from tests.fakes import FakeProvider
    from tests.gui.conftest import wait_until

    core.jobs.provider_for = lambda service: FakeProvider(service, steps=3, delay=0.02)
    active = ActiveJobs(core)
    seen: list = []
    core.jobs.subscribe(lambda ev: isinstance(ev, JobProgress)
                        and seen.append((ev.job_id, active.tracker.job_id if active.tracker else None)))
    cloud = core.jobs.submit(GenerationRequest(prompt="a coin", service="replicate"))
    local = core.jobs.submit(GenerationRequest(prompt="a coin", service="comfyui"))
    loop.run_until_complete(wait_until(lambda: all(core.jobs.entry(j).state.value == "done" for j in (cloud, local))))
    assert any(tracked == local for _, tracked in seen)
    assert all(tracked != cloud for _, tracked in seen)
    active.close()
