"""Sheet exports never replace files in the chosen folder, sheets are named after what
they show, and counts read right in the singular."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from studio_core.plural import counted
from studio_core.sprites import exporters, sheet
from studio_core.storage import atomic
from tests.core.test_sprites_sheet import parse_tres, walk_frames


def test_export_into_a_folder_with_the_same_names_picks_a_free_one(tmp_path: Path):
    # A game project already holding walk.png and its .tres (someone's hand-made art).
    (tmp_path / "walk.png").write_bytes(b"precious art")
    (tmp_path / "walk.tres").write_text("precious resource")
    res = exporters.export_sheet(sheet.pack(walk_frames(3)), tmp_path, "walk", ["godot", "aseprite-hash"])
    assert (tmp_path / "walk.png").read_bytes() == b"precious art"
    assert (tmp_path / "walk.tres").read_text() == "precious resource"
    assert res.name == "walk-2" and res.renamed("walk")
    assert sorted(p.name for p in res.files) == ["walk-2.json", "walk-2.png", "walk-2.tres"]
    # The metadata names the PNG it was written with, not the one that was taken.
    ext = parse_tres((tmp_path / "walk-2.tres").read_text())[1]
    assert ext[1]["path"] == "walk-2.png"
    assert json.loads((tmp_path / "walk-2.json").read_text())["meta"]["image"] == "walk-2.png"
    # Any one of the sheet's files being there moves the whole set on.
    (tmp_path / "walk-3.json").write_text("{}")
    res = exporters.export_sheet(sheet.pack(walk_frames(3)), tmp_path, "walk", ["aseprite-hash"])
    assert res.name == "walk-4" and (tmp_path / "walk-3.json").read_text() == "{}"
    assert not exporters.export_sheet(sheet.pack(walk_frames(2)), tmp_path / "new", "walk", ["godot"]).renamed("walk")


def test_a_name_taken_while_writing_leaves_no_half_sheet(tmp_path: Path, monkeypatch):
    """Another program creating walk.tres between the check and the write: this attempt's
    PNG is taken back and the whole sheet goes to the next name."""
    real = atomic.atomic_write_bytes
    raced = []

    def racing(path, data, *, exclusive=False):
        if Path(path).name == "walk.tres" and not raced:
            raced.append(path)
            Path(path).write_text("theirs")
        return real(path, data, exclusive=exclusive)

    monkeypatch.setattr(exporters, "atomic_write_bytes", racing)
    res = exporters.export_sheet(sheet.pack(walk_frames(2)), tmp_path, "walk", ["godot"])
    assert res.name == "walk-2"
    assert sorted(os.listdir(tmp_path)) == ["walk-2.png", "walk-2.tres", "walk.tres"]
    assert (tmp_path / "walk.tres").read_text() == "theirs"


def test_sheet_is_named_after_its_frames():
    stamp = "2025-09-07T19-00-00-123Z"
    assert sheet.sheet_name_for([f"comfyui_red_knight_{stamp}"]) == "red_knight"
    assert sheet.sheet_name_for([f"comfyui_red_knight_{stamp}-2_sprite"]) == "red_knight"
    assert sheet.sheet_name_for([f"openai_slime_green_{stamp}", f"openai_slime_blue_{stamp}"]) == "slime"
    assert sheet.sheet_name_for(["walk_0", "walk_1"]) == "walk"
    assert sheet.sheet_name_for(["walk_down_0", "walk_up_0"]) == "walk"
    assert sheet.sheet_name_for(["hero"]) == "hero"
    assert sheet.sheet_name_for(["a", "b"], ["run_left", "run_left"]) == "run_left"
    assert sheet.sheet_name_for(["chest", "barrel"]) == "sheet"
    assert sheet.sheet_name_for([]) == "sheet"


@pytest.mark.parametrize("n, text", [(0, "0 frames"), (1, "1 frame"), (2, "2 frames"), (1024, "1,024 frames")])
def test_counted(n, text):
    assert counted(n, "frame") == text


def test_unity_note_says_one_frame():
    one = sheet.pack(walk_frames(1))
    assert ", 1 frame." in exporters.unity_note(one, "walk.png")
    assert ", 3 frames." in exporters.unity_note(sheet.pack(walk_frames(3)), "walk.png")
