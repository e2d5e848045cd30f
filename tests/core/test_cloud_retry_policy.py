"""Which failed cloud requests are sent again (issue 11, item 9).

A generation request that reached the service and got no answer may still be made and
billed, so it is never re-sent; only a request that never left (the connection was
refused or could not be opened in time) is. Loopback servers only.
"""

from __future__ import annotations

import httpx
import openai
import pytest

from studio_core.errors import ConnectionLost, ProviderUnavailable, RequestTimedOut
from studio_core.models import GenerationRequest, JobImage, JobNotice
from studio_core.providers.cloud.azure_openai import AzureOpenAIProvider
from studio_core.providers.cloud.common import (
    attempts_setting,
    clamp_timeout,
    error_for_status,
    never_sent,
    timeout_setting,
    transport_error,
    with_retries,
)
from studio_core.providers.cloud.huggingface import HuggingFaceProvider
from studio_core.providers.cloud.openai_images import OpenAIImagesProvider
from tests.cloud_servers import (
    LoopbackServer,
    RecordingSleep,
    Reply,
    StartServerOnFirstWait,
    closed_port,
    collect,
    hf_image,
    of_type,
    openai_images,
    png_bytes,
)
from tests.conftest import run_async

KEY = "sk-proj-TESTkey0123456789abcdefWXYZ"
HF_ROUTE = r"/hf-inference/models/black-forest-labs/FLUX\.1-schnell"
OPENAI_ROUTE = r"/v1/images/generations"
AZURE_ROUTE = r"/openai/deployments/sprites/images/generations"


def hf(url: str, **kw) -> HuggingFaceProvider:
    return HuggingFaceProvider(api_key="hf_TESTtoken0123456789", endpoint=url, hub_endpoint=url, base_delay=0.01, **kw)


def oai(url: str, **kw) -> OpenAIImagesProvider:
    return OpenAIImagesProvider(api_key=KEY, endpoint=url + "/v1", base_delay=0.01, **kw)


def azure(url: str, **kw) -> AzureOpenAIProvider:
    return AzureOpenAIProvider(api_key="0123456789abcdef0123456789abcdef", endpoint=url, deployment="sprites",
                               base_delay=0.01, **kw)


PROVIDERS = {
    "huggingface": (hf, HF_ROUTE, lambda: hf_image()),
    "openai": (oai, OPENAI_ROUTE, lambda: openai_images(png_bytes())),
    "azure": (azure, AZURE_ROUTE, lambda: openai_images(png_bytes())),
}


def req(service: str) -> GenerationRequest:
    return GenerationRequest(prompt="a slime enemy, game sprite", service=service)


@pytest.mark.parametrize("service", list(PROVIDERS))
def test_a_generation_that_was_sent_and_not_answered_is_sent_once(service):
    make, route, _ = PROVIDERS[service]
    sleep = RecordingSleep()
    with LoopbackServer() as srv:
        # reads the whole body, then hangs: the service has the request but never answers
        srv.route("POST", route, Reply(200, png_bytes(), delay=30))
        with pytest.raises(RequestTimedOut) as ei:
            run_async(collect(make(srv.url, timeout=1.0, attempts=3, sleep=sleep), req(service)))
    assert len(srv.by_route(route, "POST")) == 1 and sleep.delays == []
    err = ei.value
    assert err.sent and not err.retryable
    assert "may still be made and billed" in err.user_message and "not sent again" in err.user_message


@pytest.mark.parametrize("service", list(PROVIDERS))
def test_a_refused_connection_is_retried_and_then_succeeds(service):
    make, route, reply = PROVIDERS[service]
    port = closed_port()
    sleep = StartServerOnFirstWait(lambda: LoopbackServer(port=port).route("POST", route, reply()))
    try:
        events = run_async(collect(make(f"http://127.0.0.1:{port}", timeout=5.0, attempts=3, sleep=sleep), req(service)))
    finally:
        sleep.close()
    assert len(sleep.delays) == 1, "one wait, then the second try reached the server"
    assert len(of_type(events, JobImage)) == 1 and len(sleep.server.requests) == 1
    assert "Retrying" in of_type(events, JobNotice)[0].message


def test_a_gateway_timeout_on_a_generation_is_not_retried():
    sleep = RecordingSleep()
    with LoopbackServer() as srv:
        srv.route("POST", HF_ROUTE, Reply(504, {"error": "upstream timed out"}), hf_image())
        with pytest.raises(RequestTimedOut) as ei:
            run_async(collect(hf(srv.url, attempts=3, sleep=sleep), req("huggingface")))
    assert len(srv.requests) == 1 and not ei.value.retryable and "billed" in ei.value.user_message


def test_a_connection_dropped_after_sending_is_not_retried():
    import socket
    import threading

    # accepts, reads the request, then closes without a word
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    got: list[bytes] = []

    def serve() -> None:
        for _ in range(3):
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                got.append(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    sleep = RecordingSleep()
    try:
        with pytest.raises(ConnectionLost) as ei:
            run_async(collect(hf(f"http://127.0.0.1:{port}", timeout=5.0, attempts=3, sleep=sleep), req("huggingface")))
    finally:
        listener.close()
    assert len(got) == 1 and sleep.delays == [] and "not sent again" in ei.value.user_message


# -- the classification itself ------------------------------------------------------------------

def _request() -> httpx.Request:
    return httpx.Request("POST", "http://127.0.0.1:9/x")


@pytest.mark.parametrize("exc, sent", [
    (httpx.ConnectError("refused", request=_request()), False),
    (httpx.ConnectTimeout("slow connect", request=_request()), False),
    (httpx.PoolTimeout("no free connection", request=_request()), False),
    (httpx.ReadTimeout("no answer", request=_request()), True),
    (httpx.WriteTimeout("stuck sending", request=_request()), True),
    (httpx.RemoteProtocolError("server hung up", request=_request()), True),
    (TimeoutError(), True),
])
def test_only_failures_before_sending_count_as_not_sent(exc, sent):
    assert never_sent(exc) is (not sent)
    err = transport_error("X", exc)
    assert err.retryable is (not sent)
    # a read (check, poll, download) may always be asked again
    assert transport_error("X", exc, idempotent=True).retryable


def test_sdk_errors_are_judged_by_their_cause():
    import httpx2

    def wrapped(outer: type, cause: BaseException) -> BaseException:
        request = httpx2.Request("POST", "http://127.0.0.1:9/v1/images/generations")
        try:
            try:
                raise cause
            except BaseException as inner:
                raise (outer(request=request) if outer is openai.APITimeoutError
                       else outer(request=request)) from inner
        except BaseException as exc:  # noqa: BLE001
            return exc

    r2 = httpx2.Request("POST", "http://127.0.0.1:9/")
    refused = wrapped(openai.APIConnectionError, httpx2.ConnectError("refused", request=r2))
    read_timeout = wrapped(openai.APITimeoutError, httpx2.ReadTimeout("no answer", request=r2))
    connect_timeout = wrapped(openai.APITimeoutError, httpx2.ConnectTimeout("slow", request=r2))
    assert isinstance(transport_error("OpenAI", refused), ProviderUnavailable) and transport_error("OpenAI", refused).retryable
    late = transport_error("OpenAI", read_timeout)
    assert isinstance(late, RequestTimedOut) and late.sent and not late.retryable
    early = transport_error("OpenAI", connect_timeout)
    assert isinstance(early, RequestTimedOut) and not early.sent and early.retryable


def test_408_means_not_taken_and_504_means_maybe_running():
    assert error_for_status("X", 408).retryable
    assert not error_for_status("X", 504).retryable
    assert error_for_status("X", 504, idempotent=True).retryable


def test_with_retries_stops_at_a_sent_timeout():
    calls = []

    async def call():
        calls.append(1)
        raise RequestTimedOut("sent")

    with pytest.raises(RequestTimedOut):
        run_async(with_retries(call, attempts=3, sleep=RecordingSleep()))
    assert len(calls) == 1


# -- one key name for timeouts and retries ----------------------------------------------------

def test_timeout_and_retry_settings_are_read_the_same_way_everywhere():
    assert timeout_setting({"timeout_s": 1}, 300) == 1.0  # short enough for a quick test
    assert timeout_setting({"timeout_s": "30"}, 300) == 30.0
    assert timeout_setting({}, 300) == 300.0 and timeout_setting({"timeout_s": "soon"}, 300) == 300.0
    assert timeout_setting({"timeout_s": 0.01}, 300) == 1.0 and timeout_setting({"timeout_s": 10_000}, 300) == 600.0
    assert timeout_setting({"timeout": 5}, 300) == 300.0, "the old key is migrated on load, not read"
    assert clamp_timeout(float("nan"), 120) == 120.0
    assert attempts_setting({}) == 3 and attempts_setting({"retries": 0}) == 1 and attempts_setting({"retries": "4"}) == 5
    assert attempts_setting({"retries": 99}) == 6 and attempts_setting({"retries": -2}) == 1
    assert attempts_setting({"retries": True}) == 3
