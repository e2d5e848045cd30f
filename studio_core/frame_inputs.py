"""Consistent animation: every frame of a set drawn from one character reference and the
frame's own pose skeleton.

Without image inputs an 8-direction walk is 64 unrelated text-to-image jobs; with them each
frame's request carries the character (a :class:`ReferenceImage`) and its pose template
image (a ``ControlImage(type="pose")``), so a pose ControlNet puts the limbs where the
template has them while the reference keeps the face, outfit and colours.

Two steps, so the expansion stays pure for the window and a script alike:

    keys = pose_keys(plan)                              # which skeletons the plan needs
    digests = render_pose_images(keys, store)           # blocking: draw + store (a thread)
    plan = with_frame_inputs(plan, character=ref, poses=digests)   # pure

``Session.plan`` runs all three; the Generate tab runs the middle one in a thread.
"""

from __future__ import annotations

import dataclasses
import io
from typing import TYPE_CHECKING, Mapping

from studio_core.inputs import ControlImage, ReferenceImage

if TYPE_CHECKING:
    from studio_core.frame_plans import FramePlan
    from studio_core.input_store import InputStore
    from studio_core.models import GenerationRequest

# A pose ControlNet scales its hint to the latent anyway; drawing 64 skeletons at 2048² would
# only cost time and disk, so the longer side is capped (the aspect is kept).
MAX_POSE_SIDE = 1024
POSE_STRENGTH = 1.0

PoseKey = tuple[str, str, int, int, int]  # template, direction, pose, width, height


def pose_size(width: int, height: int) -> tuple[int, int]:
    scale = min(1.0, MAX_POSE_SIDE / max(width, height, 1))
    return max(8, round(width * scale)), max(8, round(height * scale))


def pose_keys(plan: FramePlan) -> tuple[PoseKey | None, ...]:
    """Per request of ``plan``, the skeleton it is drawn from (None for variants or a single image)."""
    if plan.kind != "animation":
        return tuple(None for _ in plan.requests)
    template = str(plan.meta.get("animation") or "")
    poses = list(plan.meta.get("poses") or ())
    if len(poses) != len(plan.requests):
        # A plan from before poses were recorded: frame i of a direction plays pose i.
        per = max(1, int(plan.meta.get("frames_per_direction") or 1))
        poses = [i % per for i in range(len(plan.requests))]
    out: list[PoseKey | None] = []
    for request, pose in zip(plan.requests, poses):
        direction = request.member.direction if request.member is not None and request.member.direction else "side"
        out.append((template, direction, int(pose), *pose_size(request.width, request.height)))
    return tuple(out)


def render_pose_images(keys: tuple[PoseKey | None, ...], store: InputStore) -> dict[PoseKey, str]:
    """Blocking (Pillow, disk): draw each distinct skeleton once and keep it in ``store``.
    The store names images by content, so the same pose at the same size is written once ever."""
    from studio_core.sprites import poses

    templates = poses.load_templates()
    out: dict[PoseKey, str] = {}
    for key in keys:
        if key is None or key in out:
            continue
        template, direction, pose, w, h = key
        img = poses.render_pose(template, direction, pose, (w, h), templates=templates)
        buf = io.BytesIO()
        img.save(buf, "PNG", compress_level=1)
        out[key] = store.add_image(buf.getvalue(), what="pose image").digest
    return out


def _with_inputs(request: GenerationRequest, *, character: ReferenceImage | None,
                 pose: ControlImage | None) -> GenerationRequest:
    inputs = request.inputs
    refs = inputs.references
    if character is not None:
        # The character leads (a model that takes one reference takes this one); the same
        # image given again as an ordinary reference is not sent twice.
        refs = (character,) + tuple(r for r in refs if r.image != character.image)
    controls = inputs.controls
    if pose is not None:
        controls = tuple(c for c in controls if c.type != "pose") + (pose,)
    new = dataclasses.replace(inputs, references=refs, controls=controls)
    return request if new == inputs else request.replace(inputs=new)


def with_frame_inputs(plan: FramePlan, *, character: ReferenceImage | None = None,
                      poses: Mapping[PoseKey, str] | None = None,
                      pose_strength: float = POSE_STRENGTH) -> FramePlan:
    """Pure: ``plan`` with the character on every request and, for an animation, each frame's
    pose image (from ``poses``, as :func:`render_pose_images` made it) as a pose control.
    A frame whose pose is not in ``poses`` keeps what it had."""
    if character is None and not poses:
        return plan
    keys = pose_keys(plan) if poses else tuple(None for _ in plan.requests)
    requests = []
    for request, key in zip(plan.requests, keys):
        digest = (poses or {}).get(key) if key is not None else None
        pose = ControlImage(digest, "pose", strength=pose_strength) if digest else None
        requests.append(_with_inputs(request, character=character, pose=pose))
    meta = dict(plan.meta)
    if character is not None:
        meta["character"] = character.image
    if poses:
        meta["pose_control"] = True
    return dataclasses.replace(plan, requests=tuple(requests), meta=meta)


def needs_pose_images(plan: FramePlan, *, pose_control: bool) -> bool:
    return pose_control and plan.kind == "animation"

