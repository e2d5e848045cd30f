"""Google provider (google-genai SDK) against a loopback server speaking Gemini/Vertex wire formats (providers.md §5)."""

from __future__ import annotations

import asyncio
import base64
import logging

import httpx
import pytest

pytest.importorskip("google.genai")

from studio_core.errors import (
    AuthenticationFailed,
    ContentRefused,
    GenerationFailed,
    InvalidResponse,
    MissingCredentials,
    ModelNotFound,
    NotAnImage,
    QuotaExceeded,
    RequestTimedOut,
)
from studio_core.models import GenerationRequest, JobImage, JobNotice, JobStarted, ServiceState
from studio_core.providers.cloud import google as google_provider
from studio_core.providers.cloud.google import GoogleConfig, GoogleProvider
from studio_core.providers.cloud import catalog
from studio_core.secrets import SecretStore
from studio_core.settings import Settings
from tests.cloud_servers_b import Reply, ScriptedServer, b64png, huge_png_header
from tests.conftest import run_async

GEMINI = "gemini-3.1-flash-image"
IMAGEN = "imagen-4.0-generate-001"
KEY = "AIzaSyTEST-0123456789abcdefghijklmnopq"
TOKEN = "ya29.test-access-token"
CAT = catalog.parse({"providers": {"google": {"default_model": GEMINI, "models": [
    {"id": GEMINI, "label": "Gemini 3.1 Flash Image", "api": "generateContent", "status": "active",
     "aspect_sizes": {"1:1": "1024x1024", "2:3": "832x1248", "3:2": "1248x832", "3:4": "864x1184", "4:3": "1184x864",
                      "9:16": "768x1344", "16:9": "1344x768", "21:9": "1536x672"},
     "image_sizes": ["1K", "2K", "4K"], "max_batch": 1, "price": {"usd_per_image": 0.067}},
    {"id": "gemini-2.5-flash-image", "api": "generateContent", "status": "retired", "retired_on": "2026-10-02",
     "replacement": GEMINI},
    {"id": IMAGEN, "label": "Imagen 4", "api": "predict", "status": "retired", "retired_on": "2026-08-17",
     "aspect_sizes": {"1:1": "1024x1024", "3:4": "896x1280", "4:3": "1280x896", "9:16": "768x1408", "16:9": "1408x768"},
     "max_batch": 4, "price_per_image": 0.04},
]}}})


class FakeCredentials:
    """Stands in for google-auth credentials: refresh() mints a token, no metadata server."""

    def __init__(self):
        self.token = None
        self.expiry = None
        self.quota_project_id = None
        self.refreshes = 0

    @property
    def valid(self) -> bool:
        return self.token is not None

    @property
    def expired(self) -> bool:
        return False

    def refresh(self, request) -> None:
        self.refreshes += 1
        self.token = TOKEN

    def before_request(self, request, method, url, headers):
        headers["authorization"] = f"Bearer {self.token}"


def gemini_ok(color=(10, 200, 30, 255), *, text: str | None = None) -> Reply:
    parts = ([{"text": text}] if text else []) + [{"inlineData": {"mimeType": "image/png", "data": b64png(color=color)}}]
    return Reply(200, {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
                       "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 1290}})


def gerr(code: int, status: str, message: str, *details: dict, **headers: str) -> Reply:
    return Reply(code, {"error": {"code": code, "message": message, "status": status, "details": list(details)}}, headers)


@pytest.fixture
def server():
    with ScriptedServer() as s:
        yield s


class Sleeps(list):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make(server: ScriptedServer, *, api_key: str | None = KEY, credentials=None, sleeps=None, http=None,
         **cfg) -> GoogleProvider:
    cfg.setdefault("endpoint", server.url)
    cfg.setdefault("base_delay", 0.01)
    p = GoogleProvider(GoogleConfig(**cfg), api_key=api_key, credentials=credentials, http=http,
                       sleep=sleeps if sleeps is not None else Sleeps())
    p.catalog = CAT
    return p


def vertex(server: ScriptedServer, creds=None, **cfg) -> GoogleProvider:
    return make(server, api_key=None, credentials=creds or FakeCredentials(), surface="vertex", project="art-proj",
                location="us-central1", **cfg)


def collect(provider: GoogleProvider, request: GenerationRequest) -> list:
    async def go():
        try:
            return [e async for e in provider.generate(request, job_id="g1")]
        finally:
            await provider.aclose()

    return run_async(go())


def checked(provider):
    async def go():
        try:
            return await provider.check()
        finally:
            await provider.aclose()

    return run_async(go())


def req(**kw) -> GenerationRequest:
    kw.setdefault("prompt", "a pixel-art knight")
    kw.setdefault("service", "google")
    return GenerationRequest(**kw)


def images(events: list) -> list[JobImage]:
    return [e for e in events if isinstance(e, JobImage)]


# -- success ------------------------------------------------------------------------------

def test_gemini_api_generate_content_wire(server):
    reply = gemini_ok(text="Here is your knight")
    server.push(reply)
    events = collect(make(server), req(width=1024, height=1024))
    assert isinstance(events[0], JobStarted)
    (img,) = images(events)
    assert img.data == base64.b64decode(reply.body["candidates"][0]["content"]["parts"][1]["inlineData"]["data"])
    info = dict(img.info)
    assert info["provider"] == "google" and info["model"] == GEMINI and info["surface"] == "gemini"
    assert info["cost_usd"] == 0.067 and info["size"] == "1024x1024"
    (seen,) = server.requests
    assert seen.method == "POST"
    assert seen.path == f"/v1beta/models/{GEMINI}:generateContent"
    assert seen.headers["x-goog-api-key"] == KEY
    assert "authorization" not in seen.headers
    assert seen.json() == {
        "contents": [{"parts": [{"text": "a pixel-art knight"}], "role": "user"}],
        "generationConfig": {"responseModalities": ["IMAGE"], "imageConfig": {"aspectRatio": "1:1", "imageSize": "1K"}},
    }


def test_several_images_and_aspect_clamp(server):
    server.push(gemini_ok((1, 1, 1, 255)), gemini_ok((2, 2, 2, 255)), gemini_ok((3, 3, 3, 255)))
    events = collect(make(server), req(width=1000, height=600, batch=3, negative_prompt="blurry"))
    got = images(events)
    assert [i.index for i in got] == [0, 1, 2] and len({i.data for i in got}) == 3
    notes = " ".join(e.message for e in events if isinstance(e, JobNotice))
    assert "16:9" in notes and "Avoid" in notes
    body = server.requests[0].json()
    assert body["generationConfig"]["imageConfig"] == {"aspectRatio": "16:9", "imageSize": "1K"}
    assert body["contents"][0]["parts"][0]["text"].endswith("Avoid: blurry")


def test_vertex_generate_content_with_adc_bearer(server):
    creds = FakeCredentials()
    server.push(gemini_ok())
    events = collect(vertex(server, creds), req(width=2048, height=2048))
    assert len(images(events)) == 1
    (seen,) = server.requests
    assert seen.path == f"/v1/projects/art-proj/locations/us-central1/publishers/google/models/{GEMINI}:generateContent"
    assert seen.headers["authorization"] == f"Bearer {TOKEN}"
    assert "x-goog-api-key" not in seen.headers
    assert seen.json()["generationConfig"]["imageConfig"] == {"aspectRatio": "1:1", "imageSize": "2K"}
    assert creds.refreshes == 1


def test_vertex_imagen_predict(server):
    server.push(Reply(200, {"predictions": [
        {"bytesBase64Encoded": b64png(color=(9, 9, 9, 255)), "mimeType": "image/png"},
        {"bytesBase64Encoded": b64png(color=(8, 8, 8, 255)), "mimeType": "image/png"},
        {"raiFilteredReason": "Filtered: person"},
    ]}))
    events = collect(vertex(server), req(model=IMAGEN, batch=3, seed=42, negative_prompt="text", width=768, height=1024))
    got = images(events)
    assert len(got) == 2 and all(i.seed == 42 for i in got)
    assert dict(got[0].info)["cost_usd"] == 0.04
    assert any("retired" in e.message for e in events if isinstance(e, JobNotice))
    assert any("Filtered: person" in e.message for e in events if isinstance(e, JobNotice))
    (seen,) = server.requests
    assert seen.path == f"/v1/projects/art-proj/locations/us-central1/publishers/google/models/{IMAGEN}:predict"
    assert seen.headers["authorization"] == f"Bearer {TOKEN}"
    body = seen.json()
    assert body["instances"] == [{"prompt": "a pixel-art knight"}]
    assert body["parameters"] == {"sampleCount": 3, "aspectRatio": "3:4", "negativePrompt": "text", "seed": 42,
                                  "addWatermark": False, "includeRaiReason": True,
                                  "outputOptions": {"mimeType": "image/png"}}


def test_imagen_everything_filtered_is_a_refusal(server):
    server.push(Reply(200, {}))
    with pytest.raises(ContentRefused):
        collect(vertex(server), req(model=IMAGEN))


def test_imagen_on_gemini_api_points_at_the_default(server):
    with pytest.raises(ModelNotFound) as info:
        collect(make(server), req(model=IMAGEN))
    assert GEMINI in info.value.user_message and server.requests == []


def test_key_comes_from_the_secret_store_via_create(server, paths, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", f"  {KEY}  ")
    settings = Settings(providers={"google": {"endpoint": server.url, "surface": "gemini", "base_delay": 0.01}})
    provider = google_provider.create(settings, SecretStore(paths.secrets_file))
    provider.catalog = CAT
    server.push(gemini_ok())
    collect(provider, req())
    assert server.requests[0].headers["x-goog-api-key"] == KEY


# -- errors and retries ---------------------------------------------------------------------

def test_invalid_api_key_400(server, caplog):
    caplog.set_level(logging.DEBUG)
    server.push(gerr(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.",
                     {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                      "domain": "googleapis.com"}))
    with pytest.raises(AuthenticationFailed) as info:
        collect(make(server), req())
    assert "rejected the API key" in info.value.user_message
    assert len(server.requests) == 1
    assert KEY not in str(info.value) + info.value.user_message + repr(info.value) + caplog.text


def test_permission_denied_403_on_vertex(server):
    server.push(gerr(403, "PERMISSION_DENIED", "Permission 'aiplatform.endpoints.predict' denied on resource."))
    with pytest.raises(AuthenticationFailed) as info:
        collect(vertex(server), req())
    assert "PERMISSION_DENIED" in info.value.user_message


def test_missing_key_and_malformed_key(server):
    with pytest.raises(MissingCredentials):
        collect(make(server, api_key=None), req())
    with pytest.raises(MissingCredentials) as info:
        collect(make(server, api_key="AIza abc"), req())
    assert "spaces" in info.value.user_message
    assert server.requests == []


def test_rate_limit_waits_retry_delay_then_succeeds(server):
    sleeps = Sleeps()
    server.push(gerr(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).",
                     {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "13s"}), gemini_ok())
    events = collect(make(server, sleeps=sleeps), req())
    assert sleeps == [13.0]
    assert any("Retrying in 13 s" in e.message for e in events if isinstance(e, JobNotice))
    assert len(images(events)) == 1 and len(server.requests) == 2


def test_quota_with_no_allowance_is_not_retried(server):
    server.push(gerr(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota, please check your plan and billing "
                                                "details. Quota exceeded for metric: images, limit: 0"))
    with pytest.raises(QuotaExceeded):
        collect(make(server), req())
    assert len(server.requests) == 1


def test_server_error_then_success(server):
    sleeps = Sleeps()
    server.push(gerr(503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
                gerr(500, "INTERNAL", "An internal error has occurred."), gemini_ok())
    events = collect(make(server, sleeps=sleeps), req())
    assert len(sleeps) == 2 and len(images(events)) == 1


def test_timeout_after_sending_is_not_retried(server):
    server.push(Reply(200, {}, delay=5))
    with pytest.raises(RequestTimedOut) as ei:
        collect(make(server, attempts=3, http=httpx.AsyncClient(timeout=0.3), timeout_s=0.3), req())
    assert len(server.requests) == 1 and "not sent again" in ei.value.user_message


def test_prompt_blocked(server):
    server.push(Reply(200, {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT",
                                               "blockReasonMessage": "The prompt was blocked."}}))
    with pytest.raises(ContentRefused) as info:
        collect(make(server), req())
    assert "PROHIBITED_CONTENT" in info.value.user_message
    assert len(server.requests) == 1


def test_image_safety_finish_reason(server):
    server.push(Reply(200, {"candidates": [{"finishReason": "IMAGE_SAFETY", "finishMessage": "Unable to show the image.",
                                            "content": {"role": "model", "parts": []}}]}))
    with pytest.raises(ContentRefused) as info:
        collect(make(server), req())
    assert "IMAGE_SAFETY" in info.value.user_message


def test_text_only_answer_is_explained(server):
    server.push(Reply(200, {"candidates": [{"finishReason": "STOP",
                                            "content": {"role": "model", "parts": [{"text": "I can't draw that."}]}}]}))
    with pytest.raises(GenerationFailed) as info:
        collect(make(server), req())
    assert "I can't draw that." in info.value.user_message


def test_retired_model_404_names_the_default(server):
    server.push(gerr(404, "NOT_FOUND", "models/gemini-2.5-flash-image is not found for API version v1beta."))
    with pytest.raises(ModelNotFound) as info:
        collect(make(server), req(model="gemini-2.5-flash-image"))
    assert GEMINI in info.value.user_message


def test_malformed_body(server):
    server.push(Reply(200, '{"candidates": [', {"Content-Type": "application/json"}))
    with pytest.raises(InvalidResponse):
        collect(make(server, attempts=1), req())


def test_body_that_is_not_an_image(server):
    server.push(Reply(200, {"candidates": [{"content": {"parts": [{"inlineData": {
        "mimeType": "image/png", "data": base64.b64encode(b"definitely not a png").decode()}}]}, "finishReason": "STOP"}]}))
    with pytest.raises(NotAnImage):
        collect(make(server), req())


def test_oversized_image(server):
    server.push(Reply(200, {"candidates": [{"content": {"parts": [{"inlineData": {
        "mimeType": "image/png", "data": base64.b64encode(huge_png_header()).decode()}}]}, "finishReason": "STOP"}]}))
    with pytest.raises(NotAnImage) as info:
        collect(make(server), req())
    assert "too large" in info.value.user_message


def test_cancellation_aborts_the_request(server):
    server.push(Reply(200, {}, delay=30))
    provider = make(server)

    async def go():
        got = []

        async def consume():
            async for e in provider.generate(req(), job_id="g1"):
                got.append(e)

        task = asyncio.create_task(consume())
        while not server.requests:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await provider.aclose()
        return got

    assert [type(e) for e in run_async(go())] == [JobStarted]


# -- check() ------------------------------------------------------------------------------------

def test_check_gets_the_model_without_generating(server):
    server.push(Reply(200, {"name": f"models/{GEMINI}", "displayName": "Nano Banana 2"}))
    status = checked(make(server))
    assert status.state == ServiceState.ready and "Nano Banana 2" in status.message
    (seen,) = server.requests
    assert seen.method == "GET" and seen.path == f"/v1beta/models/{GEMINI}"
    assert seen.headers["x-goog-api-key"] == KEY


def test_check_vertex(server):
    server.push(Reply(200, {"name": f"publishers/google/models/{GEMINI}"}))
    status = checked(vertex(server))
    assert status.state == ServiceState.ready and "art-proj" in status.message
    assert server.requests[0].path == f"/v1/publishers/google/models/{GEMINI}"


def test_check_bad_key_and_no_key(server):
    server.push(gerr(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."))
    rejected = checked(make(server))
    assert rejected.state == ServiceState.needs_key and "rejected the API key" in rejected.message
    assert checked(make(server, api_key=None)).state == ServiceState.needs_key


def test_check_without_application_default_credentials(server, monkeypatch, tmp_path):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    provider = make(server, api_key=None, surface="vertex", project="p")
    status = checked(provider)
    assert status.state == ServiceState.needs_key and "gcloud auth application-default login" in status.message
    assert server.requests == []


def test_check_unreachable(server):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    status = checked(make(server, endpoint=f"http://127.0.0.1:{port}"))
    assert status.state == ServiceState.unreachable


def test_real_catalog_has_the_google_default():
    spec = catalog.provider("google")
    assert spec.default_model == GEMINI
    assert spec.model(GEMINI).fit(1920, 1080)[2] == "16:9"


def test_vertex_project_and_credentials_from_adc(server):
    creds = FakeCredentials()
    server.push(gemini_ok())
    p = GoogleProvider(GoogleConfig(surface="vertex", endpoint=server.url, base_delay=0.01), load_adc=lambda: (creds, "adc-proj"))
    p.catalog = CAT
    collect(p, req())
    (seen,) = server.requests
    assert seen.path.startswith("/v1/projects/adc-proj/locations/global/publishers/google/models/")
    assert seen.headers["authorization"] == f"Bearer {TOKEN}"


def test_key_echoed_in_an_error_is_scrubbed(server):
    server.push(gerr(400, "INVALID_ARGUMENT", f"Bad request for key {KEY}"))
    with pytest.raises(Exception) as info:
        collect(make(server), req())
    assert KEY not in str(info.value) + info.value.user_message


def test_no_image_this_time_is_retried(server):
    sleeps = Sleeps()
    server.push(Reply(200, {"candidates": [{"finishReason": "NO_IMAGE", "content": {"role": "model", "parts": []}}]}),
                gemini_ok())
    events = collect(make(server, sleeps=sleeps), req())
    assert len(images(events)) == 1 and len(sleeps) == 1 and len(server.requests) == 2
