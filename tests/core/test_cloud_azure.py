"""Azure OpenAI provider: the real ``openai`` SDK (AsyncAzureOpenAI) against a loopback server speaking §4."""

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
from studio_core.providers.cloud.azure_openai import AzureOpenAIProvider
from tests.cloud_servers import (
    AZURE_CONTENT_FILTER,
    AZURE_NO_DEPLOYMENT,
    NOT_AN_IMAGE,
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

KEY = "0123456789abcdef0123456789abcdef"
ROUTE = r"/openai/deployments/sprites-gpt-image/images/generations"


def make(srv: LoopbackServer, *, key: str | None = KEY, timeout: float = 5.0, sleep=None, **kw) -> AzureOpenAIProvider:
    kw.setdefault("deployment", "sprites-gpt-image")
    return AzureOpenAIProvider(api_key=key, endpoint=kw.pop("endpoint", srv.url), timeout=timeout,
                               attempts=kw.pop("attempts", 3), base_delay=0.01, sleep=sleep or RecordingSleep(), **kw)


def req(**kw) -> GenerationRequest:
    return GenerationRequest(prompt=kw.pop("prompt", "a treasure chest, game sprite"), service="azure", **kw)


def test_success_sends_documented_request():
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, openai_images(png_bytes()))
        events = run_async(collect(make(srv), req(options={"background": "transparent"}, quality="high")))
    (img,) = of_type(events, JobImage)
    info = dict(img.info)
    assert info["provider"] == "azure" and info["deployment"] == "sprites-gpt-image" and info["cost_usd"] == 0.034
    (r,) = srv.requests
    assert r.method == "POST" and r.route == ROUTE and r.query == "api-version=2025-04-01-preview"
    assert r.headers["api-key"] == KEY and "authorization" not in r.headers
    assert r.json() == {"model": "sprites-gpt-image", "prompt": "a treasure chest, game sprite", "n": 1,
                        "size": "1024x1024", "output_format": "png", "quality": "medium", "background": "transparent"}


def test_entra_token_is_sent_as_bearer():
    async def token() -> str:
        return "entra-access-token-xyz"

    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, openai_images())
        run_async(collect(make(srv, key=None, auth="entra", token_provider=token), req()))
    r = srv.requests[0]
    assert r.headers["authorization"] == "Bearer entra-access-token-xyz" and "api-key" not in r.headers


def test_several_images():
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, openai_images(png_bytes(), png_bytes()))
        events = run_async(collect(make(srv), req(batch=2)))
    assert len(of_type(events, JobImage)) == 2 and srv.requests[0].json()["n"] == 2


def test_dall_e_3_deployment_uses_its_api_version_and_one_image_per_call():
    with LoopbackServer() as srv:
        srv.route("POST", r"/openai/deployments/dalle3/images/generations", openai_images())
        events = run_async(collect(make(srv, deployment="dalle3", model="dall-e-3"), req(batch=2)))
    assert len(of_type(events, JobImage)) == 2 and len(srv.requests) == 2
    assert srv.requests[0].query == "api-version=2024-10-21" and srv.requests[0].json()["response_format"] == "b64_json"


def test_bad_key():
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, Reply(401, {"error": {"code": "401", "message": "Access denied due to invalid subscription key or wrong API endpoint."}}))
        with pytest.raises(AuthenticationFailed):
            run_async(collect(make(srv), req()))


def test_429_waits_retry_after_and_says_so():
    sleep = RecordingSleep()
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, openai_error(429, "Requests to the Images_Generations_Create Operation have exceeded the rate limit.",
                                              code="429", headers={"Retry-After": "12"}), openai_images())
        events = run_async(collect(make(srv, sleep=sleep), req()))
    assert sleep.delays == [12.0] and "12 s" in of_type(events, JobNotice)[0].message
    assert len(of_type(events, JobImage)) == 1


def test_5xx_then_success():
    sleep = RecordingSleep()
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, openai_error(503, "Service unavailable", type="server_error"), openai_images())
        events = run_async(collect(make(srv, sleep=sleep), req()))
    assert len(sleep.delays) == 1 and len(of_type(events, JobImage)) == 1


def test_timeout_after_sending_is_not_retried():
    # a sent image request may still be made and billed: sending it again could pay twice
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, Reply(200, {"data": []}, delay=5))
        with pytest.raises(RequestTimedOut) as ei:
            run_async(collect(make(srv, timeout=0.3, attempts=3), req()))
    assert len(srv.requests) == 1 and "not sent again" in ei.value.user_message


def test_content_filter_gives_reason_and_categories_without_retry():
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, AZURE_CONTENT_FILTER)
        with pytest.raises(ContentRefused) as ei:
            run_async(collect(make(srv), req()))
    assert "safety system" in ei.value.user_message and "violence" in ei.value.user_message
    assert len(srv.requests) == 1


def test_deployment_that_does_not_exist():
    with LoopbackServer() as srv:
        srv.route("POST", r"/openai/deployments/nope/images/generations", AZURE_NO_DEPLOYMENT)
        with pytest.raises(ModelNotFound) as ei:
            run_async(collect(make(srv, deployment="nope"), req()))
    assert "no deployment named 'nope'" in ei.value.user_message


def test_retired_model_behind_a_deployment():
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, openai_error(410, "The model gpt-image-1 has been retired.", code="ModelRetired"))
        with pytest.raises(ModelNotFound) as ei:
            run_async(collect(make(srv, model="gpt-image-1"), req()))
    assert "gpt-image-1.5" in ei.value.user_message


def test_malformed_body():
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, Reply(200, b"{not json", content_type="application/json"))
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
        with pytest.raises(NotAnImage):
            run_async(collect(make(srv), req()))


def test_unsupported_size_is_clamped_and_said():
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, openai_images())
        events = run_async(collect(make(srv), req(width=640, height=1200)))
    assert srv.requests[0].json()["size"] == "1024x1536" and of_type(events, JobNotice)


@pytest.mark.parametrize("endpoint", ["my-resource.openai.azure.com", "ftp://x", "https://exa mple.com", ""])
def test_endpoint_not_a_url(endpoint):
    with LoopbackServer() as srv:
        with pytest.raises(InvalidRequest) as ei:
            run_async(collect(make(srv, endpoint=endpoint), req()))
    assert "web address" in ei.value.user_message


@pytest.mark.parametrize("deployment", ["", "my deployment", "a/b"])
def test_missing_or_invalid_deployment_name(deployment):
    with LoopbackServer() as srv:
        with pytest.raises(InvalidRequest) as ei:
            run_async(collect(make(srv, deployment=deployment), req()))
    assert "deployment" in ei.value.user_message and srv.requests == []


def test_blank_key_fails_before_any_request():
    with LoopbackServer() as srv:
        with pytest.raises(MissingCredentials):
            run_async(collect(make(srv, key="\t"), req()))
    assert srv.requests == []


def test_key_never_in_errors_or_logs(caplog):
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, Reply(401, {"error": {"code": "401", "message": f"Key {KEY} is invalid."}}))
        with caplog.at_level(logging.DEBUG):
            with pytest.raises(AuthenticationFailed) as ei:
                run_async(collect(make(srv, key=f"{KEY}\n"), req()))
    assert KEY not in ei.value.user_message and KEY not in str(ei.value)
    assert all(KEY not in rec.getMessage() for rec in caplog.records)
    assert srv.requests[0].headers["api-key"] == KEY


def test_check():
    with LoopbackServer() as srv:
        srv.route("GET", r"/openai/models", Reply(200, {"object": "list", "data": []}))
        status = run_async(make(srv).check())
        assert status.state is ServiceState.ready and "sprites-gpt-image" in status.message
        assert srv.requests[0].headers["api-key"] == KEY and "api-version=" in srv.requests[0].query
    with LoopbackServer() as srv:
        srv.route("GET", r"/openai/models", Reply(401, {"error": {"code": "401", "message": "Access denied"}}))
        assert run_async(make(srv).check()).state is ServiceState.needs_key
    assert run_async(AzureOpenAIProvider(api_key=KEY, endpoint="nonsense", deployment="d").check()).state is ServiceState.error


def test_factory_uses_settings_and_stored_key(paths):
    from studio_core.secrets import SecretStore
    from studio_core.services import ServiceRegistry
    from studio_core.settings import SettingsStore

    with LoopbackServer() as srv:
        srv.route("POST", r"/openai/deployments/pixels/images/generations", openai_images())
        settings = SettingsStore(paths.settings_file)
        settings.update_provider("azure", endpoint=srv.url, deployment="pixels", api_version="2025-04-01-preview")
        secrets = SecretStore(paths.secrets_file)
        secrets.set("azure", KEY)
        events = run_async(collect(ServiceRegistry(settings, secrets).provider("azure"), req()))
    assert len(of_type(events, JobImage)) == 1 and srv.requests[0].headers["api-key"] == KEY


def test_entra_without_azure_identity_says_what_to_install():
    try:
        import azure.identity  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("azure-identity is installed here")
    from studio_core.errors import DependencyMissing

    prov = AzureOpenAIProvider(api_key=None, endpoint="https://r.openai.azure.com", deployment="d", auth="entra")
    with pytest.raises(DependencyMissing) as ei:
        run_async(collect(prov, req()))
    assert "azure-identity" in ei.value.user_message
    status = run_async(AzureOpenAIProvider(api_key=None, endpoint="https://r.openai.azure.com", deployment="d", auth="entra").check())
    assert status.state is ServiceState.error and "azure-identity" in status.message


# -- a request for another model (issue 11, item 12) ------------------------------------------

def _price(model: str, quality: str = "medium") -> float | None:
    from studio_core import costs
    from studio_core.providers.cloud import catalog

    return costs.price_per_image("azure", model, width=1024, height=1024, quality=quality,
                                 cat=catalog.load()).per_image


def test_other_model_without_its_own_deployment_is_recorded_as_the_deployment_model():
    with LoopbackServer() as srv:
        srv.route("POST", ROUTE, openai_images())
        events = run_async(collect(make(srv, model="gpt-image-1.5"), req(model="gpt-image-1", quality="high")))
    (r,) = srv.requests
    assert r.route == ROUTE, "the configured deployment is what Azure runs"
    info = dict(of_type(events, JobImage)[0].info)
    assert info["model"] == "gpt-image-1.5" and info["deployment"] == "sprites-gpt-image"
    assert info.get("cost_usd") == _price("gpt-image-1.5") and _price("gpt-image-1.5") != _price("gpt-image-1")
    note = " ".join(n.message for n in of_type(events, JobNotice))
    assert "no deployment set up for gpt-image-1" in note and "recorded and priced as gpt-image-1.5" in note


def test_other_model_with_a_mapped_deployment_goes_to_that_deployment():
    with LoopbackServer() as srv:
        srv.route("POST", r"/openai/deployments/img-one/images/generations", openai_images())
        srv.route("POST", ROUTE, openai_images())
        prov = make(srv, model="gpt-image-1.5", deployments="gpt-image-1=img-one, dall-e-3=my-dalle")
        events = run_async(collect(prov, req(model="gpt-image-1", quality="high")))
    (r,) = srv.requests
    assert r.route == "/openai/deployments/img-one/images/generations"
    info = dict(of_type(events, JobImage)[0].info)
    assert info["model"] == "gpt-image-1" and info["deployment"] == "img-one"
    assert info.get("cost_usd") == _price("gpt-image-1")
    assert not [n for n in of_type(events, JobNotice) if "no deployment" in n.message]


def test_deployments_setting_is_read_from_text_or_a_mapping():
    from studio_core.providers.cloud.azure_openai import parse_deployments

    assert parse_deployments("dall-e-3 = my-dalle; gpt-image-1=img1,bad=has space, =x") == {
        "dall-e-3": "my-dalle", "gpt-image-1": "img1"}
    assert parse_deployments({"gpt-image-1": "img1"}) == {"gpt-image-1": "img1"}
    assert parse_deployments(None) == {}
