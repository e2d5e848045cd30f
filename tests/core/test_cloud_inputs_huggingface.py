"""Image inputs on Hugging Face: the image-to-image task on hf-inference (base64 image as
``inputs``, prompt and target_size as parameters); refusals leave the router untouched."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from studio_core.errors import InputsNotSupported
from studio_core.input_store import InputStore
from studio_core.inputs import ImageInputs, InitImage, ReferenceImage
from studio_core.models import GenerationRequest, JobImage, JobNotice
from studio_core.providers.cloud.huggingface import HuggingFaceProvider
from tests.cloud_servers import LoopbackServer, RecordingSleep, collect, hf_image, of_type
from tests.conftest import run_async

KEY = "hf_TESTtoken1234567890abcdef"
KONTEXT = "black-forest-labs/FLUX.1-Kontext-dev"


def picture(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (10, 120, 220)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def store(tmp_path) -> InputStore:
    return InputStore.in_data_folder(tmp_path)


def make(srv: LoopbackServer, store: InputStore, model: str = KONTEXT, provider: str = "hf-inference"):
    return HuggingFaceProvider(api_key=KEY, model=model, provider=provider, endpoint=srv.url, hub_endpoint=srv.url,
                               timeout=5.0, attempts=1, sleep=RecordingSleep(), input_store=store)


def req(inputs: ImageInputs, **kw) -> GenerationRequest:
    return GenerationRequest(prompt="give the slime a hat", service="huggingface", inputs=inputs, width=512,
                             height=512, steps=20, cfg=3.5, **kw)


def test_image_to_image_body(store):
    init = store.add_init(picture(64, 64), target=(512, 512))
    with LoopbackServer() as srv:
        srv.route("POST", r"/hf-inference/models/black-forest-labs/FLUX.1-Kontext-dev", hf_image())
        events = run_async(collect(make(srv, store), req(ImageInputs(init=InitImage(init.digest)), negative_prompt="blur")))
    (img,) = of_type(events, JobImage)
    assert img.seed is None  # the task takes no seed, so none is claimed
    (r,) = srv.requests
    assert r.headers["authorization"] == f"Bearer {KEY}" and r.headers["content-type"] == "application/json"
    body = r.json()
    assert base64.b64decode(body["inputs"]) == store.read(init.digest)
    assert body["parameters"] == {"prompt": "give the slime a hat", "negative_prompt": "blur", "num_inference_steps": 20,
                                  "guidance_scale": 3.5, "target_size": {"width": 512, "height": 512}}
    assert any("no strength setting" in n.message for n in of_type(events, JobNotice))


def test_text_model_is_refused_and_names_kontext(store):
    init = store.add_init(picture(64, 64), target=(512, 512))
    with LoopbackServer() as srv:
        with pytest.raises(InputsNotSupported) as info:
            run_async(collect(make(srv, store, model="black-forest-labs/FLUX.1-schnell"),
                              req(ImageInputs(init=InitImage(init.digest)))))
    assert srv.requests == []
    assert "does not take an init image" in info.value.user_message and KONTEXT in info.value.user_message


def test_other_router_provider_is_refused_in_words(store):
    init = store.add_init(picture(64, 64), target=(512, 512))
    with LoopbackServer() as srv:
        with pytest.raises(InputsNotSupported) as info:
            run_async(collect(make(srv, store, provider="fal-ai"), req(ImageInputs(init=InitImage(init.digest)))))
    assert srv.requests == []
    assert "through the hf-inference provider only" in info.value.user_message


def test_reference_images_are_not_taken_by_kontext_dev(store):
    ref = store.add_image(picture(32, 32))
    with LoopbackServer() as srv:
        with pytest.raises(InputsNotSupported) as info:
            run_async(collect(make(srv, store), req(ImageInputs(references=(ReferenceImage(ref.digest),)))))
    assert srv.requests == [] and "does not take reference images" in info.value.user_message
