"""Image inputs on Google: reference images as inline_data parts of generateContent, through
the real google-genai SDK against a loopback server; refusals before anything is sent."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

pytest.importorskip("google.genai")

from studio_core.errors import InputsNotSupported
from studio_core.input_store import InputStore
from studio_core.inputs import ImageInputs, InitImage, Mask, ReferenceImage
from studio_core.models import GenerationRequest, JobImage, JobNotice
from studio_core.providers.cloud.google import GoogleConfig, GoogleProvider
from tests.cloud_servers_b import Reply, ScriptedServer, b64png
from tests.conftest import run_async

KEY = "AIzaSyTEST-0123456789abcdefghijklmnopq"


def picture(w: int, h: int, color=(200, 40, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, "PNG")
    return buf.getvalue()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def gemini_ok() -> Reply:
    return Reply(200, {"candidates": [{"content": {"role": "model", "parts": [
        {"inlineData": {"mimeType": "image/png", "data": b64png()}}]}, "finishReason": "STOP", "index": 0}]})


@pytest.fixture
def store(tmp_path) -> InputStore:
    return InputStore.in_data_folder(tmp_path)


def run(server: ScriptedServer, store: InputStore, request: GenerationRequest) -> list:
    prov = GoogleProvider(GoogleConfig(endpoint=server.url, base_delay=0.01, attempts=1), api_key=KEY,
                          input_store=store)

    async def go():
        try:
            return [e async for e in prov.generate(request, job_id="g1")]
        finally:
            await prov.aclose()

    return run_async(go())


def req(inputs: ImageInputs, model: str = "gemini-3.1-flash-image") -> GenerationRequest:
    return GenerationRequest(prompt="the knight, facing left", service="google", model=model, inputs=inputs)


def test_references_go_as_inline_data_parts(store):
    init = store.add_init(picture(40, 40), target=(1024, 1024))
    hero = store.add_image(picture(30, 30, (0, 120, 0)))
    style = store.add_image(picture(20, 20, (0, 0, 120)))
    inputs = ImageInputs(init=InitImage(init.digest), references=(ReferenceImage(hero.digest),
                                                                   ReferenceImage(style.digest, kind="style")))
    with ScriptedServer() as server:
        server.push(gemini_ok())
        events = run(server, store, req(inputs))
    assert len([e for e in events if isinstance(e, JobImage)]) == 1
    (seen,) = server.requests
    assert seen.method == "POST" and seen.path.endswith("/models/gemini-3.1-flash-image:generateContent")
    assert seen.headers["x-goog-api-key"] == KEY
    body = seen.json()
    (content,) = body["contents"]
    assert content["role"] == "user"
    text, *pictures = content["parts"]
    assert text["text"].startswith("the knight, facing left\n\nImage 1 is the picture to change")
    assert "Image 2 is a character reference" in text["text"] and "Image 3 is a style reference" in text["text"]
    # google-genai 3.6 writes the part as inlineData {data, mime_type}; Google's JSON parser takes
    # either spelling of a field, so both are accepted here
    assert [p["inlineData"].get("mimeType") or p["inlineData"].get("mime_type") for p in pictures] == ["image/png"] * 3
    # the SDK writes bytes as unpadded base64url, which proto JSON reads like standard base64
    assert [unb64(p["inlineData"]["data"]) for p in pictures] == [
        store.read(init.digest), store.read(hero.digest), store.read(style.digest)]
    assert body["generationConfig"]["responseModalities"] == ["IMAGE"]


def test_mask_is_refused_and_nothing_is_sent(store):
    init = store.add_init(picture(40, 40), target=(1024, 1024))
    mask = store.add_mask(picture(40, 40, (255, 255, 255)), size=(40, 40))
    with ScriptedServer() as server:
        with pytest.raises(InputsNotSupported) as info:
            run(server, store, req(ImageInputs(init=InitImage(init.digest), mask=Mask(mask.digest))))
        assert server.requests == []
    msg = info.value.user_message
    assert "does not take a mask" in msg and "none known" in msg


def test_too_many_references_names_the_limit(store):
    refs = tuple(ReferenceImage(f"{k:064x}") for k in range(15))
    with ScriptedServer() as server:
        with pytest.raises(InputsNotSupported) as info:
            run(server, store, req(ImageInputs(references=refs)))
        assert server.requests == []
    assert "15 input images (it takes at most 14)" in info.value.user_message


def test_imagen_takes_no_inputs_and_names_a_gemini_model(store):
    ref = store.add_image(picture(20, 20))
    with ScriptedServer() as server:
        prov = GoogleProvider(GoogleConfig(surface="vertex", project="p", location="us-central1", endpoint=server.url),
                              credentials=object(), input_store=store)

        async def go():
            try:
                return [e async for e in prov.generate(req(ImageInputs(references=(ReferenceImage(ref.digest),)),
                                                           model="imagen-4.0-generate-001"), job_id="g")]
            finally:
                await prov.aclose()

        with pytest.raises(InputsNotSupported) as info:
            run_async(go())
        assert server.requests == []
    assert "Gemini" in info.value.user_message and "takes image inputs" in info.value.user_message


def test_without_inputs_the_body_is_the_plain_prompt(store):
    with ScriptedServer() as server:
        server.push(gemini_ok())
        events = run(server, store, req(ImageInputs()))
    assert not [e for e in events if isinstance(e, JobNotice) and "Image 1" in e.message]
    parts = server.requests[0].json()["contents"][0]["parts"]
    assert parts == [{"text": "the knight, facing left"}]
