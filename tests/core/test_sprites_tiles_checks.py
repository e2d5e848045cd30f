from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from studio_core.sprites import checks, palettes, tiles


def seamy_tile() -> Image.Image:
    # A left-to-right gradient: the wrap-around edge jumps from white back to black.
    g = Image.linear_gradient("L").rotate(90).resize((64, 64))
    return Image.merge("RGBA", (g, g, g, Image.new("L", (64, 64), 255)))


def test_seam_detection_and_fix():
    tile = seamy_tile()
    assert not tiles.seam_report(tile).seamless()
    fixed = tiles.make_seamless(tile)
    assert fixed.size == tile.size
    assert tiles.seam_report(fixed).seamless()
    noise = Image.fromarray(np.random.default_rng(1).integers(0, 255, (32, 32, 4), dtype=np.uint8), "RGBA")
    assert tiles.seam_report(noise).seamless()  # noise has no seam, just texture


def test_repeat_preview():
    out = tiles.repeat(seamy_tile(), 3)
    assert out.size == (192, 192)
    assert out.getpixel((5, 5)) == out.getpixel((69, 133))


def figure(dx=0, dy=0, size=(32, 32), colour=(255, 0, 77, 255)) -> Image.Image:
    img = Image.new("RGBA", size)
    ImageDraw.Draw(img).rectangle((10 + dx, 8 + dy, 21 + dx, 29 + dy), fill=colour)
    return img


def test_checks_name_the_frame():
    frames = [("walk_00", figure()), ("walk_01", figure()), ("walk_02", figure(dy=-2)),
              ("walk_03", figure(size=(40, 32))), ("walk_04", Image.new("RGBA", (32, 32))),
              ("walk_05", figure(colour=(1, 2, 3, 255)))]
    warnings = checks.check_frames(frames, palette=palettes.builtin_palette("PICO-8"))
    kinds = {(w.frame, w.kind) for w in warnings}
    assert ("walk_02", "pivot") in kinds
    assert ("walk_03", "size") in kinds and ("walk_03", "pivot") in kinds
    assert ("walk_04", "empty") in kinds
    assert ("walk_05", "palette") in kinds
    assert ("walk_00", "palette") not in kinds and ("walk_01", "pivot") not in kinds
    assert all(w.frame in w.message for w in warnings)


def test_tile_checks():
    warnings = checks.check_frames([("grass", seamy_tile()), ("ok", tiles.make_seamless(seamy_tile()))], tiles=True)
    assert [(w.frame, w.kind) for w in warnings] == [("grass", "seam")]


def test_same_size_check_message():
    import pytest

    from studio_core.sprites.errors import FrameMismatch

    with pytest.raises(FrameMismatch) as info:
        checks.check_same_size([("a", figure()), ("b", figure()), ("c", figure(size=(40, 30)))])
    assert "c (40×30)" in info.value.user_message
    checks.check_same_size([("a", figure())])
