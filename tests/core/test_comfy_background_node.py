"""The built-in graph with a background-removal node after the VAE decode, wired from the
node's object_info spec (recorded 0.3.64 server plus synthetic removal-pack entries)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from studio_core.errors import GenerationFailed
from studio_core.models import GenerationRequest
from studio_core.providers.comfy import workflow
from studio_core.sprites.background import BackgroundMethod, apply_background_plan, choose_background_method
from tests.core.test_comfy_workflow import check_graph as _check_graph

DATA = Path(__file__).parent.parent / "data"
BASE = json.loads((DATA / "comfy_object_info_0.3.64.json").read_text())

# Shapes as the packs publish them (ComfyUI-BRIA_AI-RMBG, WAS node suite, ComfyUI-Inspyrenet-Rembg).
BRIA = {
    "BRIA_RMBG_ModelLoader_Zho": {"input": {"required": {}}, "output": ["RMBGMODEL"], "output_name": ["rmbgmodel"],
                                  "name": "BRIA_RMBG_ModelLoader_Zho", "output_node": False},
    "BRIA_RMBG_Zho": {"input": {"required": {"rmbgmodel": ["RMBGMODEL"], "image": ["IMAGE"]}},
                      "output": ["IMAGE", "MASK"], "output_name": ["image", "mask"], "name": "BRIA_RMBG_Zho",
                      "output_node": False},
}
WAS = {
    "Image Remove Background (rembg)": {
        "input": {"required": {
            "images": ["IMAGE"],
            "transparency": ["BOOLEAN", {"default": True}],
            "model": [["u2net", "u2netp", "isnet-anime"]],
            "alpha_matting_foreground_threshold": ["INT", {"default": 240, "min": 0, "max": 255}],
            "background_color": [["none", "black", "white"], {"default": "none"}],
        }},
        "output": ["IMAGE"], "output_name": ["images"], "name": "Image Remove Background (rembg)", "output_node": False},
}
INSPYRENET = {
    "InspyrenetRembg": {"input": {"required": {"image": ["IMAGE"], "torchscript_jit": [["default", "on"]]}},
                        "output": ["IMAGE", "MASK"], "output_name": ["IMAGE", "MASK"], "name": "InspyrenetRembg",
                        "output_node": False},
}
# A mask-first node whose model link nothing on the server can make: not usable.
ORPHAN = {
    "BRIA_RMBG": {"input": {"required": {"model": ["SOME_MODEL"], "image": ["IMAGE"]}},
                  "output": ["MASK", "IMAGE"], "name": "BRIA_RMBG", "output_node": False},
}


def check_graph(graph: dict, info: dict) -> list[str]:
    """The shared checker, plus BOOLEAN widgets (no core node in the recording has one)."""
    problems = _check_graph(graph, info)
    for nid, node in graph.items():
        for name, spec in (info[node["class_type"]]["input"].get("required") or {}).items():
            if spec[0] == "BOOLEAN":
                msg = f"{nid}.{name}: literal for link input BOOLEAN"
                if isinstance(node["inputs"].get(name), bool) and msg in problems:
                    problems.remove(msg)
    return problems


def info_with(*extra: dict) -> dict:
    info = copy.deepcopy(BASE)
    for e in extra:
        info.update(copy.deepcopy(e))
    return info


def node_request(info: dict) -> GenerationRequest:
    plan = choose_background_method("comfyui", object_info=info,
                                    node_usable=lambda n: workflow.image_node_wiring(info, n) is not None)
    assert plan.method is BackgroundMethod.comfy_node
    return apply_background_plan(GenerationRequest(prompt="slime", seed=3), plan)


def save_input(graph: dict) -> list:
    [save] = [n for n in graph.values() if n["class_type"] == "SaveImage"]
    return save["inputs"]["images"]


def test_plain_graph_has_no_removal_node():
    graph = workflow.build(GenerationRequest(prompt="slime", seed=3), BASE)
    src = save_input(graph)
    assert graph[src[0]]["class_type"] == "VAEDecode"


def test_node_with_a_model_loader_is_wired_after_the_decode():
    info = info_with(BRIA)
    req = node_request(info)
    assert req.option("background_node") == "BRIA_RMBG_Zho"
    graph = workflow.build(req, info)
    assert check_graph(graph, info) == []
    src = save_input(graph)
    node = graph[src[0]]
    assert node["class_type"] == "BRIA_RMBG_Zho" and src[1] == 0  # its IMAGE output
    assert graph[node["inputs"]["image"][0]]["class_type"] == "VAEDecode"
    assert graph[node["inputs"]["rmbgmodel"][0]]["class_type"] == "BRIA_RMBG_ModelLoader_Zho"
    assert node["_meta"]["title"] == "Remove background"


def test_widget_inputs_get_their_defaults_and_first_choice():
    info = info_with(WAS)
    graph = workflow.build(node_request(info), info)
    assert check_graph(graph, info) == []
    node = graph[save_input(graph)[0]]
    assert node["class_type"] == "Image Remove Background (rembg)"
    i = node["inputs"]
    assert i["transparency"] is True and i["model"] == "u2net" and i["background_color"] == "none"
    assert i["alpha_matting_foreground_threshold"] == 240
    assert graph[i["images"][0]]["class_type"] == "VAEDecode"


def test_image_output_is_found_by_type_not_position():
    info = info_with(ORPHAN, {"SOME_MODEL_LOADER": {"input": {"required": {"name": [["a.pth"]]}},
                                                   "output": ["SOME_MODEL"], "output_node": False}})
    graph = workflow.build(node_request(info), info)
    assert check_graph(graph, info) == []
    assert save_input(graph)[1] == 1  # output 0 is the MASK


def test_unwirable_node_is_skipped_for_a_usable_one():
    info = info_with(ORPHAN, INSPYRENET)
    assert workflow.image_node_wiring(info, "BRIA_RMBG") is None
    req = node_request(info)
    assert req.option("background_node") == "InspyrenetRembg"
    graph = workflow.build(req, info)
    assert check_graph(graph, info) == []
    # ...and with nothing usable the plan falls back to the in-app key colour.
    only = info_with(ORPHAN)
    plan = choose_background_method("comfyui", object_info=only,
                                    node_usable=lambda n: workflow.image_node_wiring(only, n) is not None)
    assert plan.method is BackgroundMethod.in_app


def test_node_missing_on_the_server_is_a_clear_error():
    req = GenerationRequest(prompt="slime", seed=3, options={"background_node": "BRIA_RMBG_Zho"})
    with pytest.raises(GenerationFailed) as info:
        workflow.build(req, BASE)
    assert "BRIA_RMBG_Zho" in info.value.user_message


def test_removal_node_follows_the_upscale_and_tiled_decode():
    info = info_with(INSPYRENET)
    req = node_request(info).with_options(tiled_vae=True, upscale_to="1024x1024")
    graph = workflow.build(req, info)
    node = graph[save_input(graph)[0]]
    assert node["class_type"] == "InspyrenetRembg"
    assert graph[node["inputs"]["image"][0]]["class_type"] == "ImageScale"
