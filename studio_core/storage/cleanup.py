"""Storage care: free-space checks, clean-up proposals, sending files to the trash."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from studio_core.paths import AppPaths
from studio_core.storage.records import ImageRecord

log = logging.getLogger(__name__)


def free_space_mb(folder: Path) -> float | None:
    """Free megabytes on the disk holding ``folder`` (None if it cannot be told)."""
    p = Path(folder)
    while not p.exists() and p.parent != p:
        p = p.parent
    try:
        return shutil.disk_usage(p).free / (1024 * 1024)
    except OSError:
        return None


def disk_space_ok(paths: AppPaths, min_mb: float) -> bool:
    """False when the images disk has less than ``min_mb`` free; the job queue asks this
    before saving and warns. Blocking (one statvfs); cheap enough for the loop thread."""
    if min_mb <= 0:
        return True
    free = free_space_mb(paths.images)
    return free is None or free >= min_mb


def low_disk_message(paths: AppPaths, min_mb: float) -> str | None:
    free = free_space_mb(paths.images)
    if free is None or min_mb <= 0 or free >= min_mb:
        return None
    return (f"Only {free:.0f} MB free on the disk that holds your images. New images may fail to save;"
            " use Clean up… in the Saved tab or free some space.")


@dataclass(frozen=True, slots=True)
class CleanupProposal:
    records: tuple[ImageRecord, ...]

    @property
    def total_bytes(self) -> int:
        return sum(r.file_size for r in self.records)


@dataclass(frozen=True, slots=True)
class TrashResult:
    trashed: tuple[int, ...]  # record ids whose files went to the trash (or were already gone)
    problems: tuple[str, ...]


def trash_files(images: Path, records: Sequence[ImageRecord]) -> TrashResult:
    """Send the records' files to the operating system's trash. Blocking.

    A file already gone counts as trashed (its row should go too); a file that cannot be
    trashed stays, with a line in ``problems``, and its row stays as well.
    """
    from send2trash import send2trash
    from send2trash.exceptions import TrashPermissionError

    done, problems = [], []
    for rec in records:
        p = Path(images) / rec.path
        if not p.exists():
            done.append(rec.id)
            continue
        try:
            send2trash(str(p))
            done.append(rec.id)
        except (OSError, TrashPermissionError) as exc:
            log.warning("trash %s failed: %s", p, exc)
            problems.append(f"{rec.name}: {getattr(exc, 'strerror', None) or exc}")
    return TrashResult(tuple(done), tuple(problems))


def human_size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"
