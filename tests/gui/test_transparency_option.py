"""The Generate tab's "Transparent background" option: request options and note per
service, ComfyUI's node from object_info, and the in-app copy with its message."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from studio_core.errors import ProviderUnavailable
from studio_core.models import GenerationRequest, JobImage, JobStarted
from tests.fakes import FakeProvider
from tests.gui.conftest import shown_generate_tab, wait_until

BRIA = {
    "BRIA_RMBG_ModelLoader_Zho": {"input": {"required": {}}, "output": ["RMBGMODEL"], "output_node": False},
    "BRIA_RMBG_Zho": {"input": {"required": {"rmbgmodel": ["RMBGMODEL"], "image": ["IMAGE"]}},
                      "output": ["IMAGE", "MASK"], "output_node": False},
    "KSampler": {"input": {"required": {}}, "output": ["LATENT"]},
}


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def sprite_on_key() -> bytes:
    img = Image.new("RGB", (96, 96), (10, 250, 20))
    ImageDraw.Draw(img).ellipse((20, 16, 76, 86), fill=(170, 40, 50))
    return png(img)


def busy_image() -> bytes:
    g = Image.linear_gradient("L").resize((64, 64))
    return png(Image.merge("RGB", (g, g.rotate(90), g.rotate(180))))


class ComfyStub:
    id = "comfyui"

    def __init__(self, info=None, error: Exception | None = None):
        self.info, self.error, self.calls = info, error, 0

    async def object_info(self, *, refresh: bool = False):
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.info


@pytest.fixture
def tab(qtbot, core, loop):
    with shown_generate_tab(qtbot, core, loop, service="openai") as w:
        yield w


def planned(tab) -> GenerationRequest:
    """The first request the core's session expands the tab's order into (what is queued)."""
    return tab.plan(tab.build_order()).requests[0]


def settle(loop, core, tab) -> None:
    # The core's pipeline makes the transparent copy before the job ends: no extra wait.
    loop.run_until_complete(wait_until(lambda: not core.jobs.busy and tab.tasks.running == 0))


def test_checkbox_sets_request_options_and_note_per_service(tab, loop, core):
    opt = tab.transparency
    assert opt is not None and opt.checkbox.text() == "Transparent background"
    assert not opt.checkbox.isChecked() and not opt.note.isVisibleTo(tab)
    tab.prompt_panel.prompt.setPlainText("a slime")
    assert tab.build_request().options == ()  # off: the request is untouched

    opt.checkbox.setChecked(True)
    assert core.settings.current.transparent_background is True  # persisted
    assert opt.note.isVisibleTo(tab) and opt.note.text() == "OpenAI makes it transparent itself."
    req = planned(tab)
    assert req.option("background") == "transparent" and req.option("background_method") == "provider"
    assert req.prompt == "a slime"

    for service, name in (("azure", "Azure OpenAI"), ("bedrock", "AWS Bedrock")):
        core.settings.update(selected_service=service)
        assert opt.note.text() == f"{name} makes it transparent itself."
        req = planned(tab)
        assert req.service == service and req.option("background") == "transparent"

    core.settings.update(selected_service="huggingface")
    assert opt.note.text().startswith("The studio removes a plain key-colour background after generation")
    req = planned(tab)
    assert req.option("background_method") == "in_app" and req.option("background") is None
    assert req.prompt.startswith("a slime, isolated on a plain flat solid green background")
    assert "gradient background" in req.negative_prompt

    # A reused in-app prompt already has the key words: not added twice; the option follows the request.
    opt.checkbox.setChecked(False)
    tab.apply_request(req)
    assert opt.checkbox.isChecked()
    assert planned(tab).prompt.count("green background") == 1
    opt.checkbox.setChecked(False)
    assert core.settings.current.transparent_background is False
    assert planned(tab).option("background_method") is None
    settle(loop, core, tab)


def test_choice_persists_for_the_next_tab(qtbot, core, loop):
    from studio_gui.generate.transparency import TransparencyOption
    from studio_gui.tasks import TaskOwner

    core.settings.update(transparent_background=True, selected_service="openai")
    tasks = TaskOwner()
    w = TransparencyOption(core, tasks=tasks)
    qtbot.addWidget(w)
    assert w.checkbox.isChecked() and w.enabled
    loop.run_until_complete(tasks.cancel_all())


def test_comfyui_uses_a_removal_node_from_the_servers_object_info(qtbot, core, loop, monkeypatch):
    from studio_gui.generate.transparency import TransparencyOption
    from studio_gui.tasks import TaskOwner

    stub = ComfyStub(BRIA)
    real = core.services.provider
    monkeypatch.setattr(core.services, "provider", lambda s: stub if s == "comfyui" else real(s))
    core.settings.update(selected_service="comfyui", transparent_background=True)
    tasks = TaskOwner()
    w = TransparencyOption(core, tasks=tasks)
    qtbot.addWidget(w)
    loop.run_until_complete(w.started())
    assert stub.calls == 1
    assert w.note.text() == "ComfyUI node BRIA_RMBG_Zho on your server removes the background."
    req = w.decorate(GenerationRequest("a slime", service="comfyui"))
    assert req.option("background_node") == "BRIA_RMBG_Zho" and req.option("background_method") == "comfy_node"
    assert req.prompt == "a slime"
    # A custom workflow can't get the node: the studio keys the background out instead.
    req = w.decorate(GenerationRequest("a slime", service="comfyui", options={"workflow": "{}"}))
    assert req.option("background_node") is None and req.option("background_method") == "in_app"
    loop.run_until_complete(tasks.cancel_all())


def test_comfyui_without_node_list_falls_back_to_the_app(qtbot, core, loop, monkeypatch):
    from studio_gui.generate.transparency import TransparencyOption
    from studio_gui.tasks import TaskOwner

    stub = ComfyStub(error=ProviderUnavailable("refused"))
    monkeypatch.setattr(core.services, "provider", lambda s: stub)
    core.settings.update(selected_service="comfyui", transparent_background=True)
    tasks = TaskOwner()
    w = TransparencyOption(core, tasks=tasks)
    qtbot.addWidget(w)
    loop.run_until_complete(w.started())
    assert "No background-removal node found on your ComfyUI server" in w.note.text()
    assert w.note.text().startswith("The studio removes a plain key-colour background")
    req = w.decorate(GenerationRequest("a slime", service="comfyui"))
    assert req.option("background_method") == "in_app" and "green background" in req.prompt
    loop.run_until_complete(tasks.cancel_all())


def test_in_app_copy_is_listed_and_a_busy_image_gives_a_message(tab, loop, core):
    core.settings.update(selected_service="huggingface")
    tab.transparency.checkbox.setChecked(True)
    fake = FakeProvider(script=[JobStarted(""), JobImage("", sprite_on_key(), seed=1)])
    core.jobs.provider_for = lambda s: fake
    tab.prompt_panel.prompt.setPlainText("a slime")
    assert tab.generate() is not None
    loop.run_until_complete(wait_until(lambda: tab.results_model.rowCount() == 2))
    assert fake.requests[0].option("background_method") == "in_app"
    names = sorted(Path(tab.results_model.abs_path(r)).name for r in tab.session_results())
    original, copy = names[0], names[1]
    assert copy == original[:-4] + "_transparent.png"
    with Image.open(core.paths.images / copy) as img:
        assert img.mode == "RGBA" and img.getpixel((0, 0))[3] == 0
    assert not tab.transparency.message.isVisible()
    settle(loop, core, tab)

    fake.script = [JobStarted(""), JobImage("", busy_image(), seed=2)]
    assert tab.generate() is not None
    loop.run_until_complete(wait_until(lambda: tab.transparency.message.isVisible()))
    assert "no plain background" in tab.transparency.message.text()
    assert "original is kept" in tab.transparency.message.text()
    # Also shown on the progress line (best effort: the job's end may clear that line).
    assert tab.progress.notice.text() == tab.transparency.message.text()
    assert not tab.error_area.isVisible()
    settle(loop, core, tab)
    assert tab.results_model.rowCount() == 3  # the busy image itself, no copy
