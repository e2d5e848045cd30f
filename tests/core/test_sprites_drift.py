"""Character drift between frames: palette distance and silhouette overlap after alignment."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from studio_core.sprites import checks, drift

SIZE = 96


def knight(step: int = 0, *, tunic=(190, 60, 50), dx: int = 0, dy: int = 0, wide: bool = False) -> Image.Image:
    """A little figure whose legs swing with ``step``; ``dx``/``dy`` move it on the canvas."""
    img = Image.new("RGBA", (SIZE, SIZE))
    d = ImageDraw.Draw(img)
    cx, swing = 48 + dx, [-7, -3, 0, 3, 7, 3, 0, -3][step % 8]
    d.rectangle((cx - 9 + swing, 66 + dy, cx - 3 + swing, 88 + dy), fill=(60, 50, 120))
    d.rectangle((cx + 3 - swing, 66 + dy, cx + 9 - swing, 88 + dy), fill=(60, 50, 120))
    half = 24 if wide else 14
    d.rounded_rectangle((cx - half, 36 + dy, cx + half, 70 + dy), 5, fill=tunic, outline=(30, 20, 20), width=2)
    d.ellipse((cx - 12, 12 + dy, cx + 12, 38 + dy), fill=(240, 200, 160), outline=(30, 20, 20), width=2)
    return img


def slime() -> Image.Image:
    img = Image.new("RGBA", (SIZE, SIZE))
    d = ImageDraw.Draw(img)
    d.ellipse((14, 40, 82, 88), fill=(40, 170, 70))
    d.ellipse((30, 52, 42, 64), fill=(255, 255, 255))
    return img


def noisy(img: Image.Image, seed: int) -> Image.Image:
    """Generated images are not flat: a few colour levels of noise on every pixel."""
    a = np.asarray(img).astype(np.int16)
    a[..., :3] += np.random.default_rng(seed).integers(-6, 7, a[..., :3].shape, dtype=np.int16)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def named(images) -> list[tuple[str, Image.Image]]:
    return [(f"walk_{i:02d}", im) for i, im in enumerate(images)]


def test_the_same_sprite_moved_around_the_canvas_has_low_drift():
    frames_ = [knight(i, dx=(i * 5) % 13 - 6, dy=-(i % 3) * 4) for i in range(8)]
    report = drift.measure_drift(named(frames_))
    assert len(report.frames) == 8 and report.over == ()
    assert max(f.score for f in report.frames) < 0.15
    # moved frames line up on their pivot: as if they had never moved
    still = drift.measure_drift(named([knight(i) for i in range(8)]))
    assert [f.score for f in report.frames] == pytest.approx([f.score for f in still.frames], abs=0.02)
    assert "under the limit 0.30" in report.summary()


def test_noisy_frames_of_one_character_stay_under_the_limit():
    report = drift.measure_drift(named([noisy(knight(i, dx=i), seed=i) for i in range(6)]))
    assert report.over == () and all(f.palette < 5 for f in report.frames)


def test_a_different_character_is_named_over_the_limit():
    frames_ = [knight(i) for i in range(8)]
    frames_[5] = slime()
    report = drift.measure_drift(named(frames_))
    assert [f.name for f in report.over] == ["walk_05"]
    odd = report.over[0]
    assert odd.score > 0.6 and odd.palette > 20 and odd.overlap < 0.6
    assert "1 of 8 frames over the limit 0.30 (walk_05" in report.summary()
    warnings = checks.check_frames(named(frames_), drift=report)
    assert [(w.frame, w.kind) for w in warnings if w.kind == "drift"] == [("walk_05", "drift")]
    assert "walk_05 may show a different character" in next(w.message for w in warnings if w.kind == "drift")


def test_new_colours_alone_or_a_new_build_alone_count():
    recoloured = [knight(i) for i in range(6)]
    recoloured[2] = knight(2, tunic=(40, 80, 210))
    assert [f.name for f in drift.measure_drift(named(recoloured)).over] == ["walk_02"]
    reshaped = [knight(i) for i in range(6)]
    reshaped[4] = knight(4, wide=True)
    rep = drift.measure_drift(named(reshaped))
    # an outline change alone weighs less than colours (walking legs change outlines too),
    # but it is still the frame that strays most
    assert rep.worst.name == "walk_04" and rep.frames[4].overlap == min(f.overlap for f in rep.frames)
    before = drift.measure_drift(named([knight(i) for i in range(6)]))
    assert rep.frames[4].score > before.frames[4].score + 0.05


def test_directions_are_compared_within_their_animation():
    """A side view has another outline than a front view of the same character: frames
    share a silhouette only within their own animation (walk_down, walk_left…)."""
    front = [knight(i) for i in range(4)]
    side = [knight(i, wide=True) for i in range(4)]
    frames_ = named(front + side)
    groups = ["walk_down"] * 4 + ["walk_left"] * 4
    assert drift.measure_drift(frames_, groups=groups, threshold=0.1).over == ()
    assert drift.measure_drift(frames_, threshold=0.1).over != ()
    # a lone frame of its animation is judged on colour only
    lone = drift.measure_drift(frames_[:5], groups=groups[:5])
    assert lone.frames[4].overlap is None and lone.frames[4].score == pytest.approx(min(1, lone.frames[4].palette / 20), abs=1e-3)


def test_palette_is_deterministic_and_ignores_transparent_pixels():
    a = np.asarray(noisy(knight(0), 1))
    p1, p2 = drift.palette(a), drift.palette(a)
    assert np.array_equal(p1[0], p2[0]) and p1[1].sum() == pytest.approx(1)
    assert len(p1[0]) == drift.PALETTE_COLOURS
    white_bg = np.asarray(knight(0)).copy()
    white_bg[white_bg[..., 3] == 0] = (255, 255, 255, 0)  # invisible white changes nothing
    assert drift.palette_distance(drift.palette(white_bg), drift.palette(np.asarray(knight(0)))) == 0


def test_too_few_frames_and_empty_frames():
    assert drift.measure_drift(named([knight()])).frames == ()
    assert "two frames or more" in drift.measure_drift([]).summary()
    report = drift.measure_drift(named([knight(0), Image.new("RGBA", (SIZE, SIZE)), knight(1)]))
    assert [f.name for f in report.frames] == ["walk_00", "walk_02"]  # the empty one has its own warning


def test_lab_conversion_matches_reference_values():
    lab = drift.srgb_to_lab(np.array([[255, 255, 255], [255, 0, 0], [0, 0, 0]], dtype=np.uint8))
    assert lab[0] == pytest.approx([100, 0, 0], abs=0.01)
    assert lab[1] == pytest.approx([53.24, 80.09, 67.20], abs=0.05)
    assert lab[2] == pytest.approx([0, 0, 0], abs=0.01)
