"""Replicate predictions over httpx (providers.md §2).

Create with ``Prefer: wait`` so a fast model answers in one round trip, poll the
prediction while it is ``starting``/``processing`` without output, cancel it on the
server when the job is cancelled, then download each output: an ``https`` file URL or a
``data:`` URI. The token goes only to the API host; output files are fetched without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import re
from typing import Any, AsyncIterator
from urllib.parse import quote, urlsplit

import httpx

from studio_core import costs
from studio_core.errors import (
    ContentRefused,
    GenerationFailed,
    InvalidResponse,
    JobTimedOut,
    ModelNotFound,
    RateLimited,
    StudioError,
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
from studio_core.providers.cloud import catalog
from studio_core.providers.cloud.common import (
    Done,
    clamp_timeout,
    clean_key,
    error_for_status,
    image_from_base64,
    image_from_bytes,
    require_url,
    retry_events,
    scrub,
    size_notice,
    status_from_error,
    transport_error,
)

log = logging.getLogger(__name__)

SERVICE = "Replicate"
API = "https://api.replicate.com"
TERMINAL = frozenset({"succeeded", "failed", "canceled", "aborted"})
_NSFW = re.compile(r"nsfw|safety|content polic|flagged", re.I)


class ReplicateProvider:
    """Replicate's predictions API. Use from one event loop; see :class:`Provider`."""

    id = "replicate"
    display_name = SERVICE

    def __init__(
        self,
        *,
        api_key: str | None,
        model: str = "",
        endpoint: str = API,
        timeout: float = 300.0,
        wait: int = 60,
        poll_interval: float = 0.5,
        attempts: int = 3,
        base_delay: float = 1.0,
        sleep: Any = asyncio.sleep,
        spec: catalog.ProviderSpec | None = None,
    ):
        self._raw_key = api_key
        self._spec = spec or catalog.provider(self.id)
        self.model = (model or "").strip() or self._spec.default_model
        self._endpoint = endpoint
        self._timeout = timeout
        self._wait = max(1, min(int(wait), 60))  # the API accepts 1–60 s
        self._poll = poll_interval
        self._attempts = attempts
        self._base_delay = base_delay
        self._sleep = sleep
        # The read timeout must outlast the server's hold on a Prefer: wait request.
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(min(timeout, self._wait + 5.0), connect=min(timeout, 15.0)))
        self._active: dict[str, str] = {}  # job id -> prediction id still running

    # -- plumbing -----------------------------------------------------------------
    def _key(self) -> str:
        return clean_key(SERVICE, self._raw_key)

    async def _api(self, method: str, url: str, key: str, **kw: Any) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {key}", **kw.pop("headers", {})}
        try:
            r = await self._client.request(method, url, headers=headers, **kw)
        except httpx.HTTPError as exc:
            raise scrub(transport_error(SERVICE, exc), [key]) from None
        if r.status_code >= 400:
            raise self._error(r, key)
        try:
            body = r.json()
        except ValueError as exc:
            raise InvalidResponse(f"{SERVICE}: malformed JSON ({r.status_code})",
                                  user_message=f"{SERVICE} sent back a damaged answer.") from exc
        if not isinstance(body, dict):
            raise InvalidResponse(f"{SERVICE}: JSON is {type(body).__name__}", user_message=f"{SERVICE} sent back a damaged answer.")
        return body

    def _error(self, r: httpx.Response, key: str) -> StudioError:
        try:
            body: Any = r.json()
        except ValueError:
            body = r.text
        err = error_for_status(SERVICE, r.status_code, body, r.headers, default_model=self._spec.default_model)
        if isinstance(err, RateLimited) and err.retry_after is None:
            m = re.search(r"resets in ~?(\d+)\s*s", str(body))
            if m:
                err.retry_after = float(m.group(1))
        if isinstance(err, ModelNotFound):
            err.user_message = self._spec.retired_message(self.model, SERVICE)
        return scrub(err, [key])

    def _create_url(self, base: str) -> tuple[str, dict[str, Any]]:
        if ":" in self.model:  # owner/name:versionhash
            return f"{base}/v1/predictions", {"version": self.model.split(":", 1)[1]}
        if re.fullmatch(r"[0-9a-f]{64}", self.model):
            return f"{base}/v1/predictions", {"version": self.model}
        return f"{base}/v1/models/{quote(self.model, safe='/')}/predictions", {}

    async def _download(self, item: Any, key: str, base: str) -> tuple[bytes, str]:
        if not isinstance(item, str) or not item:
            raise InvalidResponse(f"{SERVICE}: output item {item!r:.80}", user_message=f"{SERVICE} answered without an image.")
        if item.startswith("data:"):
            return image_from_base64(SERVICE, item)
        same_host = urlsplit(item).netloc == urlsplit(base).netloc
        try:
            r = await self._client.get(item, headers={"Authorization": f"Bearer {key}"} if same_host else {},
                                       timeout=httpx.Timeout(self._timeout, connect=15.0), follow_redirects=True)
        except httpx.HTTPError as exc:
            raise scrub(transport_error(SERVICE, exc), [key]) from None
        if r.status_code >= 400:
            raise self._error(r, key)
        return image_from_bytes(SERVICE, r.content)

    def _failure(self, pred: dict[str, Any]) -> StudioError:
        status, error = pred.get("status"), str(pred.get("error") or "")
        if status == "failed" and _NSFW.search(error):
            return ContentRefused(f"{SERVICE}: {error[:300]}", user_message=f"{SERVICE} refused this prompt: {error[:300]}")
        if status == "failed":
            return GenerationFailed(f"{SERVICE}: prediction failed: {error[:300]}",
                                    user_message=f"{SERVICE}: the model failed: {error[:300] or 'no reason given'}")
        return GenerationFailed(f"{SERVICE}: prediction {status}",
                                user_message=f"{SERVICE} stopped the prediction ({status}).")

    async def _send_cancel(self, pred_id: str, key: str, base: str) -> None:
        try:
            await asyncio.wait_for(self._client.post(f"{base}/v1/predictions/{pred_id}/cancel",
                                                     headers={"Authorization": f"Bearer {key}"}), 10)
        except (httpx.HTTPError, asyncio.TimeoutError) as exc:
            log.info("replicate: cancel of %s not confirmed (%s)", pred_id, type(exc).__name__)

    # -- Provider protocol ----------------------------------------------------------
    async def generate(self, request: GenerationRequest, *, job_id: str) -> AsyncIterator[JobEvent]:
        """Generate with ``request.model`` when given, else the model from Settings."""
        model = (request.model or "").strip()
        target = self if not model or model == self.model else self._with_model(model)
        async with contextlib.aclosing(target._generate(request, job_id=job_id)) as events:
            async for ev in events:
                yield ev

    def _with_model(self, model: str) -> Any:
        # Shares the connection pool and job table; only the model differs.
        twin = copy.copy(self)
        twin.model = model
        return twin

    async def _generate(self, request: GenerationRequest, *, job_id: str) -> AsyncIterator[JobEvent]:
        key = self._key()
        base = require_url(SERVICE, self._endpoint)
        spec = self._spec.model(self.model)
        yield JobStarted(job_id)
        if spec.retired:
            yield JobNotice(job_id, self._spec.retired_message(self.model, SERVICE) + " Trying it anyway.")
        w, h, ratio = spec.fit(request.width, request.height)
        megapixels = "1"
        if spec.get("megapixels") and "0.25" in spec.get("megapixels") and request.width * request.height <= 400_000:
            megapixels, w, h = "0.25", w // 2, h // 2
        if (w, h) != (request.width, request.height):
            yield JobNotice(job_id, size_notice(SERVICE, (request.width, request.height), (w, h)))
        total = max(request.batch, 1)
        per_call = spec.max_batch
        done = 0
        chunk = 0
        while done < total:
            n = min(per_call, total - done)
            seed = None if request.seed is None else request.seed + chunk
            inputs: dict[str, Any] = {"prompt": request.prompt, "num_outputs": n, "output_format": "png"}
            if ratio:
                inputs["aspect_ratio"] = ratio
                inputs["megapixels"] = megapixels
            else:
                inputs.update(width=w, height=h)
            if seed is not None:
                inputs["seed"] = seed
                inputs["go_fast"] = False  # the fp8 path ignores the seed
            steps = spec.steps(request.steps)
            if steps is not None:
                inputs["num_inference_steps"] = steps
            if request.negative_prompt and spec.get("negative_prompt"):
                inputs["negative_prompt"] = request.negative_prompt
            url, extra = self._create_url(base)
            body = {**extra, "input": inputs}

            async def create(url: str = url, body: dict[str, Any] = body) -> dict[str, Any]:
                return await self._api("POST", url, key, json=body, headers={"Prefer": f"wait={self._wait}"})

            pred: dict[str, Any] = {}
            async for ev in retry_events(create, job_id=job_id, attempts=self._attempts, base_delay=self._base_delay,
                                         sleep=self._sleep):
                if isinstance(ev, Done):
                    pred = ev.value
                else:
                    yield ev
            pred_id = str(pred.get("id") or "")
            if not pred_id and pred.get("status") not in TERMINAL:
                raise InvalidResponse(f"{SERVICE}: prediction without id", user_message=f"{SERVICE} sent back a damaged answer.")
            self._active[job_id] = pred_id
            try:
                loop = asyncio.get_running_loop()
                deadline = loop.time() + self._timeout
                last_status = ""
                while pred.get("status") not in TERMINAL and not (pred.get("status") == "processing" and pred.get("output")):
                    status = str(pred.get("status") or "")
                    if status != last_status:
                        yield JobProgress(job_id, done, total, message=f"{SERVICE}: {status or 'waiting'}")
                        last_status = status
                    if loop.time() > deadline:
                        raise JobTimedOut(f"{SERVICE}: prediction {pred_id} still {status}",
                                          user_message=f"{SERVICE} did not finish within {self._timeout:.0f} s; the prediction was cancelled.")
                    await self._sleep(self._poll)

                    async def poll(pid: str = pred_id) -> dict[str, Any]:
                        return await self._api("GET", f"{base}/v1/predictions/{pid}", key)

                    async for ev in retry_events(poll, job_id=job_id, attempts=self._attempts, base_delay=self._base_delay,
                                                 sleep=self._sleep):
                        if isinstance(ev, Done):
                            pred = ev.value
                        else:
                            yield ev
                self._active.pop(job_id, None)  # finished on the server: nothing left to cancel
                if pred.get("status") in TERMINAL and pred.get("status") != "succeeded":
                    raise self._failure(pred)
            finally:
                if self._active.pop(job_id, None) and pred_id:
                    await self._send_cancel(pred_id, key, base)
            output = pred.get("output")
            items = [output] if isinstance(output, str) else list(output or [])
            if not items:
                raise ContentRefused(f"{SERVICE}: succeeded without output",
                                     user_message=f"{SERVICE} returned no image; its safety filter may have removed all of them.")
            if len(items) < n:
                yield JobNotice(job_id, f"{SERVICE}'s safety filter removed {n - len(items)} of {n} images.")
            if seed is None:
                m = re.search(r"Using seed:\s*(\d+)", str(pred.get("logs") or ""))
                seed = int(m.group(1)) if m else None
            for k, item in enumerate(items):
                data, mime = await self._download(item, key, base)
                info = costs.image_info(self.id, self.model, width=w, height=h, extra=(("prediction_id", pred_id),))
                yield JobImage(job_id, data, mime=mime, seed=seed if k == 0 else None, index=done + k, info=info)
            done += n
            chunk += 1
            yield JobProgress(job_id, done, total)

    async def check(self) -> ProviderStatus:
        """``GET /v1/account`` (free) proves the token; ``GET /v1/models/{model}`` that the model exists."""
        try:
            key = self._key()
            base = require_url(SERVICE, self._endpoint)
            acct = await self._api("GET", f"{base}/v1/account", key)
            who = str(acct.get("username") or acct.get("name") or "")
            if ":" not in self.model and "/" in self.model:
                try:
                    await self._api("GET", f"{base}/v1/models/{quote(self.model, safe='/')}", key)
                except ModelNotFound as exc:
                    return ProviderStatus(ServiceState.error, f"The token works, but: {exc.user_message}")
            return ProviderStatus(ServiceState.ready, f"Connected{' as ' + who if who else ''}; model {self.model}.",
                                  details=(("model", self.model),))
        except Exception as exc:  # check() reports, never raises
            return status_from_error(exc)

    async def list_models(self) -> tuple[ModelInfo, ...]:
        return tuple(ModelInfo(m.id, m.label, present=not m.retired, notes=m.status) for m in self._spec.models)

    async def cancel(self, job_id: str) -> None:
        pred_id = self._active.pop(job_id, None)
        if pred_id:
            try:
                await self._send_cancel(pred_id, self._key(), require_url(SERVICE, self._endpoint))
            except StudioError:
                pass

    async def aclose(self) -> None:
        await self._client.aclose()


def create(settings: Any, secrets: Any) -> ReplicateProvider:
    cfg = settings.provider("replicate")
    spec = catalog.provider("replicate")
    return ReplicateProvider(
        api_key=secrets.get("replicate"),
        model=str(cfg.get("model") or ""),
        endpoint=str(cfg.get("endpoint") or cfg.get("base_url") or spec.get("endpoint") or API),
        timeout=clamp_timeout(cfg.get("timeout"), spec.get("timeout_s") or 300),
        wait=int(cfg.get("wait") or spec.get("wait_s") or 60),
    )
