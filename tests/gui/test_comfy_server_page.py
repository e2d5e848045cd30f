"""Settings → ComfyUI server: the address field, "Test connection", and the card's "set up" (issue 11, items 0 and 5)."""

from __future__ import annotations

import socket

import pytest

from studio_core.providers.comfy import discovery
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
    from studio_gui.comfy_settings.server_page import ServerPage

    p = ServerPage(core, tasks=tasks)
    qtbot.addWidget(p)
    return p


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def type_address(page, text: str) -> None:
    page.address.setText(text)
    page.address.editingFinished.emit()


@pytest.mark.parametrize("bad", ["ftp://host:8188", "http://", "http://127.0.0.1:99999", "htp//bad host"])
def test_bad_address_is_refused_in_place_and_not_saved(page, core, bad):
    type_address(page, "http://192.168.1.20:8188")
    type_address(page, bad)
    assert page.address_error.isVisible() or not page.address_error.isHidden()
    assert "http://127.0.0.1:8188" in page.address_error.text()  # says what a good one looks like
    assert core.settings.current.comfy_url == "http://192.168.1.20:8188"


def test_good_address_is_saved_normalised_and_empty_means_look_here(page, core):
    type_address(page, "192.168.1.20:8188/")
    assert core.settings.current.comfy_url == "http://192.168.1.20:8188" and page.address_error.isHidden()
    assert "your address" in page.in_use.text()
    type_address(page, "")
    assert core.settings.current.comfy_url == ""


def test_test_connection_reports_version_device_and_memory(page, loop):
    async def run():
        async with FakeComfyServer() as fake:
            type_address(page, fake.url)
            page.test_button.click()
            await wait_until(lambda: page.test_button.isEnabled() and "Testing" not in page.test_result.text())
            return fake.url

    url = loop.run_until_complete(run())
    text = page.test_result.text()
    assert text.startswith("✔") and "0.3.64" in text and url in text and "cpu" in text and "GB RAM free" in text


def test_test_connection_says_why_not(page, loop):
    url = closed_port_url()
    type_address(page, url)
    page.test_button.click()
    loop.run_until_complete(wait_until(lambda: page.test_button.isEnabled() and "Testing" not in page.test_result.text()))
    text = page.test_result.text()
    assert text.startswith("✕") and f"not running at {url}" in text and "Start ComfyUI" in text


def test_empty_address_test_finds_comfyui_desktop_on_8000(page, loop, core, monkeypatch):
    async def run():
        async with FakeComfyServer() as desktop:
            monkeypatch.setattr(discovery, "LOCAL_CANDIDATES", (closed_port_url(), desktop.url))
            type_address(page, "")
            page.test_button.click()
            await wait_until(lambda: page.test_button.isEnabled() and "Testing" not in page.test_result.text())
            return desktop.url

    url = loop.run_until_complete(run())
    assert page.test_result.text().startswith("✔") and f"found at {url}" in page.test_result.text()
    assert core.settings.current.comfy_active_url == url and core.settings.current.comfy_url == ""
    assert "found on this computer" in page.in_use.text()


def test_comfyui_card_set_up_opens_the_comfyui_server_page(qtbot, loop, core, tasks):
    from studio_gui.comfy_settings.server_page import ServerPage
    from studio_gui.services.selector import ServiceSelector

    sel = ServiceSelector(core, tasks=tasks)
    qtbot.addWidget(sel)
    sel.open_setup("comfyui")
    try:
        tabs = sel._dialog.tabs
        assert tabs.tabText(tabs.currentIndex()) == "ComfyUI server"
        assert isinstance(tabs.currentWidget(), ServerPage)
    finally:
        sel._dialog.close()
        sel.closing()
