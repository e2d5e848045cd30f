"""The ComfyUI address (issue 11, item 0): the user's address is kept apart from the managed
server's and from what was found on this computer; with none set, 8188 then 8000 are probed."""

from __future__ import annotations

import json
import socket

import pytest

from studio_core.providers.comfy import discovery
from studio_core.settings import DEFAULT_COMFY_URL, Settings, SettingsStore
from tests.comfy_fake_server import FakeComfyServer
from tests.conftest import run_async


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_active_url_prefers_managed_then_typed_then_found():
    s = Settings()
    assert s.comfy_url == "" and s.comfy_active_url == DEFAULT_COMFY_URL
    s = s.replace(comfy_found_url="http://127.0.0.1:8000")
    assert s.comfy_active_url == "http://127.0.0.1:8000"
    s = s.replace(comfy_url="http://192.168.1.20:8188")
    assert s.comfy_active_url == "http://192.168.1.20:8188"
    s = s.replace(comfy_managed_url="http://127.0.0.1:51234")
    assert s.comfy_active_url == "http://127.0.0.1:51234" and s.comfy_url == "http://192.168.1.20:8188"


def test_runtime_urls_are_never_written_or_read(tmp_path):
    path = tmp_path / "settings.json"
    store = SettingsStore(path)
    store.update(comfy_url="http://10.0.0.5:8188")
    store.update(comfy_managed_url="http://127.0.0.1:51234", comfy_found_url="http://127.0.0.1:8000")
    data = json.loads(path.read_text())
    assert data["comfy_url"] == "http://10.0.0.5:8188"
    assert "comfy_managed_url" not in data and "comfy_found_url" not in data and "51234" not in path.read_text()
    data["comfy_managed_url"] = "http://127.0.0.1:40000"  # a hand-edited file cannot smuggle one in
    path.write_text(json.dumps(data))
    again = SettingsStore(path).current
    assert again.comfy_managed_url == "" and again.comfy_active_url == "http://10.0.0.5:8188"


@pytest.mark.parametrize("saved,managed,expected", [
    ("http://127.0.0.1:8188", False, ""),  # schema 1 wrote its default into every file
    ("http://127.0.0.1:41873", True, ""),  # the managed server's random port, saved by the old bug
    ("http://127.0.0.1:41873", False, "http://127.0.0.1:41873"),  # no managed server: the user typed it
    ("http://127.0.0.1:8189", True, "http://127.0.0.1:8189"),
    ("http://192.168.1.20:50000", True, "http://192.168.1.20:50000"),
])
def test_schema_1_files_keep_only_what_the_user_typed(tmp_path, saved, managed, expected):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"schema_version": 1, "comfy_url": saved,
                                "comfy_server_folder": "/opt/ComfyUI" if managed else ""}))
    assert SettingsStore(path).current.comfy_url == expected


def test_probe_picks_8000_when_only_8000_answers(monkeypatch):
    async def main():
        async with FakeComfyServer() as desktop:
            # The two well-known ports, stood in for by loopback ports this test owns.
            monkeypatch.setattr(discovery, "LOCAL_CANDIDATES", (closed_port_url(), desktop.url))
            return desktop.url, await discovery.find_local_server()

    desktop, found = run_async(main())
    assert found == desktop


def test_probe_prefers_8188_when_both_answer_and_ignores_non_comfy(monkeypatch):
    from tests.comfy_fake_server import Behaviour

    async def main():
        async with FakeComfyServer(behaviour=Behaviour(html=True)) as router, \
                FakeComfyServer() as first, FakeComfyServer() as second:
            monkeypatch.setattr(discovery, "LOCAL_CANDIDATES", (first.url, second.url))
            both = await discovery.find_local_server()
            only_web_page = await discovery.find_local_server((router.url,))
            return first.url, both, only_web_page

    first, both, only_web_page = run_async(main())
    assert both == first and only_web_page is None


def test_refresh_found_url_only_without_a_typed_address(tmp_path, monkeypatch):
    async def main():
        async with FakeComfyServer() as desktop:
            monkeypatch.setattr(discovery, "LOCAL_CANDIDATES", (closed_port_url(), desktop.url))
            store = SettingsStore(tmp_path / "settings.json")
            found = await discovery.refresh_found_url(store)
            active = store.current.comfy_active_url
            store.update(comfy_url="http://10.0.0.5:8188")
            again = await discovery.refresh_found_url(store)
            await store.flush()
            store.close()
            return desktop.url, found, active, again, store

    desktop, found, active, again, store = run_async(main())
    assert found == desktop and active == desktop
    assert again is None and store.current.comfy_active_url == "http://10.0.0.5:8188"
    assert desktop not in store.path.read_text()
