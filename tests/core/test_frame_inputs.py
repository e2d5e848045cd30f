"""Consistent animation in the core: a script's animation order with a character reference
and pose control gives every frame the reference and its own pose skeleton, stored once."""

from __future__ import annotations


from PIL import Image

from studio_core.frame_inputs import pose_keys, render_pose_images, with_frame_inputs
from studio_core.frame_plans import FrameSetSpec, plan_frames
from studio_core.input_store import InputStore
from studio_core.inputs import ImageInputs, ReferenceImage
from studio_core.models import GenerationRequest
from studio_core.session import GenerationOrder
from studio_core.sprites import poses
from tests.conftest import run_async
from tests.fakes import FakeProvider, png_bytes

BASE = GenerationRequest(prompt="a knight", service="fake", seed=5, width=64, height=96, steps=2)


def test_each_frame_gets_its_own_pose_and_the_character(tmp_path):
    store = InputStore(tmp_path / "inputs")
    char = ReferenceImage(store.add_image(png_bytes(32, 32)).digest, weight=0.8)
    plan = plan_frames(BASE, FrameSetSpec("animation", animation="walk", directions=4, frames_per_direction=4))
    keys = pose_keys(plan)
    digests = render_pose_images(keys, store)
    assert len(digests) == 16  # 4 directions × 4 poses, each drawn once
    out = with_frame_inputs(plan, character=char, poses=digests)
    picked = [0, 2, 4, 6]  # 4 of the walk's 8 poses, evenly spread
    for n, req in enumerate(out.requests):
        assert req.inputs.references == (char,)
        (ctrl,) = req.inputs.controls
        assert ctrl.type == "pose"
        direction = req.member.direction
        expected = poses.render_pose("walk", direction, picked[n % 4], (64, 96))
        stored = Image.open(store.path(ctrl.image)).convert("RGB")
        assert stored.size == (64, 96) and stored.tobytes() == expected.tobytes(), req.member.name
    # different frames, different skeletons
    assert len({r.inputs.controls[0].image for r in out.requests}) == 16
    assert out.meta["character"] == char.image and out.meta["pose_control"]


def test_without_pose_control_or_character_the_plan_is_unchanged(tmp_path):
    plan = plan_frames(BASE, FrameSetSpec("animation", animation="idle"))
    assert with_frame_inputs(plan) is plan
    assert all(k is None for k in pose_keys(plan_frames(BASE, FrameSetSpec("variants", count=3))))


def test_character_is_not_sent_twice_and_other_controls_stay(tmp_path):
    store = InputStore(tmp_path / "inputs")
    d = store.add_image(png_bytes(16, 16)).digest
    ref = ReferenceImage(d, weight=1.0)
    req = BASE.replace(inputs=ImageInputs(references=(ref, ReferenceImage(d, kind="style"))))
    plan = plan_frames(req, FrameSetSpec("single"))
    out = with_frame_inputs(plan, character=ReferenceImage(d, weight=0.5))
    assert out.requests[0].inputs.references == (ReferenceImage(d, weight=0.5),)


def test_a_script_gets_the_reference_and_poses(paths):
    async def go():
        from studio_core.app_core import StudioCore

        core = await StudioCore.open(paths)
        try:
            fake = FakeProvider(steps=1)
            core.jobs.provider_for = lambda service: fake
            store = core.session.input_store
            char = ReferenceImage(store.add_image(png_bytes(40, 40, (10, 200, 30, 255))).digest)
            order = GenerationOrder(BASE, FrameSetSpec("animation", animation="jump", directions=8,
                                                       frames_per_direction=2),
                                    character=char, pose_control=True)
            handle = await core.session.generate(order)
            result = await handle.result()
            return fake.requests, result, store
        finally:
            await core.aclose()

    requests, result, store = run_async(go())
    assert len(result.paths) == 16 and not result.failed
    by_name = {r.member.name: r for r in requests}
    jump_frames = poses.load_templates().frame_count("jump")
    second = jump_frames // 2  # the second of two poses picked from the jump
    r = by_name["jump_up_left_01"]
    assert r.inputs.references[0].image == char_digest(requests)
    pose = Image.open(store.path(r.inputs.controls[0].image)).convert("RGB")
    assert pose.tobytes() == poses.render_pose("jump", "up_left", second, (64, 96)).tobytes()
    assert all(len(x.inputs.controls) == 1 and x.inputs.controls[0].type == "pose" for x in requests)


def char_digest(requests) -> str:
    digests = {r.inputs.references[0].image for r in requests}
    assert len(digests) == 1
    return digests.pop()
