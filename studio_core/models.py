"""Plain data that crosses between the core, its providers and the GUI."""

from __future__ import annotations

import dataclasses
import enum
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from studio_core.errors import InvalidRequest
from studio_core.inputs import ImageInputs


class QualityTier(enum.StrEnum):
    optimized = "optimized"
    high = "high"
    ultra = "ultra"


@dataclass(frozen=True, slots=True)
class Workflow:
    """A custom ComfyUI graph: API-format JSON text and the user's input mapping as JSON
    text (``{"prompt": "6.text", "negative": null, ...}``; null means "not used")."""

    graph: str
    mapping_json: str = ""
    name: str = ""

    @property
    def mapping(self) -> dict[str, Any] | None:
        if not self.mapping_json:
            return None
        try:
            value = json.loads(self.mapping_json)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    @classmethod
    def of(cls, graph: str, mapping: Any = None, name: str = "") -> Workflow:
        if mapping is None or isinstance(mapping, str):
            text = mapping or ""
        else:
            text = json.dumps(dict(mapping), sort_keys=True, ensure_ascii=False)
        return cls(graph, text, name)

    def to_dict(self) -> dict[str, Any]:
        return {"graph": self.graph, "mapping": self.mapping, "name": self.name}

    @classmethod
    def from_dict(cls, data: Any) -> Workflow | None:
        if not isinstance(data, Mapping) or not isinstance(data.get("graph"), str) or not data["graph"]:
            return None
        mapping = data.get("mapping")
        return cls.of(data["graph"], mapping if isinstance(mapping, (Mapping, str)) else None,
                      str(data.get("name") or ""))


class BackgroundMode(enum.StrEnum):
    """How a transparent background is made (see studio_core.sprites.background)."""

    none = ""  # an ordinary picture
    provider = "provider"  # the service returns alpha itself
    comfy_node = "comfy_node"  # a removal node appended to the ComfyUI graph
    in_app = "in_app"  # key colour in the prompt, removed by the studio after saving


@dataclass(frozen=True, slots=True)
class Background:
    """How the job makes a transparent background, and with which ComfyUI node if one."""

    mode: BackgroundMode = BackgroundMode.none
    node: str = ""  # the ComfyUI removal node class for comfy_node

    def __post_init__(self) -> None:
        if not isinstance(self.mode, BackgroundMode):
            object.__setattr__(self, "mode", BackgroundMode(self.mode))

    @property
    def transparent(self) -> bool:
        return self.mode is not BackgroundMode.none

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode.value, "node": self.node}

    @classmethod
    def from_dict(cls, data: Any) -> Background:
        if not isinstance(data, Mapping):
            return cls()
        try:
            return cls(BackgroundMode(data.get("mode") or ""), str(data.get("node") or ""))
        except ValueError:
            return cls()


@dataclass(frozen=True, slots=True)
class FrameRef:
    """Which frame set (variants or an animation) a request belongs to, and where in it.

    ``index`` is the frame number of the request's first image; ``name`` that frame's
    name (``walk_left_03``); ``animation`` the row it plays in (``walk_left``)."""

    set_id: str
    index: int
    name: str
    kind: str = "animation"  # "variants" | "animation" | "single"
    animation: str = ""
    direction: str = ""
    total: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: Any) -> FrameRef | None:
        if not isinstance(data, Mapping) or not isinstance(data.get("set_id"), str):
            return None
        kw: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            v = data.get(f.name)
            if f.type in ("int",) and isinstance(v, int) and not isinstance(v, bool):
                kw[f.name] = v
            elif f.type == "str" and isinstance(v, str):
                kw[f.name] = v
        if "index" not in kw or "name" not in kw:
            return None
        return cls(**kw)


# Option keys older versions (and not yet migrated callers) used for what are now typed
# fields. Reading them through option() and writing them through with_options() still
# works; stored metadata with them loads into the typed fields.
LEGACY_OPTION_KEYS = ("workflow", "workflow_map", "background", "background_node", "background_method",
                      "provider", "style_preset")


def _absorb_legacy(fields: dict[str, Any], options: dict[str, Any]) -> None:
    """Move legacy option keys out of ``options`` into the typed ``fields`` (in place)."""
    if "workflow" in options or "workflow_map" in options:
        graph = options.pop("workflow", None)
        mapping = options.pop("workflow_map", None)
        current: Workflow | None = fields.get("workflow")
        if graph is None and current is not None:
            graph = current.graph
        fields["workflow"] = Workflow.of(graph, mapping) if isinstance(graph, str) and graph else None
    if {"background", "background_node", "background_method"} & options.keys():
        bg: Background = fields.get("background") or Background()
        native = options.pop("background", None)
        node = options.pop("background_node", None)
        method = options.pop("background_method", None)
        mode = bg.mode
        if isinstance(method, str):
            try:
                mode = BackgroundMode(method)
            except ValueError:
                pass
        elif native == "transparent":
            mode = BackgroundMode.provider
        elif node:
            mode = BackgroundMode.comfy_node
        fields["background"] = Background(mode, str(node) if node else (bg.node if mode is BackgroundMode.comfy_node else ""))
    if "provider" in options:
        v = options.pop("provider")
        fields["cloud_provider"] = str(v) if isinstance(v, str) else ""
    if "style_preset" in options:
        v = options.pop("style_preset")
        fields["style_preset"] = str(v) if isinstance(v, str) else ""


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """Everything a generation needs. Providers read only this; nothing else is implicit.

    ``seed`` of ``None`` means "pick one": the provider reports the seed it used on each
    image. Core concepts are typed fields: ``workflow`` (a custom ComfyUI graph),
    ``background`` (how a transparent background is made), ``cloud_provider`` (the
    inference provider behind a cloud service, e.g. Hugging Face's "fal-ai"),
    ``style_preset``, ``member`` (the frame set this request is part of) and ``inputs``
    (init image, mask, references, control images and LoRAs, by content digest).
    ``options`` carries only provider-specific extras as sorted ``(key, value)`` pairs so
    the request stays hashable (``tiled_vae``, ``upscale_to``, a Nova ``style``…).
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
    workflow: Workflow | None = None
    background: Background = Background()
    cloud_provider: str = ""
    style_preset: str = ""
    member: FrameRef | None = None
    inputs: ImageInputs = ImageInputs()

    def __post_init__(self) -> None:
        if not isinstance(self.inputs, ImageInputs):
            # A caller handing the metadata form gets it checked like any other input.
            object.__setattr__(self, "inputs", ImageInputs.from_dict(self.inputs) if self.inputs else ImageInputs())
        opts = dict(self.options.items() if isinstance(self.options, Mapping) else self.options)
        if any(k in opts for k in LEGACY_OPTION_KEYS):
            fields = {"workflow": self.workflow, "background": self.background,
                      "cloud_provider": self.cloud_provider, "style_preset": self.style_preset}
            _absorb_legacy(fields, opts)
            for k, v in fields.items():
                object.__setattr__(self, k, v)
        if isinstance(self.options, Mapping) or len(opts) != len(self.options):
            object.__setattr__(self, "options", tuple(sorted(opts.items())))
        if not isinstance(self.quality, QualityTier):
            object.__setattr__(self, "quality", QualityTier(self.quality))
        if not isinstance(self.background, Background):
            object.__setattr__(self, "background", Background.from_dict(self.background))

    def option(self, key: str, default: Any = None) -> Any:
        if key in LEGACY_OPTION_KEYS:
            value = self._legacy_option(key)
            return default if value is None else value
        for k, v in self.options:
            if k == key:
                return v
        return default

    def _legacy_option(self, key: str) -> Any:
        wf, bg = self.workflow, self.background
        if key == "workflow":
            return wf.graph if wf else None
        if key == "workflow_map":
            return wf.mapping if wf else None
        if key == "background":
            return "transparent" if bg.mode is BackgroundMode.provider else None
        if key == "background_node":
            return bg.node or None
        if key == "background_method":
            return bg.mode.value or None
        if key == "provider":
            return self.cloud_provider or None
        return self.style_preset or None

    def with_options(self, **changes: Any) -> GenerationRequest:
        merged = dict(self.options)
        legacy: dict[str, Any] = {}
        for k, v in changes.items():
            if k in LEGACY_OPTION_KEYS:
                legacy[k] = v
            elif v is None:
                merged.pop(k, None)
            else:
                merged[k] = v
        fields: dict[str, Any] = {"options": tuple(sorted(merged.items()))}
        if legacy:
            typed = {"workflow": self.workflow, "background": self.background,
                     "cloud_provider": self.cloud_provider, "style_preset": self.style_preset}
            if "workflow" in legacy and legacy["workflow"] is None:
                typed["workflow"] = None
                legacy.pop("workflow")
                legacy.pop("workflow_map", None)
            if "background_method" in legacy and legacy["background_method"] is None:
                typed["background"] = Background()
            _absorb_legacy(typed, {k: v for k, v in legacy.items() if v is not None})
            for k in ("provider", "style_preset"):
                if k in legacy and legacy[k] is None:
                    typed["cloud_provider" if k == "provider" else k] = ""
            fields.update(typed)
        return dataclasses.replace(self, **fields)

    def replace(self, **changes: Any) -> GenerationRequest:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["quality"] = self.quality.value
        d["options"] = dict(self.options)
        d["workflow"] = self.workflow.to_dict() if self.workflow else None
        d["background"] = self.background.to_dict()
        d["member"] = self.member.to_dict() if self.member else None
        d["inputs"] = self.inputs.to_dict()  # digests only: the images stay in the input store
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GenerationRequest:
        """Build from stored metadata, ignoring unknown keys and ill-typed values. Metadata
        from before the typed fields (``options`` with ``workflow``, ``background_method``…)
        loads into them."""
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
            if f.name == "workflow":
                kwargs["workflow"] = Workflow.from_dict(value)
                continue
            if f.name == "background":
                kwargs["background"] = Background.from_dict(value)
                continue
            if f.name == "member":
                kwargs["member"] = FrameRef.from_dict(value)
                continue
            if f.name == "inputs":
                try:
                    kwargs["inputs"] = ImageInputs.from_dict(value)
                except InvalidRequest:
                    # Damaged inputs must not lose the rest of the settings; reuse without them.
                    kwargs["inputs"] = ImageInputs()
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
    """The job is in line; ``position`` 1 means it runs next."""

    job_id: str
    position: int = 0


@dataclass(frozen=True, slots=True)
class JobStarted:
    """The service took the job (``server_job_id`` is its own id for it, if any)."""

    job_id: str
    server_job_id: str = ""


@dataclass(frozen=True, slots=True)
class JobProgress:
    """A step of the job, with the service's preview image when it sends one."""

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
    """The job ended well after ``images`` images."""

    job_id: str
    images: int = 0


@dataclass(frozen=True, slots=True)
class JobFailed:
    """The job ended with ``error`` (a StudioError carries the words for the user)."""

    job_id: str
    error: Exception


@dataclass(frozen=True, slots=True)
class JobCancelled:
    """The job was cancelled before it finished."""

    job_id: str


@dataclass(frozen=True, slots=True)
class JobSaved:
    """An image of the job is on disk (``index`` matches the JobImage it came from)."""

    job_id: str
    saved: SavedImage
    index: int = 0


@dataclass(frozen=True, slots=True)
class JobSaveFailed:
    """An image arrived but could not be written; its bytes are kept (recovery folder, and
    ``JobQueue.unsaved[unsaved_id]``) for "Retry saving"."""

    job_id: str
    unsaved_id: str
    error: Exception  # a StudioError with a user_message


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
    """What a service check found; ``details`` are facts the cards show."""

    state: ServiceState
    message: str = ""
    details: tuple[tuple[str, Any], ...] = ()

    def detail(self, key: str, default: Any = None) -> Any:
        return dict(self.details).get(key, default)


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A model a service lists (``present`` False: listed but retired or not there to use)."""

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
