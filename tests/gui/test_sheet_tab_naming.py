"""The Sheet tab names a sheet after its frames, counts "1 frame", and never replaces
files already in the export folder."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from tests.gui.conftest import wait_until
from tests.gui.test_sprite_tools import dialog, keyed  # noqa: F401  (fixture)

STAMP = "2025-09-07T19-00-00-123Z"


def test_one_gallery_image_makes_a_sheet_named_after_it(loop, dialog, tmp_path: Path):  # noqa: F811
    src = keyed(tmp_path / f"comfyui_red_knight_{STAMP}.png", size=64)
    dlg = dialog([src])
    tab = dlg.sheet_tab
    assert tab.name.text() == "red_knight"
    tab.use_recipe.setChecked(False)
    loop.run_until_complete(tab.build())
    loop.run_until_complete(wait_until(lambda: tab.preview.files() and not tab._busy))
    assert ", 1 frame —" in tab.preview._caption
    assert sorted(p.name for p in tab.preview.files()) == ["red_knight.json", "red_knight.png", "red_knight.tres"]


def test_a_typed_name_survives_new_frames_and_a_made_up_one_follows_them(dialog, tmp_path: Path):  # noqa: F811
    dlg = dialog([keyed(tmp_path / f"openai_slime_{STAMP}.png", size=32)])
    tab = dlg.sheet_tab
    assert tab.name.text() == "slime"
    dlg.set_paths([keyed(tmp_path / "walk_0.png", size=32), keyed(tmp_path / "walk_1.png", size=32)])
    assert tab.name.text() == "walk"
    tab.name.setText("boss_intro")
    dlg.set_paths([keyed(tmp_path / "chest.png", size=32)])
    assert tab.name.text() == "boss_intro"


def test_export_into_a_project_folder_keeps_what_is_there(loop, dialog, tmp_path: Path):  # noqa: F811
    project = tmp_path / "game" / "sprites"
    project.mkdir(parents=True)
    (project / "walk.png").write_bytes(b"the artist's walk cycle")
    frames = [keyed(tmp_path / f"walk_{i}.png", size=32) for i in range(2)]
    dlg = dialog(frames)
    tab = dlg.sheet_tab
    tab.use_recipe.setChecked(False)
    loop.run_until_complete(tab.build(project))
    assert (project / "walk.png").read_bytes() == b"the artist's walk cycle"
    assert sorted(p.name for p in project.iterdir()) == ["walk-2.json", "walk-2.png", "walk-2.tres", "walk.png"]
    assert Image.open(project / "walk-2.png").size[0] >= 64
    text = tab.message.text()
    assert "as walk-2" in text and "walk was already there" in text, text
