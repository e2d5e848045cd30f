"""Graphs with image inputs, validated against recorded node definitions of both servers.

The definitions are the recorded subsets (tests/data/comfy_object_info_*.json) plus the
image-input nodes (comfy_object_info_inputs_*.json: from raw/GET_object_info_full.json of
0.3.64 and from the 2024 test server's /object_info). File lists are filled in per test the
way a server with those files would list them.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import pytest

from studio_core.errors import MissingModels, ModelNotFound
from studio_core.inputs import ControlImage, ImageInputs, InitImage, LoraSpec, Mask, ReferenceImage
from studio_core.models import GenerationRequest
from studio_core.providers.comfy import input_nodes, workflow
from tests.core.test_comfy_workflow import INFO_2024, INFO_2025, check_graph, classes, node, wiring

DATA = Path(__file__).parent.parent / "data"
BASE = {"0.3.64": INFO_2025, "2024": INFO_2024}
VERSIONS = sorted(BASE)

INIT = hashlib.sha256(b"init").hexdigest()
MASK = hashlib.sha256(b"mask").hexdigest()
POSE = hashlib.sha256(b"pose").hexdigest()
REF = hashlib.sha256(b"ref").hexdigest()
SD15 = GenerationRequest(prompt="knight", model="v1-5-pruned-emaonly.safetensors", width=512, height=512, steps=20,
                         seed=5)


def server(version: str, *, loras=(), controlnets=(), uploads=(INIT, MASK, POSE, REF), extra=None) -> dict:
    """Object info of a server of ``version`` holding these files (deep copy, base untouched)."""
    info = copy.deepcopy(BASE[version])
    info.update(copy.deepcopy(json.loads((DATA / f"comfy_object_info_inputs_{version}.json").read_text())))
    info.update(copy.deepcopy(extra or {}))
    info["LoraLoader"]["input"]["required"]["lora_name"][0] = list(loras)
    info["ControlNetLoader"]["input"]["required"]["control_net_name"][0] = list(controlnets)
    for cls in ("LoadImage", "LoadImageMask"):
        info[cls]["input"]["required"]["image"][0] += [input_nodes.input_filename(d) for d in uploads]
    return info


def built(version: str, inputs: ImageInputs, request: GenerationRequest = SD15, **files) -> dict:
    info = server(version, **files)
    graph = workflow.build(request, info, inputs)
    assert check_graph(graph, info) == []
    json.dumps(graph)
    return graph


@pytest.mark.parametrize("version", VERSIONS)
def test_img2img_encodes_the_uploaded_image_and_denoises_less_than_one(version):
    g = built(version, ImageInputs(init=InitImage(INIT, 0.45)))
    assert wiring(g) >= {
        ("ImageScale", "image", "LoadImage", 0),
        ("VAEEncode", "pixels", "ImageScale", 0),
        ("VAEEncode", "vae", "CheckpointLoaderSimple", 2),
        ("KSampler", "latent_image", "VAEEncode", 0),
    }
    assert "EmptyLatentImage" not in classes(g)
    assert node(g, "LoadImage")["inputs"]["image"] == f"studio-{INIT}.png"
    assert node(g, "KSampler")["inputs"]["denoise"] == 0.45
    scale = node(g, "ImageScale")["inputs"]
    assert (scale["width"], scale["height"], scale["crop"]) == (512, 512, "center")
    assert input_nodes.images_of(g) == (f"studio-{INIT}.png",)


def test_img2img_batch_repeats_the_encoded_latent():
    g = built("0.3.64", ImageInputs(init=InitImage(INIT)), SD15.replace(batch=3))
    assert ("RepeatLatentBatch", "samples", "VAEEncode", 0) in wiring(g)
    assert node(g, "RepeatLatentBatch")["inputs"]["amount"] == 3


@pytest.mark.parametrize("version", VERSIONS)
def test_inpainting_uses_inpaint_model_conditioning_where_the_server_has_it(version):
    g = built(version, ImageInputs(init=InitImage(INIT, 0.8), mask=Mask(MASK, grow=4)))
    imc = node(g, "InpaintModelConditioning")["inputs"]
    # 0.3.64 has the noise_mask switch, the 2024 server always masks the noise and has no such input.
    assert ("noise_mask" in imc) is (version == "0.3.64")
    assert wiring(g) >= {
        ("MaskToImage", "mask", "LoadImageMask", 0),
        ("ImageToMask", "image", "ImageScale", 0),
        ("GrowMask", "mask", "ImageToMask", 0),
        ("InpaintModelConditioning", "mask", "GrowMask", 0),
        ("InpaintModelConditioning", "positive", "CLIPTextEncode(Prompt)", 0),
        ("KSampler", "positive", "InpaintModelConditioning", 0),
        ("KSampler", "negative", "InpaintModelConditioning", 1),
        ("KSampler", "latent_image", "InpaintModelConditioning", 2),
    }
    assert node(g, "LoadImageMask")["inputs"] == {"image": f"studio-{MASK}.png", "channel": "red"}
    assert node(g, "KSampler")["inputs"]["denoise"] == 0.8
    assert input_nodes.images_of(g) == (f"studio-{INIT}.png", f"studio-{MASK}.png")


def test_inpainting_without_inpaint_model_conditioning():
    inputs = ImageInputs(init=InitImage(INIT, 0.7), mask=Mask(MASK, grow=6))
    info = server("2024")
    del info["InpaintModelConditioning"]
    g = workflow.build(SD15, info, inputs)
    assert check_graph(g, info) == []
    assert ("SetLatentNoiseMask", "samples", "VAEEncode", 0) in wiring(g)
    assert ("KSampler", "latent_image", "SetLatentNoiseMask", 0) in wiring(g)
    assert node(g, "KSampler")["inputs"]["denoise"] == 0.7
    # An inpainting checkpoint fills the masked area from scratch: VAEEncodeForInpaint, denoise 1.
    g2 = workflow.build(SD15.replace(model="sd-v1-5-inpainting.safetensors"), info, inputs)
    assert check_graph(g2, info) == []
    assert node(g2, "VAEEncodeForInpaint")["inputs"]["grow_mask_by"] == 6
    assert node(g2, "KSampler")["inputs"]["denoise"] == 1.0


@pytest.mark.parametrize("version", VERSIONS)
def test_lora_chain_feeds_sampler_and_both_prompts(version):
    loras = (LoraSpec("pixel-art.safetensors", 0.8, 0.6), LoraSpec("off.safetensors", enabled=False),
             LoraSpec("chibi.safetensors", 1.2, 1.0))
    g = built(version, ImageInputs(loras=loras), loras=("pixel-art.safetensors", "chibi.safetensors"))
    chain = [n["inputs"] for n in g.values() if n["class_type"] == "LoraLoader"]
    assert [(c["lora_name"], c["strength_model"], c["strength_clip"]) for c in chain] == [
        ("pixel-art.safetensors", 0.8, 0.6), ("chibi.safetensors", 1.2, 1.0)]
    ids = [nid for nid, n in g.items() if n["class_type"] == "LoraLoader"]
    assert g[ids[0]]["inputs"]["model"][0] == next(k for k, n in g.items() if n["class_type"] == "CheckpointLoaderSimple")
    assert g[ids[1]]["inputs"]["model"] == [ids[0], 0] and g[ids[1]]["inputs"]["clip"] == [ids[0], 1]
    assert node(g, "KSampler")["inputs"]["model"] == [ids[1], 0]
    assert all(n["inputs"]["clip"] == [ids[1], 1] for n in g.values() if n["class_type"] == "CLIPTextEncode")


def test_lora_missing_on_the_server_is_named_before_anything_is_sent():
    with pytest.raises(MissingModels) as ei:
        workflow.build(SD15, server("0.3.64", loras=("other.safetensors",)),
                       ImageInputs(loras=(LoraSpec("pixel-art.safetensors"),)))
    assert ei.value.missing == ("pixel-art.safetensors",)
    assert ei.value.user_message.startswith(
        "The LoRA pixel-art.safetensors is not on this ComfyUI server (it has: other.safetensors).")


@pytest.mark.parametrize("version", VERSIONS)
def test_pose_controlnet_applies_to_both_conditionings(version):
    cn = ("control_v11f1p_sd15_depth.pth", "control_v11p_sd15_openpose.pth")
    g = built(version, ImageInputs(controls=(ControlImage(POSE, "pose", 0.9, 0.0, 0.8),)), controlnets=cn)
    assert node(g, "ControlNetLoader")["inputs"]["control_net_name"] == "control_v11p_sd15_openpose.pth"
    apply = node(g, "ControlNetApplyAdvanced")["inputs"]
    assert (apply["strength"], apply["start_percent"], apply["end_percent"]) == (0.9, 0.0, 0.8)
    # The optional vae input exists on 0.3.64 only; a 2024 server would refuse it.
    assert ("vae" in apply) is (version == "0.3.64")
    assert wiring(g) >= {
        ("ControlNetApplyAdvanced", "positive", "CLIPTextEncode(Prompt)", 0),
        ("ControlNetApplyAdvanced", "negative", "CLIPTextEncode(Negative prompt)", 0),
        ("ControlNetApplyAdvanced", "image", "LoadImage", 0),
        ("KSampler", "positive", "ControlNetApplyAdvanced", 0),
        ("KSampler", "negative", "ControlNetApplyAdvanced", 1),
    }


def test_one_image_used_twice_is_loaded_once_and_everything_combines():
    inputs = ImageInputs(init=InitImage(POSE), mask=Mask(MASK), controls=(ControlImage(POSE, "pose"),),
                         loras=(LoraSpec("pixel-art.safetensors"),))
    g = built("0.3.64", inputs, loras=("pixel-art.safetensors",), controlnets=("openpose.safetensors",))
    assert classes(g).count("LoadImage") == 1
    # ControlNet conditions first, then inpainting conditioning wraps it.
    assert ("InpaintModelConditioning", "positive", "ControlNetApplyAdvanced", 0) in wiring(g)


def test_no_controlnet_of_that_type_says_which_is_missing():
    with pytest.raises(ModelNotFound) as ei:
        workflow.build(SD15, server("2024", controlnets=("control_v11p_sd15_canny.pth",)),
                       ImageInputs(controls=(ControlImage(POSE, "pose"),)))
    assert "has no pose ControlNet" in ei.value.user_message and "control_v11p_sd15_openpose" in ei.value.user_message
    with pytest.raises(MissingModels) as ei:
        workflow.build(SD15, server("2024", controlnets=("a.pth",)),
                       ImageInputs(controls=(ControlImage(POSE, "depth", model="gone.pth"),)))
    assert ei.value.missing == ("gone.pth",)


def test_flux_kontext_reference_on_a_2025_server():
    req = GenerationRequest(prompt="same knight, walking", model="flux1-kontext-dev.safetensors", seed=1, steps=4,
                            width=512, height=512, options={"loader": "unet"})
    g = built("0.3.64", ImageInputs(references=(ReferenceImage(REF),)), req)
    assert wiring(g) >= {
        ("FluxKontextImageScale", "image", "LoadImage", 0),
        ("VAEEncode", "pixels", "FluxKontextImageScale", 0),
        ("ReferenceLatent", "latent", "VAEEncode", 0),
        ("ReferenceLatent", "conditioning", "CLIPTextEncode(Prompt)", 0),
        ("FluxGuidance", "conditioning", "ReferenceLatent", 0),
        ("KSampler", "positive", "FluxGuidance", 0),
    }


@pytest.mark.parametrize("version", VERSIONS)
def test_references_without_kontext_or_ipadapter_name_the_pack(version):
    with pytest.raises(ModelNotFound) as ei:
        workflow.build(SD15, server(version), ImageInputs(references=(ReferenceImage(REF),)))
    assert "ComfyUI_IPAdapter_plus node pack" in ei.value.user_message


# The pack's two nodes as its INPUT_TYPES declare them (cubiq/ComfyUI_IPAdapter_plus); no
# recording of a server with the pack exists here, so this fragment stands in for one.
IPADAPTER_PACK = {
    "IPAdapterUnifiedLoader": {
        "input": {"required": {"model": ["MODEL"], "preset": [["LIGHT - SD1.5 only (low strength)",
                                                               "STANDARD (medium strength)", "PLUS (high strength)"]]},
                  "optional": {"ipadapter": ["IPADAPTER"]}},
        "output": ["MODEL", "IPADAPTER"], "output_node": False},
    "IPAdapterAdvanced": {
        "input": {"required": {"model": ["MODEL"], "ipadapter": ["IPADAPTER"], "image": ["IMAGE"],
                               "weight": ["FLOAT", {"default": 1.0, "min": -1, "max": 5, "step": 0.05}],
                               "weight_type": [["linear", "ease in", "style transfer", "composition"]],
                               "combine_embeds": [["concat", "add", "subtract", "average", "norm average"]],
                               "start_at": ["FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.001}],
                               "end_at": ["FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.001}],
                               "embeds_scaling": [["V only", "K+V", "K+V w/ C penalty", "K+mean(V) w/ C penalty"]]},
                  "optional": {"image_negative": ["IMAGE"], "attn_mask": ["MASK"], "clip_vision": ["CLIP_VISION"]}},
        "output": ["MODEL"], "output_node": False},
}


@pytest.mark.parametrize("version", VERSIONS)
def test_ipadapter_references_when_the_pack_is_there(version):
    refs = (ReferenceImage(REF, 0.7, "character"), ReferenceImage(INIT, 0.5, "style"))
    g = built(version, ImageInputs(references=refs), extra=IPADAPTER_PACK)
    ids = [nid for nid, n in g.items() if n["class_type"] == "IPAdapterAdvanced"]
    assert [g[i]["inputs"]["weight"] for i in ids] == [0.7, 0.5]
    assert [g[i]["inputs"]["weight_type"] for i in ids] == ["linear", "style transfer"]
    assert g[ids[1]]["inputs"]["model"] == [ids[0], 0] and node(g, "KSampler")["inputs"]["model"] == [ids[1], 0]
    assert ("IPAdapterUnifiedLoader", "model", "CheckpointLoaderSimple", 0) in wiring(g)


def test_no_inputs_gives_the_plain_graph():
    assert workflow.build(SD15, INFO_2025, ImageInputs()) == workflow.build(SD15, INFO_2025)
