"""User API-format workflows: parsing, finding the inputs, patching the request in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio_core.errors import WorkflowError
from studio_core.models import GenerationRequest
from studio_core.providers.comfy import custom_workflow as cw
from studio_core.providers.comfy.provider import ComfyProvider
from tests.conftest import run_async

DATA = Path(__file__).parent.parent / "data"
SDXL = (DATA / "comfy_workflow_api_sdxl.json").read_text()

FLUX = {
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["30", 1]}},
    "35": {"class_type": "FluxGuidance", "inputs": {"guidance": 3.5, "conditioning": ["6", 0]}},
    "33": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["30", 1]}},
    "31": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 4, "positive": ["35", 0], "negative": ["33", 0],
                                                "model": ["30", 0], "latent_image": ["27", 0]}},
    "27": {"class_type": "EmptySD3LatentImage", "inputs": {"width": 1024, "height": 1024, "batch_size": 1}},
    "30": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "flux1-dev-fp8.safetensors"}},
    "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "x"}},
}


def test_finds_inputs_of_the_default_workflow():
    m = cw.find_inputs(cw.parse(SDXL))
    assert m == cw.WorkflowMap(prompt=("6", "text"), negative=("7", "text"), seed=("3", "seed"),
                               width=("5", "width"), height=("5", "height"), steps=("3", "steps"))


def test_follows_conditioning_through_other_nodes():
    m = cw.find_inputs(FLUX)
    assert m.prompt == ("6", "text") and m.negative == ("33", "text") and m.width == ("27", "width")


def test_apply_patches_a_copy():
    graph = cw.parse(SDXL)
    m = cw.find_inputs(graph)
    out = cw.apply(graph, m, {"prompt": "slime", "negative": "blur", "seed": 5, "width": 512, "height": 256, "steps": 9})
    assert out["6"]["inputs"]["text"] == "slime" and out["7"]["inputs"]["text"] == "blur"
    assert (out["3"]["inputs"]["seed"], out["3"]["inputs"]["steps"]) == (5, 9)
    assert (out["5"]["inputs"]["width"], out["5"]["inputs"]["height"]) == (512, 256)
    assert graph["6"]["inputs"]["text"].startswith("beautiful")  # original untouched


def test_user_mapping_overrides_guess():
    graph = cw.parse(SDXL)
    m = cw.find_inputs(graph).merged(cw.WorkflowMap.from_value('{"prompt": "7.text", "negative": ["6", "text"]}'))
    assert m.prompt == ("7", "text") and m.negative == ("6", "text") and m.seed == ("3", "seed")
    assert cw.WorkflowMap.from_value(m.to_dict()) == m


def test_candidates_list_literal_inputs_for_the_picker():
    cands = cw.candidates(cw.parse(SDXL))
    assert ("6", "text", "CLIP Text Encode (Prompt)", "str") in cands
    assert all(not isinstance(v, list) for _, v, _, _ in cands)


@pytest.mark.parametrize("text,needle", [
    ((DATA / "comfy_workflow_ui.json").read_text(), "editor (UI) format"),
    ("{broken", "not valid JSON"),
    ("[]", "no ComfyUI nodes"),
    ('{"1": {"inputs": {}}}', "not in ComfyUI's API format"),
])
def test_bad_workflows_explain_how_to_export(text, needle):
    with pytest.raises(WorkflowError) as ei:
        cw.parse(text)
    assert needle in ei.value.user_message and "Export (API)" in ei.value.user_message
    assert "Save (API Format)" in ei.value.user_message


def test_post_body_wrapper_is_accepted():
    assert cw.parse(json.dumps({"prompt": json.loads(SDXL), "client_id": "x"})) == cw.parse(SDXL)


def test_provider_prepare_uses_workflow_and_mapping():
    prov = ComfyProvider("http://127.0.0.1:1")
    req = GenerationRequest(prompt="orc", negative_prompt="", width=640, height=480, steps=12, seed=77,
                            options={"workflow": SDXL, "workflow_map": {"negative": "6.text", "prompt": "7.text"}})
    graph, seed = run_async(prov.prepare(req))
    run_async(prov.aclose())
    assert seed == 77 and graph["7"]["inputs"]["text"] == "orc" and graph["6"]["inputs"]["text"] == ""
    assert graph["5"]["inputs"]["width"] == 640 and graph["3"]["inputs"]["steps"] == 12


def test_load_file(tmp_path: Path):
    assert json.loads(cw.load_file(DATA / "comfy_workflow_api_sdxl.json"))["3"]["class_type"] == "KSampler"
    with pytest.raises(WorkflowError, match="could not be read|cannot read"):
        cw.load_file(tmp_path / "missing.json")
    with pytest.raises(WorkflowError):
        cw.load_file(DATA / "comfy_workflow_ui.json")



def test_explicit_not_used_in_the_map_leaves_the_input_alone():
    import asyncio
    import json as _json
    from pathlib import Path as _Path

    from studio_core.models import GenerationRequest
    from studio_core.providers.comfy import custom_workflow as cw
    from studio_core.providers.comfy.provider import ComfyProvider

    text = (_Path(__file__).resolve().parents[1] / "data" / "comfy_workflow_api_sdxl.json").read_text()
    assert cw.find_inputs(cw.parse(text)).negative is not None, "fixture should have a negative prompt input"
    base = GenerationRequest(prompt="a slime", negative_prompt="NEG-WORDS").with_options(workflow=text)

    async def graph_for(req):
        prov = ComfyProvider("http://127.0.0.1:9")
        try:
            graph, _seed = await prov.prepare(req)
        finally:
            await prov.aclose()
        return _json.dumps(graph)

    assert "NEG-WORDS" in asyncio.run(graph_for(base))
    used = asyncio.run(graph_for(base.with_options(workflow_map={"negative": None})))
    assert "NEG-WORDS" not in used and "a slime" in used
