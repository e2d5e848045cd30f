"""Replicate provider against loopback servers speaking the predictions API (providers.md §2)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from studio_core.errors import (
    AuthenticationFailed,
    ContentRefused,
    InvalidResponse,
    MissingCredentials,
    ModelNotFound,
    NotAnImage,
    RequestTimedOut,
    ServerError,
)
from studio_core.models import GenerationRequest, JobImage, JobNotice, JobProgress, ServiceState
from studio_core.providers.cloud.replicate import ReplicateProvider
from tests.cloud_servers import (
    NOT_AN_IMAGE,
    REPLICATE_BAD_TOKEN,
    REPLICATE_NSFW,
    LoopbackServer,
    RecordingSleep,
    Reply,
    b64,
    collect,
    huge_png_header,
    of_type,
    png_bytes,
    replicate_prediction,
    replicate_problem,
)
from tests.conftest import run_async

KEY = "r8_TESTtoken1234567890abcdef"
CREATE = r"/v1/models/black-forest-labs/flux-schnell/predictions"


def make(api: LoopbackServer, *, key: str | None = KEY, timeout: float = 5.0, sleep=None, **kw) -> ReplicateProvider:
    return ReplicateProvider(api_key=key, endpoint=api.url, timeout=timeout, poll_interval=kw.pop("poll_interval", 0.0),
                             attempts=kw.pop("attempts", 3), base_delay=0.01, sleep=sleep or RecordingSleep(), **kw)


def req(**kw) -> GenerationRequest:
    return GenerationRequest(prompt=kw.pop("prompt", "a pixel-art knight"), service="replicate", **kw)


def done(files: LoopbackServer, count: int = 1, **kw) -> Reply:
    out = [f"{files.url}/xezq/out-{i}.png" for i in range(count)]
    return Reply(201, replicate_prediction(output=out, **kw), headers={"Preference-Applied": "wait=60"})


def test_success_sends_documented_request_and_downloads_without_token():
    with LoopbackServer() as api, LoopbackServer() as files:
        api.route("POST", CREATE, done(files))
        files.route("GET", r"/xezq/out-0\.png", Reply(200, png_bytes(), content_type="image/png"))
        events = run_async(collect(make(api, timeout=300), req(seed=1234, width=1344, height=768)))
    (img,) = of_type(events, JobImage)
    assert img.seed == 1234 and img.mime == "image/png"
    info = dict(img.info)
    assert info["cost_usd"] == 0.003 and info["provider"] == "replicate" and info["model"] == "black-forest-labs/flux-schnell"
    (r,) = api.requests
    assert r.method == "POST" and r.route == CREATE
    assert r.headers["authorization"] == f"Bearer {KEY}" and r.headers["prefer"] == "wait=60"
    assert r.headers["content-type"] == "application/json"
    inp = r.json()["input"]
    assert inp == {"prompt": "a pixel-art knight", "num_outputs": 1, "output_format": "png", "aspect_ratio": "16:9",
                   "megapixels": "1", "seed": 1234, "go_fast": False, "num_inference_steps": 4}
    assert "authorization" not in files.requests[0].headers


def test_data_uri_output():
    with LoopbackServer() as api:
        api.route("POST", CREATE, Reply(201, replicate_prediction(output=[f"data:image/png;base64,{b64(png_bytes())}"])))
        events = run_async(collect(make(api), req()))
    assert len(of_type(events, JobImage)) == 1


def test_several_images_in_one_prediction_and_more_than_four_in_two():
    with LoopbackServer() as api, LoopbackServer() as files:
        api.route("POST", CREATE, done(files, 4), done(files, 2))
        files.route("GET", r"/xezq/out-\d\.png", Reply(200, png_bytes(), content_type="image/png"))
        events = run_async(collect(make(api), req(batch=6, seed=10)))
    images = of_type(events, JobImage)
    assert [i.index for i in images] == [0, 1, 2, 3, 4, 5]
    assert [r.json()["input"]["num_outputs"] for r in api.requests] == [4, 2]
    assert [r.json()["input"]["seed"] for r in api.requests] == [10, 11]


def test_polls_until_succeeded():
    with LoopbackServer() as api, LoopbackServer() as files:
        api.route("POST", CREATE, Reply(201, replicate_prediction("p1", status="starting")))
        api.route("GET", r"/v1/predictions/p1", Reply(200, replicate_prediction("p1", status="processing")),
                  Reply(200, replicate_prediction("p1", output=[f"{files.url}/xezq/out-0.png"], logs="Using seed: 99\n")))
        files.route("GET", r"/xezq/out-0\.png", Reply(200, png_bytes(), content_type="image/png"))
        events = run_async(collect(make(api), req()))
    assert len(api.by_route(r"/v1/predictions/p1", "GET")) == 2
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in api.requests)
    assert of_type(events, JobImage)[0].seed == 99  # read from the logs when the user left it random
    assert any("starting" in p.message for p in of_type(events, JobProgress))


def test_processing_with_output_counts_as_done():
    with LoopbackServer() as api, LoopbackServer() as files:
        api.route("POST", CREATE, Reply(201, replicate_prediction(status="processing", output=[f"{files.url}/xezq/out-0.png"])))
        files.route("GET", r"/xezq/out-0\.png", Reply(200, png_bytes(), content_type="image/png"))
        events = run_async(collect(make(api), req()))
    assert len(of_type(events, JobImage)) == 1 and len(api.requests) == 1


def test_cancelling_the_job_cancels_the_prediction():
    async def scenario(api: LoopbackServer) -> None:
        prov = make(api, poll_interval=0.01, sleep=asyncio.sleep)
        seen = asyncio.Event()

        async def consume() -> None:
            async for ev in prov.generate(req(), job_id="j"):
                if isinstance(ev, JobProgress):
                    seen.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(seen.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await prov.aclose()

    with LoopbackServer() as api:
        api.route("POST", CREATE, Reply(201, replicate_prediction("p9", status="starting")))
        api.route("GET", r"/v1/predictions/p9", Reply(200, replicate_prediction("p9", status="processing")))
        api.route("POST", r"/v1/predictions/p9/cancel", Reply(200, replicate_prediction("p9", status="canceled")))
        run_async(scenario(api))
        cancels = api.by_route(r"/v1/predictions/p9/cancel", "POST")
    assert len(cancels) == 1 and cancels[0].headers["authorization"] == f"Bearer {KEY}"


def test_bad_key():
    with LoopbackServer() as api:
        api.route("POST", CREATE, REPLICATE_BAD_TOKEN)
        with pytest.raises(AuthenticationFailed):
            run_async(collect(make(api), req()))
    assert len(api.requests) == 1


def test_429_waits_retry_after_from_body_and_says_so():
    sleep = RecordingSleep()
    with LoopbackServer() as api:
        api.route("POST", CREATE,
                  replicate_problem(429, "Request was throttled. Your rate limit resets in ~5s.", retry_after=5),
                  Reply(201, replicate_prediction(output=[f"data:image/png;base64,{b64(png_bytes())}"])))
        events = run_async(collect(make(api, sleep=sleep), req()))
    assert sleep.delays == [5.0] and "5 s" in of_type(events, JobNotice)[0].message
    assert len(of_type(events, JobImage)) == 1


def test_429_wait_read_from_detail_text():
    sleep = RecordingSleep()
    with LoopbackServer() as api:
        api.route("POST", CREATE, replicate_problem(429, "Request was throttled. Your rate limit resets in ~30s."),
                  Reply(201, replicate_prediction(output=[f"data:image/png;base64,{b64(png_bytes())}"])))
        run_async(collect(make(api, sleep=sleep), req()))
    assert sleep.delays == [30.0]


def listed(*preds: dict, next_url: str | None = None) -> Reply:
    """A page of GET /v1/predictions, newest first; each prediction made just now."""
    from datetime import datetime, timezone

    now = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
    return Reply(200, {"next": next_url, "previous": None, "results": [{**p, "created_at": now} for p in preds]})


def test_5xx_on_create_is_not_resent_and_the_list_shows_nothing_was_made():
    sleep = RecordingSleep()
    with LoopbackServer() as api:
        api.route("POST", CREATE, Reply(503, {"detail": "Service Unavailable"}),
                  Reply(201, replicate_prediction(output=[f"data:image/png;base64,{b64(png_bytes())}"])))
        api.route("GET", r"/v1/predictions", listed())
        with pytest.raises(ServerError) as ei:
            run_async(collect(make(api, sleep=sleep), req()))
    assert len(api.by_route(CREATE, "POST")) == 1
    assert "made no prediction" in ei.value.user_message and not ei.value.retryable


def test_create_that_timed_out_is_never_sent_again_and_the_user_is_told_where_to_look():
    sleep = RecordingSleep()
    with LoopbackServer() as api:
        # reads the body, then hangs: the prediction may exist, but no answer comes
        api.route("POST", CREATE, Reply(201, replicate_prediction(), delay=30))
        api.route("GET", r"/v1/predictions", listed(
            # someone else's prediction, and one with other inputs: neither is ours
            {**replicate_prediction("webone", status="processing"), "source": "web",
             "input": {"prompt": "a pixel-art knight"}},
            {**replicate_prediction("other1", status="processing"), "source": "api", "input": {"prompt": "a dragon"}}))
        with pytest.raises(RequestTimedOut) as ei:
            run_async(collect(make(api, timeout=1.0, attempts=3, sleep=sleep), req()))
    assert len(api.by_route(CREATE, "POST")) == 1
    msg = ei.value.user_message
    assert "replicate.com/predictions" in msg and "not sent again" in msg and "billed" in msg
    lookups = api.by_route(r"/v1/predictions", "GET")
    assert lookups and "created_after=" in lookups[0].query
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in lookups)


def test_create_that_timed_out_is_found_in_the_list_and_finished():
    sleep = RecordingSleep()
    with LoopbackServer() as api:
        api.route("POST", CREATE, Reply(201, replicate_prediction(), delay=30))

        def listing(rec):
            sent = api.by_route(CREATE, "POST")[0].json()["input"]
            ours = {**replicate_prediction("ours42", status="processing"), "source": "api", "input": dict(sent)}
            return listed(ours)

        api.route("GET", r"/v1/predictions", listing)
        api.route("GET", r"/v1/predictions/ours42", Reply(200, replicate_prediction(
            "ours42", output=[f"data:image/png;base64,{b64(png_bytes())}"])))
        events = run_async(collect(make(api, timeout=1.0, attempts=3, sleep=sleep), req(seed=7)))
    assert len(api.by_route(CREATE, "POST")) == 1
    (img,) = of_type(events, JobImage)
    assert dict(img.info)["prediction_id"] == "ours42"
    notes = " ".join(n.message for n in of_type(events, JobNotice))
    assert "looking for it" in notes and "ours42" in notes


def test_refused_connection_on_create_is_retried():
    from tests.cloud_servers import StartServerOnFirstWait, closed_port

    port = closed_port()
    sleep = StartServerOnFirstWait(lambda: LoopbackServer(port=port).route(
        "POST", CREATE, Reply(201, replicate_prediction(output=[f"data:image/png;base64,{b64(png_bytes())}"]))))
    try:
        prov = ReplicateProvider(api_key=KEY, endpoint=f"http://127.0.0.1:{port}", timeout=5.0, poll_interval=0.0,
                                 attempts=3, base_delay=0.01, sleep=sleep)
        events = run_async(collect(prov, req()))
    finally:
        sleep.close()
    assert len(sleep.delays) == 1 and len(of_type(events, JobImage)) == 1
    assert len(sleep.server.by_route(CREATE, "POST")) == 1


def test_nsfw_failure_is_a_content_refusal_without_retry():
    with LoopbackServer() as api:
        api.route("POST", CREATE, Reply(201, replicate_prediction(status="failed", error=REPLICATE_NSFW)))
        with pytest.raises(ContentRefused) as ei:
            run_async(collect(make(api), req()))
    assert "NSFW" in ei.value.user_message and len(api.requests) == 1


def test_safety_filter_dropping_some_images_is_said():
    with LoopbackServer() as api:
        api.route("POST", CREATE, Reply(201, replicate_prediction(output=[f"data:image/png;base64,{b64(png_bytes())}"])))
        events = run_async(collect(make(api), req(batch=3)))
    assert len(of_type(events, JobImage)) == 1
    assert any("removed 2 of 3" in n.message for n in of_type(events, JobNotice))


def test_retired_or_unknown_model():
    with LoopbackServer() as api:
        api.route("POST", r"/v1/models/stability-ai/sdxl/predictions", replicate_problem(404, "The requested resource could not be found.", "Not found"))
        with pytest.raises(ModelNotFound) as ei:
            run_async(collect(make(api, model="stability-ai/sdxl"), req()))
    assert "black-forest-labs/flux-schnell" in ei.value.user_message


def test_malformed_body():
    with LoopbackServer() as api:
        api.route("POST", CREATE, Reply(201, b'{"id": "x", "status": ', content_type="application/json"))
        with pytest.raises(InvalidResponse):
            run_async(collect(make(api), req()))


def test_output_that_is_not_an_image():
    with LoopbackServer() as api, LoopbackServer() as files:
        api.route("POST", CREATE, done(files))
        files.route("GET", r"/xezq/out-0\.png", Reply(200, NOT_AN_IMAGE, content_type="text/html"))
        with pytest.raises(NotAnImage):
            run_async(collect(make(api), req()))


def test_oversized_output():
    with LoopbackServer() as api, LoopbackServer() as files:
        api.route("POST", CREATE, done(files))
        files.route("GET", r"/xezq/out-0\.png", Reply(200, huge_png_header(), content_type="image/png"))
        with pytest.raises(NotAnImage) as ei:
            run_async(collect(make(api), req()))
    assert "too large" in ei.value.user_message


def test_unsupported_size_is_clamped_to_an_aspect_ratio_and_said():
    with LoopbackServer() as api:
        api.route("POST", CREATE, Reply(201, replicate_prediction(output=[f"data:image/png;base64,{b64(png_bytes())}"])))
        events = run_async(collect(make(api), req(width=2000, height=1000)))
    assert api.requests[0].json()["input"]["aspect_ratio"] == "16:9"
    assert "1344×768" in of_type(events, JobNotice)[0].message


def test_blank_key_fails_before_any_request():
    with LoopbackServer() as api:
        with pytest.raises(MissingCredentials):
            run_async(collect(make(api, key=" \n"), req()))
    assert api.requests == []


def test_key_never_in_errors_or_logs(caplog):
    with LoopbackServer() as api:
        api.route("POST", CREATE, replicate_problem(401, f"Token {KEY} is not valid", "Unauthenticated"))
        with caplog.at_level(logging.DEBUG):
            with pytest.raises(AuthenticationFailed) as ei:
                run_async(collect(make(api), req()))
    assert KEY not in ei.value.user_message and KEY not in str(ei.value)
    assert all(KEY not in rec.getMessage() for rec in caplog.records)


def test_check():
    with LoopbackServer() as api:
        api.route("GET", r"/v1/account", Reply(200, {"type": "user", "username": "sprite-maker"}))
        api.route("GET", r"/v1/models/black-forest-labs/flux-schnell", Reply(200, {"owner": "black-forest-labs", "name": "flux-schnell"}))
        status = run_async(make(api).check())
        assert status.state is ServiceState.ready and "sprite-maker" in status.message
    with LoopbackServer() as api:
        api.route("GET", r"/v1/account", REPLICATE_BAD_TOKEN)
        assert run_async(make(api).check()).state is ServiceState.needs_key


def test_request_model_overrides_settings_model():
    with LoopbackServer() as api:
        api.route("POST", r"/v1/models/black-forest-labs/flux-dev/predictions",
                  Reply(201, replicate_prediction(output=[f"data:image/png;base64,{b64(png_bytes())}"])))
        events = run_async(collect(make(api), req(model="black-forest-labs/flux-dev")))
    assert dict(of_type(events, JobImage)[0].info)["model"] == "black-forest-labs/flux-dev"


def test_deadline_cancels_the_prediction():
    with LoopbackServer() as api:
        api.route("POST", CREATE, Reply(201, replicate_prediction("slow", status="starting")))
        api.route("GET", r"/v1/predictions/slow", Reply(200, replicate_prediction("slow", status="starting")))
        api.route("POST", r"/v1/predictions/slow/cancel", Reply(200, replicate_prediction("slow", status="canceled")))
        from studio_core.errors import JobTimedOut

        with pytest.raises(JobTimedOut):
            run_async(collect(make(api, timeout=0.2, poll_interval=0.02, sleep=asyncio.sleep), req()))
        assert len(api.by_route(r"/v1/predictions/slow/cancel", "POST")) == 1


def test_factory_uses_settings_and_stored_key(paths):
    from studio_core.secrets import SecretStore
    from studio_core.services import ServiceRegistry
    from studio_core.settings import SettingsStore

    with LoopbackServer() as api:
        api.route("POST", CREATE, Reply(201, replicate_prediction(output=[f"data:image/png;base64,{b64(png_bytes())}"])))
        settings = SettingsStore(paths.settings_file)
        settings.update_provider("replicate", endpoint=api.url, wait=30)
        secrets = SecretStore(paths.secrets_file)
        secrets.set("replicate", KEY)
        events = run_async(collect(ServiceRegistry(settings, secrets).provider("replicate"), req()))
    assert len(of_type(events, JobImage)) == 1 and api.requests[0].headers["prefer"] == "wait=30"
