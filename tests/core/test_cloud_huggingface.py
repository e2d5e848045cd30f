"""Hugging Face provider against a loopback server speaking the router's wire format (providers.md §1)."""

from __future__ import annotations

import logging

import pytest

from studio_core.errors import (
    AuthenticationFailed,
    ContentRefused,
    InvalidRequest,
    InvalidResponse,
    MissingCredentials,
    ModelNotFound,
    NotAnImage,
    RequestTimedOut,
)
from studio_core.models import GenerationRequest, JobImage, JobNotice, ServiceState
from studio_core.providers.cloud.huggingface import HuggingFaceProvider
from tests.cloud_servers import (
    HF_BAD_TOKEN,
    HF_RETIRED,
    NOT_AN_IMAGE,
    LoopbackServer,
    RecordingSleep,
    Reply,
    collect,
    hf_error,
    hf_image,
    hf_json_b64,
    huge_png_header,
    jpeg_bytes,
    of_type,
    png_bytes,
)
from tests.conftest import run_async

KEY = "hf_TESTtoken1234567890abcdef"
ROUTE = r"/hf-inference/models/black-forest-labs/FLUX\.1-schnell"


def make(server: LoopbackServer, *, key: str | None = KEY, timeout: float = 5.0, sleep=None, **kw) -> HuggingFaceProvider:
    return HuggingFaceProvider(api_key=key, endpoint=server.url, hub_endpoint=server.url, timeout=timeout,
                               attempts=kw.pop("attempts", 3), base_delay=0.01, sleep=sleep or RecordingSleep(), **kw)


def req(**kw) -> GenerationRequest:
    return GenerationRequest(prompt=kw.pop("prompt", "a pixel-art fox"), service="huggingface", **kw)


def test_success_sends_documented_request():
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, hf_image())
        events = run_async(collect(make(srv), req(seed=42, negative_prompt="blurry", width=512, height=768)))
    images = of_type(events, JobImage)
    assert len(images) == 1 and images[0].mime == "image/png" and images[0].seed == 42
    info = dict(images[0].info)
    assert info["provider"] == "huggingface" and info["model"] == "black-forest-labs/FLUX.1-schnell"
    assert info["cost_usd"] > 0 and info["price_as_of"]
    (r,) = srv.requests
    assert r.method == "POST" and r.route == "/hf-inference/models/black-forest-labs/FLUX.1-schnell"
    assert r.headers["authorization"] == f"Bearer {KEY}"
    assert r.headers["accept"] == "image/png" and r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["inputs"] == "a pixel-art fox"
    assert body["parameters"]["width"] == 512 and body["parameters"]["height"] == 768
    assert body["parameters"]["seed"] == 42 and body["parameters"]["num_inference_steps"] == 4
    assert "guidance_scale" not in body["parameters"]  # schnell is guidance-distilled


def test_several_images_use_consecutive_seeds_and_accept_jpeg_and_json():
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, hf_image(), hf_image(jpeg_bytes(), "image/jpeg"), hf_json_b64())
        events = run_async(collect(make(srv), req(seed=7, batch=3)))
    images = of_type(events, JobImage)
    assert [i.seed for i in images] == [7, 8, 9]
    assert [i.mime for i in images] == ["image/png", "image/jpeg", "image/png"]
    assert [r.json()["parameters"]["seed"] for r in srv.requests] == [7, 8, 9]


def test_random_seed_is_chosen_here_and_reported():
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, hf_image())
        events = run_async(collect(make(srv), req()))
    (img,) = of_type(events, JobImage)
    assert img.seed is not None and srv.requests[0].json()["parameters"]["seed"] == img.seed


def test_bad_key_is_rejected_in_words_without_retry():
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, HF_BAD_TOKEN)
        with pytest.raises(AuthenticationFailed) as ei:
            run_async(collect(make(srv), req()))
    assert "rejected" in ei.value.user_message and len(srv.requests) == 1


def test_429_waits_retry_after_and_says_so():
    sleep = RecordingSleep()
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, Reply(429, {"error": "Too many requests"}, headers={"Retry-After": "5"}), hf_image())
        events = run_async(collect(make(srv, sleep=sleep), req()))
    assert sleep.delays == [5.0]
    notices = of_type(events, JobNotice)
    assert notices and "5 s" in notices[0].message
    assert len(of_type(events, JobImage)) == 1


def test_model_loading_503_waits_estimated_time():
    sleep = RecordingSleep()
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, hf_error(503, "Model black-forest-labs/FLUX.1-schnell is currently loading", estimated_time=20.0),
                  hf_image())
        events = run_async(collect(make(srv, sleep=sleep), req()))
    assert sleep.delays == [20.0] and "loading" in of_type(events, JobNotice)[0].message


def test_5xx_then_success_backs_off():
    sleep = RecordingSleep()
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, hf_error(502, "Bad gateway"), hf_error(500, "oops"), hf_image())
        events = run_async(collect(make(srv, sleep=sleep), req()))
    assert len(sleep.delays) == 2 and len(of_type(events, JobImage)) == 1
    assert len(srv.requests) == 3


def test_timeout_after_sending_is_not_retried():
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, Reply(200, png_bytes(), delay=5, content_type="image/png"))
        with pytest.raises(RequestTimedOut) as ei:
            run_async(collect(make(srv, timeout=0.3, attempts=3), req()))
    assert "No answer came in time" in ei.value.user_message and len(srv.requests) == 1


def test_content_policy_refusal_gives_reason_without_retry():
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, hf_error(400, "NSFW content detected in the prompt"))
        with pytest.raises(ContentRefused) as ei:
            run_async(collect(make(srv), req()))
    assert "NSFW content detected" in ei.value.user_message and len(srv.requests) == 1


def test_retired_model_names_the_default():
    with LoopbackServer() as srv:
        srv.route("POST", r"/hf-inference/models/stabilityai/stable-diffusion-xl-base-1\.0", HF_RETIRED)
        with pytest.raises(ModelNotFound) as ei:
            run_async(collect(make(srv, model="stabilityai/stable-diffusion-xl-base-1.0"), req()))
    msg = ei.value.user_message
    assert "retired" in msg and "black-forest-labs/FLUX.1-schnell" in msg


def test_malformed_json_body():
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, Reply(200, b'{"data": [ {"b64_json": ', content_type="application/json"))
        with pytest.raises(InvalidResponse):
            run_async(collect(make(srv), req()))


def test_body_that_is_not_an_image():
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, Reply(200, NOT_AN_IMAGE, content_type="image/png"))
        with pytest.raises(NotAnImage) as ei:
            run_async(collect(make(srv), req()))
    assert "not an image" in ei.value.user_message


def test_oversized_image_is_refused():
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, hf_image(huge_png_header()))
        with pytest.raises(NotAnImage) as ei:
            run_async(collect(make(srv), req()))
    assert "too large" in ei.value.user_message


def test_unsupported_size_is_clamped_and_said():
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, hf_image())
        events = run_async(collect(make(srv), req(width=4000, height=4000)))
    notice = of_type(events, JobNotice)[0].message
    params = srv.requests[0].json()["parameters"]
    assert (params["width"], params["height"]) == (1440, 1440) and "1440×1440" in notice


@pytest.mark.parametrize("bad", ["", "   ", "hf_abc def123456", "hf_ä123456789", "short"])
def test_empty_or_malformed_key_fails_before_any_request(bad):
    with LoopbackServer() as srv:
        with pytest.raises(MissingCredentials) as ei:
            run_async(collect(make(srv, key=bad), req()))
    assert srv.requests == [] and "Settings" in ei.value.user_message


def test_key_with_whitespace_around_it_is_stripped():
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, hf_image())
        run_async(collect(make(srv, key=f"  {KEY}\n"), req()))
    assert srv.requests[0].headers["authorization"] == f"Bearer {KEY}"


def test_endpoint_that_is_not_a_url():
    prov = HuggingFaceProvider(api_key=KEY, endpoint="router dot huggingface", timeout=1)
    with pytest.raises(InvalidRequest) as ei:
        run_async(collect(prov, req()))
    assert "web address" in ei.value.user_message


def test_key_never_in_errors_or_logs(caplog):
    # A hostile or careless server echoes the key back in its error.
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, hf_error(401, f"Invalid credentials: token {KEY} is not valid"))
        with caplog.at_level(logging.DEBUG):
            with pytest.raises(AuthenticationFailed) as ei:
                run_async(collect(make(srv), req()))
    assert KEY not in ei.value.user_message and KEY not in str(ei.value) and KEY not in repr(ei.value)
    assert all(KEY not in rec.getMessage() for rec in caplog.records)


def test_fal_ai_through_the_router():
    with LoopbackServer() as srv:
        srv.route("POST", r"/fal-ai/fal-ai/flux/schnell", Reply(200, {"images": [{"url": srv.url + "/files/out.png"}]}))
        srv.route("GET", r"/files/out\.png", hf_image())
        events = run_async(collect(make(srv, provider="fal-ai"), req(seed=3, width=768, height=512)))
    assert len(of_type(events, JobImage)) == 1
    body = srv.by_route(r"/fal-ai/.*")[0].json()
    assert body["prompt"] == "a pixel-art fox" and body["image_size"] == {"width": 768, "height": 512} and body["seed"] == 3


def test_check_reports_ready_and_needs_key():
    with LoopbackServer() as srv:
        srv.route("GET", r"/api/whoami-v2", Reply(200, {"name": "pixel-dev"}))
        srv.route("GET", r"/api/models/black-forest-labs/FLUX\.1-schnell",
                  Reply(200, {"inferenceProviderMapping": {"hf-inference": {"status": "live", "providerId": "x"}}}))
        status = run_async(make(srv).check())
        assert status.state is ServiceState.ready and "pixel-dev" in status.message
        assert srv.requests[0].headers["authorization"] == f"Bearer {KEY}"
        assert run_async(make(srv, key="").check()).state is ServiceState.needs_key
    with LoopbackServer() as srv:
        srv.route("GET", r"/api/whoami-v2", HF_BAD_TOKEN)
        assert run_async(make(srv).check()).state is ServiceState.needs_key


def test_check_unreachable_never_raises():
    prov = HuggingFaceProvider(api_key=KEY, endpoint="http://127.0.0.1:9", hub_endpoint="http://127.0.0.1:9", timeout=1)
    status = run_async(prov.check())
    assert status.state is ServiceState.unreachable and status.message


def test_factory_uses_settings_and_env_key_end_to_end(paths, monkeypatch):
    from studio_core.providers.base import Provider
    from studio_core.secrets import SecretStore
    from studio_core.services import ServiceRegistry
    from studio_core.settings import SettingsStore

    monkeypatch.setenv("HF_TOKEN", KEY)
    with LoopbackServer() as srv:
        srv.route("POST", r"/hf-inference/models/black-forest-labs/FLUX\.1-dev", hf_image())
        settings = SettingsStore(paths.settings_file)
        settings.update_provider("huggingface", model="black-forest-labs/FLUX.1-dev", endpoint=srv.url, timeout_s=5,
                                 retries=0, bill_to="my-studio")
        prov = ServiceRegistry(settings, SecretStore(paths.secrets_file)).provider("huggingface")
        assert isinstance(prov, Provider)
        assert prov._client.timeout.read == 5 and prov._attempts == 1  # the shared timeout_s / retries keys
        events = run_async(collect(prov, req(cfg=3.5)))
    assert len(of_type(events, JobImage)) == 1
    r = srv.requests[0]
    assert r.headers["authorization"] == f"Bearer {KEY}" and r.headers["x-hf-bill-to"] == "my-studio"
    assert r.json()["parameters"]["guidance_scale"] == 3.5  # dev takes guidance; schnell does not


def test_error_text_from_x_error_message_header():
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, Reply(400, b"", headers={"X-Error-Message": "Input validation error: width must be <= 1440"}))
        with pytest.raises(InvalidRequest) as ei:
            run_async(collect(make(srv), req()))
    assert "width must be <= 1440" in ei.value.user_message


def test_key_echoed_in_a_retried_error_stays_out_of_logs(caplog):
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, Reply(429, {"error": f"rate limited for {KEY}"}, headers={"Retry-After": "1"}),
                  hf_error(401, f"bad token {KEY}"))
        with caplog.at_level(logging.DEBUG):
            with pytest.raises(AuthenticationFailed):
                run_async(collect(make(srv), req()))
    assert caplog.records and all(KEY not in rec.getMessage() for rec in caplog.records)


def test_openai_style_provider_with_model_id_from_the_hub_mapping():
    with LoopbackServer() as srv:
        srv.route("GET", r"/api/models/someone/pixel-model",
                  Reply(200, {"inferenceProviderMapping": {"nebius": {"status": "live", "providerId": "someone/pixel-v2",
                                                                      "task": "text-to-image"}}}))
        srv.route("POST", r"/nebius/v1/images/generations", hf_json_b64())
        events = run_async(collect(make(srv, provider="nebius", model="someone/pixel-model"), req(seed=5, batch=2)))
    assert len(of_type(events, JobImage)) == 2
    assert len(srv.by_route(r"/api/models/.*", "GET")) == 1  # the mapping is looked up once
    assert srv.by_route(r"/api/models/.*")[0].query == "expand%5B%5D=inferenceProviderMapping"
    body = srv.by_route(r"/nebius/.*")[0].json()
    assert body["model"] == "someone/pixel-v2" and body["response_format"] == "b64_json" and body["seed"] == 5


def test_provider_that_does_not_serve_the_model():
    with LoopbackServer() as srv:
        srv.route("GET", r"/api/models/someone/pixel-model", Reply(200, {"inferenceProviderMapping": {}}))
        with pytest.raises(ModelNotFound) as ei:
            run_async(collect(make(srv, provider="together", model="someone/pixel-model"), req()))
    assert "together" in ei.value.user_message
