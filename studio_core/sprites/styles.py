"""Prompt styles: words and settings per asset type and art style, kept as editable data.

``resources/prompt_styles.json`` holds ``asset_types`` and ``styles``; each entry has a
``label``, ``prompt`` (added after the user's prompt), ``negative``, optional
``settings`` (GenerationRequest fields such as width/height/steps) and optional
``sprite`` hints for the sprite tools (``grid``, ``palette``, ``background``,
``tileable``). A user copy in the config folder, when given, overrides entries by key.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from studio_core.models import GenerationRequest
from studio_core.resources import resource_path

log = logging.getLogger(__name__)
STYLES_FILE = "prompt_styles.json"
_REQUEST_FIELDS = {"width", "height", "steps", "cfg", "sampler", "scheduler", "batch"}


@dataclass(frozen=True, slots=True)
class StyleEntry:
    key: str
    label: str
    prompt: str = ""
    negative: str = ""
    settings: tuple[tuple[str, Any], ...] = ()
    sprite: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class StyleBook:
    asset_types: tuple[StyleEntry, ...] = ()
    styles: tuple[StyleEntry, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    def asset_type(self, key: str) -> StyleEntry | None:
        return next((e for e in self.asset_types if e.key == key), None)

    def style(self, key: str) -> StyleEntry | None:
        return next((e for e in self.styles if e.key == key), None)


@dataclass(frozen=True, slots=True)
class StylePreset:
    """What the user picked in the StylePicker: apply it to a request with :func:`apply_preset`."""

    asset_type: str = ""
    style: str = ""

    @property
    def key(self) -> str:
        return f"{self.asset_type}/{self.style}"


def _entries(raw: Any, where: str, warnings: list[str]) -> list[StyleEntry]:
    out = []
    if not isinstance(raw, Mapping):
        warnings.append(f"{where}: not an object")
        return out
    for key, e in raw.items():
        if not isinstance(e, Mapping) or not isinstance(e.get("label", key), str):
            warnings.append(f"{where}.{key}: ignored (not an object with a label)")
            continue
        settings = {k: v for k, v in (e.get("settings") or {}).items() if k in _REQUEST_FIELDS}
        sprite = e.get("sprite") if isinstance(e.get("sprite"), Mapping) else {}
        out.append(StyleEntry(str(key), str(e.get("label", key)), str(e.get("prompt", "")), str(e.get("negative", "")),
                              tuple(sorted(settings.items())), tuple(sorted(sprite.items()))))
    return out


def load_styles(path: Path | None = None, *, user_file: Path | None = None) -> StyleBook:
    """Read the style book; damaged user files are reported in ``warnings``, never raised."""
    warnings: list[str] = []
    merged: dict[str, dict[str, Any]] = {"asset_types": {}, "styles": {}}
    for p in (path or resource_path(STYLES_FILE), user_file):
        if p is None or not Path(p).exists():
            continue
        try:
            data = json.loads(Path(p).read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("top level is not an object")
        except (OSError, ValueError) as exc:
            warnings.append(f"{Path(p).name}: {exc}")
            log.warning("prompt styles %s unreadable: %s", p, exc)
            continue
        for section in merged:
            if isinstance(data.get(section), Mapping):
                merged[section].update(data[section])
    return StyleBook(tuple(_entries(merged["asset_types"], "asset_types", warnings)),
                     tuple(_entries(merged["styles"], "styles", warnings)), tuple(warnings))


def _join(*parts: str) -> str:
    return ", ".join(p.strip().strip(",") for p in parts if p and p.strip())


def apply_preset(request: GenerationRequest, preset: StylePreset, book: StyleBook, *,
                 apply_settings: bool = True) -> GenerationRequest:
    """Add the preset's words to the prompt and negative prompt, and its settings."""
    entries = [e for e in (book.asset_type(preset.asset_type), book.style(preset.style)) if e]
    if not entries:
        return request
    prompt = _join(request.prompt, *(e.prompt for e in entries))
    negative = _join(request.negative_prompt, *(e.negative for e in entries))
    changes: dict[str, Any] = {"prompt": prompt, "negative_prompt": negative}
    if apply_settings:
        for e in entries:
            changes.update(dict(e.settings))
    return request.replace(**changes).with_options(style_preset=preset.key)


def sprite_hints(preset: StylePreset, book: StyleBook) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for e in (book.asset_type(preset.asset_type), book.style(preset.style)):
        if e:
            out.update(dict(e.sprite))
    return out
