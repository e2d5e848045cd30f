"""Pose templates: OpenPose-style skeleton images for every frame of an animation.

A pose ControlNet is trained on skeletons drawn the OpenPose way (black background, each
limb an ellipse in its own colour, each joint a dot). The templates are defined once as
side-view joint angles (``resources/poses/animations.json``) on an 18-point skeleton
(``resources/poses/skeleton.json``); every direction is the same 3-D pose turned about
the vertical axis, so a 3/4 view is foreshortened and a left view is the right view
mirrored, without drawing either by hand.

    templates = load_templates()
    images = render_animation("walk", "down_left", (512, 512))      # one per pose
    image = render_pose("walk", "left", 3, (512, 512))

Pure: NumPy and Pillow, no Qt, no I/O beyond reading the two JSON files once.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw

from studio_core.resources import resource_path
from studio_core.sprites.errors import SpriteError
from studio_core.sprites.frames import ANIMATIONS, DIRECTIONS, pick_indices

CHAINS = {"right_arm": ("right_shoulder", "upper_arm", "forearm"), "left_arm": ("left_shoulder", "upper_arm", "forearm"),
          "right_leg": ("right_hip", "thigh", "shin"), "left_leg": ("left_hip", "thigh", "shin")}
GROUND = 0.9  # of the image height: where the feet stand
# Body units to pixels: a jump's apex (bob ≈ 0.22 over a 1.0 figure) still fits under the top.
HEIGHT_SCALE, WIDTH_SCALE = 0.7, 0.95


class PoseDefinitionError(SpriteError):
    user_message = "The pose templates that came with the app are damaged. Reinstall the app to get them back."


@dataclass(frozen=True)
class Skeleton:
    """The keypoints in OpenPose order, their rest positions (body units: x to the
    character's left, y up, z forwards), the limbs as index pairs and the colours."""

    names: tuple[str, ...]
    rest: np.ndarray  # (n, 3); NaN for points a chain places
    chains: dict[str, tuple[int, int, int]]  # chain -> (root, middle, end) keypoint indices
    bones: dict[str, float]
    limbs: tuple[tuple[int, int], ...]
    colours: tuple[tuple[int, int, int], ...]
    limb_brightness: float
    face: frozenset[int]
    ears: frozenset[int]
    stick_width: float
    joint_radius: float
    reference_size: int
    views: dict[str, float]  # direction key -> yaw in degrees, 0 facing the viewer, 90 facing right

    def index(self, name: str) -> int:
        return self.names.index(name)

    def limb_colour(self, limb: int) -> tuple[int, int, int]:
        return tuple(int(c * self.limb_brightness) for c in self.colours[limb])  # type: ignore[return-value]


@dataclass(frozen=True)
class PoseTemplates:
    skeleton: Skeleton
    joints: tuple[str, ...]
    animations: dict[str, tuple[dict[str, float], ...]]

    def frame_count(self, animation: str) -> int:
        return len(self._frames(animation))

    def _frames(self, animation: str) -> tuple[dict[str, float], ...]:
        try:
            return self.animations[animation]
        except KeyError:
            raise ValueError(f"no pose template {animation!r}; there are {sorted(self.animations)}") from None


# ---------------------------------------------------------------------------------------
# Reading and checking the definitions


def _bad(where: str, what: str) -> PoseDefinitionError:
    return PoseDefinitionError(f"{where}: {what}")


def _vec(value: Any, n: int, where: str) -> tuple[float, ...]:
    if not isinstance(value, list) or len(value) != n or not all(isinstance(v, (int, float)) for v in value):
        raise _bad(where, f"expected {n} numbers, got {value!r}")
    return tuple(float(v) for v in value)


def parse_skeleton(data: Mapping[str, Any], *, where: str = "skeleton.json") -> Skeleton:
    try:
        points = data["keypoints"]
        limb_names = data["limbs"]
        colours = data["colours"]
        bones = data["bones"]
        views = data["views"]
    except (KeyError, TypeError) as exc:
        raise _bad(where, f"missing {exc}") from None
    if not isinstance(points, list) or not points:
        raise _bad(where, "keypoints must be a non-empty list")
    names = tuple(str(p.get("name", "")) if isinstance(p, dict) else "" for p in points)
    if "" in names or len(set(names)) != len(names):
        raise _bad(where, "every keypoint needs a unique name")
    rest = np.full((len(names), 3), np.nan)
    chains: dict[str, list[int]] = {}
    for i, p in enumerate(points):
        if "at" in p:
            rest[i] = _vec(p["at"], 3, f"{where} keypoint {names[i]}")
        elif p.get("chain") in CHAINS and p.get("bone") in (1, 2):
            chains.setdefault(p["chain"], [-1, -1, -1])[p["bone"]] = i
        else:
            raise _bad(where, f"keypoint {names[i]} needs a position (at) or a chain and bone 1 or 2")
    for chain, idx in chains.items():
        root, *_ = CHAINS[chain]
        if root not in names:
            raise _bad(where, f"chain {chain} starts at {root}, which is not a keypoint")
        idx[0] = names.index(root)
        if -1 in idx:
            raise _bad(where, f"chain {chain} needs bone 1 and bone 2")
    for chain in CHAINS:
        if chain not in chains:
            raise _bad(where, f"no keypoints on the {chain} chain")
    try:
        limbs = tuple((names.index(a), names.index(b)) for a, b in limb_names)
    except ValueError as exc:
        raise _bad(where, f"a limb names an unknown keypoint ({exc})") from None
    except (TypeError, ValueError):
        raise _bad(where, "each limb is a pair of keypoint names") from None
    cols = tuple(tuple(int(c) for c in _vec(col, 3, f"{where} colour {k}")) for k, col in enumerate(colours))
    if any(not 0 <= c <= 255 for col in cols for c in col):
        raise _bad(where, "colours are 0-255")
    if len(cols) < max(len(limbs), len(names)):
        raise _bad(where, f"{len(cols)} colours for {len(limbs)} limbs and {len(names)} keypoints")
    needed = {b for _, *bs in CHAINS.values() for b in bs} | {"arm_spread"}
    if not isinstance(bones, dict) or not needed <= set(bones):
        raise _bad(where, f"bones needs {sorted(needed)}")
    missing_views = {k for dirs in DIRECTIONS.values() for k, _ in dirs} - set(views)
    if missing_views:
        raise _bad(where, f"no view angle for direction {', '.join(sorted(missing_views))}")
    return Skeleton(
        names=names, rest=rest, chains={c: tuple(v) for c, v in chains.items()},  # type: ignore[misc]
        bones={k: float(v) for k, v in bones.items()}, limbs=limbs, colours=cols,  # type: ignore[arg-type]
        limb_brightness=float(data.get("limb_brightness", 0.6)),
        face=frozenset(i for i, p in enumerate(points) if p.get("face")),
        ears=frozenset(i for i, p in enumerate(points) if p.get("ear")),
        stick_width=float(data.get("stick_width", 4)), joint_radius=float(data.get("joint_radius", 4)),
        reference_size=int(data.get("reference_size", 512)), views={k: float(v) for k, v in views.items()})


def parse_animations(data: Mapping[str, Any], skeleton: Skeleton, *,
                     where: str = "animations.json") -> PoseTemplates:
    try:
        joints = tuple(str(j) for j in data["joints"])
        anims = data["animations"]
    except (KeyError, TypeError) as exc:
        raise _bad(where, f"missing {exc}") from None
    out: dict[str, tuple[dict[str, float], ...]] = {}
    for name, frames_in in anims.items():
        if not isinstance(frames_in, list) or not frames_in:
            raise _bad(where, f"{name} has no frames")
        want = len(ANIMATIONS.get(name, frames_in))
        if len(frames_in) != want:
            # One pose image per prompt pose: a mismatch would pair frames with the wrong pose.
            raise _bad(where, f"{name} has {len(frames_in)} frames; its prompts name {want} poses")
        keyed = []
        for k, frame in enumerate(frames_in):
            values = {}
            for key, value in frame.items():
                if key == "pose":
                    continue
                if key not in joints:
                    raise _bad(where, f"{name} frame {k + 1}: unknown joint {key!r}")
                if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                    raise _bad(where, f"{name} frame {k + 1}: {key} must be a number, got {value!r}")
                values[key] = float(value)
            keyed.append(values)
        out[str(name)] = tuple(keyed)
    missing = set(ANIMATIONS) - set(out)
    if missing:
        raise _bad(where, f"no keyframes for {', '.join(sorted(missing))}")
    return PoseTemplates(skeleton, joints, out)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PoseDefinitionError(f"{path}: {exc}") from None
    except ValueError as exc:
        raise PoseDefinitionError(f"{path}: not valid JSON ({exc})") from None


def load_templates(folder: Path | None = None) -> PoseTemplates:
    """The templates from ``folder`` (default: the app's resources/poses), checked.
    Raises PoseDefinitionError naming the file and what is wrong."""
    if folder is None:
        return _default_templates()
    skeleton = parse_skeleton(_read_json(folder / "skeleton.json"), where=str(folder / "skeleton.json"))
    return parse_animations(_read_json(folder / "animations.json"), skeleton, where=str(folder / "animations.json"))


@lru_cache(maxsize=1)
def _default_templates() -> PoseTemplates:
    return load_templates(resource_path("poses"))


# ---------------------------------------------------------------------------------------
# Posing: joint angles -> 3-D keypoints -> a view


def _rot_x(v: np.ndarray, deg: float) -> np.ndarray:
    """Tilt forwards by ``deg`` about the character's left axis (y towards z)."""
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    return np.stack([v[..., 0], v[..., 1] * c - v[..., 2] * s, v[..., 1] * s + v[..., 2] * c], axis=-1)


def _rot_y(v: np.ndarray, deg: float) -> np.ndarray:
    """Turn towards the character's left (forwards goes to +x) by ``deg``."""
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    return np.stack([v[..., 0] * c + v[..., 2] * s, v[..., 1], -v[..., 0] * s + v[..., 2] * c], axis=-1)


def _limb_dir(swing: float, spread: float, side: float) -> np.ndarray:
    sw, sp = math.radians(swing), math.radians(spread)
    return np.array([side * math.sin(sp), -math.cos(sp) * math.cos(sw), math.cos(sp) * math.sin(sw)])


def pose_points(templates: PoseTemplates, animation: str, pose: int) -> np.ndarray:
    """The 3-D keypoints (n, 3) of one keyframe, lower ankle on the ground (y = 0) plus bob."""
    sk = templates.skeleton
    frames_ = templates._frames(animation)
    if not 0 <= pose < len(frames_):
        raise ValueError(f"{animation} has poses 0-{len(frames_) - 1}, not {pose}")
    j = frames_[pose]
    g = lambda k: j.get(k, 0.0)  # noqa: E731
    pts = sk.rest.copy()
    for chain, (root, mid, end) in sk.chains.items():
        side_name, kind = chain.split("_")
        side = 1.0 if side_name == "left" else -1.0
        _, b1, b2 = CHAINS[chain]
        if kind == "arm":
            swing, bend = g(f"{side_name}_shoulder"), g(f"{side_name}_elbow")
            spread = sk.bones["arm_spread"] + g(f"{side_name}_spread")
            d1, d2 = _limb_dir(swing, spread, side), _limb_dir(swing + bend, spread, side)
        else:
            swing, bend = g(f"{side_name}_hip"), g(f"{side_name}_knee")
            d1, d2 = _limb_dir(swing, 0, side), _limb_dir(swing - bend, 0, side)
        pts[mid] = pts[root] + d1 * sk.bones[b1]
        pts[end] = pts[mid] + d2 * sk.bones[b2]
    legs = {i for c, idx in sk.chains.items() if c.endswith("_leg") for i in idx}
    upper = np.array([i not in legs for i in range(len(pts))])
    hips = [sk.chains[c][0] for c in sk.chains if c.endswith("_leg")]
    pivot = pts[hips].mean(axis=0)
    # Breathing lifts the chest, then the upper body turns and leans about the hips.
    top = pts[upper] + np.array([0.0, g("chest"), 0.0])
    top = _rot_x(_rot_y(top - pivot, g("twist")), g("lean")) + pivot
    pts[upper] = top
    ankles = [sk.chains[c][2] for c in sk.chains if c.endswith("_leg")]
    pts[:, 1] += g("bob") - pts[ankles, 1].min()
    return pts


@dataclass(frozen=True)
class View2D:
    """Keypoints seen from the front of the screen: ``xy`` in body units (x right, y up),
    ``depth`` towards the viewer, ``visible`` False for face points turned away."""

    xy: np.ndarray
    depth: np.ndarray
    visible: np.ndarray


def view(templates: PoseTemplates, points: np.ndarray, direction: str) -> View2D:
    sk = templates.skeleton
    try:
        yaw = sk.views[direction]
    except KeyError:
        raise ValueError(f"no view for direction {direction!r}; there are {sorted(sk.views)}") from None
    turned = _rot_y(points, yaw)
    facing = math.cos(math.radians(yaw))  # 1 facing the viewer, -1 facing away
    head = turned[sk.index("nose")] if "nose" in sk.names else turned.mean(axis=0)
    visible = np.ones(len(points), dtype=bool)
    side_on = abs(math.sin(math.radians(yaw))) > 0.8
    for i in sk.face:
        # The far eye hides behind the nose in profile; the face is gone from behind.
        far = side_on and sk.names[i] != "nose" and turned[i, 2] < head[2] - 0.02
        visible[i] = facing > -0.3 and not far
    for i in sk.ears:
        visible[i] = not (side_on and turned[i, 2] < head[2] - 0.02)
    return View2D(turned[:, :2].copy(), turned[:, 2].copy(), visible)


# ---------------------------------------------------------------------------------------
# Drawing


def _ellipse(a: np.ndarray, b: np.ndarray, width: float) -> list[tuple[float, float]]:
    mid, d = (a + b) / 2, b - a
    length = float(np.hypot(*d)) / 2
    ang = math.atan2(d[1], d[0])
    t = np.linspace(0, 2 * math.pi, 36, endpoint=False)
    ex, ey = length * np.cos(t), width * np.sin(t)
    c, s = math.cos(ang), math.sin(ang)
    return list(zip((mid[0] + ex * c - ey * s).tolist(), (mid[1] + ex * s + ey * c).tolist()))


def to_pixels(seen: View2D, size: tuple[int, int]) -> np.ndarray:
    """Keypoints in image pixels (n, 2). One scale for every pose of a size, so a jump
    rises in the picture instead of being refitted."""
    w, h = size
    scale = min(HEIGHT_SCALE * h, WIDTH_SCALE * w)
    return np.stack([w / 2 + seen.xy[:, 0] * scale, GROUND * h - seen.xy[:, 1] * scale], axis=1)


def draw(templates: PoseTemplates, seen: View2D, size: tuple[int, int]) -> Image.Image:
    """The OpenPose picture of ``seen``: limbs (far ones first) then joints, on black."""
    sk = templates.skeleton
    w, h = size
    if w < 1 or h < 1:
        raise ValueError(f"pose image size must be positive, got {w}×{h}")
    px = to_pixels(seen, size)
    k = min(w, h) / sk.reference_size
    stick, radius = max(1.0, sk.stick_width * k), max(1.0, sk.joint_radius * k)
    img = Image.new("RGB", (w, h))
    d = ImageDraw.Draw(img)
    limbs = [(i, a, b) for i, (a, b) in enumerate(sk.limbs) if seen.visible[a] and seen.visible[b]]
    for i, a, b in sorted(limbs, key=lambda t: seen.depth[t[1]] + seen.depth[t[2]]):
        d.polygon(_ellipse(px[a], px[b], stick), fill=sk.limb_colour(i))
    for i in sorted(np.flatnonzero(seen.visible), key=lambda n: seen.depth[n]):
        x, y = px[i]
        d.ellipse((x - radius, y - radius, x + radius, y + radius), fill=sk.colours[i])
    return img


def render_pose(animation: str, direction: str, pose: int, size: tuple[int, int], *,
                templates: PoseTemplates | None = None) -> Image.Image:
    t = templates or load_templates()
    return draw(t, view(t, pose_points(t, animation, pose), direction), size)


def render_animation(animation: str, direction: str, size: tuple[int, int], *, frames: int | None = None,
                     templates: PoseTemplates | None = None) -> tuple[Image.Image, ...]:
    """One image per frame: every pose, or ``frames`` of them picked as the frame requests
    pick them (:func:`studio_core.sprites.frames.pick_indices`)."""
    t = templates or load_templates()
    return tuple(render_pose(animation, direction, i, size, templates=t)
                 for i in pick_indices(t.frame_count(animation), frames))


def render_set(animation: str, directions: int, size: tuple[int, int], *, frames: int | None = None,
               templates: PoseTemplates | None = None) -> dict[str, tuple[Image.Image, ...]]:
    """Every direction of a 1/4/8-direction set, keyed like the frame names (side, down, …)."""
    if directions not in DIRECTIONS:
        raise ValueError("directions must be 1, 4 or 8")
    t = templates or load_templates()
    return {key: render_animation(animation, key, size, frames=frames, templates=t) for key, _ in DIRECTIONS[directions]}


def directions_of(directions: int) -> Sequence[str]:
    return tuple(k for k, _ in DIRECTIONS[directions])
