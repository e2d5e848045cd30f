"""One decision on a model's family: metadata, then the safetensors header, then the folder, then the name."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from studio_core.hardware.families import (
    FLUX,
    SD15,
    SD2,
    SD3,
    SDXL,
    UNKNOWN,
    family_from_metadata,
    read_safetensors_header,
    resolve_family,
)
from studio_core.providers.comfy import object_info as oi
from studio_core.providers.comfy.model_family import identify_family, local_model_file
from tests.conftest import run_async

SDXL_TENSORS = ("conditioner.embedders.0.transformer.text_model.embeddings.position_ids",
                "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight",
                "model.diffusion_model.label_emb.0.0.weight",
                "model.diffusion_model.input_blocks.0.0.weight",
                "first_stage_model.decoder.conv_in.weight")
SD15_TENSORS = ("cond_stage_model.transformer.text_model.embeddings.position_ids",
                "model.diffusion_model.input_blocks.0.0.weight", "first_stage_model.decoder.conv_in.weight")


def write_safetensors(path: Path, tensors, metadata=None) -> Path:
    """A real safetensors layout: 8-byte little-endian header length, the JSON header, then
    the bytes its offsets point into (zeros; nothing past the header is ever read)."""
    header: dict = {}
    offset = 0
    for name in tensors:
        header[name] = {"dtype": "F16", "shape": [2], "data_offsets": [offset, offset + 4]}
        offset += 4
    if metadata is not None:
        header["__metadata__"] = metadata
    raw = json.dumps(header).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * offset)
    return path


def test_sdxl_header_with_an_unhelpful_name_is_sdxl(tmp_path):
    f = write_safetensors(tmp_path / "my_model_v3.safetensors", SDXL_TENSORS)
    header = read_safetensors_header(f)
    # the name alone says nothing (or, for "..._v1.5_...", something wrong)
    assert resolve_family("my_model_v3.safetensors").family is UNKNOWN
    guess = resolve_family("my_model_v3.safetensors", header=header)
    assert guess.family is SDXL and guess.source == "tensors"
    misleading = resolve_family("anime_1.5_final.safetensors", header=header)
    assert misleading.family is SDXL and misleading.source == "tensors"


def test_sd15_and_flux_and_sd3_headers(tmp_path):
    sd15 = read_safetensors_header(write_safetensors(tmp_path / "a.safetensors", SD15_TENSORS))
    flux = read_safetensors_header(write_safetensors(tmp_path / "b.safetensors",
                                                     ("double_blocks.0.img_attn.norm.key_norm.scale",)))
    sd3 = read_safetensors_header(write_safetensors(tmp_path / "c.safetensors",
                                                    ("model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight",)))
    sd2 = read_safetensors_header(write_safetensors(tmp_path / "d.safetensors",
                                                    ("cond_stage_model.model.transformer.resblocks.0.ln_1.weight",
                                                     "model.diffusion_model.input_blocks.0.0.weight")))
    assert resolve_family("x.safetensors", header=sd15).family is SD15
    assert resolve_family("x.safetensors", header=flux).family is FLUX
    assert resolve_family("x.safetensors", header=sd3).family is SD3
    assert resolve_family("x.safetensors", header=sd2).family is SD2


def test_metadata_beats_tensors_and_name(tmp_path):
    # Named like SD 1.5, tensors of SD 1.5, but the metadata says SDXL: the metadata wins.
    meta = {"modelspec.architecture": "stable-diffusion-xl-v1-base"}
    header = read_safetensors_header(write_safetensors(tmp_path / "v1-5-thing.safetensors", SD15_TENSORS))
    guess = resolve_family("v1-5-thing.safetensors", metadata=meta, header=header)
    assert guess.family is SDXL and guess.source == "metadata"
    # metadata carried in the local header counts as metadata too
    header2 = read_safetensors_header(write_safetensors(tmp_path / "e.safetensors", SD15_TENSORS,
                                                        {"ss_base_model_version": "sdxl_base_v1-0"}))
    assert resolve_family("sd15_name.safetensors", header=header2).source == "metadata"


@pytest.mark.parametrize("value,family", [
    ("stable-diffusion-xl-v1-base", "sdxl"), ("stable-diffusion-v1", "sd15"), ("stable-diffusion-v2-768-v", "sd2"),
    ("stable-diffusion-v3-medium", "sd3"), ("flux-1-dev", "flux"), ("stable-diffusion-xl-v1-base/lora", "sdxl"),
])
def test_modelspec_architecture(value, family):
    assert family_from_metadata({"modelspec.architecture": value}).id == family


@pytest.mark.parametrize("value,family", [("sdxl_base_v1-0", "sdxl"), ("sd_v1", "sd15"), ("sd_v2", "sd2"),
                                          ("flux1", "flux"), ("sd3", "sd3")])
def test_kohya_base_model_version(value, family):
    assert family_from_metadata({"ss_base_model_version": value}).id == family


def test_metadata_that_says_nothing_is_ignored():
    assert family_from_metadata({"modelspec.architecture": ""}) is None
    assert family_from_metadata({"format": "pt"}) is None
    assert family_from_metadata(None) is None
    assert resolve_family("sd_xl_base_1.0.safetensors", metadata={"format": "pt"}).source == "name"


def test_folder_beats_the_name_and_the_user_only_fills_unknowns():
    assert resolve_family("mystery.safetensors", folder="diffusion_models").family is FLUX
    assert resolve_family("mystery.safetensors", folder="unet").source == "folder"
    assert resolve_family("mystery.safetensors", remembered="sd15").family is SD15
    assert resolve_family("mystery.safetensors", remembered="sd15").source == "user"
    assert resolve_family("sd_xl_base_1.0.safetensors", remembered="sd15").family is SDXL
    assert resolve_family("mystery.safetensors", remembered="nonsense").family is UNKNOWN


def test_the_old_name_cases_still_work_through_object_info():
    # object_info no longer guesses on its own: it asks families.
    for name, fam in [("sd_xl_base_1.0.safetensors", "sdxl"), ("v1-5-pruned-emaonly.safetensors", "sd15"),
                      ("SD15/dreamshaper_8.safetensors", "sd15"), ("flux1-schnell-fp8.safetensors", "flux"),
                      ("sd3_medium.safetensors", "sd3"), ("mystery.ckpt", "")]:
        assert oi.guess_family(name) == fam


def test_not_a_safetensors_file_reads_as_none(tmp_path):
    (tmp_path / "short.safetensors").write_bytes(b"\x01\x02")
    (tmp_path / "huge.safetensors").write_bytes(struct.pack("<Q", 2**40) + b"{}")
    (tmp_path / "junk.safetensors").write_bytes(struct.pack("<Q", 4) + b"nope")
    (tmp_path / "list.safetensors").write_bytes(struct.pack("<Q", 2) + b"[]")
    for n in ("short", "huge", "junk", "list"):
        assert read_safetensors_header(tmp_path / f"{n}.safetensors") is None
    assert read_safetensors_header(tmp_path / "missing.safetensors") is None
    assert read_safetensors_header(tmp_path / "model.ckpt") is None


def test_local_file_never_leaves_the_models_folder(tmp_path):
    write_safetensors(tmp_path / "models" / "checkpoints" / "sub" / "a.safetensors", SD15_TENSORS)
    write_safetensors(tmp_path / "secret.safetensors", SD15_TENSORS)
    assert local_model_file(tmp_path / "models", "checkpoints", "sub/a.safetensors") is not None
    assert local_model_file(tmp_path / "models", "checkpoints", "../../secret.safetensors") is None


class _Client:
    def __init__(self, answer=None, error=None):
        self.answer, self.error, self.asked = answer, error, []

    async def view_metadata(self, folder, filename):
        self.asked.append((folder, filename))
        if self.error:
            raise self.error
        return self.answer


def test_identify_family_uses_the_server_then_the_local_file(tmp_path):
    from studio_core.errors import ProviderUnavailable

    models = tmp_path / "models"
    write_safetensors(models / "checkpoints" / "odd.safetensors", SDXL_TENSORS)

    async def main():
        by_meta = await identify_family(_Client({"modelspec.architecture": "flux-1-schnell"}), "odd.safetensors",
                                        models_dir=models)
        down = _Client(error=ProviderUnavailable("down", user_message="down"))
        by_header = await identify_family(down, "odd.safetensors", models_dir=models)
        remote_only = await identify_family(_Client(None), "odd.safetensors", models_dir=None,
                                            remembered={"odd.safetensors": "sd15"})
        return by_meta, by_header, remote_only, down.asked

    by_meta, by_header, remote_only, asked = run_async(main())
    assert by_meta.family.id == "flux" and by_meta.source == "metadata"
    assert by_header.family is SDXL and by_header.source == "tensors"
    assert asked == [("checkpoints", "odd.safetensors")]
    assert remote_only.family is SD15 and remote_only.source == "user"


def test_view_metadata_against_a_loopback_server():
    """The client's route: 200 with JSON → the metadata; 404 → None (an older server, or no metadata)."""
    from studio_core.providers.comfy.client import ComfyClient
    from tests.comfy_fake_server import FakeComfyServer

    class WithMetadata(FakeComfyServer):
        async def _route(self, method, path, query, body):
            if method == "GET" and path == "/view_metadata/checkpoints":
                if query.get("filename") == ["odd.safetensors"]:
                    return 200, "application/json", json.dumps({"ss_base_model_version": "sdxl_base_v1-0"}).encode()
                return 404, "text/plain", b"404: Not Found"
            return await super()._route(method, path, query, body)

    async def main():
        async with WithMetadata() as fake:
            client = ComfyClient(fake.url)
            try:
                found = await client.view_metadata("checkpoints", "odd.safetensors")
                missing = await client.view_metadata("checkpoints", "nothing.safetensors")
                guess = await identify_family(client, "odd.safetensors")
                return found, missing, guess
            finally:
                await client.aclose()

    found, missing, guess = run_async(main())
    assert found == {"ss_base_model_version": "sdxl_base_v1-0"} and missing is None
    assert guess.family is SDXL and guess.source == "metadata"
