"""What a service or server does not take, said before Generate (studio_core.input_support)."""

from __future__ import annotations

import copy
import hashlib

from studio_core.input_support import inputs_problem
from studio_core.inputs import ControlImage, ImageInputs, InitImage, LoraSpec, Mask, ReferenceImage
from studio_core.models import GenerationRequest, Workflow
from studio_core.providers.cloud import catalog
from tests.core.test_comfy_inputs_graphs import IPADAPTER_PACK, SD15, server

D = hashlib.sha256(b"x").hexdigest()


def test_comfy_names_a_missing_lora_controlnet_and_reference_pack():
    info = server("0.3.64", loras=("pixel.safetensors",), controlnets=("control_v11p_sd15_openpose.pth",), uploads=())
    ok = SD15.replace(inputs=ImageInputs(init=InitImage(D), mask=Mask(D), loras=(LoraSpec("pixel.safetensors"),),
                                         controls=(ControlImage(D, "pose"),)))
    assert inputs_problem(ok, object_info=info) == ""
    lora = SD15.replace(inputs=ImageInputs(loras=(LoraSpec("gone.safetensors"),)))
    assert "gone.safetensors is not on this ComfyUI server" in inputs_problem(lora, object_info=info)
    depth = SD15.replace(inputs=ImageInputs(controls=(ControlImage(D, "depth"),)))
    assert "no depth ControlNet" in inputs_problem(depth, object_info=info)
    refs = SD15.replace(inputs=ImageInputs(references=(ReferenceImage(D),)))
    assert "ComfyUI_IPAdapter_plus" in inputs_problem(refs, object_info=info)
    with_pack = copy.deepcopy(info)
    with_pack.update(copy.deepcopy(IPADAPTER_PACK))
    assert inputs_problem(refs, object_info=with_pack) == ""
    # unknown server: nothing is claimed (the job says what is wrong)
    assert inputs_problem(refs, object_info=None) == ""
    # a custom workflow is sent as it is
    custom = refs.replace(workflow=Workflow.of('{"1": {"class_type": "X", "inputs": {}}}'))
    assert "custom ComfyUI workflow" in inputs_problem(custom, object_info=info)


def test_cloud_model_that_takes_no_init_image_says_so_and_no_inputs_is_fine():
    cat = catalog.load()
    plain = GenerationRequest("a knight", service="huggingface")
    assert inputs_problem(plain, catalog=cat) == ""
    edit = plain.replace(inputs=ImageInputs(init=InitImage(D)))
    text = inputs_problem(edit, catalog=cat)
    assert "does not take an init image" in text
    assert inputs_problem(edit.replace(service="openai"), catalog=cat) == ""
