"""The built-in graph on a RunPod endpoint (worker-comfyui), image inputs inline.

Shapes as in test_pool_runpod.py: the ``POST /run`` body ``input.workflow`` and
``input.images[{name, image}]`` (base64) from worker-comfyui README.md "Input" (the worker
uploads each image to ComfyUI's input folder under ``name``, which LoadImage then loads);
the 10 MB ``/run`` limit from RunPod's send-requests.mdx (scaleout.md 1.3).
"""

from __future__ import annotations

import base64
import hashlib
import io
import os

import pytest
from PIL import Image, ImageDraw

from studio_core.input_store import InputStore
from studio_core.inputs import ControlImage, ImageInputs, InitImage, LoraSpec
from studio_core.models import GenerationRequest, JobImage
from studio_core.pool import runpod_graph
from studio_core.pool.errors import NoCapableServer, PayloadTooLarge
from studio_core.pool.provider import PoolProvider
from studio_core.pool.runpod import RunPodProvider
from studio_core.pool.servers import runpod_endpoint
from studio_core.providers.comfy import input_nodes
from tests.cloud_servers import LoopbackServer, RecordingSleep, Reply, collect, of_type, png_bytes
from tests.conftest import run_async
from tests.core.test_comfy_workflow import check_graph
from tests.core.test_pool_runpod import EP, KEY, b64_image, completed, queued, status

CKPT = "v1-5-pruned-emaonly.safetensors"
LORA = "pixel-art-xl.safetensors"
POSE_NET = "control_v11p_sd15_openpose.pth"
MODELS = (CKPT, LORA, POSE_NET)
HEALTH = Reply(200, {"jobs": {"inQueue": 0, "inProgress": 0}, "workers": {"idle": 1, "running": 0}})


def spec(api: LoopbackServer):
    return runpod_endpoint("rp", "RunPod A40", api.url + EP, workers=1, models=MODELS)


def picture(colour, *, pose: bool = False) -> bytes:
    img = Image.new("RGB", (64, 64), colour)
    if pose:
        ImageDraw.Draw(img).line((32, 10, 32, 40), fill=(255, 0, 0), width=3)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def store(tmp_path) -> InputStore:
    return InputStore.in_data_folder(tmp_path / "data")


def sent(api: LoopbackServer) -> dict:
    (run,) = api.by_route(EP + "/run")
    return run.json()["input"]


def test_built_in_graph_with_init_pose_and_lora_is_sent_with_its_images_inline(store):
    init = store.add_init(picture((180, 60, 40)), target=(64, 64))
    pose = store.add_image(picture((0, 0, 0), pose=True), what="pose image")
    inputs = ImageInputs(init=InitImage(init.digest, 0.6), controls=(ControlImage(pose.digest, "pose", 0.8),),
                         loras=(LoraSpec(LORA, 0.7, 0.5),))
    request = GenerationRequest(prompt="knight", model=CKPT, width=64, height=64, steps=3, seed=9, inputs=inputs)
    with LoopbackServer() as api:
        api.route("POST", EP + "/run", queued())
        api.route("GET", EP + r"/status/job-7f3a", completed(b64_image()))
        prov = RunPodProvider(spec(api), api_key=KEY, sleep=RecordingSleep(), input_store=store)
        events = run_async(collect(prov, request))
        body = sent(api)
    graph = body["workflow"]
    names = {input_nodes.input_filename(init.digest), input_nodes.input_filename(pose.digest)}
    loaded = {n["inputs"]["image"] for n in graph.values() if n["class_type"] == "LoadImage"}
    assert loaded == names and {i["name"] for i in body["images"]} == names
    for item in body["images"]:  # the very bytes of the store, under their hash
        digest = item["name"][len(input_nodes.UPLOAD_PREFIX):-len(".png")]
        assert hashlib.sha256(base64.b64decode(item["image"])).hexdigest() == digest
    by_class = {n["class_type"]: n["inputs"] for n in graph.values()}
    assert by_class["CheckpointLoaderSimple"]["ckpt_name"] == CKPT
    assert (by_class["LoraLoader"]["lora_name"], by_class["LoraLoader"]["strength_model"]) == (LORA, 0.7)
    assert by_class["ControlNetLoader"]["control_net_name"] == POSE_NET
    assert (by_class["KSampler"]["denoise"], by_class["KSampler"]["seed"]) == (0.6, 9)
    # Valid against the recorded node definitions, with the endpoint's files and the uploaded images.
    info = runpod_graph.endpoint_info(MODELS)
    info["LoadImage"]["input"]["required"]["image"][0] = sorted(names)
    assert check_graph(graph, info) == []
    (img,) = of_type(events, JobImage)
    assert img.seed == 9 and ImageInputs.from_dict(dict(img.info)["inputs"]) == inputs


def test_built_in_graph_over_10_mb_with_its_images_is_refused_before_sending(store):
    noise = Image.frombytes("RGB", (1800, 1800), os.urandom(1800 * 1800 * 3))  # a PNG of ~9.7 MB, 13 MB as base64
    buf = io.BytesIO()
    noise.save(buf, "PNG", compress_level=1)
    init = store.add_init(buf.getvalue(), target=(1024, 1024))
    request = GenerationRequest(prompt="knight", model=CKPT, width=1024, height=1024, seed=1,
                                inputs=ImageInputs(init=InitImage(init.digest, 0.5)))
    with LoopbackServer() as api:
        api.route("POST", EP + "/run", queued())
        prov = RunPodProvider(spec(api), api_key=KEY, sleep=RecordingSleep(), input_store=store)
        with pytest.raises(PayloadTooLarge) as err:
            run_async(collect(prov, request))
        assert api.requests == []
    assert "at most 10 MB" in err.value.user_message and "Nothing was sent" in err.value.user_message


def test_the_pool_sends_a_built_in_job_to_a_runpod_endpoint_with_the_stores_images(store):
    init = store.add_init(picture((20, 200, 90)), target=(64, 64))
    request = GenerationRequest(prompt="knight", model=CKPT, width=64, height=64, steps=2, seed=5,
                                inputs=ImageInputs(init=InitImage(init.digest, 0.4)))

    async def main(api):
        p = PoolProvider([spec(api)], secret=lambda name: KEY, allow_paid=True, poll_s=60)
        p.input_store = store  # as the service registry hands it over
        try:
            events = [e async for e in p.generate(request, job_id="j1")]
            with pytest.raises(NoCapableServer) as err:
                lora = request.replace(inputs=ImageInputs(loras=(LoraSpec("not-on-the-endpoint.safetensors"),)))
                [e async for e in p.generate(lora, job_id="j2")]
        finally:
            await p.aclose()
        return events, err.value

    with LoopbackServer() as api:
        api.route("GET", EP + "/health", HEALTH, HEALTH, HEALTH)
        api.route("POST", EP + "/run", queued())
        api.route("GET", EP + r"/status/job-7f3a", status("IN_PROGRESS"), completed(b64_image()))
        events, missing = run_async(main(api))
        body = sent(api)  # one /run: the job with a LoRA the endpoint lacks was never sent
    assert [i["name"] for i in body["images"]] == [input_nodes.input_filename(init.digest)]
    assert base64.b64decode(body["images"][0]["image"]) == store.read(init.digest)
    (img,) = of_type(events, JobImage)
    assert img.data == png_bytes() and dict(img.info)["server_name"] == "RunPod A40"
    assert missing.missing == ("not-on-the-endpoint.safetensors",)
    assert "not-on-the-endpoint.safetensors" in missing.user_message


def test_the_endpoint_nodes_cover_every_node_the_builder_adds():
    import re
    from pathlib import Path

    import studio_core.providers.comfy.input_nodes as nodes_mod
    import studio_core.providers.comfy.workflow as wf_mod

    src = Path(wf_mod.__file__).read_text() + Path(nodes_mod.__file__).read_text()
    added = set(re.findall(r'w\.add\(\s*"([A-Za-z0-9]+)"', src))
    pack_nodes = {"IPAdapterUnifiedLoader"}  # from a node pack, never on a plain worker-comfyui
    assert added and added - pack_nodes <= set(runpod_graph.endpoint_info(()))
