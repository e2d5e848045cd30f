"""Real sampling on the CPU test server with random-weight SD 1.5-shaped models.

tools/comfy_test_models.py makes (once, cached) a checkpoint, a LoRA and a pose ControlNet
with random weights; the images are noise, but loading, LoRA patching, ControlNet,
img2img/inpainting latents, uploads, progress, previews and saved metadata are the server's
and the app's real code. 64×64, 2 steps; few runs, because each costs seconds on 2 cores.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import sys
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageDraw

from studio_core.input_store import InputStore
from studio_core.inputs import ControlImage, ImageInputs, InitImage, LoraSpec, Mask
from studio_core.models import GenerationRequest, JobImage, JobProgress, JobStarted
from studio_core.providers.comfy.input_nodes import input_filename
from studio_core.providers.comfy.provider import ComfyProvider
from studio_core.storage.images import check_image_bytes, read_metadata, save_generated_image
from tests.conftest import run_async

pytestmark = pytest.mark.comfy_server
ROOT = Path(__file__).resolve().parents[2]


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, mod)
    spec.loader.exec_module(mod)
    return mod


_SERVER = _tool("comfy_test_server")
_MODELS = _tool("comfy_test_models")
_CACHE = str(_SERVER.cache_root())  # before the isolation fixture moves XDG_CACHE_HOME


@pytest.fixture(scope="module")
def comfy_url(tmp_path_factory: pytest.TempPathFactory):
    log = tmp_path_factory.mktemp("comfy-sampling") / "server.log"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STUDIO_TEST_CACHE", _CACHE)
        # latent2rgb: previews without a TAESD download, so binary preview frames really come.
        # A fresh input folder: the cached server's own keeps every upload of earlier runs, and
        # "uploaded once" must not find last run's images already there.
        inputs = tmp_path_factory.mktemp("comfy-input")
        proc, url = _SERVER.start(log_path=log, models=True, extra_args=("--preview-method", "latent2rgb",
                                                                         "--input-directory", str(inputs)))
    try:
        yield url
    finally:
        _SERVER.stop(proc)


@pytest.fixture
def store(tmp_path: Path) -> InputStore:
    return InputStore.in_data_folder(tmp_path / "data")


def request(seed: int = 1, **kw) -> GenerationRequest:
    return GenerationRequest(prompt="random-weight knight", model=_MODELS.CHECKPOINT, width=64, height=64,
                             steps=2, cfg=5.0, seed=seed, **kw)


def picture(colour, *, shape: str = "") -> bytes:
    img = Image.new("RGB", (64, 64), colour)
    draw = ImageDraw.Draw(img)
    if shape == "pose":  # a stick figure in OpenPose colours
        draw.line((32, 10, 32, 40), fill=(255, 0, 0), width=3)
        draw.line((32, 40, 20, 60), fill=(0, 255, 0), width=3)
        draw.line((32, 40, 44, 60), fill=(0, 0, 255), width=3)
    elif shape == "mask":
        draw.rectangle((16, 16, 48, 48), fill=(255, 255, 255))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def run(url: str, req: GenerationRequest, inputs: ImageInputs | None, store: InputStore, *, job_id: str,
        log: list | None = None):
    async def main():
        prov = ComfyProvider(url, input_store=store)
        if log is not None:
            async def record(r):
                log.append((r.method, r.url.path))
            prov.client._http.event_hooks["request"].append(record)
        try:
            return [e async for e in prov.generate(req, job_id=job_id, inputs=inputs)]
        finally:
            await prov.aclose()

    return run_async(main(), timeout=240)


def test_txt2img_with_lora_has_real_progress_previews_and_saved_metadata(comfy_url, store, tmp_path):
    inputs = ImageInputs(loras=(LoraSpec(_MODELS.LORA, 0.8, 0.7),))
    events = run(comfy_url, request(), inputs, store, job_id="t2i")
    assert isinstance(events[0], JobStarted)
    steps = [(e.step, e.total) for e in events if isinstance(e, JobProgress) and e.preview is None]
    assert steps and steps[-1] == (2, 2) and all(total == 2 for _, total in steps)
    previews = [e for e in events if isinstance(e, JobProgress) and e.preview]
    assert previews, "the server sent no binary preview"
    assert Image.open(io.BytesIO(previews[0].preview)).size[0] > 0
    images = [e for e in events if isinstance(e, JobImage)]
    assert len(images) == 1 and check_image_bytes(images[0].data).size == (64, 64)
    req = request()
    saved = save_generated_image(images[0].data, req, folder=tmp_path / "images", seed=images[0].seed,
                                 info=dict(images[0].info), extra_text=dict(images[0].extra_text))
    meta = read_metadata(saved.path)
    graph = json.loads(meta.comfy_prompt)
    lora = next(n for n in graph.values() if n["class_type"] == "LoraLoader")["inputs"]
    assert (lora["lora_name"], lora["strength_model"]) == (_MODELS.LORA, 0.8)
    assert ImageInputs.from_dict(dict(meta.info)["inputs"]) == inputs


def test_img2img_with_pose_controlnet_uploads_each_input_once(comfy_url, store):
    init = store.add_init(picture((180, 60, 40)), target=(64, 64))
    pose = store.add_image(picture((0, 0, 0), shape="pose"), what="pose image")
    inputs = ImageInputs(init=InitImage(init.digest, 0.6), controls=(ControlImage(pose.digest, "pose", 0.8),))
    first: list = []
    events = run(comfy_url, request(seed=3), inputs, store, job_id="i2i", log=first)
    images = [e for e in events if isinstance(e, JobImage)]
    assert len(images) == 1 and check_image_bytes(images[0].data).size == (64, 64)
    assert first.count(("POST", "/upload/image")) == 2
    graph = json.loads(dict(images[0].extra_text)["prompt"])
    assert {n["class_type"] for n in graph.values()} >= {"LoadImage", "VAEEncode", "ControlNetLoader",
                                                          "ControlNetApplyAdvanced"}
    assert next(n for n in graph.values() if n["class_type"] == "KSampler")["inputs"]["denoise"] == 0.6
    # The server holds the very bytes of the store, under their hash.
    for stored in (init, pose):
        r = httpx.get(comfy_url + "/view", params={"filename": input_filename(stored.digest), "type": "input"})
        assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == stored.digest
    # A new provider (another session, same server): a HEAD finds them, nothing is uploaded again.
    again: list = []
    run(comfy_url, request(seed=4), inputs, store, job_id="i2i-again", log=again)
    assert ("HEAD", "/view") in again and ("POST", "/upload/image") not in again


def test_inpainting_with_a_mask_runs(comfy_url, store):
    init = store.add_init(picture((40, 90, 200)), target=(64, 64))
    mask = store.add_mask(picture((0, 0, 0), shape="mask"), size=(init.width, init.height))
    assert mask.notice == "The mask was converted to greyscale."
    inputs = ImageInputs(init=InitImage(init.digest, 0.9), mask=Mask(mask.digest, grow=4))
    events = run(comfy_url, request(seed=5), inputs, store, job_id="inpaint")
    images = [e for e in events if isinstance(e, JobImage)]
    assert len(images) == 1 and check_image_bytes(images[0].data).size == (64, 64)
    graph = json.loads(dict(images[0].extra_text)["prompt"])
    # The 2024 server has InpaintModelConditioning (without 0.3.64's noise_mask input).
    imc = next(n for n in graph.values() if n["class_type"] == "InpaintModelConditioning")["inputs"]
    assert "noise_mask" not in imc
    mask_node = next(n for n in graph.values() if n["class_type"] == "LoadImageMask")["inputs"]
    assert mask_node["image"] == input_filename(mask.digest)
