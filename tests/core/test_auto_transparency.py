"""In-app transparency end to end: the queue saves a key-colour sprite, the session's
pipeline writes a transparent copy beside it, the gallery index lists it, the original is untouched."""

from __future__ import annotations

import asyncio
import hashlib
import io
from pathlib import Path

from PIL import Image, ImageDraw

from studio_core.models import GenerationRequest, JobImage, JobStarted
from studio_core.changes import ImageProcessed
from studio_core.sprites.auto_transparency import make_transparent_copy, wants_in_app
from studio_core.sprites.background_plan import BackgroundMethod, apply_background_plan, choose_background_method
from studio_core.storage.images import read_metadata
from studio_core.storage.records import ImageQuery
from tests.conftest import run_async
from tests.fakes import FakeProvider, png_bytes


def sprite_on_key(size: int = 96, key=(12, 250, 30)) -> bytes:
    img = Image.new("RGB", (size, size), key)
    d = ImageDraw.Draw(img)
    d.ellipse((20, 16, size - 20, size - 10), fill=(170, 40, 50), outline=(20, 20, 20), width=3)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def busy_png(size: int = 64) -> bytes:
    g = Image.linear_gradient("L").resize((size, size))
    img = Image.merge("RGB", (g, g.rotate(90), g.rotate(180)))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def in_app_request(prompt: str = "slime monster") -> GenerationRequest:
    plan = choose_background_method("huggingface")
    assert plan.method is BackgroundMethod.in_app
    return apply_background_plan(GenerationRequest(prompt=prompt, service="fake", seed=5), plan)


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


async def run_job(paths, images: list[bytes], request: GenerationRequest):
    from studio_core.app_core import StudioCore

    core = await StudioCore.open(paths)
    script = [JobStarted("")] + [JobImage("", data, seed=5, index=n, info=(("provider", "fake"), ("cost_usd", 0.01)))
                                  for n, data in enumerate(images)]
    fake = FakeProvider(script=script)
    core.jobs.provider_for = lambda service: fake
    results = []
    core.changes.subscribe(results.append, ImageProcessed)
    job_id = core.jobs.submit(request)
    async with asyncio.timeout(20):
        while core.jobs.busy:
            await asyncio.sleep(0.01)
    # No waiting for the copies: the job ends only after its post-processing did.
    entry = core.jobs.entry(job_id)
    return core, results, entry


def test_request_is_marked_for_in_app_removal():
    assert wants_in_app(in_app_request())
    native = apply_background_plan(GenerationRequest("x", service="openai"), choose_background_method("openai"))
    assert not wants_in_app(native) and native.option("background") == "transparent"
    assert not wants_in_app(GenerationRequest("x"))


def test_in_app_job_gets_a_transparent_copy_and_the_original_is_kept(paths):
    async def main():
        core, results, entry = await run_job(paths, [sprite_on_key()], in_app_request())
        try:
            assert len(entry.saved) == 1
            original = Path(entry.saved[0])
            before = digest(original)
            [result] = results
            assert result.ok and result.message == ""
            copy = Path(result.copy.path)
            assert copy.parent == original.parent and copy.name == f"{original.stem}_transparent.png"
            with Image.open(copy) as img:
                assert img.mode == "RGBA"
                assert img.getpixel((1, 1))[3] == 0  # the key colour is gone
                assert img.getpixel((48, 50))[3] == 255  # the sprite stays
            with Image.open(original) as img:
                assert "A" not in img.getbands() or img.getpixel((1, 1))[3] == 255
            assert digest(original) == before
            meta = read_metadata(copy)
            assert meta.request is not None and meta.request.prompt.startswith("slime monster")
            assert meta.seed == 5
            info = dict(meta.info)
            assert info["processed_from"] == original.name and "cost_usd" not in info  # not billed twice
            # indexed by the pipeline before the job ended: the gallery index lists both files
            recs = await core.index.query(ImageQuery())
            names = {Path(r.path).name for r in recs}
            assert {original.name, copy.name} <= names
        finally:
            await core.aclose()

    run_async(main())


def test_image_without_plain_background_gives_a_message_not_an_error(paths):
    async def main():
        core, results, entry = await run_job(paths, [busy_png()], in_app_request())
        try:
            assert entry.state.value == "done" and entry.error is None
            [result] = results
            assert not result.ok and result.copy is None
            assert "no plain background" in result.message and "original is kept" in result.message
            folder = Path(entry.saved[0]).parent
            assert not list(folder.glob("*_transparent*.png"))
        finally:
            await core.aclose()

    run_async(main())


def test_other_requests_are_left_alone(paths):
    async def main():
        request = GenerationRequest(prompt="plain potion", service="fake")
        from studio_core.app_core import StudioCore

        core = await StudioCore.open(paths)
        fake = FakeProvider(steps=1)
        core.jobs.provider_for = lambda service: fake
        results = []
        core.changes.subscribe(results.append, ImageProcessed)
        try:
            job_id = core.jobs.submit(request)
            async with asyncio.timeout(10):
                while core.jobs.busy:
                    await asyncio.sleep(0.01)
            assert results == []
            folder = Path(core.jobs.entry(job_id).saved[0]).parent
            assert not list(folder.glob("*_transparent*.png"))
        finally:
            await core.aclose()

    run_async(main())


def test_copy_never_replaces_an_existing_file(tmp_path):
    src = tmp_path / "knight.png"
    src.write_bytes(sprite_on_key())
    (tmp_path / "knight_transparent.png").write_bytes(png_bytes())
    saved = make_transparent_copy(src)
    assert Path(saved.path).name == "knight_transparent-2.png"
    assert (tmp_path / "knight_transparent.png").read_bytes() == png_bytes()
