from __future__ import annotations

import io
import os
from datetime import datetime, timezone

import pytest
from PIL import Image

from studio_core.errors import NotAnImage, StorageError
from studio_core.models import GenerationRequest, QualityTier
from studio_core.storage.images import (
    image_filename,
    parse_a1111,
    read_metadata,
    safe_component,
    save_generated_image,
)
from tests.fakes import png_bytes
from tests.file_permissions import needs_unwritable_folders

WHEN = datetime(2025, 9, 7, 19, 0, 0, 123000, tzinfo=timezone.utc)


def req(**kw) -> GenerationRequest:
    base = dict(prompt="cute dragon, pixel art", service="huggingface", model="FLUX.1-schnell", negative_prompt="blurry",
                width=512, height=768, steps=4, cfg=0.0, sampler="euler", scheduler="simple", seed=42,
                quality=QualityTier.high, options=(("provider", "fal-ai"),))
    base.update(kw)
    return GenerationRequest(**base)


def test_filename_follows_seed_scheme():
    assert image_filename("huggingface", "cute dragon", WHEN) == "huggingface_cute_dragon_2025-09-07T19-00-00-123Z.png"


@pytest.mark.parametrize("text, expect", [
    ("../../etc/passwd", "etc_passwd"),
    ("a/b\\c:d*e?f", "a_b_c_d_e_f"),
    ("CON", "image"),
    ("lpt1", "image"),
    ("...", "image"),
    ("tab\tnew\nline\x00nul", "tab_new_line_nul"),
    ("Ünïcödé 龍 ドラゴン", "ünïcödé_龍_ドラゴン"),
    ("x" * 200, "x" * 40),
])
def test_safe_component(text, expect):
    assert safe_component(text) == expect


def test_roundtrip_metadata(tmp_path):
    r = req()
    saved = save_generated_image(png_bytes(), r, folder=tmp_path, seed=42, when=WHEN,
                                 info={"cost_usd": 0.003}, extra_text={"prompt": '{"1": {}}'})
    assert saved.path.name == "huggingface_cute_dragon_pixel_art_2025-09-07T19-00-00-123Z.png"
    meta = read_metadata(saved.path)
    assert meta.source == "studio"
    assert meta.request == r
    assert meta.seed == 42
    assert dict(meta.info) == {"cost_usd": 0.003}
    assert meta.comfy_prompt == '{"1": {}}'
    with Image.open(saved.path) as img:
        assert "Steps: 4" in img.text["parameters"]
        assert img.text["parameters"].startswith("cute dragon, pixel art\nNegative prompt: blurry\n")


def test_a1111_parameters_parse_back():
    r = parse_a1111("a knight, red cape\nNegative prompt: ugly\nSteps: 28, Sampler: Euler a, CFG scale: 7, Seed: 1234, Size: 832x1216, Model: sd_xl_base_1.0")
    assert r.prompt == "a knight, red cape"
    assert r.negative_prompt == "ugly"
    assert (r.steps, r.cfg, r.seed, r.width, r.height, r.model, r.sampler) == (28, 7.0, 1234, 832, 1216, "sd_xl_base_1.0", "Euler a")


def test_collision_gets_suffix(tmp_path):
    a = save_generated_image(png_bytes(), req(), folder=tmp_path, when=WHEN)
    b = save_generated_image(png_bytes(), req(), folder=tmp_path, when=WHEN)
    assert a.path != b.path
    assert b.path.name.endswith("-2.png")
    assert len(list(tmp_path.iterdir())) == 2


def test_non_image_is_refused_and_nothing_written(tmp_path):
    with pytest.raises(NotAnImage) as e:
        save_generated_image(b"<html>502 Bad Gateway</html>", req(), folder=tmp_path, when=WHEN)
    assert "not an image" in e.value.user_message
    assert list(tmp_path.iterdir()) == []


def test_truncated_png_is_refused(tmp_path):
    data = png_bytes(256, 256, (1, 2, 3, 255))
    with pytest.raises(NotAnImage):
        save_generated_image(data[: len(data) // 2], req(), folder=tmp_path, when=WHEN)
    assert list(tmp_path.iterdir()) == []


def test_decompression_bomb_refused(tmp_path):
    img = Image.new("1", (12000, 12000))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    with pytest.raises(NotAnImage) as e:
        save_generated_image(buf.getvalue(), req(), folder=tmp_path, when=WHEN)
    assert "too large" in e.value.user_message


def test_jpeg_from_cloud_becomes_png_with_metadata(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (9, 9, 9)).save(buf, format="JPEG")
    saved = save_generated_image(buf.getvalue(), req(), folder=tmp_path, when=WHEN)
    with Image.open(saved.path) as img:
        assert img.format == "PNG"
    assert read_metadata(saved.path).request == req()


def test_garbage_metadata_falls_back(tmp_path):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("studio", "{not json")
    info.add_text("parameters", "")
    p = tmp_path / "x.png"
    Image.new("RGB", (8, 8)).save(p, pnginfo=info)
    meta = read_metadata(p)
    assert meta.request is None


def test_read_metadata_of_non_image(tmp_path):
    p = tmp_path / "fake.png"
    p.write_bytes(b"hello")
    with pytest.raises(NotAnImage):
        read_metadata(p)


@needs_unwritable_folders
def test_unwritable_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(StorageError) as e:
        save_generated_image(png_bytes(), req(), folder=ro, when=WHEN)
    assert "Could not write" in e.value.user_message


def test_unwritable_folder_as_file(tmp_path):
    blocker = tmp_path / "images"
    blocker.write_text("a file where a folder should be")
    with pytest.raises((StorageError, OSError)):
        save_generated_image(png_bytes(), req(), folder=blocker / "sub", when=WHEN)


def test_disk_full_leaves_no_partial_file(tmp_path, monkeypatch):
    import errno

    from studio_core.errors import DiskFull
    from studio_core.storage import atomic

    real_fdopen = os.fdopen

    class Full:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *a):
            self.fh.close()

        def write(self, data):
            self.fh.write(data[:10])
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fdopen", lambda fd, mode: Full(real_fdopen(fd, mode)))
    with pytest.raises(DiskFull):
        save_generated_image(png_bytes(), req(), folder=tmp_path, when=WHEN)
    assert list(tmp_path.iterdir()) == []
