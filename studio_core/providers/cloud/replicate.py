"""Replicate predictions over httpx (providers.md §2).

Create with ``Prefer: wait`` so a fast model answers in one round trip, poll the
prediction while it is ``starting``/``processing`` without output, cancel it on the
server when the job is cancelled, then download each output: an ``https`` file URL or a
``data:`` URI. The token goes only to the API host; output files are fetched without it.

A create is sent once. It is sent again only when Replicate provably did not take it
(throttled with 429, or no connection was made): a create that timed out or failed may
still run and be billed, so the prediction is looked up in the account's list instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import re
from datetime import datetime, timedelta, timezone
from typing import Any, AsyncIterator
from urllib.parse import quote, urlsplit

import httpx

from studio_core import costs
from studio_core.errors import (
    ConnectionLost,
    ContentRefused,
    GenerationFailed,
    InputsNotSupported,
    InvalidResponse,
    JobTimedOut,
    ModelNotFound,
    RateLimited,
    RequestTimedOut,
    ServerError,
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
from studio_core.providers.cloud import catalog, input_images
from studio_core.providers.cloud.common import (
    Done,
    attempts_setting,
    clean_key,
    error_for_status,
    image_from_base64,
    image_from_bytes,
    json_object,
    require_url,
    retry_events,
    scrub,
    size_notice,
    sent_no_answer,
    status_from_error,
    timeout_setting,
    transport_error,
)

log = logging.getLogger(__name__)

SERVICE = "Replicate"
API = "https://api.replicate.com"
TERMINAL = frozenset({"succeeded", "failed", "canceled", "aborted"})
PREDICTIONS_PAGE = "replicate.com/predictions"
LOOKUP_TRIES = 3  # a new prediction can take a moment to show in the list
LOOKUP_PAGES = 3  # 100 predictions a page, newest first
CLOCK_SLACK = timedelta(minutes=10)  # our clock against Replicate's, for created_after
_NSFW = re.compile(r"nsfw|safety|content polic|flagged", re.I)
DATA_URI_MAX = 1_000_000  # replicate.com/docs/topics/predictions/input-files: data URIs only below 1 MB


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
        input_store: Any = None,
    ):
        self._raw_key = api_key
        self.input_store = input_store  # studio_core.input_store.InputStore: the images a request's inputs name
        self._spec = spec or catalog.provider(self.id)
        self.model = (model or "").strip() or self._spec.default_model
        self._endpoint = endpoint
        self._timeout = timeout
        # The API holds a create for 1–60 s; the hold stays inside the timeout so a short timeout still polls.
        self._wait = max(1, min(int(wait), 60, int(timeout) - 1))
        self._poll = poll_interval
        self._attempts = attempts
        self._base_delay = base_delay
        self._sleep = sleep
        # The read timeout must outlast the server's hold on a Prefer: wait request.
        read = max(min(timeout, self._wait + 5.0), self._wait + 1.0)
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(read, connect=min(timeout, 15.0)))
        self._active: dict[str, str] = {}  # job id -> prediction id still running

    # -- plumbing -----------------------------------------------------------------
    def _key(self) -> str:
        return clean_key(SERVICE, self._raw_key)

    async def _api(self, method: str, url: str, key: str, **kw: Any) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {key}", **kw.pop("headers", {})}
        idempotent = method == "GET"
        try:
            r = await self._client.request(method, url, headers=headers, **kw)
        except httpx.HTTPError as exc:
            raise scrub(transport_error(SERVICE, exc, idempotent=idempotent, where=PREDICTIONS_PAGE,
                                        address_hint=False), [key]) from None
        if r.status_code >= 400:
            raise self._error(r, key, idempotent=idempotent)
        return json_object(SERVICE, r)

    def _error(self, r: httpx.Response, key: str, *, idempotent: bool = True) -> StudioError:
        try:
            body: Any = r.json()
        except ValueError:
            body = r.text
        err = error_for_status(SERVICE, r.status_code, body, r.headers, idempotent=idempotent, where=PREDICTIONS_PAGE)
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
            raise scrub(transport_error(SERVICE, exc, idempotent=True, address_hint=False), [key]) from None
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

    # -- creating a prediction -------------------------------------------------------
    async def _create(self, url: str, body: dict[str, Any], key: str, base: str, *, job_id: str):
        """Send one create; yields notices, then ``Done(prediction)``. Never sends a create twice
        unless Replicate refused it (429) or no connection was made."""
        since = datetime.now(timezone.utc) - CLOCK_SLACK

        async def send() -> dict[str, Any]:
            return await self._api("POST", url, key, json=body, headers={"Prefer": f"wait={self._wait}"})

        try:
            async for ev in retry_events(send, job_id=job_id, attempts=self._attempts, base_delay=self._base_delay,
                                         sleep=self._sleep, retry_if=lambda e: not isinstance(e, ServerError)):
                yield ev
            return
        except (RequestTimedOut, ConnectionLost, ServerError) as exc:
            if isinstance(exc, RequestTimedOut) and not exc.sent:
                raise
            failure = exc
        yield JobNotice(job_id, f"{SERVICE} did not confirm the new prediction; looking for it in your account"
                                " instead of creating another one.")
        found, looked = await self._find_prediction(body, since, key, base)
        if found is not None:
            yield JobNotice(job_id, f"Found it (prediction {found.get('id')}); carrying on with it.")
            yield Done(found)
            return
        if isinstance(failure, ServerError) and looked:
            # Not in the list: this create was not taken, so nothing runs and nothing is billed.
            raise ServerError(str(failure), retryable=False,
                              user_message=f"{SERVICE} had a server error and made no prediction. Try again in a moment.")
        msg = sent_no_answer(SERVICE, PREDICTIONS_PAGE, lost=not isinstance(failure, RequestTimedOut))
        if not looked:
            msg += " (The list of predictions could not be read either.)"
        cls = RequestTimedOut if isinstance(failure, RequestTimedOut) else ConnectionLost
        raise scrub(cls(str(failure), user_message=msg), [key])

    async def _find_prediction(self, body: dict[str, Any], since: datetime, key: str,
                               base: str) -> tuple[dict[str, Any] | None, bool]:
        """(the prediction this create made, or None; whether the list could be read at all)."""
        looked = False
        taken = set(self._active.values())
        for attempt in range(LOOKUP_TRIES):
            if attempt:
                await self._sleep(1.0)
            url: str | None = f"{base}/v1/predictions"
            params: dict[str, str] | None = {"created_after": since.strftime("%Y-%m-%dT%H:%M:%SZ")}
            for _ in range(LOOKUP_PAGES):
                if not url:
                    break
                try:
                    page = await self._api("GET", url, key, params=params)
                except StudioError as exc:
                    log.info("replicate: prediction list not readable (%s)", type(exc).__name__)
                    break
                looked = True
                results = page.get("results")
                for pred in results if isinstance(results, list) else ():
                    if isinstance(pred, dict) and pred.get("id") not in taken and self._made_by(pred, body, since):
                        return pred, True
                nxt = page.get("next")
                # The key goes only to the API host, so a "next" link elsewhere is not followed.
                url = nxt if isinstance(nxt, str) and urlsplit(nxt).netloc == urlsplit(base).netloc else None
                params = None
        return None, looked

    def _made_by(self, pred: dict[str, Any], body: dict[str, Any], since: datetime) -> bool:
        """Whether ``pred`` is the one our create ``body`` made: same model or version, same inputs, created after we sent it."""
        if pred.get("source") not in (None, "api"):
            return False
        if "version" in body:
            if str(pred.get("version") or "") != body["version"]:
                return False
        elif str(pred.get("model") or "").lower() != self.model.lower():
            return False
        created = _parse_time(pred.get("created_at"))
        if created is not None and created < since:
            return False
        sent, got = body.get("input") or {}, pred.get("input")
        return isinstance(got, dict) and all(got.get(k) == v for k, v in sent.items())

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
        spec = self._spec.model(self.model)
        input_images.check(self._spec, self.model, request.inputs)
        prepared = await input_images.prepare(self.input_store, request.inputs, spec.inputs, service=SERVICE,
                                              model=spec.label or self.model)
        field = str(spec.get("input_field") or "")
        if (prepared.images or prepared.controls) and not field:
            alt = self._spec.model_taking(request.inputs, besides=self.model)
            raise InputsNotSupported(f"{SERVICE}: no input field known for {self.model}", user_message=(
                f"The studio does not know which input of {self.model} takes an image, so it cannot send one."
                + (f" {alt.label or alt.id} ({alt.id}) takes it: choose that model." if alt else
                   " No Replicate model the studio knows takes these inputs (none known).")))
        key = self._key()
        base = require_url(SERVICE, self._endpoint)
        yield JobStarted(job_id)
        for note in prepared.notices:
            yield JobNotice(job_id, note)
        image_value = ""
        if prepared.images:
            if prepared.init is not None:
                yield JobNotice(job_id, f"{spec.label or self.model} has no strength setting: it edits the image as the"
                                        " prompt asks, and the init image's denoise value is not used.")
            async for ev in self._input_value(prepared.images[0], spec, key, base, job_id=job_id):
                if isinstance(ev, Done):
                    image_value = ev.value
                else:
                    yield ev
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
            if field:
                inputs = self._edit_inputs(request, spec, field, image_value, seed)
            else:
                inputs = self._text_inputs(request, spec, n, seed, ratio, megapixels, w, h)
            url, extra = self._create_url(base)
            body = {**extra, "input": inputs}
            async for ev in self._run_prediction(url, body, key, base, job_id=job_id, n=n, seed=seed, w=w, h=h,
                                                 done=done, total=total):
                yield ev
            done += n
            chunk += 1
            yield JobProgress(job_id, done, total)

    def _edit_inputs(self, request: GenerationRequest, spec: catalog.ModelSpec, field: str, image: str,
                     seed: int | None) -> dict[str, Any]:
        """An editing model's inputs (FLUX Kontext): the prompt, the image and a shape; one image a call."""
        inputs: dict[str, Any] = {"prompt": request.prompt, "output_format": "png"}
        if image:
            inputs[field] = image
        ratios = [r for r in (spec.get("aspect_ratios") or ()) if ":" in str(r)]
        if image and spec.get("input_aspect"):
            inputs["aspect_ratio"] = spec.get("input_aspect")
        elif ratios:
            inputs["aspect_ratio"] = _nearest_ratio(request.width, request.height, ratios)
        if seed is not None:
            inputs["seed"] = seed
        return inputs

    def _text_inputs(self, request: GenerationRequest, spec: catalog.ModelSpec, n: int, seed: int | None, ratio: str,
                     megapixels: str, w: int, h: int) -> dict[str, Any]:
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
        return inputs

    async def _input_value(self, image: input_images.InputImage, spec: catalog.ModelSpec, key: str, base: str, *,
                           job_id: str):
        """Yields notices, then ``Done(value)``: a data URI for a small image, else the URL of an upload
        (``POST /v1/files``, multipart ``content``) that only Replicate can read."""
        import base64

        raw = spec.get("inputs") if isinstance(spec.get("inputs"), dict) else {}
        small = int(raw.get("data_uri_max_bytes") or DATA_URI_MAX)
        if len(image.data) <= small:
            yield Done(f"data:{image.mime};base64,{base64.b64encode(image.data).decode()}")
            return

        async def upload() -> str:
            body = await self._api("POST", f"{base}/v1/files", key,
                                   files={"content": (f"{image.digest[:16]}.png", image.data, image.mime)})
            url = (body.get("urls") or {}).get("get") if isinstance(body.get("urls"), dict) else None
            if not isinstance(url, str) or not url.startswith(("https://", "http://")):
                raise InvalidResponse(f"{SERVICE}: file upload answered without a URL",
                                      user_message=f"{SERVICE} took the input image but did not say where it is.")
            return url

        async for ev in retry_events(upload, job_id=job_id, attempts=self._attempts, base_delay=self._base_delay,
                                     sleep=self._sleep):
            yield ev

    async def _run_prediction(self, url: str, body: dict[str, Any], key: str, base: str, *, job_id: str, n: int,
                              seed: int | None, w: int, h: int, done: int, total: int):
        """One prediction from create to downloaded images: yields progress, notices and JobImages."""
        pred: dict[str, Any] = {}
        async for ev in self._create(url, body, key, base, job_id=job_id):
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
            info = costs.image_info(self.id, self.model, width=w, height=h, extra=(("prediction_id", pred_id),),
                                    cat=catalog.load())
            yield JobImage(job_id, data, mime=mime, seed=seed if k == 0 else None, index=done + k, info=info)

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


def _nearest_ratio(width: int, height: int, ratios: Any) -> str:
    import math

    def value(r: str) -> float:
        a, _, b = r.partition(":")
        return math.log(float(a) / float(b))

    want = math.log(max(width, 1) / max(height, 1))
    return min(ratios, key=lambda r: abs(value(str(r)) - want))


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def create(settings: Any, secrets: Any) -> ReplicateProvider:
    cfg = settings.provider("replicate")
    spec = catalog.provider("replicate")
    return ReplicateProvider(
        api_key=secrets.get("replicate"),
        model=str(cfg.get("model") or ""),
        endpoint=str(cfg.get("endpoint") or cfg.get("base_url") or spec.get("endpoint") or API),
        timeout=timeout_setting(cfg, spec.get("timeout_s") or 300),
        wait=int(cfg.get("wait") or spec.get("wait_s") or 60),
        attempts=attempts_setting(cfg),
    )
