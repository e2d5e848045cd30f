"""When a server fails a job: try it elsewhere or not, and never save a result twice.

Neither SwarmUI nor ComfyUI-Distributed re-dispatches an in-flight job (scaleout.md 1.1,
1.5), so the pool does, with three guards kept here as plain data:

- :func:`decide` says whether an error is the server's fault (try another server, maybe
  refresh what it has) or the job's (a second server would fail the same way).
- :class:`ResultClaims` lets exactly one attempt save each image of a job. A server that
  was given up on may still finish and report; its image is then dropped, not saved again.
  Claims are per image index because a re-run uses the same seed and graph: an attempt
  that saved images 0–1 before its server died leaves 2–3 to the next attempt.
- :class:`OrphanLedger` remembers jobs left on a server that stopped answering, so they are
  cancelled there when it comes back instead of running for nobody.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from studio_core.errors import (
    AuthenticationFailed,
    JobTimedOut,
    MissingCredentials,
    MissingModels,
    NotAComfyServer,
    OutOfVram,
    ProviderUnavailable,
    RateLimited,
    RequestTimedOut,
    ServerError,
    StudioError,
    ValidationFailed,
)
from studio_core.pool.errors import CertificateMismatch

MAX_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class Decision:
    retry: bool  # send the job to another capable server
    exclude: bool = False  # never back to this server for this job
    refresh: bool = False  # re-read the server's /object_info: what it has changed
    server_down: bool = False  # mark the server offline (or idle, if it may be off)
    why: str = ""  # plain words for the notice


def decide(error: BaseException, *, attempt: int, max_attempts: int = MAX_ATTEMPTS) -> Decision:
    """What to do after ``attempt`` (1-based) failed with ``error``."""
    last = attempt >= max_attempts
    if isinstance(error, CertificateMismatch):
        return Decision(not last, exclude=True, server_down=True, why="its certificate was not the trusted one")
    if isinstance(error, NotAComfyServer):
        return Decision(not last, exclude=True, server_down=True, why="it did not answer like a ComfyUI server")
    if isinstance(error, (ProviderUnavailable, RequestTimedOut)):
        return Decision(not last, exclude=True, server_down=True, why="it stopped answering")
    if isinstance(error, (AuthenticationFailed, MissingCredentials)):
        return Decision(not last, exclude=True, why="it rejected the token")
    if isinstance(error, MissingModels) or (isinstance(error, ValidationFailed) and _mentions_missing_file(error)):
        return Decision(not last, exclude=True, refresh=True, why="it no longer has a model this job needs")
    if isinstance(error, OutOfVram):
        return Decision(not last, exclude=True, why="its GPU ran out of memory")
    if isinstance(error, (ServerError, RateLimited)):
        return Decision(not last, exclude=True, why="it had an internal error")
    if isinstance(error, JobTimedOut):
        return Decision(False, why="the job ran past its time limit")
    # The job's own fault (refused prompt, broken graph, a node's error): another server fails the same way.
    return Decision(False, why=error.user_message if isinstance(error, StudioError) else "an unexpected error")


def _mentions_missing_file(error: ValidationFailed) -> bool:
    return any("not in list" in p or "not on the server" in p.lower() for p in (*error.problems, str(error)))


def moved_notice(from_name: str, to_name: str, why: str) -> str:
    return f"'{from_name}' could not finish this job ({why}); it continues on '{to_name}'."


class ResultClaims:
    """First attempt to claim a job's image index may save it; later ones drop theirs."""

    def __init__(self, saved: Iterable[tuple[str, int]] = ()):
        # Images saved before a restart count as claimed: a resumed batch never saves them again.
        self._owner: dict[tuple[str, int], str] = {key: "saved" for key in saved}

    def claim(self, job_id: str, attempt_id: str, index: int = 0) -> bool:
        owner = self._owner.setdefault((job_id, index), attempt_id)
        return owner == attempt_id

    def release(self, job_id: str, attempt_id: str, index: int = 0) -> None:
        """The claiming attempt could not save after all (disk full): let another attempt's copy count."""
        if self._owner.get((job_id, index)) == attempt_id:
            del self._owner[(job_id, index)]

    def owner(self, job_id: str, index: int = 0) -> str | None:
        return self._owner.get((job_id, index))

    def claimed_indexes(self, job_id: str) -> frozenset[int]:
        return frozenset(i for (j, i) in self._owner if j == job_id)


class OrphanLedger:
    """Server-side job ids to cancel when their server answers again."""

    def __init__(self) -> None:
        self._by_server: dict[str, list[str]] = {}

    def add(self, server_id: str, server_job_id: str) -> None:
        if server_job_id:
            bucket = self._by_server.setdefault(server_id, [])
            if server_job_id not in bucket:
                bucket.append(server_job_id)

    def due(self, server_id: str) -> list[str]:
        """The ids to cancel on ``server_id`` now that it is back; each is handed out once."""
        return self._by_server.pop(server_id, [])

    def pending(self, server_id: str) -> tuple[str, ...]:
        return tuple(self._by_server.get(server_id, ()))
