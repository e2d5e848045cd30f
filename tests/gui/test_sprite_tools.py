from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from studio_core.changes import ImageSaved
from studio_core.sprites import exporters
from studio_core.sprites.pipeline import RemoveBackground
from studio_core.sprites.styles import StylePreset
from studio_gui.sprites import StylePicker, open_sprite_tools
from tests.gui.conftest import wait_until


def keyed(path: Path, shift: int = 0, size: int = 256) -> Path:
    img = Image.new("RGB", (size, size), (0, 255, 0))
    d = ImageDraw.Draw(img)
    d.ellipse((70 + shift, 40, 186 + shift, 236), fill=(170, 40, 40), outline=(20, 20, 20), width=6)
    img.save(path)
    return path


@pytest.fixture
def dialog(qtbot, loop, core, tmp_path):
    created = []

    def make(paths):
        dlg = open_sprite_tools(None, core, paths)
        qtbot.addWidget(dlg)
        created.append(dlg)
        return dlg

    yield make
    for d in created:
        d.close()


def idle(tab):
    return not tab._busy


def test_sprite_steps_undo_and_save(loop, dialog, tmp_path: Path, core):
    src = keyed(tmp_path / "goblin.png")
    original = src.read_bytes()
    dlg = dialog([src])
    tab = dlg.sprite_tab
    assert dlg.tabs.currentWidget() is tab
    loop.run_until_complete(wait_until(lambda: tab.pipeline is not None and idle(tab) and not tab.after.image().isNull()))
    assert tab.before.image().size().width() == 256

    tab.remove_bg.click()
    loop.run_until_complete(wait_until(lambda: idle(tab) and len(tab.pipeline.steps) == 1))
    assert tab.after.image().pixelColor(2, 2).alpha() == 0

    tab.grid.setCurrentIndex(1)  # 32 px
    tab.palette.setCurrentIndex(tab.palette.findText("PICO-8"))
    tab.outline.setChecked(True)
    tab.pixel_button.click()
    loop.run_until_complete(wait_until(lambda: idle(tab) and len(tab.pipeline.steps) == 2))
    assert (tab.after.image().width(), tab.after.image().height()) == (32, 32)
    assert "Pixel art 32 px, PICO-8" in tab.steps_label.text()
    drag_files = tab.after.files()
    assert len(drag_files) == 1 and drag_files[0].name == "goblin_sprite.png" and drag_files[0].exists()
    assert drag_files[0].parent != src.parent  # a private folder, never the gallery's
    mime = tab.after.mime_data()
    assert [u.toLocalFile() for u in mime.urls()] == [str(drag_files[0])]

    tab.undo_button.click()
    loop.run_until_complete(wait_until(lambda: idle(tab) and len(tab.pipeline.steps) == 1))
    assert tab.after.image().width() == 256

    seen = []
    core.changes.subscribe(lambda ev: seen.append(ev.saved), ImageSaved)
    tab.save_button.click()
    loop.run_until_complete(wait_until(lambda: seen))
    assert seen[0].path == tmp_path / "goblin_sprite.png" and seen[0].path.exists()
    assert src.read_bytes() == original


def test_errors_show_in_place(loop, dialog, tmp_path: Path):
    busy = tmp_path / "busy.png"
    g = Image.linear_gradient("L").resize((64, 64))
    Image.merge("RGB", (g, g.rotate(90), g.rotate(180))).save(busy)
    dlg = dialog([busy])
    tab = dlg.sprite_tab
    loop.run_until_complete(wait_until(lambda: tab.pipeline is not None and idle(tab)))
    tab.apply_step(RemoveBackground())
    loop.run_until_complete(wait_until(lambda: idle(tab) and "plain background" in tab.message.text()))
    tab.grid.setCurrentIndex(4)  # 128 px on a 64 px image
    tab.pixel_button.click()
    loop.run_until_complete(wait_until(lambda: idle(tab) and "larger than" in tab.message.text()))
    assert tab.pipeline.steps == ()

    garbage = tmp_path / "bad.gpl"
    garbage.write_text("GIMP Palette\nthis is not a colour\n")
    task = tab.import_palette(garbage)
    loop.run_until_complete(task)
    assert "not a usable" in tab.message.text()
    good = tmp_path / "mine.hex"
    good.write_text("112233\n445566\n")
    loop.run_until_complete(tab.import_palette(good))
    assert tab.palette.currentText() == "mine (2)"


def test_tile_preview_toggle(loop, dialog, tmp_path: Path):
    g = Image.linear_gradient("L").rotate(90).resize((32, 32)).convert("RGB")
    path = tmp_path / "grass.png"
    g.save(path)
    dlg = dialog([path])
    tab = dlg.sprite_tab
    loop.run_until_complete(wait_until(lambda: tab.pipeline is not None and idle(tab) and tab.seam_label.text()))
    assert "seam" in tab.seam_label.text()
    tab.tile_button.click()
    loop.run_until_complete(wait_until(lambda: idle(tab) and tab.pipeline.steps))
    assert "seamlessly" in tab.seam_label.text()
    tab.tile_preview.setChecked(True)
    assert tab.after._tiles == 3


def test_walk_cycle_sheet_with_warnings_and_export(loop, dialog, tmp_path: Path):
    paths = [keyed(tmp_path / f"walk_{i}.png", shift=(24 if i == 5 else 0)) for i in range(7)]
    paths.append(keyed(tmp_path / "walk_7.png", size=200))  # a different size
    dlg = dialog(paths)
    assert dlg.tabs.currentWidget() is dlg.sheet_tab
    sprite, sheet_tab = dlg.sprite_tab, dlg.sheet_tab
    loop.run_until_complete(wait_until(lambda: sprite.pipeline is not None and idle(sprite)))
    sprite.remove_bg.click()
    loop.run_until_complete(wait_until(lambda: idle(sprite) and len(sprite.pipeline.steps) == 1))
    sprite.pixel_button.click()
    loop.run_until_complete(wait_until(lambda: idle(sprite) and len(sprite.pipeline.steps) == 2))

    sheet_tab.align.setChecked(False)
    sheet_tab.build_button.click()
    loop.run_until_complete(wait_until(lambda: sheet_tab.preview.files() and not sheet_tab._busy))
    texts = [sheet_tab.warnings.item(i).text() for i in range(sheet_tab.warnings.count())]
    assert any("walk_05" in t and "off by" in t for t in texts), texts
    names = sorted(p.name for p in sheet_tab.preview.files())
    assert names == ["walk.json", "walk.png", "walk.tres"]
    assert {p.parent for p in sheet_tab.preview.files()} != {tmp_path}

    sheet_tab.align.setChecked(True)
    sheet_tab.format_checks["tiled"].setChecked(True)
    out = tmp_path / "export"
    loop.run_until_complete(sheet_tab.build(out))
    assert sorted(p.name for p in out.iterdir()) == ["walk.json", "walk.png", "walk.tres", "walk.tsx"]
    # walk_0 … walk_7 are one animation: the sheet's name.
    import json

    tags = json.loads((out / "walk.json").read_text())["meta"]["frameTags"]
    assert [(t["name"], t["from"], t["to"]) for t in tags] == [("walk", 0, 7)]
    assert "Exported to" in sheet_tab.message.text()
    assert Image.open(out / "walk.png").size[0] > 32


def test_hand_added_frames_split_into_animations_by_name(loop, dialog, tmp_path: Path):
    """Files named walk_down_0, walk_up_0… (added by hand, in any order) export as one
    animation per name, each animation's frames together on the sheet."""
    import json

    from tests.core.test_sprites_sheet import parse_tres

    order = [("down", 0), ("up", 0), ("down", 1), ("up", 1), ("down", 2), ("up", 2)]
    paths = []
    for k, (d, i) in enumerate(order):
        Image.new("RGB", (32, 32), (30 * k, 100, 200)).save(tmp_path / f"walk_{d}_{i}.png")  # each one different
        paths.append(tmp_path / f"walk_{d}_{i}.png")
    dlg = dialog(paths)
    sheet_tab = dlg.sheet_tab
    sheet_tab.use_recipe.setChecked(False)
    sheet_tab.align.setChecked(False)
    out = tmp_path / "export"
    loop.run_until_complete(sheet_tab.build(out))
    assert "Exported to" in sheet_tab.message.text(), sheet_tab.message.text()
    anims = parse_tres((out / "walk.tres").read_text())[-1][2]["animations"]
    assert [(a["name"][1], len(a["frames"])) for a in anims] == [("walk_down", 3), ("walk_up", 3)]
    data = json.loads((out / "walk.json").read_text())
    assert list(data["frames"]) == ["walk_down_00", "walk_down_01", "walk_down_02", "walk_up_00", "walk_up_01", "walk_up_02"]
    assert [(t["name"], t["from"], t["to"]) for t in data["meta"]["frameTags"]] == [("walk_down", 0, 2), ("walk_up", 3, 5)]
    sheet_png = Image.open(out / "walk.png").convert("RGBA")
    for (d, i), p in zip(order, paths):
        r = data["frames"][f"walk_{d}_{i:02d}"]["frame"]
        got = sheet_png.crop((r["x"], r["y"], r["x"] + r["w"], r["y"] + r["h"]))
        assert got.tobytes() == Image.open(p).convert("RGBA").tobytes(), (d, i)


def test_zero_frame_sheet_and_bad_folder(loop, dialog, tmp_path: Path):
    dlg = dialog([])
    sheet_tab = dlg.sheet_tab
    loop.run_until_complete(sheet_tab.build())
    assert "at least one" in sheet_tab.message.text()
    dlg.set_paths([keyed(tmp_path / "a.png")])
    blocker = tmp_path / "file"
    blocker.write_text("x")
    loop.run_until_complete(sheet_tab.build(blocker / "sub"))
    assert "Choose another folder" in sheet_tab.message.text()


def test_style_picker(qtbot, loop):
    from studio_core.models import GenerationRequest

    picker = StylePicker()
    qtbot.addWidget(picker)
    loop.run_until_complete(picker.load())
    assert picker.style_combo.count() == 6 and picker.asset_combo.count() == 6
    got = []
    picker.preset_changed.connect(got.append)
    picker.set_preset(StylePreset("tile", "pixel_art"))
    assert got[-1] == StylePreset("tile", "pixel_art")
    req = picker.apply(GenerationRequest("grass"))
    assert req.prompt.startswith("grass, seamless tileable texture") and "pixel art" in req.prompt
    assert exporters.FORMATS  # the dialog offers every exporter
