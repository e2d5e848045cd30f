from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from studio_core.sprites import palettes, pixelart
from studio_core.sprites.errors import GridTooLarge, PaletteError


def blocky(size: int = 512, grid: int = 32) -> Image.Image:
    """A 'generated' sprite: a grid-aligned shape, blurred edges like a diffusion model draws them."""
    img = Image.new("RGBA", (size, size))
    d = ImageDraw.Draw(img)
    cell = size // grid
    d.rectangle((8 * cell, 8 * cell, 24 * cell - 1, 28 * cell - 1), fill=(30, 200, 60, 255))
    d.rectangle((12 * cell, 12 * cell, 16 * cell - 1, 16 * cell - 1), fill=(250, 240, 30, 255))
    return img


@pytest.mark.parametrize("method", ["kcentroid", "dominant"])
def test_downscale_is_crisp(method):
    out = pixelart.downscale(blocky(), 32, method=method)
    assert out.size == (32, 32)
    assert out.getpixel((10, 10)) == (30, 200, 60, 255)
    assert out.getpixel((13, 13)) == (250, 240, 30, 255)
    assert out.getpixel((2, 2))[3] == 0
    colours = {c for _, c in out.getcolors()}
    assert len(colours) <= 3  # no in-between blends


def test_downscale_keeps_aspect_and_non_multiple_sizes():
    img = Image.new("RGB", (1000, 500), (10, 20, 30))
    assert pixelart.downscale(img, 64).size == (64, 32)
    assert pixelart.downscale(img.rotate(90, expand=True), 48).size == (24, 48)


def test_grid_larger_than_image():
    with pytest.raises(GridTooLarge) as info:
        pixelart.downscale(Image.new("RGB", (20, 20)), 32)
    assert "larger than this 20×20 image" in info.value.user_message


def test_apply_palette_and_ordered_dither():
    pal = palettes.builtin_palette("game boy")
    grad = Image.linear_gradient("L").resize((64, 64)).convert("RGBA")
    plain = pixelart.apply_palette(grad, pal)
    dithered = pixelart.apply_palette(grad, pal, dither="ordered")
    allowed = set(pal.colours)
    for img in (plain, dithered):
        assert {c[:3] for _, c in img.getcolors()} <= allowed
    assert plain.tobytes() != dithered.tobytes()


def test_pixelate_recipe_outline_and_snap():
    out = pixelart.pixelate(blocky(), grid=32, palette=palettes.builtin_palette("pico-8"), outline=(0, 0, 0))
    alphas = {c[3] for _, c in out.getcolors()}
    assert alphas <= {0, 255}
    assert out.getpixel((7, 10)) == (0, 0, 0, 255)  # outline ring left of the body
    assert out.getpixel((6, 10))[3] == 0
    assert {c[:3] for _, c in out.getcolors() if c[3]} <= set(palettes.builtin_palette("pico-8").colours)


def test_reduce_colours():
    img = Image.linear_gradient("L").resize((64, 64)).convert("RGB").convert("RGBA")
    out = pixelart.reduce_colours(img, 4)
    assert len({c for _, c in out.getcolors()}) <= 4


def test_upscale_and_fit():
    img = Image.new("RGBA", (32, 16), (1, 2, 3, 255))
    assert pixelart.upscale(img, 4).size == (128, 64)
    assert pixelart.fit_factor((32, 16), (300, 100)) == 6
    assert pixelart.fit_factor((500, 500), (100, 100)) == 1


def test_builtin_palettes_sizes():
    sizes = {n: len(palettes.builtin_palette(n)) for n in palettes.BUILTIN_NAMES}
    assert sizes["PICO-8"] == 16 and sizes["DB16"] == 16 and sizes["DB32"] == 32
    assert sizes["Game Boy"] == 4 and sizes["NES"] >= 50 and sizes["Greyscale"] == 8


def test_palette_files(tmp_path: Path):
    (tmp_path / "a.gpl").write_text("GIMP Palette\nName: Mine\nColumns: 4\n# c\n255 0 0\tRed\n0 255 0 Green\n")
    (tmp_path / "b.pal").write_text("JASC-PAL\r\n0100\r\n2\r\n1 2 3\r\n4 5 6\r\n")
    (tmp_path / "c.hex").write_text("ff0000\n#00ff00\n0000FFff\n")
    Image.new("RGB", (4, 1), (9, 9, 9)).save(tmp_path / "d.png")
    assert palettes.load_palette(tmp_path / "a.gpl") == palettes.Palette("Mine", ((255, 0, 0), (0, 255, 0)))
    assert palettes.load_palette(tmp_path / "b.pal").colours == ((1, 2, 3), (4, 5, 6))
    assert palettes.load_palette(tmp_path / "c.hex").colours == ((255, 0, 0), (0, 255, 0), (0, 0, 255))
    assert palettes.load_palette(tmp_path / "d.png").colours == ((9, 9, 9),)


@pytest.mark.parametrize("name,content,expect", [
    ("x.gpl", "GIMP Palette\n255 0 zz\n", "line 2"),
    ("x.gpl", "not a palette", "GIMP palette"),
    ("x.pal", "JASC-PAL\n0100\n3\n1 2 3\n", "says it has 3"),
    ("x.pal", "JASC-PAL\n0100\nmany\n", "line 3"),
    ("x.hex", "ff0000\nhello\n", "line 2"),
    ("x.hex", "", "no colours"),
    ("x.hex", "\n".join(["ff0000"] * 300), "at most 256"),
    ("x.pal", "RIFF\x00\x00PAL data", "binary"),
    ("x.gpl", "GIMP Palette\n300 0 0\n", "line 2"),
])
def test_garbage_palettes_give_clear_messages(tmp_path: Path, name, content, expect):
    p = tmp_path / name
    p.write_text(content, encoding="latin-1")
    with pytest.raises(PaletteError) as info:
        palettes.load_palette(p)
    assert expect in info.value.user_message


def test_binary_garbage(tmp_path: Path):
    p = tmp_path / "x.gpl"
    p.write_bytes(bytes(range(256)))
    with pytest.raises(PaletteError):
        palettes.load_palette(p)
    with pytest.raises(PaletteError):
        palettes.load_palette(tmp_path / "missing.gpl")


def test_unknown_builtin():
    with pytest.raises(PaletteError):
        palettes.builtin_palette("nope")


def test_kcentroid_never_blends_opposite_colours():
    # Red and green have opposite channel trends: a mean/std start would average them to mud.
    img = Image.new("RGB", (160, 160), (255, 0, 0))
    d = ImageDraw.Draw(img)
    for x in range(0, 160, 16):
        d.rectangle((x, 0, x + 5, 159), fill=(0, 200, 0))  # 6 of every 16 columns green
    out = pixelart.downscale(img, 10)
    assert {c for _, c in out.getcolors()} == {(255, 0, 0, 255)}


@pytest.mark.parametrize("method", ["kcentroid", "dominant"])
def test_cell_colour_comes_from_opaque_samples_only(method):
    # Each 10-px cell: a transparent magenta left part and an opaque blue right part;
    # the cell's colour is the blue, its alpha the mean (60 % opaque → 153).
    img = Image.new("RGBA", (100, 50), (255, 0, 255, 0))
    d = ImageDraw.Draw(img)
    for x in range(0, 100, 10):
        d.rectangle((x + 4, 0, x + 9, 49), fill=(20, 40, 220, 255))
    out = pixelart.downscale(img, 10, method=method)
    assert out.size == (10, 5)
    assert {c for _, c in out.getcolors()} == {(20, 40, 220, 153)}


def test_dominant_takes_the_most_common_colour_and_breaks_ties_by_key():
    # Two 10-px cells, 5 × 5 samples each at odd pixel positions. Left: 13 red, 12 green →
    # red. Right: 12 green, 12 blue, 1 red → a tie, won by the smaller 4-bit key
    # (r << 8 | g << 4 | b: blue 0x00c < green 0x0c0).
    img = Image.new("RGB", (20, 10), (200, 0, 0))
    px = img.load()
    for i in range(12):
        x, y = 1 + 2 * (i % 5), 1 + 2 * (i // 5)
        px[x, y] = (0, 200, 0)
        px[10 + x, y] = (0, 200, 0)
    for i in range(12, 24):
        px[10 + 1 + 2 * (i % 5), 1 + 2 * (i // 5)] = (0, 0, 200)
    out = pixelart.downscale(img, 2, method="dominant")
    assert out.getpixel((0, 0)) == (200, 0, 0, 255)
    assert out.getpixel((1, 0)) == (0, 0, 200, 255)
