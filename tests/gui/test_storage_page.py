"""Settings → Storage page: paths, key store, storage care values validated in place."""

from __future__ import annotations

import pytest

from studio_gui.gallery import storage_page as page_mod
from studio_gui.gallery.storage_page import StoragePage
from studio_gui.settings_dialog import PAGES, SettingsDialog
from studio_gui.tasks import TaskOwner
from tests.gui.conftest import wait_until


@pytest.fixture
def page(qtbot, core, loop):
    tasks = TaskOwner()
    p = StoragePage(core, tasks=tasks)
    qtbot.addWidget(p)
    p.show()
    yield p
    loop.run_until_complete(tasks.cancel_all())


def test_shows_paths_and_key_store(page, core, loop):
    assert page.images_label.text() == str(core.paths.images)
    assert page.index_label.text() == str(core.paths.index_file)
    assert page.log_label.text() == str(core.paths.log_file)
    assert page.cache_label.text() == str(core.paths.thumbnails)
    expected = core.secrets.info().description
    loop.run_until_complete(wait_until(lambda: page.keys_label.text() == expected))


def test_key_store_asked_off_the_gui_thread(qtbot, core, loop, monkeypatch):
    import threading

    seen = []
    real = core.secrets.info
    monkeypatch.setattr(core.secrets, "info", lambda: (seen.append(threading.current_thread()), real())[1])
    tasks = TaskOwner()
    p = StoragePage(core, tasks=tasks)
    qtbot.addWidget(p)
    loop.run_until_complete(wait_until(lambda: seen and "Checking" not in p.keys_label.text()))
    assert seen[0] is not threading.main_thread()
    loop.run_until_complete(tasks.cancel_all())


def test_values_saved_through_settings(page, core):
    cur = core.settings.current
    assert page.fields["low_disk_warning_mb"].text() == str(cur.low_disk_warning_mb)
    page.fields["low_disk_warning_mb"].setText("1024")
    page.fields["cleanup_days"].setText("30")
    page.fields["storage_budget_mb"].setText("0")
    page.save_button.click()
    cur = core.settings.current
    assert (cur.low_disk_warning_mb, cur.cleanup_days, cur.storage_budget_mb) == (1024, 30, 0)
    assert page.status.text() == "Saved."


@pytest.mark.parametrize("bad", ["-5", "abc", "", "1.5"])
def test_bad_values_are_refused_in_place(page, core, bad):
    before = core.settings.current
    page.fields["cleanup_days"].setText(bad)
    assert not page.errors["cleanup_days"].isHidden()
    assert "0 or more" in page.errors["cleanup_days"].text()
    page.save_button.click()
    assert core.settings.current == before
    assert page.status.text().startswith("Not saved")
    page.fields["cleanup_days"].setText("7")
    assert page.errors["cleanup_days"].isHidden()
    assert page.save()
    assert core.settings.current.cleanup_days == 7


def test_show_in_folder_opens_the_images_folder(page, core, monkeypatch):
    opened = []
    monkeypatch.setattr(page_mod.QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()) or True)
    page.show_images_button.click()
    assert opened == [str(core.paths.images)]


def test_settings_dialog_uses_the_storage_page(qtbot, core, loop):
    assert ("Storage", StoragePage) in PAGES
    tasks = TaskOwner()
    dlg = SettingsDialog(core, tasks=tasks, page="Storage")
    qtbot.addWidget(dlg)
    assert isinstance(dlg.tabs.currentWidget(), StoragePage)
    loop.run_until_complete(tasks.cancel_all())


def test_closing_settings_keeps_valid_changes(qtbot, loop, core):
    from studio_gui.gallery.storage_page import StoragePage
    from studio_gui.settings_dialog import SettingsDialog
    from studio_gui.tasks import TaskOwner

    tasks = TaskOwner()
    dlg = SettingsDialog(core, tasks=tasks, page="Storage")
    qtbot.addWidget(dlg)
    page = next(dlg.tabs.widget(i) for i in range(dlg.tabs.count()) if isinstance(dlg.tabs.widget(i), StoragePage))
    field = page.fields["cleanup_days"]
    field.setText("30")
    dlg.reject()
    assert core.settings.current.cleanup_days == 30
    loop.run_until_complete(tasks.cancel_all())
