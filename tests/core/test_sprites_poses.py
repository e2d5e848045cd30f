"""Pose templates: OpenPose-style skeleton images for every animation and direction."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import ImageOps

from studio_core.models import GenerationRequest
from studio_core.resources import resource_path
from studio_core.sprites import frames, poses
from studio_core.sprites.poses import PoseDefinitionError


@pytest.fixture(scope="module")
def t():
    return poses.load_templates()


def raw() -> tuple[dict, dict]:
    folder = resource_path("poses")
    return (json.loads((folder / "skeleton.json").read_text()), json.loads((folder / "animations.json").read_text()))


def pixel(img, xy) -> tuple[int, int, int]:
    return img.getpixel((int(round(xy[0])), int(round(xy[1]))))


@pytest.mark.parametrize("animation", list(frames.ANIMATIONS))
@pytest.mark.parametrize("directions", [1, 4, 8])
def test_every_template_and_direction_renders_one_image_per_pose(t, animation, directions):
    got = poses.render_set(animation, directions, (96, 128), templates=t)
    assert list(got) == [k for k, _ in frames.DIRECTIONS[directions]]
    n = len(frames.ANIMATIONS[animation])
    for direction, images in got.items():
        assert len(images) == n
        assert all(im.size == (96, 128) and im.mode == "RGB" for im in images)
        arrays = [np.asarray(im) for im in images]
        # the cycle moves: no pose repeats the one before it
        assert all((a != b).any() for a, b in zip(arrays, arrays[1:] + arrays[:1]) if a is not b), direction
        assert all(a.any() for a in arrays)  # something is drawn
    assert len(poses.render_animation(animation, "down", (64, 64), frames=2, templates=t)) == min(2, n)


def test_limbs_and_joints_use_the_openpose_colours(t):
    sk = t.skeleton
    size = (512, 512)
    seen = poses.view(t, poses.pose_points(t, "idle", 0), "down")
    img = poses.render_pose("idle", "down", 0, size, templates=t)
    colours = {tuple(c) for c in np.asarray(img).reshape(-1, 3)}
    # every limb at 60% of its colour, every joint at full colour, nothing else but black
    limb_colours = {sk.limb_colour(i) for i in range(len(sk.limbs))}
    joint_colours = set(sk.colours[: len(sk.names)])
    assert limb_colours <= colours and joint_colours <= colours
    assert colours <= limb_colours | joint_colours | {(0, 0, 0)}
    assert sk.limb_colour(0) == (153, 0, 0) and sk.colours[sk.index("right_wrist")] == (170, 255, 0)
    px = poses.to_pixels(seen, size)
    for name in ("right_wrist", "left_knee", "neck", "nose"):
        assert pixel(img, px[sk.index(name)]) == sk.colours[sk.index(name)], name
    # the middle of the right forearm carries limb 3's colour (right elbow -> right wrist)
    mid = (px[sk.index("right_elbow")] + px[sk.index("right_wrist")]) / 2
    assert pixel(img, mid) == sk.limb_colour(sk.limbs.index((sk.index("right_elbow"), sk.index("right_wrist"))))


def test_front_and_back_put_the_right_side_where_a_viewer_sees_it(t):
    sk = t.skeleton
    size = (256, 256)
    r, neck = sk.index("right_shoulder"), sk.index("neck")
    for direction, right_on_left in (("down", True), ("up", False)):
        seen = poses.view(t, poses.pose_points(t, "idle", 0), direction)
        px = poses.to_pixels(seen, size)
        assert (px[r, 0] < px[neck, 0]) == right_on_left, direction
        assert pixel(poses.draw(t, seen, size), px[r]) == sk.colours[r]
    back = poses.view(t, poses.pose_points(t, "idle", 0), "up")
    assert not back.visible[[sk.index("nose"), sk.index("right_eye"), sk.index("left_eye")]].any()
    assert back.visible[[sk.index("right_ear"), sk.index("left_ear")]].all()
    side = poses.view(t, poses.pose_points(t, "idle", 0), "right")
    # facing right, the right side is the near one and the far eye is hidden
    assert side.depth[r] > side.depth[sk.index("left_shoulder")]
    assert side.visible[sk.index("right_eye")] and not side.visible[sk.index("left_eye")]


@pytest.mark.parametrize("animation", ["walk", "attack"])
def test_left_is_the_right_view_mirrored(t, animation):
    size = (200, 200)
    for pose in range(t.frame_count(animation)):
        pts = poses.pose_points(t, animation, pose)
        right, left = poses.view(t, pts, "right"), poses.view(t, pts, "left")
        assert np.allclose(left.xy[:, 0], -right.xy[:, 0]) and np.allclose(left.xy[:, 1], right.xy[:, 1])
        # which side is near flips: the character shows its other side
        assert np.allclose(left.depth, -right.depth)
        pr, pl = poses.to_pixels(right, size), poses.to_pixels(left, size)
        assert np.allclose(pl[:, 0], size[0] - pr[:, 0])
        a = np.asarray(ImageOps.mirror(poses.draw(t, right, size))).any(-1)
        b = np.asarray(poses.draw(t, left, size)).any(-1)
        assert (a & b).sum() / (a | b).sum() > 0.85  # same silhouette, but for rasterising


def test_three_quarter_views_are_foreshortened(t):
    sk = t.skeleton
    pts = poses.pose_points(t, "idle", 0)
    width = {d: abs(poses.view(t, pts, d).xy[sk.index("right_shoulder"), 0] - poses.view(t, pts, d).xy[sk.index("left_shoulder"), 0])
             for d in ("down", "down_right", "right")}
    assert width["down"] > width["down_right"] > width["right"]
    assert width["down_right"] == pytest.approx(width["down"] * np.cos(np.radians(45)), rel=0.01)


def test_jump_leaves_the_ground_and_walk_keeps_a_foot_on_it(t):
    sk = t.skeleton
    ankles = [sk.index("left_ankle"), sk.index("right_ankle")]
    assert all(poses.pose_points(t, "walk", i)[ankles, 1].min() == pytest.approx(0) for i in range(8))
    assert poses.pose_points(t, "jump", 2)[ankles, 1].min() == pytest.approx(0.22)


def test_frame_requests_carry_the_pose_their_image_shows():
    base = GenerationRequest("knight", seed=3)
    specs = frames.animation_requests(base, "walk", directions=4, frames=4)
    assert [s.pose for s in specs[:4]] == [0, 2, 4, 6] and {s.template for s in specs} == {"walk"}
    assert frames.ANIMATIONS["walk"][2] in specs[1].request.prompt  # pose 2's words, pose 2's image
    for name in ("run", "jump"):
        assert len(frames.animation_requests(base, name)) == len(frames.ANIMATIONS[name])


def write(folder: Path, skeleton: dict, animations: dict) -> Path:
    (folder / "skeleton.json").write_text(json.dumps(skeleton))
    (folder / "animations.json").write_text(json.dumps(animations))
    return folder


def test_the_shipped_definitions_load_and_a_copy_of_them_too(tmp_path):
    sk, an = raw()
    t = poses.load_templates(write(tmp_path, sk, an))
    assert set(t.animations) == set(frames.ANIMATIONS) and len(t.skeleton.names) == 18
    assert len(t.skeleton.limbs) == 17


def broken(change) -> tuple[dict, dict]:
    sk, an = raw()
    sk, an = copy.deepcopy(sk), copy.deepcopy(an)
    change(sk, an)
    return sk, an


@pytest.mark.parametrize("change, words", [
    (lambda sk, an: sk["limbs"].append(["neck", "tail"]), "unknown keypoint"),
    (lambda sk, an: sk["colours"].__setitem__(3, [300, 0, 0]), "0-255"),
    (lambda sk, an: sk["colours"].__delitem__(slice(5, None)), "5 colours for 17 limbs"),
    (lambda sk, an: sk["views"].pop("up_left"), "up_left"),
    (lambda sk, an: sk["keypoints"][4].pop("chain"), "right_wrist needs a position"),
    (lambda sk, an: an["animations"]["walk"].pop(), "walk has 7 frames; its prompts name 8 poses"),
    (lambda sk, an: an["animations"]["idle"][1].update(elbow_left=3), "idle frame 2: unknown joint 'elbow_left'"),
    (lambda sk, an: an["animations"]["run"][0].update(lean="far"), "run frame 1: lean must be a number"),
    (lambda sk, an: an["animations"].pop("jump"), "no keyframes for jump"),
])
def test_bad_definitions_say_what_is_wrong(tmp_path, change, words):
    folder = write(tmp_path, *broken(change))
    with pytest.raises(PoseDefinitionError) as info:
        poses.load_templates(folder)
    assert words in str(info.value)
    assert "damaged" in info.value.user_message and "{" not in info.value.user_message


def test_unreadable_files_and_unknown_names(tmp_path, t):
    (tmp_path / "skeleton.json").write_text("{not json")
    with pytest.raises(PoseDefinitionError, match="not valid JSON"):
        poses.load_templates(tmp_path)
    (tmp_path / "skeleton.json").write_text(json.dumps(raw()[0]))
    with pytest.raises(PoseDefinitionError, match="animations.json"):
        poses.load_templates(tmp_path)  # missing
    with pytest.raises(ValueError, match="dance"):
        poses.render_pose("dance", "down", 0, (64, 64), templates=t)
    with pytest.raises(ValueError, match="sideways"):
        poses.render_pose("walk", "sideways", 0, (64, 64), templates=t)
    with pytest.raises(ValueError, match="poses 0-3"):
        poses.render_pose("idle", "down", 4, (64, 64), templates=t)
