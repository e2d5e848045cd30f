"""Settings → ComfyUI servers: the list (add, edit, remove, reorder, enable), the entry form
with its checks in words, secrets to the keyring only, Test connection, Find local servers,
and the polled state of each server in its row (issue 13)."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt

from studio_core.changes import PoolStateChanged
from studio_core.pool.member import ServerState
from studio_core.pool.server_list import MANAGED_ID, MY_PC_ID
from studio_core.pool.servers import ServerSpec
from tests.comfy_fake_server import FakeComfyServer
from tests.gui.conftest import wait_until


@pytest.fixture
def tasks(loop):
    from studio_gui.tasks import TaskOwner

    owner = TaskOwner()
    yield owner
    loop.run_until_complete(owner.cancel_all())


@pytest.fixture
def page(qtbot, core, tasks):
    from studio_gui.servers.page import ServersPage

    core.settings.update(comfy_url="http://192.168.1.20:8188",
                         comfy_servers=({"id": MY_PC_ID, "name": "my PC", "url": "http://192.168.1.20:8188"},))
    p = ServersPage(core, tasks=tasks)
    qtbot.addWidget(p)
    return p


def rows(page) -> list[str]:
    return [page.list.item(i).text() for i in range(page.list.count())]


def ids(core) -> list[str]:
    return [d["id"] for d in core.settings.current.comfy_servers]


def fill(editor, **values) -> None:
    for name, value in values.items():
        w = getattr(editor, name)
        if hasattr(w, "setPlainText"):
            w.setPlainText(value)
        elif hasattr(w, "setChecked"):
            w.setChecked(value)
        elif hasattr(w, "setValue"):
            w.setValue(value)
        else:
            w.setText(value)


def test_list_shows_my_pc_and_the_managed_server_read_only(page, core):
    core.settings.update(comfy_managed_url="http://127.0.0.1:40999")
    page.reload()
    text = rows(page)
    assert text[0].startswith("Started by the app — http://127.0.0.1:40999") and "my PC — http://192.168.1.20:8188" in text[1]
    page.list.setCurrentRow(0)
    assert not page.edit_button.isEnabled() and not page.remove_button.isEnabled()
    page.list.setCurrentRow(1)
    assert page.edit_button.isEnabled()
    assert core.settings.current.comfy_url == "http://192.168.1.20:8188"


def test_add_an_entry_with_a_token_keeps_the_token_out_of_settings(page, core, loop, paths):
    editor = page.open_editor(None)
    fill(editor, name="the laptop", url="10.0.0.5:8188", use_auth=True, auth="Bearer abc-secret-123",
         headers="ngrok-skip-browser-warning: 1", running=2)
    editor._on_save()
    loop.run_until_complete(wait_until(lambda: "the-laptop" in ids(core)))
    entry = core.settings.current.comfy_servers[-1]
    assert entry["url"] == "http://10.0.0.5:8188" and entry["uses_auth"] and entry["running_slots"] == 2
    assert entry["extra_headers"] == [["ngrok-skip-browser-warning", "1"]]
    assert core.secrets.get("pool-server:the-laptop:auth") == "Bearer abc-secret-123"
    loop.run_until_complete(core.settings.flush())
    assert "abc-secret-123" not in core.settings.path.read_text()
    assert any("the laptop — http://10.0.0.5:8188" in r and "token" in r for r in rows(page))


@pytest.mark.parametrize("url, words", [
    ("ftp://nas:8188", "must start with http:// or https://"),
    ("http://host:99999", "port must be a number"),
    ("http://user:pw@host:8188", "Don't put a user name or password"),
    ("", "Enter the server's address"),
])
def test_bad_address_is_refused_in_words_and_nothing_is_saved(page, core, url, words):
    before = core.settings.current.comfy_servers
    editor = page.open_editor(None)
    fill(editor, name="x", url=url)
    editor._on_save()
    assert words in editor.error.text() and not editor.error.isHidden()
    assert editor.result_spec is None and core.settings.current.comfy_servers == before


def test_token_needed_but_not_entered_and_broken_header_line_are_named(page):
    editor = page.open_editor(None)
    fill(editor, name="lan", url="http://10.0.0.9:8188", use_auth=True)
    editor._on_save()
    assert "Enter the Authorization value" in editor.error.text()
    fill(editor, auth="tok", headers="X-One: 1\nbroken line")
    editor._on_save()
    assert "line 2" in editor.error.text()
    fill(editor, headers="", trust=True, fingerprint="12:34")
    editor._on_save()
    assert "https://" in editor.error.text() or "SHA-256" in editor.error.text()


def test_reorder_disable_and_remove(page, core):
    core.settings.update(comfy_servers=core.settings.current.comfy_servers + (
        ServerSpec(id="laptop", name="laptop", url="http://10.0.0.5:8188").to_dict(),))
    page.reload()
    page.list.setCurrentRow(1)
    page.up_button.click()
    assert ids(core) == ["laptop", MY_PC_ID]
    page.list.item(1).setCheckState(Qt.CheckState.Unchecked)
    assert [d["enabled"] for d in core.settings.current.comfy_servers] == [True, False]
    page.list.setCurrentRow(0)
    page.remove_button.click()
    assert ids(core) == [MY_PC_ID]


def test_test_connection_in_the_form_reports_the_server(page, loop):
    async def main():
        async with FakeComfyServer() as fake:
            editor = page.open_editor(None)
            fill(editor, name="fake", url=fake.url)
            editor._on_test()
            await wait_until(lambda: editor.test_result.text() not in ("", "Testing…"))
            return editor.test_result.text()

    text = loop.run_until_complete(main())
    assert text.startswith("✔ ComfyUI") and "running on" in text


def test_find_local_servers_adds_what_answers(page, core, loop, monkeypatch):
    from studio_core.providers.comfy import discovery

    async def main():
        async with FakeComfyServer() as fake:
            monkeypatch.setattr(discovery, "LOCAL_CANDIDATES", (fake.url, "http://127.0.0.1:1"))
            page.find_button.click()
            await wait_until(lambda: page.find_button.isEnabled())
            return fake.url

    url = loop.run_until_complete(main())
    assert any(d["url"] == url and d["may_be_off"] for d in core.settings.current.comfy_servers)
    assert "Added " + url in page.note.text()


def test_rows_show_the_polled_state(page, core):
    state = ServerState(id=MY_PC_ID, name="my PC", url="http://192.168.1.20:8188", state="running", queue_length=3,
                        vram_total=8 * 2**30, vram_free=2 * 2**30)
    core.changes.publish(PoolStateChanged((state,)))
    assert "● my PC" in rows(page)[0] and "3 in queue" in rows(page)[0] and "2.0 of 8.0 GB free" in rows(page)[0]
    off = ServerState(id=MY_PC_ID, name="my PC", url="x", state="idle", message="not answering (may be switched off)")
    core.changes.publish(PoolStateChanged((off,)))
    assert "○ my PC" in rows(page)[0] and "may be switched off" in rows(page)[0]


def test_page_is_registered_in_settings():
    from studio_gui.settings_dialog import PAGES

    assert "ComfyUI servers" in [t for t, _ in PAGES]


def test_status_button_sums_the_pool(qtbot, core, tasks):
    from studio_gui.comfy_settings.health_panel import HealthStatusButton

    button = HealthStatusButton(core, tasks=tasks)
    qtbot.addWidget(button)
    one = ServerState(id="a", name="a", url="http://a", state="running", queue_length=1)
    core.changes.publish(PoolStateChanged((one,)))
    assert button.pool_text() == ""  # one server: its own line (version, device) says more
    servers = (one, ServerState(id="b", name="b", url="http://b", state="running", queue_length=3),
               ServerState(id="c", name="c", url="http://c", state="idle"))
    core.changes.publish(PoolStateChanged(servers))
    assert button.text() == "ComfyUI: 2 of 3 servers running · queue 4 · 1 switched off"
