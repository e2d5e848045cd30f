from __future__ import annotations

import shiboken6

import asyncio

import pytest
from PySide6.QtCore import Qt

from studio_core.errors import DependencyMissing
from studio_core.models import ProviderStatus, ServiceState
from studio_core.settings import SettingsStore
from studio_gui.tasks import TaskOwner
from tests.gui.conftest import wait_until
from tests.gui.services_helpers import NEEDS_KEY, READY, UNREACHABLE, FakeServices


@pytest.fixture
def tasks(loop):
    owner = TaskOwner()
    yield owner
    loop.run_until_complete(owner.cancel_all())


@pytest.fixture
def make_selector(qtbot, loop, core, tasks):
    made = []

    def make():
        from studio_gui.services.selector import ServiceSelector

        sel = ServiceSelector(core, tasks=tasks)
        qtbot.addWidget(sel)
        sel.resize(240, 700)
        sel.show()
        made.append(sel)
        return sel

    yield make
    for sel in made:
        sel.closing()
        if sel._dialog is not None:
            sel._dialog.close()


def settle(loop, tasks):
    loop.run_until_complete(wait_until(lambda: tasks.running == 0))


def test_cards_show_every_service_with_price_capabilities_and_model(loop, core, monkeypatch, make_selector, tasks):
    FakeServices(core, monkeypatch)
    sel = make_selector()
    loop.run_until_complete(sel.started())
    settle(loop, tasks)
    assert list(sel.cards) == [s.id for s in core.services.all()]
    comfy = sel.cards["comfyui"]
    assert comfy.price_text == "free"
    assert comfy.caps_text.startswith("local")
    hf = sel.cards["huggingface"]
    assert hf.price_text.startswith("$") and hf.price_text.endswith("/img")
    assert hf.caps_text.startswith("cloud")
    assert hf.model_id == "black-forest-labs/FLUX.1-schnell"
    assert hf.model.full_text() == "model: FLUX.1 [schnell]"  # the catalog's label
    assert "black-forest-labs/FLUX.1-schnell" in hf.toolTip()
    openai = sel.cards["openai"]
    assert "transparent" in openai.caps_text
    # the model in use follows the provider settings
    core.settings.update_provider("openai", model="my-own-model")
    assert openai.model.full_text() == "model: my-own-model"
    assert openai.price_text == "price unknown"


def test_status_dots_follow_background_checks(loop, core, monkeypatch, make_selector, tasks):
    FakeServices(core, monkeypatch, {
        "comfyui": UNREACHABLE,
        "openai": NEEDS_KEY,
        "google": ProviderStatus(ServiceState.error, "Google said no."),
        "azure": DependencyMissing("openai"),
    })
    sel = make_selector()
    loop.run_until_complete(sel.started())
    settle(loop, tasks)
    states = {sid: c.state for sid, c in sel.cards.items()}
    assert states["huggingface"] == "ready"
    assert states["comfyui"] == "unreachable"
    assert states["openai"] == "needs_key"
    assert states["google"] == "error"
    assert states["azure"] == "not_installed"
    assert "pip install" in sel.cards["azure"].toolTip()
    assert "Google said no." in sel.cards["google"].toolTip()
    assert "needs a key" in sel.cards["openai"].state_text.text()
    assert sel.cards["openai"].accessibleName().startswith("OpenAI")


def test_a_slow_check_never_blocks_the_others(loop, core, monkeypatch, make_selector, tasks):
    fakes = FakeServices(core, monkeypatch)

    async def never_answers():
        await asyncio.sleep(3600)

    fakes.providers["replicate"].check = never_answers
    sel = make_selector()
    loop.run_until_complete(sel.started())
    loop.run_until_complete(wait_until(lambda: sel.cards["openai"].state == "ready"))
    assert sel.cards["replicate"].state == "checking"
    sel.closing()
    settle(loop, tasks)


def test_clicking_a_ready_card_selects_and_persists(qtbot, loop, core, monkeypatch, make_selector, tasks):
    FakeServices(core, monkeypatch)
    sel = make_selector()
    loop.run_until_complete(sel.started())
    settle(loop, tasks)
    with qtbot.waitSignal(sel.service_changed) as sig:
        qtbot.mouseClick(sel.cards["replicate"], Qt.MouseButton.LeftButton)
    assert sig.args == ["replicate"]
    assert core.settings.current.selected_service == "replicate"
    loop.run_until_complete(core.settings.flush())
    assert SettingsStore(core.paths.settings_file).current.selected_service == "replicate"
    assert sel.cards["replicate"].property("selected") is True
    assert sel.cards["comfyui"].property("selected") is False
    # keyboard works too
    sel.cards["huggingface"].setFocus()
    qtbot.keyClick(sel.cards["huggingface"], Qt.Key.Key_Space)
    assert core.settings.current.selected_service == "huggingface"


def test_a_card_that_needs_setup_opens_its_settings_page(qtbot, loop, core, monkeypatch, make_selector, tasks):
    fakes = FakeServices(core, monkeypatch, {"openai": NEEDS_KEY})
    sel = make_selector()
    loop.run_until_complete(sel.started())
    settle(loop, tasks)
    qtbot.mouseClick(sel.cards["openai"], Qt.MouseButton.LeftButton)
    assert core.settings.current.selected_service == "comfyui"  # not selected, and no error dialog
    dlg = sel._dialog
    assert dlg is not None and dlg.isVisible()
    page = dlg.tabs.currentWidget()
    assert dlg.tabs.tabText(dlg.tabs.currentIndex()) == "Services"
    assert page.list.currentItem().data(Qt.ItemDataRole.UserRole) == "openai"
    settle(loop, tasks)
    # The user pastes a key and tests it: the card turns ready and becomes the choice.
    fakes.set("openai", READY)
    op = page.page("openai")
    op.key_edit.setText("sk-test-0123456789abcdef")
    loop.run_until_complete(op.test_connection())
    settle(loop, tasks)
    assert sel.cards["openai"].state == "ready"
    assert core.settings.current.selected_service == "openai"


def test_refresh_button_checks_again(qtbot, loop, core, monkeypatch, make_selector, tasks):
    fakes = FakeServices(core, monkeypatch, {"comfyui": UNREACHABLE})
    sel = make_selector()
    loop.run_until_complete(sel.started())
    settle(loop, tasks)
    assert sel.cards["comfyui"].state == "unreachable"
    fakes.set("comfyui", READY)
    qtbot.mouseClick(sel.refresh_button, Qt.MouseButton.LeftButton)
    assert sel.cards["comfyui"].state == "checking"
    settle(loop, tasks)
    assert sel.cards["comfyui"].state == "ready"


def test_changed_provider_settings_trigger_a_recheck(loop, core, monkeypatch, make_selector, tasks):
    fakes = FakeServices(core, monkeypatch, {"bedrock": ProviderStatus(ServiceState.error, "No such region.")})
    sel = make_selector()
    loop.run_until_complete(sel.started())
    settle(loop, tasks)
    assert sel.cards["bedrock"].state == "error"
    fakes.set("bedrock", READY)
    core.settings.update_provider("bedrock", region="us-west-2")
    settle(loop, tasks)
    assert sel.cards["bedrock"].state == "ready"


def test_a_broken_catalog_still_shows_the_services(loop, core, monkeypatch, tmp_path):
    from studio_gui.services import facts

    bad = tmp_path / "cloud_models.json"
    bad.write_text('{"providers": {"openai": {"models": [{"id": "x", "price_per_image": "abc", "max_size": 7}, 3]}, "hf": 5}}')
    parsed = facts.load_catalog(bad)
    assert parsed["openai"].models[0].price is None
    assert parsed["openai"].default_model == "x"
    bad.write_text("not json")
    assert facts.load_catalog(bad) == {}
    assert facts.format_price(None) == "price unknown"
    assert facts.format_price(0.0012) == "$0.0012/img"
    assert facts.format_price(0.04) == "$0.04/img"


class _FakeIndex:
    def __init__(self):
        self.calls = 0

    async def aclose(self):  # the core closes whatever index it holds
        pass

    async def spend_summary(self):
        import time

        from studio_core.storage.records import SpendSummary

        self.calls += 1
        today = time.strftime("%Y-%m-%d", time.gmtime())
        cost = 0.04 * self.calls
        return SpendSummary(today=cost, this_month=cost + 1, total=cost + 1,
                            per_day=(("openai", today, cost),), per_month=(("openai", today[:7], cost + 1),))


def test_spend_label_shows_today_and_month_and_refreshes_after_saves(qtbot, loop, core, tasks):
    from studio_gui.services.spend import SpendLabel

    core.index = _FakeIndex()
    label = SpendLabel(core, tasks=tasks)
    qtbot.addWidget(label)
    loop.run_until_complete(label.started())
    assert label.text() == "spend today $0.04 · month $1.04"
    assert "OpenAI: today $0.04, this month $1.04" in label.toolTip()
    from studio_core.changes import ImageSaved
    from studio_core.models import SavedImage

    saved = ImageSaved(SavedImage(path=core.paths.images / "x.png", request=None, created="2026-01-01T00:00:00Z"))
    core.changes.publish(saved)  # through the core's change stream and its bridge
    settle(loop, tasks)
    assert label.text() == "spend today $0.08 · month $1.08"
    calls = core.index.calls
    label.deleteLater()
    qtbot.waitUntil(lambda: not shiboken6.isValid(label))
    core.changes.publish(saved)  # a deleted label is no longer connected: nothing runs
    settle(loop, tasks)
    assert core.index.calls == calls


def test_spend_label_hides_without_an_index(qtbot, loop, core, tasks):
    from studio_gui.services.spend import SpendLabel

    core.index = None
    label = SpendLabel(core, tasks=tasks)
    qtbot.addWidget(label)
    label.show()
    loop.run_until_complete(label.started())
    assert not label.isVisible()


def test_fallback_page_orders_and_enables(qtbot, loop, core):
    from studio_gui.services.fallback_page import FallbackPage

    core.settings.update(fallback_services=("replicate",))
    page = FallbackPage(core)
    qtbot.addWidget(page)
    assert page.order()[0] == "replicate"
    assert page.enabled() == ("replicate",)
    page.set_enabled("openai", True)
    assert core.settings.current.fallback_services == ("replicate", "openai")
    page.list.setCurrentRow(page.order().index("openai"))
    while page.order().index("openai") > 0:
        page.move(-1)
    assert core.settings.current.fallback_services == ("openai", "replicate")
    assert not page.up_button.isEnabled()
    assert "OpenAI → Replicate" in page.summary.text()
    page.set_enabled("replicate", False)
    loop.run_until_complete(core.settings.flush())
    assert SettingsStore(core.paths.settings_file).current.fallback_services == ("openai",)


def test_main_window_has_spend_in_status_bar_and_services_in_settings(qtbot, loop, core, monkeypatch):
    from studio_gui.main_window import MainWindow
    from studio_gui.settings_dialog import PAGES

    FakeServices(core, monkeypatch)
    titles = [t for t, _ in PAGES]
    assert "Services" in titles and "Fallback" in titles
    w = MainWindow(core)
    qtbot.addWidget(w)
    w.show()
    loop.run_until_complete(w.started())
    loop.run_until_complete(wait_until(lambda: all(c.state == "ready" for c in w.services.cards.values())))
    assert w.spend.parent() is not None
    w.close()
    loop.run_until_complete(w.tasks.cancel_all())


def test_an_error_card_opens_settings_but_an_unreachable_one_is_selected(qtbot, loop, core, monkeypatch, make_selector,
                                                                         tasks):
    FakeServices(core, monkeypatch, {
        "azure": ProviderStatus(ServiceState.error, "The Azure OpenAI endpoint must be a web address."),
        "comfyui": UNREACHABLE,
    })
    sel = make_selector()
    loop.run_until_complete(sel.started())
    settle(loop, tasks)
    core.settings.update(selected_service="openai")
    qtbot.mouseClick(sel.cards["azure"], Qt.MouseButton.LeftButton)
    assert core.settings.current.selected_service == "openai"
    assert sel._dialog.tabs.currentWidget().list.currentItem().data(Qt.ItemDataRole.UserRole) == "azure"
    sel._dialog.close()
    qtbot.mouseClick(sel.cards["comfyui"], Qt.MouseButton.LeftButton)
    assert core.settings.current.selected_service == "comfyui"
    settle(loop, tasks)


def test_keyless_cloud_services_show_needs_key_without_loading_their_sdk(loop, core, monkeypatch, make_selector, tasks,
                                                                       tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.aws, no gcloud ADC
    monkeypatch.delenv("CLOUDSDK_CONFIG", raising=False)
    fakes = FakeServices(core, monkeypatch, with_keys=False)
    asked: list[str] = []
    real = fakes.provider
    monkeypatch.setattr(core.services, "provider", lambda sid: asked.append(sid) or real(sid))
    sel = make_selector()
    loop.run_until_complete(sel.started())
    settle(loop, tasks)
    for sid in ("huggingface", "replicate", "openai", "azure", "bedrock", "google"):
        assert sel.cards[sid].state == "needs_key", sid
        assert sid not in asked
    assert "comfyui" in asked


def test_ambient_cloud_credentials_are_checked(loop, core, monkeypatch, make_selector, tasks, tmp_path):
    """AWS profiles/SSO and Google ADC need no stored key, so those services are asked."""
    home = tmp_path / "home"
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "config").write_text("[default]\nregion = us-east-1\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "adc.json"))
    fakes = FakeServices(core, monkeypatch, with_keys=False)
    asked: list[str] = []
    real = fakes.provider
    monkeypatch.setattr(core.services, "provider", lambda sid: asked.append(sid) or real(sid))
    sel = make_selector()
    loop.run_until_complete(sel.started())
    settle(loop, tasks)
    assert "bedrock" in asked and "google" in asked
    assert "openai" not in asked


def test_refresh_keeps_an_unset_azure_card_at_needs_key(loop, core, monkeypatch, make_selector, tasks, tmp_path):
    """Issue 11 item 8: after ↻ the unset Azure card said "error" with "endpoint must be a web
    address (got '')" while its neighbours said "needs a key". The real Azure provider is used."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CLOUDSDK_CONFIG", raising=False)
    for var in ("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_KEY"):
        monkeypatch.delenv(var, raising=False)
    sel = make_selector()
    loop.run_until_complete(sel.started())
    settle(loop, tasks)
    assert sel.cards["azure"].state == "needs_key"
    sel.refresh()
    settle(loop, tasks)
    card = sel.cards["azure"]
    assert card.state == "needs_key", card.status
    assert "web address" not in card.toolTip() and "Endpoint" in card.status.message
    assert card.needs_setup  # a click opens its settings page


def test_azure_with_a_key_but_no_endpoint_needs_setup(loop, core, monkeypatch, make_selector, tasks):
    core.secrets.set("azure", "test-key-azure-0000")
    sel = make_selector()
    sel.check("azure")
    settle(loop, tasks)
    card = sel.cards["azure"]
    assert card.state == "needs_setup" and card.needs_setup
    assert card.state_text.text().startswith("needs setup")
    assert "Endpoint and Deployment" in card.status.message
    # Entra ID sign-in needs no key; the endpoint and deployment are still asked for.
    from studio_gui.services.checks import setup_gap

    assert setup_gap("azure", {"auth": "entra"}, key_source=None).detail("needs_setup") == ("Endpoint", "Deployment")
    assert setup_gap("azure", {"auth": "entra", "endpoint": "https://x.openai.azure.com", "deployment": "d"},
                     key_source=None) is None
    assert setup_gap("comfyui", {}, key_source=None) is None


def test_card_titles_are_whole_at_the_default_width_or_carry_a_tooltip(qtbot, loop, core, monkeypatch):
    from studio_gui.main_window import MainWindow

    FakeServices(core, monkeypatch, {sid: READY for sid in ("comfyui",)})
    window = MainWindow(core)
    qtbot.addWidget(window)
    window.resize(1280, 800)
    window.show()
    qtbot.waitExposed(window)
    cards = window.services.cards.values()
    assert not [c.name for c in cards if c.title.is_elided()]
    # Narrowed by the user, a shortened title keeps its whole text one hover away.
    window.splitter.setSizes([150, 1130])
    loop.run_until_complete(asyncio.sleep(0.05))
    elided = [c for c in cards if c.title.is_elided()]
    assert elided and all(c.title.toolTip() == c.name for c in elided)


def test_services_column_does_not_scroll_when_every_card_fits(qtbot, loop, core, monkeypatch):
    from PySide6.QtWidgets import QScrollArea

    from studio_gui.main_window import MainWindow

    FakeServices(core, monkeypatch)
    window = MainWindow(core)
    qtbot.addWidget(window)
    window.resize(1366, 768)  # the size of the report
    window.show()
    qtbot.waitExposed(window)
    scroll = window.services.findChild(QScrollArea)
    body = scroll.widget()
    assert body.heightForWidth(scroll.viewport().width()) < scroll.viewport().height()
    assert scroll.verticalScrollBar().maximum() == 0
