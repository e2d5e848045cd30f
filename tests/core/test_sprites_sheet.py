from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from PIL import Image, ImageDraw

from studio_core.errors import StorageError
from studio_core.sprites import exporters, sheet
from studio_core.sprites.errors import EmptySheet, ExportNotPossible
from studio_core.sprites.sheet import SheetFrame
from tests.file_permissions import needs_unwritable_folders


def frame(i: int, size=(16, 24), colour=None) -> Image.Image:
    img = Image.new("RGBA", size)
    d = ImageDraw.Draw(img)
    d.rectangle((2, 2, size[0] - 3, size[1] - 1), fill=colour or (40 * i % 256, 100, 200, 255))
    img.putpixel((0, 0), (i, 0, 0, 255))  # a marker so each frame is recognisable in the sheet
    return img


def walk_frames(n=8, anim="walk"):
    return [SheetFrame(f"{anim}_{i:02d}", frame(i), anim, 100) for i in range(n)]


# ---------------------------------------------------------------------------------------
# Godot's text resource format (docs: "TSCN file format"): [tag key=value ...] headers,
# then "key = value" properties whose values use Godot's variant syntax.

_TOKEN = re.compile(r'\s*(?:(&?"(?:\\.|[^"\\])*")|([A-Za-z_][A-Za-z0-9_]*)|(-?\d+(?:\.\d+)?(?:e-?\d+)?)|(.))', re.S)


class _Parser:
    def __init__(self, text: str):
        self.toks = [m for m in _TOKEN.finditer(text) if m.group(0).strip()]
        self.i = 0

    def peek(self):
        return self.toks[self.i].group(0).strip() if self.i < len(self.toks) else None

    def take(self, expect=None):
        t = self.peek()
        if expect is not None and t != expect:
            raise ValueError(f"expected {expect!r}, got {t!r}")
        self.i += 1
        return t

    def value(self):
        m = self.toks[self.i]
        s, ident, num, _ = m.groups()
        if s is not None:
            self.i += 1
            return ("StringName", json.loads(s[1:])) if s.startswith("&") else json.loads(s)
        if num is not None:
            self.i += 1
            return float(num) if "." in num or "e" in num else int(num)
        if ident is not None:
            self.i += 1
            if ident in ("true", "false"):
                return ident == "true"
            if ident == "null":
                return None
            self.take("(")
            args = []
            while self.peek() != ")":
                args.append(self.value())
                if self.peek() == ",":
                    self.take(",")
            self.take(")")
            return (ident, *args)
        t = self.take()
        if t == "[":
            items = []
            while self.peek() != "]":
                items.append(self.value())
                if self.peek() == ",":
                    self.take(",")
            self.take("]")
            return items
        if t == "{":
            d = {}
            while self.peek() != "}":
                k = self.value()
                self.take(":")
                d[k] = self.value()
                if self.peek() == ",":
                    self.take(",")
            self.take("}")
            return d
        raise ValueError(f"unexpected {t!r}")


def parse_tres(text: str) -> list[tuple[str, dict, dict]]:
    """[(tag, header attributes, properties)] for each section."""
    sections = []
    for block in re.split(r"\n(?=\[)", text.strip()):
        head, _, body = block.partition("]\n") if "]\n" in block else (block.rstrip("]"), "", "")
        head = head.lstrip("[")
        tag, _, attrs = head.partition(" ")
        hdr = {k: json.loads(v) if v.startswith('"') else int(v) for k, v in re.findall(r'(\w+)=("[^"]*"|\d+)', attrs)}
        props = {}
        for m in re.finditer(r"^(\w+) = (.*?)(?=^\w+ = |\Z)", body, re.S | re.M):
            p = _Parser(m.group(2))
            props[m.group(1)] = p.value()
            assert p.peek() is None, f"trailing tokens in {m.group(1)}"
        sections.append((tag, hdr, props))
    return sections


def test_godot_spriteframes_reads_back(tmp_path: Path):
    frames = walk_frames(8) + [SheetFrame(f"idle_{i}", frame(i), "idle", 200) for i in range(4)]
    sh = sheet.pack(frames, padding=1)
    res = exporters.export_sheet(sh, tmp_path, "hero", ["godot"])
    sections = parse_tres((tmp_path / "hero.tres").read_text())
    tag, hdr, _ = sections[0]
    assert tag == "gd_resource" and hdr["type"] == "SpriteFrames" and hdr["format"] == 3
    assert hdr["load_steps"] == len(sections) - 1  # one per ext/sub resource, plus the resource itself
    ext = [s for s in sections if s[0] == "ext_resource"]
    assert ext == [("ext_resource", {"type": "Texture2D", "path": "hero.png", "id": "1_sheet"}, {})]
    subs = {h["id"]: p for t, h, p in sections if t == "sub_resource" and h["type"] == "AtlasTexture"}
    assert len(subs) == 12
    resource = sections[-1]
    assert resource[0] == "resource"
    anims = {a["name"][1]: a for a in resource[2]["animations"]}
    assert set(anims) == {"walk", "idle"}
    assert anims["walk"]["speed"] == 10.0 and anims["idle"]["speed"] == 5.0 and anims["walk"]["loop"] is True
    sheet_img = Image.open(res.image)
    for i, f in enumerate(anims["walk"]["frames"]):
        sub = subs[f["texture"][1]]
        assert sub["atlas"] == ("ExtResource", "1_sheet")
        _, x, y, w, h = sub["region"]
        assert sheet_img.crop((x, y, x + w, y + h)).tobytes() == frames[i].image.tobytes()


def test_aseprite_json_hash_and_array(tmp_path: Path):
    frames = walk_frames(4) + walk_frames(3, "jump")
    sh = sheet.pack(frames, layout="packed", padding=2, extrude=1)
    exporters.export_sheet(sh, tmp_path, "s", ["aseprite-hash", "aseprite-array"])
    h = json.loads((tmp_path / "s.hash.json").read_text())
    a = json.loads((tmp_path / "s.array.json").read_text())
    assert list(h["frames"]) == [f.name for f in frames]
    assert [f["filename"] for f in a["frames"]] == [f.name for f in frames]
    for entry in a["frames"]:
        assert set(entry) >= {"frame", "rotated", "trimmed", "spriteSourceSize", "sourceSize", "duration"}
    meta = h["meta"]
    assert meta["image"] == "s.png" and meta["format"] == "RGBA8888" and meta["scale"] == "1"
    img = Image.open(tmp_path / "s.png")
    assert (meta["size"]["w"], meta["size"]["h"]) == img.size
    assert meta["frameTags"] == [{"name": "walk", "from": 0, "to": 3, "direction": "forward"},
                                 {"name": "jump", "from": 4, "to": 6, "direction": "forward"}]  # "to" is inclusive
    for f, entry in zip(frames, a["frames"]):
        r = entry["frame"]
        assert img.crop((r["x"], r["y"], r["x"] + r["w"], r["y"] + r["h"])).tobytes() == f.image.tobytes()


def test_texturepacker_json(tmp_path: Path):
    sh = sheet.pack(walk_frames(3))
    data = json.loads(exporters.texturepacker_json(sh, "w.png"))
    assert data["meta"]["app"] == "https://www.codeandweb.com/texturepacker"
    assert data["animations"] == {"walk": ["walk_00", "walk_01", "walk_02"]}
    assert data["frames"]["walk_01"]["pivot"] == {"x": 0.5, "y": 1.0}


def test_unity_meta_rects_are_bottom_left(tmp_path: Path):
    sh = sheet.pack(walk_frames(4), columns=2)
    text = exporters.unity_meta(sh, guid="0" * 32)
    assert "spriteMode: 2" in text and "textureType: 8" in text and "filterMode: 0" in text
    names = re.findall(r"^      name: (\S+)$", text, re.M)
    ys = [int(v) for v in re.findall(r"^        y: (\d+)$", text, re.M)]
    assert names == ["walk_00", "walk_01", "walk_02", "walk_03"]
    assert ys == [24, 24, 0, 0]  # first row is at the top of the image = highest y in Unity
    assert len(set(re.findall(r"spriteID: (\w+)", text))) == 4
    note = exporters.unity_note(sh, "w.png")
    assert "16 x 24" in note


def test_extrusion_repeats_edges():
    img = Image.new("RGBA", (4, 4), (255, 0, 0, 255))
    sh = sheet.pack([SheetFrame("a", img), SheetFrame("b", img)], padding=1, extrude=2)
    assert sh.placements[0].x == 2 and sh.placements[1].x == 2 + 4 + 5
    assert sh.image.getpixel((0, 0)) == (255, 0, 0, 255)
    assert sh.image.getpixel((8, 3)) == (0, 0, 0, 0)  # the padding gap stays clear


def test_grid_places_smaller_frames_bottom_centre():
    big, small = Image.new("RGBA", (10, 10), (1, 1, 1, 255)), Image.new("RGBA", (4, 4), (2, 2, 2, 255))
    sh = sheet.pack([SheetFrame("big", big), SheetFrame("small", small)], columns=2)
    assert sh.placements[1].w == 10
    assert sh.image.getpixel((10 + 3, 9)) == (2, 2, 2, 255)
    assert sh.image.getpixel((10 + 3, 5)) == (0, 0, 0, 0)


def test_packed_layout_has_no_overlap():
    frames = [SheetFrame(str(i), Image.new("RGBA", (5 + i * 3 % 17, 4 + i * 5 % 13), (i, 1, 1, 255))) for i in range(30)]
    sh = sheet.pack(frames, layout="packed", padding=1)
    rects = [(p.x, p.y, p.x + p.w, p.y + p.h) for p in sh.placements]
    for i, a in enumerate(rects):
        assert a[2] <= sh.size[0] and a[3] <= sh.size[1]
        for b in rects[i + 1:]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]


def test_zero_frames():
    with pytest.raises(EmptySheet) as info:
        sheet.pack([])
    assert "at least one" in info.value.user_message


def test_tsx_needs_grid(tmp_path: Path):
    frames = [SheetFrame("a", Image.new("RGBA", (8, 8))), SheetFrame("b", Image.new("RGBA", (4, 8)))]
    with pytest.raises(ExportNotPossible):
        exporters.export_sheet(sheet.pack(frames, layout="packed"), tmp_path, "t", ["tiled"])
    assert not (tmp_path / "t.png").exists()  # nothing half-written


@needs_unwritable_folders
def test_unwritable_folder(tmp_path: Path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(StorageError) as info:
            exporters.export_sheet(sheet.pack(walk_frames(2)), ro, "w", ["godot"])
        assert str(ro) in info.value.user_message
    finally:
        ro.chmod(0o700)


def test_unwritable_folder_reported_before_writing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(exporters.os, "access", lambda path, mode: False)
    with pytest.raises(StorageError) as info:
        exporters.export_sheet(sheet.pack(walk_frames(2)), tmp_path, "w", ["godot"])
    assert "permission denied" in info.value.user_message
    assert list(tmp_path.iterdir()) == []


def test_folder_that_is_a_file(tmp_path: Path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(StorageError) as info:
        exporters.export_sheet(sheet.pack(walk_frames(2)), f / "sub", "w", ["godot"])
    assert "Choose another folder" in info.value.user_message


def tiles_sheet(tmp_path: Path, extrude: int):
    colours = [(255, 0, 0, 255), (0, 255, 0, 255), (0, 0, 255, 255), (255, 255, 0, 255), (255, 0, 255, 255)]
    frames = [SheetFrame(f"t{i}", Image.new("RGBA", (8, 8), c)) for i, c in enumerate(colours)]
    sh = sheet.pack(frames, columns=3, padding=1, extrude=extrude)
    exporters.export_sheet(sh, tmp_path, "tiles", ["tiled"])
    return colours, sh


@pytest.mark.parametrize("extrude", [0, 2])
def test_tsx_structure(tmp_path: Path, extrude):
    colours, sh = tiles_sheet(tmp_path, extrude)
    ts = ET.parse(tmp_path / "tiles.tsx").getroot()
    assert ts.tag == "tileset"
    a = {k: int(v) for k, v in ts.attrib.items() if k not in ("version", "tiledversion", "name")}
    assert a == {"tilewidth": 8, "tileheight": 8, "spacing": 1 + 2 * extrude, "margin": extrude,
                 "tilecount": 5, "columns": 3}
    img = ts.find("image")
    assert img.get("source") == "tiles.png"
    # Tiled's own rule for where tile n is: margin + col * (tilewidth + spacing).
    png = Image.open(tmp_path / "tiles.png")
    for n, c in enumerate(colours):
        x = a["margin"] + (n % 3) * (8 + a["spacing"])
        y = a["margin"] + (n // 3) * (8 + a["spacing"])
        assert png.getpixel((x, y)) == c and png.getpixel((x + 7, y + 7)) == c


@pytest.mark.skipif(shutil.which("tmxrasterizer") is None, reason="tmxrasterizer (Debian package 'tiled') not installed")
@pytest.mark.parametrize("extrude", [0, 2])
def test_tsx_renders_in_tiled(tmp_path: Path, extrude):
    colours, _ = tiles_sheet(tmp_path, extrude)
    gids = [1, 2, 3, 4, 5]
    (tmp_path / "map.tmx").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<map version="1.8" orientation="orthogonal" renderorder="right-down" width="5" height="1" '
        'tilewidth="8" tileheight="8" infinite="0" nextlayerid="2" nextobjectid="1">\n'
        ' <tileset firstgid="1" source="tiles.tsx"/>\n'
        ' <layer id="1" name="ground" width="5" height="1">\n'
        f'  <data encoding="csv">{",".join(map(str, gids))}</data>\n </layer>\n</map>\n')
    out = tmp_path / "render.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run(["tmxrasterizer", str(tmp_path / "map.tmx"), str(out)], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    img = Image.open(out).convert("RGBA")
    assert img.size == (40, 8)
    for n, c in enumerate(colours):
        assert img.getpixel((n * 8 + 4, 4)) == c, f"tile {n}"


# ---------------------------------------------------------------------------------------
# Several animations in one sheet: an 8-direction walk, 4 frames per direction.

def eight_direction_walk(interleaved: bool = False) -> list[SheetFrame]:
    from studio_core.sprites.frames import DIRECTIONS

    dirs = [key for key, _ in DIRECTIONS[8]]
    order = ([(d, i) for i in range(4) for d in range(8)] if interleaved  # pose-major: animations interleave
             else [(d, i) for d in range(8) for i in range(4)])
    return [SheetFrame(f"walk_{dirs[d]}_{i:02d}", frame(d * 4 + i), f"walk_{dirs[d]}", 100 + 50 * (i == 3))
            for d, i in order]


@pytest.mark.parametrize("interleaved", [False, True])
def test_eight_direction_walk_gives_eight_animations(tmp_path: Path, interleaved):
    frames = eight_direction_walk(interleaved)
    by_name = {f.name: f for f in frames}
    anim_names = list(dict.fromkeys(f.animation for f in frames))
    assert len(anim_names) == 8
    sh = sheet.pack(frames, columns=4, padding=1, extrude=1)
    res = exporters.export_sheet(sh, tmp_path, "hero", ["godot", "aseprite-hash", "aseprite-array", "texturepacker"])
    img = Image.open(res.image)

    def crop(r):
        return img.crop((r[0], r[1], r[0] + r[2], r[1] + r[3])).tobytes()

    # Godot: one SpriteFrames animation per direction, its 4 frames in playing order.
    sections = parse_tres((tmp_path / "hero.tres").read_text())
    subs = {h["id"]: p for t, h, p in sections if t == "sub_resource"}
    anims = sections[-1][2]["animations"]
    assert [a["name"] for a in anims] == [("StringName", n) for n in anim_names]
    for a in anims:
        name = a["name"][1]
        assert a["loop"] is True and a["speed"] == 10.0 and len(a["frames"]) == 4
        assert [f["duration"] for f in a["frames"]] == [1.0, 1.0, 1.0, 1.5]
        for i, f in enumerate(a["frames"]):
            _, x, y, w, h = subs[f["texture"][1]]["region"]
            assert crop((x, y, w, h)) == by_name[f"{name}_{i:02d}"].image.tobytes(), (name, i)
    # A grid of 4 columns: each direction is one row of the sheet.
    rows = {a["name"][1]: {subs[f["texture"][1]]["region"][2] for f in a["frames"]} for a in anims}
    assert all(len(ys) == 1 for ys in rows.values()) and len({min(ys) for ys in rows.values()}) == 8

    # Aseprite: one tag per direction; frames of a tag contiguous, "to" inclusive.
    for form in ("hash", "array"):
        data = json.loads((tmp_path / f"hero.{form}.json").read_text())
        names = list(data["frames"]) if form == "hash" else [e["filename"] for e in data["frames"]]
        entries = list(data["frames"].values()) if form == "hash" else data["frames"]
        tags = data["meta"]["frameTags"]
        assert [t["name"] for t in tags] == anim_names
        for t in tags:
            assert t["to"] - t["from"] == 3 and t["direction"] == "forward"
            assert names[t["from"]:t["to"] + 1] == [f"{t['name']}_{i:02d}" for i in range(4)]
        assert [(t["from"], t["to"]) for t in tags] == [(4 * k, 4 * k + 3) for k in range(8)]
        for name, e in zip(names, entries):
            r = e["frame"]
            assert crop((r["x"], r["y"], r["w"], r["h"])) == by_name[name].image.tobytes()
            assert e["duration"] == by_name[name].duration_ms

    # TexturePacker: the frame names kept, and Pixi's animations list per direction.
    tp = json.loads((tmp_path / "hero.texturepacker.json").read_text())
    assert set(tp["frames"]) == set(by_name)
    assert tp["animations"] == {a: [f"{a}_{i:02d}" for i in range(4)] for a in anim_names}


def test_frame_names_and_animations_from_names():
    assert sheet.split_frame_name("walk_down_left_03") == ("walk_down_left", 3)
    assert sheet.split_frame_name("walk_7") == ("walk", 7)
    for plain in ("hero", "comfyui_a_knight_2026-11-26T12-00-00-123Z", "walk-2", "_07"):
        assert sheet.split_frame_name(plain) is None, plain
    names = ["walk_down_00", "walk_down_01", "walk_up_00", "hero"]
    assert sheet.animations_from_names(names, "sheet") == ["walk_down", "walk_down", "walk_up", "sheet"]
    # One animation only (or none): the sheet's own name, as before.
    assert sheet.animations_from_names(["goblin_0", "goblin_1"], "walk") == ["walk", "walk"]
    assert sheet.animations_from_names(["a", "b"], "walk") == ["walk", "walk"]
    assert sheet.group_by_animation(list("abcdef"), ["x", "y", "x", "z", "y", "x"]) == list("acfbed")
    assert sheet.frame_names(["walk_00", "walk_03"], ["walk", "walk"]) == ["walk_00", "walk_03"]
    assert sheet.frame_names([None, None, None], ["a", "b", "a"]) == ["a_00", "b_00", "a_01"]
    assert sheet.frame_names(["x", "x"], ["a", "a"]) == ["a_00", "a_01"]  # repeated labels would collide as keys
