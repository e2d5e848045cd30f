"""Work stealing in the running pool, against protocol-faithful fake ComfyUI servers: a job
still waiting in a slow server's queue moves to a server that went idle (and is saved once),
a job that started is left where it is, and the speed estimate the scheduler uses follows the
measured durations (per server, per model family)."""

from __future__ import annotations

import asyncio

import pytest

from studio_core.models import JobImage, JobNotice, JobStarted
from studio_core.pool import scheduler
from studio_core.pool.provider import STEAL_NOTICE_AFTER_S, steal_notice
from studio_core.pool.speed import ALPHA, SpeedBook, family_key, graph_units, seconds_per_unit, work_units
from tests.comfy_fake_server import Behaviour, FakeComfyServer
from tests.conftest import run_async
from tests.core.test_pool_runtime import deleted_ids, info_with, pool, req, spec


class GatedFake(FakeComfyServer):
    """Every job takes its place as running, then waits for ``gate`` before it executes: a
    slow GPU the test decides the pace of. ``start_on_delete``: a delete for a pending job
    arrives just after it started (the race a steal must lose gracefully)."""

    def __init__(self, *, start_on_delete: bool = False, **kw):
        super().__init__(**kw)
        self.gate = asyncio.Event()
        self.start_on_delete = start_on_delete

    async def _execute(self, job):
        await self.gate.wait()
        await super()._execute(job)

    async def _route(self, method, path, query, body):
        if self.start_on_delete and method == "POST" and path == "/queue":
            import json

            for pid in (json.loads(body) if body else {}).get("delete", []):
                job = self.jobs.get(pid)
                if job is not None and job.state == "pending":
                    job.state = "running"  # as if the server had just picked it up
        return await super()._route(method, path, query, body)


async def _events_until_started(p, request, job_id, sink: list) -> asyncio.Task:
    async def run():
        async for e in p.generate(request, job_id=job_id):
            sink.append(e)

    task = asyncio.create_task(run())
    for _ in range(400):
        if any(isinstance(e, JobStarted) for e in sink) or task.done():
            break
        await asyncio.sleep(0.01)
    assert any(isinstance(e, JobStarted) for e in sink), "job never reached a server"
    return task


def _prompts(fake: FakeComfyServer) -> list[str]:
    return [body["prompt_id"] for body in fake.posted("/prompt") if isinstance(body, dict)]


def _run_three(start_on_delete: bool):
    """j1 and j3 on the slow server (j3 queued), j2 on the fast one; then the fast one frees up."""

    async def main():
        slow = GatedFake(start_on_delete=start_on_delete, object_info=info_with(["a.safetensors"]))
        fast = GatedFake(object_info=info_with(["a.safetensors"]))
        async with slow, fast:
            p = pool(spec(slow, "slow", queued_slots=1), spec(fast, "fast"))
            events = {j: [] for j in ("j1", "j2", "j3")}
            try:
                t1 = await _events_until_started(p, req(seed=1), "j1", events["j1"])
                t2 = await _events_until_started(p, req(seed=2), "j2", events["j2"])
                t3 = await _events_until_started(p, req(seed=3), "j3", events["j3"])
                placed = {m.id: list(m.jobs) for m in p.members}
                fast.gate.set()  # j2 ends: "fast" is idle while j3 waits behind j1 on "slow"
                await asyncio.wait_for(t2, 10)
                if not start_on_delete:
                    await asyncio.wait_for(t3, 10)  # it must finish without the slow server
                else:
                    for _ in range(400):
                        if deleted_ids(slow):
                            break
                        await asyncio.sleep(0.01)
                slow.gate.set()
                await asyncio.wait_for(asyncio.gather(t1, t3), 10)
            finally:
                await p.aclose()
            return slow, fast, events, placed

    return run_async(main())


def test_job_waiting_on_a_slow_server_moves_to_the_idle_one_and_is_saved_once():
    slow, fast, events, placed = _run_three(start_on_delete=False)
    assert placed == {"slow": ["j1", "j3"], "fast": ["j2"]}
    j3_on_slow = [pid for pid in _prompts(slow) if pid not in slow.history]
    assert len(j3_on_slow) == 1 and j3_on_slow[0] in deleted_ids(slow)  # taken off the queue, never run there
    # j1 may have been asked for too (running, its first message not out yet): it stayed and ran.
    assert all(slow.history[pid]["status"]["status_str"] == "success" for pid in deleted_ids(slow) - set(j3_on_slow))
    assert len(_prompts(fast)) == 2  # j2, then j3
    for job in ("j1", "j2", "j3"):
        images = [e for e in events[job] if isinstance(e, JobImage)]
        assert len(images) == 1, job
        assert [type(e) for e in events[job]].count(JobStarted) == 1
    assert dict(next(e for e in events["j3"] if isinstance(e, JobImage)).info)["server_name"] == "fast"
    assert not any(isinstance(e, JobNotice) for e in events["j3"])  # a quick move is not worth a word


def test_job_that_started_before_the_delete_stays_and_runs_once():
    slow, fast, events, placed = _run_three(start_on_delete=True)
    assert placed == {"slow": ["j1", "j3"], "fast": ["j2"]}
    tried = deleted_ids(slow)
    assert len(_prompts(slow)) == 2 and set(_prompts(slow)[1:]) <= tried  # the steal of j3 was attempted…
    for pid in tried:  # …but the job had started, so it ran there, as did j1
        assert slow.history[pid]["status"]["status_str"] == "success"
    assert len(_prompts(fast)) == 1  # and was never sent to the free server
    images = [e for e in events["j3"] if isinstance(e, JobImage)]
    assert len(images) == 1 and dict(images[0].info)["server_name"] == "slow"


def test_nothing_moves_to_a_server_that_lacks_the_model():
    async def main():
        slow = GatedFake(object_info=info_with(["a.safetensors"]))
        other = FakeComfyServer(object_info=info_with(["b.safetensors"]))
        async with slow, other:
            p = pool(spec(slow, "slow", queued_slots=1), spec(other, "other"))
            ev: dict[str, list] = {"j1": [], "j2": [], "j3": []}
            try:
                t1 = await _events_until_started(p, req(seed=1), "j1", ev["j1"])
                t3 = await _events_until_started(p, req(seed=3), "j3", ev["j3"])
                t2 = await _events_until_started(p, req(model="b.safetensors", seed=2), "j2", ev["j2"])
                await asyncio.wait_for(t2, 10)  # "other" is idle now, but cannot run j3
                slow.gate.set()
                await asyncio.wait_for(asyncio.gather(t1, t3), 10)
            finally:
                await p.aclose()
            return slow, other, ev

    slow, other, ev = run_async(main())
    assert deleted_ids(slow) == set() and len(_prompts(other)) == 1
    assert all(len([e for e in ev[j] if isinstance(e, JobImage)]) == 1 for j in ev)


# ---- the speed estimate --------------------------------------------------------------


def test_speed_estimate_follows_measured_durations():
    book = SpeedBook()
    assert book.get("sdxl") is None
    book.record("sdxl", units=20.0, seconds=10.0)
    assert book.get("sdxl") == pytest.approx(0.5)
    book.record("sdxl", units=20.0, seconds=30.0)  # the server got slower
    assert book.get("sdxl") == pytest.approx(0.5 + ALPHA * (1.5 - 0.5))
    for _ in range(30):
        book.record("sdxl", units=20.0, seconds=30.0)
    assert book.get("sdxl") == pytest.approx(1.5, rel=1e-3)
    book.record("sdxl", units=0.0, seconds=5.0)  # nothing to learn from
    book.record("sd15", units=10.0, seconds=-1.0)
    assert book.get("sd15") is None and book.get("sdxl") == pytest.approx(1.5, rel=1e-3)


def test_unmeasured_family_is_estimated_from_comparable_servers():
    fast, slow, new = SpeedBook(), SpeedBook(), SpeedBook()
    fast.record("sd15", 10, 1.0)   # 0.1 s/unit
    fast.record("flux", 10, 4.0)   # 0.4 s/unit
    slow.record("sd15", 10, 3.0)   # three times slower than "fast" on what both ran
    books = [fast, slow, new]
    assert seconds_per_unit(slow, "flux", books) == pytest.approx(1.2)
    assert seconds_per_unit(new, "flux", books) == pytest.approx(0.4)  # nothing to compare: the pool's figure
    assert seconds_per_unit(slow, "sdxl", books) == pytest.approx(0.3)  # nowhere measured: its own pace
    assert seconds_per_unit(new, "sdxl", books) > 0


def test_scheduler_uses_the_per_family_speed():
    from studio_core.pool.capabilities import Capabilities

    anything = Capabilities(models=frozenset({"a", "b"}), nodes=frozenset())
    # "gpu" is fast at FLUX and slow at SD1.5, "cpu" the other way round (as measured).
    gpu = scheduler.ServerView("gpu", 0, anything, speed=1.0, speeds=(("flux", 10.0), ("sd15", 1.0)))
    cpu = scheduler.ServerView("cpu", 1, anything, speed=1.0, speeds=(("flux", 0.5), ("sd15", 5.0)))
    flux = scheduler.JobNeeds("f", cost=10.0, family="flux")
    sd15 = scheduler.JobNeeds("s", cost=10.0, family="sd15")
    assert scheduler.choose(flux, [gpu, cpu]).server_id == "gpu"
    assert scheduler.choose(sd15, [gpu, cpu]).server_id == "cpu"


def test_work_units_and_family_keys():
    assert work_units(20, 1024, 1024) == pytest.approx(20 * 1024 * 1024 / 1e6)
    assert work_units(20, 512, 512, batch=4) == pytest.approx(4 * work_units(20, 512, 512))
    graph = {"3": {"class_type": "KSampler", "inputs": {"steps": 8}},
             "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 256, "batch_size": 2}}}
    assert graph_units(graph) == pytest.approx(work_units(8, 512, 256, 2))
    assert family_key("sd_xl_base_1.0.safetensors") != family_key("v1-5-pruned-emaonly.safetensors")
    assert family_key("mystery.safetensors") == "model:mystery.safetensors"


def test_pool_learns_each_servers_pace_per_family():
    async def main():
        async with FakeComfyServer(behaviour=Behaviour(step_delay=0.01), object_info=info_with(["a.safetensors"])) as a:
            p = pool(spec(a, "a"))
            try:
                assert p.members[0].speed.families() == {}
                async for _ in p.generate(req(steps=3), job_id="j1"):
                    pass
                return dict(p.members[0].speed.families())
            finally:
                await p.aclose()

    families = run_async(main())
    assert list(families) == [family_key("a.safetensors")] and families[family_key("a.safetensors")] > 0


def test_steal_notice_only_after_a_visible_wait():
    assert steal_notice("laptop", "my PC", 2.0) is None
    note = steal_notice("laptop", "my PC", STEAL_NOTICE_AFTER_S + 1)
    assert note and "'laptop'" in note and "'my PC'" in note
