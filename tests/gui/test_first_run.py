from __future__ import annotations

from studio_core.models import ProviderStatus, ServiceState
from tests.fakes import FakeProvider
from tests.gui.conftest import wait_until


def test_first_run_panel_reports_server_keys_and_folder(qtbot, loop, core, monkeypatch):
    from studio_gui.first_run import FirstRunPanel
    from studio_gui.tasks import TaskOwner

    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_fromtheenvironment")
    fake = FakeProvider("comfyui", status=ProviderStatus(ServiceState.ready, "ok", details=(("version", "0.3.64"),)))
    monkeypatch.setattr(core.services, "provider", lambda sid: fake)
    tasks = TaskOwner()
    panel = FirstRunPanel(core, tasks=tasks)
    qtbot.addWidget(panel)
    panel.show()
    loop.run_until_complete(wait_until(lambda: "0.3.64" in panel.comfy_label.text() and panel.store_label.text()))
    assert "is running" in panel.comfy_label.text()
    assert "Replicate" in panel.keys_label.text() and "REPLICATE_API_TOKEN" in panel.keys_label.text()
    assert "r8_fromtheenvironment" not in panel.keys_label.text()
    assert "password manager" in panel.store_label.text() or "private file" in panel.store_label.text()
    panel.accept()
    assert core.settings.current.first_run_done is True
    loop.run_until_complete(tasks.cancel_all())


def test_first_run_panel_says_what_to_do_without_comfyui(qtbot, loop, core, monkeypatch):
    from studio_gui.first_run import FirstRunPanel
    from studio_gui.tasks import TaskOwner

    fake = FakeProvider("comfyui", status=ProviderStatus(ServiceState.unreachable, "no"))
    monkeypatch.setattr(core.services, "provider", lambda sid: fake)
    tasks = TaskOwner()
    panel = FirstRunPanel(core, tasks=tasks)
    qtbot.addWidget(panel)
    loop.run_until_complete(wait_until(lambda: "No ComfyUI server" in panel.comfy_label.text()))
    assert "cloud service" in panel.comfy_label.text()
    assert "No cloud API keys" in panel.keys_label.text()
    loop.run_until_complete(tasks.cancel_all())
