"""AWS Bedrock: Titan Image Generator v2, Stability and Nova Canvas through InvokeModel.

Requests are signed by botocore (SigV4, service ``bedrock``) with the user's normal AWS
credential chain: environment, profiles, SSO, ``credential_process``. A Bedrock API key
(stored secret or ``AWS_BEARER_TOKEN_BEDROCK``) is sent as a bearer token instead. httpx
sends the exact bytes and URL that were signed, so cancelling the job aborts the request.
botocore's credential lookups block (files, SSO refresh), so they run in a thread.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable

import httpx

from studio_core.errors import (
    AuthenticationFailed,
    InputsNotSupported,
    InvalidRequest,
    InvalidResponse,
    MissingCredentials,
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
from studio_core.providers.cloud import bedrock_wire as wire
from studio_core.providers.cloud import catalog, input_images
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

log = logging.getLogger(__name__)

PROVIDER_ID = "bedrock"
FALLBACK_MODEL = "amazon.titan-image-generator-v2:0"
BACKGROUND_MODEL = "amazon.titan-image-generator-v2:0"
DEFAULT_REGION = "us-east-1"
MAX_REPLY_BYTES = 64 * 1024 * 1024  # InvokeModel bodies are capped at 25 MB; more is not Bedrock
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
USAGE_PAGE = "the Bedrock page of the AWS console (CloudWatch invocation metrics)"


@dataclass(frozen=True, slots=True)
class BedrockConfig:
    region: str = ""  # "" → profile/env region, else us-east-1
    profile: str = ""
    model: str = ""
    endpoint: str = ""  # runtime endpoint override (VPC endpoint, tests)
    control_endpoint: str = ""  # control-plane override for check(); defaults to endpoint when that is set
    auth: str = "auto"  # "auto" (API key if one is stored, else AWS chain) | "aws" | "api_key"
    timeout_s: float = 300.0
    attempts: int = 3
    base_delay: float = 2.0

    @classmethod
    def from_settings(cls, values: dict[str, Any]) -> BedrockConfig:
        return cls(
            region=str(values.get("region", "") or "").strip(),
            profile=str(values.get("profile", "") or "").strip(),
            model=str(values.get("model", "") or "").strip(),
            endpoint=str(values.get("endpoint", "") or "").strip(),
            control_endpoint=str(values.get("control_endpoint", "") or "").strip(),
            auth=str(values.get("auth", "auto") or "auto"),
            timeout_s=timeout_setting(values, 300.0),
            attempts=attempts_setting(values),
        )


@dataclass(frozen=True, slots=True)
class _Resolved:
    region: str
    runtime: str
    control: str
    bearer: str | None
    credentials: Any  # botocore Credentials (refreshable) when signing


def _is_loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _load_credentials(profile: str) -> tuple[Any, str]:
    """botocore's credential chain and the profile's region (blocking: run in a thread)."""
    try:
        import botocore.session
        from botocore.exceptions import BotoCoreError, ClientError, ProfileNotFound
    except ImportError as exc:  # pragma: no cover - the cloud extra is missing
        from studio_core.errors import DependencyMissing

        raise DependencyMissing("botocore") from exc
    try:
        session = botocore.session.Session(profile=profile or None)
        region = session.get_config_variable("region") or ""
        creds = session.get_credentials()
        if creds is not None:
            creds.get_frozen_credentials()  # forces SSO/role refresh now, so failures surface here
    except ProfileNotFound as exc:
        raise MissingCredentials(str(exc), user_message=f"The AWS profile '{profile}' does not exist in your AWS config "
                                                        "(~/.aws/config). Check the profile name in Settings.") from exc
    except (BotoCoreError, ClientError) as exc:
        name = type(exc).__name__
        if "SSO" in name or "Token" in name:
            msg = ("Your AWS SSO sign-in has expired or is missing. Run: aws sso login"
                   + (f" --profile {profile}" if profile else "") + ", then try again.")
        else:
            msg = f"Your AWS credentials could not be loaded ({name}). Check your AWS profile or add a Bedrock API key."
        raise MissingCredentials(f"botocore {name}: {exc}", user_message=msg) from exc
    return creds, region


def sign(credentials: Any, *, region: str, method: str, url: str, body: bytes | None) -> tuple[str, dict[str, str]]:
    """SigV4-sign for service ``bedrock`` with botocore; returns the URL and headers to send unchanged."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    req = AWSRequest(method=method, url=url, data=body or b"", headers=headers)
    # snapshot: refreshable credentials may rotate between reading the key and the token
    SigV4Auth(credentials.get_frozen_credentials(), "bedrock", region).add_auth(req)
    prepared = req.prepare()
    return prepared.url, dict(prepared.headers.items())


class BedrockProvider:
    """InvokeModel image generation. Use from one asyncio loop; see Provider for the contract."""

    display_name = "AWS Bedrock"

    def __init__(self, config: BedrockConfig, *, api_key: str | None = None, client: httpx.AsyncClient | None = None,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 load_credentials: Callable[[str], tuple[Any, str]] = _load_credentials, input_store: Any = None):
        self.id = PROVIDER_ID
        self.input_store = input_store  # studio_core.input_store.InputStore: the images a request's inputs name
        self.config = config
        self._api_key = (api_key or "").strip() or None
        self._client = client or httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=config.timeout_s))
        self._sleep = sleep
        self._load_credentials = load_credentials
        self._resolved: _Resolved | None = None
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        self.catalog: catalog.Catalog = catalog.load()

    @property
    def spec(self) -> catalog.ProviderSpec:
        return self.catalog.provider(PROVIDER_ID)

    # -- configuration ---------------------------------------------------------------
    @property
    def default_model(self) -> str:
        return self.spec.default_model or FALLBACK_MODEL

    @property
    def model(self) -> str:
        return self.config.model or self.default_model

    async def _resolve(self) -> _Resolved:
        if self._resolved is not None:
            return self._resolved
        cfg = self.config
        if cfg.region and not _REGION_RE.match(cfg.region):
            raise InvalidRequest(f"bad region {cfg.region!r}", user_message=(
                f"'{cfg.region}' is not an AWS region name. Region names look like us-east-1, us-west-2 or eu-west-1."))
        use_key = cfg.auth == "api_key" or (cfg.auth == "auto" and self._api_key)
        bearer, creds, region = None, None, cfg.region
        if use_key:
            bearer = clean_key(wire.SERVICE, self._api_key)
        else:
            creds, profile_region = await asyncio.to_thread(self._load_credentials, cfg.profile)
            if creds is None:
                raise MissingCredentials("no AWS credentials found", user_message=(
                    "No AWS credentials were found. Add a Bedrock API key in Settings, or set up the AWS CLI "
                    "(aws configure, or aws sso login) and name the profile here."))
            region = region or profile_region
        region = region or str(self.spec.get("default_region") or DEFAULT_REGION)
        if not _REGION_RE.match(region):
            raise InvalidRequest(f"bad region {region!r}", user_message=f"'{region}' is not an AWS region name.")
        runtime = require_url(wire.SERVICE, cfg.endpoint) if cfg.endpoint else f"https://bedrock-runtime.{region}.amazonaws.com"
        control = (require_url(wire.SERVICE, cfg.control_endpoint, what="control endpoint") if cfg.control_endpoint
                   else runtime if cfg.endpoint else f"https://bedrock.{region}.amazonaws.com")
        if bearer and not (runtime.startswith("https://") or _is_loopback(runtime)):
            # a bearer key in clear text would be readable by anyone on the path
            raise InvalidRequest("bearer over http", user_message="A Bedrock API key is only sent over https. "
                                                                  "Use an https:// endpoint.")
        self._resolved = _Resolved(region, runtime, control, bearer, creds)
        return self._resolved

    # -- HTTP ---------------------------------------------------------------------------
    async def _send(self, method: str, url: str, body: bytes | None, *, model: str) -> bytes:
        r = await self._resolve()
        if r.bearer:
            headers = {"Authorization": f"Bearer {r.bearer}", "Accept": "application/json"}
            if body is not None:
                headers["Content-Type"] = "application/json"
        else:
            url, headers = await asyncio.to_thread(sign, r.credentials, region=r.region, method=method, url=url, body=body)
        host = urllib.parse.urlsplit(url).hostname
        try:
            resp = await self._client.request(method, url, headers=headers, content=body)
        except httpx.HTTPError as exc:
            err = transport_error(wire.SERVICE, exc, idempotent=method == "GET", where=USAGE_PAGE)
            err.args = (f"{err.detail} to {host}",)
            if type(err) is ProviderUnavailable:  # no connection was made
                err.user_message = (f"Can't reach Bedrock at {host} (region {r.region}). Check the region name, that"
                                    " Bedrock is offered there, and your internet connection.")
            raise err from None
        if len(resp.content) > MAX_REPLY_BYTES:
            raise InvalidResponse(f"{wire.SERVICE}: reply of {len(resp.content)} bytes",
                                  user_message=f"{wire.SERVICE} sent back a reply too large to be an image.")
        if resp.status_code >= 300:
            # a service may echo the key back in its error text
            raise scrub(wire.error_for_reply(resp.status_code, resp.headers, resp.content, model=model, region=r.region,
                                             model_gone=self.spec.retired_message(model, wire.SERVICE)), [r.bearer])
        return resp.content

    def _invoke_url(self, runtime: str, model: str) -> str:
        return f"{runtime}/model/{urllib.parse.quote(model, safe='')}/invoke"

    async def invoke(self, model: str, payload: dict[str, Any]) -> wire.Decoded:
        r = await self._resolve()
        body = json.dumps(payload).encode()
        content = await self._send("POST", self._invoke_url(r.runtime, model), body, model=model)
        return wire.parse_images(content)

    # -- Provider -----------------------------------------------------------------------
    async def check(self) -> ProviderStatus:
        model = self.model
        try:
            r = await self._resolve()
            content = await self._send("GET", f"{r.control}/foundation-models/{urllib.parse.quote(model, safe='')}", None,
                                       model=model)
        except AuthenticationFailed as exc:
            if "AccessDeniedException" in str(exc):
                # The signature was accepted; only the model-info read is not permitted. API keys and
                # narrow IAM policies often allow InvokeModel alone, so this is not a failure.
                return ProviderStatus(ServiceState.ready, (
                    f"Signed in to Bedrock in {self._resolved.region if self._resolved else ''}, but these credentials may "
                    "not read model details (bedrock:GetFoundationModel), so model access could not be checked. "
                    "Generating will tell."), (("model", model),))
            return status_from_error(exc)
        except StudioError as exc:
            return status_from_error(exc)
        lifecycle = ""
        try:
            details = json.loads(content).get("modelDetails", {})
            lifecycle = str(details.get("modelLifecycle", {}).get("status", ""))
        except (ValueError, AttributeError):
            pass
        how = "a Bedrock API key" if r.bearer else (f"AWS profile '{self.config.profile}'" if self.config.profile
                                                     else "your AWS credentials")
        msg = f"Connected to Bedrock in {r.region} with {how}. Model {model}" + (f" is {lifecycle}." if lifecycle else " found.")
        if lifecycle.upper() == "LEGACY":
            msg += f" Legacy models stop working soon. {self.spec.suggestion(model)}"
        return ProviderStatus(ServiceState.ready, msg, (("region", r.region), ("model", model), ("lifecycle", lifecycle)))

    async def list_models(self) -> tuple[ModelInfo, ...]:
        return tuple(ModelInfo(m.id, m.label or m.id, str(m.get("family") or wire.family_of(m.id)), not m.retired,
                               str(m.get("status_note") or m.status)) for m in self.spec.models)

    def _shape(self, request: GenerationRequest, m: catalog.ModelSpec, family: str) -> tuple[wire.Shape, str]:
        w, h = max(1, request.width), max(1, request.height)
        fw, fh, ratio = m.fit(w, h)
        if family == "stability":
            ratio = ratio or "1:1"
            same = (fw, fh) == (w, h) or abs(fw / fh - w / h) < 0.01
            return wire.Shape(fw, fh, ratio), "" if same else (
                f"{m.label or m.id} makes images in fixed shapes; {w}×{h} became {ratio} (about {fw}×{fh}).")
        if (fw, fh) != (w, h):
            return wire.Shape(fw, fh), f"{m.label or m.id} can't make {w}×{h}; using the nearest supported size {fw}×{fh}."
        return wire.Shape(w, h), ""

    async def generate(self, request: GenerationRequest, *, job_id: str) -> AsyncIterator[JobEvent]:
        task = asyncio.current_task()
        if task is not None:
            self._tasks[job_id] = task
        try:
            async for event in self._generate(request, job_id):
                yield event
        finally:
            self._tasks.pop(job_id, None)

    async def _retrying(self, job_id: str, call: Callable[[], Awaitable[Any]]) -> AsyncIterator[Any]:
        async for item in retry_events(call, job_id=job_id, attempts=self.config.attempts,
                                       base_delay=self.config.base_delay, sleep=self._sleep):
            yield item

    async def _generate(self, request: GenerationRequest, job_id: str) -> AsyncIterator[JobEvent]:
        model = request.model or self.model
        m = self.spec.model(model)
        family = str(m.get("family") or wire.family_of(model)) if m.known else wire.family_of(model)
        input_images.check(self.spec, model, request.inputs)
        prepared = await input_images.prepare(self.input_store, request.inputs, m.inputs, service=wire.SERVICE,
                                              model=m.label or model)
        image_kw = await self._image_kw(prepared, family, m.label or model)
        await self._resolve()
        yield JobStarted(job_id)
        for note in prepared.notices:
            yield JobNotice(job_id, note)
        if m.retired or m.status in ("legacy", "deprecated"):
            when = f" (end of life {m.get('retired_on')})" if m.get("retired_on") else ""
            yield JobNotice(job_id, f"{m.label or model} is a legacy model on Bedrock{when} and may no longer work; "
                                    f"trying anyway. {self.spec.suggestion(model)}")
        shape, clamp_note = self._shape(request, m, family)
        if clamp_note:
            yield JobNotice(job_id, clamp_note)
        transparent = request.background.mode == "provider"
        per_call = 1 if family == "stability" else max(1, min(m.max_batch, 5))
        tier = wire.titan_quality(request)
        bg_price = (costs.price_per_image(PROVIDER_ID, BACKGROUND_MODEL, cat=self.catalog).per_image
                    if transparent else None)
        batch = max(1, request.batch)
        index = 0
        while index < batch:
            count = min(per_call, batch - index)
            seed = wire.pick_seed(request, family, index)
            if image_kw:
                payload = wire.image_input_body(request, family=family, shape=shape, count=count, seed=seed, **image_kw)
            else:
                payload = wire.text_image_body(request, family=family, shape=shape, count=count, seed=seed)
            decoded: wire.Decoded | None = None
            async for item in self._retrying(job_id, lambda: self.invoke(model, payload)):
                if isinstance(item, Done):
                    decoded = item.value
                else:
                    yield item
            assert decoded is not None
            if decoded.note:
                yield JobNotice(job_id, decoded.note)
            for n, data in enumerate(decoded.images):
                img_seed = decoded.seeds[n] if n < len(decoded.seeds) and decoded.seeds[n] is not None else seed
                if transparent:
                    async for item in self._retrying(job_id, lambda d=data: self.remove_background(d)):
                        if isinstance(item, Done):
                            data = item.value
                        else:
                            yield item
                data, mime = await asyncio.to_thread(image_from_bytes, wire.SERVICE, data)
                yield JobImage(job_id, data, mime=mime, seed=img_seed, index=index + n,
                               info=self._info(model, shape, tier, transparent=transparent, bg_price=bg_price))
            index += count

    async def _image_kw(self, prepared: input_images.Prepared, family: str, label: str) -> dict[str, Any]:
        """Arguments for :func:`wire.image_input_body` ({} without image inputs); refuses, before
        anything is sent, combinations the model's one image task cannot carry."""
        if prepared.empty:
            return {}
        if family == "stability":
            if prepared.references or prepared.controls or prepared.mask:
                raise InputsNotSupported(f"{label}: references/controls/mask", user_message=(
                    f"{label} on Bedrock starts from one init image; the studio sends it no mask, reference or"
                    " control images (Titan Image Generator takes masks and references)."))
            return {"init": prepared.init.data if prepared.init else None,
                    "denoise": prepared.init.strength if prepared.init else 0.6}
        if prepared.mask is not None and prepared.references:
            raise InputsNotSupported(f"{label}: mask with references", user_message=(
                f"{label} inpaints one image at a time: remove the reference images to use the mask, or the mask"
                " to use the references."))
        controls = [c for c in prepared.controls if c.kind == "canny"]
        if len(controls) != len(prepared.controls) or len(controls) > 1 or (controls and (prepared.init or prepared.references)):
            raise InputsNotSupported(f"{label}: control images", user_message=(
                f"{label} takes one canny control image, on its own (no init or reference images with it)."))
        kw: dict[str, Any] = {
            "references": tuple((r.data, r.strength) for r in prepared.references),
            "canny": (controls[0].data, controls[0].strength) if controls else None,
        }
        if prepared.init is not None:
            kw["init"], kw["denoise"] = prepared.init.data, prepared.init.strength
        if prepared.mask is not None and prepared.init is not None:
            size = await asyncio.to_thread(lambda: prepared.init.size)
            kw["mask"] = await asyncio.to_thread(input_images.black_where_redrawn, prepared.mask.data, size)
        return kw

    def _info(self, model: str, shape: wire.Shape, tier: str, *, transparent: bool,
              bg_price: float | None) -> tuple[tuple[str, Any], ...]:
        extra: list[tuple[str, Any]] = [("region", self._resolved.region if self._resolved else "")]
        if transparent:
            extra.append(("background", "transparent"))
        info = dict(costs.image_info(PROVIDER_ID, model, width=shape.width, height=shape.height, quality=tier,
                                     extra=extra, cat=self.catalog))
        if transparent and bg_price is not None:  # the background removal is billed as one more image
            info["cost_usd"] = round(info.get("cost_usd", 0.0) + bg_price, 6)
        return tuple(sorted(info.items()))

    async def remove_background(self, image: bytes) -> bytes:
        """Titan v2 BACKGROUND_REMOVAL: the same picture with a transparent background (PNG)."""
        decoded = await self.invoke(BACKGROUND_MODEL, wire.background_removal_body(image))
        return decoded.images[0]

    async def cancel(self, job_id: str) -> None:
        task = self._tasks.get(job_id)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def aclose(self) -> None:
        await self._client.aclose()


def create(settings: Settings, secrets: SecretStore) -> BedrockProvider:
    return BedrockProvider(BedrockConfig.from_settings(settings.provider(PROVIDER_ID)), api_key=secrets.get("bedrock"))
