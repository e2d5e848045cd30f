"""A frame set run from a plain script through the core: the session expands it, the
queue runs it, the pipeline saves, indexes and keys out every frame. The Generate tab's
half of this test (wave 2) compares its own run with :func:`script_run` through
tests/pipeline_outcome.py."""

from __future__ import annotations

from PIL import Image

from studio_core.frame_plans import FrameSetSpec
from studio_core.models import GenerationRequest
from studio_core.session import GenerationOrder
from studio_core.sprites import frames
from tests.conftest import run_async
from tests.fakes import FakeProvider
from tests.pipeline_outcome import outcome

WALK_4 = FrameSetSpec(mode="animation", animation="walk", directions=4)
BASE = GenerationRequest(prompt="a green slime knight", service="fake", seed=77, width=64, height=64, steps=3)


class KeyColourProvider(FakeProvider):
    """Images on a plain key-colour background with a sprite in the middle, as the in-app
    method asks the service for."""

    async def generate(self, request, *, job_id):
        from dataclasses import replace

        async for ev in super().generate(request, job_id=job_id):
            if type(ev).__name__ == "JobImage":
                ev = replace(ev, data=sprite_png())
            yield ev


def sprite_png() -> bytes:
    import io

    from PIL import ImageDraw

    img = Image.new("RGB", (64, 64), (10, 250, 20))
    ImageDraw.Draw(img).rectangle((20, 12, 44, 58), fill=(160, 40, 60))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


async def script_run(paths, *, order: GenerationOrder):
    """Open a core, run ``order`` to its end with a fake provider, return (core, result, fake).
    The caller closes the core."""
    from studio_core.app_core import StudioCore

    core = await StudioCore.open(paths)
    fake = KeyColourProvider(steps=1)
    core.jobs.provider_for = lambda service: fake
    handle = await core.session.generate(order)
    result = await handle.result()
    return core, result, fake


def test_walk_in_four_directions_with_transparent_background_from_a_script(paths):
    order = GenerationOrder(BASE, WALK_4, transparent=True)

    async def main():
        core, result, fake = await script_run(paths, order=order)
        try:
            poses = len(frames.ANIMATIONS["walk"])
            assert len(fake.requests) == 4 * poses
            # every frame asked for the key colour, shares the seed, and knows its place
            assert all(r.background.mode == "in_app" and "green background" in r.prompt for r in fake.requests)
            assert {r.seed for r in fake.requests} == {77}
            assert [r.member.name for r in fake.requests] == list(result.names)
            assert result.failed == () and len(result.paths) == 4 * poses
            assert result.names[0] == "walk_down_00" and result.animations[poses] == "walk_left"
            assert set(result.transparent) == set(result.names)  # one transparent copy per frame

            got = await outcome(core)
            originals = [f for f in got["files"] if not f["processed"]]
            copies = [f for f in got["files"] if f["processed"]]
            assert len(originals) == len(copies) == 4 * poses
            assert all(f["mode"] == "RGBA" for f in copies) and all(f["mode"] == "RGB" for f in originals)
            assert sorted(f["frame"] for f in copies) == sorted(result.names)
            # every file is in the index, the copies included, when the set is reported done
            assert len(got["rows"]) == 8 * poses
            with Image.open(result.transparent["walk_up_03"]) as img:
                assert img.getpixel((1, 1))[3] == 0 and img.getpixel((32, 40))[3] == 255
        finally:
            await core.aclose()

    run_async(main())


def test_two_runs_of_the_same_order_leave_the_same_outcome(paths, tmp_path):
    """The comparison the GUI half uses is stable: same order, same files and rows."""
    from studio_core.paths import AppPaths

    order = GenerationOrder(BASE, FrameSetSpec(mode="variants", count=3), transparent=True)

    async def run(p):
        core, _result, _fake = await script_run(p, order=order)
        try:
            return await outcome(core)
        finally:
            await core.aclose()

    first = run_async(run(paths))
    other = AppPaths.portable(tmp_path / "second")
    other.ensure()
    assert run_async(run(other)) == first
    assert [f["seed"] for f in first["files"] if not f["processed"]] == [77, 78, 79]


def test_style_preset_is_applied_by_the_session(paths):
    from studio_core.sprites.styles import StylePreset

    async def main():
        from studio_core.app_core import StudioCore

        core = await StudioCore.open(paths)
        try:
            book = await core.session.style_book()
            assert book.asset_types, "resources/prompt_styles.json lists asset types"
            kind = book.asset_types[0]
            plan = core.session.expand(GenerationOrder(BASE, style=StylePreset(asset_type=kind.key)), book=book)
            [req] = plan.requests
            assert req.style_preset == f"{kind.key}/" and req.options == ()
            if kind.prompt:
                assert req.prompt.startswith("a green slime knight, ")
        finally:
            await core.aclose()

    run_async(main())
