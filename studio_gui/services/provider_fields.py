"""Which settings each cloud provider asks for, and how each answer is checked. Qt-free.

Values are saved under ``settings.providers[<id>][<key>]``; the provider modules read the
same keys (``model``, ``endpoint``, ``region``, ``profile``, ``deployment``,
``api_version``, ``surface``, ``project``, ``location``, ``provider``, and for every
provider ``timeout_s`` and ``retries``). An empty answer is removed rather than stored as
"" so the provider's own default applies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from studio_core.providers.cloud.common import MAX_RETRIES, MAX_TIMEOUT, MIN_TIMEOUT, RETRIES_KEY, TIMEOUT_KEY


@dataclass(frozen=True, slots=True)
class FieldSpec:
    key: str
    label: str
    kind: str = "text"  # text | url | region | api_version | project | location | deployment | deployments
    #                     | model | choice | seconds | count
    placeholder: str = ""
    choices: tuple[tuple[str, str], ...] = ()  # (value, label); "choice" fields
    editable: bool = False  # a choice field that also takes free text
    required: bool = False
    required_when: tuple[str, str] | None = None  # (other key, value) that makes this required
    help: str = ""


@dataclass(frozen=True, slots=True)
class KeySpec:
    label: str = "API key"
    placeholder: str = "paste your API key"
    prefix: str = ""  # what real keys start with, for a gentle warning only
    required: bool = True
    required_when: tuple[str, str] | None = None
    help: str = ""


@dataclass(frozen=True, slots=True)
class ProviderForm:
    key: KeySpec
    fields: tuple[FieldSpec, ...]
    help: str = ""


_MODEL = FieldSpec("model", "Model", "model", help="Pick one or type any model id the service offers.")
# Every provider has these two, under the same keys.
_TIMEOUT = FieldSpec(TIMEOUT_KEY, "Timeout (seconds)", "seconds", placeholder="service default",
                     help=f"How long to wait for an answer, {MIN_TIMEOUT:.0f}–{MAX_TIMEOUT:.0f} s. A request that timed out"
                          " is not sent again: the service may still make the image and bill it.")
_RETRIES = FieldSpec(RETRIES_KEY, "Retries", "count", placeholder="default: 2",
                     help=f"How often to try again, 0–{MAX_RETRIES}, when the service is busy or could not be reached."
                          " Only requests the service did not take are sent again.")
_TIMING = (_TIMEOUT, _RETRIES)

FORMS: dict[str, ProviderForm] = {
    "huggingface": ProviderForm(
        KeySpec("Access token", "hf_…", prefix="hf_",
                help="Create a token with “Make calls to Inference Providers” at huggingface.co/settings/tokens."),
        (
            _MODEL,
            FieldSpec("provider", "Inference provider", "choice", editable=True, placeholder="default: hf-inference",
                      choices=(("hf-inference", "hf-inference (Hugging Face)"), ("auto", "auto (first available)"),
                               ("fal-ai", "fal-ai"), ("replicate", "replicate"), ("together", "together"),
                               ("nebius", "nebius"), ("nscale", "nscale"), ("wavespeed", "wavespeed")),
                      help="Which company runs the model for you; billed through your Hugging Face account."),
            FieldSpec("endpoint", "Router URL", "url", placeholder="https://router.huggingface.co",
                      help="Leave empty unless you use a proxy."),
            *_TIMING,
        ),
    ),
    "replicate": ProviderForm(
        KeySpec("API token", "r8_…", prefix="r8_", help="Find it at replicate.com/account/api-tokens."),
        (_MODEL, *_TIMING),
    ),
    "bedrock": ProviderForm(
        KeySpec("Bedrock API key", "optional", required=False, required_when=("auth", "api_key"),
                help="Leave empty to use your normal AWS credentials (profile, SSO or environment)."),
        (
            FieldSpec("auth", "Sign in with", "choice",
                      choices=(("auto", "automatic (API key if saved, else AWS credentials)"),
                               ("aws", "AWS credentials (profile, SSO, environment)"), ("api_key", "Bedrock API key"))),
            FieldSpec("region", "Region", "region", placeholder="us-east-1",
                      help="The AWS region where the model is enabled, e.g. us-east-1 or us-west-2. "
                           "Empty uses your profile's region."),
            FieldSpec("profile", "AWS profile", "text", placeholder="default",
                      help="A profile from ~/.aws/config; empty uses the default chain."),
            _MODEL,
            *_TIMING,
        ),
    ),
    "azure": ProviderForm(
        KeySpec("API key", "paste the key of your Azure OpenAI resource", required=False, required_when=("auth", "key"),
                help="Azure portal → your resource → Keys and Endpoint. Not used with Entra ID sign-in."),
        (
            FieldSpec("auth", "Sign in with", "choice",
                      choices=(("key", "API key"), ("entra", "Microsoft Entra ID (az login; needs azure-identity)"))),
            FieldSpec("endpoint", "Endpoint", "url", placeholder="https://<resource>.openai.azure.com", required=True),
            FieldSpec("deployment", "Deployment", "deployment", placeholder="my-gpt-image", required=True,
                      help="The deployment name you gave the image model, not the model name."),
            FieldSpec("api_version", "API version", "api_version", placeholder="2025-04-01-preview"),
            FieldSpec("model", "Model", "model", help="The model your deployment runs: it sets the request's options"
                                                      " and the price recorded with each image."),
            FieldSpec("deployments", "Other deployments", "deployments", placeholder="dall-e-3=my-dalle, gpt-image-1=img1",
                      help="Optional, for other models: model=deployment pairs. A request for a model without a"
                           " deployment is made by the deployment above and recorded as its model."),
            *_TIMING,
        ),
    ),
    "google": ProviderForm(
        KeySpec("Gemini API key", "AIza…", prefix="AIza", required=False, required_when=("surface", "gemini"),
                help="From aistudio.google.com/apikey. Not used for Vertex AI."),
        (
            FieldSpec("surface", "Use", "choice",
                      choices=(("gemini", "Gemini API (API key)"), ("vertex", "Vertex AI (Google Cloud credentials)"))),
            FieldSpec("project", "Cloud project", "project", placeholder="from your gcloud credentials",
                      help="Vertex AI only. It signs in with your application default credentials "
                           "(gcloud auth application-default login); empty uses their project."),
            FieldSpec("location", "Location", "location", placeholder="global", help="Vertex AI only."),
            _MODEL,
            *_TIMING,
        ),
    ),
    "openai": ProviderForm(
        KeySpec("API key", "sk-…", prefix="sk-", help="Create one at platform.openai.com/api-keys."),
        (
            _MODEL,
            FieldSpec("organization", "Organization", "text", placeholder="optional: org-…"),
            FieldSpec("project", "Project", "text", placeholder="optional: proj_…",
                      help="Only if your key belongs to several OpenAI organizations or projects."),
            FieldSpec("endpoint", "Base URL", "url", placeholder="https://api.openai.com/v1",
                      help="Leave empty unless you use a compatible proxy."),
            *_TIMING,
        ),
    ),
}


def form_for(service_id: str) -> ProviderForm:
    return FORMS.get(service_id, ProviderForm(KeySpec(required=False), (_MODEL, *_TIMING)))


# -- validation -------------------------------------------------------------------------

_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$")
_API_VERSION = re.compile(r"^(\d{4}-\d{2}-\d{2}(-preview)?|v1|latest|preview)$")
_PROJECT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_LOCATION = re.compile(r"^(global|[a-z]+-[a-z]+\d+)$")
_DEPLOYMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Checked:
    value: str
    error: str = ""
    note: str = ""


def check_key(raw: str, spec: KeySpec, *, name: str) -> Checked:
    """An entered key. Empty is fine here (it means "keep what is stored"); the caller decides if one is needed."""
    value = raw.strip()
    note = "Spaces around the key were removed." if value != raw and value else ""
    if not value:
        return Checked("", note="")
    if any(c.isspace() for c in value):
        return Checked(value, error="The key has spaces or line breaks inside it; paste it again as one piece.")
    if len(value) < 8:
        return Checked(value, error="That is too short to be a key; paste the whole key.")
    if spec.prefix and not value.startswith(spec.prefix):
        extra = f"{name} keys usually start with “{spec.prefix}”; check you pasted the right one."
        note = f"{note} {extra}".strip()
    return Checked(value, note=note)


def check_field(raw: str, spec: FieldSpec, *, values: dict[str, str]) -> Checked:
    value = raw.strip()
    note = f"Spaces around the {spec.label.lower()} were removed." if value != raw and value else ""
    required = spec.required or (spec.required_when is not None and values.get(spec.required_when[0]) == spec.required_when[1])
    if not value:
        return Checked("", error=f"{spec.label} is needed." if required else "")
    error = _kind_error(value, spec)
    return Checked(value, error=error, note=note)


def _kind_error(value: str, spec: FieldSpec) -> str:
    if spec.kind == "url":
        p = urlparse(value)
        if p.scheme not in ("http", "https") or not p.netloc or any(c.isspace() for c in value):
            return f"“{value}” is not a web address. It should look like {spec.placeholder or 'https://…'}."
        return ""
    if spec.kind == "region" and not _REGION.match(value):
        return f"“{value}” is not an AWS region code. Use a code like us-east-1 or eu-west-1."
    if spec.kind == "api_version" and not _API_VERSION.match(value):
        return f"“{value}” is not an API version. Use a date like 2025-04-01-preview, or v1."
    if spec.kind == "project" and not _PROJECT.match(value):
        return "A project id is 6–30 lowercase letters, digits or hyphens, starting with a letter (e.g. my-project-123)."
    if spec.kind == "location" and not _LOCATION.match(value):
        return f"“{value}” is not a Google Cloud location. Use global or a region like us-central1."
    if spec.kind == "deployment" and not _DEPLOYMENT.match(value):
        return "A deployment name has letters, digits, '-', '_' or '.', and no spaces."
    if spec.kind == "seconds":
        try:
            n = float(value)
        except ValueError:
            n = -1.0
        if not MIN_TIMEOUT <= n <= MAX_TIMEOUT:
            return f"Enter a number of seconds from {MIN_TIMEOUT:.0f} to {MAX_TIMEOUT:.0f}, or leave it empty for the default."
        return ""
    if spec.kind == "count":
        if not value.isdigit() or int(value) > MAX_RETRIES:
            return f"Enter a whole number from 0 to {MAX_RETRIES}, or leave it empty for the default."
        return ""
    if spec.kind == "deployments":
        for pair in re.split(r"[,;]", value):
            model, eq, dep = (p.strip() for p in pair.partition("="))
            if pair.strip() and (not eq or not model or any(c.isspace() for c in model) or not _DEPLOYMENT.match(dep)):
                return (f"“{pair.strip()}” is not a model=deployment pair. Write e.g. dall-e-3=my-dalle,"
                        " separated by commas.")
        return ""
    if spec.kind == "model" and any(c.isspace() for c in value):
        return "A model id has no spaces."
    if spec.kind == "choice" and not spec.editable and value not in {v for v, _ in spec.choices}:
        return f"Pick one of: {', '.join(v for v, _ in spec.choices)}."
    if spec.kind == "choice" and spec.editable and not re.match(r"^[a-z0-9][a-z0-9_.-]*$", value):
        return "Use the provider's short name, e.g. fal-ai."
    return ""


def typed_values(form: ProviderForm, values: dict[str, str]) -> dict[str, Any]:
    """Checked answers as they are saved: seconds and counts as numbers, the rest as text."""
    kinds = {f.key: f.kind for f in form.fields}
    out: dict[str, Any] = {}
    for k, v in values.items():
        if v and kinds.get(k) == "seconds":
            n = float(v)
            out[k] = int(n) if n.is_integer() else n
        elif v and kinds.get(k) == "count":
            out[k] = int(v)
        else:
            out[k] = v
    return out


def mask(key: str | None) -> str:
    """What the window may show of a key: the last four characters of a long one, nothing of a short one."""
    if not key:
        return ""
    return f"•••• {key[-4:]}" if len(key) >= 12 else "••••"
