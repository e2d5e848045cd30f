"""Image inputs on Replicate: FLUX Kontext's ``input_image`` as a data URI, or as the URL of a
``POST /v1/files`` upload (multipart) when the image is too large for a data URI."""

from __future__ import annotations

import base64
import io
import os

import pytest
from PIL import Image

from studio_core.errors import InputsNotSupported
from studio_core.input_store import InputStore
from studio_core.inputs import ImageInputs, InitImage
from studio_core.models import GenerationRequest, JobImage, JobNotice
from studio_core.providers.cloud.replicate import ReplicateProvider
from tests.cloud_servers import LoopbackServer, RecordingSleep, Reply, collect, of_type, png_bytes, replicate_prediction
from tests.conftest import run_async

KEY = "r8_TESTtoken1234567890abcdef"
KONTEXT = "black-forest-labs/flux-kontext-pro"
CREATE = r"/v1/models/black-forest-labs/flux-kontext-pro/predictions"


def picture(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (90, 60, 30)).save(buf, "PNG")
    return buf.getvalue()


def noisy(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.frombytes("RGB", (w, h), os.urandom(w * h * 3)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def store(tmp_path) -> InputStore:
    return InputStore.in_data_folder(tmp_path)


def make(api: LoopbackServer, store: InputStore, model: str = KONTEXT) -> ReplicateProvider:
    return ReplicateProvider(api_key=KEY, model=model, endpoint=api.url, timeout=5.0, poll_interval=0.0, attempts=1,
                             base_delay=0.01, sleep=RecordingSleep(), input_store=store)


def req(inputs: ImageInputs, **kw) -> GenerationRequest:
    return GenerationRequest(prompt="make the knight hold a torch", service="replicate", inputs=inputs, **kw)


def finished(files: LoopbackServer) -> Reply:
    return Reply(201, replicate_prediction(output=f"{files.url}/out.png", model=KONTEXT))


def test_small_init_image_goes_as_a_data_uri(store):
    init = store.add_init(picture(64, 48), target=(1024, 1024))
    with LoopbackServer() as api, LoopbackServer() as files:
        api.route("POST", CREATE, finished(files))
        files.route("GET", r"/out\.png", Reply(200, png_bytes(), content_type="image/png"))
        events = run_async(collect(make(api, store), req(ImageInputs(init=InitImage(init.digest, 0.5)), seed=7)))
    assert len(of_type(events, JobImage)) == 1
    (r,) = api.requests
    assert r.route == CREATE and r.headers["content-type"] == "application/json"
    inp = r.json()["input"]
    assert inp == {"prompt": "make the knight hold a torch", "output_format": "png", "seed": 7,
                   "input_image": "data:image/png;base64," + base64.b64encode(store.read(init.digest)).decode(),
                   "aspect_ratio": "match_input_image"}
    assert any("no strength setting" in n.message for n in of_type(events, JobNotice))


def test_large_init_image_is_uploaded_first(store):
    init = store.add_init(noisy(700, 700), target=(1024, 1024))
    data = store.read(init.digest)
    assert len(data) > 1_000_000  # over the data-URI limit
    file_url = "https://api.replicate.com/v1/files/abc123"
    with LoopbackServer() as api, LoopbackServer() as files:
        api.route("POST", r"/v1/files", Reply(201, {"id": "abc123", "name": "x.png", "content_type": "image/png",
                                                   "size": len(data), "urls": {"get": file_url}}))
        api.route("POST", CREATE, finished(files))
        files.route("GET", r"/out\.png", Reply(200, png_bytes(), content_type="image/png"))
        run_async(collect(make(api, store), req(ImageInputs(init=InitImage(init.digest)))))
    upload, create = api.requests
    assert upload.route == "/v1/files" and upload.headers["authorization"] == f"Bearer {KEY}"
    (part,) = upload.parts()
    assert part.name == "content" and part.filename == f"{init.digest[:16]}.png"
    assert part.content_type == "image/png" and part.data == data
    assert create.json()["input"]["input_image"] == file_url


def test_model_without_image_input_names_one_that_has_it(store):
    init = store.add_init(picture(32, 32), target=(1024, 1024))
    with LoopbackServer() as api:
        with pytest.raises(InputsNotSupported) as info:
            run_async(collect(make(api, store, model="black-forest-labs/flux-schnell"),
                              req(ImageInputs(init=InitImage(init.digest)))))
    assert api.requests == []
    msg = info.value.user_message
    assert "FLUX.1 [schnell] on Replicate does not take an init image" in msg
    assert f"({KONTEXT}) on Replicate does" in msg


def test_unknown_model_with_an_image_is_refused_in_words(store):
    init = store.add_init(picture(32, 32), target=(1024, 1024))
    with LoopbackServer() as api:
        with pytest.raises(InputsNotSupported) as info:
            run_async(collect(make(api, store, model="someone/some-model"), req(ImageInputs(init=InitImage(init.digest)))))
    assert api.requests == []
    assert "does not know which input of someone/some-model takes an image" in info.value.user_message
    assert KONTEXT in info.value.user_message
