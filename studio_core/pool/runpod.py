"""RunPod serverless endpoints running worker-comfyui, as a Provider.

One job is one ``POST /run`` of an API-format workflow (the request's custom ``workflow``,
or the built-in graph for the request and its image inputs, see :mod:`.runpod_graph`)
with its input images inline; then ``GET /status/{id}`` with growing pauses until
the job ends; ``POST /cancel/{id}`` when the caller cancels, times out or goes away. The
API key goes only to the endpoint, never to an S3 result URL. Results arrive as base64 or
as an S3 URL; the file name in them is only recorded, never used as a path. worker-comfyui
strips ComfyUI's metadata (``--disable-metadata``), so each image carries the workflow
in ``extra_text`` for the app to write. Wire details are in :mod:`.runpod_wire`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from typing import Any, AsyncIterator, Callable, Mapping

import httpx

from studio_core.errors import (
    AuthenticationFailed,
    GenerationFailed,
    InvalidResponse,
    JobTimedOut,
    ModelNotFound,
    StudioError,
    WorkflowError,
)
from studio_core.models import (
    GenerationRequest,
    JobEvent,
    JobImage,
    JobNotice,
    JobProgress,
    JobStarted,
    ModelInfo,
    ProviderStatus,
    ServiceState,
)
from studio_core.inputs import ImageInputs
from studio_core.pool import runpod_graph, runpod_wire as wire
from studio_core.pool.errors import PayloadTooLarge
from studio_core.pool.servers import ServerSpec
from studio_core.providers.cloud.common import (
    clean_key,
    error_for_status,
    image_from_base64,
    image_from_bytes,
    json_object,
    scrub,
    transport_error,
)

log = logging.getLogger(__name__)

SERVICE = wire.SERVICE
POLL_DELAYS = (0.5, 1.0, 1.5, 2.0, 3.0, 5.0)  # cold starts take tens of seconds; a warm job a few
MAX_POLL_FAILURES = 4


class RunPodProvider:
    """A worker-comfyui endpoint. Use from one event loop; see :class:`studio_core.providers.base.Provider`."""

    display_name = "RunPod (ComfyUI)"

    def __init__(self, spec: ServerSpec, *, api_key: str | None, timeout_s: float = 15 * 60.0,
                 poll_delays: tuple[float, ...] = POLL_DELAYS, sleep: Callable[[float], Any] = asyncio.sleep,
                 clock: Callable[[], float] = time.monotonic, input_store: Any = None):
        self.spec = spec
        self.input_store = input_store  # where the images a request's inputs name are kept
        self.id = f"runpod:{spec.id}"
        self._raw_key = api_key
        self._timeout = timeout_s
        self._delays = poll_delays
        self._sleep = sleep
        self._clock = clock
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=spec.connect_timeout_s), trust_env=False)
        self._active: dict[str, str] = {}  # job id -> RunPod job id not yet finished
        self._cancelled: set[str] = set()

    # -- plumbing -------------------------------------------------------------------
    def _key(self) -> str:
        return clean_key(SERVICE, self._raw_key)

    async def _call(self, method: str, path: str, key: str, *, content: bytes | None = None,
                    idempotent: bool = False) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
        if content is not None:
            headers["Content-Type"] = "application/json"
        try:
            r = await self._client.request(method, f"{self.spec.url}{path}", headers=headers, content=content)
        except httpx.HTTPError as exc:
            err = transport_error(SERVICE, exc)
            if idempotent:
                err.retryable = True
            raise scrub(err, [key]) from None
        if r.status_code >= 400:
            raise self._error(r, key)
        return json_object(SERVICE, r, path)

    def _error(self, r: httpx.Response, key: str) -> StudioError:
        try:
            body: Any = r.json()
        except ValueError:
            body = r.text
        text = json.dumps(body) if isinstance(body, (dict, list)) else str(body)
        if r.status_code in (400, 413) and "max size" in text.lower():
            return PayloadTooLarge(f"{SERVICE}: HTTP {r.status_code}: {text[:200]}",
                                   user_message="RunPod refused the job as too large (over 10 MB). Use smaller or fewer input images.")
        if r.status_code in (401, 403):
            return scrub(AuthenticationFailed(f"{SERVICE}: HTTP {r.status_code}", user_message=(
                f"RunPod rejected the API key for '{self.spec.name}' ({r.status_code}). Check the key in Settings → "
                "ComfyUI servers; it needs access to this endpoint.")), [key])
        if r.status_code == 404:
            return ModelNotFound(f"{SERVICE}: HTTP 404 {r.url.path}", user_message=(
                f"RunPod has no endpoint at {self.spec.url}. Check the endpoint id in Settings."))
        return scrub(error_for_status(SERVICE, r.status_code, body, r.headers), [key])

    async def _send_cancel(self, run_id: str, key: str) -> None:
        try:
            await asyncio.wait_for(self._call("POST", f"/cancel/{run_id}", key), 10)
        except (StudioError, asyncio.TimeoutError) as exc:
            log.info("runpod: cancel of %s not confirmed (%s)", run_id, type(exc).__name__)

    def _workflow(self, request: GenerationRequest) -> dict[str, Any]:
        raw = request.option("workflow")
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError as exc:
                raise WorkflowError(f"workflow JSON: {exc}", user_message="The workflow is not valid JSON.") from exc
        if not isinstance(raw, Mapping) or not raw or not all(isinstance(n, Mapping) and "class_type" in n for n in raw.values()):
            raise WorkflowError("not an API-format workflow",
                                user_message="RunPod needs the workflow in ComfyUI's API format (Export (API) in ComfyUI).")
        return dict(raw)

    # -- Provider ---------------------------------------------------------------------
    async def _job(self, request: GenerationRequest, inputs: ImageInputs | None) -> tuple[
            GenerationRequest, dict[str, Any], tuple[tuple[str, bytes], ...], ImageInputs | None]:
        """The request as run (seed chosen), the workflow, the images it needs inline, and the
        image inputs a built-in graph was made from."""
        if request.workflow is not None:
            images = tuple((str(n), bytes(d)) for n, d in (request.option("input_images") or ()))
            return request, self._workflow(request), images, None
        inputs = inputs if isinstance(inputs, ImageInputs) else request.inputs
        if request.seed is None:
            request = request.replace(seed=random.randrange(2**32))
        request = runpod_graph.with_model(request, self.spec.models)
        graph = runpod_graph.build(request, self.spec.models, inputs)
        return request, graph, await runpod_graph.inline_images(graph, self.input_store), inputs

    async def generate(self, request: GenerationRequest, *, job_id: str,
                       inputs: ImageInputs | None = None) -> AsyncIterator[JobEvent]:
        key = self._key()
        request, workflow, images, used_inputs = await self._job(request, inputs)
        body = wire.run_body(workflow, images)  # refuses an oversized job before any request
        started = await self._call("POST", "/run", key, content=body)
        run_id = str(started.get("id") or "")
        if not run_id:
            raise InvalidResponse(f"{SERVICE}: /run without id", user_message=f"{SERVICE} did not accept the job (no job id).")
        self._active[job_id] = run_id
        yield JobStarted(job_id, server_job_id=run_id)
        reply: dict[str, Any] = started
        try:
            deadline = self._clock() + self._timeout
            poll, failures, shown = 0, 0, ""
            while str(reply.get("status") or "") not in wire.TERMINAL:
                status = str(reply.get("status") or "IN_QUEUE")
                if status != shown:
                    shown = status
                    words = "waiting for a worker (a cold start can take a minute)" if status == "IN_QUEUE" else "running"
                    yield JobProgress(job_id, 0, 0, message=f"{self.spec.name}: {words}")
                if self._clock() > deadline:
                    raise JobTimedOut(f"{SERVICE}: job {run_id} still {status}", user_message=(
                        f"The RunPod job did not finish within {self._timeout / 60:.0f} minutes and was cancelled."))
                await self._sleep(self._delays[min(poll, len(self._delays) - 1)])
                poll += 1
                try:
                    reply = await self._call("GET", f"/status/{run_id}", key, idempotent=True)
                    failures = 0
                except StudioError as exc:
                    if not exc.retryable or failures + 1 >= MAX_POLL_FAILURES:
                        raise
                    failures += 1
                    yield JobNotice(job_id, f"{exc.user_message} Asking RunPod again…")
            self._active.pop(job_id, None)  # ended on RunPod: nothing left to cancel there
            status = reply.get("status")
            if status == "CANCELLED":
                if job_id in self._cancelled:
                    return
                raise GenerationFailed(f"{SERVICE}: {run_id} CANCELLED", user_message="The job was cancelled on RunPod.")
            if status == "TIMED_OUT":
                raise JobTimedOut(f"{SERVICE}: {run_id} TIMED_OUT", user_message=(
                    "RunPod stopped the job at the endpoint's execution time limit."))
            if status == "FAILED":
                raise wire.failure(reply)
            outputs, warnings = wire.output_images(reply)
            for w in warnings:
                yield JobNotice(job_id, f"RunPod: {w[:300]}")
            exec_ms = reply.get("executionTime") if isinstance(reply.get("executionTime"), (int, float)) else None
            cost = round(exec_ms / 1000 * self.spec.price_per_s, 8) if exec_ms is not None and self.spec.price_per_s else None
            graph_text = json.dumps(workflow, ensure_ascii=False)
            for index, item in enumerate(outputs):
                data, mime = await self._image(item, key)
                info: list[tuple[str, Any]] = [("server", self.spec.name), ("server_id", self.spec.id),
                                               ("runpod_job_id", run_id), ("comfy_filename", wire.safe_name(item.get("filename")))]
                if exec_ms is not None:
                    info.append(("execution_ms", exec_ms))
                if cost is not None and index == 0:
                    info.append(("cost_usd", cost))  # the job's cost, counted once
                if used_inputs is not None and not used_inputs.empty:
                    info.append(("inputs", used_inputs.to_dict()))  # digests only, as from a ComfyUI server
                yield JobImage(job_id, data, mime=mime, seed=request.seed, index=index,
                               extra_text=(("prompt", graph_text),), info=tuple(info))
        finally:
            self._cancelled.discard(job_id)
            if self._active.pop(job_id, None):
                await asyncio.shield(self._send_cancel(run_id, key))

    async def _image(self, item: Mapping[str, Any], key: str) -> tuple[bytes, str]:
        kind, data = item.get("type"), item.get("data")
        if kind == "base64":
            return image_from_base64(SERVICE, data)
        if kind == "s3_url":
            url = str(data or "")
            if not url.startswith(("https://", "http://")):
                raise InvalidResponse(f"{SERVICE}: s3_url {url[:80]!r}", user_message="RunPod sent a result link that is not a web address.")
            try:
                # No Authorization: the presigned URL is the credential, and the key must not reach the bucket.
                r = await self._client.get(url, timeout=httpx.Timeout(120.0, connect=15.0), follow_redirects=True)
            except httpx.HTTPError as exc:
                raise scrub(transport_error(SERVICE, exc), [key]) from None
            if r.status_code != 200:
                raise InvalidResponse(f"{SERVICE}: S3 download HTTP {r.status_code}", user_message=(
                    f"The result was uploaded to S3 but could not be downloaded (HTTP {r.status_code}); the link may "
                    "have expired."))
            return image_from_bytes(SERVICE, r.content)
        raise InvalidResponse(f"{SERVICE}: output type {kind!r}", user_message=(
            f"RunPod returned a result of type '{str(kind)[:20]}', which this app cannot read."))

    async def cancel(self, job_id: str) -> None:
        run_id = self._active.get(job_id)
        if not run_id:
            return
        self._cancelled.add(job_id)
        try:
            await self._send_cancel(run_id, self._key())
        except StudioError:
            pass

    async def check(self) -> ProviderStatus:
        """``GET /health``: the key works and how many workers are up."""
        try:
            health = await self._call("GET", "/health", self._key(), idempotent=True)
        except StudioError as exc:
            state = ServiceState.needs_key if isinstance(exc, AuthenticationFailed) or "key" in exc.user_message.lower() else ServiceState.unreachable
            return ProviderStatus(state, exc.user_message, (("error", str(exc)),))
        workers = health.get("workers") if isinstance(health.get("workers"), Mapping) else {}
        jobs = health.get("jobs") if isinstance(health.get("jobs"), Mapping) else {}
        idle, running = int(workers.get("idle") or 0), int(workers.get("running") or 0)
        queued = int(jobs.get("inQueue") or 0)
        msg = f"{self.spec.name}: {idle} idle and {running} busy workers, {queued} jobs waiting"
        if idle + running == 0:
            msg += " (workers start on demand; the first job waits for a cold start)"
        return ProviderStatus(ServiceState.ready, msg, (("workers_idle", idle), ("workers_running", running),
                                                        ("queue_length", queued), ("url", self.spec.url)))

    async def list_models(self) -> tuple[ModelInfo, ...]:
        return tuple(ModelInfo(m, m.rsplit("/", 1)[-1].rsplit(".", 1)[0], notes="listed by you") for m in self.spec.models)

    async def aclose(self) -> None:
        await self._client.aclose()
