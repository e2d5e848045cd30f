"""RunPod serverless (worker-comfyui) against a loopback fake of its documented API.

Where each reply shape comes from:
- ``POST /run`` → ``{"id", "status": "IN_QUEUE"}``: RunPod docs, serverless/endpoints/send-requests.mdx
  (scaleout.md 1.3); request body ``input.workflow`` / ``input.images[{name, image}]``: worker-comfyui README.md "Input".
- ``GET /status/{id}`` COMPLETED with ``output.images[{filename, type: "base64", data}]``, ``delayTime``,
  ``executionTime``: worker-comfyui README.md "Output" (5.0.0+).
- ``type: "s3_url"``: worker-comfyui docs/configuration.md "Example S3 Response"; key shape
  ``<job_id>/<8 hex>.png`` in an ``MM-YY`` bucket: scaleout.md addendum 3.
- FAILED with ``error`` at the top level and ``output.details``: scaleout.md addendum 1; the flattened
  "Workflow validation failed:\\n• Node …" text: worker-comfyui handler.py ``queue_workflow`` (addendum 2).
- ``POST /cancel/{id}`` → ``{"id", "status": "CANCELLED"}``: RunPod operation-reference.mdx.
- 401 body: undocumented (addendum 8), so the fake sends a bare text body.
- COMPLETED without ``output``: runpod-python issue #309 (addendum 5).
- ``GET /health`` counters: addendum 9.
"""

from __future__ import annotations

import asyncio
import base64
import json

import pytest

from studio_core.errors import AuthenticationFailed, GenerationFailed, InvalidResponse, MissingModels, WorkflowError
from studio_core.models import GenerationRequest, JobImage, JobNotice, JobProgress, JobStarted, ServiceState
from studio_core.pool.errors import PayloadTooLarge
from studio_core.pool.runpod import RunPodProvider
from studio_core.pool.servers import runpod_endpoint
from tests.cloud_servers import LoopbackServer, RecordingSleep, Reply, collect, of_type, png_bytes
from tests.conftest import run_async

KEY = "rpa_TESTKEY1234567890ABCDEFG"
EP = "/v2/ep123abc"
WORKFLOW = {
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "flux1-dev-fp8.safetensors"}},
    "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "ComfyUI"}},
}


def make(api: LoopbackServer, *, key: str | None = KEY, price: float = 0.0, sleep=None, **kw) -> RunPodProvider:
    spec = runpod_endpoint("rp", "RunPod A40", api.url + EP, workers=2, price_per_s=price,
                           models=("flux1-dev-fp8.safetensors",))
    return RunPodProvider(spec, api_key=key, sleep=sleep or RecordingSleep(), **kw)


def req(**options) -> GenerationRequest:
    return GenerationRequest(prompt="", service="runpod", seed=42).with_options(workflow=json.dumps(WORKFLOW), **options)


def queued(jid: str = "job-7f3a") -> Reply:
    return Reply(200, {"id": jid, "status": "IN_QUEUE"})


def status(state: str, jid: str = "job-7f3a", **extra) -> Reply:
    return Reply(200, {"id": jid, "status": state, **extra})


def completed(*images: dict, jid: str = "job-7f3a", **extra) -> Reply:
    return status("COMPLETED", jid, output={"images": list(images), **extra}, delayTime=2310, executionTime=4567)


def b64_image(name: str = "ComfyUI_00001_.png") -> dict:
    return {"filename": name, "type": "base64", "data": base64.b64encode(png_bytes()).decode()}


def test_success_sends_the_documented_request():
    with LoopbackServer() as api:
        api.route("POST", EP + "/run", queued())
        api.route("GET", EP + r"/status/job-7f3a", status("IN_PROGRESS"), completed(b64_image()))
        events = run_async(collect(make(api, price=0.00044), req(input_images=(("ref.png", png_bytes()),))))
    assert isinstance(events[0], JobStarted) and events[0].server_job_id == "job-7f3a"
    (img,) = of_type(events, JobImage)
    assert img.seed == 42 and img.mime == "image/png"
    info = dict(img.info)
    assert info["runpod_job_id"] == "job-7f3a" and info["server"] == "RunPod A40" and info["comfy_filename"] == "ComfyUI_00001_.png"
    assert info["cost_usd"] == pytest.approx(4.567 * 0.00044)
    assert json.loads(dict(img.extra_text)["prompt"]) == WORKFLOW  # the worker strips metadata; the app writes it
    run = api.by_route(EP + "/run")[0]
    assert run.method == "POST" and run.headers["authorization"] == f"Bearer {KEY}"
    assert run.headers["content-type"] == "application/json"
    sent = run.json()["input"]
    assert sent["workflow"] == WORKFLOW
    assert sent["images"] == [{"name": "ref.png", "image": base64.b64encode(png_bytes()).decode()}]
    polls = api.by_route(EP + r"/status/job-7f3a")
    assert len(polls) == 2 and all(p.method == "GET" and p.headers["authorization"] == f"Bearer {KEY}" for p in polls)
    assert not api.by_route(EP + r"/cancel/.*")  # finished jobs are not cancelled


def test_in_queue_for_a_while_polls_with_growing_pauses():
    sleep = RecordingSleep()
    with LoopbackServer() as api:
        api.route("POST", EP + "/run", queued())
        api.route("GET", EP + r"/status/job-7f3a", *([status("IN_QUEUE")] * 7), status("IN_PROGRESS"), completed(b64_image()))
        events = run_async(collect(make(api, sleep=sleep), req()))
    assert len(of_type(events, JobImage)) == 1
    assert sleep.delays == sorted(sleep.delays) and sleep.delays[0] < sleep.delays[-1] <= 5.0 and len(sleep.delays) == 9
    messages = [e.message for e in of_type(events, JobProgress)]
    assert messages == ["RunPod A40: waiting for a worker (a cold start can take a minute)", "RunPod A40: running"]


def test_failed_job_reports_error_and_details_in_words():
    text = ("Workflow validation failed:\n• Node 6 (errors): [{'type': 'required_input_missing', 'message': 'Required input "
            "is missing', 'details': 'clip', 'extra_info': {'input_name': 'clip'}}]")
    with LoopbackServer() as api:
        api.route("POST", EP + "/run", queued())
        api.route("GET", EP + r"/status/job-7f3a",
                  status("FAILED", error=text, output={"details": ["Workflow execution error: Node Type: CLIPTextEncode"]}))
        with pytest.raises(GenerationFailed) as err:
            run_async(collect(make(api), req()))
    msg = err.value.user_message
    assert msg.startswith("The RunPod job failed: Workflow validation failed: Node 6 (errors)")
    assert "Details: Workflow execution error: Node Type: CLIPTextEncode" in msg
    assert "{'type'" not in msg  # the Python repr stays in the log detail, not in the sentence
    assert not api.by_route(EP + r"/cancel/.*")


def test_failed_for_a_missing_model_names_it():
    text = ("Workflow validation failed:\n• Node 4 (errors): [{'type': 'value_not_in_list', 'message': 'Value not in list', "
            "'details': \"ckpt_name: 'flux1-dev-fp8.safetensors' not in ['sd_xl_base_1.0.safetensors']\"}]\n\n"
            "Available checkpoint models: sd_xl_base_1.0.safetensors")
    with LoopbackServer() as api:
        api.route("POST", EP + "/run", queued())
        api.route("GET", EP + r"/status/job-7f3a", status("FAILED", error=text))
        with pytest.raises(MissingModels) as err:
            run_async(collect(make(api), req()))
    assert err.value.missing == ("flux1-dev-fp8.safetensors",)
    assert "does not have: flux1-dev-fp8.safetensors" in err.value.user_message


def test_cancel_sends_cancel_and_ends_quietly():
    async def main(api):
        provider = make(api, sleep=lambda d: asyncio.sleep(0.02))
        events = []

        async def consume():
            async for ev in provider.generate(req(), job_id="j1"):
                events.append(ev)
                if isinstance(ev, JobProgress):
                    await provider.cancel("j1")

        await consume()
        await provider.aclose()
        return events

    with LoopbackServer() as api:
        api.route("POST", EP + "/run", queued())
        api.route("GET", EP + r"/status/job-7f3a", status("IN_QUEUE"), status("CANCELLED"))
        api.route("POST", EP + r"/cancel/job-7f3a", status("CANCELLED"))
        events = run_async(main(api))
    assert not of_type(events, JobImage)
    (c,) = api.by_route(EP + r"/cancel/job-7f3a")
    assert c.method == "POST" and c.headers["authorization"] == f"Bearer {KEY}"


def test_abandoned_generation_cancels_on_runpod():
    async def main(api):
        provider = make(api, sleep=lambda d: asyncio.sleep(0.01))
        agen = provider.generate(req(), job_id="j1")
        await agen.__anext__()  # JobStarted
        await agen.__anext__()  # waiting…
        await agen.aclose()  # the caller's task was cancelled
        await provider.aclose()

    with LoopbackServer() as api:
        api.route("POST", EP + "/run", queued())
        api.route("GET", EP + r"/status/job-7f3a", status("IN_QUEUE"))
        api.route("POST", EP + r"/cancel/job-7f3a", status("CANCELLED"))
        run_async(main(api))
    assert len(api.by_route(EP + r"/cancel/job-7f3a")) == 1


def test_401_says_the_key_was_rejected_without_the_key():
    with LoopbackServer() as api:
        api.route("POST", EP + "/run", Reply(401, "Unauthorized"))
        with pytest.raises(AuthenticationFailed) as err:
            run_async(collect(make(api), req()))
    assert "rejected the API key for 'RunPod A40'" in err.value.user_message
    assert KEY not in err.value.user_message and KEY not in str(err.value)


def test_payload_over_10_mb_is_refused_before_sending():
    import os

    big = os.urandom(8_000_000)  # 10.7 MB as base64
    with LoopbackServer() as api:
        api.route("POST", EP + "/run", queued())
        with pytest.raises(PayloadTooLarge) as err:
            run_async(collect(make(api), req(input_images=(("big.png", big),))))
        assert api.requests == []
    assert "at most 10 MB" in err.value.user_message and "Nothing was sent" in err.value.user_message


def test_server_side_size_refusal_is_named():
    with LoopbackServer() as api:
        api.route("POST", EP + "/run", Reply(400, {"error": "json is invalid; max size is 10 MB"}))
        with pytest.raises(PayloadTooLarge):
            run_async(collect(make(api), req()))


def test_s3_url_output_is_downloaded_without_the_key_and_the_name_is_never_a_path():
    with LoopbackServer() as api, LoopbackServer() as s3:
        url = f"{s3.url}/05-26/job-7f3a/1a2b3c4d.png?X-Amz-Signature=abc"
        api.route("POST", EP + "/run", queued())
        api.route("GET", EP + r"/status/job-7f3a",
                  completed({"filename": "../../../etc/evil.png", "type": "s3_url", "data": url}))
        s3.route("GET", r"/05-26/job-7f3a/1a2b3c4d\.png", Reply(200, png_bytes(), content_type="image/png"))
        events = run_async(collect(make(api), req()))
        (got,) = s3.requests
    (img,) = of_type(events, JobImage)
    assert img.data == png_bytes() and dict(img.info)["comfy_filename"] == "evil.png"
    assert "authorization" not in got.headers and "X-Amz-Signature=abc" in got.path


def test_completed_without_output_says_result_too_large():
    with LoopbackServer() as api:
        api.route("POST", EP + "/run", queued())
        api.route("GET", EP + r"/status/job-7f3a", status("COMPLETED", executionTime=9000))
        with pytest.raises(InvalidResponse) as err:
            run_async(collect(make(api), req()))
    assert "20 MB response limit" in err.value.user_message


def test_warnings_in_output_errors_become_notices():
    with LoopbackServer() as api:
        api.route("POST", EP + "/run", queued())
        api.route("GET", EP + r"/status/job-7f3a", completed(b64_image(), errors=["Node 12 produced unhandled output keys: ['gifs']."]))
        events = run_async(collect(make(api), req()))
    assert any("unhandled output keys" in n.message for n in of_type(events, JobNotice))


def test_not_an_api_workflow_is_refused_before_sending():
    with LoopbackServer() as api:
        with pytest.raises(WorkflowError):
            run_async(collect(make(api), GenerationRequest(prompt="").with_options(workflow='{"nodes": [], "links": []}')))
        assert api.requests == []


def test_check_reads_health():
    with LoopbackServer() as api:
        api.route("GET", EP + "/health", Reply(200, {"jobs": {"completed": 4, "failed": 0, "inProgress": 1, "inQueue": 2,
                                                              "retried": 0}, "workers": {"idle": 1, "running": 1, "initializing": 0,
                                                                                          "ready": 1, "throttled": 0, "unhealthy": 0}}))
        st = run_async(make(api).check())
    assert st.state is ServiceState.ready and st.detail("workers_idle") == 1 and st.detail("queue_length") == 2
    with LoopbackServer() as api:
        api.route("GET", EP + "/health", Reply(401, ""))
        st = run_async(make(api).check())
    assert st.state is ServiceState.needs_key
