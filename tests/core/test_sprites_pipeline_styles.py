from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, ImageDraw, PngImagePlugin

from studio_core.models import GenerationRequest
from studio_core.sprites import palettes, pipeline, styles
from studio_core.sprites.pipeline import MakeTileable, PixelArt, RemoveBackground, SpritePipeline


def generated_png(path: Path) -> Path:
    img = Image.new("RGB", (256, 256), (0, 255, 0))
    ImageDraw.Draw(img).ellipse((60, 60, 200, 220), fill=(180, 30, 30))
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "slime\nSteps: 20, Seed: 5")
    img.save(path, pnginfo=info)
    return path


def test_steps_undo_and_save_beside_original(tmp_path: Path):
    src = generated_png(tmp_path / "slime.png")
    before = src.read_bytes()
    pipe = SpritePipeline.open(src)
    pipe.apply(RemoveBackground())
    pipe.apply(PixelArt(grid=32, palette=palettes.builtin_palette("DB16")))
    assert pipe.current.size == (32, 32)
    assert [s.label for s in pipe.steps] == ["Remove background", "Pixel art 32 px, DB16"]
    undone = pipe.undo()
    assert isinstance(undone, PixelArt) and pipe.current.size == (256, 256)
    pipe.apply(PixelArt(grid=32, colours=8))
    out = pipeline.save_result(pipe)
    out2 = pipeline.save_result(pipe)
    assert out == tmp_path / "slime_sprite.png" and out2 == tmp_path / "slime_sprite-2.png"
    assert src.read_bytes() == before  # the original is never touched
    saved = Image.open(out)
    assert saved.size == (32, 32) and saved.mode == "RGBA"
    recipe = json.loads(saved.text[pipeline.SPRITE_CHUNK])
    assert recipe["source"] == "slime.png" and [s["step"] for s in recipe["steps"]] == ["RemoveBackground", "PixelArt"]
    assert saved.text["parameters"].startswith("slime")
    pipe.reset()
    assert pipe.current.size == (256, 256) and pipe.undo() is None


def test_failed_step_changes_nothing(tmp_path: Path):
    import pytest

    from studio_core.sprites.errors import GridTooLarge

    pipe = SpritePipeline(Image.new("RGBA", (16, 16)))
    with pytest.raises(GridTooLarge):
        pipe.apply(PixelArt(grid=64))
    assert pipe.steps == ()
    pipe.apply(MakeTileable())
    assert len(pipe.steps) == 1


def test_styles_file_loads_and_applies():
    book = styles.load_styles()
    assert book.warnings == ()
    assert {e.key for e in book.asset_types} == {"character_sprite", "item_icon", "tile", "ui_element", "portrait"}
    assert {e.key for e in book.styles} == {"pixel_art", "hand_drawn", "isometric", "top_down", "side_view"}
    req = styles.apply_preset(GenerationRequest("potion", negative_prompt="blurry", width=512),
                              styles.StylePreset("item_icon", "pixel_art"), book)
    assert req.prompt.startswith("potion, single game item icon") and "pixel art" in req.prompt
    assert req.negative_prompt.startswith("blurry, ")
    assert req.width == 1024 and req.option("style_preset") == "item_icon/pixel_art"
    assert styles.sprite_hints(styles.StylePreset("tile", "pixel_art"), book)["tileable"] is True
    same = GenerationRequest("x")
    assert styles.apply_preset(same, styles.StylePreset("nope", "nope"), book) is same


def test_user_styles_override_and_damage(tmp_path: Path):
    user = tmp_path / "prompt_styles.json"
    user.write_text(json.dumps({"styles": {"pixel_art": {"label": "My pixels", "prompt": "8-bit"}, "bad": 3}}))
    book = styles.load_styles(user_file=user)
    assert book.style("pixel_art").label == "My pixels"
    assert any("bad" in w for w in book.warnings)
    user.write_text("{oops")
    assert styles.load_styles(user_file=user).style("pixel_art").label == "Pixel art"
