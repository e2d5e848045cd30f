"""The "comfyui" service: every enabled server of the list as one Provider.

Each job is placed by :func:`studio_core.pool.scheduler.plan` (capability → the user's
order → free slots → model affinity → least busy; a paid endpoint only as overflow and
only when allowed). When its server dies, drops or fails in a way that is the server's
fault (:func:`studio_core.pool.failover.decide`), the job runs again on another capable
server with the same seed, and a JobNotice says where it went; :class:`ResultClaims`
lets only one attempt hand up each image, so nothing is saved twice. A job left on a
server that stopped answering is cancelled there when it answers again (OrphanLedger).

**Work stealing**: when a server becomes free, a job of ours still waiting (not started)
in another server's queue moves to it if :func:`scheduler.steal` says it would finish
sooner there: the job is deleted from the old queue, the server is asked again to confirm
it is gone (one that started meanwhile stays), and only then is it sent to the free
server, whose slot was held for it meanwhile. The estimates come from each server's
measured seconds per work unit per model family (:mod:`studio_core.pool.speed`).

Health is polled every ``poll_s`` seconds on the loop (never the GUI thread) and handed to
the listeners as a tuple of :class:`~studio_core.pool.member.ServerState`; the app
publishes it as ``PoolStateChanged``.

For callers written for one server (the status bar's VRAM, the background plan's node
list) the pool answers ``system_stats``/``object_info``/``list_models`` from its primary
server: the first in the list that answers.

API for other parts of the app (all on the asyncio loop):

- ``states()`` — the last known :class:`ServerState` of every entry;
- ``add_listener(cb)`` — ``cb(states)`` after every poll that changed something;
- ``refresh()`` — poll every server now and re-read what each can run;
- ``model_servers()`` — ``{model file: (server names…)}`` over the servers that answer;
- ``missing_everywhere(models)`` — what no enabled server has, before Generate.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import random
import time
from typing import Any, AsyncIterator, Callable, Iterable, Mapping, Sequence

from studio_core.errors import ProviderUnavailable, StudioError
from studio_core.models import (
    GenerationRequest,
    JobEvent,
    JobImage,
    JobNotice,
    JobStarted,
    ModelInfo,
    ProviderStatus,
    ServiceState,
)
from studio_core.pool import scheduler
from studio_core.pool.capabilities import Capabilities, needs_of_graph
from studio_core.pool.connection import SecretLookup
from studio_core.pool.errors import NoCapableServer
from studio_core.pool.failover import OrphanLedger, ResultClaims, decide, moved_notice
from studio_core.pool.member import ERROR, RUNNING, UNKNOWN, Member, ServerState, _Anything
from studio_core.pool.servers import ServerKind, ServerSpec
from studio_core.pool.speed import family_key, graph_units, seconds_per_unit, work_units

log = logging.getLogger(__name__)

POLL_S = 5.0
WAIT_RECHECK_S = 1.0  # a job waiting for a slot re-plans at least this often (states change between polls)
OVERRUN_LEFT = 0.25  # share of its estimate still counted for a job that ran past it
STEAL_NOTICE_AFTER_S = 30.0  # a move is worth a word only when the job had visibly waited this long


def steal_notice(from_name: str, to_name: str, waited_s: float) -> str | None:
    """What the user is told when a waiting job moved to a free server: nothing for a short
    wait (in a batch that happens all the time and the image records its server anyway)."""
    if waited_s < STEAL_NOTICE_AFTER_S:
        return None
    return f"This job was waiting behind others on '{from_name}'; it moved to '{to_name}', which was free."


class PoolProvider:
    id = "comfyui"
    display_name = "ComfyUI"

    def __init__(self, specs: Sequence[ServerSpec], *, secret: SecretLookup, timeout_s: float | None = None,
                 model: str = "", allow_paid: bool = False, poll_s: float = POLL_S, lost_server_grace_s: float = 5.0,
                 input_store: Any = None):
        from studio_core.providers.comfy import workflow

        self.model = model or workflow.DEFAULT_CHECKPOINT
        self.allow_paid = allow_paid
        self.poll_s = poll_s
        self.members = [Member(s, secret=secret, timeout_s=timeout_s, model=self.model,
                               lost_server_grace_s=lost_server_grace_s) for s in specs]
        self._input_store: Any = None
        self.input_store = input_store
        self.claims = ResultClaims()
        self.orphans = OrphanLedger()
        self._active: dict[str, tuple[Member, str]] = {}  # job id -> (member, attempt id)
        self._cancelled: set[str] = set()
        self._changed = asyncio.Event() if _has_loop() else None
        self._listeners: list[Callable[[tuple[ServerState, ...]], None]] = []
        self._poller: asyncio.Task | None = None
        self._last_published: tuple[ServerState, ...] | None = None
        self._seq = 0
        self._closed = False
        self._needs_of: dict[str, scheduler.JobNeeds] = {}  # job id -> its needs (for steal())
        self._server_job: dict[str, str] = {}  # job id -> prompt id where its current attempt is queued
        self._sent_at: dict[str, float] = {}  # job id -> when its current attempt was sent
        self._waiting: dict[str, scheduler.JobNeeds] = {}  # jobs in _acquire, not on any server yet
        self._moving: dict[str, Member] = {}  # job id -> the free server whose slot is held for it
        self._steals: set[asyncio.Task] = set()
        self._stay: set[str] = set()  # jobs whose current attempt could not be moved (it had started)

    # ---- pool API ---------------------------------------------------------------------

    @property
    def input_store(self) -> Any:
        """Where the images a request's inputs name are kept (the data folder's InputStore)."""
        return self._input_store

    @input_store.setter
    def input_store(self, store: Any) -> None:
        # The registry sets this after the factory built the pool (the factory has no data
        # folder); every member reads the images itself, so a job that moves to another
        # server uploads them there.
        self._input_store = store
        for m in self.members:
            m.use_input_store(store)

    def states(self) -> tuple[ServerState, ...]:
        return tuple(m.snapshot() for m in self.members)

    def add_listener(self, callback: Callable[[tuple[ServerState, ...]], None]) -> Callable[[], None]:
        self._listeners.append(callback)
        self.start_polling()
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    def start_polling(self) -> None:
        """Start the health poller (idempotent; needs a running loop)."""
        if self._closed or (self._poller is not None and not self._poller.done()):
            return
        try:
            self._poller = asyncio.get_running_loop().create_task(self._poll_loop(), name="pool-health")
        except RuntimeError:
            pass

    async def refresh(self) -> tuple[ServerState, ...]:
        """Poll every server now and re-read every server's /object_info."""
        for m in self.members:
            m.caps_stale = True
        await self._poll_all()
        return self.states()

    def model_servers(self) -> dict[str, tuple[str, ...]]:
        out: dict[str, list[str]] = {}
        for m in self.members:
            models = getattr(m.caps, "models", None)
            if m.usable and models is not None:
                for name in models:
                    out.setdefault(name, []).append(m.name)
        return {k: tuple(v) for k, v in sorted(out.items())}

    def missing_everywhere(self, models: Iterable[str]) -> tuple[str, ...]:
        """Models no enabled server with known capabilities has ("" servers unknown → nothing missing)."""
        known = [m.caps for m in self.members if m.usable and isinstance(m.caps, Capabilities)]
        if not known or any(m.usable and not isinstance(m.caps, Capabilities) for m in self.members):
            return ()
        return tuple(sorted(x for x in models if all(x not in c.models for c in known)))

    # ---- health -----------------------------------------------------------------------

    async def _poll_loop(self) -> None:
        while not self._closed:
            try:
                await self._poll_all()
            except Exception:  # the poller must outlive any one bad reply
                log.exception("pool health poll")
            await asyncio.sleep(self.poll_s)

    async def _poll_all(self) -> None:
        members = [m for m in self.members if m.usable]
        results = await asyncio.gather(*(self._poll_one(m) for m in members), return_exceptions=True)
        for m, r in zip(members, results):
            if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError):
                log.warning("polling %s: %r", m.name, r)
        self._publish()

    async def _poll_one(self, m: Member) -> None:
        back = await m.poll()
        if back or m.online:
            for prompt_id in self.orphans.due(m.id):
                log.info("cancelling job %s left on %s during its outage", prompt_id, m.name)
                await m.provider.cancel_prompt(prompt_id)
        if back:
            self._wake()

    def _publish(self) -> None:
        snap = self.states()
        if snap == self._last_published:
            return
        self._last_published = snap
        self._wake()
        for cb in list(self._listeners):
            try:
                cb(snap)
            except Exception:
                log.exception("pool state listener")

    def _wake(self) -> None:
        if self._changed is not None:
            self._changed.set()

    async def _ensure_known(self) -> None:
        unknown = [m for m in self.members if m.usable and m.state == UNKNOWN]
        if unknown:
            await asyncio.gather(*(self._poll_one(m) for m in unknown), return_exceptions=True)
            self._publish()
        self.start_polling()

    # ---- facade for single-server callers ------------------------------------------------

    def _primary(self) -> Member:
        comfy = [m for m in self.members if m.usable and m.spec.kind is ServerKind.comfyui]
        if not comfy:
            broken = next((m for m in self.members if m.config_error is not None), None)
            if broken is not None:
                raise broken.config_error
            raise ProviderUnavailable("no ComfyUI server in the pool",
                                      user_message="No ComfyUI server is enabled. Add or enable one in Settings → ComfyUI servers.")
        return next((m for m in comfy if m.online), comfy[0])

    @property
    def base_url(self) -> str:
        try:
            return self._primary().spec.url
        except StudioError:
            return ""

    @property
    def client(self):
        return self._primary().provider.client

    async def system_stats(self) -> dict[str, Any]:
        await self._ensure_known()
        return await self._primary().provider.system_stats()

    async def queue_info(self) -> dict[str, int]:
        """The whole pool's queue: the status bar sums every server that answers."""
        running = pending = 0
        counted = False
        for m in self.members:
            if m.usable and m.online and m.spec.kind is ServerKind.comfyui:
                q = await m.provider.queue_info()
                m.queue_length = q["running"] + q["pending"]
                running, pending, counted = running + q["running"], pending + q["pending"], True
        if not counted:
            return await self._primary().provider.queue_info()
        return {"running": running, "pending": pending}

    async def object_info(self, *, refresh: bool = False) -> dict[str, Any]:
        await self._ensure_known()
        return await self._primary().provider.object_info(refresh=refresh)

    def samplers(self) -> tuple[str, ...]:
        return self._primary().provider.samplers()

    def schedulers(self) -> tuple[str, ...]:
        return self._primary().provider.schedulers()

    async def prepare(self, request: GenerationRequest) -> tuple[dict[str, Any], int | None]:
        return await self._primary().provider.prepare(request)

    async def list_models(self) -> tuple[ModelInfo, ...]:
        await self._ensure_known()
        seen: dict[str, ModelInfo] = {}
        where = self.model_servers()
        for m in self.members:
            if not (m.usable and (m.online or len(self.members) == 1)):
                continue
            try:
                models = await m.provider.list_models()
            except StudioError as exc:
                if len(self.members) == 1:
                    raise
                log.info("no model list from %s: %s", m.name, exc)
                continue
            for info in models:
                if info.id not in seen:
                    names = where.get(info.id, ())
                    note = info.notes if len(self.members) == 1 or not names else \
                        "; ".join(x for x in (info.notes, "on " + ", ".join(names)) if x)
                    seen[info.id] = dataclasses.replace(info, notes=note)
        return tuple(seen.values())

    async def check(self) -> ProviderStatus:
        usable = [m for m in self.members if m.usable]
        if not usable:
            if any(m.config_error for m in self.members):
                return ProviderStatus(ServiceState.error, next(m.message for m in self.members if m.config_error))
            return ProviderStatus(ServiceState.error, "No ComfyUI server is enabled. Add one in Settings → ComfyUI servers.")
        statuses = await asyncio.gather(*(m.provider.check() for m in usable))
        for m, st in zip(usable, statuses):
            if st.state is ServiceState.ready:
                if not m.online:
                    m.state, m.message = RUNNING, ""
                    m.caps_stale = True
            elif st.state is ServiceState.unreachable:
                m.went_away(ProviderUnavailable(st.message, user_message=st.message))
            else:
                m.state, m.message = ERROR, st.message
        self._publish()
        self.start_polling()
        if len(usable) == 1:
            return statuses[0]
        ready = [(m, st) for m, st in zip(usable, statuses) if st.state is ServiceState.ready]
        if not ready:
            worst = next((st for st in statuses if st.state is ServiceState.error), statuses[0])
            names = ", ".join(m.name for m in usable)
            return ProviderStatus(worst.state, f"None of the ComfyUI servers answers ({names}). {worst.message}",
                                  worst.details)
        first = ready[0][1]
        details = dict(first.details)
        details["pool_ready"], details["pool_size"] = len(ready), len(usable)
        details["queue_length"] = sum(int(st.detail("queue_length") or 0) for _, st in ready)
        return ProviderStatus(ServiceState.ready, f"{len(ready)} of {len(usable)} servers ready · {first.message}",
                              tuple(details.items()))

    # ---- placing a job ------------------------------------------------------------------

    def _needs(self, request: GenerationRequest, job_id: str, exclude: Iterable[str]) -> scheduler.JobNeeds:
        models: frozenset[str] = frozenset()
        nodes: frozenset[str] = frozenset()
        main = request.model or self.model
        text = request.workflow.graph if request.workflow else None
        units = work_units(request.steps, request.width, request.height, request.batch)
        if text:
            try:
                from studio_core.providers.comfy import custom_workflow

                graph = custom_workflow.parse(text)
                g = needs_of_graph(graph)
                models, nodes, main = g.models, g.nodes, g.main_model
                units = graph_units(graph)
            except StudioError:
                pass  # the server that gets it says what is wrong with the graph
        else:
            # The LoRAs and named ControlNets of the image inputs are files the server must have too.
            extra = [lo.name for lo in request.inputs.active_loras] + [c.model for c in request.inputs.controls if c.model]
            models = frozenset({main, *extra})
        return scheduler.JobNeeds(job_id, models=models, nodes=nodes, model=main, exclude=frozenset(exclude),
                                  cost=units, family=family_key(main))

    def _view(self, m: Member, order: int, now: float | None = None) -> scheduler.ServerView:
        now = time.monotonic() if now is None else now
        books = [x.speed for x in self.members]
        families = {n.family for n in self._needs_of.values()} | {n.family for n in self._waiting.values()}
        spu = {f: seconds_per_unit(m.speed, f, books) for f in families}
        ours = len(m.jobs)
        foreign = max(0, m.queue_length - ours) if m.spec.kind is ServerKind.comfyui else 0
        foreign = min(foreign, m.spec.slots)
        busy = 0.0
        for i, jid in enumerate(m.jobs):
            needs = self._needs_of.get(jid)
            if needs is None:
                continue
            est = needs.cost * spu.get(needs.family, seconds_per_unit(m.speed, needs.family, books))
            if i < m.spec.running_slots and jid in self._sent_at:
                # What is left of a running job; one past its estimate is not done yet, only late.
                est = max(est - (now - m.run_start(self._sent_at[jid])), est * OVERRUN_LEFT)
            busy += est
        typical = sum(n.cost for n in self._needs_of.values()) / len(self._needs_of) if self._needs_of else 1.0
        overall = seconds_per_unit(m.speed, m.last_model and family_key(m.last_model), books)
        busy += foreign * typical * overall  # other clients' jobs: sized like ours, at this server's pace
        # A server that answers but whose models are unknown yet may still run it; its own check decides.
        caps = m.caps if m.caps is not None else _Anything()  # never read: "offline" says more than "incapable"
        return scheduler.ServerView(
            id=m.id, order=order, capabilities=caps, running_slots=m.spec.running_slots,
            queued_slots=m.spec.queued_slots, online=m.online, paid=m.spec.paid, enabled=m.usable,
            running=min(ours, m.spec.running_slots), queued=max(0, ours - m.spec.running_slots),
            foreign=foreign, busy_s=busy, last_model=m.last_model, speed=1.0 / overall,
            speeds=tuple((f, 1.0 / x) for f, x in sorted(spu.items())))

    async def _acquire(self, needs: scheduler.JobNeeds, job_id: str) -> tuple[Member, bool]:
        """A member with a free slot for ``needs`` (the slot is taken); waits while all are full."""
        await self._ensure_known()
        self._waiting[job_id] = needs
        try:
            return await self._acquire_slot(needs, job_id)
        finally:
            self._waiting.pop(job_id, None)

    async def _acquire_slot(self, needs: scheduler.JobNeeds, job_id: str) -> tuple[Member, bool]:
        by_id = {m.id: m for m in self.members}
        reprobed = False
        while True:
            if job_id in self._cancelled:
                raise asyncio.CancelledError
            now = time.monotonic()
            views = [self._view(m, i, now) for i, m in enumerate(self.members)]
            choice = scheduler.choose(needs, views, allow_paid=self.allow_paid)
            if choice.server_id is not None:
                m = by_id[choice.server_id]
                m.jobs.append(job_id)
                return m, choice.paid
            if choice.reason in ("offline", "incapable") and not reprobed:
                reprobed = True  # a server may have started or got the model since the last poll
                await self._poll_all()
                continue
            if choice.reason == "offline" or choice.reason == "incapable":
                fallback = self._only_server(needs)
                if fallback is not None:  # one server: let it give its own, familiar error
                    fallback.jobs.append(job_id)
                    return fallback, False
            if choice.reason == "offline":
                names = ", ".join(f"'{m.name}'" for m in self.members if m.usable)
                from studio_core.providers.comfy.client import START_HINT

                raise ProviderUnavailable("no capable server answers", user_message=(
                    f"None of the ComfyUI servers that can run this job answers ({names}). {START_HINT}"))
            if choice.reason == "incapable":
                what = ", ".join(choice.missing) or "what this job needs"
                raise NoCapableServer(f"missing everywhere: {what}", missing=choice.missing, user_message=(
                    f"No enabled server has {what}. Install it on a server, or pick a model that one of them has."))
            if choice.reason == "paid_not_allowed":
                raise NoCapableServer("only a paid endpoint can run this job", user_message=(
                    "Only a paid endpoint can run this job, and paid overflow is off. Allow it in Settings → "
                    "ComfyUI servers, or install the model on one of your own servers."))
            if choice.reason == "excluded":
                raise ProviderUnavailable("every capable server failed this job")
            # "wait": every capable server is full; a finished job or a poll frees a slot.
            self._changed = self._changed or asyncio.Event()
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), WAIT_RECHECK_S)
            except asyncio.TimeoutError:
                pass

    def _only_server(self, needs: scheduler.JobNeeds) -> Member | None:
        usable = [m for m in self.members if m.usable and m.id not in needs.exclude and not m.spec.paid]
        return usable[0] if len(usable) == 1 and sum(1 for m in self.members if m.usable) == 1 else None

    def _release(self, m: Member, job_id: str) -> None:
        if job_id in m.jobs:
            m.jobs.remove(job_id)
        self._wake()
        self._offer_free_slot(m)

    # ---- work stealing --------------------------------------------------------------------

    def _offer_free_slot(self, idle: Member) -> None:
        if self._closed or not _has_loop():
            return
        task = asyncio.get_running_loop().create_task(self._steal_for(idle), name=f"pool-steal-{idle.id}")
        self._steals.add(task)
        task.add_done_callback(self._steals.discard)

    def _steal_candidates(self, idle: Member, now: float) -> list[tuple[scheduler.JobNeeds, scheduler.ServerView]]:
        out = []
        for order, m in enumerate(self.members):
            if m is idle or not hasattr(m.provider, "withdraw"):
                continue
            view = None
            for jid in m.jobs:
                active, prompt_id = self._active.get(jid), self._server_job.get(jid)
                if (active is None or active[0] is not m or not prompt_id or jid in self._moving
                        or jid in self._cancelled or jid in self._stay or jid not in self._needs_of):
                    continue
                if not m.provider.job_waiting(active[1], prompt_id):
                    continue  # started (or ending): it stays where it is
                view = view or self._view(m, order, now)
                out.append((self._needs_of[jid], view))
        return out

    async def _steal_for(self, idle: Member) -> None:
        """Give ``idle``'s free slot to a job waiting on a slower server, if one would finish sooner."""
        if self._closed or not idle.online or idle.spec.paid or idle.spec.kind is not ServerKind.comfyui:
            return
        if not any(self._server_job.get(j) for m in self.members if m is not idle for j in m.jobs):
            return  # nothing of ours waits anywhere: spare the server a question
        try:
            # The last poll's queue length may still count the job that just ended, or miss
            # another client's job that arrived since: ask, a steal needs the server truly free.
            q = await idle.provider.queue_info()
            idle.queue_length = q["running"] + q["pending"]
        except StudioError:
            return
        if self._closed:
            return
        now = time.monotonic()
        order = self.members.index(idle)
        view = self._view(idle, order, now)
        if not view.can_start_now:
            return
        # A job not yet on any server takes a free slot first: moving one would only swap them.
        if any(scheduler.capable(n, view) and idle.id not in n.exclude for n in self._waiting.values()):
            return
        # A candidate that turns out to have started stays; the next best is tried.
        for _ in range(len(self.members) * 4):
            job = scheduler.steal(view, self._steal_candidates(idle, now))
            if job is None or self._closed or await self._take(job, idle):
                return
            view = self._view(idle, order, time.monotonic())
            if not view.can_start_now:
                return

    async def _take(self, job: scheduler.JobNeeds, idle: Member) -> bool:
        """Withdraw ``job`` from the server it waits on, for ``idle`` (True when it moves)."""
        holder, attempt_id = self._active[job.job_id]
        prompt_id = self._server_job[job.job_id]
        idle.jobs.append(job.job_id)  # held while the old server lets go, so no new job takes it
        self._moving[job.job_id] = idle
        try:
            moved = await holder.provider.withdraw(attempt_id, prompt_id)
        except StudioError as exc:
            log.info("could not take job %s off %s: %s", job.job_id, holder.name, exc)
            moved = False
        if moved:
            log.info("job %s moves from %s to the free server %s", job.job_id, holder.name, idle.name)
            return True  # generate() sees the attempt end and runs the job on idle
        self._stay.add(job.job_id)  # asked once for this attempt; asking again would only repeat the answer
        if self._moving.get(job.job_id) is idle:
            del self._moving[job.job_id]
            if job.job_id in idle.jobs:
                idle.jobs.remove(job.job_id)
            self._wake()
        return False

    # ---- Provider ----------------------------------------------------------------------

    async def generate(self, request: GenerationRequest, *, job_id: str, inputs: Any = None) -> AsyncIterator[JobEvent]:
        # One seed for every attempt: a job re-run elsewhere makes the same image.
        seed = request.seed if request.seed is not None else random.randrange(2**32)
        request = request.replace(seed=seed)
        exclude: set[str] = set()
        attempt = 0
        started = False
        moved: tuple[str, str] | None = None  # (from server, why) for the notice once the next one is known
        stolen_by: Member | None = None  # a free server that took this job from another's queue; slot held
        last_error: StudioError | None = None
        try:
            while True:
                attempt += 1
                needs = self._needs(request, job_id, exclude)
                self._needs_of[job_id] = needs
                if stolen_by is not None:
                    member, stolen_by = stolen_by, None
                    if job_id in self._cancelled:  # cancelled while it moved
                        self._release(member, job_id)
                        raise asyncio.CancelledError
                else:
                    try:
                        member, _paid = await self._acquire(needs, job_id)
                    except ProviderUnavailable:
                        if last_error is not None:
                            raise last_error from None
                        raise
                    except NoCapableServer:
                        if last_error is not None:
                            raise last_error from None
                        raise
                if moved is not None:
                    yield JobNotice(job_id, moved_notice(moved[0], member.name, moved[1]))
                    moved = None
                attempt_id = f"{job_id}~{attempt}"
                self._active[job_id] = (member, attempt_id)
                server_job = ""
                t0 = self._sent_at[job_id] = time.monotonic()
                ran = True  # False when the attempt was taken off the queue before it ran
                try:
                    # Each attempt uploads the job's input images to its own server.
                    extra = {"inputs": inputs} if inputs is not None else {}
                    async for event in member.provider.generate(self._for(member, request), job_id=attempt_id, **extra):
                        if isinstance(event, JobStarted):
                            server_job = self._server_job[job_id] = event.server_job_id
                            if not started:
                                started = True
                                yield JobStarted(job_id, server_job_id=server_job)
                            continue
                        if isinstance(event, JobImage):
                            if not self.claims.claim(job_id, attempt_id, event.index):
                                continue  # an earlier attempt already handed this image up
                            yield dataclasses.replace(event, job_id=job_id, info=_with_server(event.info, member))
                            continue
                        yield dataclasses.replace(event, job_id=job_id)
                    taker = self._moving.pop(job_id, None)
                    if taker is not None:
                        # Withdrawn from this server's queue before it started: it runs on the free one.
                        ran = False
                        if job_id in self._cancelled:
                            self._release(taker, job_id)
                            return
                        note = steal_notice(member.name, taker.name, time.monotonic() - t0)
                        if note:
                            yield JobNotice(job_id, note)
                        stolen_by = taker
                        continue
                    now = time.monotonic()
                    member.record_job(needs.family, needs.cost, t0, now)
                    member.last_model = needs.model
                    return
                except StudioError as exc:
                    if job_id in self._cancelled:
                        raise
                    d = decide(exc, attempt=attempt)
                    if d.server_down:
                        member.went_away(exc) if not _is_config(exc) else setattr(member, "state", ERROR)
                        self.orphans.add(member.id, server_job)
                        self._publish()
                    if d.refresh:
                        member.caps_stale = True
                        asyncio.ensure_future(member.refresh_capabilities())
                    if not d.retry:
                        raise
                    log.info("job %s: %s failed (%s); trying another server", job_id, member.name, exc)
                    exclude.add(member.id)
                    last_error, moved = exc, (member.name, d.why)
                finally:
                    if ran:
                        member.job_ended(time.monotonic())
                    taker = self._moving.pop(job_id, None) if stolen_by is None else None
                    if taker is not None:  # the attempt ended otherwise while a free slot was held for it
                        if job_id in taker.jobs:
                            taker.jobs.remove(job_id)
                    self._active.pop(job_id, None)
                    self._server_job.pop(job_id, None)
                    self._stay.discard(job_id)
                    self._release(member, job_id)
        finally:
            if stolen_by is not None and job_id in stolen_by.jobs:  # closed while a slot was held for it
                self._release(stolen_by, job_id)
            self._cancelled.discard(job_id)
            self._needs_of.pop(job_id, None)
            self._sent_at.pop(job_id, None)

    def _for(self, member: Member, request: GenerationRequest) -> GenerationRequest:
        # The model the scheduler placed the job by, whichever server builds the graph.
        return request if request.model or request.workflow is not None else request.replace(model=self.model)

    async def cancel(self, job_id: str) -> None:
        self._cancelled.add(job_id)
        self._wake()
        active = self._active.get(job_id)
        if active is not None:
            member, attempt_id = active
            await member.provider.cancel(attempt_id)

    async def aclose(self) -> None:
        self._closed = True
        for task in list(self._steals):
            task.cancel()
        if self._poller is not None:
            self._poller.cancel()
            try:
                await self._poller
            except (asyncio.CancelledError, Exception):
                pass
        for m in self.members:
            try:
                await m.aclose()
            except Exception:
                log.exception("closing %s", m.name)


def _with_server(info: tuple[tuple[str, Any], ...], m: Member) -> tuple[tuple[str, Any], ...]:
    """The image records which server made it: name and address (the gallery's server column)."""
    rest = tuple((k, v) for k, v in info if k not in ("server", "server_name", "server_url"))
    return rest + (("server", f"{m.name} ({m.spec.url})"), ("server_name", m.name), ("server_url", m.spec.url))


def _is_config(exc: StudioError) -> bool:
    from studio_core.errors import NotAComfyServer
    from studio_core.pool.errors import CertificateMismatch

    return isinstance(exc, (NotAComfyServer, CertificateMismatch))


def _has_loop() -> bool:
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        return False


def create(settings: Any, secrets: Any = None) -> PoolProvider:
    """The service factory: the pool of ``settings``' server list (no I/O here)."""
    from studio_core.pool.server_list import pool_entries
    from studio_core.providers.comfy import workflow

    lookup: SecretLookup = (lambda name: secrets.get(name)) if secrets is not None else (lambda name: None)
    return PoolProvider(pool_entries(settings), secret=lookup,
                        model=getattr(settings, "comfy_model", "") or workflow.DEFAULT_CHECKPOINT,
                        allow_paid=bool(getattr(settings, "pool_allow_paid", False)))


def fingerprint(settings: Any) -> str:
    """What the "comfyui" provider depends on: rebuilt when the list or an address changes."""
    from studio_core.pool.server_list import pool_entries

    return json.dumps([[s.to_dict() for s in pool_entries(settings)], getattr(settings, "comfy_model", ""),
                       bool(getattr(settings, "pool_allow_paid", False))], sort_keys=True, default=str)
