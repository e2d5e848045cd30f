"""Preparing input images cheaply without checking less: a plain PNG is kept without
inflating its pixels, a large JPEG init is decoded at a fraction of its size (turned
upright first), and a job's images are checked and uploaded side by side."""

from __future__ import annotations

import asyncio
import hashlib
import io

import pytest
from PIL import Image, JpegImagePlugin, PngImagePlugin

from studio_core.input_store import InputStore
from studio_core.providers.comfy.input_nodes import input_filename
from studio_core.providers.comfy.provider import ComfyProvider
from tests.conftest import run_async
from tests.core.test_pool_inputs import UploadingFake


@pytest.fixture
def store(tmp_path) -> InputStore:
    return InputStore.in_data_folder(tmp_path / "data")


def encoded(size, fmt: str, *, orientation: int = 1, colour=(200, 40, 40)) -> bytes:
    img = Image.new("RGB", size, colour)
    img.paste((10, 10, 10), (0, 0, size[0] // 4, size[1] // 8))  # a corner mark shows which way is up
    buf = io.BytesIO()
    kw = {}
    if orientation != 1:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kw["exif"] = exif.tobytes()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_plain_png_reference_is_checked_and_kept_without_inflating_its_pixels(store, monkeypatch):
    data = encoded((256, 128), "PNG")

    def no_decode(self):
        raise AssertionError("the pixels were decoded")

    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", no_decode)
    s = store.add_image(data, what="reference image")
    assert s.digest == hashlib.sha256(data).hexdigest() and (s.width, s.height) == (256, 128)
    with pytest.raises(Exception):  # still refused when cut off: the chunk check needs no pixels
        store.add_image(data[:-20])


def test_png_with_an_exif_orientation_is_still_turned_upright(store):
    data = encoded((64, 32), "PNG", orientation=6)
    s = store.add_image(data)
    assert (s.width, s.height) == (32, 64) and s.digest != hashlib.sha256(data).hexdigest()


def _decoded_sizes(monkeypatch) -> list:
    sizes = []
    real = JpegImagePlugin.JpegImageFile.load

    def load(self):
        sizes.append(self.size)
        return real(self)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "load", load)
    return sizes


def test_large_jpeg_init_is_decoded_at_the_scale_it_is_reduced_to(store, monkeypatch):
    sizes = _decoded_sizes(monkeypatch)
    s = store.add_init(encoded((2048, 2048), "JPEG"), target=(256, 256))
    assert sizes[0] == (256, 256)  # 1/8 scale straight out of the decoder
    assert (s.width, s.height) == (256, 256) and Image.open(s.path).size == (256, 256)
    assert "The init image (2048×2048) is far larger than the 256×256 image" in s.notice


def test_sideways_jpeg_init_is_decoded_small_and_stored_upright(store, monkeypatch):
    sizes = _decoded_sizes(monkeypatch)
    s = store.add_init(encoded((2048, 1024), "JPEG", orientation=6), target=(256, 256))
    assert sizes[0] == (512, 256)  # as stored: 1/4 scale still covers the target once turned
    assert (s.width, s.height) == (256, 512)
    stored = Image.open(s.path).convert("RGB")
    assert stored.getpixel((250, 5))[0] < 60  # the corner mark, turned with the picture
    assert "The init image (1024×2048)" in s.notice


def test_a_jobs_images_are_checked_and_uploaded_side_by_side(store):
    """The fake answers no HEAD until two are waiting: one image after the other never gets there."""
    a = store.add_image(encoded((64, 64), "PNG", colour=(1, 2, 3)))
    b = store.add_image(encoded((64, 64), "PNG", colour=(4, 5, 6)))
    graph = {"1": {"class_type": "LoadImage", "inputs": {"image": input_filename(a.digest)}},
             "2": {"class_type": "LoadImage", "inputs": {"image": input_filename(b.digest)}}}

    class BothAtOnce(UploadingFake):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.waiting = 0
            self.both = asyncio.Event()

        async def _route(self, method, path, query, body):
            if method == "HEAD":
                self.waiting += 1
                if self.waiting == 2:
                    self.both.set()
                try:
                    await asyncio.wait_for(self.both.wait(), 5)
                except asyncio.TimeoutError:
                    return 500, "text/plain", b""
            return await super()._route(method, path, query, body)

    async def main():
        async with BothAtOnce() as fake:
            prov = ComfyProvider(fake.url, input_store=store)
            try:
                await prov.upload_inputs(graph)
            finally:
                await prov.aclose()
            return fake

    fake = run_async(main())
    assert {hashlib.sha256(d).hexdigest() for d in fake.inputs.values()} == {a.digest, b.digest}
