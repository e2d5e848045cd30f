"""The pool scheduler at scale, by simulation, against the best any scheduler could do.

    python benchmarks/bench_scheduler.py [--scale 0.02] [--sizes 1,2,4,8,16] [--jobs 200]

Each server is an in-process fake that follows ComfyUI's protocol where it matters to
scheduling: ``/object_info`` lists its checkpoints, ``POST /prompt`` validates the graph
against them (400 ``prompt_outputs_failed_validation`` with ``value_not_in_list``, as a
real server answers) and appends to one FIFO queue, ``GET /queue`` reports running and
pending prompts, ``POST /queue {"delete": [...]}`` removes a pending one, and the
websocket sends ``execution_start``, ``executing``, ``progress``, ``executed`` and the
final ``executing`` with ``node: null``. Switching checkpoints costs a load time, as on a
GPU. Servers differ in speed (1.0, 0.6, 1.5, 0.8 images/s of work, repeating) and in
models: every server has the SD1.5 checkpoint, even-numbered ones SDXL, every fourth one
FLUX. The 200 jobs mix sprites (2–4 s of work, SD1.5), SDXL scenes (6 s) and FLUX
portraits (10 s), dealt in a fixed pseudo-random order. Times are simulated seconds
scaled by ``--scale`` real seconds each.

The dispatcher is the pool's loop in miniature: on every event it asks
:func:`studio_core.pool.scheduler.plan` where pending jobs go (1 running + 1 queued per
server) and lets an idle server :func:`~studio_core.pool.scheduler.steal` a job still
waiting in another server's queue. Server speeds are not given to it: like the pool, it
learns them per server and model family from measured job times
(:mod:`studio_core.pool.speed`), starting from the same guess for every server;
``--oracle`` hands it the true speeds instead, for comparison.

**Ideal** is a lower bound no schedule can beat: the jobs as divisible work on servers of
known speed, with no model loads. With eligibility, that bound is the largest, over every
set J of job kinds, of work(J) ÷ speed(servers able to run any of J) (Hall's condition
for the transport problem), and at least the longest single job on its fastest server;
plus one model load, which every server pays before its first job.
Goal: makespan within 10 % of it at every size, and scheduler time (plan + steal) at
most 2 ms per job.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from studio_core.pool import capabilities as caps  # noqa: E402
from studio_core.pool.scheduler import JobNeeds, ServerView, plan, steal  # noqa: E402
from studio_core.pool.speed import SpeedBook, family_key, seconds_per_unit  # noqa: E402

SD15, XL, FLUX = "v1-5-pruned-emaonly.safetensors", "sd_xl_base_1.0.safetensors", "flux1-schnell-fp8.safetensors"
SPEEDS = (1.0, 0.6, 1.5, 0.8)
LOAD_S = 1.5
STEPS = 4  # progress messages per job: enough to be realistic traffic, few enough to keep the fake cheap


def graph_for(model: str, seed: int) -> dict[str, Any]:
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": model}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a knight", "clip": ["4", 1]}},
        "3": {"class_type": "KSampler", "inputs": {"seed": seed, "steps": STEPS, "model": ["4", 0], "positive": ["6", 0],
                                                   "negative": ["6", 0], "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "bench"}},
    }


NODES = ("CheckpointLoaderSimple", "EmptyLatentImage", "CLIPTextEncode", "KSampler", "VAEDecode", "SaveImage")


class SimComfy:
    """One fake ComfyUI server (see the module docstring for what it reproduces)."""

    def __init__(self, name: str, models: tuple[str, ...], speed: float, scale: float):
        self.name, self.models, self.speed, self.scale = name, models, speed, scale
        self.object_info = {n: {"input": {"required": {}}, "output_node": n == "SaveImage"} for n in NODES}
        self.object_info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"] = [list(models), {}]
        self.pending: list[tuple[int, str, dict[str, Any]]] = []
        self.running: tuple[int, str, dict[str, Any]] | None = None
        self.loaded = ""
        self.loads = 0
        self.number = 0
        self.ws: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._worker())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    # HTTP routes -----------------------------------------------------------------------
    def post_prompt(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        graph = body["prompt"]
        for node_id, node in graph.items():
            if node["class_type"] not in self.object_info:
                return 400, {"error": {"type": "invalid_prompt", "message": f"Cannot execute because node {node['class_type']} does not exist.",
                                       "details": f"Node ID '#{node_id}'", "extra_info": {}}, "node_errors": {}}
            ckpt = node["inputs"].get("ckpt_name")
            if ckpt is not None and ckpt not in self.models:
                err = {"type": "value_not_in_list", "message": "Value not in list",
                       "details": f"ckpt_name: '{ckpt}' not in {list(self.models)}", "extra_info": {"input_name": "ckpt_name"}}
                return 400, {"error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
                                       "details": "", "extra_info": {}},
                             "node_errors": {node_id: {"errors": [err], "dependent_outputs": ["9"], "class_type": node["class_type"]}}}
        prompt_id = body.get("prompt_id") or str(uuid.uuid4())
        self.number += 1
        self.pending.append((self.number, prompt_id, graph))
        self._wake.set()
        return 200, {"prompt_id": prompt_id, "number": self.number, "node_errors": {}}

    def get_queue(self) -> dict[str, Any]:
        running = [[self.running[0], self.running[1], self.running[2], {}, ["9"]]] if self.running else []
        return {"queue_running": running, "queue_pending": [[n, p, g, {}, ["9"]] for n, p, g in self.pending]}

    def post_queue(self, body: dict[str, Any]) -> int:
        drop = set(body.get("delete") or ())
        before = len(self.pending)
        self.pending = [item for item in self.pending if item[1] not in drop]
        return 200 if len(self.pending) < before else 200  # ComfyUI answers 200 either way

    # the GPU -------------------------------------------------------------------------
    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self.pending:
                self._wake.clear()
                await self._wake.wait()
            self.running = self.pending.pop(0)
            _, pid, graph = self.running
            model = graph["4"]["inputs"]["ckpt_name"]
            cost = float(graph["3"]["inputs"].get("_bench_cost", 1.0))
            self.ws.put_nowait({"type": "execution_start", "data": {"prompt_id": pid, "timestamp": 0}})
            self.ws.put_nowait({"type": "executing", "data": {"node": "4", "display_node": "4", "prompt_id": pid}})
            t = loop.time()
            if model != self.loaded:
                self.loads += 1
                self.loaded = model
                t += LOAD_S * self.scale
                await asyncio.sleep(max(0.0, t - loop.time()))
            self.ws.put_nowait({"type": "executing", "data": {"node": "3", "display_node": "3", "prompt_id": pid}})
            step_s = cost / self.speed * self.scale / STEPS
            for step in range(1, STEPS + 1):
                t += step_s  # absolute targets: sleep overshoot does not add up over a job
                await asyncio.sleep(max(0.0, t - loop.time()))
                self.ws.put_nowait({"type": "progress", "data": {"value": step, "max": STEPS, "prompt_id": pid, "node": "3"}})
            self.ws.put_nowait({"type": "executed", "data": {"node": "9", "display_node": "9", "prompt_id": pid, "output": {
                "images": [{"filename": f"bench_{pid[:8]}_.png", "subfolder": "", "type": "output"}]}}})
            self.running = None
            self.ws.put_nowait({"type": "executing", "data": {"node": None, "prompt_id": pid}})


@dataclass
class Job:
    needs: JobNeeds
    graph: dict[str, Any]
    server: str = ""
    prompt_id: str = ""
    started: bool = False
    started_at: float = 0.0
    done_at: float = 0.0


@dataclass
class ServerState:
    sim: SimComfy
    order: int
    caps: caps.Capabilities
    running: set[str] = field(default_factory=set)
    queued: list[str] = field(default_factory=list)
    last_model: str = ""
    book: SpeedBook = field(default_factory=SpeedBook)

    def view(self, jobs: dict[str, Job], now: float, scale: float, books: list[SpeedBook] | None,
             families: tuple[str, ...]) -> ServerView:
        if books is None:  # --oracle: the true speed
            spu = {f: 1.0 / self.sim.speed for f in families}
        else:
            spu = {f: seconds_per_unit(self.book, f, books) for f in families}

        def est(j: str) -> float:
            return jobs[j].needs.cost * spu[jobs[j].needs.family]

        # A running job counts with what is left of it (as the pool does): its estimate minus
        # the time it has run, and a quarter of it once it is late.
        left = sum(max(est(j) - (now - jobs[j].started_at) / scale, 0.25 * est(j)) for j in self.running)
        ahead = sum(est(j) for j in self.queued)
        mine = self.book.families() if books is not None else {}
        pace = sum(mine.values()) / len(mine) if mine else spu[families[0]]  # for families not listed
        return ServerView(id=self.sim.name, order=self.order, capabilities=self.caps, running=len(self.running),
                          queued=len(self.queued), busy_s=left + ahead, last_model=self.last_model,
                          speed=1.0 / pace, load_s=LOAD_S, speeds=tuple((f, 1.0 / x) for f, x in spu.items()))


def make_jobs(n: int, seed: int = 13) -> list[tuple[str, float]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.6:
            out.append((SD15, rng.choice((2.0, 3.0, 4.0))))
        elif r < 0.9:
            out.append((XL, 6.0))
        else:
            out.append((FLUX, 10.0))
    return out


def server_models(i: int) -> tuple[str, ...]:
    return (SD15,) + ((XL,) if i % 2 == 0 else ()) + ((FLUX,) if i % 4 == 0 else ())


def ideal_makespan(specs: list[tuple[str, float]], servers: int) -> float:
    kinds = sorted({m for m, _ in specs})
    work = {k: sum(c for m, c in specs if m == k) for k in kinds}
    best = 0.0
    for r in range(1, len(kinds) + 1):
        for subset in itertools.combinations(kinds, r):
            able = [i for i in range(servers) if any(k in server_models(i) for k in subset)]
            best = max(best, sum(work[k] for k in subset) / sum(SPEEDS[i % 4] for i in able))
    longest = max(c / max(SPEEDS[i % 4] for i in range(servers) if m in server_models(i)) for m, c in specs)
    # Every server that does any work loads a checkpoint first, so none works for the whole makespan.
    return max(best, longest) + LOAD_S


async def run(servers: int, n_jobs: int, scale: float, oracle: bool = False) -> dict[str, Any]:
    states = {}
    for i in range(servers):
        sim = SimComfy(f"s{i}", server_models(i), SPEEDS[i % 4], scale)
        states[sim.name] = ServerState(sim, i, caps.from_object_info(sim.object_info))
    specs = make_jobs(n_jobs)
    jobs: dict[str, Job] = {}
    for i, (model, cost) in enumerate(specs):
        graph = graph_for(model, i)
        graph["3"]["inputs"]["_bench_cost"] = cost  # read by the fake only: the "work" of this graph
        need = caps.needs_of_graph(graph)
        jobs[f"j{i}"] = Job(JobNeeds(f"j{i}", need.models, need.nodes, need.main_model, cost=cost, seq=i,
                                     family=family_key(need.main_model)), graph)
    families = tuple(sorted({j.needs.family for j in jobs.values()}))
    books = None if oracle else [st.book for st in states.values()]
    pending = dict(jobs)
    by_prompt: dict[str, Job] = {}
    changed = asyncio.Event()
    sched_s = 0.0
    steals = 0
    rejected = 0
    loop = asyncio.get_running_loop()

    async def listen(st: ServerState) -> None:
        while True:
            msg = await st.sim.ws.get()
            job = by_prompt.get(msg["data"].get("prompt_id", ""))
            if job is None or job.server != st.sim.name:
                continue
            if msg["type"] == "execution_start":
                st.queued.remove(job.needs.job_id)
                st.running.add(job.needs.job_id)
                job.started = True
                job.started_at = loop.time()
            elif msg["type"] == "executing" and msg["data"]["node"] is None:
                st.running.discard(job.needs.job_id)
                job.done_at = loop.time()
                # From its execution_start: queue time is not this server's pace (a load is).
                st.book.record(job.needs.family, job.needs.cost, (job.done_at - job.started_at) / scale)
                changed.set()

    def submit(job: Job, st: ServerState) -> None:
        nonlocal rejected
        job.prompt_id = str(uuid.uuid4())
        status, _body = st.sim.post_prompt({"prompt": job.graph, "client_id": "bench", "prompt_id": job.prompt_id})
        if status != 200:  # the capability filter should make this impossible
            rejected += 1
            return
        job.server = st.sim.name
        by_prompt[job.prompt_id] = job
        st.queued.append(job.needs.job_id)
        st.last_model = job.needs.model
        pending.pop(job.needs.job_id, None)

    for st in states.values():
        st.sim.start()
    listeners = [asyncio.create_task(listen(st)) for st in states.values()]
    t0 = loop.time()
    try:
        while any(j.done_at == 0.0 for j in jobs.values()):
            changed.clear()
            a = time.perf_counter()
            now = loop.time()
            views = [st.view(jobs, now, scale, books, families) for st in states.values()]
            p = plan([j.needs for j in pending.values()], views)
            moves = []
            if not pending:
                busy = {s.id: s for s in views}
                waiting = [(jobs[j].needs, busy[st.sim.name]) for st in states.values() for j in st.queued
                           if not jobs[j].started]
                for v in views:
                    if v.can_start_now and waiting:
                        got = steal(v, waiting)
                        if got is not None:
                            moves.append((got.job_id, v.id))
                            waiting = [(n, s) for n, s in waiting if n.job_id != got.job_id]
            sched_s += time.perf_counter() - a
            for job_id, server_id in p.assignments:
                submit(jobs[job_id], states[server_id])
            for job_id, server_id in moves:
                job = jobs[job_id]
                old = states[job.server]
                if job.started:
                    continue
                old.sim.post_queue({"delete": [job.prompt_id]})
                if any(item[1] == job.prompt_id for item in old.sim.pending):
                    continue  # still there: not removed, so not moved
                old.queued.remove(job_id)
                by_prompt.pop(job.prompt_id, None)
                steals += 1
                submit(job, states[server_id])
            await changed.wait()
    finally:
        for t in listeners:
            t.cancel()
        for st in states.values():
            await st.sim.stop()
    makespan = (max(j.done_at for j in jobs.values()) - t0) / scale
    ideal = ideal_makespan(specs, servers)
    return {"servers": servers, "jobs": n_jobs, "ideal_s": ideal, "makespan_s": makespan, "ratio": makespan / ideal,
            "loads": sum(st.sim.loads for st in states.values()), "steals": steals, "rejected": rejected,
            "sched_ms_per_job": sched_s * 1000 / n_jobs}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=0.02, help="real seconds per simulated second")
    ap.add_argument("--sizes", default="1,2,4,8,16")
    ap.add_argument("--jobs", type=int, default=200)
    ap.add_argument("--oracle", action="store_true", help="give the scheduler the true speeds instead of measuring them")
    args = ap.parse_args()
    speeds = "true speeds given" if args.oracle else "speeds measured per server and family"
    print(f"{args.jobs} jobs; 1 running + 1 queued slot per server; model load {LOAD_S} s; {speeds}; time scale {args.scale}")
    print(f"{'servers':>7} {'ideal s':>8} {'makespan s':>10} {'vs ideal':>8} {'loads':>6} {'steals':>6} {'sched ms/job':>12}")
    ok = True
    for n in (int(x) for x in args.sizes.split(",")):
        r = asyncio.run(run(n, args.jobs, args.scale, args.oracle))
        good = r["ratio"] <= 1.10 and r["sched_ms_per_job"] <= 2.0 and r["rejected"] == 0
        ok &= good
        print(f"{r['servers']:>7} {r['ideal_s']:>8.1f} {r['makespan_s']:>10.1f} {100 * (r['ratio'] - 1):>+7.1f}% "
              f"{r['loads']:>6} {r['steals']:>6} {r['sched_ms_per_job']:>12.3f}{'' if good else '  <- over goal'}")
    print("goal met at every size" if ok else "goal NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
