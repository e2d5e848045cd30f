from __future__ import annotations

import random

import pytest
from PIL import Image, ImageDraw

from studio_core.models import GenerationRequest
from studio_core.sprites import frames
from studio_core.sprites.errors import EmptySheet


def test_variants_have_consecutive_seeds():
    base = GenerationRequest("slime", seed=41, steps=12)
    reqs = frames.variant_requests(base, 4)
    assert [r.seed for r in reqs] == [41, 42, 43, 44]
    assert all(r.steps == 12 and r.batch == 1 for r in reqs)
    batched = frames.variant_requests(base, 5, max_batch=2)
    assert [(r.seed, r.batch) for r in batched] == [(41, 2), (43, 2), (45, 1)]
    random_seed = frames.variant_requests(GenerationRequest("x"), 2, rng=random.Random(1))
    assert random_seed[1].seed == random_seed[0].seed + 1
    assert frames.variant_requests(base, 0) == ()


def test_walk_cycle_eight_directions():
    base = GenerationRequest("knight", seed=7, width=512, height=512, cfg=5.0)
    specs = frames.animation_requests(base, "walk", directions=8)
    assert len(specs) == 64
    assert {s.request.seed for s in specs} == {7}
    assert {(s.request.width, s.request.cfg) for s in specs} == {(512, 5.0)}
    assert len({s.name for s in specs}) == 64
    assert specs[0].name == "walk_down_00" and specs[0].animation == "walk_down"
    assert "knight" in specs[0].request.prompt and "contact pose" in specs[0].request.prompt
    one = frames.animation_requests(base, "walk")
    assert [s.name for s in one] == [f"walk_{i:02d}" for i in range(8)]
    with pytest.raises(ValueError):
        frames.animation_requests(base, "dance")


def blob(box) -> Image.Image:
    img = Image.new("RGBA", (64, 64))
    ImageDraw.Draw(img).rectangle(box, fill=(200, 0, 0, 255))
    return img


def test_align_on_bottom_centre_pivot():
    imgs = [blob((10, 10, 29, 49)), blob((30, 5, 49, 59)), blob((20, 30, 29, 39))]
    aligned = frames.align_frames(imgs)
    assert len({im.size for im in aligned.images}) == 1
    px, py = aligned.pivot
    for im in aligned.images:
        x0, y0, x1, y1 = frames.alpha_bbox(im)
        assert y1 == py and abs((x0 + x1) / 2 - px) <= 0.5
    assert aligned.size == (64, 64)  # the input size is kept when every frame fits


def test_align_centre_and_empty():
    aligned = frames.align_frames([blob((0, 0, 9, 9)), blob((40, 40, 59, 59))], pivot="centre", margin=2)
    assert aligned.size == (68, 68)
    big = frames.align_frames([blob((0, 0, 63, 9)), blob((35, 0, 44, 9)), blob((35, 0, 44, 9))])
    assert big.size[0] > 64  # grows instead of cutting a frame
    with pytest.raises(EmptySheet):
        frames.align_frames([])
