from __future__ import annotations

import json
import sqlite3

import pytest
from PIL import Image, PngImagePlugin

from studio_core.errors import DiskFull, StorageError
from studio_core.storage.export import export_image
from studio_core.storage.index import ImageIndex, _storage_error
from studio_core.storage.images import read_metadata
from studio_core.storage.records import ImageQuery
from studio_core.storage.rescan import parse_comfy_prompt, row_from_file
from studio_core.thumbs import thumbnail_bytes
from tests.conftest import run_async
from tests.core.test_index import save

COMFY_GRAPH = {
    "3": {"class_type": "KSampler", "inputs": {"seed": 77, "steps": 25, "cfg": 6.5, "sampler_name": "dpmpp_2m",
                                                "scheduler": "karras", "positive": ["6", 0], "negative": ["7", 0],
                                                "model": ["4", 0], "latent_image": ["5", 0]}},
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 832, "height": 1216, "batch_size": 1}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "knight with a lance", "clip": ["4", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "lowres", "clip": ["4", 1]}},
}


def _png(path, **text):
    info = PngImagePlugin.PngInfo()
    for k, v in text.items():
        info.add_text(k, v)
    Image.new("RGBA", (24, 24), (1, 2, 3, 0)).save(path, pnginfo=info)


def test_parse_comfy_prompt():
    req = parse_comfy_prompt(json.dumps(COMFY_GRAPH))
    assert (req.prompt, req.negative_prompt, req.seed, req.steps, req.cfg) == ("knight with a lance", "lowres", 77, 25, 6.5)
    assert (req.sampler, req.scheduler, req.model, req.width, req.height) == ("dpmpp_2m", "karras", "sd_xl_base_1.0.safetensors", 832, 1216)
    assert parse_comfy_prompt("{broken") is None
    assert parse_comfy_prompt("[1, 2]") is None


def test_rows_from_foreign_files(tmp_path):
    _png(tmp_path / "a1111.png", parameters="a red potion\nNegative prompt: text\nSteps: 30, Sampler: Euler a, CFG scale: 7, Seed: 123, Size: 512x512, Model: dreamshaper")
    _png(tmp_path / "comfy.png", prompt=json.dumps(COMFY_GRAPH), workflow="{}")
    _png(tmp_path / "plain.png")
    a = row_from_file(tmp_path, "a1111.png", 1, 2)
    assert (a["prompt"], a["negative"], a["seed"], a["model"], a["source"]) == ("a red potion", "text", 123, "dreamshaper", "a1111")
    assert (a["width"], a["height"]) == (24, 24)  # real pixels win over the text's Size
    c = row_from_file(tmp_path, "comfy.png", 1, 2)
    assert (c["prompt"], c["service"], c["source"], c["seed"]) == ("knight with a lance", "comfyui", "comfyui", 77)
    p = row_from_file(tmp_path, "plain.png", 1, 2)
    assert p.get("prompt", "") == "" and p["service"] == "unknown" and p["created"]


def test_import_folder_brings_metadata(paths, tmp_path):
    out = tmp_path / "ComfyUI" / "output"
    (out / "sub").mkdir(parents=True)
    _png(out / "ComfyUI_00001_.png", prompt=json.dumps(COMFY_GRAPH))
    _png(out / "sub" / "ComfyUI_00002_.png", parameters="blue slime\nSteps: 20, Sampler: Euler, CFG scale: 5, Seed: 9, Size: 24x24")
    (out / "readme.txt").write_text("ignored")

    async def go():
        idx = await ImageIndex.open(paths)
        try:
            rep, problems = await idx.import_folder(out)
            assert rep.added == 2 and problems == []
            assert [r.path for r in await idx.query(ImageQuery(text="slime"))] == ["imported/output/sub/ComfyUI_00002_.png"]
            rep2, _ = await idx.import_folder(out)  # importing twice adds nothing
            assert rep2.added == 0 and await idx.count() == 2
            with pytest.raises(StorageError):
                await idx.import_folder(paths.images)
        finally:
            await idx.aclose()

    run_async(go())


def test_storage_error_mapping():
    assert isinstance(_storage_error(sqlite3.OperationalError("database or disk is full"), "x"), DiskFull)
    ro = _storage_error(sqlite3.OperationalError("attempt to write a readonly database"), "x")
    assert "read-only" in ro.user_message


def test_thumbnails_cached_by_identity(paths, tmp_path):
    s = save(paths, "thumb")
    cache = tmp_path / "thumbs"
    first = thumbnail_bytes(s.path, cache)
    assert first and len(list(cache.rglob("*.png"))) == 1
    assert thumbnail_bytes(s.path, cache) == first
    Image.new("RGBA", (300, 100), (255, 0, 0, 255)).save(s.path)  # changed behind our back
    second = thumbnail_bytes(s.path, cache)
    assert second != first and len(list(cache.rglob("*.png"))) == 2
    (tmp_path / "junk.png").write_text("nope")
    assert thumbnail_bytes(tmp_path / "junk.png", cache) is None
    assert thumbnail_bytes(tmp_path / "gone.png", cache) is None


@pytest.mark.parametrize("fmt", ["png", "webp"])
@pytest.mark.parametrize("with_meta", [True, False])
def test_export(paths, tmp_path, fmt, with_meta):
    s = save(paths, "export me")
    dest = export_image(s.path, tmp_path / f"copy.{fmt}", with_metadata=with_meta)
    assert dest.suffix == f".{fmt}"
    with Image.open(dest) as img:
        assert img.mode in ("RGBA", "RGB") and img.size == (16, 16)  # libwebp drops an all-opaque alpha
    if fmt == "png":
        assert (read_metadata(dest).request is not None) == with_meta
    else:
        with Image.open(dest) as img:
            assert (0x9286 in img.getexif()) == with_meta
