"""OpenAI Images (providers.md §6) through the official ``openai`` SDK (async, httpx-based).

:class:`OpenAIImagesProvider` also carries everything Azure OpenAI shares with it (same
SDK, same body and response); :mod:`azure_openai` only swaps the client and the words.
The SDK's own retries are off (``max_retries=0``): retries happen in one place,
:func:`~studio_core.providers.cloud.common.with_retries`, so a 429 is waited out once and
the user sees the wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from typing import Any, AsyncIterator

import httpx
import openai

from studio_core import costs
from studio_core.errors import ContentRefused, InputsNotSupported, InvalidResponse, ModelNotFound, StudioError
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

API = "https://api.openai.com/v1"


def _is_gpt_image(model: str) -> bool:
    return model.startswith(("gpt-image", "chatgpt-image"))


class OpenAIImagesProvider:
    """Image generation with OpenAI's Images API. Use from one event loop; see :class:`Provider`."""

    id = "openai"
    display_name = "OpenAI"
    service = "OpenAI"
    usage_page = "platform.openai.com/usage"

    def __init__(
        self,
        *,
        api_key: str | None,
        model: str = "",
        endpoint: str = API,
        organization: str = "",
        project: str = "",
        quality: str = "",
        timeout: float = 300.0,
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
        self._organization = organization or None
        self._project = project or None
        self._quality = quality
        self._timeout = timeout
        self._attempts = attempts
        self._base_delay = base_delay
        self._sleep = sleep
        self._client: Any = None
        self._secrets: list[str] = []

    # -- client -------------------------------------------------------------------
    def _make_client(self) -> Any:
        key = clean_key(self.service, self._raw_key)
        self._secrets = [key]
        return openai.AsyncOpenAI(api_key=key, base_url=require_url(self.service, self._endpoint),
                                  organization=self._organization, project=self._project,
                                  timeout=self._timeout, max_retries=0)

    def _get_client(self) -> Any:
        if self._client is None:
            self._client = self._make_client()
        return self._client

    @property
    def _model_field(self) -> str:
        return self.model

    # -- errors -------------------------------------------------------------------
    def _map_error(self, exc: BaseException, *, idempotent: bool = False) -> StudioError:
        """``idempotent``: the call only reads, so a lost answer may be asked for again."""
        if isinstance(exc, StudioError):
            return scrub(exc, self._secrets)
        if isinstance(exc, openai.APIStatusError):
            err = error_for_status(self.service, exc.status_code, exc.body, exc.response.headers,
                                   idempotent=idempotent, where=self.usage_page)
            err = self._refine(err, exc.body)
        elif isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError)) or isinstance(exc, (TimeoutError, OSError)):
            err = transport_error(self.service, exc, idempotent=idempotent, where=self.usage_page)
        elif isinstance(exc, ValueError):  # a 200 with broken JSON: the SDK lets JSONDecodeError through
            err = InvalidResponse(f"{self.service}: malformed response ({type(exc).__name__})",
                                  user_message=f"{self.service} sent back a damaged answer.")
        else:
            err = InvalidResponse(f"{self.service}: {type(exc).__name__}: {exc}",
                                  user_message=f"{self.service} sent back something unexpected.")
        return scrub(err, self._secrets)

    def _refine(self, err: StudioError, body: Any) -> StudioError:
        if isinstance(err, ModelNotFound):
            err.user_message = self._spec.retired_message(self.model, self.service)
        return err

    # -- the call ------------------------------------------------------------------
    async def _call(self, params: dict[str, Any]) -> Any:
        # With input images the same body goes to images.edit as multipart (image[] parts, mask).
        images = self._get_client().images
        try:
            resp = await (images.edit(**params) if "image" in params else images.generate(**params))
        except Exception as exc:  # noqa: BLE001 - library exceptions never leave the provider
            raise self._map_error(exc) from None
        if not hasattr(resp, "data"):
            raise InvalidResponse(f"{self.service}: response of type {type(resp).__name__}",
                                  user_message=f"{self.service} sent back something that is not an image answer.")
        return resp

    async def _image(self, item: Any) -> tuple[bytes, str]:
        b64 = getattr(item, "b64_json", None)
        if b64:
            return image_from_base64(self.service, b64)
        url = getattr(item, "url", None)
        if not url:
            raise InvalidResponse(f"{self.service}: data item without b64_json or url", user_message=f"{self.service} answered without an image.")
        # dall-e style URLs are signed links: fetched without our key.
        try:
            async with httpx.AsyncClient(timeout=httpx.Timeout(self._timeout, connect=15.0)) as c:
                r = await c.get(url)
        except httpx.HTTPError as exc:
            raise transport_error(self.service, exc, idempotent=True) from None
        if r.status_code >= 400:
            raise error_for_status(self.service, r.status_code, r.text, r.headers, idempotent=True)
        return image_from_bytes(self.service, r.content)

    def _params(self, request: GenerationRequest, spec: catalog.ModelSpec, n: int, size: str,
                transparent: bool) -> dict[str, Any]:
        prompt = request.prompt
        if request.negative_prompt:
            # No negative-prompt field exists; GPT image models follow plain instructions.
            prompt = f"{prompt}\nAvoid: {request.negative_prompt}"
        params: dict[str, Any] = {"model": self._model_field, "prompt": prompt, "n": n, "size": size}
        quality = self._quality or (self._spec.get("quality_map") or {}).get(request.quality.value, "")
        if _is_gpt_image(self.model) or not spec.known:
            params["output_format"] = "png"
            if quality:
                params["quality"] = quality
            if transparent:
                params["background"] = "transparent"
        else:
            params["response_format"] = "b64_json"
        return params

    # -- Provider protocol ----------------------------------------------------------
    async def generate(self, request: GenerationRequest, *, job_id: str) -> AsyncIterator[JobEvent]:
        """Generate with ``request.model`` when given, else the model from Settings."""
        model = (request.model or "").strip()
        target = self if not model or model == self.model else self._with_model(model)
        async with contextlib.aclosing(target._generate(request, job_id=job_id)) as events:
            async for ev in events:
                yield ev

    def _with_model(self, model: str) -> Any:
        # Shares the connection pool and job table; only the model differs. The client is
        # made first so the twin does not open a second one that nobody closes.
        try:
            self._get_client()
        except Exception:  # noqa: BLE001 - the twin raises the same problem, mapped, when it runs
            pass
        twin = copy.copy(self)
        twin.model = model
        return twin

    async def _generate(self, request: GenerationRequest, *, job_id: str) -> AsyncIterator[JobEvent]:
        spec = self._spec.model(self.model)
        input_images.check(self._spec, self.model, request.inputs)
        try:
            self._get_client()
        except Exception as exc:  # noqa: BLE001
            raise self._map_error(exc) from None
        files = await self._edit_files(request, spec)
        yield JobStarted(job_id)
        for note in files.pop("notices", ()):
            yield JobNotice(job_id, note)
        for note in self._start_notes():
            yield JobNotice(job_id, note)
        if spec.retired:
            yield JobNotice(job_id, self._spec.retired_message(self.model, self.service) + " Trying it anyway.")
        w, h, _ = spec.fit(request.width, request.height)
        if (w, h) != (request.width, request.height):
            yield JobNotice(job_id, size_notice(self.service, (request.width, request.height), (w, h)))
        transparent = request.background.mode == "provider"
        if transparent and not spec.transparency:
            yield JobNotice(job_id, f"{self.service}'s model {self.model} can't make transparent backgrounds;"
                                    " the image will have a solid background.")
            transparent = False
        if request.seed is not None:
            yield JobNotice(job_id, f"{self.service} has no seed setting, so the same prompt gives a different image each time.")
        total, per_call, done = max(request.batch, 1), spec.max_batch, 0
        while done < total:
            n = min(per_call, total - done)
            params = {**self._params(request, spec, n, f"{w}x{h}", transparent), **files}

            async def call(params: dict[str, Any] = params) -> Any:
                return await self._call(params)

            resp: Any = None
            async for ev in retry_events(call, job_id=job_id, attempts=self._attempts, base_delay=self._base_delay,
                                         sleep=self._sleep):
                if isinstance(ev, Done):
                    resp = ev.value
                else:
                    yield ev
            items = list(resp.data or [])
            if not items:
                raise ContentRefused(f"{self.service}: no images in response",
                                     user_message=f"{self.service} returned no image; its safety system may have removed it.")
            usage = resp.usage.model_dump() if getattr(resp, "usage", None) is not None else None
            quality = params.get("quality")
            for k, item in enumerate(items):
                data, mime = await self._image(item)
                extra: list[tuple[str, Any]] = []
                if transparent:
                    extra.append(("background", "transparent"))
                if getattr(item, "revised_prompt", None):
                    extra.append(("revised_prompt", item.revised_prompt))
                info = costs.image_info(self._cost_provider, self.model, width=w, height=h, quality=quality, usage=usage,
                                        images_in_call=len(items), extra=[*self._extra_info(), *extra],
                                        cat=catalog.load())
                yield JobImage(job_id, data, mime=mime, seed=None, index=done + k, info=info)
            done += n
            yield JobProgress(job_id, done, total)

    async def _edit_files(self, request: GenerationRequest, spec: catalog.ModelSpec) -> dict[str, Any]:
        """``image``/``mask`` file arguments for images.edit (none without input images) and
        ``notices`` for the job. Blocking work (Pillow) runs in a thread."""
        prepared = await input_images.prepare(self.input_store, request.inputs, spec.inputs,
                                              service=self.service, model=self.model)
        if not prepared.images:
            if prepared.controls:
                raise InputsNotSupported(f"{self.service}: control images", user_message=(
                    f"{self.service} image edits take no control images (pose, depth…); use ComfyUI for those."))
            return {}
        out: dict[str, Any] = {
            "image": [(f"{'init' if im.role == 'init' else 'reference'}-{k}.png", im.data, im.mime)
                      for k, im in enumerate(prepared.images)],
            "notices": list(prepared.notices)}
        if prepared.init is not None:
            out["notices"].append(f"{self.service} edits have no strength setting: the init image is followed as the"
                                  " prompt asks, and its denoise value is not used.")
        if prepared.mask is not None:
            size = await asyncio.to_thread(lambda: prepared.images[0].size)
            out["mask"] = ("mask.png", await asyncio.to_thread(input_images.transparent_where_redrawn,
                                                               prepared.mask.data, size), "image/png")
        return out

    @property
    def _cost_provider(self) -> str:
        return self.id

    def _extra_info(self) -> list[tuple[str, Any]]:
        return []

    def _start_notes(self) -> list[str]:
        return []

    async def check(self) -> ProviderStatus:
        """``GET /models/{model}``: free, and proves both the key and that the model still exists."""
        try:
            client = self._get_client()
            try:
                await client.models.retrieve(self.model)
            except Exception as exc:  # noqa: BLE001
                raise self._map_error(exc, idempotent=True) from None
            return ProviderStatus(ServiceState.ready, f"Connected; model {self.model} is available.",
                                  details=(("model", self.model),))
        except ModelNotFound as exc:
            return ProviderStatus(ServiceState.error, f"The key works, but: {exc.user_message}")
        except Exception as exc:  # check() reports, never raises
            return status_from_error(exc)

    async def list_models(self) -> tuple[ModelInfo, ...]:
        return tuple(ModelInfo(m.id, m.label, family="gpt-image" if _is_gpt_image(m.id) else "dall-e",
                               present=not m.retired, notes=m.status) for m in self._spec.models)

    async def cancel(self, job_id: str) -> None:
        # One synchronous request per call: cancelling the iterating task drops it; there is no server-side job.
        return None

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()


def create(settings: Any, secrets: Any) -> OpenAIImagesProvider:
    cfg = settings.provider("openai")
    spec = catalog.provider("openai")
    return OpenAIImagesProvider(
        api_key=secrets.get("openai"),
        model=str(cfg.get("model") or ""),
        endpoint=str(cfg.get("endpoint") or cfg.get("base_url") or spec.get("endpoint") or API),
        organization=str(cfg.get("organization") or ""),
        project=str(cfg.get("project") or ""),
        quality=str(cfg.get("quality") or ""),
        timeout=timeout_setting(cfg, spec.get("timeout_s") or 300),
        attempts=attempts_setting(cfg),
    )
