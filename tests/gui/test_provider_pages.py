from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from studio_core.errors import DependencyMissing
from studio_core.models import ProviderStatus, ServiceState
from studio_gui.tasks import TaskOwner
from tests.gui.conftest import wait_until
from tests.gui.services_helpers import READY, FakeServices

KEY = "sk-proj-abcdefghijklmnop1234WXYZ"


@pytest.fixture
def tasks(loop):
    owner = TaskOwner()
    yield owner
    loop.run_until_complete(owner.cancel_all())


@pytest.fixture
def services_page(qtbot, loop, core, tasks):
    from studio_gui.services.provider_pages import ServicesPage

    page = ServicesPage(core, tasks=tasks)
    qtbot.addWidget(page)
    page.resize(760, 560)
    page.show()
    for sid in page.pages:  # each page is built on first use; these tests look at them all
        page.page(sid)
    loop.run_until_complete(wait_until(lambda: tasks.running == 0))
    return page


def all_text(widget) -> str:
    return "\n".join(lbl.text() for lbl in widget.findChildren(QLabel)) + widget.findChild(QLabel).text()


def test_every_cloud_provider_has_a_page_with_key_and_store(services_page, core):
    ids = [s.id for s in core.services.all() if s.kind == "cloud"]
    assert list(services_page.pages) == ids
    page = services_page.page("azure")
    for key in ("endpoint", "deployment", "api_version", "model"):
        assert key in page.inputs
    assert "password manager" in page.store_label.text() or "private file" in page.store_label.text()
    assert "No key yet" in page.key_source_label.text()
    assert "AZURE_OPENAI_API_KEY" in page.key_source_label.text()
    google = services_page.page("google")
    assert {"surface", "project", "location", "model"} <= set(google.inputs)
    bedrock = services_page.page("bedrock")
    assert {"region", "profile", "model"} <= set(bedrock.inputs)


def test_empty_key_is_refused_in_place(loop, services_page, core):
    page = services_page.page("openai")
    assert loop.run_until_complete(page.save()) is False
    assert "needs one" in page.key_message.text()
    assert "Not saved" in page.result_label.text()
    assert core.secrets.get("openai") is None


def test_key_is_trimmed_stored_and_only_masked_on_screen(loop, services_page, core):
    page = services_page.page("openai")
    page.key_edit.setText(f"  {KEY}\n")
    assert loop.run_until_complete(page.save()) is True
    assert core.secrets.get("openai") == KEY
    assert "Spaces around the key were removed" in page.result_label.text()
    assert page.key_edit.text() == ""
    assert "•••• WXYZ" in page.key_source_label.text()
    assert "stored" in page.key_edit.placeholderText()
    assert page.remove_key_button.isVisibleTo(page)
    assert KEY not in all_text(services_page)
    assert KEY[:-4] not in page.key_edit.placeholderText()
    loop.run_until_complete(page.remove_key())
    assert core.secrets.get("openai") is None
    assert "No key yet" in page.key_source_label.text()


def test_key_with_a_space_inside_or_too_short_is_refused(loop, services_page, core):
    page = services_page.page("replicate")
    page.key_edit.setText("r8_abc def ghijklmnop")
    assert loop.run_until_complete(page.save()) is False
    assert "spaces or line breaks inside" in page.key_message.text()
    page.key_edit.setText("r8_x")
    assert loop.run_until_complete(page.save()) is False
    assert "too short" in page.key_message.text()
    assert core.secrets.get("replicate") is None


def test_key_from_environment_is_named(loop, qtbot, core, tasks, monkeypatch):
    from studio_gui.services.provider_pages import ServicesPage

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    page = ServicesPage(core, tasks=tasks)
    qtbot.addWidget(page)
    page.page("openai")  # built on first use, then it reads where its key comes from
    loop.run_until_complete(wait_until(lambda: tasks.running == 0))
    text = page.page("openai").key_source_label.text()
    assert "environment variable OPENAI_API_KEY" in text and "•••• WXYZ" in text
    assert KEY not in all_text(page)
    # with a key in the environment, Save needs no pasted key
    assert loop.run_until_complete(page.page("openai").save()) is True


def test_endpoint_that_is_not_a_url_and_other_fields_are_checked(loop, services_page, core):
    azure = services_page.page("azure")
    azure.key_edit.setText("0123456789abcdef0123456789abcdef")
    azure.inputs["endpoint"].setText("my-resource.openai.azure")
    azure.inputs["api_version"].setText("yesterday")
    assert loop.run_until_complete(azure.save()) is False
    assert "is not a web address" in azure.messages["endpoint"].text()
    assert "Deployment is needed" in azure.messages["deployment"].text()
    assert "not an API version" in azure.messages["api_version"].text()
    assert core.secrets.get("azure") is None
    azure.inputs["endpoint"].setText("  https://my-resource.openai.azure.com  ")
    azure.inputs["deployment"].setText("sprites")
    azure.inputs["api_version"].setText("2025-04-01-preview")
    assert loop.run_until_complete(azure.save()) is True
    stored = core.settings.current.provider("azure")
    assert stored == {"auth": "key", "endpoint": "https://my-resource.openai.azure.com", "deployment": "sprites",
                      "api_version": "2025-04-01-preview"}
    assert "Spaces around the endpoint were removed" in azure.messages["endpoint"].text()

    bedrock = services_page.page("bedrock")
    bedrock.inputs["region"].setText("US East")
    assert loop.run_until_complete(bedrock.save()) is False
    assert "not an AWS region code" in bedrock.messages["region"].text()
    bedrock.inputs["region"].setText("eu-west-1")
    assert loop.run_until_complete(bedrock.save()) is True  # no key needed: AWS credentials chain
    assert core.settings.current.provider("bedrock")["region"] == "eu-west-1"


def test_google_vertex_project_is_checked_and_clearing_a_field_removes_it(loop, services_page, core):
    page = services_page.page("google")
    box = page.inputs["surface"]
    box.setCurrentIndex(box.findData("vertex"))
    page.inputs["project"].setText("My Project")
    assert loop.run_until_complete(page.save()) is False
    assert "A project id is" in page.messages["project"].text()
    page.inputs["project"].setText("my-project-123")
    page.inputs["location"].setText("us-central1")
    assert loop.run_until_complete(page.save()) is True
    assert core.settings.current.provider("google")["project"] == "my-project-123"
    page.inputs["location"].setText("")
    assert loop.run_until_complete(page.save()) is True
    assert "location" not in core.settings.current.provider("google")


def test_model_field_offers_catalog_models_and_takes_any_id(loop, services_page, core):
    page = services_page.page("openai")
    box = page.inputs["model"]
    ids = [box.itemData(i) for i in range(box.count())]
    assert "gpt-image-1.5" in ids
    assert any("(retired)" in box.itemText(i) for i in range(box.count()))
    box.setEditText("my-custom-model")
    page.key_edit.setText(KEY)
    assert loop.run_until_complete(page.save()) is True
    assert core.settings.current.provider("openai")["model"] == "my-custom-model"


def test_connection_test_failed_then_passed_in_words(loop, services_page, core, monkeypatch):
    from studio_gui.services.events import events_for

    fakes = FakeServices(core, monkeypatch, {
        "openai": ProviderStatus(ServiceState.error, "OpenAI rejected the key or credentials (401). Check them in Settings.")})
    seen = []
    events_for(core).status_checked.connect(lambda sid, st: seen.append((sid, st.state)))
    page = services_page.page("openai")
    page.key_edit.setText(KEY)
    status = loop.run_until_complete(page.test_connection())
    assert status.state == ServiceState.error
    assert page.result_label.text().startswith("✗ Connection test failed: OpenAI rejected the key")
    assert core.secrets.get("openai") == KEY  # the test saved the key first
    fakes.set("openai", ProviderStatus(ServiceState.ready, "Key accepted; gpt-image-1.5 available."))
    loop.run_until_complete(page.test_connection())
    assert page.result_label.text() == "✓ Connection test passed: OpenAI answered. Key accepted; gpt-image-1.5 available."
    assert seen == [("openai", ServiceState.error), ("openai", ServiceState.ready)]
    assert page.test_button.isEnabled()


def test_connection_test_when_the_sdk_is_missing(loop, services_page, core, monkeypatch):
    FakeServices(core, monkeypatch, {"azure": DependencyMissing("openai")})
    page = services_page.page("azure")
    page.key_edit.setText("0123456789abcdef0123456789abcdef")
    page.inputs["endpoint"].setText("https://r.openai.azure.com")
    page.inputs["deployment"].setText("img")
    loop.run_until_complete(page.test_connection())
    assert "Connection test failed" in page.result_label.text()
    assert "pip install" in page.result_label.text()


def test_test_connection_redacts_a_key_the_provider_echoes(loop, services_page, core, monkeypatch):
    FakeServices(core, monkeypatch, {"openai": ProviderStatus(ServiceState.error, f"bad key {KEY}")})
    page = services_page.page("openai")
    page.key_edit.setText(KEY)
    loop.run_until_complete(page.test_connection())
    assert KEY not in page.result_label.text()


def test_settings_dialog_opens_on_a_provider_page(qtbot, loop, core, tasks, monkeypatch):
    from studio_gui.settings_dialog import SettingsDialog

    FakeServices(core, monkeypatch, {"replicate": READY})
    dlg = SettingsDialog(core, tasks=tasks, page="Services", provider="replicate")
    qtbot.addWidget(dlg)
    page = dlg.tabs.currentWidget()
    assert page.objectName() == "ServicesPage"
    assert page.list.currentItem().data(Qt.ItemDataRole.UserRole) == "replicate"
    assert page.stack.currentWidget().widget() is page.page("replicate")
    loop.run_until_complete(wait_until(lambda: tasks.running == 0))


def test_a_failing_key_store_is_reported_in_place(loop, services_page, core, monkeypatch):
    def broken(name, value):
        raise RuntimeError("dbus went away")

    monkeypatch.setattr(core.secrets, "set", broken)
    page = services_page.page("openai")
    page.key_edit.setText(KEY)
    assert loop.run_until_complete(page.save()) is False
    assert "Not saved: the key store refused the key (RuntimeError)" in page.result_label.text()
    assert KEY not in page.result_label.text()


def test_azure_with_entra_sign_in_needs_no_key(loop, services_page, core):
    page = services_page.page("azure")
    box = page.inputs["auth"]
    box.setCurrentIndex(box.findData("entra"))
    page.inputs["endpoint"].setText("https://r.openai.azure.com")
    page.inputs["deployment"].setText("img")
    assert loop.run_until_complete(page.save()) is True
    assert core.settings.current.provider("azure")["auth"] == "entra"
    assert core.secrets.get("azure") is None


def test_every_provider_page_has_timeout_and_retries_under_the_shared_keys(loop, services_page, core):
    for sid, page in services_page.pages.items():
        assert {"timeout_s", "retries"} <= set(page.inputs), sid
    assert services_page.page("azure").inputs["timeout_s"].placeholderText() == "default: 600"
    assert services_page.page("openai").inputs["timeout_s"].placeholderText() == "default: 300"

    page = services_page.page("replicate")
    page.key_edit.setText("r8_TESTtoken1234567890abcdef")
    page.inputs["timeout_s"].setText("0.5")
    page.inputs["retries"].setText("9")
    assert loop.run_until_complete(page.save()) is False
    assert "from 1 to 600" in page.messages["timeout_s"].text()
    assert "from 0 to 5" in page.messages["retries"].text()
    page.inputs["timeout_s"].setText("1")  # short enough for a quick test against a hung server
    page.inputs["retries"].setText("0")
    assert loop.run_until_complete(page.save()) is True
    assert core.settings.current.provider("replicate") == {"timeout_s": 1, "retries": 0}
    assert not page.dirty
    # the provider built from these settings uses them
    core.services.invalidate("replicate")
    from studio_core.providers.cloud import replicate

    prov = replicate.create(core.settings.current, core.secrets)
    try:
        assert prov._attempts == 1 and prov._client.timeout.connect == 1.0
    finally:
        loop.run_until_complete(prov.aclose())


def test_azure_other_deployments_are_checked_and_saved(loop, services_page, core):
    azure = services_page.page("azure")
    azure.key_edit.setText("0123456789abcdef0123456789abcdef")
    azure.inputs["endpoint"].setText("https://my-resource.openai.azure.com")
    azure.inputs["deployment"].setText("sprites")
    azure.inputs["deployments"].setText("dall-e-3 my-dalle")
    assert loop.run_until_complete(azure.save()) is False
    assert "model=deployment" in azure.messages["deployments"].text()
    azure.inputs["deployments"].setText("dall-e-3=my-dalle, gpt-image-1=img1")
    assert loop.run_until_complete(azure.save()) is True
    assert core.settings.current.provider("azure")["deployments"] == "dall-e-3=my-dalle, gpt-image-1=img1"


def test_pages_are_built_when_first_shown_and_then_read_their_key(qtbot, loop, core, tasks, monkeypatch):
    from studio_gui.services.provider_pages import ProviderPage, ServicesPage
    from studio_gui.gallery.storage_page import StoragePage
    from studio_gui.settings_dialog import PAGES, SettingsDialog

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    dlg = SettingsDialog(core, tasks=tasks, page="Services")
    qtbot.addWidget(dlg)
    page = dlg.tabs.currentWidget()
    # Opening Settings builds the one provider page in view, and no other settings page.
    assert len(page.findChildren(ProviderPage)) == 1
    assert not dlg.findChildren(StoragePage)
    assert len(list(page.pages)) == len([s for s in core.services.all() if s.kind == "cloud"])
    loop.run_until_complete(wait_until(lambda: tasks.running == 0))
    row = list(page.pages).index("openai")
    page.list.setCurrentRow(row)  # a click on the list
    shown = page.stack.currentWidget().widget()
    assert isinstance(shown, ProviderPage) and shown is page.page("openai")
    loop.run_until_complete(wait_until(lambda: "OPENAI_API_KEY" in shown.key_source_label.text()))
    storage = [t for t, _f in PAGES].index("Storage")
    dlg.tabs.setCurrentIndex(storage)
    assert isinstance(dlg.tabs.currentWidget(), StoragePage) and dlg.tabs.tabText(storage) == "Storage"
    assert dlg.page_at(storage) is dlg.tabs.currentWidget()
    loop.run_until_complete(wait_until(lambda: tasks.running == 0))
