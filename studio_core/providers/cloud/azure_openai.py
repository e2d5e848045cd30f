"""Azure OpenAI image generation (providers.md §4) through the ``openai`` SDK's AsyncAzureOpenAI.

Same body and response as OpenAI; the deployment name goes in the path
(``/openai/deployments/{deployment}/images/generations?api-version=…``) and the key in an
``api-key`` header. Microsoft Entra ID sign-in works where the optional ``azure-identity``
package is installed (``auth: "entra"`` in the provider's settings); it sends
``Authorization: Bearer <token>`` instead.
"""

from __future__ import annotations

import re
from typing import Any, Mapping
from urllib.parse import urlsplit

import openai

from studio_core.errors import ContentRefused, DependencyMissing, InvalidRequest, ModelNotFound, StudioError
from studio_core.models import ProviderStatus, ServiceState
from studio_core.providers.cloud import catalog
from studio_core.providers.cloud.common import (
    attempts_setting,
    clean_key,
    require_url,
    status_from_error,
    timeout_setting,
)
from studio_core.providers.cloud.openai_images import OpenAIImagesProvider

DEFAULT_API_VERSION = "2025-04-01-preview"
_DEPLOYMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
USAGE_PAGE = "your resource's Metrics page in the Azure portal"


def parse_deployments(raw: Any) -> dict[str, str]:
    """Model id → deployment name, from a mapping or text like ``"dall-e-3=my-dalle, gpt-image-1=img1"``.

    Malformed pairs are skipped here; the Settings page rejects them before they are saved.
    """
    pairs: list[tuple[Any, Any]]
    if isinstance(raw, Mapping):
        pairs = list(raw.items())
    elif isinstance(raw, str):
        pairs = [p.partition("=")[::2] for p in re.split(r"[,;\n]", raw) if "=" in p]
    else:
        return {}
    out: dict[str, str] = {}
    for model, dep in pairs:
        model, dep = str(model).strip(), str(dep).strip()
        if model and _DEPLOYMENT.fullmatch(dep):
            out[model] = dep
    return out


def entra_token_provider(scope: str) -> tuple[Any, Any]:
    """(async token provider, credential to close) from azure-identity's default credential chain."""
    try:
        from azure.identity.aio import DefaultAzureCredential, get_bearer_token_provider
    except ImportError as exc:
        raise DependencyMissing("azure-identity", extra="azure") from exc
    credential = DefaultAzureCredential()
    return get_bearer_token_provider(credential, scope), credential


class AzureOpenAIProvider(OpenAIImagesProvider):
    """Images from a model deployed in the user's Azure OpenAI resource."""

    id = "azure"
    display_name = "Azure OpenAI"
    service = "Azure OpenAI"
    usage_page = USAGE_PAGE

    def __init__(
        self,
        *,
        api_key: str | None,
        endpoint: str,
        deployment: str,
        api_version: str = "",
        model: str = "",
        deployments: Any = None,
        auth: str = "key",
        token_provider: Any = None,
        **kw: Any,
    ):
        spec = kw.pop("spec", None) or catalog.provider("azure")
        super().__init__(api_key=api_key, model=model, endpoint=endpoint, spec=spec, **kw)
        self.deployment = (deployment or "").strip()
        # The configured deployment runs ``self.model``; other models need their own deployment.
        self._deployments = parse_deployments(deployments)
        self._asked_for = ""  # a model a request named that no deployment runs
        model_version = self._spec.model(self.model).get("api_version")
        self.api_version = (api_version or "").strip() or model_version or str(self._spec.get("default_api_version") or DEFAULT_API_VERSION)
        self._auth = (auth or "key").strip().lower()
        self._token_provider = token_provider
        self._credential: Any = None

    def _make_client(self) -> Any:
        endpoint = require_url(self.service, self._endpoint)
        if not self.deployment:
            raise InvalidRequest("azure: no deployment",
                                 user_message="Azure OpenAI needs the name of your image deployment"
                                              " (Azure portal → your resource → Deployments). Enter it in Settings.")
        if not _DEPLOYMENT.fullmatch(self.deployment):
            raise InvalidRequest(f"azure: bad deployment name {self.deployment[:80]!r}",
                                 user_message=f"'{self.deployment[:80]}' is not a valid Azure deployment name: use letters,"
                                              " digits, '-', '_' and '.', as shown under Deployments in the Azure portal.")
        common = dict(azure_endpoint=endpoint, api_version=self.api_version, timeout=self._timeout, max_retries=0)
        if self._auth == "entra":
            provider = self._token_provider
            if provider is None:
                provider, self._credential = entra_token_provider(str(self._spec.get("entra_scope")
                                                                      or "https://cognitiveservices.azure.com/.default"))
            return openai.AsyncAzureOpenAI(azure_ad_token_provider=provider, **common)
        key = clean_key(self.service, self._raw_key)
        self._secrets = [key]
        return openai.AsyncAzureOpenAI(api_key=key, **common)

    @property
    def _model_field(self) -> str:
        # The SDK moves a body "model" into /deployments/{model}/ for image calls.
        return self.deployment

    def _with_model(self, model: str) -> Any:
        """The provider as it runs ``model``: through that model's deployment when one is set up.

        Azure picks the model by deployment, not by the request body. Without a deployment
        for ``model`` the configured one answers, so the image is recorded (and priced) as
        that deployment's model, and the job says so.
        """
        dep = self._deployments.get(model) or next((d for m, d in self._deployments.items() if m.lower() == model.lower()), "")
        if dep:
            twin = super()._with_model(model)
            twin.deployment = dep
            return twin
        twin = super()._with_model(self.model)
        twin._asked_for = model
        return twin

    def _start_notes(self) -> list[str]:
        if not self._asked_for:
            return []
        return [f"Azure OpenAI has no deployment set up for {self._asked_for}, so your deployment '{self.deployment}'"
                f" makes this image with {self.model}, and the image is recorded and priced as {self.model}."
                f" To use {self._asked_for}, deploy it in Azure and add it under \"Other deployments\" in Settings."]

    def _extra_info(self) -> list[tuple[str, Any]]:
        return [("deployment", self.deployment)]

    def _refine(self, err: StudioError, body: Any) -> StudioError:
        text = str(body).lower()
        if isinstance(err, ModelNotFound) and ("deploymentnotfound" in text or "deployment" in text):
            host = urlsplit(self._endpoint).netloc
            err.user_message = (f"Azure OpenAI has no deployment named '{self.deployment}' at {host}. Check the deployment"
                                " name in Settings (Azure portal → your resource → Deployments); a new deployment can"
                                " take a few minutes to appear.")
            return err
        if isinstance(err, ContentRefused) and isinstance(body, dict):
            inner = body.get("inner_error") or {}
            results = inner.get("content_filter_results") if isinstance(inner, dict) else None
            if isinstance(results, dict):
                hit = sorted(k.replace("_", " ") for k, v in results.items() if isinstance(v, dict) and v.get("filtered"))
                if hit:
                    err.user_message += f" (flagged: {', '.join(hit)})"
        return super()._refine(err, body)

    async def check(self) -> ProviderStatus:
        """``GET /openai/models``: free; proves the endpoint, the api-version and the key or sign-in.

        Azure offers no free call that proves a deployment exists, so the first generation does that.
        """
        try:
            client = self._get_client()
            try:
                await client.models.list()
            except Exception as exc:  # noqa: BLE001
                raise self._map_error(exc) from None
            how = "Entra ID sign-in" if self._auth == "entra" else "key"
            return ProviderStatus(ServiceState.ready,
                                  f"Connected to {urlsplit(self._endpoint).netloc} with your {how} (API {self.api_version})."
                                  f" Deployment '{self.deployment}' is checked on the first image.",
                                  details=(("deployment", self.deployment), ("api_version", self.api_version)))
        except Exception as exc:  # check() reports, never raises
            return status_from_error(exc)

    async def aclose(self) -> None:
        await super().aclose()
        if self._credential is not None:
            cred, self._credential = self._credential, None
            try:
                await cred.close()
            except Exception:  # noqa: BLE001 - closing a credential must not break shutdown
                pass


def create(settings: Any, secrets: Any) -> AzureOpenAIProvider:
    cfg = settings.provider("azure")
    spec = catalog.provider("azure")
    return AzureOpenAIProvider(
        api_key=secrets.get("azure"),
        endpoint=str(cfg.get("endpoint") or cfg.get("base_url") or ""),
        deployment=str(cfg.get("deployment") or ""),
        api_version=str(cfg.get("api_version") or ""),
        model=str(cfg.get("model") or ""),
        auth=str(cfg.get("auth") or "key"),
        quality=str(cfg.get("quality") or ""),
        deployments=cfg.get("deployments"),
        timeout=timeout_setting(cfg, spec.get("timeout_s") or 600),
        attempts=attempts_setting(cfg),
    )

