"""Plain data that crosses between the core, its providers and the GUI."""

from __future__ import annotations

import dataclasses
import enum
import json
from dataclasses import dataclass, field
from typing import Any, Mapping


class QualityTier(enum.StrEnum):
    optimized = "optimized"
    high = "high"
    ultra = "ultra"


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """Everything a generation needs. Providers read only this; nothing else is implicit.

    ``seed`` of ``None`` means "pick one": the provider reports the seed it used on each
    image. ``options`` carries per-service extras as sorted ``(key, value)`` pairs so the
    request stays hashable and immutable (e.g. ``("workflow", "<api json>")`` for a custom
    ComfyUI workflow, ``("background", "transparent")``, ``("provider", "fal-ai")``).
    """

    prompt: str
    service: str = "comfyui"
    model: str = ""
    negative_prompt: str = ""
    width: int = 1024
    height: int = 1024
    steps: int = 20
    cfg: float = 6.0
    sampler: str = "euler"
    scheduler: str = "normal"
    seed: int | None = None
    batch: int = 1
    quality: QualityTier = QualityTier.optimized
    options: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.options, Mapping):
            object.__setattr__(self, "options", tuple(sorted(self.options.items())))
        if not isinstance(self.quality, QualityTier):
            object.__setattr__(self, "quality", QualityTier(self.quality))

    def option(self, key: str, default: Any = None) -> Any:
        for k, v in self.options:
            if k == key:
                return v
        return default

    def with_options(self, **changes: Any) -> GenerationRequest:
        merged = dict(self.options)
        for k, v in changes.items():
            if v is None:
                merged.pop(k, None)
            else:
                merged[k] = v
        return dataclasses.replace(self, options=tuple(sorted(merged.items())))

    def replace(self, **changes: Any) -> GenerationRequest:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["quality"] = self.quality.value
        d["options"] = dict(self.options)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GenerationRequest:
        """Build from stored metadata, ignoring unknown keys and ill-typed values."""
        kwargs: dict[str, Any] = {}
        defaults = cls(prompt="")
        for f in dataclasses.fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            default = getattr(defaults, f.name)
            if f.name == "seed":
                if value is None or (isinstance(value, int) and not isinstance(value, bool)):
                    kwargs["seed"] = value
                continue
            if f.name == "options":
                if isinstance(value, Mapping):
                    kwargs["options"] = tuple(sorted((str(k), v) for k, v in value.items()))
                continue
            if f.name == "quality":
                try:
                    kwargs["quality"] = QualityTier(value)
                except ValueError:
                    pass
                continue
            if isinstance(default, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
                kwargs[f.name] = float(value)
            elif type(value) is type(default):
                kwargs[f.name] = value
        kwargs.setdefault("prompt", "")
        return cls(**kwargs)


# ---------------------------------------------------------------------------------------
# Job events: what a provider's generate() yields and what the job queue passes on.


@dataclass(frozen=True, slots=True)
class JobQueued:
    job_id: str
    position: int = 0


@dataclass(frozen=True, slots=True)
class JobStarted:
    job_id: str
    server_job_id: str = ""


@dataclass(frozen=True, slots=True)
class JobProgress:
    job_id: str
    step: int
    total: int
    preview: bytes | None = None
    preview_mime: str = "image/jpeg"
    message: str = ""

    @property
    def fraction(self) -> float:
        return (self.step / self.total) if self.total > 0 else 0.0


@dataclass(frozen=True, slots=True)
class JobImage:
    """One finished image. ``extra_text`` holds PNG text chunks to keep (e.g. ComfyUI's
    ``prompt`` JSON) and ``info`` provider facts worth recording (cost, provider, model)."""

    job_id: str
    data: bytes
    mime: str = "image/png"
    seed: int | None = None
    index: int = 0
    extra_text: tuple[tuple[str, str], ...] = ()
    info: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class JobNotice:
    """Something the user should see while the job goes on (reconnecting, waiting on a rate limit)."""

    job_id: str
    message: str


@dataclass(frozen=True, slots=True)
class JobFinished:
    job_id: str
    images: int = 0


@dataclass(frozen=True, slots=True)
class JobFailed:
    job_id: str
    error: Exception


@dataclass(frozen=True, slots=True)
class JobCancelled:
    job_id: str


JobEvent = JobQueued | JobStarted | JobProgress | JobImage | JobNotice | JobFinished | JobFailed | JobCancelled


# ---------------------------------------------------------------------------------------
# Provider facts.


class ServiceState(enum.StrEnum):
    ready = "ready"
    needs_key = "needs_key"
    unreachable = "unreachable"
    error = "error"
    unknown = "unknown"


@dataclass(frozen=True, slots=True)
class ProviderStatus:
    state: ServiceState
    message: str = ""
    details: tuple[tuple[str, Any], ...] = ()

    def detail(self, key: str, default: Any = None) -> Any:
        return dict(self.details).get(key, default)


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str
    label: str = ""
    family: str = ""
    present: bool = True
    notes: str = ""


@dataclass(frozen=True, slots=True)
class SavedImage:
    """An image written to the gallery folder together with what made it."""

    path: Any  # pathlib.Path; Any keeps slots + frozen simple for callers building it
    request: GenerationRequest
    created: str  # ISO 8601, UTC
    seed: int | None = None
    file_size: int = 0
    width: int = 0
    height: int = 0
    info: tuple[tuple[str, Any], ...] = field(default=())
