"""Hugging Face Inference Providers through the router (providers.md §1), with httpx.

``hf-inference`` gets the documented text-to-image contract: ``POST
/hf-inference/models/{model}`` with ``{"inputs", "parameters"}``, answered with raw image
bytes (or, defensively, JSON with base64 or a URL). Other providers behind the router
speak their own shapes; the common ones are handled here: fal-ai (``images[].url``) and
the OpenAI-style ``/v1/images/generations`` of together, nebius and nscale. The
provider's own model id comes from the catalog or the Hub's mapping API.

One image per call, so a batch is several calls with consecutive seeds. The seed is
chosen here when the user left it random, so every image reports the seed that made it.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import random
from typing import Any, AsyncIterator
from urllib.parse import quote, urlsplit

import httpx

from studio_core import costs
from studio_core.errors import InputsNotSupported, InvalidResponse, ModelNotFound, RateLimited, StudioError
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
    require_url,
    retry_events,
    scrub,
    size_notice,
    status_from_error,
    timeout_setting,
    transport_error,
)

log = logging.getLogger(__name__)

SERVICE = "Hugging Face"
ROUTER = "https://router.huggingface.co"
HUB = "https://huggingface.co"
USAGE_PAGE = "huggingface.co/settings/billing"
OPENAI_STYLE = {"together": "base64", "nebius": "b64_json", "nscale": "b64_json"}


class HuggingFaceProvider:
    """Text-to-image through the Hugging Face router. Use from one event loop; see :class:`Provider`."""

    id = "huggingface"
    display_name = SERVICE

    def __init__(
        self,
        *,
        api_key: str | None,
        model: str = "",
        provider: str = "hf-inference",
        endpoint: str = ROUTER,
        hub_endpoint: str = HUB,
        timeout: float = 300.0,
        attempts: int = 3,
        base_delay: float = 1.0,
        sleep: Any = asyncio.sleep,
        bill_to: str = "",
        spec: catalog.ProviderSpec | None = None,
        input_store: Any = None,
    ):
        self._raw_key = api_key
        self.input_store = input_store  # studio_core.input_store.InputStore: the images a request's inputs name
        self._bill_to = bill_to.strip()
        self._spec = spec or catalog.provider(self.id)
        self.model = (model or "").strip() or self._spec.default_model
        self.provider = (provider or "").strip() or str(self._spec.get("default_provider") or "hf-inference")
        self._endpoint = endpoint
        self._hub = hub_endpoint
        self._attempts = attempts
        self._base_delay = base_delay
        self._sleep = sleep
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)), follow_redirects=False)
        self._provider_ids: dict[tuple[str, str], str] = {}

    # -- plumbing -----------------------------------------------------------------
    def _key(self) -> str:
        return clean_key(SERVICE, self._raw_key)

    async def _send(self, method: str, url: str, key: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}", **kw.pop("headers", {})}
        if self._bill_to:
            headers["X-HF-Bill-To"] = self._bill_to
        try:
            r = await self._client.request(method, url, headers=headers, **kw)
        except httpx.HTTPError as exc:
            raise scrub(transport_error(SERVICE, exc, idempotent=method == "GET", where=USAGE_PAGE), [key]) from None
        if r.status_code >= 400:
            raise self._error(r, key, idempotent=method == "GET")
        return r

    def _error(self, r: httpx.Response, key: str, *, idempotent: bool = True) -> StudioError:
        try:
            body: Any = r.json()
        except ValueError:
            body = r.text
        if not body and r.headers.get("x-error-message"):
            body = {"error": r.headers["x-error-message"]}
        if r.status_code == 503 and isinstance(body, dict) and isinstance(body.get("estimated_time"), (int, float)):
            wait = float(body["estimated_time"])
            err: StudioError = RateLimited(f"{SERVICE}: HTTP 503 model loading ({wait:.0f} s)", retry_after=wait,
                                           user_message=f"{SERVICE} is loading the model (about {wait:.0f} s).")
        else:
            err = error_for_status(SERVICE, r.status_code, body, r.headers, idempotent=idempotent,
                                   where=USAGE_PAGE)
        if isinstance(err, ModelNotFound):
            err.user_message = self._spec.retired_message(self.model, SERVICE)
            if self.provider != "hf-inference":
                err.user_message += f" (Provider: {self.provider}.)"
        return scrub(err, [key])

    # -- provider model ids ---------------------------------------------------------
    async def _provider_model_id(self, key: str) -> str:
        cached = self._provider_ids.get((self.provider, self.model))
        if cached:
            return cached
        known = self._spec.model(self.model).get("provider_ids") or {}
        pid = known.get(self.provider) if isinstance(known, dict) else None
        if not pid:
            hub = require_url(SERVICE, self._hub, what="Hub address")
            r = await self._send("GET", f"{hub}/api/models/{quote(self.model, safe='/')}", key,
                                 params={"expand[]": "inferenceProviderMapping"})
            try:
                mapping = r.json().get("inferenceProviderMapping") or {}
                if isinstance(mapping, list):  # newer Hub answers a list of {provider, providerId, ...}
                    mapping = {m.get("provider"): m for m in mapping if isinstance(m, dict)}
                pid = (mapping.get(self.provider) or {}).get("providerId")
            except (ValueError, AttributeError):
                pid = None
            if not pid:
                raise ModelNotFound(f"{SERVICE}: {self.model} not mapped for {self.provider}",
                                    user_message=f"The provider '{self.provider}' does not serve '{self.model}' on {SERVICE}."
                                                 " Pick another provider (hf-inference, fal-ai, …) or model in Settings.")
        self._provider_ids[(self.provider, self.model)] = pid
        return pid

    # -- one image --------------------------------------------------------------------
    async def _read_image(self, r: httpx.Response, key: str, base: str) -> tuple[bytes, str]:
        ctype = r.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json" and not r.content.lstrip().startswith((b"{", b"[")):
            return image_from_bytes(SERVICE, r.content)
        try:
            body = r.json()
        except ValueError as exc:
            raise InvalidResponse(f"{SERVICE}: malformed JSON body", user_message=f"{SERVICE} sent back a damaged answer.") from exc
        try:
            if isinstance(body, dict) and body.get("data"):
                item = body["data"][0]
                if item.get("b64_json"):
                    return image_from_base64(SERVICE, item["b64_json"])
                url = item.get("url")
            elif isinstance(body, dict) and body.get("images"):
                item = body["images"][0]
                url = item.get("url") if isinstance(item, dict) else item
            elif isinstance(body, dict) and body.get("output"):
                out = body["output"]
                url = out if isinstance(out, str) else out[0]
            else:
                url = None
        except (KeyError, IndexError, TypeError, AttributeError):
            url = None
        if not isinstance(url, str) or not url:
            raise InvalidResponse(f"{SERVICE}: JSON without an image: {str(body)[:200]}",
                                  user_message=f"{SERVICE} answered without an image.")
        if url.startswith("data:"):
            return image_from_base64(SERVICE, url)
        # The key goes only to Hugging Face's own router, never to a provider's file host.
        same_host = urlsplit(url).netloc == urlsplit(base).netloc
        try:
            got = await self._client.get(url, headers={"Authorization": f"Bearer {key}"} if same_host else {})
        except httpx.HTTPError as exc:
            raise scrub(transport_error(SERVICE, exc, idempotent=True), [key]) from None
        if got.status_code >= 400:
            raise self._error(got, key)
        return image_from_bytes(SERVICE, got.content)

    async def _one(self, key: str, base: str, prompt: str, params: dict[str, Any]) -> tuple[bytes, str]:
        if "image" in params:
            # The image-to-image task (hub-docs tasks/image-to-image.md): the image as base64
            # ``inputs``, the prompt among the parameters, the output size as target_size.
            import base64

            image = params.pop("image")
            params.pop("seed", None)  # the task has no seed parameter
            params["prompt"] = prompt
            params["target_size"] = {"width": params.pop("width"), "height": params.pop("height")}
            url = f"{base}/hf-inference/models/{quote(self.model, safe='/')}"
            body: dict[str, Any] = {"inputs": base64.b64encode(image).decode(), "parameters": params}
        elif self.provider == "hf-inference":
            url = f"{base}/hf-inference/models/{quote(self.model, safe='/')}"
            body = {"inputs": prompt, "parameters": params}
        else:
            pid = await self._provider_model_id(key)
            if self.provider == "fal-ai":
                url = f"{base}/fal-ai/{pid}"
                body = {"prompt": prompt, "image_size": {"width": params.pop("width"), "height": params.pop("height")},
                        "num_images": 1, **params}
            else:
                url = f"{base}/{self.provider}/v1/images/generations"
                body = {"prompt": prompt, "model": pid, "response_format": OPENAI_STYLE.get(self.provider, "b64_json"),
                        "n": 1, **params}
        r = await self._send("POST", url, key, json=body, headers={"Accept": "image/png"})
        return await self._read_image(r, key, base)

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
        image = self._input_image(prepared, spec)
        key = self._key()
        base = require_url(SERVICE, self._endpoint)
        yield JobStarted(job_id)
        for note in prepared.notices:
            yield JobNotice(job_id, note)
        if image is not None and prepared.init is not None:
            yield JobNotice(job_id, f"{SERVICE}'s image-to-image task has no strength setting: the init image's"
                                    " denoise value is not used.")
        if spec.retired:
            yield JobNotice(job_id, self._spec.retired_message(self.model, SERVICE) + " Trying it anyway.")
        w, h, _ = spec.fit(request.width, request.height)
        if (w, h) != (request.width, request.height):
            yield JobNotice(job_id, size_notice(SERVICE, (request.width, request.height), (w, h)))
        # A model the catalog does not know gets the task's standard parameters as the user set them.
        steps = spec.steps(request.steps) if spec.known else request.steps
        batch = max(request.batch, 1)
        first_seed = request.seed if request.seed is not None else random.randint(0, 2**31 - 1)
        for i in range(batch):
            seed = (first_seed + i) % 2**32
            params: dict[str, Any] = {"width": w, "height": h, "seed": seed}
            if image is not None:
                params["image"] = image
            if steps is not None:
                params["num_inference_steps"] = steps
            if spec.get("guidance", not spec.known):
                params["guidance_scale"] = request.cfg
            if request.negative_prompt and spec.get("negative_prompt", True):
                params["negative_prompt"] = request.negative_prompt

            async def call(params: dict[str, Any] = params) -> tuple[bytes, str]:
                return await self._one(key, base, request.prompt, dict(params))

            result: tuple[bytes, str] | None = None
            async for ev in retry_events(call, job_id=job_id, attempts=self._attempts, base_delay=self._base_delay,
                                         sleep=self._sleep):
                if isinstance(ev, Done):
                    result = ev.value
                else:
                    yield ev
            assert result is not None
            data, mime = result
            info = costs.image_info(self.id, self.model, width=w, height=h,
                                    extra=(("hf_provider", self.provider),), cat=catalog.load())
            yield JobImage(job_id, data, mime=mime, seed=None if image is not None else seed, index=i, info=info)
            yield JobProgress(job_id, i + 1, batch)

    def _input_image(self, prepared: input_images.Prepared, spec: catalog.ModelSpec) -> bytes | None:
        """The one picture the image-to-image task takes; refuses (before sending) what it cannot carry."""
        if prepared.empty:
            return None
        label = spec.label or self.model
        if self.provider != "hf-inference":
            raise InputsNotSupported(f"{SERVICE}: image inputs through {self.provider}", user_message=(
                f"The studio sends image inputs to {SERVICE} through the hf-inference provider only, and this service"
                f" is set to '{self.provider}'. Choose hf-inference in Settings, or use Replicate for FLUX Kontext."))
        if prepared.mask is not None or prepared.controls or len(prepared.images) > 1:
            raise InputsNotSupported(f"{SERVICE}: {label}: more than one image", user_message=(
                f"{SERVICE}'s image-to-image task gives {label} one image and no mask or control image;"
                " keep only the init image (or one reference)."))
        return prepared.images[0].data

    async def check(self) -> ProviderStatus:
        """Free calls only: ``whoami`` proves the token, the model mapping shows who serves the model."""
        try:
            key = self._key()
            hub = require_url(SERVICE, self._hub, what="Hub address")
            require_url(SERVICE, self._endpoint)
            who = await self._send("GET", f"{hub}/api/whoami-v2", key)
            try:
                name = str(who.json().get("name") or "")
            except (ValueError, AttributeError):
                name = ""
            note = ""
            try:
                r = await self._send("GET", f"{hub}/api/models/{quote(self.model, safe='/')}", key,
                                     params={"expand[]": "inferenceProviderMapping"})
                mapping = r.json().get("inferenceProviderMapping") or {}
                names = list(mapping) if isinstance(mapping, dict) else [m.get("provider") for m in mapping if isinstance(m, dict)]
                if self.provider not in names:
                    return ProviderStatus(ServiceState.error,
                                          f"The key works, but '{self.provider}' does not serve {self.model} right now"
                                          + (f" (served by: {', '.join(map(str, names))})." if names else "."))
            except StudioError as exc:
                note = f" (Could not confirm the model: {exc.user_message})"
            except (ValueError, AttributeError):
                note = ""
            who_txt = f" as {name}" if name else ""
            return ProviderStatus(ServiceState.ready, f"Connected{who_txt}; {self.model} through {self.provider}.{note}",
                                  details=(("model", self.model), ("provider", self.provider)))
        except Exception as exc:  # check() reports, never raises
            return status_from_error(exc)

    async def list_models(self) -> tuple[ModelInfo, ...]:
        return tuple(ModelInfo(m.id, m.label, family="flux" if "flux" in m.id.lower() else "",
                               present=not m.retired, notes=m.status) for m in self._spec.models)

    async def cancel(self, job_id: str) -> None:
        # Synchronous calls: cancelling the iterating task closes the connection, which is all the router offers.
        return None

    async def aclose(self) -> None:
        await self._client.aclose()


def create(settings: Any, secrets: Any) -> HuggingFaceProvider:
    cfg = settings.provider("huggingface")
    spec = catalog.provider("huggingface")
    return HuggingFaceProvider(
        api_key=secrets.get("huggingface"),
        model=str(cfg.get("model") or ""),
        provider=str(cfg.get("provider") or spec.get("default_provider") or "hf-inference"),
        endpoint=str(cfg.get("endpoint") or cfg.get("base_url") or spec.get("endpoint") or ROUTER),
        hub_endpoint=str(cfg.get("hub_endpoint") or spec.get("hub_endpoint") or HUB),
        bill_to=str(cfg.get("bill_to") or ""),
        timeout=timeout_setting(cfg, spec.get("timeout_s") or 300),
        attempts=attempts_setting(cfg),
    )
