"""OpenAI provider: the real ``openai`` SDK pointed at a loopback server speaking §6 of providers.md."""

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
    QuotaExceeded,
    RequestTimedOut,
)
from studio_core.models import GenerationRequest, JobImage, JobNotice, ServiceState
from studio_core.providers.cloud.openai_images import OpenAIImagesProvider
from tests.cloud_servers import (
    NOT_AN_IMAGE,
    OPENAI_MODERATION,
    LoopbackServer,
    RecordingSleep,
    Reply,
    collect,
    huge_png_header,
    of_type,
    openai_error,
    openai_images,
    png_bytes,
)
from tests.conftest import run_async

KEY = "sk-test-SECRET1234567890abcdef"
ROUTE = r"/v1/images/generations"


def make(srv: LoopbackServer, *, key: str | None = KEY, timeout: float = 5.0, sleep=None, **kw) -> OpenAIImagesProvider:
    return OpenAIImagesProvider(api_key=key, endpoint=srv.url + "/v1", timeout=timeout, attempts=kw.pop("attempts", 3),
                                base_delay=0.01, sleep=sleep or RecordingSleep(), **kw)


def req(**kw) -> GenerationRequest:
    return GenerationRequest(prompt=kw.pop("prompt", "a potion bottle sprite"), service="openai", **kw)


def test_success_sends_documented_request():
    usage = {"input_tokens": 12, "input_tokens_details": {"text_tokens": 12, "image_tokens": 0}, "output_tokens": 1056,
             "output_tokens_details": {"image_tokens": 1056, "text_tokens": 0}, "total_tokens": 1068}
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, openai_images(png_bytes(), usage=usage, background="transparent", output_format="png"))
        events = run_async(collect(make(srv), req(options={"background": "transparent"})))
    (img,) = of_type(events, JobImage)
    assert img.mime == "image/png" and img.seed is None
    info = dict(img.info)
    assert info["provider"] == "openai" and info["model"] == "gpt-image-1.5" and info["cost_usd"] == 0.009
    assert info["background"] == "transparent" and info["quality"] == "low"
    (r,) = srv.requests
    assert r.method == "POST" and r.route == ROUTE
    assert r.headers["authorization"] == f"Bearer {KEY}" and r.headers["content-type"] == "application/json"
    assert r.json() == {"model": "gpt-image-1.5", "prompt": "a potion bottle sprite", "n": 1, "size": "1024x1024",
                        "output_format": "png", "quality": "low", "background": "transparent"}


def test_several_images_with_n():
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, openai_images(png_bytes(), png_bytes(), png_bytes()))
        events = run_async(collect(make(srv), req(batch=3, quality="ultra")))
    assert [i.index for i in of_type(events, JobImage)] == [0, 1, 2]
    assert srv.requests[0].json()["n"] == 3 and srv.requests[0].json()["quality"] == "high"
    assert dict(of_type(events, JobImage)[0].info)["cost_usd"] == 0.133


def test_token_priced_model_costs_from_usage():
    usage = {"input_tokens": 10, "input_tokens_details": {"text_tokens": 10, "image_tokens": 0}, "output_tokens": 1000,
             "total_tokens": 1010}
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, openai_images(png_bytes(), usage=usage))
        events = run_async(collect(make(srv, model="gpt-image-2.6-sunburst"), req()))
    assert dict(of_type(events, JobImage)[0].info)["cost_usd"] == pytest.approx(1000 * 30 / 1e6 + 10 * 5 / 1e6)


def test_bad_key():
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, openai_error(401, "Incorrect API key provided: sk-test-***cdef.", code="invalid_api_key"))
        with pytest.raises(AuthenticationFailed):
            run_async(collect(make(srv), req()))
    assert len(srv.requests) == 1  # the SDK's own retries are off


def test_429_waits_retry_after_and_says_so():
    sleep = RecordingSleep()
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, openai_error(429, "Rate limit reached for images per minute.", code="rate_limit_exceeded",
                                              type="requests", headers={"Retry-After": "7"}), openai_images())
        events = run_async(collect(make(srv, sleep=sleep), req()))
    assert sleep.delays == [7.0] and "7 s" in of_type(events, JobNotice)[0].message
    assert len(of_type(events, JobImage)) == 1 and len(srv.requests) == 2


def test_insufficient_quota_is_not_retried():
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, openai_error(429, "You exceeded your current quota, please check your plan and billing details.",
                                              code="insufficient_quota", type="insufficient_quota"))
        with pytest.raises(QuotaExceeded):
            run_async(collect(make(srv), req()))
    assert len(srv.requests) == 1


def test_5xx_then_success():
    sleep = RecordingSleep()
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, openai_error(500, "The server had an error processing your request.", type="server_error"),
                  openai_images())
        events = run_async(collect(make(srv, sleep=sleep), req()))
    assert len(sleep.delays) == 1 and len(of_type(events, JobImage)) == 1


def test_timeout_after_sending_is_not_retried():
    # a sent image request may still be made and billed: sending it again could pay twice
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, Reply(200, {"data": []}, delay=5))
        with pytest.raises(RequestTimedOut) as ei:
            run_async(collect(make(srv, timeout=0.3, attempts=3), req()))
    assert len(srv.requests) == 1 and "not sent again" in ei.value.user_message


def test_moderation_refusal_gives_reason_without_retry():
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, OPENAI_MODERATION)
        with pytest.raises(ContentRefused) as ei:
            run_async(collect(make(srv), req()))
    assert "safety system" in ei.value.user_message and len(srv.requests) == 1


def test_retired_model_names_the_default():
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, openai_error(404, "The model `dall-e-3` has been deprecated. Learn more: https://platform.openai.com/docs/deprecations",
                                              code="model_not_found"))
        with pytest.raises(ModelNotFound) as ei:
            run_async(collect(make(srv, model="dall-e-3"), req()))
    msg = ei.value.user_message
    assert "retired" in msg and "2026-05-12" in msg and "gpt-image-1.5" in msg
    assert srv.requests[0].json()["response_format"] == "b64_json"


def test_model_not_found_as_400():
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, openai_error(400, "The model `gpt-image-1` does not exist.", code="model_not_found"))
        with pytest.raises(ModelNotFound) as ei:
            run_async(collect(make(srv, model="gpt-image-1"), req()))
    assert "2026-10-23" in ei.value.user_message


def test_malformed_body():
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, Reply(200, b'{"created": 1, "data": [{"b64_json": "iVBOR', content_type="application/json"))
        with pytest.raises(InvalidResponse):
            run_async(collect(make(srv), req()))


def test_body_that_is_not_an_image():
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, openai_images(NOT_AN_IMAGE))
        with pytest.raises(NotAnImage):
            run_async(collect(make(srv), req()))


def test_oversized_image():
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, openai_images(huge_png_header()))
        with pytest.raises(NotAnImage) as ei:
            run_async(collect(make(srv), req()))
    assert "too large" in ei.value.user_message


def test_unsupported_size_is_clamped_and_said():
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, openai_images())
        events = run_async(collect(make(srv), req(width=1920, height=1080)))
    assert srv.requests[0].json()["size"] == "1536x1024"
    assert "1536×1024" in of_type(events, JobNotice)[0].message


def test_transparency_refused_by_model_is_said_and_not_sent():
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, openai_images())
        events = run_async(collect(make(srv, model="dall-e-2"), req(options={"background": "transparent"}, width=512, height=512)))
    assert "background" not in srv.requests[0].json()
    assert any("transparent" in n.message for n in of_type(events, JobNotice))


@pytest.mark.parametrize("bad", ["", "sk-abc def ghijkl", "sk-\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"])
def test_bad_key_shape_fails_before_any_request(bad):
    with LoopbackServer() as srv:
        with pytest.raises(MissingCredentials):
            run_async(collect(make(srv, key=bad), req()))
    assert srv.requests == []


def test_endpoint_not_a_url():
    with pytest.raises(InvalidRequest):
        run_async(collect(OpenAIImagesProvider(api_key=KEY, endpoint="api.openai.com v1"), req()))


def test_key_never_in_errors_or_logs(caplog):
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, openai_error(401, f"Incorrect API key provided: {KEY}.", code="invalid_api_key"))
        with caplog.at_level(logging.DEBUG):
            with pytest.raises(AuthenticationFailed) as ei:
                run_async(collect(make(srv, key=f" {KEY} "), req()))
    assert KEY not in ei.value.user_message and KEY not in str(ei.value)
    assert all(KEY not in rec.getMessage() for rec in caplog.records)
    assert srv.requests[0].headers["authorization"] == f"Bearer {KEY}"  # stripped


def test_check():
    with LoopbackServer() as srv:
        srv.route("GET", r"/v1/models/gpt-image-1\.5", Reply(200, {"id": "gpt-image-1.5", "object": "model", "created": 1, "owned_by": "system"}))
        status = run_async(make(srv).check())
        assert status.state is ServiceState.ready
        assert srv.requests[0].headers["authorization"] == f"Bearer {KEY}"
    with LoopbackServer() as srv:
        srv.route("GET", r"/v1/models/.*", openai_error(401, "Incorrect API key provided", code="invalid_api_key"))
        assert run_async(make(srv).check()).state is ServiceState.needs_key
    assert run_async(OpenAIImagesProvider(api_key="", endpoint="http://127.0.0.1:9/v1").check()).state is ServiceState.needs_key
    status = run_async(OpenAIImagesProvider(api_key=KEY, endpoint="http://127.0.0.1:9/v1", timeout=1).check())
    assert status.state is ServiceState.unreachable


def test_request_model_overrides_settings_model():
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, openai_images())
        events = run_async(collect(make(srv), req(model="gpt-image-1-mini")))
    assert srv.requests[0].json()["model"] == "gpt-image-1-mini"
    assert dict(of_type(events, JobImage)[0].info)["model"] == "gpt-image-1-mini"


def test_factory_uses_settings_and_env_key(paths, monkeypatch):
    from studio_core.secrets import SecretStore
    from studio_core.services import ServiceRegistry
    from studio_core.settings import SettingsStore

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, openai_images())
        settings = SettingsStore(paths.settings_file)
        settings.update_provider("openai", endpoint=srv.url + "/v1", model="gpt-image-2", quality="high")
        prov = ServiceRegistry(settings, SecretStore(paths.secrets_file)).provider("openai")
        events = run_async(collect(prov, req(width=1280, height=720)))
    body = srv.requests[0].json()
    assert body["model"] == "gpt-image-2" and body["size"] == "1280x720" and body["quality"] == "high"
    assert not of_type(events, JobNotice)  # gpt-image-2 takes any ×16 size
