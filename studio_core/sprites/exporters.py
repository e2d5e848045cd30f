"""Sheet metadata in the formats engines and editors read, and the writer for all of them.

- Aseprite JSON (``--format json-hash|json-array`` layout from ``DocExporter``; tag ``to``
  is inclusive), also read by Phaser, Pixi and most engine importers;
- TexturePacker JSON hash with ``pivot`` and Pixi's top-level ``animations``;
- Godot 4 ``SpriteFrames`` text resource (.tres, format=3) with one AtlasTexture per
  frame. The texture path is relative to the .tres, which Godot's text loader resolves
  against the .tres folder, so the pair works wherever it is dropped in a project;
- Unity: a ``.meta`` with ``spriteMode: 2`` slicing (rects converted to Unity's
  bottom-left origin), plus a note with the cell size for slicing by hand;
- Tiled tileset (.tsx) for grid sheets of equal-size tiles.
"""

from __future__ import annotations

import io
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable
from xml.etree import ElementTree as ET

from studio_core.errors import StorageError
from studio_core.plural import counted
from studio_core.sprites.errors import ExportNotPossible
from studio_core.sprites.sheet import Sheet
from studio_core.storage.atomic import atomic_write_bytes

APP = "Cloud AI Art Studio"
FORMATS: dict[str, str] = {
    "aseprite-hash": "Aseprite JSON (hash)",
    "aseprite-array": "Aseprite JSON (array)",
    "texturepacker": "TexturePacker JSON",
    "godot": "Godot 4 SpriteFrames (.tres)",
    "unity": "Unity sliced sprite (.meta)",
    "tiled": "Tiled tileset (.tsx)",
}


def _rect(p) -> dict:
    return {"x": p.x, "y": p.y, "w": p.w, "h": p.h}


def aseprite_json(sheet: Sheet, image_name: str, *, form: str = "hash") -> str:
    frames = []
    for p in sheet.placements:
        frames.append({
            "filename": p.name,
            "frame": _rect(p),
            "rotated": False,
            "trimmed": False,
            "spriteSourceSize": {"x": 0, "y": 0, "w": p.w, "h": p.h},
            "sourceSize": {"w": p.w, "h": p.h},
            "duration": p.duration_ms,
        })
    tags = [{"name": name, "from": idx[0], "to": idx[-1], "direction": "forward"}
            for name, idx in sheet.animations().items() if idx == list(range(idx[0], idx[-1] + 1))]
    w, h = sheet.size
    meta = {"app": APP, "version": "1.0", "image": image_name, "format": "RGBA8888",
            "size": {"w": w, "h": h}, "scale": "1", "frameTags": tags,
            "layers": [{"name": "Layer", "opacity": 255, "blendMode": "normal"}], "slices": []}
    body = ({f.pop("filename"): f for f in frames} if form == "hash" else frames)
    return json.dumps({"frames": body, "meta": meta}, indent=1)


def texturepacker_json(sheet: Sheet, image_name: str, *, pivot: tuple[float, float] = (0.5, 1.0)) -> str:
    frames = {}
    for p in sheet.placements:
        frames[p.name] = {"frame": _rect(p), "rotated": False, "trimmed": False,
                          "spriteSourceSize": {"x": 0, "y": 0, "w": p.w, "h": p.h},
                          "sourceSize": {"w": p.w, "h": p.h}, "pivot": {"x": pivot[0], "y": pivot[1]}}
    anims = {name: [sheet.placements[i].name for i in idx] for name, idx in sheet.animations().items()}
    w, h = sheet.size
    meta = {"app": "https://www.codeandweb.com/texturepacker", "version": "1.0", "image": image_name,
            "format": "RGBA8888", "size": {"w": w, "h": h}, "scale": "1", "smartupdate": ""}
    return json.dumps({"frames": frames, "animations": anims, "meta": meta}, indent=1)


def _godot_string(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"')


def godot_tres(sheet: Sheet, texture_path: str, *, loop: bool = True) -> str:
    """``texture_path`` is relative to the .tres (``walk.png``) or a ``res://`` path."""
    lines = [f'[gd_resource type="SpriteFrames" load_steps={len(sheet.placements) + 2} format=3]', "",
             f'[ext_resource type="Texture2D" path="{_godot_string(texture_path)}" id="1_sheet"]', ""]
    for i, p in enumerate(sheet.placements):
        lines += [f'[sub_resource type="AtlasTexture" id="AtlasTexture_{i}"]', 'atlas = ExtResource("1_sheet")',
                  f"region = Rect2({p.x}, {p.y}, {p.w}, {p.h})", "filter_clip = true", ""]
    anims = []
    for name, idx in sheet.animations().items():
        base = min(sheet.placements[i].duration_ms for i in idx) or 100
        frames = ", ".join(
            f'{{\n"duration": {sheet.placements[i].duration_ms / base:.1f},\n"texture": SubResource("AtlasTexture_{i}")\n}}'
            for i in idx)
        anims.append(f'{{\n"frames": [{frames}],\n"loop": {"true" if loop else "false"},\n'
                     f'"name": &"{_godot_string(name)}",\n"speed": {1000.0 / base:.1f}\n}}')
    lines += ["[resource]", f"animations = [{', '.join(anims)}]", ""]
    return "\n".join(lines)


def _unity_id(seed: str) -> int:
    return int(uuid.uuid5(uuid.NAMESPACE_URL, seed).int % (2**63 - 1))


def unity_meta(sheet: Sheet, *, pixels_per_unit: int | None = None, guid: str | None = None,
               pivot: tuple[float, float] = (0.5, 0.0)) -> str:
    """A TextureImporter .meta: Sprite (2D and UI), Multiple, point filter, no compression.

    It must reach Unity's Assets folder together with (not after) the PNG; Unity writes
    its own .meta for a PNG that arrives alone.
    """
    h = sheet.size[1]
    ppu = pixels_per_unit or (sheet.cell[1] if sheet.cell else max(p.h for p in sheet.placements))
    guid = guid or uuid.uuid4().hex
    out = ["fileFormatVersion: 2", f"guid: {guid}", "TextureImporter:", "  serializedVersion: 12",
           "  mipmaps:", "    enableMipMap: 0", "  isReadable: 0", "  textureSettings:", "    serializedVersion: 2",
           "    filterMode: 0", "    aniso: 1", "    mipBias: 0", "    wrapU: 1", "    wrapV: 1", "    wrapW: 1",
           "  nPOTScale: 0", "  spriteMode: 2", "  spriteExtrude: 1", "  spriteMeshType: 0", "  alignment: 7",
           f"  spritePivot: {{x: {pivot[0]}, y: {pivot[1]}}}", f"  spritePixelsToUnits: {ppu}",
           "  spriteBorder: {x: 0, y: 0, z: 0, w: 0}", "  alphaUsage: 1", "  alphaIsTransparency: 1",
           "  textureType: 8", "  textureShape: 1", "  platformSettings:", "  - serializedVersion: 3",
           "    buildTarget: DefaultTexturePlatform", "    maxTextureSize: 8192", "    textureFormat: -1",
           "    textureCompression: 0", "    compressionQuality: 50", "    crunchedCompression: 0",
           "  spriteSheet:", "    serializedVersion: 2", "    sprites:"]
    for p in sheet.placements:
        sid = f"{_unity_id(guid + p.name):032x}"[-32:]
        out += ["    - serializedVersion: 2", f"      name: {p.name}", "      rect:", "        serializedVersion: 2",
                f"        x: {p.x}", f"        y: {h - p.y - p.h}", f"        width: {p.w}", f"        height: {p.h}",
                "      alignment: 7", f"      pivot: {{x: {pivot[0]}, y: {pivot[1]}}}",
                "      border: {x: 0, y: 0, z: 0, w: 0}", "      outline: []", "      physicsShape: []",
                "      tessellationDetail: 0", "      bones: []", f"      spriteID: {sid}",
                f"      internalID: {_unity_id(guid + '/' + p.name)}", "      vertices: []", "      indices: ",
                "      edges: []", "      weights: []"]
    out += ["    outline: []", "    physicsShape: []", "    bones: []", "    spriteID: ", "    internalID: 0",
            "    vertices: []", "    indices: ", "    edges: []", "    weights: []", "  spritePackingTag: ",
            "  userData: ", "  assetBundleName: ", "  assetBundleVariant: ", ""]
    return "\n".join(out)


def unity_note(sheet: Sheet, image_name: str) -> str:
    lines = [f"{image_name}: {sheet.size[0]}x{sheet.size[1]} px, {counted(len(sheet.placements), 'frame')}."]
    if sheet.cell:
        lines.append(f"Slice in Unity: Sprite Editor > Slice > Grid By Cell Size, pixel size {sheet.cell[0]} x {sheet.cell[1]}, "
                     f"offset {sheet.margin} x {sheet.margin}, padding {sheet.spacing} x {sheet.spacing}, pivot Bottom.")
    lines.append("Drop the .png and its .meta into Assets together so Unity keeps the slicing; "
                 "for pixel art keep Filter Mode = Point and Compression = None.")
    return "\n".join(lines) + "\n"


def tiled_tsx(sheet: Sheet, image_name: str, *, name: str) -> str:
    if sheet.layout != "grid" or sheet.cell is None:
        raise ExportNotPossible("tsx needs a grid",
                                user_message="A Tiled tileset needs the grid layout. Switch the layout to Grid.")
    sizes = {(p.w, p.h) for p in sheet.placements}
    if len(sizes) != 1:
        raise ExportNotPossible("uneven tiles", user_message="A Tiled tileset needs tiles of one size.")
    tw, th = sheet.cell
    ts = ET.Element("tileset", {
        "version": "1.8", "tiledversion": "1.8.2", "name": name, "tilewidth": str(tw), "tileheight": str(th),
        "spacing": str(sheet.spacing), "margin": str(sheet.margin), "tilecount": str(len(sheet.placements)),
        "columns": str(sheet.columns)})
    ET.SubElement(ts, "image", {"source": image_name, "width": str(sheet.size[0]), "height": str(sheet.size[1])})
    ET.indent(ts, space=" ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(ts, encoding="unicode") + "\n"


@dataclass(frozen=True, slots=True)
class ExportResult:
    files: tuple[Path, ...]
    image: Path
    name: str = ""  # the name used: the one asked for, or ``<name>-2``… when that was taken

    def renamed(self, asked: str) -> bool:
        return bool(self.name) and self.name != asked


def _sheet_texts(sheet: Sheet, name: str, formats: list[str], godot_texture_path: str | None) -> list[tuple[str, str]]:
    """(file name, text) of each metadata file for a sheet saved as ``<name>.png``."""
    png_name = f"{name}.png"
    texts: list[tuple[str, str]] = []
    for fmt in formats:
        if fmt == "aseprite-hash":
            texts.append((f"{name}.json" if "aseprite-array" not in formats else f"{name}.hash.json",
                          aseprite_json(sheet, png_name, form="hash")))
        elif fmt == "aseprite-array":
            texts.append((f"{name}.json" if "aseprite-hash" not in formats else f"{name}.array.json",
                          aseprite_json(sheet, png_name, form="array")))
        elif fmt == "texturepacker":
            texts.append((f"{name}.texturepacker.json", texturepacker_json(sheet, png_name)))
        elif fmt == "godot":
            texts.append((f"{name}.tres", godot_tres(sheet, godot_texture_path or png_name)))
        elif fmt == "unity":
            texts.append((f"{png_name}.meta", unity_meta(sheet)))
            texts.append((f"{name}_unity.txt", unity_note(sheet, png_name)))
        elif fmt == "tiled":
            texts.append((f"{name}.tsx", tiled_tsx(sheet, png_name, name=name)))
    return texts


def export_sheet(sheet: Sheet, folder: Path, name: str, formats: Iterable[str], *,
                 godot_texture_path: str | None = None) -> ExportResult:
    """Write ``<name>.png`` and each format's metadata into ``folder``; return the paths.

    Never replaces a file: the folder is often a game project, where ``walk.png`` may be
    someone's work. When any of the files is taken, the sheet becomes ``<name>-2`` (then
    ``-3``…) as a whole, so the PNG and its metadata keep naming each other.
    Checks every format first, so a sheet a format cannot describe writes nothing.
    Raises StorageError with the folder named when it cannot be written.
    """
    folder = Path(folder)
    formats = [f for f in dict.fromkeys(formats)]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ExportNotPossible(f"unknown formats {unknown}")
    _sheet_texts(sheet, name, formats, godot_texture_path)  # a format that cannot describe it fails here
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"mkdir {folder}: {exc}",
                           user_message=f"Can't create the folder {folder} ({exc.strerror or exc}). Choose another folder.") from exc
    if not os.access(folder, os.W_OK):
        raise StorageError(f"{folder} not writable",
                           user_message=f"Can't write to {folder}: permission denied. Choose another folder.")
    buf = io.BytesIO()
    sheet.image.save(buf, format="PNG")
    png = buf.getvalue()
    for n in range(1, _MAX_NAMES + 1):
        candidate = name if n == 1 else f"{name}-{n}"
        texture = godot_texture_path
        if texture and texture.endswith(f"{name}.png"):  # a res:// path follows the PNG's new name
            texture = texture[:-len(f"{name}.png")] + f"{candidate}.png"
        files = [(f"{candidate}.png", png)] + [(f, t.encode("utf-8")) for f, t in
                                               _sheet_texts(sheet, candidate, formats, texture)]
        if any((folder / f).exists() for f, _data in files):
            continue
        written: list[Path] = []
        try:
            for fname, data in files:
                atomic_write_bytes(folder / fname, data, exclusive=True)
                written.append(folder / fname)
        except FileExistsError:
            # Another program took one of the names meanwhile: take back this attempt, try the next.
            _remove(written)
            continue
        except BaseException:
            _remove(written)  # a half-exported sheet (PNG without its .tres) is worse than none
            raise
        return ExportResult(tuple(written), folder / f"{candidate}.png", candidate)
    raise StorageError(f"no free name for {name} in {folder}",
                       user_message=f"{folder} already holds {name}.png and {_MAX_NAMES - 1} numbered copies;"
                       " choose another name or folder.")


_MAX_NAMES = 999


def _remove(paths: list[Path]) -> None:
    for p in paths:
        try:
            p.unlink()
        except OSError:
            pass
