"""Palettes: the built-in classics and readers for .gpl, JASC .pal, .hex and images."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from studio_core.sprites.errors import PaletteError

RGB = tuple[int, int, int]
MAX_COLOURS = 256


@dataclass(frozen=True, slots=True)
class Palette:
    name: str
    colours: tuple[RGB, ...]

    def __post_init__(self) -> None:
        if not self.colours:
            raise PaletteError(f"palette {self.name!r} is empty", user_message="The palette has no colours.")

    def __len__(self) -> int:
        return len(self.colours)

    def hex(self) -> tuple[str, ...]:
        return tuple(f"#{r:02x}{g:02x}{b:02x}" for r, g, b in self.colours)


def _from_hex(name: str, text: str) -> Palette:
    return Palette(name, tuple(tuple(int(h[i:i + 2], 16) for i in (0, 2, 4)) for h in text.split()))  # type: ignore[misc]


_BUILTIN_HEX = {
    "PICO-8": "000000 1d2b53 7e2553 008751 ab5236 5f574f c2c3c7 fff1e8 ff004d ffa300 ffec27 00e436 29adff 83769c ff77a8 ffccaa",
    "DB16": "140c1c 442434 30346d 4e4a4e 854c30 346524 d04648 757161 597dce d27d2c 8595a1 6daa2c d2aa99 6dc2ca dad45e deeed6",
    "DB32": ("000000 222034 45283c 663931 8f563b df7126 d9a066 eec39a fbf236 99e550 6abe30 37946e 4b692f 524b24 323c39 3f3f74 "
             "306082 5b6ee1 639bff 5fcde4 cbdbfc ffffff 9badb7 847e87 696a6a 595652 76428a ac3232 d95763 d77bba 8f974a 8a6f30"),
    "NES": ("000000 fcfcfc f8f8f8 bcbcbc 7c7c7c a4e4fc 3cbcfc 0078f8 0000fc b8b8f8 6888fc 0058f8 0000bc d8b8f8 9878f8 6844fc "
            "4428bc f8b8f8 f878f8 d800cc 940084 f8a4c0 f85898 e40058 a80020 f0d0b0 f87858 f83800 a81000 fce0a8 fca044 e45c10 "
            "881400 f8d878 f8b800 ac7c00 503000 d8f878 b8f818 00b800 007800 b8f8b8 58d854 00a800 006800 b8f8d8 58f898 00a844 "
            "005800 00fcfc 00e8d8 008888 004058 f8d8f8 787878"),
    "Game Boy": "0f380f 306230 8bac0f 9bbc0f",
    "Greyscale": "000000 242424 494949 6d6d6d 929292 b6b6b6 dbdbdb ffffff",
}
BUILTIN_NAMES = tuple(_BUILTIN_HEX)


def builtin_palette(name: str) -> Palette:
    for key, text in _BUILTIN_HEX.items():
        if key.lower().replace(" ", "").replace("-", "") == name.lower().replace(" ", "").replace("-", ""):
            return _from_hex(key, text)
    raise PaletteError(f"unknown built-in palette {name!r}", user_message=f"There is no built-in palette called '{name}'.")


def _bad(path_name: str, line_no: int, line: str, fmt: str) -> PaletteError:
    shown = line.strip()[:40]
    return PaletteError(f"{path_name}:{line_no}: {shown!r} is not a colour ({fmt})",
                        user_message=f"{path_name} is not a usable {fmt} palette: line {line_no} ('{shown}') is not a colour.")


def _check_count(name: str, colours: list[RGB]) -> tuple[RGB, ...]:
    if not colours:
        raise PaletteError(f"{name}: no colours", user_message=f"{name} contains no colours.")
    if len(colours) > MAX_COLOURS:
        raise PaletteError(f"{name}: {len(colours)} colours",
                           user_message=f"{name} has {len(colours)} colours; a sprite palette can have at most {MAX_COLOURS}.")
    return tuple(dict.fromkeys(colours))


def _rgb_triplet(parts: list[str]) -> RGB | None:
    if len(parts) < 3:
        return None
    try:
        vals = tuple(int(p) for p in parts[:3])
    except ValueError:
        return None
    if not all(0 <= v <= 255 for v in vals):
        return None
    return vals  # type: ignore[return-value]


def parse_gpl(text: str, name: str = "palette.gpl") -> Palette:
    lines = text.splitlines()
    if not lines or not lines[0].strip().startswith("GIMP Palette"):
        raise PaletteError(f"{name}: no 'GIMP Palette' header",
                           user_message=f"{name} is not a GIMP palette (it should start with 'GIMP Palette').")
    title = Path(name).stem
    colours: list[RGB] = []
    for no, line in enumerate(lines[1:], start=2):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if s.startswith("Name:"):
            title = s[5:].strip() or title
            continue
        if s.startswith("Columns:"):
            continue
        rgb = _rgb_triplet(s.split())
        if rgb is None:
            raise _bad(name, no, line, "GIMP .gpl")
        colours.append(rgb)
    return Palette(title, _check_count(name, colours))


def parse_jasc(text: str, name: str = "palette.pal") -> Palette:
    lines = [ln.strip() for ln in text.splitlines()]
    if len(lines) < 3 or lines[0] != "JASC-PAL":
        raise PaletteError(f"{name}: no JASC-PAL header",
                           user_message=f"{name} is not a JASC palette (it should start with 'JASC-PAL').")
    try:
        count = int(lines[2])
    except ValueError:
        raise _bad(name, 3, lines[2], "JASC .pal") from None
    colours: list[RGB] = []
    for no, line in enumerate(lines[3:], start=4):
        if not line:
            continue
        rgb = _rgb_triplet(line.split())
        if rgb is None:
            raise _bad(name, no, line, "JASC .pal")
        colours.append(rgb)
    if count != len(colours):
        raise PaletteError(f"{name}: header says {count}, found {len(colours)}",
                           user_message=f"{name} says it has {count} colours but lists {len(colours)}; the file may be cut short.")
    return Palette(Path(name).stem, _check_count(name, colours))


_HEX_LINE = re.compile(r"#?([0-9a-fA-F]{6})(?:[0-9a-fA-F]{2})?")


def parse_hex(text: str, name: str = "palette.hex") -> Palette:
    colours: list[RGB] = []
    for no, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if not s or s.startswith(";") or s.startswith("//"):
            continue
        m = _HEX_LINE.fullmatch(s)
        if not m:
            raise _bad(name, no, line, ".hex")
        h = m.group(1)
        colours.append((int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)))
    return Palette(Path(name).stem, _check_count(name, colours))


def palette_from_image(img: Image.Image, *, max_colours: int = 32, name: str = "from image") -> Palette:
    """The image's own colours when it has few (a palette swatch), else a median-cut reduction."""
    rgba = img.convert("RGBA")
    opaque = [c[1][:3] for c in (rgba.getcolors(MAX_COLOURS * 4) or []) if c[1][3] >= 128]
    if opaque and len(set(opaque)) <= max_colours:
        return Palette(name, tuple(dict.fromkeys(sorted(set(opaque)))))
    q = rgba.convert("RGB").quantize(colors=max_colours, method=Image.Quantize.MEDIANCUT)
    flat = q.getpalette()[: 3 * max_colours]
    used = sorted({i for _, i in q.getcolors(max_colours + 1)})
    return Palette(name, tuple((flat[3 * i], flat[3 * i + 1], flat[3 * i + 2]) for i in used))


def load_palette(path: Path) -> Palette:
    """Read a palette file, choosing the reader by content first, then by extension."""
    path = Path(path)
    try:
        if path.suffix.lower() in (".png", ".gif", ".bmp", ".jpg", ".jpeg", ".webp"):
            with Image.open(path) as img:
                return palette_from_image(img, name=path.stem)
        raw = path.read_bytes()
    except PaletteError:
        raise
    except (OSError, ValueError, SyntaxError) as exc:
        raise PaletteError(f"{path}: {exc}", user_message=f"Could not open {path.name}: {exc.__class__.__name__}.") from exc
    if raw[:4] == b"RIFF":
        raise PaletteError(f"{path.name}: RIFF palette",
                           user_message=f"{path.name} is a binary (RIFF) palette; export it as GIMP .gpl or JASC .pal instead.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PaletteError(f"{path.name}: not text",
                           user_message=f"{path.name} is not a palette file (it is not text).") from None
    head = text.lstrip()[:16]
    if head.startswith("GIMP Palette"):
        return parse_gpl(text, path.name)
    if head.startswith("JASC-PAL"):
        return parse_jasc(text, path.name)
    if path.suffix.lower() in (".hex", ".txt"):
        return parse_hex(text, path.name)
    if path.suffix.lower() == ".gpl":
        return parse_gpl(text, path.name)
    if path.suffix.lower() == ".pal":
        return parse_jasc(text, path.name)
    return parse_hex(text, path.name)
