"""The Sheet tab measures character drift between frames and shows it with its limit."""

from __future__ import annotations

from pathlib import Path

from tests.core.test_sprites_drift import knight, slime
from tests.gui.conftest import wait_until
from tests.gui.test_sprite_tools import dialog  # noqa: F401  (fixture)


def frames_on_disk(folder: Path, odd: int | None = None) -> list[Path]:
    paths = []
    for i in range(6):
        p = folder / f"walk_{i:02d}.png"
        (slime() if i == odd else knight(i, dx=i)).save(p)
        paths.append(p)
    return paths


def built(loop, dlg):
    tab = dlg.sheet_tab
    tab.use_recipe.setChecked(False)
    loop.run_until_complete(tab.build())
    loop.run_until_complete(wait_until(lambda: tab.message.text().startswith("Ready to drag") and not tab._busy))
    return tab


def test_a_frame_of_another_character_is_named_with_the_limit(loop, dialog, tmp_path: Path):  # noqa: F811
    tab = built(loop, dialog(frames_on_disk(tmp_path, odd=3)))
    texts = [tab.warnings.item(i).text() for i in range(tab.warnings.count())]
    drifted = [t for t in texts if "different character" in t]
    assert len(drifted) == 1 and "walk_03" in drifted[0] and "limit 0.30" in drifted[0]
    assert tab.drift_line.isVisibleTo(tab)
    assert "1 of 6 frames over the limit 0.30 (walk_03" in tab.drift_line.text()


def test_one_character_passes_and_the_limit_is_the_users(loop, dialog, tmp_path: Path):  # noqa: F811
    tab = built(loop, dialog(frames_on_disk(tmp_path)))
    assert "under the limit 0.30" in tab.drift_line.text()
    assert not any("different character" in tab.warnings.item(i).text() for i in range(tab.warnings.count()))
    assert "palette and character are consistent" in tab.warnings.item(0).text()
    # a stricter limit than the legs' own movement flags frames
    tab.drift_limit.setValue(0.05)
    assert tab.options().drift_limit == 0.05
    tab = built(loop, tab.window())
    assert "over the limit 0.05" in tab.drift_line.text()


def test_tiles_have_no_drift_line(loop, dialog, tmp_path: Path):  # noqa: F811
    dlg = dialog(frames_on_disk(tmp_path, odd=3))
    dlg.sheet_tab.tiles.setChecked(True)
    tab = built(loop, dlg)
    assert tab.drift_line.text() == "" and not tab.drift_line.isVisibleTo(tab)
