"""The recovery folder: bytes of finished images that could not be saved, kept on disk at once.

A failed save (disk full, folder gone, a permissions change) must not leave an image only
in memory, where closing the app or a crash would lose it. Each kept image is two files in
``<data>/recovery``: ``<id>.bin`` (the bytes as the service sent them) and ``<id>.json``
(request, seed, provider facts, why the save failed). The JSON is written last, so a
listing only ever shows complete pairs. The functions block (disk); call them in a thread.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from studio_core.models import GenerationRequest, JobImage
from studio_core.storage.atomic import atomic_write_bytes, atomic_write_text

log = logging.getLogger(__name__)

FOLDER = "recovery"


@dataclass(frozen=True, slots=True)
class RecoveredImage:
    """One kept image, as listed for the user ("Saved" tab: offered back)."""

    unsaved_id: str
    job_id: str
    request: GenerationRequest
    seed: int | None
    reason: str  # why the save failed, in plain words
    kept_at: str  # ISO 8601, UTC
    size: int


def folder_for(data_dir: Path) -> Path:
    return Path(data_dir) / FOLDER


class RecoveryStore:
    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def _bin(self, unsaved_id: str) -> Path:
        return self.folder / f"{unsaved_id}.bin"

    def _meta(self, unsaved_id: str) -> Path:
        return self.folder / f"{unsaved_id}.json"

    def keep(self, unsaved_id: str, image: JobImage, request: GenerationRequest, reason: str) -> Path:
        """Blocking: write the bytes and what made them. Raises StorageError if even this fails."""
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self._bin(unsaved_id), image.data)
        meta = {"unsaved_id": unsaved_id, "job_id": image.job_id, "request": request.to_dict(), "seed": image.seed,
                "index": image.index, "mime": image.mime, "info": dict(image.info),
                "extra_text": dict(image.extra_text), "reason": reason,
                "kept_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        atomic_write_text(self._meta(unsaved_id), json.dumps(meta, ensure_ascii=False, default=str))
        return self._bin(unsaved_id)

    def _read_meta(self, path: Path) -> dict[str, Any] | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("recovery entry %s unreadable: %s", path.name, exc)
            return None
        return data if isinstance(data, dict) and isinstance(data.get("request"), dict) else None

    def list(self) -> list[RecoveredImage]:
        """Blocking: every complete kept image, oldest first."""
        if not self.folder.is_dir():
            return []
        out = []
        for meta_path in sorted(self.folder.glob("*.json")):
            uid = meta_path.stem
            data = self._read_meta(meta_path)
            bin_path = self._bin(uid)
            if data is None or not bin_path.exists():
                continue
            seed = data.get("seed")
            out.append(RecoveredImage(uid, str(data.get("job_id", "")), GenerationRequest.from_dict(data["request"]),
                                      seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
                                      str(data.get("reason", "")), str(data.get("kept_at", "")), bin_path.stat().st_size))
        out.sort(key=lambda r: r.kept_at)
        return out

    def load(self, unsaved_id: str) -> tuple[JobImage, GenerationRequest]:
        """Blocking: the image and request as they were when the save failed."""
        data = self._read_meta(self._meta(unsaved_id))
        if data is None:
            raise KeyError(unsaved_id)
        raw = self._bin(unsaved_id).read_bytes()
        info = data.get("info") if isinstance(data.get("info"), dict) else {}
        extra = data.get("extra_text") if isinstance(data.get("extra_text"), dict) else {}
        seed = data.get("seed")
        image = JobImage(str(data.get("job_id", "")), raw, mime=str(data.get("mime", "image/png")),
                         seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
                         index=int(data.get("index", 0) or 0),
                         extra_text=tuple(sorted((str(k), str(v)) for k, v in extra.items())),
                         info=tuple(sorted((str(k), v) for k, v in info.items())))
        return image, GenerationRequest.from_dict(data["request"])

    def forget(self, unsaved_id: str) -> None:
        """Blocking: drop a kept image (saved after all, or discarded). The JSON goes first,
        so a half-done removal never lists an entry whose image is already in the gallery."""
        for path in (self._meta(unsaved_id), self._bin(unsaved_id)):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
