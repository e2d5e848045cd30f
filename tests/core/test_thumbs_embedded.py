"""Thumbnails saved inside the app's PNGs: read without decoding the image, never stale."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from studio_core import thumbs
from studio_core.models import GenerationRequest
from studio_core.storage.images import encode_png, save_generated_image
from studio_core.thumbs import (
    THUMB_CHUNK,
    cached_thumbnail_bytes,
    embedded_thumbnail,
    thumbnail_bytes,
    thumbnail_chunk,
)


def _png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _saved(tmp_path: Path, colour=(200, 40, 30), size=(512, 384)) -> Path:
    data = _png_bytes(Image.new("RGB", size, colour))
    saved = save_generated_image(data, GenerationRequest(prompt="red slime", service="comfyui", seed=5),
                                 folder=tmp_path / "images")
    return Path(saved.path)


def _decoded(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def _no_decoding(monkeypatch):
    def refuse(*_a, **_k):
        raise AssertionError("decoded the full image although it carries its thumbnail")

    monkeypatch.setattr(thumbs, "make_thumbnail", refuse)


def test_a_saved_generation_carries_its_thumbnail(tmp_path):
    path = _saved(tmp_path)
    data = embedded_thumbnail(path)
    assert data is not None
    small = _decoded(data).convert("RGB")
    assert small.size == (128, 96)  # fitted, aspect kept
    r, g, b = small.getpixel((64, 48))
    assert abs(r - 200) < 8 and abs(g - 40) < 8 and abs(b - 30) < 8
    # The file is still an ordinary PNG for every reader.
    full = Image.open(path)
    full.load()
    assert full.size == (512, 384)


def test_gallery_reads_the_embedded_thumbnail_instead_of_decoding(tmp_path, monkeypatch):
    path = _saved(tmp_path)
    st = path.stat()
    _no_decoding(monkeypatch)
    cache = tmp_path / "cache"
    # The first-screen batch path (cache only, never decodes) finds it on a cold cache…
    fast = cached_thumbnail_bytes(path, cache, size=st.st_size, mtime_ns=st.st_mtime_ns)
    assert fast is not None and _decoded(fast).size == (128, 96)
    # …and so does the ordinary path, which also fills the cache.
    assert thumbnail_bytes(path, cache) == fast
    assert len(list(cache.rglob("*.png"))) == 1


def test_thumbnail_for_another_image_size_is_ignored(tmp_path):
    """An editor that kept the chunk while resizing the picture must not get a stale thumbnail."""
    stale = thumbnail_chunk(Image.new("RGB", (512, 512), (0, 0, 255)))  # made for a blue 512² image
    info = PngImagePlugin.PngInfo()
    info.add(THUMB_CHUNK, stale)
    path = tmp_path / "edited.png"
    Image.new("RGB", (300, 300), (0, 255, 0)).save(path, pnginfo=info)
    assert embedded_thumbnail(path) is None
    data = thumbnail_bytes(path, tmp_path / "cache")  # decoded from the real pixels instead
    r, g, b = _decoded(data).convert("RGB").getpixel((10, 10))
    assert r < 8 and g > 247 and b < 8  # green (JPEG may be off by one), not the stale blue


def test_corrupt_chunk_is_ignored(tmp_path):
    path = _saved(tmp_path)
    raw = bytearray(path.read_bytes())
    at = raw.find(THUMB_CHUNK)
    assert at > 0
    raw[at + 20] ^= 0xFF  # a flipped bit inside the thumbnail: the CRC no longer matches
    path.write_bytes(bytes(raw))
    assert embedded_thumbnail(path) is None


def test_chunk_sits_before_the_pixels_and_is_private_and_unsafe_to_copy(tmp_path):
    raw = _saved(tmp_path).read_bytes()
    assert raw.find(THUMB_CHUNK) < raw.find(b"IDAT")
    kind = THUMB_CHUNK.decode()
    # PNG chunk-name bits: ancillary, private, reserved clear, not safe to copy.
    assert kind[0].islower() and kind[1].islower() and kind[2].isupper() and kind[3].isupper()
    # A well-formed chunk: its CRC covers type and data.
    at = raw.find(THUMB_CHUNK)
    length = struct.unpack(">I", raw[at - 4:at])[0]
    crc = struct.unpack(">I", raw[at + 4 + length:at + 8 + length])[0]
    assert zlib.crc32(raw[at:at + 4 + length]) == crc


def test_transparent_images_keep_alpha_in_the_thumbnail(tmp_path):
    img = Image.new("RGBA", (256, 256), (0, 0, 0, 0))
    img.paste((255, 255, 0, 255), (64, 64, 192, 192))
    data = encode_png(img, request=GenerationRequest(prompt="coin"), seed=1, created="2024-01-01T00:00:00.000+00:00")
    path = tmp_path / "coin.png"
    path.write_bytes(data)
    small = _decoded(embedded_thumbnail(path)).convert("RGBA")
    assert small.getpixel((2, 2))[3] == 0 and small.getpixel((64, 64)) == (255, 255, 0, 255)


def test_files_without_settings_get_no_thumbnail(tmp_path):
    data = encode_png(Image.new("RGB", (64, 64)), request=GenerationRequest(prompt="x"), seed=1,
                      created="2024-01-01T00:00:00.000+00:00", with_metadata=False)
    assert THUMB_CHUNK not in data


@pytest.mark.parametrize("content", [b"", b"not a png at all", b"\x89PNG\r\n\x1a\n\x00\x00"])
def test_non_png_or_truncated_files_give_none(tmp_path, content):
    path = tmp_path / "x.png"
    path.write_bytes(content)
    assert embedded_thumbnail(path) is None
    assert embedded_thumbnail(tmp_path / "missing.png") is None
