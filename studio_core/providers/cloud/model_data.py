"""Model facts (sizes, ratios, prices, lifecycle) from ``resources/cloud_models.json``.

The JSON file is the single source: code never hard-codes a model list or a price. The
reader is tolerant because the file is edited by hand: an entry may be keyed by id or
carry an ``id`` field, and the price may be spelled a few ways. A missing file or entry
yields empty facts, and the provider then sends the user's values unchanged and lets
the service judge them.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

log = logging.getLogger(__name__)

CATALOG_FILE = Path(__file__).resolve().parents[3] / "resources" / "cloud_models.json"
_PRICE_KEYS = ("price_usd", "usd_per_image", "price_per_image_usd", "price_per_image", "price")


@dataclass(frozen=True, slots=True)
class ModelFacts:
    id: str
    label: str = ""
    family: str = ""
    sizes: tuple[tuple[int, int], ...] = ()
    aspect_ratios: tuple[str, ...] = ()
    image_sizes: tuple[str, ...] = ()  # Gemini's "1K"/"2K"/"4K"
    max_images: int = 0  # per call; 0 = unknown
    price_usd: float | None = None
    transparent: bool = False
    legacy: bool = False
    notes: str = ""


@dataclass(frozen=True, slots=True)
class ProviderFacts:
    default_model: str
    models: tuple[ModelFacts, ...] = ()

    def model(self, model_id: str) -> ModelFacts:
        for m in self.models:
            if m.id == model_id:
                return m
        return ModelFacts(model_id)


@functools.lru_cache(maxsize=1)
def _load(path: Path = CATALOG_FILE) -> Mapping[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("cloud model catalog unreadable (%s); using built-in defaults", exc)
        return {}


def _price(entry: Mapping[str, Any]) -> float | None:
    for key in _PRICE_KEYS:
        v = entry.get(key)
        if isinstance(v, Mapping):  # {"usd": 0.04, "as_of": ..., "source": ...}
            v = v.get("usd", v.get("value"))
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    return None


def _sizes(raw: Any) -> tuple[tuple[int, int], ...]:
    out = []
    for s in raw or ():
        if isinstance(s, str) and "x" in s:
            w, _, h = s.partition("x")
            s = (w, h)
        try:
            w, h = int(s[0]), int(s[1])
        except (TypeError, ValueError, IndexError):
            continue
        out.append((w, h))
    return tuple(out)


def _model(model_id: str, e: Mapping[str, Any]) -> ModelFacts:
    lifecycle = str(e.get("lifecycle", e.get("status", ""))).lower()
    return ModelFacts(
        id=model_id,
        label=str(e.get("label", e.get("name", model_id))),
        family=str(e.get("family", "")),
        sizes=_sizes(e.get("sizes")),
        aspect_ratios=tuple(str(r) for r in e.get("aspect_ratios", ()) or ()),
        image_sizes=tuple(str(r) for r in e.get("image_sizes", ()) or ()),
        max_images=int(e.get("max_images", e.get("max_batch", 0)) or 0),
        price_usd=_price(e),
        transparent=bool(e.get("transparent", e.get("transparency", False))),
        legacy=bool(e.get("legacy", False)) or lifecycle in ("legacy", "deprecated"),
        notes=str(e.get("notes", "")),
    )


def provider_facts(provider_id: str, *, fallback_default: str) -> ProviderFacts:
    data = _load()
    section = data.get("providers", data).get(provider_id) if isinstance(data.get("providers", data), Mapping) else None
    if not isinstance(section, Mapping):
        return ProviderFacts(fallback_default)
    raw_models = section.get("models", ())
    models: list[ModelFacts] = []
    if isinstance(raw_models, Mapping):
        models = [_model(str(k), v) for k, v in raw_models.items() if isinstance(v, Mapping)]
    elif isinstance(raw_models, list):
        models = [_model(str(v["id"]), v) for v in raw_models if isinstance(v, Mapping) and v.get("id")]
    default = section.get("default_model", section.get("default", "")) or fallback_default
    return ProviderFacts(str(default), tuple(models))


# -- size clamping --------------------------------------------------------------------

def ratio_value(ratio: str) -> float:
    w, _, h = ratio.partition(":")
    return float(w) / float(h)


def nearest_ratio(width: int, height: int, ratios: tuple[str, ...]) -> str:
    want = math.log(width / height)
    return min(ratios, key=lambda r: abs(math.log(ratio_value(r)) - want))


def nearest_size(width: int, height: int, sizes: tuple[tuple[int, int], ...]) -> tuple[int, int]:
    """The allowed size closest in shape first, then in pixel count."""
    want_shape, want_area = math.log(width / height), math.log(width * height)
    return min(sizes, key=lambda s: (round(abs(math.log(s[0] / s[1]) - want_shape), 2),
                                     abs(math.log(s[0] * s[1]) - want_area)))
