"""Google image generation through the official google-genai SDK, on two surfaces.

``gemini``: the Gemini API with an API key (``x-goog-api-key``), Gemini image models via
``generateContent``. ``vertex``: Vertex AI with application default credentials from
google-auth (Bearer token; the SDK refreshes it in a thread), Gemini image models plus
Imagen ``:predict`` for projects that still have it. The SDK sends through an
httpx client this provider owns, so timeouts are httpx's and cancelling the job aborts
the request. The SDK never retries here; :func:`with_retries` decides, once.
"""

from __future__ import annotations

import asyncio
import warnings
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable

import httpx

from studio_core.errors import (
    AuthenticationFailed,
    DependencyMissing,
    InputsNotSupported,
    InvalidRequest,
    InvalidResponse,
    MissingCredentials,
    ModelNotFound,
    ProviderUnavailable,
    StudioError,
)
from studio_core.models import (
    GenerationRequest,
    JobEvent,
    JobImage,
    JobNotice,
    JobStarted,
    ModelInfo,
    ProviderStatus,
    ServiceState,
)
from studio_core import costs
from studio_core.providers.cloud import catalog
from studio_core.providers.cloud import google_wire as wire
from studio_core.providers.cloud import input_images
from studio_core.providers.cloud.common import (
    Done,
    attempts_setting,
    clean_key,
    image_from_bytes,
    require_url,
    retry_events,
    scrub,
    status_from_error,
    timeout_setting,
    transport_error,
)
from studio_core.secrets import SecretStore
from studio_core.settings import Settings

try:
    from google import genai
    from google.genai import errors as genai_errors
    from google.genai import types as genai_types
except ImportError as exc:  # the registry turns this into "install the cloud extra"
    raise DependencyMissing("google-genai") from exc

PROVIDER_ID = "google"
FALLBACK_MODEL = "gemini-3.1-flash-image"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
_SIZE_PX = {"1K": 1024, "2K": 2048, "4K": 4096}
USAGE_PAGE = "the usage page of Google AI Studio or the Google Cloud console"


@dataclass(frozen=True, slots=True)
class GoogleConfig:
    surface: str = "gemini"  # "gemini" (API key) | "vertex" (application default credentials)
    project: str = ""
    location: str = ""  # "" → the catalog's Vertex default, else "global"
    model: str = ""
    endpoint: str = ""  # base URL override (regional/private endpoints, tests)
    api_version: str = ""  # "" → v1beta on the Gemini API, v1 on Vertex
    timeout_s: float = 300.0
    attempts: int = 3
    base_delay: float = 2.0

    @classmethod
    def from_settings(cls, values: dict[str, Any]) -> GoogleConfig:
        def text(key: str, default: str = "") -> str:
            return str(values.get(key, default) or default).strip()

        return cls(surface=text("surface", "gemini").lower(), project=text("project"), location=text("location"),
                   model=text("model"), endpoint=text("endpoint"), api_version=text("api_version"),
                   timeout_s=timeout_setting(values, 300.0), attempts=attempts_setting(values))

    @property
    def is_vertex(self) -> bool:
        return self.surface == "vertex"


def _is_imagen(m: catalog.ModelSpec) -> bool:
    return m.get("api") == "predict" if m.known else m.id.startswith("imagen")


def _load_adc() -> tuple[Any, str]:
    """Application default credentials (blocking: files, maybe a metadata probe; run in a thread)."""
    try:
        import google.auth
        from google.auth.exceptions import GoogleAuthError
    except ImportError as exc:
        raise DependencyMissing("google-auth") from exc
    try:
        creds, project = google.auth.default(scopes=[CLOUD_PLATFORM])
    except GoogleAuthError as exc:
        raise MissingCredentials(f"google-auth: {type(exc).__name__}", user_message=(
            "No Google Cloud credentials were found. Run: gcloud auth application-default login "
            "(or use the Gemini API with an API key instead).")) from None
    return creds, project or ""


class GoogleProvider:
    """Gemini/Imagen generation. Use from one asyncio loop; see Provider for the contract."""

    def __init__(self, config: GoogleConfig, *, api_key: str | None = None, credentials: Any = None,
                 http: httpx.AsyncClient | None = None, sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 load_adc: Callable[[], tuple[Any, str]] = _load_adc, input_store: Any = None):
        self.id = PROVIDER_ID
        self.input_store = input_store  # studio_core.input_store.InputStore: the images a request's inputs name
        self.display_name = "Google Vertex AI" if config.is_vertex else "Google Gemini API"
        self.config = config
        self._api_key = (api_key or "").strip() or None
        self._credentials = credentials
        self._http = http or httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=config.timeout_s))
        self._sleep = sleep
        self._load_adc = load_adc
        self._client: genai.Client | None = None
        self._project = config.project
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        self.catalog: catalog.Catalog = catalog.load()

    @property
    def spec(self) -> catalog.ProviderSpec:
        return self.catalog.provider(PROVIDER_ID)

    @property
    def default_model(self) -> str:
        return self.spec.default_model or FALLBACK_MODEL

    @property
    def model(self) -> str:
        return self.config.model or self.default_model

    @property
    def location(self) -> str:
        return self.config.location or str(self.spec.get("vertex_default_location") or "global")

    # -- client ----------------------------------------------------------------------------
    async def _sdk(self) -> genai.Client:
        if self._client is not None:
            return self._client
        cfg = self.config
        if cfg.surface not in ("gemini", "vertex"):
            raise InvalidRequest(f"surface {cfg.surface!r}", user_message="Pick 'gemini' (API key) or 'vertex' "
                                                                         "(Google Cloud credentials) for Google.")
        options = genai_types.HttpOptions(
            base_url=require_url(wire.SERVICE, cfg.endpoint) if cfg.endpoint else None,
            api_version=cfg.api_version or ("v1" if cfg.is_vertex else "v1beta"),
            timeout=int(cfg.timeout_s * 1000),  # ms; without it the SDK disables the client's timeout
            httpx_async_client=self._http,
        )
        if cfg.is_vertex:
            creds, project = self._credentials, cfg.project
            if creds is None:
                creds, adc_project = await asyncio.to_thread(self._load_adc)
                project = project or adc_project
            if not project:
                raise MissingCredentials("no Google Cloud project", user_message=(
                    "Set the Google Cloud project ID in Settings (Vertex AI needs one)."))
            self._project = project
            kwargs: dict[str, Any] = {"vertexai": True, "project": project, "location": self.location, "credentials": creds}
        else:
            if not self._api_key:
                raise MissingCredentials("no Gemini API key", user_message=(
                    "Add a Gemini API key in Settings (create one at aistudio.google.com), or switch to Vertex AI."))
            kwargs = {"vertexai": False, "api_key": clean_key("Gemini API", self._api_key)}
        try:
            self._client = genai.Client(http_options=options, **kwargs)
        except ValueError as exc:  # the SDK refuses contradictory settings (e.g. key plus project)
            raise InvalidRequest(f"google-genai client: {exc}", user_message=(
                "The Google settings contradict each other; check the surface, project and location.")) from None
        return self._client

    async def _call(self, make: Callable[[genai.Client], Awaitable[Any]], *, model: str, idempotent: bool = False) -> Any:
        """Run one SDK call and turn whatever it raises into a StudioError (``idempotent``: it only reads)."""
        from google.auth import exceptions as auth_errors

        client = await self._sdk()
        try:
            return await make(client)
        except genai_errors.APIError as exc:
            headers = getattr(getattr(exc, "response", None), "headers", None) or {}
            # a service may echo the key back in its error text
            raise scrub(wire.error_for_api(exc.code or 0, exc.details, dict(headers), model=model,
                                           surface=self.config.surface,
                                           model_gone=self.spec.retired_message(model, wire.SERVICE)),
                        [self._api_key]) from None
        except (httpx.HTTPError, TimeoutError) as exc:
            raise self._transport(exc, idempotent) from None
        except auth_errors.RefreshError as exc:
            raise AuthenticationFailed(f"google-auth refresh: {type(exc).__name__}", user_message=(
                "Your Google Cloud sign-in could not be renewed. Run: gcloud auth application-default login")) from None
        except auth_errors.GoogleAuthError as exc:
            raise ProviderUnavailable(f"google-auth: {type(exc).__name__}", user_message=(
                "Could not get a Google Cloud access token. Check your connection and credentials.")) from None
        except ValueError as exc:  # broken JSON or an unexpected shape (pydantic errors are ValueErrors)
            raise InvalidResponse(f"{wire.SERVICE}: unreadable reply ({type(exc).__name__})",
                                  user_message="Google sent back a reply that could not be read.") from None
        except Exception as exc:
            # where httpx2 is installed the SDK may use it; its errors are not httpx's
            if type(exc).__module__.split(".")[0] == "httpx2":
                raise self._transport(exc, idempotent) from None
            raise

    def _transport(self, exc: BaseException, idempotent: bool) -> StudioError:
        err = transport_error(wire.SERVICE, exc, idempotent=idempotent, where=USAGE_PAGE)
        if type(err) is ProviderUnavailable:  # no connection was made
            err.user_message = ("Can't reach Google. Check your internet connection"
                                + (" and the location setting." if self.config.is_vertex else "."))
        return err

    # -- Provider ------------------------------------------------------------------------
    async def check(self) -> ProviderStatus:
        model = self.model
        try:
            found = await self._call(lambda c: c.aio.models.get(model=model), model=model, idempotent=True)
        except StudioError as exc:
            return status_from_error(exc)
        where = (f"Vertex AI (project {self._project}, {self.location})" if self.config.is_vertex
                 else "the Gemini API")
        label = getattr(found, "display_name", None) or model
        return ProviderStatus(ServiceState.ready, f"Connected to {where}. Model {label} is available.",
                              (("surface", self.config.surface), ("model", model)))

    async def list_models(self) -> tuple[ModelInfo, ...]:
        return tuple(ModelInfo(m.id, m.label or m.id, "imagen" if _is_imagen(m) else "gemini", not m.retired,
                               str(m.get("status_note") or m.status)) for m in self.spec.models)

    async def generate(self, request: GenerationRequest, *, job_id: str) -> AsyncIterator[JobEvent]:
        task = asyncio.current_task()
        if task is not None:
            self._tasks[job_id] = task
        try:
            async for event in self._generate(request, job_id):
                yield event
        finally:
            self._tasks.pop(job_id, None)

    def _shape(self, request: GenerationRequest, m: catalog.ModelSpec) -> tuple[str | None, str | None, str]:
        w, h = max(1, request.width), max(1, request.height)
        fw, fh, ratio = m.fit(w, h)
        known = [s for s in (m.get("image_sizes") or ()) if s in _SIZE_PX]
        fitting = [s for s in known if _SIZE_PX[s] >= max(w, h)]
        size = min(fitting, key=_SIZE_PX.__getitem__) if fitting else (max(known, key=_SIZE_PX.__getitem__) if known else None)
        note = ""
        if ratio and abs(fw / fh - w / h) > 0.01:
            note = f"{m.label or m.id} makes images in fixed shapes; {w}×{h} became {ratio}" + (f" at {size}." if size else ".")
        return ratio or None, size, note

    async def _retrying(self, job_id: str, call: Callable[[], Awaitable[Any]]) -> AsyncIterator[Any]:
        async for item in retry_events(call, job_id=job_id, attempts=self.config.attempts,
                                       base_delay=self.config.base_delay, sleep=self._sleep):
            yield item

    async def _generate(self, request: GenerationRequest, job_id: str) -> AsyncIterator[JobEvent]:
        model = request.model or self.model
        m = self.spec.model(model)
        imagen = _is_imagen(m)
        if imagen and not self.config.is_vertex:
            raise ModelNotFound(f"{model} on the Gemini API", user_message=(
                f"Imagen is shut down on the Gemini API. Use {self.spec.alive_alternative(model) or 'a Gemini image model'},"
                " or Vertex AI if your project still has Imagen."))
        input_images.check(self.spec, model, request.inputs)
        prepared = await input_images.prepare(self.input_store, request.inputs, m.inputs, service=wire.SERVICE,
                                              model=m.label or model)
        if imagen and not prepared.empty:
            alt = self.spec.model_taking(request.inputs)
            raise InputsNotSupported(f"{model}: image inputs on Imagen", user_message=(
                f"The studio sends Imagen text prompts only. {alt.label or alt.id} takes image inputs: choose it."
                if alt else "The studio sends Imagen text prompts only; choose a Gemini image model for image inputs."))
        if prepared.controls:
            raise InputsNotSupported(f"{model}: control images", user_message=(
                f"{m.label or model} takes no control images (pose, depth…); use ComfyUI for those."))
        await self._sdk()
        yield JobStarted(job_id)
        for note in prepared.notices:
            yield JobNotice(job_id, note)
        ratio, size, note = self._shape(request, m)
        fw, fh, _ = m.fit(request.width, request.height)
        scale = _SIZE_PX.get(size or "1K", 1024) // 1024
        px = (fw * scale, fh * scale)  # what the service makes, for the price and the record
        if note:
            yield JobNotice(job_id, note)
        if m.retired or m.status in ("legacy", "deprecated"):
            when = f" on {m.get('retired_on')}" if m.get("retired_on") else ""
            yield JobNotice(job_id, f"Google retired {m.label or model}{when}; trying anyway (some projects keep access). "
                                    + self.spec.suggestion(model))
        if request.background.mode == "provider":
            yield JobNotice(job_id, f"{m.label or model} can't make transparent backgrounds; the image will have one.")
        batch = max(1, request.batch)
        made = 0
        while made < batch:
            if imagen:
                count = min(batch - made, m.max_batch if m.get("max_batch") else 4)
                call = self._imagen_call(request, model=model, ratio=ratio, count=count)
            else:
                count = 1
                if made == 0 and request.negative_prompt:
                    yield JobNotice(job_id, "Gemini has no negative prompt; it was added to the prompt as \u201cAvoid: …\u201d.")
                call = self._gemini_call(request, model=model, ratio=ratio, size=size, prepared=prepared)
            result: Any = None
            async for item in self._retrying(job_id, call):
                if isinstance(item, Done):
                    result = item.value
                else:
                    yield item
            pictures, reasons = result
            if reasons:
                yield JobNotice(job_id, f"Google filtered {len(reasons)} of the images: {'; '.join(reasons)}")
            for n, pic in enumerate(pictures):
                data, mime = await asyncio.to_thread(image_from_bytes, wire.SERVICE, pic.data)
                info = costs.image_info(PROVIDER_ID, model, width=px[0], height=px[1],
                                        extra=[("surface", self.config.surface)], cat=self.catalog)
                yield JobImage(job_id, data, mime=mime, seed=request.seed if imagen else None, index=made + n, info=info)
            made += count

    def _gemini_call(self, request: GenerationRequest, *, model: str, ratio: str | None, size: str | None,
                     prepared: input_images.Prepared | None = None) -> Callable[[], Awaitable[Any]]:
        text = request.prompt + (f"\n\nAvoid: {request.negative_prompt}" if request.negative_prompt else "")
        contents: Any = text
        if prepared is not None and prepared.images:
            # Gemini reads roles from words only, so the prompt says which picture is which.
            parts = [genai_types.Part.from_text(text=text + "\n\n" + _roles(prepared))]
            parts += [genai_types.Part.from_bytes(data=im.data, mime_type=im.mime) for im in prepared.images]
            contents = [genai_types.Content(role="user", parts=parts)]
        image_config = genai_types.ImageConfig(aspect_ratio=ratio, image_size=size) if (ratio or size) else None
        config = genai_types.GenerateContentConfig(response_modalities=["IMAGE"], image_config=image_config)

        async def call() -> tuple[list[wire.Picture], list[str]]:
            # parsed inside the retried call, so a transient "no image this time" is retried too
            reply = await self._call(lambda c: c.aio.models.generate_content(model=model, contents=contents, config=config),
                                     model=model)
            return [wire.pictures_from_content(reply)], []

        return call

    def _imagen_call(self, request: GenerationRequest, *, model: str, ratio: str | None,
                     count: int) -> Callable[[], Awaitable[Any]]:
        config = genai_types.GenerateImagesConfig(
            number_of_images=count, aspect_ratio=ratio, negative_prompt=request.negative_prompt or None,
            seed=request.seed, add_watermark=False if request.seed is not None else None,  # seeds need the watermark off
            include_rai_reason=True, output_mime_type="image/png")

        def start(c: genai.Client) -> Awaitable[Any]:
            # The SDK warns that generate_images is deprecated (Imagen is being retired); we know, and
            # keep it only for projects that still have it. The warning fires when the call is made.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", genai_errors.ExperimentalWarning)
                return c.aio.models.generate_images(model=model, prompt=request.prompt, config=config)

        async def call() -> tuple[list[wire.Picture], list[str]]:
            return wire.pictures_from_imagen(await self._call(start, model=model))

        return call

    async def cancel(self, job_id: str) -> None:
        task = self._tasks.get(job_id)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def aclose(self) -> None:
        await self._http.aclose()


def _roles(prepared: input_images.Prepared) -> str:
    lines = []
    n = 1
    if prepared.init is not None:
        lines.append("Image 1 is the picture to change; keep what the prompt does not ask to change.")
        n = 2
    for ref in prepared.references:
        lines.append(f"Image {n} is a {ref.kind or 'character'} reference"
                     + (": keep this character's look." if ref.kind != "style" else ": follow its style."))
        n += 1
    return " ".join(lines)


def create(settings: Settings, secrets: SecretStore) -> GoogleProvider:
    values = settings.provider(PROVIDER_ID)
    config = GoogleConfig.from_settings(values)
    return GoogleProvider(config, api_key=None if config.is_vertex else secrets.get("google"))
