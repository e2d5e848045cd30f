"""GUI-only state (window geometry, splitters, last tab): never part of core settings."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from studio_core.storage.atomic import atomic_write_text

log = logging.getLogger(__name__)


def load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("ui state unreadable (%s); starting fresh", exc)
        return {}


def save(path: Path, state: dict[str, Any]) -> None:
    try:
        atomic_write_text(path, json.dumps(state, indent=1))
    except Exception as exc:  # losing window geometry is not worth an error dialog
        log.warning("could not save ui state: %s", exc)
