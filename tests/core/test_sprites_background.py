from __future__ import annotations

import pytest
from PIL import Image, ImageDraw

from studio_core.sprites import background
from studio_core.sprites.background import BackgroundMethod, choose_background_method
from studio_core.sprites.errors import NoBackgroundFound


def keyed_sprite(size: int = 256, key=(0, 255, 0)) -> Image.Image:
    img = Image.new("RGB", (size, size), key)
    d = ImageDraw.Draw(img)
    d.ellipse((40, 40, size - 40, size - 30), fill=(180, 40, 40), outline=(20, 20, 20), width=6)
    d.rectangle((size // 2 - 10, size // 2 - 10, size // 2 + 10, size // 2 + 10), fill=key)  # a "gem" of key colour
    return img


def test_removes_border_background_and_keeps_inner_key_colour():
    out = background.remove_background(keyed_sprite())
    assert out.mode == "RGBA"
    assert out.getpixel((2, 2))[3] == 0
    assert out.getpixel((128, 128)) == (0, 255, 0, 255)  # enclosed: survives the flood fill
    assert out.getpixel((128, 60))[3] == 255


def test_noisy_background_within_tolerance():
    img = keyed_sprite()
    px = img.load()
    for y in range(0, 256, 3):
        for x in range(0, 30, 2):
            px[x, y] = (20, 230, 25)
    out = background.remove_background(img, tolerance=60)
    assert out.getpixel((4, 3))[3] == 0


def test_soft_edge_is_despilled():
    img = Image.new("RGB", (64, 64), (0, 255, 0))
    d = ImageDraw.Draw(img)
    d.rectangle((20, 20, 43, 43), fill=(200, 0, 0))
    d.line((19, 20, 19, 43), fill=(100, 128, 0))  # a half-mixed anti-aliasing column
    out = background.remove_background(img, tolerance=40, softness=300)
    r, g, b, a = out.getpixel((19, 30))
    assert 0 < a < 255
    assert g < 60  # the green spill is un-mixed, not kept as a fringe


def test_original_image_is_not_modified():
    img = keyed_sprite()
    before = img.tobytes()
    background.remove_background(img)
    assert img.tobytes() == before


def test_busy_image_has_no_background():
    g = Image.linear_gradient("L").resize((128, 128))
    img = Image.merge("RGB", (g, g.rotate(90), g.rotate(180)))
    with pytest.raises(NoBackgroundFound) as info:
        background.remove_background(img)
    assert "plain background" in info.value.user_message


def test_already_transparent():
    img = Image.new("RGBA", (32, 32))
    with pytest.raises(NoBackgroundFound) as info:
        background.remove_background(img)
    assert "already" in info.value.user_message


def test_detect_border_colour():
    found = background.detect_border_colour(keyed_sprite(key=(255, 0, 255)))
    assert found.rgb == (255, 0, 255)
    assert found.coverage > 0.95


def test_choose_method_prefers_provider_then_node_then_app():
    assert choose_background_method("openai").method is BackgroundMethod.provider
    assert dict(choose_background_method("openai").options) == {"background": "transparent"}
    info = {"KSampler": {}, "Image Remove Background (rembg)": {}}
    plan = choose_background_method("comfyui", object_info=info)
    assert plan.method is BackgroundMethod.comfy_node and plan.node == "Image Remove Background (rembg)"
    assert choose_background_method("comfyui", object_info={"BRIA_RMBG_Zho": {}}).node == "BRIA_RMBG_Zho"
    assert choose_background_method("comfyui", object_info={"Some RemBG Node": {}}).node == "Some RemBG Node"
    plan = choose_background_method("comfyui", object_info={"KSampler": {}})
    assert plan.method is BackgroundMethod.in_app and "green" in plan.prompt_suffix
    assert choose_background_method("huggingface").method is BackgroundMethod.in_app
    assert choose_background_method("x", capabilities={"transparent_background"}).method is BackgroundMethod.provider


def test_recorded_object_info_has_no_removal_node():
    import json
    from pathlib import Path

    data = Path(__file__).parents[1] / "data"
    for f in sorted(data.glob("comfy_object_info*.json")):
        info = json.loads(f.read_text())
        assert choose_background_method("comfyui", object_info=info).method is BackgroundMethod.in_app


def test_apply_background_plan():
    from studio_core.models import GenerationRequest

    base = GenerationRequest("slime", negative_prompt="text")
    req = background.apply_background_plan(base, choose_background_method("openai"))
    assert req.option("background") == "transparent" and req.prompt == "slime"
    req = background.apply_background_plan(base, choose_background_method("comfyui", object_info={"BRIA_RMBG": {}}))
    assert req.option("background_node") == "BRIA_RMBG"
    req = background.apply_background_plan(base, choose_background_method("huggingface"))
    assert req.prompt.startswith("slime, isolated on a plain flat solid green background")
    assert req.negative_prompt.startswith("text, gradient background")
