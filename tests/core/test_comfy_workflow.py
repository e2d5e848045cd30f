"""Builder graphs and object_info parsing, checked against recorded ComfyUI node definitions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from studio_core.errors import MissingModels, ModelNotFound, ValidationFailed, OutOfVram, GenerationFailed
from studio_core.models import GenerationRequest
from studio_core.providers.comfy import object_info as oi
from studio_core.providers.comfy import workflow
from studio_core.providers.comfy.errors import MODEL_INPUTS, execution_error, validation_error

DATA = Path(__file__).parent.parent / "data"
INFO_2025 = json.loads((DATA / "comfy_object_info_0.3.64.json").read_text())  # subset of raw/GET_object_info_full.json
INFO_2024 = json.loads((DATA / "comfy_object_info_2024.json").read_text())
RECORDED = json.loads((DATA / "comfy_recorded.json").read_text())

CASES = {
    "sd15": GenerationRequest(prompt="knight sprite", negative_prompt="blurry", model="v1-5-pruned-emaonly.safetensors",
                              width=512, height=768, steps=25, cfg=7.5, seed=2**60 + 3, batch=2),
    "sdxl": GenerationRequest(prompt="potion", seed=7),  # default model: sd_xl_base_1.0
    "flux": GenerationRequest(prompt="dragon", model="flux1-schnell.safetensors", width=1000, height=600, steps=4,
                              seed=1, options={"loader": "unet"}),
    "flux_ckpt": GenerationRequest(prompt="dragon", model="flux1-schnell-fp8.safetensors", steps=4, seed=1),
}


def is_link(v: Any) -> bool:
    return isinstance(v, list) and len(v) == 2 and isinstance(v[0], str) and isinstance(v[1], int)


def check_graph(graph: dict[str, Any], info: dict[str, Any]) -> list[str]:
    """Every class exists; every input is known, typed right, within range/options; links fit."""
    problems = []
    for nid, node in graph.items():
        cls = node["class_type"]
        if cls not in info:
            problems.append(f"{nid}: unknown class {cls}")
            continue
        specs = oi.node_inputs(info, cls)
        for name, spec in specs.items():
            if spec.required and name not in node["inputs"]:
                problems.append(f"{nid}.{name}: required input missing")
        for name, value in node["inputs"].items():
            spec = specs.get(name)
            if spec is None:
                problems.append(f"{nid}.{name}: not an input of {cls}")
                continue
            if is_link(value):
                src = graph.get(value[0])
                if src is None:
                    problems.append(f"{nid}.{name}: link to missing node {value[0]}")
                    continue
                outs = info[src["class_type"]]["output"]
                if value[1] >= len(outs) or outs[value[1]] != spec.type:
                    problems.append(f"{nid}.{name}: {spec.type} linked to {outs[value[1]] if value[1] < len(outs) else '?'}")
                continue
            o = spec.options
            if spec.type == "INT":
                ok = isinstance(value, int) and o.get("min", value) <= value <= o.get("max", value)
                if ok and o.get("step", 1) > 1:
                    ok = (value - o.get("min", 0)) % o["step"] == 0 or value % o["step"] == 0
                if not ok:
                    problems.append(f"{nid}.{name}: INT {value} outside {o}")
            elif spec.type == "FLOAT":
                if not (isinstance(value, (int, float)) and o.get("min", value) <= value <= o.get("max", value)):
                    problems.append(f"{nid}.{name}: FLOAT {value} outside {o}")
            elif spec.type == "STRING":
                if not isinstance(value, str):
                    problems.append(f"{nid}.{name}: not a string")
            elif spec.type == "BOOLEAN":
                if not isinstance(value, bool):
                    problems.append(f"{nid}.{name}: not a boolean")
            elif spec.type == "COMBO":
                # The recording has no weights, so model names may be absent from their lists
                # (the one error a real server may report for these graphs).
                if name in MODEL_INPUTS:
                    if not isinstance(value, str) or not value:
                        problems.append(f"{nid}.{name}: empty model name")
                elif spec.choices is not None and value not in spec.choices:
                    problems.append(f"{nid}.{name}: {value!r} not in options")
            else:
                problems.append(f"{nid}.{name}: literal for link input {spec.type}")
    outputs = [n for n in graph.values() if info.get(n["class_type"], {}).get("output_node")]
    if not outputs:
        problems.append("no output node")
    return problems


@pytest.mark.parametrize("case", sorted(CASES))
def test_built_graph_valid_against_2025_definitions(case: str):
    graph = workflow.build(CASES[case], INFO_2025)
    assert check_graph(graph, INFO_2025) == []
    json.dumps(graph)  # API format is plain JSON


@pytest.mark.parametrize("case", ["sd15", "sdxl"])
def test_built_graph_valid_against_2024_definitions(case: str):
    assert check_graph(workflow.build(CASES[case], INFO_2024), INFO_2024) == []


def test_flux_needs_a_2025_server():
    with pytest.raises(ModelNotFound) as ei:
        workflow.build(CASES["flux"], INFO_2024)
    assert "FLUX" in ei.value.user_message


def classes(graph):
    return sorted(n["class_type"] for n in graph.values())


def node(graph, cls):
    return next(n for n in graph.values() if n["class_type"] == cls)


def test_sd15_graph_honours_request():
    g = workflow.build(CASES["sd15"], INFO_2025)
    assert classes(g) == sorted(["CheckpointLoaderSimple", "CLIPTextEncode", "CLIPTextEncode", "EmptyLatentImage",
                                 "KSampler", "VAEDecode", "SaveImage"])
    assert node(g, "CheckpointLoaderSimple")["inputs"]["ckpt_name"] == "v1-5-pruned-emaonly.safetensors"
    ks = node(g, "KSampler")["inputs"]
    assert (ks["seed"], ks["steps"], ks["cfg"], ks["sampler_name"], ks["scheduler"]) == (2**60 + 3, 25, 7.5, "euler", "normal")
    lat = node(g, "EmptyLatentImage")["inputs"]
    assert (lat["width"], lat["height"], lat["batch_size"]) == (512, 768, 2)
    texts = sorted(n["inputs"]["text"] for n in g.values() if n["class_type"] == "CLIPTextEncode")
    assert texts == ["blurry", "knight sprite"]
    assert workflow.progress_total(g) == 25


def test_sdxl_default_checkpoint():
    g = workflow.build(CASES["sdxl"], INFO_2025)
    assert node(g, "CheckpointLoaderSimple")["inputs"]["ckpt_name"] == "sd_xl_base_1.0.safetensors"
    assert node(g, "EmptyLatentImage")["inputs"]["width"] == 1024


def test_flux_schnell_graph():
    g = workflow.build(CASES["flux"], INFO_2025)
    assert {"UNETLoader", "DualCLIPLoader", "VAELoader", "ConditioningZeroOut", "EmptySD3LatentImage"} <= set(classes(g))
    ks = node(g, "KSampler")["inputs"]
    assert ks["cfg"] == 1.0 and ks["scheduler"] == "simple" and ks["steps"] == 4
    lat = node(g, "EmptySD3LatentImage")["inputs"]
    assert lat["width"] % 16 == 0 and lat["height"] % 16 == 0
    assert node(g, "DualCLIPLoader")["inputs"]["type"] == "flux"
    g2 = workflow.build(CASES["flux_ckpt"], INFO_2025)
    assert node(g2, "CheckpointLoaderSimple")["inputs"]["ckpt_name"] == "flux1-schnell-fp8.safetensors"
    assert node(g2, "KSampler")["inputs"]["cfg"] == 1.0


def test_unknown_sampler_falls_back_to_a_listed_one():
    g = workflow.build(CASES["sdxl"].replace(sampler="nope", scheduler="zzz"), INFO_2025)
    ks = node(g, "KSampler")["inputs"]
    assert ks["sampler_name"] in oi.samplers(INFO_2025) and ks["scheduler"] in oi.schedulers(INFO_2025)


def _label(graph: dict[str, Any], nid: str) -> str:
    n = graph[nid]
    title = n.get("_meta", {}).get("title")
    return f"{n['class_type']}({title})" if title else n["class_type"]


def wiring(graph: dict[str, Any]) -> set[tuple[str, str, str, int]]:
    """Every link as (to node, input, from node, output index), nodes named by class (and
    title where two share a class), so the check does not depend on the builder's ids."""
    return {(_label(graph, nid), name, _label(graph, v[0]), v[1])
            for nid, n in graph.items() for name, v in n["inputs"].items() if is_link(v)}


def test_sd15_graph_is_wired_as_comfyui_runs_it():
    g = workflow.build(CASES["sd15"], INFO_2025)
    # CheckpointLoaderSimple's outputs are MODEL, CLIP, VAE (in that order).
    assert wiring(g) == {
        ("CLIPTextEncode(Prompt)", "clip", "CheckpointLoaderSimple", 1),
        ("CLIPTextEncode(Negative prompt)", "clip", "CheckpointLoaderSimple", 1),
        ("KSampler", "model", "CheckpointLoaderSimple", 0),
        ("KSampler", "positive", "CLIPTextEncode(Prompt)", 0),
        ("KSampler", "negative", "CLIPTextEncode(Negative prompt)", 0),
        ("KSampler", "latent_image", "EmptyLatentImage", 0),
        ("VAEDecode", "samples", "KSampler", 0),
        ("VAEDecode", "vae", "CheckpointLoaderSimple", 2),
        ("SaveImage", "images", "VAEDecode", 0),
    }
    by = {_label(g, nid): n["inputs"] for nid, n in g.items()}
    assert by["CLIPTextEncode(Prompt)"]["text"] == "knight sprite"
    assert by["CLIPTextEncode(Negative prompt)"]["text"] == "blurry"
    assert by["KSampler"]["denoise"] == 1.0 and by["KSampler"]["seed"] == 2**60 + 3
    assert by["SaveImage"]["filename_prefix"] == "studio"


def test_flux_graph_is_wired_as_comfyui_runs_it():
    g = workflow.build(CASES["flux"], INFO_2025)
    # FLUX has no negative prompt: the sampler's negative is the prompt zeroed out.
    assert wiring(g) == {
        ("CLIPTextEncode(Prompt)", "clip", "DualCLIPLoader", 0),
        ("ConditioningZeroOut", "conditioning", "CLIPTextEncode(Prompt)", 0),
        ("KSampler", "model", "UNETLoader", 0),
        ("KSampler", "positive", "CLIPTextEncode(Prompt)", 0),
        ("KSampler", "negative", "ConditioningZeroOut", 0),
        ("KSampler", "latent_image", "EmptySD3LatentImage", 0),
        ("VAEDecode", "samples", "KSampler", 0),
        ("VAEDecode", "vae", "VAELoader", 0),
        ("SaveImage", "images", "VAEDecode", 0),
    }
    by = {_label(g, nid): n["inputs"] for nid, n in g.items()}
    assert by["UNETLoader"]["unet_name"] == "flux1-schnell.safetensors"
    assert (by["EmptySD3LatentImage"]["width"], by["EmptySD3LatentImage"]["height"]) == (992, 592)  # 1000x600 on 16s


def test_builder_leaves_its_inputs_alone_and_shares_nothing_between_graphs():
    info_before = json.dumps(INFO_2025, sort_keys=True)
    request = CASES["sd15"]
    first = workflow.build(request, INFO_2025)
    next(n for n in first.values() if n["class_type"] == "KSampler")["inputs"]["steps"] = 99
    second = workflow.build(request, INFO_2025)
    assert node(second, "KSampler")["inputs"]["steps"] == 25  # no state kept from the last graph
    assert json.dumps(INFO_2025, sort_keys=True) == info_before


# ---- object_info: both choice-list encodings ------------------------------------------


def test_choice_lists_in_both_formats():
    assert "euler" in oi.samplers(INFO_2025) and "karras" in oi.schedulers(INFO_2025)
    assert oi.choices(INFO_2025, "LatentBatchSeedBehavior", "seed_behavior") == ("random", "fixed")  # ["COMBO", {options}]
    assert oi.choices(INFO_2025, "UpscaleModelLoader", "model_name") == ()
    assert oi.checkpoints(INFO_2024) == ()  # 2024: [[]] with no options dict
    info = {"CheckpointLoaderSimple": {"input": {"required": {"ckpt_name": [["a.safetensors", "sd_xl_turbo.safetensors"]]}}},
            "UNETLoader": {"input": {"required": {"unet_name": ["COMBO", {"options": ["flux1-dev.safetensors"]}]}}}}
    assert oi.checkpoints(info) == ("a.safetensors", "sd_xl_turbo.safetensors")
    assert oi.diffusion_models(info) == ("flux1-dev.safetensors",)
    remote = oi.parse_spec("image", ["COMBO", {"remote": {"route": "/internal/files/output"}}])
    assert remote.type == "COMBO" and remote.choices is None


@pytest.mark.parametrize("name,family", [
    ("sd_xl_base_1.0.safetensors", "sdxl"), ("v1-5-pruned-emaonly.safetensors", "sd15"),
    ("flux1-schnell-fp8.safetensors", "flux"), ("SDXL/juggernautXL_v9.safetensors", "sdxl"),
    ("sd3_medium.safetensors", "sd3"), ("mystery.ckpt", ""),
])
def test_family_guess(name, family):
    assert oi.guess_family(name) == family


# ---- error mapping from recorded bodies -----------------------------------------------


def test_missing_checkpoint_only_is_missing_models():
    body = RECORDED["validation"]["checkpoint_not_found_txt2img"]["body"]
    err = validation_error(body)
    assert isinstance(err, MissingModels)
    assert "is not on the server" in err.user_message and err.missing


def test_missing_checkpoint_plus_bad_inputs_is_validation_failed():
    body = RECORDED["validation"]["checkpoint_not_found_plus_sampler_and_steps"]["body"]
    err = validation_error(body)
    assert isinstance(err, ValidationFailed)
    msg = err.user_message
    assert "checkpoint does_not_exist.safetensors is not on the server" in msg
    assert "KSampler (node 5): steps is too small" in msg and "'nope' is not a valid choice for sampler_name" in msg


@pytest.mark.parametrize("key", ["missing_node_class", "value_not_in_list", "no_output_node", "bad_linked_input",
                                 "missing_required_input", "invalid_json_body"])
def test_every_recorded_validation_body_reads_well(key):
    rec = RECORDED["validation"][key]
    err = validation_error(rec["body"], status=rec["status"])
    assert isinstance(err, ValidationFailed) and err.problems
    assert "{" not in err.user_message  # no raw JSON for the user


def test_recorded_execution_error_and_oom():
    err = execution_error(RECORDED["execution_error"])
    assert isinstance(err, GenerationFailed) and "LoadImage" in err.user_message
    oom = dict(RECORDED["execution_error"], exception_type="torch.OutOfMemoryError",
               exception_message="Allocation on device 0 would exceed allowed memory. (out of memory)")
    assert isinstance(execution_error(oom), OutOfVram)
