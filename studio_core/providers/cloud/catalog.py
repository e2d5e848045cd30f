"""The cloud model catalog: ``resources/cloud_models.json`` read into small typed objects.

Models, sizes, transparency, prices and lifecycle facts change faster than code, so they
live in that data file. A model id the file does not know is still usable: it borrows
the size rules of its provider's default model and has no price.
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from studio_core.providers.cloud.common import fit_size, nearest_size, parse_size
from studio_core.resources import resource_path

if TYPE_CHECKING:
    from studio_core.inputs import ImageInputs

log = logging.getLogger(__name__)


CATALOG_PATH = resource_path("cloud_models.json")

RETIRED_STATES = frozenset({"retired", "shut_down", "shutdown"})


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


@dataclass(frozen=True, slots=True)
class InputSupport:
    """Which image inputs a model takes, from the catalog's ``inputs`` entry.

    ``None`` everywhere means "not known": the catalog records only what a source says,
    so an unknown fact is never read as yes or no. ``max_images`` counts every input image
    of one request (the init image included); ``control`` lists the control types taken
    (``()`` none). Byte and side limits are per input image as the provider documents them.
    """

    init: bool | None = None
    mask: bool | None = None
    references: bool | None = None
    max_images: int | None = None
    control: tuple[str, ...] | None = None
    loras: bool | None = None
    max_bytes: int | None = None
    mask_max_bytes: int | None = None
    max_side: int | None = None
    as_of: str = ""
    source: str = ""
    note: str = ""

    @classmethod
    def parse(cls, raw: Any) -> InputSupport:
        if not isinstance(raw, Mapping):
            return cls()
        ctrl = raw.get("control")
        control: tuple[str, ...] | None
        if isinstance(ctrl, bool):
            control = () if ctrl is False else None  # "true" without types says too little
        elif isinstance(ctrl, (list, tuple)):
            control = tuple(str(c) for c in ctrl)
        else:
            control = None
        return cls(init=_flag(raw.get("init")), mask=_flag(raw.get("mask")), references=_flag(raw.get("references")),
                   max_images=_count(raw.get("max_images")), control=control, loras=_flag(raw.get("loras")),
                   max_bytes=_count(raw.get("max_bytes")), mask_max_bytes=_count(raw.get("mask_max_bytes")),
                   max_side=_count(raw.get("max_side")), as_of=str(raw.get("as_of") or ""),
                   source=str(raw.get("source") or ""), note=str(raw.get("note") or ""))

    @property
    def takes_images(self) -> bool:
        return bool(self.init or self.references or self.mask or self.control)

    def refused(self, inputs: ImageInputs) -> list[str]:
        """What of ``inputs`` this model is known not to take, in words ("a mask", …); [] when nothing."""
        out: list[str] = []
        if inputs.init is not None and self.init is False:
            out.append("an init image")
        if inputs.mask is not None and self.mask is False:
            out.append("a mask")
        if inputs.references and self.references is False:
            out.append("reference images")
        images = len(inputs.references) + (1 if inputs.init is not None else 0)
        if images and self.max_images is not None and images > self.max_images and not (
                inputs.references and self.references is False):
            out.append(f"{images} input images (it takes at most {self.max_images})")
        if self.control is not None:
            for kind in dict.fromkeys(c.type for c in inputs.controls):
                if kind not in self.control:
                    out.append(f"a {kind} control image")
        if inputs.active_loras and self.loras is not True:
            out.append("LoRAs (they work with ComfyUI)")
        return out

    def covers(self, inputs: ImageInputs) -> bool:
        """Whether a source says this model takes every input of ``inputs`` (unknown is not yes)."""
        images = len(inputs.references) + (1 if inputs.init is not None else 0)
        return ((inputs.init is None or self.init is True)
                and (inputs.mask is None or self.mask is True)
                and (not inputs.references or self.references is True)
                and (not images or (self.max_images is not None and images <= self.max_images))
                and all(self.control is not None and c.type in self.control for c in inputs.controls)
                and (not inputs.active_loras or self.loras is True))


@dataclass(frozen=True)
class ModelSpec:
    id: str
    provider: str
    label: str = ""
    status: str = "unknown"
    known: bool = True
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def get(self, key: str, default: Any = None) -> Any:
        return self.raw.get(key, default)

    @property
    def retired(self) -> bool:
        return self.status in RETIRED_STATES

    @property
    def replacement(self) -> str:
        return str(self.raw.get("replacement") or "")

    @property
    def transparency(self) -> bool:
        return bool(self.raw.get("transparency"))

    @property
    def inputs(self) -> InputSupport:
        return InputSupport.parse(self.raw.get("inputs"))

    @property
    def max_batch(self) -> int:
        v = self.raw.get("max_batch")
        return v if isinstance(v, int) and v > 0 else 1

    @property
    def sizes(self) -> tuple[tuple[int, int], ...]:
        return tuple(s for s in (parse_size(v) for v in self.raw.get("sizes") or ()) if s)

    @property
    def aspect_sizes(self) -> dict[str, tuple[int, int]]:
        raw = self.raw.get("aspect_sizes") or {}
        return {str(k): s for k, v in raw.items() if (s := parse_size(v))}

    @property
    def price(self) -> Mapping[str, Any]:
        p = self.raw.get("price")
        return p if isinstance(p, Mapping) else {}

    def steps(self, requested: int) -> int | None:
        """``requested`` clamped to the model's step range; None when the model takes no steps input."""
        rng = self.raw.get("steps")
        if not isinstance(rng, Mapping):
            return None
        lo, hi = int(rng.get("min", 1)), int(rng.get("max", requested))
        return min(max(requested, lo), hi)

    def fit(self, width: int, height: int) -> tuple[int, int, str]:
        """The supported size nearest to ``width``×``height`` and its aspect-ratio name ('' if none)."""
        aspects = self.aspect_sizes
        if aspects:
            size = nearest_size(width, height, aspects.values())
            name = next(k for k, v in aspects.items() if v == size)
            return size[0], size[1], name
        if self.sizes:
            w, h = nearest_size(width, height, self.sizes)
            return w, h, ""
        rng = self.raw.get("size_range")
        if isinstance(rng, Mapping):
            w, h = fit_size(width, height, min_side=int(rng.get("min", 64)), max_side=int(rng.get("max", 4096)),
                            multiple=int(rng.get("multiple", 1)), max_pixels=int(rng.get("max_pixels", 0)),
                            max_ratio=float(rng.get("max_ratio", 0.0)))
            return w, h, ""
        return width, height, ""


@dataclass(frozen=True)
class ProviderSpec:
    id: str
    default_model: str = ""
    models: tuple[ModelSpec, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def get(self, key: str, default: Any = None) -> Any:
        return self.raw.get(key, default)

    def model(self, model_id: str) -> ModelSpec:
        """The spec for ``model_id`` ('' means the default); unknown ids borrow the default's size rules."""
        model_id = (model_id or "").strip() or self.default_model
        for m in self.models:
            if m.id == model_id or m.id.lower() == model_id.lower():
                return m
        base = next((m for m in self.models if m.id == self.default_model), None)
        rules = {k: v for k, v in (base.raw if base else {}).items()
                 if k in ("sizes", "aspect_ratios", "aspect_sizes", "size_range", "max_batch", "transparency", "seed")}
        return ModelSpec(model_id, self.id, label=model_id, status="unknown", known=False, raw=rules)

    def alive_alternative(self, model_id: str) -> str:
        """A model to suggest instead of ``model_id``: its replacement, the default, or any model
        the catalog lists as working; '' when none is known. Never ``model_id`` itself."""
        gone = self.model(model_id)
        firsts = [gone.replacement, self.default_model]
        active = [m.id for m in self.models if m.status == "active"]
        others = [m.id for m in self.models if not m.retired and m.status not in ("deprecated", "legacy")]
        for cand in (*firsts, *active, *others):
            if not cand or cand.lower() == gone.id.lower():
                continue
            spec = self.model(cand)
            if spec.known and not spec.retired and spec.status not in ("deprecated", "legacy"):
                return spec.id
        return ""

    def suggestion(self, model_id: str) -> str:
        """The sentence that points the user from ``model_id`` to a model that still works."""
        alt = self.alive_alternative(model_id)
        if alt:
            return f"Choose another model in Settings, for example {alt}."
        return "No other working model is known for this service; check the service's model list and enter one in Settings."

    def model_taking(self, inputs: ImageInputs, *, besides: str = "") -> ModelSpec | None:
        """A working model of this service known to take every input of ``inputs``; None when none is."""
        for m in self.models:
            if m.id.lower() == besides.lower() or m.retired or m.status in ("deprecated", "legacy"):
                continue
            if m.inputs.covers(inputs):
                return m
        return None

    def inputs_problem(self, model_id: str, inputs: ImageInputs) -> str:
        """The sentence for a request whose inputs ``model_id`` does not take ("" when it takes them):
        what it does not take, and a model of this service that does (or that none is known)."""
        m = self.model(model_id)
        refused = m.inputs.refused(inputs)
        if not refused:
            return ""
        service = str(self.get("name") or self.id)
        what = refused[0] if len(refused) == 1 else ", ".join(refused[:-1]) + " or " + refused[-1]
        text = f"{m.label or m.id} on {service} does not take {what}."
        alt = self.model_taking(inputs, besides=m.id)
        if alt is not None:
            return text + f" {alt.label or alt.id} ({alt.id}) on {service} does: choose it, or remove those inputs."
        return text + (f" No {service} model the studio knows takes them (none known); use ComfyUI or another"
                       " service, or remove those inputs.")

    def retired_message(self, model_id: str, service_name: str) -> str:
        """What to tell the user when the service says a model is gone (404/410/model_not_found)."""
        m = self.model(model_id)
        if m.retired:
            when = f" on {m.get('retired_on')}" if m.get("retired_on") else ""
            return f"{service_name} retired the model '{m.id}'{when}. {self.suggestion(m.id)}"
        return (f"{service_name} says the model '{m.id}' is not available: it may have been retired or renamed."
                f" {self.suggestion(m.id)}")


@dataclass(frozen=True)
class Catalog:
    as_of: str = ""
    providers: Mapping[str, ProviderSpec] = field(default_factory=dict)

    def provider(self, provider_id: str) -> ProviderSpec:
        return self.providers.get(provider_id) or ProviderSpec(provider_id)


def parse(raw: Any) -> Catalog:
    if not isinstance(raw, Mapping):
        return Catalog()
    provs: dict[str, ProviderSpec] = {}
    for pid, entry in (raw.get("providers") or {}).items():
        if not isinstance(entry, Mapping):
            continue
        models = tuple(
            ModelSpec(str(m["id"]), str(pid), label=str(m.get("label") or m["id"]),
                      status=str(m.get("status") or "unknown").lower(), raw=m)
            for m in entry.get("models") or () if isinstance(m, Mapping) and m.get("id")
        )
        provs[str(pid)] = ProviderSpec(str(pid), str(entry.get("default_model") or (models[0].id if models else "")), models, entry)
    return Catalog(str(raw.get("as_of", "")), provs)


def load_raw(path: Path | None = None) -> dict[str, Any]:
    """The data file as JSON; {} (logged) when it is missing or damaged. Blocking: small file read."""
    p = Path(path) if path else CATALOG_PATH
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except FileNotFoundError:
        log.warning("cloud model catalog missing at %s", p)
    except (OSError, ValueError) as exc:
        log.warning("cloud model catalog %s unreadable: %s", p, exc)
    return {}


@functools.lru_cache(maxsize=4)
def _load_cached(path: str) -> Catalog:
    return parse(load_raw(Path(path)))


def load(path: Path | None = None) -> Catalog:
    """The parsed catalog (cached per path; the file is read once per process)."""
    return _load_cached(str(path or CATALOG_PATH))


def provider(provider_id: str) -> ProviderSpec:
    return load().provider(provider_id)


def accepts(service: str, model: str, *, cat: Catalog | None = None) -> InputSupport:
    """Which image inputs ``model`` of cloud ``service`` takes ('' = the service's default model)."""
    return (cat or load()).provider(service).model(model).inputs


def inputs_problem(service: str, model: str, inputs: ImageInputs, *, cat: Catalog | None = None) -> str:
    """"" when ``model`` takes ``inputs``; else the user's sentence naming what it does not take and a
    model of ``service`` that does (or "none known"). For the service card and before Generate."""
    if inputs.empty and not inputs.mask:
        return ""
    return (cat or load()).provider(service).inputs_problem(model, inputs)
