"""What the selector and the settings pages say about each service: price, capabilities, models.

Qt-free. The model catalog (``resources/cloud_models.json``) is written by the provider
work and may lag behind it or lack fields, so every reader here tolerates missing keys,
other spellings and wrong types: a service with no data shows "price unknown" rather
than breaking the window. Load it with :func:`load_catalog` off the GUI thread.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

log = logging.getLogger(__name__)


_PRICE_KEYS = ("price_per_image", "usd_per_image", "price_usd", "cost_per_image", "price", "cost")
_TRANSPARENT_KEYS = ("transparent", "transparency", "supports_transparency", "transparent_background", "background_transparent")


@dataclass(frozen=True, slots=True)
class ModelFacts:
    id: str
    label: str = ""
    price: float | None = None  # USD per image
    max_size: tuple[int, int] | None = None
    aspect_ratios: tuple[str, ...] = ()
    transparent: bool | None = None
    retired: bool = False


@dataclass(frozen=True, slots=True)
class ServiceFacts:
    id: str
    default_model: str = ""
    models: tuple[ModelFacts, ...] = ()
    as_of: str = ""
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def model(self, model_id: str) -> ModelFacts | None:
        for m in self.models:
            if m.id == model_id:
                return m
        return None


def load_catalog(path: Path | None = None) -> dict[str, ServiceFacts]:
    """Service id → facts. Blocking (reads a file): call through ``asyncio.to_thread``."""
    raw = _raw_catalog(path)
    try:
        return parse_catalog(raw)
    except Exception:  # a malformed data file must not take the selector down
        log.exception("cloud model catalog could not be read; showing services without prices")
        return {}


def _raw_catalog(path: Path | None) -> Any:
    from studio_core.providers.cloud import catalog

    return catalog.load_raw(path)


def parse_catalog(raw: Any) -> dict[str, ServiceFacts]:
    providers: Any = raw.get("providers", raw) if isinstance(raw, Mapping) else raw
    as_of = str(raw.get("as_of", "")) if isinstance(raw, Mapping) else ""
    items: list[tuple[str, Mapping]] = []
    if isinstance(providers, Mapping):
        items = [(str(k), v) for k, v in providers.items() if isinstance(v, Mapping)]
    elif isinstance(providers, list):
        items = [(str(v.get("id", "")), v) for v in providers if isinstance(v, Mapping) and v.get("id")]
    out: dict[str, ServiceFacts] = {}
    for sid, entry in items:
        models = _parse_models(entry.get("models"))
        default = _first_str(entry, ("default_model", "default", "model"))
        if not default and models:
            default = models[0].id
        out[sid] = ServiceFacts(
            id=sid,
            default_model=default,
            models=models,
            as_of=_first_str(entry, ("as_of", "prices_as_of", "price_as_of")) or as_of,
            source=_first_str(entry, ("source", "price_source", "sources")),
            extra=dict(entry),
        )
    return out


def _parse_models(value: Any) -> tuple[ModelFacts, ...]:
    entries: list[Mapping] = []
    if isinstance(value, Mapping):
        for k, v in value.items():
            if isinstance(v, Mapping):
                entries.append({"id": k, **v})
            elif isinstance(v, str):
                entries.append({"id": k, "label": v})
    elif isinstance(value, list):
        for v in value:
            if isinstance(v, Mapping) and v.get("id"):
                entries.append(v)
            elif isinstance(v, str):
                entries.append({"id": v})
    return tuple(_parse_model(e) for e in entries)


def _parse_model(e: Mapping) -> ModelFacts:
    status = str(e.get("status", e.get("lifecycle", ""))).lower()
    return ModelFacts(
        id=str(e["id"]),
        label=_first_str(e, ("label", "name", "title")),
        price=_price(e),
        max_size=_max_size(e),
        aspect_ratios=tuple(str(r) for r in _first_list(e, ("aspect_ratios", "ratios", "aspect_ratio"))),
        transparent=_bool(e, _TRANSPARENT_KEYS),
        retired=bool(e.get("retired")) or status in ("retired", "shut_down", "shutdown"),
    )


def _first_str(e: Mapping, keys: tuple[str, ...]) -> str:
    for k in keys:
        v = e.get(k)
        if isinstance(v, str) and v.strip():
            return v.strip()
    return ""


def _first_list(e: Mapping, keys: tuple[str, ...]) -> list:
    for k in keys:
        v = e.get(k)
        if isinstance(v, list):
            return v
    return []


def _number(v: Any) -> float | None:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v.strip().lstrip("$"))
        except ValueError:
            return None
    return None


def _price(e: Mapping) -> float | None:
    for k in _PRICE_KEYS:
        v = e.get(k)
        if isinstance(v, Mapping):
            for sub in ("usd_per_image", "per_image", "usd", "amount", "value", "image"):
                n = _number(v.get(sub))
                if n is not None:
                    return n
            continue
        n = _number(v)
        if n is not None:
            return n
    return None


def _bool(e: Mapping, keys: tuple[str, ...]) -> bool | None:
    caps = e.get("capabilities")
    for src in (e, caps if isinstance(caps, Mapping) else {}):
        for k in keys:
            v = src.get(k)
            if isinstance(v, bool):
                return v
            if isinstance(v, str):
                return v.lower() in ("yes", "true", "supported", "png", "webp")
    return None


def _size(v: Any) -> tuple[int, int] | None:
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, int) for x in v):
        return int(v[0]), int(v[1])
    if isinstance(v, int) and not isinstance(v, bool):
        return v, v
    if isinstance(v, str) and "x" in v.lower():
        a, _, b = v.lower().partition("x")
        if a.strip().isdigit() and b.strip().isdigit():
            return int(a), int(b)
    if isinstance(v, Mapping):
        w, h = v.get("width"), v.get("height")
        if isinstance(w, int) and isinstance(h, int):
            return w, h
    return None


def _max_size(e: Mapping) -> tuple[int, int] | None:
    for k in ("max_size", "max_resolution", "max"):
        s = _size(e.get(k))
        if s:
            return s
    w, h = e.get("max_width"), e.get("max_height")
    if isinstance(w, int) and isinstance(h, int):
        return w, h
    sizes = [s for s in (_size(v) for v in _first_list(e, ("sizes", "supported_sizes"))) if s]
    if sizes:
        return max(sizes, key=lambda s: s[0] * s[1])
    return None


# -- wording ----------------------------------------------------------------------------


def format_price(price: float | None) -> str:
    if price is None:
        return "price unknown"
    if price == 0:
        return "free"
    if price < 0.01:
        return f"${price:.4f}".rstrip("0") + "/img"
    return f"${price:.3f}".rstrip("0").rstrip(".") + "/img"


def capability_line(*, kind: str, model: ModelFacts | None) -> str:
    parts = [kind]
    if kind == "local":
        parts.append("your GPU, free")
        return " · ".join(parts)
    if model is None:
        return " · ".join(parts)
    if model.max_size:
        w, h = model.max_size
        parts.append(f"up to {w}²" if w == h else f"max {w}×{h}")
    if model.aspect_ratios:
        n = len(model.aspect_ratios)
        parts.append(", ".join(model.aspect_ratios) if n <= 3 else f"{n} aspect ratios")
    if model.transparent is True:
        parts.append("transparent")
    elif model.transparent is False:
        parts.append("no transparency")
    return " · ".join(parts)


def model_in_use(service_id: str, settings: Any, facts: ServiceFacts | None) -> str:
    """The model the next generation will use: the user's choice, else the catalog default."""
    if service_id == "comfyui":
        return str(getattr(settings, "comfy_model", "") or "")
    chosen = settings.provider(service_id).get("model") if hasattr(settings, "provider") else None
    if isinstance(chosen, str) and chosen.strip():
        return chosen.strip()
    return facts.default_model if facts else ""
