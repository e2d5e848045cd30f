"""The first test image after a setup: the installed model when the server lists it, the file then deleted."""

from __future__ import annotations

import copy
import json

import pytest

from studio_core.setup import first_start
from studio_core.setup.catalog import Catalog
from tests.comfy_fake_server import DATA, Behaviour, FakeComfyServer
from tests.conftest import run_async

NAME = "studio_setup_test_00001_.png"


def object_info(checkpoints: list[str]) -> dict:
    info = json.loads((DATA / "comfy_object_info_0.3.64.json").read_text())
    info = copy.deepcopy(info)
    info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0] = checkpoints
    return info


def smoke(tmp_path, *, checkpoints: list[str], behaviour: Behaviour, checkpoint: str | None = "tiny.safetensors"):
    folder = tmp_path / "ComfyUI"
    out = folder / "output"
    out.mkdir(parents=True)

    async def go():
        async with FakeComfyServer(behaviour=behaviour, object_info=object_info(checkpoints)) as server:
            # The fake server does not write files: put the one it names where ComfyUI would.
            target = (out / behaviour.subfolder / behaviour.filename).resolve()
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(b"png")
            result = await first_start.smoke_image(server.url, folder, checkpoint=checkpoint, timeout=20)
            return result, [body["prompt"] for body in server.posted("/prompt")], target

    return run_async(go())


def test_the_installed_model_draws_the_test_image_when_the_server_lists_it(tmp_path):
    result, graphs, file = smoke(tmp_path, checkpoints=["other.safetensors", "tiny.safetensors"],
                                 behaviour=Behaviour(filename=NAME))
    assert result.checkpoint == "tiny.safetensors" and result.note == ""
    assert result.png.startswith(b"\x89PNG")
    (graph,) = graphs
    nodes = {n["class_type"]: n["inputs"] for n in graph.values()}
    assert nodes["CheckpointLoaderSimple"]["ckpt_name"] == "tiny.safetensors"
    assert nodes["KSampler"]["steps"] == 1
    assert (nodes["EmptyLatentImage"]["width"], nodes["EmptyLatentImage"]["height"]) == (64, 64)
    assert not file.exists()  # shown, then deleted


def test_a_model_the_server_does_not_list_falls_back_to_the_plain_image(tmp_path):
    result, graphs, file = smoke(tmp_path, checkpoints=["other.safetensors"], behaviour=Behaviour(filename=NAME))
    assert result.checkpoint is None and "does not list tiny.safetensors" in result.note
    assert [n["class_type"] for n in graphs[0].values()] == ["EmptyImage", "SaveImage"]
    assert not file.exists()


def test_a_model_that_cannot_sample_falls_back_and_says_why(tmp_path):
    result, graphs, file = smoke(tmp_path, checkpoints=["tiny.safetensors"], behaviour=Behaviour(filename=NAME, fail="oom"))
    assert result.checkpoint is None and "could not make an image" in result.note and "out of memory" in result.note
    assert [g["1"]["class_type"] for g in graphs] == ["CheckpointLoaderSimple", "EmptyImage"]
    assert result.png.startswith(b"\x89PNG") and not file.exists()


@pytest.mark.parametrize("subfolder, filename", [("../..", NAME), ("", "../../" + NAME), ("", "nodes.py")])
def test_a_server_given_name_outside_output_is_never_deleted(tmp_path, subfolder, filename):
    result, _graphs, file = smoke(tmp_path, checkpoints=[], checkpoint=None,
                                  behaviour=Behaviour(filename=filename, subfolder=subfolder))
    assert file.exists() and "deleted nothing" in result.note


def test_installed_checkpoint_reads_the_manifest(tmp_path):
    from studio_core.setup.installer import MANIFEST

    cat = Catalog.from_dict({"comfyui": [], "torch": [], "models": [
        {"id": "tiny", "title": "t", "file": {"name": "tiny.safetensors", "url": "http://x/t", "sha256": "a" * 64,
                                              "dest": "models/checkpoints/sub/tiny.safetensors"}}]})
    folder = tmp_path / "ComfyUI"
    (folder / "models/checkpoints/sub").mkdir(parents=True)
    assert first_start.installed_checkpoint(folder, cat) is None  # no manifest: not a finished setup
    (folder / MANIFEST).write_text(json.dumps({"manifest": 1, "model": "tiny", "files": {}}))
    assert first_start.installed_checkpoint(folder, cat) is None  # the file is not there
    (folder / "models/checkpoints/sub/tiny.safetensors").write_bytes(b"x")
    assert first_start.installed_checkpoint(folder, cat) == "sub/tiny.safetensors"
