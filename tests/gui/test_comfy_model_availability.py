"""The ComfyUI panel's model list (issue 13): the family decided from the checkpoint itself and
shown with where it came from, asked once when nothing tells and remembered per server; which
servers have each model; a model no enabled server has keeps Generate off; ↻ asks again.
Against fake ComfyUI servers on loopback (tests/family_servers.py)."""

from __future__ import annotations

import pytest

from studio_core.models import GenerationRequest
from studio_core.pool.provider import PoolProvider
from studio_core.pool.servers import ServerSpec
from studio_core.providers.comfy.provider import ComfyProvider
from tests.family_servers import ModelServer
from tests.gui.conftest import wait_until
from tests.gui.test_comfy_settings import FakeMonitor

ODD = "my_model_v3.safetensors"  # a name that says nothing about the family


@pytest.fixture
def serve(loop, monkeypatch, core):
    """``serve(provider)``: the "comfyui" service is ``provider`` for this test; servers and
    providers made through it are closed at the end."""
    made: list = []

    def use(provider):
        monkeypatch.setattr(core.services, "provider", lambda sid: provider)
        made.append(provider)
        return provider

    def start(fake: ModelServer) -> ModelServer:
        loop.run_until_complete(fake.start())
        made.append(fake)
        return fake

    use.start = start
    yield use
    for thing in reversed(made):
        loop.run_until_complete(thing.aclose() if hasattr(thing, "aclose") else thing.stop())


def make_panel(qtbot, core):
    from studio_gui.comfy_settings.panel import ComfySettingsPanel
    from studio_gui.tasks import TaskOwner

    p = ComfySettingsPanel(core, tasks=TaskOwner(), monitor=FakeMonitor())
    qtbot.addWidget(p)
    p.show()
    return p


def loaded(loop, panel, name: str = ODD):
    loop.run_until_complete(panel.load_models())
    loop.run_until_complete(wait_until(lambda: panel.models.decided(name)))
    return panel


def test_checkpoint_metadata_decides_the_family_and_says_so(qtbot, loop, core, serve):
    fake = serve.start(ModelServer([ODD], metadata={("checkpoints", ODD): {"modelspec.architecture":
                                                                             "stable-diffusion-v1"}}))
    serve(ComfyProvider(fake.url))
    panel = loaded(loop, make_panel(qtbot, core))
    assert panel.models.current() == ODD
    assert panel.models.family_line.text() == "SD 1.5 — from the checkpoint's metadata"
    assert "512×512" in panel.preset.itemText(0)  # SD 1.5 sizes, not SDXL's
    assert panel.job_shape().family.id == "sd15"  # and its VRAM estimate
    assert panel.request_fields()["options"]["family"] == "sd15"  # the builder gets it too
    assert panel.models.chooser.isHidden()
    assert fake.metadata_asked == [("checkpoints", ODD)]


def test_unknown_model_is_asked_once_and_remembered_for_that_server(qtbot, loop, core, serve):
    fake = serve.start(ModelServer([ODD]))
    serve(ComfyProvider(fake.url))
    panel = loaded(loop, make_panel(qtbot, core))
    assert not panel.models.chooser.isHidden()
    assert ODD in panel.models.chooser_text.text()
    panel.models.choice_buttons["sd15"].click()
    assert panel.models.chooser.isHidden()
    assert core.settings.current.model_families == {fake.url: {ODD: "sd15"}}
    assert panel.models.family_line.text().startswith("SD 1.5 — as you said")
    assert "512×512" in panel.preset.itemText(0)
    assert panel.request_fields()["options"]["family"] == "sd15"

    again = loaded(loop, make_panel(qtbot, core))  # the next start: not asked again
    assert again.models.chooser.isHidden() and again.models.family().id == "sd15"


def test_other_is_an_answer_too(qtbot, loop, core, serve):
    fake = serve.start(ModelServer([ODD]))
    serve(ComfyProvider(fake.url))
    panel = loaded(loop, make_panel(qtbot, core))
    panel.models.choice_buttons["other"].click()
    assert core.settings.current.model_families == {fake.url: {ODD: "other"}}
    again = loaded(loop, make_panel(qtbot, core))
    assert again.models.chooser.isHidden()
    assert again.models.family().id == "unknown" and "as you said" in again.models.family_line.text()
    assert "family" not in again.request_fields()["options"]  # the builder keeps its own default


@pytest.fixture
def two_servers(loop, serve):
    a = serve.start(ModelServer(["shared.safetensors", "only_a.safetensors"]))
    b = serve.start(ModelServer(["shared.safetensors"]))
    pool = serve(PoolProvider([ServerSpec(id="a", name="desktop", url=a.url),
                               ServerSpec(id="b", name="laptop", url=b.url)], secret=lambda name: None, poll_s=60))
    return a, b, pool


def test_selector_names_the_servers_that_have_each_model(qtbot, loop, core, two_servers):
    panel = make_panel(qtbot, core)
    loop.run_until_complete(panel.load_models())
    panel.models.select("shared.safetensors")
    assert panel.models.where.text() == "On desktop and laptop."
    combo = panel.models.combo
    tip = combo.itemData(combo.findData("only_a.safetensors"), 3)  # ToolTipRole
    assert tip.endswith("On desktop")
    panel.models.select("only_a.safetensors")
    assert panel.models.where.text() == "On desktop." and panel.problem() == ""
    assert "only_a.safetensors" in combo.toolTip()  # the elided box says its whole entry


def test_a_model_no_enabled_server_has_says_so_and_refresh_finds_it(qtbot, loop, core, two_servers):
    _a, b, _pool = two_servers
    panel = make_panel(qtbot, core)
    loop.run_until_complete(panel.load_models())
    panel.apply_request(GenerationRequest(prompt="x", model="nobody.safetensors"))
    reason = "No enabled ComfyUI server has nobody.safetensors"
    assert panel.problem().startswith(reason)
    assert not panel.models.where.isHidden() and panel.models.where.text().startswith(reason)
    assert "on no enabled server" in panel.models.combo.currentText()

    b.set_checkpoints(["shared.safetensors", "nobody.safetensors"])  # the user copied the file over
    panel.reload_button.click()
    loop.run_until_complete(wait_until(lambda: panel.problem() == "" and panel.reload_button.isEnabled()))
    assert panel.models.current() == "nobody.safetensors"
    assert panel.models.where.text() == "On laptop."


def test_generate_is_off_with_the_reason_while_no_server_has_the_model(qtbot, loop, core, two_servers):
    from studio_gui.generate.tab import GenerateTab
    from studio_gui.tasks import TaskOwner

    core.settings.update(selected_service="comfyui")
    tasks = TaskOwner()
    tab = GenerateTab(core, tasks=tasks, extensions=False)
    qtbot.addWidget(tab)
    tab.show()
    try:
        loop.run_until_complete(tab.started())
        panel = tab.settings_panel
        loop.run_until_complete(wait_until(lambda: panel.models.availability_known()))
        tab.prompt_panel.prompt.setPlainText("a red potion")
        tab.apply_request(GenerationRequest(prompt="a red potion", service="comfyui", model="nobody.safetensors"))
        assert not tab.generate_button.isEnabled()
        assert "No enabled ComfyUI server has nobody.safetensors" in tab.generate_button.toolTip()
        assert tab.generate() is None  # nothing queued
        panel.models.select("shared.safetensors")
        assert tab.generate_button.isEnabled()
    finally:
        tab.closing()
        loop.run_until_complete(tasks.cancel_all())


def test_reload_asks_a_single_server_again_instead_of_its_cached_list(qtbot, loop, core, serve):
    fake = serve.start(ModelServer(["a.safetensors"]))
    serve(ComfyProvider(fake.url))
    panel = make_panel(qtbot, core)
    loop.run_until_complete(panel.load_models())
    fake.set_checkpoints(["a.safetensors", "new.safetensors"])
    loop.run_until_complete(panel.load_models())  # an ordinary reload keeps the provider's cached list
    assert panel.models.combo.findData("new.safetensors") < 0
    panel.reload_button.click()
    loop.run_until_complete(wait_until(lambda: panel.models.combo.findData("new.safetensors") >= 0))
