"""Image inputs on Bedrock: Titan IMAGE_VARIATION, INPAINTING (maskImage, black = redraw) and a
canny conditionImage; Stability image-to-image. SigV4-signed InvokeModel bodies on a loopback
server, and the refusals that leave the server untouched."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

pytest.importorskip("botocore")

from studio_core.errors import InputsNotSupported
from studio_core.input_store import InputStore
from studio_core.inputs import ControlImage, ImageInputs, InitImage, Mask, ReferenceImage
from studio_core.models import GenerationRequest, JobImage
from studio_core.providers.cloud.bedrock import BedrockConfig, BedrockProvider
from tests.cloud_servers_b import Reply, ScriptedServer, b64png
from tests.conftest import run_async

TITAN = "amazon.titan-image-generator-v2:0"
TITAN_V1 = "amazon.titan-image-generator-v1"
SD35 = "stability.sd3-5-large-v1:0"


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path):
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")


@pytest.fixture
def store(tmp_path) -> InputStore:
    return InputStore.in_data_folder(tmp_path / "data")


def picture(w: int, h: int, color=(120, 80, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, "PNG")
    return buf.getvalue()


def top_mask(w: int, h: int) -> bytes:
    img = Image.new("L", (w, h), 0)
    img.paste(255, (0, 0, w, h // 2))  # the top half is redrawn
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def run(server: ScriptedServer, store: InputStore, request: GenerationRequest) -> list:
    prov = BedrockProvider(BedrockConfig(region="us-west-2", endpoint=server.url, base_delay=0.01), input_store=store)

    async def go():
        try:
            return [e async for e in prov.generate(request, job_id="b1")]
        finally:
            await prov.aclose()

    return run_async(go())


def req(model: str, inputs: ImageInputs, **kw) -> GenerationRequest:
    return GenerationRequest(prompt="a fox knight", service="bedrock", model=model, inputs=inputs, width=1024,
                             height=1024, seed=5, **kw)


def titan_ok() -> Reply:
    return Reply(200, {"images": [b64png()], "error": None})


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


def test_titan_variation_sends_init_and_references(store):
    init = store.add_init(picture(64, 64), target=(1024, 1024))
    ref = store.add_image(picture(48, 48, (0, 90, 0)))
    inputs = ImageInputs(init=InitImage(init.digest, 0.3), references=(ReferenceImage(ref.digest),))
    with ScriptedServer() as server:
        server.push(titan_ok())
        events = run(server, store, req(TITAN, inputs))
    assert len([e for e in events if isinstance(e, JobImage)]) == 1
    (seen,) = server.requests
    assert seen.path == "/model/amazon.titan-image-generator-v2%3A0/invoke"
    assert seen.headers["authorization"].startswith("AWS4-HMAC-SHA256 ")
    body = seen.json()
    assert body["taskType"] == "IMAGE_VARIATION"
    params = body["imageVariationParams"]
    assert [unb64(i) for i in params["images"]] == [store.read(init.digest), store.read(ref.digest)]
    assert params["text"] == "a fox knight" and params["similarityStrength"] == 0.7  # 1 - denoise 0.3
    assert body["imageGenerationConfig"]["width"] == 1024 and body["imageGenerationConfig"]["seed"] == 5


def test_titan_inpainting_sends_a_black_where_redrawn_mask(store):
    init = store.add_init(picture(64, 64), target=(1024, 1024))
    mask = store.add_mask(top_mask(64, 64), size=(64, 64))
    with ScriptedServer() as server:
        server.push(titan_ok())
        run(server, store, req(TITAN, ImageInputs(init=InitImage(init.digest), mask=Mask(mask.digest)),
                               negative_prompt="blurry"))
    body = server.requests[0].json()
    assert body["taskType"] == "INPAINTING"
    params = body["inPaintingParams"]
    assert unb64(params["image"]) == store.read(init.digest)
    assert params["text"] == "a fox knight" and params["negativeText"] == "blurry"
    with Image.open(io.BytesIO(unb64(params["maskImage"]))) as m:
        assert m.mode == "RGB" and m.size == (64, 64)
        assert m.getpixel((10, 5)) == (0, 0, 0) and m.getpixel((10, 60)) == (255, 255, 255)
    assert "width" not in body["imageGenerationConfig"]  # the edit keeps the input's size


def test_titan_canny_control_is_a_condition_image(store):
    edges = store.add_image(picture(64, 64, (255, 255, 255)))
    with ScriptedServer() as server:
        server.push(titan_ok())
        run(server, store, req(TITAN, ImageInputs(controls=(ControlImage(edges.digest, "canny", 0.8),))))
    params = server.requests[0].json()["textToImageParams"]
    assert params["controlMode"] == "CANNY_EDGE" and params["controlStrength"] == 0.8
    assert unb64(params["conditionImage"]) == store.read(edges.digest)


def test_stability_image_to_image(store):
    init = store.add_init(picture(64, 64), target=(1024, 1024))
    with ScriptedServer() as server:
        server.push(Reply(200, {"seeds": [5], "finish_reasons": [None], "images": [b64png()]}))
        run(server, store, req(SD35, ImageInputs(init=InitImage(init.digest, 0.45))))
    body = server.requests[0].json()
    assert body == {"prompt": "a fox knight", "mode": "image-to-image", "image": base64.b64encode(
        store.read(init.digest)).decode(), "strength": 0.45, "seed": 5, "output_format": "png"}


def test_too_many_images_for_titan_is_refused_before_sending(store):
    refs = tuple(ReferenceImage(f"{k:064x}") for k in range(6))
    with ScriptedServer() as server:
        with pytest.raises(InputsNotSupported) as info:
            run(server, store, req(TITAN, ImageInputs(references=refs)))
        assert server.requests == []
    assert "6 input images (it takes at most 5)" in info.value.user_message


def test_pose_control_on_titan_names_no_model(store):
    pose = store.add_image(picture(32, 32))
    with ScriptedServer() as server:
        with pytest.raises(InputsNotSupported) as info:
            run(server, store, req(TITAN_V1, ImageInputs(controls=(ControlImage(pose.digest, "pose"),))))
        assert server.requests == []
    assert "does not take a pose control image" in info.value.user_message
    assert "none known" in info.value.user_message


def test_mask_with_references_is_refused_in_words(store):
    init = store.add_init(picture(64, 64), target=(1024, 1024))
    mask = store.add_mask(top_mask(64, 64), size=(64, 64))
    ref = store.add_image(picture(32, 32))
    inputs = ImageInputs(init=InitImage(init.digest), mask=Mask(mask.digest), references=(ReferenceImage(ref.digest),))
    with ScriptedServer() as server:
        with pytest.raises(InputsNotSupported) as info:
            run(server, store, req(TITAN, inputs))
        assert server.requests == []
    assert "inpaints one image at a time" in info.value.user_message


def test_mask_on_stability_is_refused_not_dropped(store):
    init = store.add_init(picture(64, 64), target=(1024, 1024))
    mask = store.add_mask(top_mask(64, 64), size=(64, 64))
    with ScriptedServer() as server:
        with pytest.raises(InputsNotSupported) as info:
            run(server, store, req(SD35, ImageInputs(init=InitImage(init.digest), mask=Mask(mask.digest))))
        assert server.requests == []
    assert "Titan Image Generator takes masks" in info.value.user_message
