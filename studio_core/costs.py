"""Price estimates per generated image, and spend totals per provider per day and month.

Prices come in as data: the caller passes the model catalog
(``studio_core.providers.cloud.catalog.load()``, read from ``resources/cloud_models.json``)
with its "as of" dates and sources, so this plain-data module never imports a provider. They are estimates: the provider's bill is the truth. Every cloud
``JobImage`` carries ``("provider", id)``, ``("model", m)`` and, when a price is known,
``("cost_usd", x)`` in its ``info``; the gallery keeps that with the image, and
:func:`summarize_spend` adds it up for the status bar and the statistics view.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Protocol


class PriceCatalog(Protocol):
    """What the cloud catalog offers here: ``cat.provider(id).model(m)`` with ``.price``
    (a mapping) and ``.get(key)``."""

    def provider(self, provider_id: str) -> Any: ...


@dataclass(frozen=True, slots=True)
class CostEstimate:
    per_image: float | None  # USD; None when the catalog has no price for this model
    as_of: str = ""
    source: str = ""
    estimate: bool = False  # True when the figure is a guess, not a list price
    note: str = ""

    def total(self, images: int) -> float | None:
        return None if self.per_image is None else round(self.per_image * max(images, 0), 6)


def _tokens_cost(tokens: Mapping[str, Any], usage: Mapping[str, Any]) -> float | None:
    out = usage.get("output_tokens")
    if not isinstance(out, (int, float)):
        return None
    details = usage.get("input_tokens_details") if isinstance(usage.get("input_tokens_details"), Mapping) else {}
    text_in = details.get("text_tokens", usage.get("input_tokens", 0)) or 0
    image_in = details.get("image_tokens", 0) or 0
    cost = out * float(tokens.get("image_output_per_1m", 0)) / 1e6
    cost += text_in * float(tokens.get("text_input_per_1m", 0)) / 1e6
    cost += image_in * float(tokens.get("image_input_per_1m", 0)) / 1e6
    return cost


def price_per_image(
    provider_id: str,
    model: str,
    *,
    width: int = 1024,
    height: int = 1024,
    quality: str | None = None,
    usage: Mapping[str, Any] | None = None,
    images_in_call: int = 1,
    cat: PriceCatalog,
) -> CostEstimate:
    """The catalog's price for one image of ``model`` at this size and provider quality tier.

    ``usage`` (token counts an API returned for the whole call) prices token-billed
    models exactly; it is split evenly over ``images_in_call``.
    """
    spec = cat.provider(provider_id).model(model)
    price = spec.price
    as_of, source, note = str(price.get("as_of", "")), str(price.get("source", "")), str(price.get("note", ""))
    estimate = bool(price.get("estimate"))
    tokens = price.get("tokens")
    if isinstance(tokens, Mapping) and isinstance(usage, Mapping):
        cost = _tokens_cost(tokens, usage)
        if cost is not None:
            return CostEstimate(round(cost / max(images_in_call, 1), 6), as_of, source, estimate, note)
    tiers_key = "tiers" if width == height else "non_square_tiers"
    tiers = price.get(tiers_key) or price.get("tiers")
    if quality and isinstance(tiers, Mapping) and isinstance(tiers.get(quality), (int, float)):
        return CostEstimate(float(tiers[quality]), as_of, source, estimate, note)
    value = spec.get("price_per_image", price.get("usd_per_image"))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return CostEstimate(float(value), as_of, source, estimate, note)
    return CostEstimate(None, as_of, source, estimate, note or "No price known for this model.")


def image_info(
    provider_id: str,
    model: str,
    *,
    width: int,
    height: int,
    quality: str | None = None,
    usage: Mapping[str, Any] | None = None,
    images_in_call: int = 1,
    extra: Iterable[tuple[str, Any]] = (),
    cat: PriceCatalog,
) -> tuple[tuple[str, Any], ...]:
    """The ``JobImage.info`` pairs a cloud provider attaches to each image."""
    est = price_per_image(provider_id, model, width=width, height=height, quality=quality, usage=usage,
                          images_in_call=images_in_call, cat=cat)
    info: dict[str, Any] = {"provider": provider_id, "service": provider_id, "model": model, "size": f"{width}x{height}"}
    if est.per_image is not None:
        info["cost_usd"] = est.per_image
        info["price_as_of"] = est.as_of
        if est.source:
            info["price_source"] = est.source
        if est.estimate:
            info["cost_is_estimate"] = True
    if quality:
        info["quality"] = quality
    info.update(dict(extra))
    return tuple(sorted(info.items()))


# ---------------------------------------------------------------------------------------
# Spend totals


@dataclass(frozen=True, slots=True)
class SpendSummary:
    today: Mapping[str, float] = field(default_factory=dict)  # provider -> USD
    month: Mapping[str, float] = field(default_factory=dict)
    by_day: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # "YYYY-MM-DD" -> provider -> USD
    by_month: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # "YYYY-MM" -> provider -> USD
    unpriced: Mapping[str, int] = field(default_factory=dict)  # provider -> images with no known price

    @property
    def today_total(self) -> float:
        return round(sum(self.today.values()), 6)

    @property
    def month_total(self) -> float:
        return round(sum(self.month.values()), 6)


def _when(created: Any) -> datetime | None:
    if isinstance(created, datetime):
        dt = created
    else:
        try:
            dt = datetime.fromisoformat(str(created).replace("Z", "+00:00"))
        except ValueError:
            return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def summarize_spend(entries: Iterable[tuple[Any, Mapping[str, Any]]], *, now: datetime | None = None) -> SpendSummary:
    """Add up ``cost_usd`` per provider per local day and month.

    ``entries`` are ``(created, info)`` pairs: an ISO 8601 time (or datetime) and the
    image's info mapping (``SavedImage.info`` as a dict). Days are the user's local days.
    """
    now = (now or datetime.now(timezone.utc)).astimezone()
    today, month = now.strftime("%Y-%m-%d"), now.strftime("%Y-%m")
    by_day: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    by_month: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    unpriced: dict[str, int] = defaultdict(int)
    for created, info in entries:
        dt = _when(created)
        if dt is None or not isinstance(info, Mapping):
            continue
        provider = str(info.get("service") or info.get("provider") or "")
        if not provider or provider == "comfyui":
            continue
        cost = info.get("cost_usd")
        if not isinstance(cost, (int, float)) or isinstance(cost, bool):
            unpriced[provider] += 1
            continue
        local = dt.astimezone()
        by_day[local.strftime("%Y-%m-%d")][provider] += float(cost)
        by_month[local.strftime("%Y-%m")][provider] += float(cost)

    def freeze(d: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
        return {k: {p: round(v, 6) for p, v in sorted(inner.items())} for k, inner in sorted(d.items())}

    days, months = freeze(by_day), freeze(by_month)
    return SpendSummary(today=days.get(today, {}), month=months.get(month, {}), by_day=days, by_month=months,
                        unpriced=dict(unpriced))


def format_usd(value: float | None) -> str:
    if value is None:
        return "price unknown"
    if value and value < 0.01:
        return f"${value:.4f}"
    return f"${value:.2f}"
