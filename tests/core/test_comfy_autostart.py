"""The start-up decision about ComfyUI lives in the core, so a script does what the window does."""

from __future__ import annotations

from types import SimpleNamespace

from studio_core.comfy_autostart import on_start, start_action
from tests.conftest import run_async


def test_start_action_follows_the_settings():
    assert start_action(SimpleNamespace(comfy_manage_server=True, comfy_url="http://x")) == "start"
    assert start_action(SimpleNamespace(comfy_manage_server=False, comfy_url="")) == "discover"
    assert start_action(SimpleNamespace(comfy_manage_server=False, comfy_url="http://127.0.0.1:8188")) == ""


def test_on_start_starts_the_managed_server():
    started: list[str] = []

    class Server:
        async def start(self):
            started.append("yes")
            return "http://127.0.0.1:9"

    core = SimpleNamespace(settings=SimpleNamespace(current=SimpleNamespace(comfy_manage_server=True, comfy_url="")),
                           comfy_server=Server())
    assert run_async(on_start(core)) == "start"
    assert started == ["yes"]
