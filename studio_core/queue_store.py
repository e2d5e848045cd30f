"""The persisted job queue: every unfinished request is on disk, so a crash loses none.

``<data>/queue.json`` holds the jobs submitted and not yet over (waiting or running),
rewritten atomically on each change by one writer thread, in order. At the next start
they come back as :class:`WaitingJob` s, "waiting — resume?": nothing is re-run without
the user saying so (a cloud job costs money each time it runs).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from studio_core.models import GenerationRequest
from studio_core.storage.atomic import atomic_write_text

log = logging.getLogger(__name__)

FILE = "queue.json"
VERSION = 1


@dataclass(frozen=True, slots=True)
class WaitingJob:
    """A request left unfinished last time. ``paid``: its service bills per image."""

    job_id: str
    request: GenerationRequest
    paid: bool
    submitted_at: str  # ISO 8601, UTC


class QueueStore:
    """Use from the asyncio loop; writes happen on its own thread, in submission order."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._jobs: dict[str, dict[str, Any]] = {}
        self._writer: concurrent.futures.ThreadPoolExecutor | None = None
        self._frozen = False
        self.write_error: str = ""

    def load(self) -> list[WaitingJob]:
        """Blocking: what the file holds (a damaged file is kept aside as ``.bad``)."""
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except OSError as exc:
            log.warning("queue file unreadable: %s", exc)
            return []
        try:
            data = json.loads(raw)
            jobs = data["jobs"]
            if not isinstance(jobs, list):
                raise ValueError("jobs is not a list")
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("queue file damaged (%s); kept as .bad", exc)
            try:
                self.path.replace(self.path.with_suffix(".json.bad"))
            except OSError:
                pass
            return []
        out = []
        for j in jobs:
            if isinstance(j, dict) and isinstance(j.get("request"), dict) and isinstance(j.get("job_id"), str):
                out.append(WaitingJob(j["job_id"], GenerationRequest.from_dict(j["request"]), bool(j.get("paid")),
                                      str(j.get("submitted_at", ""))))
                self._jobs[j["job_id"]] = j
        return out

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._jobs

    def put(self, job_id: str, request: GenerationRequest, *, paid: bool) -> None:
        if self._frozen:
            return
        self._jobs[job_id] = {"job_id": job_id, "request": request.to_dict(), "paid": paid,
                              "submitted_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        self._save()

    def drop(self, *job_ids: str) -> None:
        if self._frozen:
            return
        removed = [j for j in job_ids if self._jobs.pop(j, None) is not None]
        if removed:
            self._save()

    def freeze(self) -> None:
        """From now on keep the file as it is (closing with "keep the queue for next time":
        the jobs being stopped must stay listed)."""
        self._frozen = True

    def _save(self) -> None:
        text = json.dumps({"version": VERSION, "jobs": list(self._jobs.values())}, ensure_ascii=False, default=str)
        if self._writer is None:
            self._writer = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="queue-store")
        self._writer.submit(self._write, text)

    def _write(self, text: str) -> None:
        try:
            atomic_write_text(self.path, text)
            self.write_error = ""
        except Exception as exc:  # the jobs still run; the user hears of it through the core
            self.write_error = getattr(exc, "user_message", str(exc))
            log.error("could not save the queue: %s", self.write_error)

    async def flush(self) -> None:
        """Until every change made so far is on disk."""
        if self._writer is not None:
            await asyncio.get_running_loop().run_in_executor(self._writer, lambda: None)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None
