"""Plain data the gallery index hands out: one record per image, queries, statistics."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from studio_core.models import GenerationRequest

SortOrder = Literal["newest", "oldest", "prompt"]

# Service ids of images that no service of this app made: A1111-style metadata that names
# no service, and files with no settings at all. They are filter choices, never generators.
A1111_SERVICE = "a1111"
UNKNOWN_SERVICE = "unknown"
_SOURCE_LABELS = {A1111_SERVICE: "imported (A1111)", UNKNOWN_SERVICE: "unknown (no settings in the file)"}


def service_label(service: str, names: dict[str, str] | None = None) -> str:
    """How a service id reads in the gallery: the app's service names, plus the
    pseudo-services of imported images."""
    return _SOURCE_LABELS.get(service) or (names or {}).get(service) or service


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """One saved image as the index knows it. ``path`` is relative to the images folder
    (POSIX separators), so the whole folder can move without touching the index."""

    id: int
    path: str
    service: str = ""
    model: str = ""
    prompt: str = ""
    negative: str = ""
    seed: int | None = None
    width: int = 0
    height: int = 0
    steps: int = 0
    cfg: float = 0.0
    sampler: str = ""
    scheduler: str = ""
    quality: str = ""
    provider: str = ""
    server: str = ""
    duration_s: float | None = None
    cost_usd: float | None = None
    created: str = ""  # ISO 8601 UTC
    created_ts: float = 0.0
    file_size: int = 0
    mtime_ns: int = 0
    favourite: bool = False
    tags: tuple[str, ...] = ()
    source: str = ""  # "studio" | "a1111" | "comfyui" | "" (no metadata)
    origin: str = ""  # "generated" (by this install) | "imported" (another tool, another install)
    set_name: str = ""  # the batch run's set it belongs to ("" = none)
    input_digests: tuple[str, ...] = ()  # input-store images it was made from (init, mask, references, controls)

    @property
    def has_inputs(self) -> bool:
        return bool(self.input_digests)

    @property
    def imported(self) -> bool:
        return self.origin == "imported"

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def title(self) -> str:
        text = " ".join(self.prompt.split())
        if not text:
            return self.name
        return text if len(text) <= 40 else text[:39] + "…"

    def replace(self, **changes: Any) -> ImageRecord:
        return dataclasses.replace(self, **changes)

    def fallback_request(self) -> GenerationRequest:
        """A request rebuilt from the columns, for images without this app's full metadata."""
        return GenerationRequest.from_dict({
            "prompt": self.prompt, "negative_prompt": self.negative, "service": self.service or "comfyui",
            "model": self.model, "width": self.width or 1024, "height": self.height or 1024,
            "steps": self.steps or 20, "cfg": self.cfg, "sampler": self.sampler or "euler",
            "scheduler": self.scheduler or "normal", "seed": self.seed,
            **({"quality": self.quality} if self.quality else {}),
        })


@dataclass(frozen=True, slots=True)
class ImageQuery:
    """What the gallery shows. Empty fields mean "any"."""

    text: str = ""
    service: str = ""
    model: str = ""
    since_ts: float | None = None  # created_ts >= since_ts
    until_ts: float | None = None  # created_ts < until_ts
    favourites_only: bool = False
    sort: SortOrder = "newest"
    set_name: str = ""  # one batch run's set

    def replace(self, **changes: Any) -> ImageQuery:
        return dataclasses.replace(self, **changes)

    def matches(self, rec: ImageRecord) -> bool:
        """Whether a freshly added record belongs in a view showing this query.

        Text matching is approximate (every word is a prefix of some prompt word), which
        is what FTS does for the same words; it only decides live inserts.
        """
        if self.service and rec.service != self.service:
            return False
        if self.model and rec.model != self.model:
            return False
        if self.set_name and rec.set_name != self.set_name:
            return False
        if self.favourites_only and not rec.favourite:
            return False
        if self.since_ts is not None and rec.created_ts < self.since_ts:
            return False
        if self.until_ts is not None and rec.created_ts >= self.until_ts:
            return False
        if self.text.strip():
            from studio_core.storage.search import words

            hay = words(" ".join((rec.prompt, " ".join(rec.tags))))
            for w in words(self.text):
                if not any(h.startswith(w) for h in hay):
                    return False
        return True


@dataclass(frozen=True, slots=True)
class ServiceStats:
    service: str
    count: int
    total_bytes: int


@dataclass(frozen=True, slots=True)
class IndexStats:
    count: int = 0
    total_bytes: int = 0
    per_service: tuple[ServiceStats, ...] = ()


@dataclass(frozen=True, slots=True)
class SpendSummary:
    """Estimated spend in US dollars from ``cost_usd`` of saved images.

    ``per_day`` and ``per_month`` are ``(provider, "YYYY-MM-DD" | "YYYY-MM", usd)``,
    newest first; ``today`` and ``this_month`` are totals over all providers (UTC dates).
    """

    today: float = 0.0
    this_month: float = 0.0
    total: float = 0.0
    per_day: tuple[tuple[str, str, float], ...] = ()
    per_month: tuple[tuple[str, str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    added: int = 0
    updated: int = 0
    removed: int = 0
    unreadable: tuple[str, ...] = ()  # relative paths of files that are not readable images

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


def iso_to_ts(created: str) -> float:
    if not created:
        return 0.0
    try:
        dt = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def ts_to_iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds")
