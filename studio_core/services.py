"""The services the studio can generate with, and the providers behind them.

Each service names the module and factory that build its provider, so a cloud SDK is
imported only when that service is first used (start-up stays fast, and the app runs
with any SDK missing). A factory is ``create(settings: Settings, secrets: SecretStore) -> Provider``;
it must not do network I/O.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass

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
    ServiceInfo("comfyui", "ComfyUI (local)", "local", "studio_core.providers.comfy.provider",
                description="Your own GPU through a ComfyUI server. Free."),
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

    Use from the asyncio loop only. Old providers are closed in the background of the
    next :meth:`provider` call or in :meth:`aclose`.
    """

    def __init__(self, settings: SettingsStore, secrets: SecretStore):
        self._settings = settings
        self._secrets = secrets
        self._providers: dict[str, tuple[object, Provider]] = {}
        self._retired: list[Provider] = []

    @staticmethod
    def all() -> tuple[ServiceInfo, ...]:
        return SERVICES

    def _fingerprint(self, service_id: str, s: Settings) -> object:
        if service_id == "comfyui":
            return (s.comfy_active_url, s.comfy_model)
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
        if cached:
            self._retired.append(cached[1])
        self._providers[service_id] = (fp, prov)
        return prov

    def invalidate(self, service_id: str) -> None:
        cached = self._providers.pop(service_id, None)
        if cached:
            self._retired.append(cached[1])

    async def aclose(self) -> None:
        provs = [p for _, p in self._providers.values()] + self._retired
        self._providers.clear()
        self._retired.clear()
        for p in provs:
            try:
                await p.aclose()
            except Exception:
                log.exception("closing provider %s", getattr(p, "id", p))
