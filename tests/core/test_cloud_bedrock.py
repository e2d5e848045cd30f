"""Bedrock provider against a loopback server speaking InvokeModel's wire format (providers.md §3)."""

from __future__ import annotations

import asyncio
import base64
import logging
import re

import pytest

pytest.importorskip("botocore")

from studio_core.errors import (
    AuthenticationFailed,
    MissingCredentials,
    ContentRefused,
    InvalidRequest,
    InvalidResponse,
    ModelNotFound,
    NotAnImage,
    RequestTimedOut,
)
from studio_core.models import GenerationRequest, JobImage, JobNotice, JobStarted, ServiceState
from studio_core.providers.cloud import bedrock
from studio_core.providers.cloud.bedrock import BedrockConfig, BedrockProvider
from studio_core.providers.cloud import catalog
from studio_core.secrets import SecretStore
from studio_core.settings import Settings
from tests.cloud_servers_b import Reply, ScriptedServer, b64png, huge_png_header, png
from tests.conftest import run_async

TITAN = "amazon.titan-image-generator-v2:0"
SD35 = "stability.sd3-5-large-v1:0"
AKID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
API_KEY = "ABSKQmVkcm9ja0FQSUtleS1leGFtcGxlLXRlc3Qta2V5"
CAT = catalog.parse({"providers": {"bedrock": {"default_model": TITAN, "models": [
    {"id": TITAN, "label": "Titan Image Generator v2", "family": "titan", "max_batch": 5,
     "sizes": ["1024x1024", "1152x768", "768x1152", "512x512"],
     "price": {"usd_per_image": 0.01, "tiers": {"standard": 0.01, "premium": 0.012}}},
    {"id": SD35, "label": "SD3.5 Large", "family": "stability", "max_batch": 1, "price_per_image": 0.08,
     "aspect_sizes": {"1:1": "1024x1024", "16:9": "1344x768", "9:16": "768x1344", "3:2": "1216x832"}},
    {"id": "amazon.nova-canvas-v1:0", "label": "Nova Canvas", "family": "nova", "status": "retired",
     "retired_on": "2026-09-30", "replacement": TITAN, "size_range": {"min": 320, "max": 4096, "multiple": 16}},
]}}})


def aws_error(status: int, code: str, message: str, **headers: str) -> Reply:
    return Reply(status, {"message": message},
                 {"x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazon.bedrock/",
                  "x-amzn-RequestId": "0f0e0d0c-aaaa-bbbb-cccc-000000000000", **headers})


def titan_ok(n: int = 1) -> Reply:
    return Reply(200, {"images": [b64png(color=(i * 40, 10, 10, 255)) for i in range(n)], "error": None})


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path):
    """Static env credentials; no real AWS files, no instance-metadata lookups."""
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AKID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    return tmp_path


@pytest.fixture
def server():
    with ScriptedServer() as s:
        yield s


class Sleeps(list):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make(server: ScriptedServer, *, api_key: str | None = None, sleeps: Sleeps | None = None, **cfg) -> BedrockProvider:
    cfg.setdefault("region", "us-west-2")
    cfg.setdefault("endpoint", server.url)
    cfg.setdefault("base_delay", 0.01)
    p = BedrockProvider(BedrockConfig(**cfg), api_key=api_key, sleep=sleeps if sleeps is not None else Sleeps())
    p.catalog = CAT
    return p


def collect(provider: BedrockProvider, request: GenerationRequest) -> list:
    async def go():
        try:
            return [e async for e in provider.generate(request, job_id="j1")]
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
    kw.setdefault("prompt", "a pixel-art fox")
    kw.setdefault("service", "bedrock")
    return GenerationRequest(**kw)


def images(events: list) -> list[JobImage]:
    return [e for e in events if isinstance(e, JobImage)]


def assert_valid_sigv4(server: ScriptedServer, seen, *, akid: str = AKID, secret: str = SECRET, region: str = "us-west-2"):
    """Recompute the signature from the bytes that arrived: proves botocore signed what httpx sent."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    auth = seen.headers["authorization"]
    m = re.fullmatch(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/bedrock/aws4_request, "
                     r"SignedHeaders=([a-z0-9;\-]+), Signature=([0-9a-f]{64})", auth)
    assert m, auth
    assert m.group(1) == akid and m.group(3) == region
    assert seen.headers["x-amz-date"].startswith(m.group(2))
    signed = m.group(4).split(";")
    assert {"host", "x-amz-date"} <= set(signed)
    request = AWSRequest(method=seen.method, url=server.url + seen.path, data=seen.body,
                         headers={h: seen.headers[h] for h in signed})
    request.context["timestamp"] = seen.headers["x-amz-date"]
    signer = SigV4Auth(Credentials(akid, secret), "bedrock", region)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    assert m.group(5) == expected


# -- success ------------------------------------------------------------------------------

def test_titan_text_image_signed_with_sigv4(server):
    reply = titan_ok()
    server.push(reply)
    events = collect(make(server), req(width=1024, height=1024, seed=42, negative_prompt="blurry", cfg=7.5))
    assert isinstance(events[0], JobStarted)
    (img,) = images(events)
    assert img.data == base64.b64decode(reply.body["images"][0])
    assert img.seed == 42 and img.mime == "image/png"
    info = dict(img.info)
    assert info["provider"] == "bedrock" and info["model"] == TITAN and info["cost_usd"] == 0.01
    (seen,) = server.requests
    assert seen.method == "POST"
    assert seen.path == "/model/amazon.titan-image-generator-v2%3A0/invoke"
    assert seen.headers["content-type"] == "application/json"
    assert_valid_sigv4(server, seen)
    assert seen.json() == {
        "taskType": "TEXT_IMAGE",
        "textToImageParams": {"text": "a pixel-art fox", "negativeText": "blurry"},
        "imageGenerationConfig": {"numberOfImages": 1, "quality": "standard", "cfgScale": 7.5,
                                  "height": 1024, "width": 1024, "seed": 42},
    }


def test_several_images_in_one_titan_call(server):
    server.push(titan_ok(3))
    events = collect(make(server), req(batch=3, seed=7))
    got = images(events)
    assert [i.index for i in got] == [0, 1, 2]
    assert len({i.data for i in got}) == 3
    assert server.requests[0].json()["imageGenerationConfig"]["numberOfImages"] == 3


def test_size_is_clamped_to_a_supported_one_and_said(server):
    server.push(titan_ok())
    events = collect(make(server), req(width=1200, height=800))
    notes = [e.message for e in events if isinstance(e, JobNotice)]
    assert any("1152×768" in n for n in notes)
    cfg = server.requests[0].json()["imageGenerationConfig"]
    assert (cfg["width"], cfg["height"]) == (1152, 768)


def test_stability_one_call_per_image_with_aspect_ratio(server):
    server.push(Reply(200, {"seeds": [111], "finish_reasons": [None], "images": [b64png()]}),
                Reply(200, {"seeds": [222], "finish_reasons": [None], "images": [b64png(color=(1, 2, 3, 255))]}))
    events = collect(make(server), req(model=SD35, width=1920, height=1080, batch=2, seed=5, negative_prompt="text"))
    got = images(events)
    assert [i.seed for i in got] == [111, 222]
    assert any("16:9" in e.message for e in events if isinstance(e, JobNotice))
    first = server.requests[0]
    assert first.path == "/model/stability.sd3-5-large-v1%3A0/invoke"
    assert first.json() == {"prompt": "a pixel-art fox", "mode": "text-to-image", "aspect_ratio": "16:9", "seed": 5,
                            "negative_prompt": "text", "output_format": "png"}
    assert server.requests[1].json()["seed"] == 6
    assert dict(got[0].info)["cost_usd"] == 0.08


def test_profile_credentials_and_region_from_aws_config(server, aws_env, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    (aws_env / "aws-config").write_text("[profile art]\nregion = eu-west-1\n")
    (aws_env / "aws-credentials").write_text("[art]\naws_access_key_id = AKIDPROFILE\n"
                                             "aws_secret_access_key = profilesecret\naws_session_token = tok123\n")
    server.push(titan_ok())
    collect(make(server, region="", profile="art"), req())
    (seen,) = server.requests
    assert seen.headers["x-amz-security-token"] == "tok123"
    assert_valid_sigv4(server, seen, akid="AKIDPROFILE", secret="profilesecret", region="eu-west-1")


def test_unknown_profile_says_so(server):
    with pytest.raises(Exception) as info:
        collect(make(server, profile="nope"), req())
    assert "profile 'nope'" in info.value.user_message
    assert server.requests == []


def test_api_key_is_sent_as_bearer_from_the_secret_store(server, paths, monkeypatch):
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", API_KEY)
    settings = Settings(providers={"bedrock": {"endpoint": server.url, "region": "us-east-1"}})
    provider = bedrock.create(settings, SecretStore(paths.secrets_file))
    provider.catalog = CAT
    server.push(titan_ok())
    collect(provider, req())
    (seen,) = server.requests
    assert seen.headers["authorization"] == f"Bearer {API_KEY}"
    assert "x-amz-date" not in seen.headers


def test_malformed_api_key_is_refused_before_sending(server):
    with pytest.raises(MissingCredentials) as info:
        collect(make(server, api_key="abc def"), req())
    assert "spaces" in info.value.user_message
    assert server.requests == []


def test_transparent_background_runs_titan_background_removal(server):
    cut = b64png(color=(0, 0, 0, 0))
    first = titan_ok()
    server.push(first, Reply(200, {"images": [cut]}))
    events = collect(make(server), req(options={"background": "transparent"}))
    (img,) = images(events)
    assert img.data == base64.b64decode(cut)
    second = server.requests[1].json()
    assert second["taskType"] == "BACKGROUND_REMOVAL"
    assert second["backgroundRemovalParams"]["image"] == first.body["images"][0]
    assert dict(img.info)["background"] == "transparent"
    assert dict(img.info)["cost_usd"] == 0.02  # generation plus the background-removal call


# -- errors and retries ---------------------------------------------------------------------

def test_rejected_credentials_are_not_retried_and_no_secret_leaks(server, caplog):
    caplog.set_level(logging.DEBUG)
    server.push(aws_error(403, "UnrecognizedClientException", "The security token included in the request is invalid."))
    with pytest.raises(AuthenticationFailed) as info:
        collect(make(server), req())
    assert len(server.requests) == 1
    text = str(info.value) + info.value.user_message + caplog.text
    assert SECRET not in text and "credentials" in info.value.user_message


def test_bearer_key_rejected_without_leaking_it(server, caplog):
    caplog.set_level(logging.DEBUG)
    server.push(aws_error(403, "AccessDeniedException", "Authentication failed: invalid API key"))
    with pytest.raises(AuthenticationFailed) as info:
        collect(make(server, api_key=API_KEY), req())
    assert API_KEY not in str(info.value) + info.value.user_message + caplog.text + repr(info.value)


def test_model_access_not_granted(server):
    server.push(aws_error(403, "AccessDeniedException", "You don't have access to the model with the specified model ID."))
    with pytest.raises(AuthenticationFailed) as info:
        collect(make(server), req())
    assert "Enable model access in the Bedrock console" in info.value.user_message
    assert "us-west-2" in info.value.user_message


def test_throttling_waits_retry_after_then_succeeds(server):
    sleeps = Sleeps()
    server.push(aws_error(429, "ThrottlingException", "Too many requests, please wait before trying again.",
                          **{"Retry-After": "7"}), titan_ok())
    events = collect(make(server, sleeps=sleeps), req())
    assert sleeps == [7.0]
    notice = [e for e in events if isinstance(e, JobNotice)]
    assert notice and "Retrying in 7 s" in notice[0].message
    assert len(images(events)) == 1
    assert len(server.requests) == 2
    for seen in server.requests:  # signed afresh for each attempt
        assert_valid_sigv4(server, seen)


def test_service_unavailable_then_success(server):
    sleeps = Sleeps()
    server.push(aws_error(503, "ServiceUnavailableException", "Service is unavailable."),
                aws_error(429, "ModelNotReadyException", "Model is not ready."), titan_ok())
    events = collect(make(server, sleeps=sleeps), req())
    assert len(sleeps) == 2 and len(images(events)) == 1


def test_gives_up_after_bounded_retries(server):
    for _ in range(3):
        server.push(aws_error(500, "InternalServerException", "boom"))
    with pytest.raises(Exception) as info:
        collect(make(server, attempts=3), req())
    assert info.value.retryable and len(server.requests) == 3


def test_timeout_after_sending_is_not_retried(server):
    server.push(Reply(200, {"images": []}, delay=5))
    p = make(server, attempts=3)
    import httpx

    p._client = httpx.AsyncClient(timeout=httpx.Timeout(0.3))
    with pytest.raises(RequestTimedOut) as ei:
        collect(p, req())
    assert len(server.requests) == 1 and "not sent again" in ei.value.user_message


def test_input_blocked_by_content_filter(server):
    server.push(aws_error(400, "ValidationException", "This request has been blocked by our content filters. "
                                                      "Please adjust your text prompt to submit a new request."))
    with pytest.raises(ContentRefused) as info:
        collect(make(server), req())
    assert "blocked by our content filters" in info.value.user_message
    assert len(server.requests) == 1


def test_output_blocked_on_200(server):
    server.push(Reply(200, {"images": [], "error": "All of the generated images have been blocked by our content filters."}))
    with pytest.raises(ContentRefused):
        collect(make(server), req())


def test_stability_filter_reason(server):
    server.push(Reply(200, {"seeds": [1], "finish_reasons": ["Filter reason: prompt"]}))
    with pytest.raises(ContentRefused) as info:
        collect(make(server), req(model=SD35))
    assert "Filter reason: prompt" in info.value.user_message


@pytest.mark.parametrize("reply", [
    aws_error(400, "ValidationException", "The provided model identifier is invalid."),
    aws_error(404, "ResourceNotFoundException", "Model not found."),
    aws_error(400, "ValidationException", "This model version has reached the end of its life."),
])
def test_retired_or_unknown_model_names_the_default(server, reply):
    server.push(reply)
    with pytest.raises(ModelNotFound) as info:
        collect(make(server), req(model="amazon.nova-canvas-v1:0"))
    assert TITAN in info.value.user_message


def test_legacy_model_gets_a_notice(server):
    server.push(titan_ok())
    events = collect(make(server), req(model="amazon.nova-canvas-v1:0", options={"style": "FLAT_VECTOR_ILLUSTRATION"}))
    assert any("legacy" in e.message and "2026-09-30" in e.message for e in events if isinstance(e, JobNotice))
    assert server.requests[0].json()["textToImageParams"]["style"] == "FLAT_VECTOR_ILLUSTRATION"


def test_malformed_body(server):
    server.push(Reply(200, '{"images": [', {"Content-Type": "application/json"}))
    with pytest.raises(InvalidResponse):
        collect(make(server), req())


def test_body_that_is_not_an_image(server):
    server.push(Reply(200, {"images": [base64.b64encode(b"<html>hello</html>").decode()]}))
    with pytest.raises(NotAnImage):
        collect(make(server), req())


def test_oversized_image_is_refused(server):
    server.push(Reply(200, {"images": [base64.b64encode(huge_png_header()).decode()]}))
    with pytest.raises(NotAnImage) as info:
        collect(make(server), req())
    assert "too large" in info.value.user_message


def test_cancellation_aborts_the_request(server):
    server.push(Reply(200, {"images": [b64png()]}, delay=30))
    provider = make(server)

    async def go():
        got = []

        async def consume():
            async for e in provider.generate(req(), job_id="j1"):
                got.append(e)

        task = asyncio.create_task(consume())
        while not server.requests:
            await asyncio.sleep(0.01)
        await provider.cancel("j1")
        with pytest.raises(asyncio.CancelledError):
            await task
        await provider.aclose()
        return got

    got = run_async(go())
    assert [type(e) for e in got] == [JobStarted]


# -- settings and check() --------------------------------------------------------------------

def test_wrong_region_format_is_explained(server):
    status = checked(make(server, region="us-east1"))
    assert status.state == ServiceState.error and "not an AWS region name" in status.message
    assert server.requests == []


def test_endpoint_that_is_not_a_url(server):
    with pytest.raises(InvalidRequest) as info:
        collect(make(server, endpoint="bedrock.example"), req())
    assert "must be a web address" in info.value.user_message


def test_check_reads_the_foundation_model(server):
    server.push(Reply(200, {"modelDetails": {"modelId": TITAN, "modelLifecycle": {"status": "ACTIVE"}}}))
    status = checked(make(server))
    assert status.state == ServiceState.ready and "ACTIVE" in status.message
    (seen,) = server.requests
    assert seen.method == "GET" and seen.path == "/foundation-models/amazon.titan-image-generator-v2%3A0"
    assert_valid_sigv4(server, seen)


def test_check_without_credentials_needs_key(server, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    status = checked(make(server))
    assert status.state == ServiceState.needs_key and "Bedrock API key" in status.message


def test_check_unreachable(server):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    status = checked(make(server, endpoint=f"http://127.0.0.1:{port}", attempts=1))
    assert status.state == ServiceState.unreachable and "us-west-2" in status.message


def test_png_helper_is_a_png():
    assert png().startswith(b"\x89PNG")


def test_real_catalog_has_the_bedrock_default_and_titan_sizes():
    spec = catalog.provider("bedrock")
    assert spec.default_model == TITAN
    assert (1024, 1024) in spec.model(TITAN).sizes
    assert spec.model(SD35).fit(1920, 1080)[2] == "16:9"


def test_unknown_region_is_reported_as_unreachable_with_the_region(monkeypatch):
    import httpx

    hosts = []

    def refuse(request: httpx.Request) -> httpx.Response:
        hosts.append(request.url.host)
        raise httpx.ConnectError("name or service not known", request=request)

    p = BedrockProvider(BedrockConfig(region="xx-nowhere-9", attempts=1),
                        client=httpx.AsyncClient(transport=httpx.MockTransport(refuse)))
    p.catalog = CAT
    status = checked(p)
    assert hosts == ["bedrock.xx-nowhere-9.amazonaws.com"]
    assert status.state == ServiceState.unreachable and "xx-nowhere-9" in status.message
    p = BedrockProvider(BedrockConfig(region="xx-nowhere-9", attempts=1),
                        client=httpx.AsyncClient(transport=httpx.MockTransport(refuse)))
    with pytest.raises(Exception) as info:
        collect(p, req())
    assert hosts[-1] == "bedrock-runtime.xx-nowhere-9.amazonaws.com" and "region xx-nowhere-9" in info.value.user_message


def test_key_echoed_in_an_error_is_scrubbed(server):
    server.push(aws_error(400, "ValidationException", f"bad header Authorization: Bearer {API_KEY}"))
    with pytest.raises(Exception) as info:
        collect(make(server, api_key=API_KEY), req())
    assert API_KEY not in str(info.value) + info.value.user_message


def test_expired_sso_login_says_run_aws_sso_login(server, aws_env, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("HOME", str(aws_env))  # no ~/.aws/sso/cache token here
    (aws_env / "aws-config").write_text(
        "[profile art-sso]\nsso_session = studio\nsso_account_id = 111122223333\nsso_role_name = Artist\nregion = us-west-2\n"
        "[sso-session studio]\nsso_start_url = https://example.awsapps.com/start\nsso_region = us-east-1\n")
    status = checked(make(server, region="", profile="art-sso"))
    assert status.state == ServiceState.needs_key
    assert "aws sso login --profile art-sso" in status.message
    assert server.requests == []


def test_premium_quality_is_sent_and_priced(server):
    server.push(titan_ok())
    events = collect(make(server), req(quality="high"))
    assert server.requests[0].json()["imageGenerationConfig"]["quality"] == "premium"
    info = dict(images(events)[0].info)
    assert info["cost_usd"] == 0.012 and info["quality"] == "premium" and info["region"] == "us-west-2"


def test_check_rejected_credentials_vs_no_permission_to_read_model_info(server):
    server.push(aws_error(403, "UnrecognizedClientException", "The security token included in the request is invalid."))
    assert checked(make(server)).state == ServiceState.needs_key
    server.push(aws_error(403, "AccessDeniedException", "User is not authorized to perform: bedrock:GetFoundationModel"))
    status = checked(make(server))
    assert status.state == ServiceState.ready and "GetFoundationModel" in status.message
