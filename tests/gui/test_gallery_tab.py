from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMainWindow, QTabWidget, QWidget

from studio_core.models import GenerationRequest, JobImage
from studio_core.storage.records import ImageQuery
from studio_gui.gallery import view as view_mod
from studio_gui.gallery.saved_tab import SavedTab
from studio_gui.gallery.view import drag_name
from studio_gui.tasks import TaskOwner
from tests.fakes import png_bytes
from tests.gui.conftest import wait_until


class FakeGenerateTab(QWidget):
    def __init__(self):
        super().__init__()
        self.applied: list[GenerationRequest] = []

    def apply_request(self, request: GenerationRequest) -> None:
        self.applied.append(request)


class Host(QMainWindow):
    def __init__(self, core):
        super().__init__()
        self.tasks = TaskOwner()
        self.tabs = QTabWidget()
        self.generate_tab = FakeGenerateTab()
        self.saved_tab = SavedTab(core, tasks=self.tasks)
        self.tabs.addTab(self.generate_tab, "Generate")
        self.tabs.addTab(self.saved_tab, "Saved")
        self.tabs.setCurrentWidget(self.saved_tab)
        self.setCentralWidget(self.tabs)


@pytest.fixture
def host(qtbot, core, loop):
    h = Host(core)
    qtbot.addWidget(h)
    h.resize(1100, 700)
    h.show()
    loop.run_until_complete(h.saved_tab.started())
    yield h
    h.saved_tab.closing()
    loop.run_until_complete(h.tasks.cancel_all())


def add(core, loop, prompt, seed=1, **kw):
    req = GenerationRequest(prompt=prompt, service=kw.pop("service", "openai"), seed=seed, **kw)
    return loop.run_until_complete(core.save_image(JobImage("j", png_bytes(48, 48, (seed * 20 % 255, 90, 200, 128)),
                                                            seed=seed, info=(("cost_usd", 0.04),)), req))


def rows(tab) -> list[str]:
    return [tab.model.record(r).prompt for r in range(tab.model.rowCount())]


def test_empty_state_then_live_insert(host, core, loop):
    tab = host.saved_tab
    loop.run_until_complete(wait_until(lambda: not tab.model.fetching))
    assert tab.stack.currentWidget() is tab.empty
    tab.first_button.click()
    assert host.tabs.currentWidget() is host.generate_tab
    add(core, loop, "red potion bottle")
    assert rows(tab) == ["red potion bottle"]
    assert tab.stack.currentWidget() is tab.splitter
    loop.run_until_complete(wait_until(lambda: tab.stats.text().startswith("1 image ·")))
    assert "OpenAI 1" in tab.stats.text()  # services by name, as in the filter menu


def test_search_filter_detail_and_reuse(host, core, loop, qtbot):
    tab = host.saved_tab
    for i, p in enumerate(["goblin archer", "goblin king", "wooden shield"]):
        add(core, loop, p, seed=i + 1, steps=9, negative_prompt="blurry")
    tab.filters.search.setText("gob")
    loop.run_until_complete(wait_until(lambda: sorted(rows(tab)) == ["goblin archer", "goblin king"]))
    tab.view.setCurrentIndex(tab.model.index(0, 0))
    rec = tab.model.record(0)
    assert tab.detail.record == rec and tab.detail.values["negative"].text() == "blurry"
    assert tab.detail.values["cost"].text().startswith("$0.0400")
    loop.run_until_complete(wait_until(lambda: tab.detail.full_image is not None))
    tab.detail.copy_button.click()
    assert QApplication.clipboard().text() == rec.prompt
    tab.detail.reuse_button.click()
    loop.run_until_complete(wait_until(lambda: host.generate_tab.applied))
    req = host.generate_tab.applied[0]
    assert (req.prompt, req.steps, req.seed, req.service) == (rec.prompt, 9, rec.seed, "openai")
    assert host.tabs.currentWidget() is host.generate_tab
    tab.filters.search.clear()
    tab.filters.favourites.setChecked(True)
    loop.run_until_complete(wait_until(lambda: rows(tab) == []))
    assert tab.stack.currentWidget() is tab.no_match  # filtered to nothing is not the first-run state


def test_keyboard_delete_favourite_and_copy(host, core, loop, qtbot, tmp_path):
    tab = host.saved_tab
    saved = [add(core, loop, f"slime {i}", seed=i + 1) for i in range(3)]
    tab.view.setFocus()
    tab.view.setCurrentIndex(tab.model.index(0, 0))
    first = tab.model.record(0)
    qtbot.keyClick(tab.view, Qt.Key.Key_F)
    loop.run_until_complete(wait_until(lambda: tab.model.record(0).favourite))
    assert tab.detail.fav_button.text().startswith("★")
    qtbot.keyClick(tab.view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    loop.run_until_complete(wait_until(lambda: not QApplication.clipboard().image().isNull()))
    assert QApplication.clipboard().mimeData().urls()[0].toLocalFile().endswith(first.name)
    removed = []
    tab.model.rowsRemoved.connect(lambda _p, a, b: removed.append((a, b)))
    qtbot.keyClick(tab.view, Qt.Key.Key_Delete)
    loop.run_until_complete(wait_until(lambda: tab.model.rowCount() == 2))
    assert removed == [(0, 0)]  # in place, no reset
    assert not (core.paths.images / first.path).exists()
    from send2trash import plat_other  # resolves the trash folder once, at first import

    trash = list(Path(plat_other.HOMETRASH).rglob(first.name))
    assert trash, "the file went to the trash, not into thin air"
    assert "Moved 1 image" in tab.banner.label.text()
    assert loop.run_until_complete(core.index.count(ImageQuery())) == 2
    assert len(saved) == 3


def test_drag_out_mime_data(host, core, loop, monkeypatch):
    tab = host.saved_tab
    a = add(core, loop, "goblin idle", seed=7)
    b = add(core, loop, "goblin idle", seed=7)  # same name twice in one drag
    tab.view.selectAll()
    recs = tab.view.selected_records()
    mime = tab.view.mime_for(recs)
    assert mime.hasFormat("text/uri-list")
    files = [Path(u.toLocalFile()) for u in mime.urls()]
    assert [f.name for f in files] == ["goblin_idle_7.png", "goblin_idle_7-2.png"]
    assert all(f.exists() and f.parent.parent == core.paths.cache / "drag" for f in files)
    assert files[0].parent == files[1].parent  # one private folder per drag
    assert {f.read_bytes() for f in files} == {a.path.read_bytes(), b.path.read_bytes()}

    # one image whose pixels the detail pane already decoded also carries the image itself
    tab.view.setCurrentIndex(tab.model.index(0, 0))
    loop.run_until_complete(wait_until(lambda: tab.detail.full_image is not None))
    single = tab.view.mime_for([tab.model.record(0)])
    assert single.hasImage() and len(single.urls()) == 1

    executed = []

    class FakeDrag:
        def __init__(self, source):
            self.mime = None

        def setMimeData(self, m):
            self.mime = m

        def setPixmap(self, pm):
            pass

        def exec(self, actions, default):
            executed.append((actions, default, [u.fileName() for u in self.mime.urls()]))
            return default

    monkeypatch.setattr(view_mod, "QDrag", FakeDrag)
    tab.view.selectAll()
    tab.view.prepare_drag()  # what the selection change starts in the worker
    tab.view.drag_staging.wait(30)
    tab.view.startDrag(Qt.DropAction.CopyAction | Qt.DropAction.MoveAction)
    assert executed == [(Qt.DropAction.CopyAction, Qt.DropAction.CopyAction, ["goblin_idle_7.png", "goblin_idle_7-2.png"])]


def test_drag_name_is_meaningful():
    from studio_core.storage.records import ImageRecord

    assert drag_name(ImageRecord(id=1, path="x/openai_goblin_2025.png", prompt="Goblin: idle / walk!", seed=3)) == "goblin_idle_walk_3.png"
    assert drag_name(ImageRecord(id=1, path="ComfyUI_00001_.png")) == "ComfyUI_00001_.png"


def test_startup_messages_and_rescan(qtbot, core, loop):
    core.startup_messages.append("The gallery index was damaged, so it was rebuilt from your 0 image files.")
    h = Host(core)
    qtbot.addWidget(h)
    h.show()
    try:
        loop.run_until_complete(h.saved_tab.started())
        assert "damaged" in h.saved_tab.banner.label.text()
        (core.paths.images / "hand-made.png").write_bytes(png_bytes(20, 20))
        (core.paths.images / "fake.png").write_text("not an image")
        loop.run_until_complete(h.saved_tab.rescan())
        loop.run_until_complete(wait_until(lambda: h.saved_tab.model.rowCount() == 1))
        assert "1 added" in h.saved_tab.banner.label.text() and "fake.png" in h.saved_tab.banner.label.text()
    finally:
        h.saved_tab.closing()
        loop.run_until_complete(h.tasks.cancel_all())


def test_enter_opens_and_space_previews(host, core, loop, qtbot, monkeypatch):
    from studio_gui.gallery import actions

    tab = host.saved_tab
    add(core, loop, "bat wing", seed=2)
    opened = []
    monkeypatch.setattr(actions.QDesktopServices, "openUrl", staticmethod(lambda url: opened.append(url) or True))
    tab.view.setFocus()
    tab.view.setCurrentIndex(tab.model.index(0, 0))
    loop.run_until_complete(wait_until(lambda: tab.detail.full_image is not None))
    qtbot.keyClick(tab.view, Qt.Key.Key_Return)
    loop.run_until_complete(wait_until(lambda: opened))  # the file is checked in a worker first
    assert opened and opened[0].toLocalFile().endswith(tab.model.record(0).name)
    qtbot.keyClick(tab.view, Qt.Key.Key_Space)
    assert tab._preview is not None and tab._preview.isVisible()
    qtbot.keyClick(tab.view, Qt.Key.Key_Space)
    assert tab._preview is None


def test_export_and_missing_file_message(host, core, loop, tmp_path):
    from studio_core.errors import StorageError

    tab = host.saved_tab
    add(core, loop, "export gem", seed=4)
    rec = tab.model.record(0)
    loop.run_until_complete(tab._export(rec, tmp_path / "gem", "WebP, smaller, with settings (*.webp)"))
    assert (tmp_path / "gem.webp").exists() and "Exported" in tab.banner.label.text()
    (core.paths.images / rec.path).unlink()  # deleted behind the app's back
    with pytest.raises(StorageError) as ei:
        loop.run_until_complete(tab._export(rec, tmp_path / "gem2.png", "PNG with generation settings (*.png)"))
    assert "Rescan" in ei.value.user_message


def test_sprite_tools_from_menu_and_detail_pane(host, core, loop, qtbot, monkeypatch):
    import studio_gui.sprites

    calls = []
    monkeypatch.setattr(studio_gui.sprites, "open_sprite_tools",
                        lambda parent, c, paths: calls.append((parent, c, list(paths))))
    tab = host.saved_tab
    for i, p in enumerate(["slime idle", "slime walk", "slime jump"]):
        add(core, loop, p, seed=i + 1)
    paths = [tab.model.abs_path(tab.model.record(r)) for r in range(3)]
    # right-click one tile: that image alone, in the Sprite tab
    tab.view.setCurrentIndex(tab.model.index(1, 0))
    menu = tab.view.menu_for(tab.view.selected_records(), tab.model.record(1))
    qtbot.addWidget(menu)
    texts = [a.text() for a in menu.actions() if a.text()]
    assert {"Open", "Show in folder", "Reuse settings", "Copy prompt", "Export…", "Sprite tools…"} <= set(texts)
    next(a for a in menu.actions() if a.text() == "Sprite tools…").trigger()
    assert calls == [(host, core, [paths[1]])]
    # several selected: all of them, for the Sheet tab
    tab.view.selectAll()
    menu = tab.view.menu_for(tab.view.selected_records(), tab.model.record(1))
    qtbot.addWidget(menu)
    next(a for a in menu.actions() if a.text() == "Sprite tools…").trigger()
    assert calls[-1] == (host, core, paths)
    # the detail pane's button: the selection when the shown image is part of it…
    assert tab.detail.sprite_button.isEnabled()
    tab.detail.sprite_button.click()
    assert calls[-1] == (host, core, paths)
    # …else the shown image
    tab.view.setCurrentIndex(tab.model.index(2, 0))
    tab.detail.sprite_button.click()
    assert calls[-1] == (host, core, [paths[2]])


def test_right_click_selects_the_tile_and_shows_the_menu(host, core, loop, qtbot):
    from PySide6.QtGui import QContextMenuEvent
    from PySide6.QtWidgets import QMenu

    tab = host.saved_tab
    for i, p in enumerate(["gem red", "gem blue"]):
        add(core, loop, p, seed=i + 1)
    tab.view.setCurrentIndex(tab.model.index(0, 0))
    rect = tab.view.visualRect(tab.model.index(1, 0))
    vp = tab.view.viewport()
    QApplication.sendEvent(vp, QContextMenuEvent(QContextMenuEvent.Reason.Mouse, rect.center(),
                                                 vp.mapToGlobal(rect.center())))
    menus = [m for m in tab.view.findChildren(QMenu) if m.isVisible()]
    try:
        assert len(menus) == 1
        assert [r.prompt for r in tab.view.selected_records()] == ["gem red"]  # newest first: row 1
        texts = [a.text() for a in menus[0].actions() if a.text()]
        assert "Sprite tools…" in texts and "Move to trash" in texts
    finally:
        for m in menus:
            m.close()


def test_selection_beyond_loaded_pages_fetches_its_records(host, core, loop, qtbot, monkeypatch):
    from studio_gui.gallery import model as model_mod

    tab = host.saved_tab
    for i in range(12):
        add(core, loop, f"coin {i}", seed=i + 1)
    monkeypatch.setattr(model_mod, "FIRST_PAGE", 4)
    tab.model.page_size, tab.model.max_pages = 4, 1
    loop.run_until_complete(tab.model.reload())
    loop.run_until_complete(wait_until(lambda: not tab.model.fetching))
    assert tab.model.rowCount() == 12 and tab.model.loaded_count < 12
    tab.view.setFocus()
    tab.view.selectAll()
    assert len(tab.view.selected_records()) < 12  # only what is loaded, at once
    copied = []
    tab.view.copy_requested.disconnect()
    tab.view.copy_requested.connect(copied.append)
    qtbot.keyClick(tab.view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    loop.run_until_complete(wait_until(lambda: copied))
    assert sorted(r.prompt for r in copied[0]) == sorted(f"coin {i}" for i in range(12))
    # a drag cannot wait: it says so, and the pages are on their way for the next try
    tab.model.max_pages = 8
    failed = []
    tab.view.drag_failed.connect(failed.append)
    tab.view.startDrag(Qt.DropAction.CopyAction)
    assert failed and "still loading" in failed[0].user_message
    loop.run_until_complete(wait_until(lambda: not tab.model.fetching and tab.model.loaded_count == 12))
    assert len(tab.view.selected_records()) == 12


def test_export_multi_selection_to_a_folder(host, core, loop, monkeypatch, tmp_path):
    from PIL import Image

    from studio_gui.gallery import actions

    tab = host.saved_tab
    for i, p in enumerate(["coin gold", "coin silver", "coin copper"]):
        add(core, loop, p, seed=i + 1)
    loop.run_until_complete(wait_until(lambda: tab.model.rowCount() == 3))
    tab.view.selectAll()
    recs = tab.view.selected_records()
    assert len(recs) == 3
    menu = tab.view.menu_for(recs, recs[0])
    try:
        texts = [a.text() for a in menu.actions() if a.text()]
        assert "Export 3 images…" in texts and "Export…" not in texts
    finally:
        menu.deleteLater()
    out = tmp_path / "out"
    out.mkdir()
    clash = recs[0].name.rsplit(".", 1)[0] + ".webp"
    (out / clash).write_bytes(b"mine")  # never overwritten
    (core.paths.images / recs[2].path).unlink()  # deleted behind the app's back
    asked = []
    monkeypatch.setattr(actions, "ask_export_format", lambda parent, cb: (asked.append("format"), cb("webp", False)))
    monkeypatch.setattr(actions, "ask_folder", lambda parent, title, cb: (asked.append(title), cb(out)))
    tab.detail.export_requested.emit(recs[0])  # the pane's Export… takes the whole selection
    loop.run_until_complete(wait_until(lambda: "exported to" in tab.banner.label.text()))
    assert asked == ["format", "Export 3 images to…"]
    assert tab.banner.label.text() == f"2 exported to {out}; 1 skipped: missing file"
    assert (out / clash).read_bytes() == b"mine"
    made = sorted(p.name for p in out.iterdir())
    stem = recs[0].name.rsplit(".", 1)[0]
    assert f"{stem}-2.webp" in made and recs[1].name.rsplit(".", 1)[0] + ".webp" in made
    with Image.open(out / f"{stem}-2.webp") as img:
        assert img.format == "WEBP" and not img.getexif()


def test_export_multi_selection_unwritable_folder_message(host, core, loop, tmp_path):
    tab = host.saved_tab
    for i, p in enumerate(["ring a", "ring b"]):
        add(core, loop, p, seed=i + 1)
    recs = [tab.model.record(0), tab.model.record(1)]
    loop.run_until_complete(tab.export_many(recs, tmp_path / "missing", fmt="png", with_metadata=True))
    assert tab.banner.label.text().startswith("Export failed: The folder") and tab.banner.isVisible()


def test_no_match_says_what_was_asked_and_how_to_widen_it(host, core, loop, qtbot):
    """A search that finds nothing names the words and offers the click that widens it,
    instead of a blank grid beside a pane of empty labels."""
    tab = host.saved_tab
    add(core, loop, "goblin archer", seed=1)
    add(core, loop, "wooden shield", seed=2, service="huggingface")
    loop.run_until_complete(wait_until(lambda: len(rows(tab)) == 2))
    tab.filters.search.setText("dragon")
    loop.run_until_complete(wait_until(lambda: tab.stack.currentWidget() is tab.no_match))
    assert tab.no_match_title.text() == "No images match “dragon”."
    assert "fewer or shorter words" in tab.no_match_hint.text()
    assert tab.clear_search_button.isVisibleTo(tab) and not tab.clear_filters_button.isVisibleTo(tab)
    assert tab.filters.isVisibleTo(tab)  # the search box stays to be edited
    tab.clear_search_button.click()
    loop.run_until_complete(wait_until(lambda: len(rows(tab)) == 2))
    assert tab.stack.currentWidget() is tab.splitter and tab.filters.search.text() == ""

    # Filters and words together: both are named, and clearing the filters keeps the words.
    loop.run_until_complete(wait_until(lambda: tab.filters.service.count() == 3))
    tab.filters.service.setCurrentIndex(tab.filters.service.findData("huggingface"))
    tab.filters.favourites.setChecked(True)
    tab.filters.search.setText("goblin")
    loop.run_until_complete(wait_until(lambda: tab.stack.currentWidget() is tab.no_match
                                       and "goblin" in tab.no_match_title.text()))
    assert tab.no_match_title.text() == "No images match “goblin” with these filters."
    assert "Showing only: Hugging Face · favourites only." in tab.no_match_hint.text()
    assert tab.clear_filters_button.isVisibleTo(tab)
    tab.clear_filters_button.click()
    loop.run_until_complete(wait_until(lambda: rows(tab) == ["goblin archer"]))
    assert tab.filters.search.text() == "goblin" and tab.filters.active_filters() == []
    assert tab.stack.currentWidget() is tab.splitter


def test_detail_pane_hides_field_labels_with_nothing_selected(host, core, loop):
    tab = host.saved_tab
    detail = tab.detail
    detail.show_record(None)
    labels = [detail.form.labelForField(v) for v in detail.values.values()]
    assert labels and not any(lbl.isVisibleTo(detail) for lbl in labels)
    assert not detail.fields_area.isVisibleTo(detail)
    add(core, loop, "goblin archer", seed=3)
    loop.run_until_complete(wait_until(lambda: rows(tab) == ["goblin archer"]))
    tab.view.setCurrentIndex(tab.model.index(0, 0))
    loop.run_until_complete(wait_until(lambda: detail.record is not None))
    shown = {k for k, v in detail.values.items() if detail.form.labelForField(v).isVisibleTo(detail)}
    assert {"prompt", "service", "seed", "cost", "file"} <= shown
    assert "negative" not in shown  # empty fields stay hidden with a record too
    assert detail.values["service"].text() == "OpenAI"


def test_a1111_images_filter_by_their_own_name(host, core, loop, tmp_path):
    from PIL import Image, PngImagePlugin

    src = tmp_path / "webui"
    src.mkdir()
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "red potion\nSteps: 20, Sampler: Euler a, Seed: 3, Size: 24x24")
    Image.new("RGB", (24, 24)).save(src / "potion.png", pnginfo=info)
    tab = host.saved_tab
    loop.run_until_complete(tab.import_folder(src))
    loop.run_until_complete(wait_until(lambda: tab.filters.service.findData("a1111") > 0))
    combo = tab.filters.service
    assert combo.itemText(combo.findData("a1111")) == "imported (A1111)"
    assert combo.findData("comfyui") < 0  # nothing claims to come from ComfyUI
