"""The services the studio can generate with, and the providers behind them.

Each service names the module and factory that build its provider, so a cloud SDK is
imported only when that service is first used (start-up stays fast, and the app runs
with any SDK missing). A factory is ``create(settings: Settings, secrets: SecretStore) -> Provider``;
it must not do network I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from dataclasses import dataclass
from typing import Callable
from typing import Any, AsyncIterator

from studio_core.errors import DependencyMissing, StudioError
from studio_core.providers.base import Provider
from studio_core.secrets import SecretStore
from studio_core.settings import Settings, SettingsStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    id: str
    name: str
    kind: str  # "local" | "cloud"
    module: str
    factory: str = "create"
    secret_name: str = ""  # key name in the SecretStore; "" when none is needed
    sdk: str = ""  # optional package the provider needs, for "not installed" messages
    description: str = ""


SERVICES: tuple[ServiceInfo, ...] = (
    ServiceInfo("comfyui", "ComfyUI (local)", "local", "studio_core.pool.provider",
                description="Your own GPU through a ComfyUI server (or several). Free."),
    ServiceInfo("huggingface", "Hugging Face", "cloud", "studio_core.providers.cloud.huggingface",
                secret_name="huggingface", description="FLUX.1-schnell and others through Inference Providers."),
    ServiceInfo("replicate", "Replicate", "cloud", "studio_core.providers.cloud.replicate",
                secret_name="replicate", description="black-forest-labs/flux-schnell and thousands of models."),
    ServiceInfo("bedrock", "AWS Bedrock", "cloud", "studio_core.providers.cloud.bedrock",
                secret_name="bedrock", sdk="botocore", description="Titan Image Generator, Stability, Nova Canvas."),
    ServiceInfo("azure", "Azure OpenAI", "cloud", "studio_core.providers.cloud.azure_openai",
                secret_name="azure", sdk="openai", description="Image models deployed in your Azure OpenAI resource."),
    ServiceInfo("google", "Google (Gemini / Vertex AI)", "cloud", "studio_core.providers.cloud.google",
                secret_name="google", sdk="google-genai", description="Gemini image models; Imagen where still offered."),
    ServiceInfo("openai", "OpenAI", "cloud", "studio_core.providers.cloud.openai_images",
                secret_name="openai", sdk="openai", description="gpt-image models, transparent backgrounds."),
)

_BY_ID = {s.id: s for s in SERVICES}


def ambient_credentials() -> set[str]:
    """Services that may have credentials without a stored key (blocking: a few stat calls).

    AWS reads env keys, profiles and SSO from ~/.aws; Google reads ADC. Without any of
    these there is nothing to check, so the card says "needs key" without importing the
    SDK (google-genai alone takes over a second to import).
    """
    import os
    from pathlib import Path

    home = Path.home()
    found: set[str] = set()
    if (os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE") or os.environ.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
            or (home / ".aws" / "credentials").exists() or (home / ".aws" / "config").exists()):
        found.add("bedrock")
    gcloud = Path(os.environ.get("CLOUDSDK_CONFIG") or (Path(os.environ.get("APPDATA", "")) / "gcloud" if os.name == "nt" else home / ".config" / "gcloud"))
    if os.environ.get("GOOGLE_APPLICATION_CREDENTIALS") or (gcloud / "application_default_credentials.json").exists():
        found.add("google")
    return found


def service_info(service_id: str) -> ServiceInfo:
    try:
        return _BY_ID[service_id]
    except KeyError:
        raise StudioError(f"unknown service {service_id!r}", user_message=f"Unknown service '{service_id}'.") from None


class ServiceRegistry:
    """Builds providers on first use and rebuilds one when its settings change.

    Use from the asyncio loop only. A provider whose settings (or key) changed is retired at
    once and closed (its HTTP client, its websocket) as soon as no generation, check or
    model listing is running on it; whatever is still retired is closed by :meth:`aclose`.
    """

    def __init__(self, settings: SettingsStore, secrets: SecretStore):
        self._settings = settings
        self._secrets = secrets
        self._providers: dict[str, tuple[object, Provider]] = {}
        self._retired: list[Provider] = []
        # Set by the core: receives each pool health snapshot (published as PoolStateChanged).
        self.on_pool_state: Callable[[tuple], None] | None = None
        self._busy: dict[int, int] = {}  # id(provider) -> calls running on it
        self._closing: set[asyncio.Task] = set()
        self._unsubscribe = settings.subscribe(self._on_settings)
        # The data folder whose input store providers read a request's image inputs from
        # (set by the core; None leaves providers without one, and requests with inputs fail in words).
        self.data_dir: Any = None

    @staticmethod
    def all() -> tuple[ServiceInfo, ...]:
        return SERVICES

    async def preload_secrets(self) -> None:
        """Read every service's key on a worker thread (keyring reads can block for seconds)."""
        await self._secrets.preload([s.secret_name for s in SERVICES if s.secret_name])

    def _fingerprint(self, service_id: str, s: Settings) -> object:
        if service_id == "comfyui":
            from studio_core.pool.provider import fingerprint
            from studio_core.pool.server_list import pool_entries

            # A changed token or API key rebuilds the pool like a changed address does.
            keys = tuple(hash(self._secrets.get(spec.secret_name(w)))
                         for spec in pool_entries(s) for w in ("auth", "token")
                         if (spec.uses_auth if w == "auth" else spec.token_param))
            return (fingerprint(s), keys)
        info = service_info(service_id)
        key = self._secrets.get(info.secret_name) if info.secret_name else None
        return (repr(sorted(s.provider(service_id).items())), hash(key))

    def provider(self, service_id: str) -> Provider:
        """The provider for ``service_id`` (raises DependencyMissing if its SDK is absent)."""
        s = self._settings.current
        fp = self._fingerprint(service_id, s)
        cached = self._providers.get(service_id)
        if cached and cached[0] == fp:
            return cached[1]
        info = service_info(service_id)
        try:
            module = importlib.import_module(info.module)
        except ImportError as exc:
            missing = getattr(exc, "name", None) or info.sdk or info.module
            if missing.startswith("studio_core"):
                raise
            raise DependencyMissing(info.sdk or missing) from exc
        prov: Provider = getattr(module, info.factory)(s, self._secrets)
        if self.data_dir is not None and getattr(prov, "input_store", False) is None:
            from studio_core.input_store import InputStore

            prov.input_store = InputStore.in_data_folder(self.data_dir)  # type: ignore[attr-defined]
        self._track(prov)
        if cached:
            self._retire(cached[1])
        self._providers[service_id] = (fp, prov)
        if self.on_pool_state is not None and hasattr(prov, "add_listener"):
            prov.add_listener(self.on_pool_state)
        return prov

    def invalidate(self, service_id: str) -> None:
        cached = self._providers.pop(service_id, None)
        if cached:
            self._retire(cached[1])

    def _on_settings(self, new: Settings) -> None:
        # Retire now rather than on the service's next use: a service the user stopped
        # using would otherwise keep its connections open until the app closes.
        for sid, (fp, prov) in list(self._providers.items()):
            try:
                now = self._fingerprint(sid, new)
            except StudioError:
                now = None
            if now != fp:
                del self._providers[sid]
                self._retire(prov)

    # -- closing what was replaced ------------------------------------------------------
    def _track(self, prov: Provider) -> None:
        """Count the calls running on ``prov``, so a retired one is closed only when idle."""
        registry = self
        generate = prov.generate

        async def tracked_generate(request: Any, *, job_id: str) -> AsyncIterator[Any]:
            registry._enter(prov)
            try:
                async with contextlib.aclosing(generate(request, job_id=job_id)) as events:
                    async for ev in events:
                        yield ev
            finally:
                registry._leave(prov)

        def counted(call: Any) -> Any:
            async def run(*args: Any, **kw: Any) -> Any:
                registry._enter(prov)
                try:
                    return await call(*args, **kw)
                finally:
                    registry._leave(prov)
            return run

        try:
            prov.generate = tracked_generate  # type: ignore[method-assign]
            prov.check = counted(prov.check)  # type: ignore[method-assign]
            prov.list_models = counted(prov.list_models)  # type: ignore[method-assign]
        except AttributeError:  # a provider with __slots__: closed by aclose() only
            log.debug("provider %s cannot be tracked", getattr(prov, "id", prov))

    def _enter(self, prov: Provider) -> None:
        self._busy[id(prov)] = self._busy.get(id(prov), 0) + 1

    def _leave(self, prov: Provider) -> None:
        n = self._busy.get(id(prov), 1) - 1
        if n > 0:
            self._busy[id(prov)] = n
            return
        self._busy.pop(id(prov), None)
        if any(p is prov for p in self._retired):
            self._close_soon(prov)

    def _retire(self, prov: Provider) -> None:
        if any(p is prov for p in self._retired):
            return
        self._retired.append(prov)
        if not self._busy.get(id(prov)):
            self._close_soon(prov)

    def _close_soon(self, prov: Provider) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a plain call from a script or test): aclose() closes it
        self._retired = [p for p in self._retired if p is not prov]
        task = loop.create_task(self._close_one(prov))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    @staticmethod
    async def _close_one(prov: Provider) -> None:
        try:
            await prov.aclose()
        except Exception:
            log.exception("closing provider %s", getattr(prov, "id", prov))

    async def aclose(self) -> None:
        with contextlib.suppress(ValueError):
            self._unsubscribe()
        provs = [p for _, p in self._providers.values()] + self._retired
        self._providers.clear()
        self._retired.clear()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        for p in provs:
            await self._close_one(p)
