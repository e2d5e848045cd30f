"""Which server runs which job: pure decisions, no I/O, no clock.

The rules, in the order they apply (scaleout.md 1.5/1.6, after SwarmUI's backend
selection):

1. **Capability**: only servers that have every model file and node class the job needs
   (and that have not already failed this job).
2. **User's order, owned before paid**: the user's own servers in the order listed; a paid
   endpoint is overflow, used only when ``allow_paid`` and no owned capable server has a
   free slot (or none has the model at all).
3. **Free slots**: at most ``running_slots + queued_slots`` jobs per server.
4. **Model affinity**: prefer the server whose last job used this model. It is weighed as
   the model load time it saves (``load_s``), so an idle server that must load beats a
   server with the model that is busy for longer than a load takes.
5. **Least busy**: the earliest estimated finish (work ahead, a model load if needed, and
   this job, at the server's measured speed). Affinity, then the user's order, break
   ties, so with equal idle servers the first listed is used first. When a server whose
   slots are full would still finish the job sooner than any free one, the job waits for
   it (the free slot goes to a job it suits better).

:func:`plan` applies these to the whole pending list in :func:`dispatch_order`: most
constrained first (fewest capable servers), then longest first, which keeps the end of a
batch short (Graham's LPT rule). :func:`steal` moves a job that still waits in one
server's queued slot to a server that has nothing to do and would finish it sooner.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from studio_core.pool.capabilities import Capabilities


@dataclass(frozen=True, slots=True)
class JobNeeds:
    job_id: str
    models: frozenset[str] = frozenset()
    nodes: frozenset[str] = frozenset()
    model: str = ""  # for affinity
    cost: float = 1.0  # work units (e.g. steps × megapixels); divided by a server's speed gives seconds
    priority: int = 1  # 0 = interactive (goes first), 1 = batch
    seq: int = 0  # submission order, the final tie-break
    exclude: frozenset[str] = frozenset()  # servers that already failed this job
    family: str = ""  # the speed bucket (see pool.speed): a server's pace differs per model family


@dataclass(frozen=True, slots=True)
class ServerView:
    """One server as the scheduler sees it at this moment (the pool builds these)."""

    id: str
    order: int  # position in the user's list
    capabilities: Capabilities
    running_slots: int = 1
    queued_slots: int = 1
    online: bool = True
    enabled: bool = True
    paid: bool = False
    running: int = 0  # jobs of ours running there
    queued: int = 0  # jobs of ours waiting there
    foreign: int = 0  # other clients' jobs in its queue (a shared server)
    busy_s: float = 0.0  # estimated seconds of work ahead of a new job
    last_model: str = ""
    speed: float = 1.0  # work units per second, measured
    load_s: float = 0.0  # estimated seconds to switch to another model
    speeds: tuple[tuple[str, float], ...] = ()  # (family, work units per second); ``speed`` for the rest

    @property
    def free_slots(self) -> int:
        return self.running_slots + self.queued_slots - self.running - self.queued - self.foreign

    @property
    def can_start_now(self) -> bool:
        return self.running + self.queued + self.foreign < self.running_slots

    def speed_for(self, job: JobNeeds) -> float:
        for family, speed in self.speeds:
            if family == job.family:
                return speed
        return self.speed

    def estimate_s(self, job: JobNeeds) -> float:
        switch = self.load_s if job.model and job.model != self.last_model else 0.0
        return switch + job.cost / max(self.speed_for(job), 1e-9)


@dataclass(frozen=True, slots=True)
class Choice:
    """Where a job goes, or why it waits (``server_id`` is None)."""

    server_id: str | None
    reason: str = ""  # "" | "wait" | "offline" | "paid_not_allowed" | "incapable" | "excluded" (tried everywhere)
    missing: tuple[str, ...] = ()  # for "incapable": what no enabled server has
    paid: bool = False


def capable(job: JobNeeds, server: ServerView) -> bool:
    return server.enabled and not server.capabilities.missing(job.models, job.nodes)


def finish_s(job: JobNeeds, s: ServerView) -> float:
    """Estimated seconds from now until ``job`` would be done on ``s``."""
    return s.busy_s + s.estimate_s(job)


def _rank(job: JobNeeds, s: ServerView) -> tuple:
    # Affinity is worth the load time it saves, which finish_s already counts; with an unknown
    # load time (0) it still decides between otherwise equal servers.
    return (round(finish_s(job, s), 6), not (job.model and job.model == s.last_model), s.order)


def choose(job: JobNeeds, servers: Sequence[ServerView], *, allow_paid: bool = False) -> Choice:
    able = [s for s in servers if capable(job, s)]
    if not able:
        lacks = [set(s.capabilities.missing(job.models, job.nodes)) for s in servers if s.enabled]
        nowhere = set.intersection(*lacks) if lacks else set(job.models | job.nodes)
        # When each item exists somewhere but no server has them all, name what the closest one lacks.
        missing = nowhere or (min(lacks, key=len) if lacks else set())
        return Choice(None, "incapable", tuple(sorted(missing)))
    if all(s.id in job.exclude for s in able):
        return Choice(None, "excluded")
    up = [s for s in able if s.online and s.id not in job.exclude]
    if not up:
        return Choice(None, "offline")
    owned = [s for s in up if not s.paid and s.free_slots > 0]
    if owned:
        best = min(owned, key=lambda s: _rank(job, s))
        full = [finish_s(job, s) for s in up if not s.paid and s.free_slots <= 0]
        if full and min(full) < finish_s(job, best):
            # A busy server would still finish it first: a job committed to a slow server's
            # queue cannot follow when the fast one frees up, which is what makes batch tails long.
            return Choice(None, "wait")
        return Choice(best.id)
    paid = [s for s in up if s.paid and s.free_slots > 0]
    if paid and allow_paid:
        return Choice(min(paid, key=lambda s: _rank(job, s)).id, paid=True)
    if paid and not any(not s.paid for s in up):
        return Choice(None, "paid_not_allowed")
    return Choice(None, "wait")


def dispatch_order(jobs: Iterable[JobNeeds], servers: Sequence[ServerView]) -> list[JobNeeds]:
    reach: dict[tuple[frozenset[str], frozenset[str]], int] = {}  # a batch has few distinct needs

    def key(j: JobNeeds) -> tuple:
        k = (j.models, j.nodes)
        if k not in reach:
            reach[k] = sum(1 for s in servers if capable(j, s))
        return (j.priority, reach[k], -j.cost, j.seq)

    return sorted(jobs, key=key)


def assign(view: ServerView, job: JobNeeds) -> ServerView:
    """The server's view after ``job`` was sent to it."""
    starts = view.can_start_now
    return dataclasses.replace(
        view,
        running=view.running + (1 if starts else 0),
        queued=view.queued + (0 if starts else 1),
        busy_s=view.busy_s + view.estimate_s(job),
        last_model=job.model or view.last_model,
    )


@dataclass(slots=True)
class Plan:
    assignments: list[tuple[str, str]] = field(default_factory=list)  # (job_id, server_id)
    waiting: dict[str, Choice] = field(default_factory=dict)  # job_id -> why it was not placed


def plan(pending: Iterable[JobNeeds], servers: Sequence[ServerView], *, allow_paid: bool = False) -> Plan:
    """Place as many pending jobs as the free slots allow; the rest say why they wait."""
    views = {s.id: s for s in servers}
    out = Plan()
    # Within one call slots only fill up, so a job that found no server makes every job with
    # the same needs and size wait too: remembering it keeps a call linear in the pending
    # jobs (it runs after every event).
    blocked: dict[tuple, Choice] = {}
    for job in dispatch_order(pending, servers):
        k = (job.models, job.nodes, job.exclude, job.model, job.cost, job.family)
        c = blocked.get(k) or choose(job, list(views.values()), allow_paid=allow_paid)
        if c.server_id is None:
            blocked[k] = c
            out.waiting[job.job_id] = c
            continue
        views[c.server_id] = assign(views[c.server_id], job)
        out.assignments.append((job.job_id, c.server_id))
    return out


def steal(idle: ServerView, queued_elsewhere: Iterable[tuple[JobNeeds, ServerView]]) -> JobNeeds | None:
    """A job waiting (not started) on another server that ``idle`` can run and would finish sooner.

    ``queued_elsewhere`` pairs each such job with the server it waits on (whose ``busy_s``
    includes the job). The job with the
    largest gain moves; the caller deletes it from the old queue (``POST /queue``
    ``{"delete": [...]}``) before sending it on, so it can never run twice.
    """
    if not idle.online or not idle.can_start_now or idle.paid:
        return None
    best: tuple[float, JobNeeds] | None = None
    for job, where in queued_elsewhere:
        if where.id == idle.id or idle.id in job.exclude or not capable(job, idle):
            continue
        there = where.busy_s  # counts the job itself: it waits behind everything else there
        here = finish_s(job, idle)
        gain = there - here
        if gain > 0 and (best is None or gain > best[0]):
            best = (gain, job)
    return best[1] if best else None
