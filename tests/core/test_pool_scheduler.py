"""The pool scheduler's rules, one test each, plus failover decisions and the result guard."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from studio_core.errors import (
    AuthenticationFailed,
    ContentRefused,
    GenerationFailed,
    JobTimedOut,
    MissingModels,
    OutOfVram,
    ProviderUnavailable,
    ValidationFailed,
)
from studio_core.pool import capabilities as caps
from studio_core.pool.errors import CertificateMismatch
from studio_core.pool.failover import OrphanLedger, ResultClaims, decide, moved_notice
from studio_core.pool.scheduler import JobNeeds, ServerView, assign, choose, dispatch_order, plan, steal

DATA = Path(__file__).resolve().parents[1] / "data"
SD15 = "v1-5-pruned-emaonly.safetensors"
XL = "sdxl_base.safetensors"


def cap(*models: str, nodes=("KSampler", "CheckpointLoaderSimple")) -> caps.Capabilities:
    return caps.Capabilities(frozenset(models), frozenset(nodes))


def srv(id: str, order: int, *models: str, **kw) -> ServerView:
    return ServerView(id=id, order=order, capabilities=kw.pop("capabilities", cap(*(models or (SD15,)))), **kw)


def job(id: str = "j1", model: str = SD15, **kw) -> JobNeeds:
    return JobNeeds(id, models=frozenset({model}) if model else frozenset(), nodes=kw.pop("nodes", frozenset({"KSampler"})),
                    model=model, **kw)


# ---- capabilities --------------------------------------------------------------------


def test_capabilities_from_recorded_object_info_and_a_graph():
    info = json.loads((DATA / "comfy_object_info_0.3.64.json").read_text())
    c = caps.from_object_info(info)
    assert "KSampler" in c.nodes and "CheckpointLoaderSimple" in c.nodes
    graph = {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "dream.safetensors"}},
        "10": {"class_type": "LoraLoader", "inputs": {"lora_name": "pixel.safetensors", "model": ["4", 0]}},
        "3": {"class_type": "KSampler", "inputs": {"seed": 1, "model": ["10", 0]}},
    }
    need = caps.needs_of_graph(graph)
    assert need.models == {"dream.safetensors", "pixel.safetensors"} and need.main_model == "dream.safetensors"
    assert need.nodes == {"CheckpointLoaderSimple", "LoraLoader", "KSampler"}
    fake = caps.from_object_info({"CheckpointLoaderSimple": {"input": {"required": {"ckpt_name": [["dream.safetensors"], {}]}}},
                                  "LoraLoader": {"input": {"required": {"lora_name": ["COMBO", {"options": ["pixel.safetensors"]}]}}},
                                  "KSampler": {"input": {"required": {}}}})
    assert fake.missing(need.models, need.nodes) == ()
    assert caps.from_model_list(["dream.safetensors"]).missing(need.models, need.nodes) == ("pixel.safetensors",)


# ---- the rules, one at a time --------------------------------------------------------


def test_rule_capability_filters_before_anything_else():
    servers = [srv("first", 0, SD15), srv("second", 1, XL)]
    assert choose(job(model=XL), servers).server_id == "second"
    nodes_missing = [srv("a", 0, SD15, capabilities=cap(SD15, nodes=("KSampler",))), srv("b", 1, SD15)]
    assert choose(job(nodes=frozenset({"CheckpointLoaderSimple"})), nodes_missing).server_id == "b"


def test_rule_no_capable_server_names_what_is_missing():
    c = choose(job(model="flux1-dev.safetensors"), [srv("a", 0, SD15), srv("b", 1, XL)])
    assert c.server_id is None and c.reason == "incapable" and c.missing == ("flux1-dev.safetensors",)
    # Disabled servers do not count as having it.
    c2 = choose(job(model=XL), [srv("a", 0, SD15), srv("b", 1, XL, enabled=False)])
    assert c2.reason == "incapable" and c2.missing == (XL,)


def test_rule_user_order_breaks_ties_local_first():
    servers = [srv("laptop", 1), srv("my-pc", 0)]
    assert choose(job(), servers).server_id == "my-pc"


def test_rule_free_slots_and_starting_now_beats_queueing():
    full = srv("pc", 0, running=1, queued=1)
    assert choose(job(), [full]).reason == "wait"
    assert choose(job(), [full, srv("laptop", 1)]).server_id == "laptop"
    half = srv("pc", 0, running=1, busy_s=3.0)  # its queued slot is free, but the laptop can start at once
    assert choose(job(), [half, srv("laptop", 1, busy_s=0)]).server_id == "laptop"
    # ...unless waiting on the fast one still ends sooner.
    assert choose(job(cost=4.0), [srv("fast", 0, running=1, busy_s=1.0, speed=4.0), srv("slow", 1, speed=0.5)]).server_id == "fast"
    # A shared server's foreign jobs take slots too.
    assert choose(job(), [srv("pc", 0, foreign=2)]).reason == "wait"


def test_rule_model_affinity_decides_between_equal_servers_and_is_worth_a_load():
    servers = [srv("a", 0, SD15, XL, last_model=SD15), srv("b", 1, SD15, XL, last_model=XL)]
    assert choose(job(model=XL), servers).server_id == "b"  # load time unknown: affinity breaks the tie
    assert choose(job(model=SD15), servers).server_id == "a"
    # With a known 5 s load, the model's server is worth up to 5 s of waiting…
    a, b = srv("a", 0, SD15, XL, last_model=SD15, load_s=5.0), srv("b", 1, SD15, XL, last_model=XL, load_s=5.0, busy_s=4.0, running=1)
    assert choose(job(model=XL), [a, b]).server_id == "b"
    # …but not more.
    assert choose(job(model=XL), [a, dataclasses.replace(b, busy_s=6.0)]).server_id == "a"


def test_rule_least_busy_by_estimated_finish():
    slow = srv("slow", 0, speed=0.5)
    fast = srv("fast", 1, speed=2.0)
    assert choose(job(cost=4.0), [slow, fast]).server_id == "fast"  # 2 s vs 8 s
    loaded = srv("first", 0, running=1, running_slots=2, busy_s=30)
    assert choose(job(), [loaded, srv("second", 1, running_slots=2)]).server_id == "second"


def test_rule_least_busy_waits_for_a_full_server_that_finishes_sooner():
    fast_full = srv("fast", 0, running=1, queued=1, busy_s=2.0, speed=3.0)
    slow_free = srv("slow", 1, speed=0.5)
    assert choose(job(cost=6.0), [fast_full, slow_free]).reason == "wait"  # 4 s there vs 12 s here
    assert choose(job(cost=0.5), [fast_full, slow_free]).server_id == "slow"  # 1 s here vs 2.2 s there
    p = plan([job("big", cost=6.0, seq=0), job("small", cost=0.5, seq=1)], [fast_full, slow_free])
    assert p.assignments == [("small", "slow")] and p.waiting["big"].reason == "wait"


def test_rule_paid_is_overflow_only_and_only_when_allowed():
    local = srv("pc", 0)
    cloud = srv("runpod", 2, paid=True, running_slots=3, queued_slots=0)
    assert choose(job(), [local, cloud], allow_paid=True).server_id == "pc"
    busy = srv("pc", 0, running=1, queued=1)
    assert choose(job(), [busy, cloud], allow_paid=False).reason == "wait"
    c = choose(job(), [busy, cloud], allow_paid=True)
    assert c.server_id == "runpod" and c.paid
    only_there = choose(job(model="flux1-dev.safetensors"), [local, srv("runpod", 2, "flux1-dev.safetensors", paid=True)])
    assert only_there.server_id is None and only_there.reason == "paid_not_allowed"


def test_offline_and_excluded_servers_are_skipped():
    assert choose(job(), [srv("pc", 0, online=False), srv("lan", 1)]).server_id == "lan"
    assert choose(job(), [srv("pc", 0, online=False)]).reason == "offline"
    assert choose(job(exclude=frozenset({"pc"})), [srv("pc", 0), srv("lan", 1)]).server_id == "lan"
    assert choose(job(exclude=frozenset({"pc"})), [srv("pc", 0), srv("x", 1, XL)]).reason == "excluded"


def test_plan_fills_slots_and_says_why_the_rest_wait():
    servers = [srv("pc", 0), srv("lan", 1)]
    jobs = [job(f"j{i}", seq=i) for i in range(6)]
    p = plan(jobs, servers)
    assert len(p.assignments) == 4 and len(p.waiting) == 2
    by_server = {s: [j for j, t in p.assignments if t == s] for s in ("pc", "lan")}
    assert len(by_server["pc"]) == 2 and len(by_server["lan"]) == 2
    assert p.assignments[0] == ("j0", "pc") and p.assignments[1] == ("j1", "lan")  # both start before any queues
    assert all(c.reason == "wait" for c in p.waiting.values())


def test_dispatch_order_constrained_then_longest_then_submission():
    servers = [srv("pc", 0, SD15, XL), srv("lan", 1, SD15)]
    jobs = [job("small", seq=0, cost=1), job("big", seq=1, cost=5), job("xl", model=XL, seq=2, cost=1),
            job("now", seq=3, cost=1, priority=0)]
    assert [j.job_id for j in dispatch_order(jobs, servers)] == ["now", "xl", "big", "small"]


def test_assign_updates_the_view():
    v = assign(srv("pc", 0, load_s=3.0, last_model=SD15), job(model=XL, cost=2.0))
    assert (v.running, v.queued, v.last_model, v.busy_s) == (1, 0, XL, 5.0)
    assert assign(v, job(model=XL)).queued == 1


def test_steal_moves_a_waiting_job_to_an_idle_faster_server():
    slow = srv("slow", 0, running=1, queued=1, busy_s=10.0)
    idle = srv("idle", 1)
    waiting = job("w", cost=2.0)
    assert steal(idle, [(waiting, slow)]) == waiting
    assert steal(srv("busy", 1, running=1), [(waiting, slow)]) is None
    assert steal(srv("xl-only", 1, XL), [(waiting, slow)]) is None
    assert steal(idle, [(waiting, srv("quick", 0, busy_s=0.0, speed=10))]) is None  # no gain


# ---- failover ------------------------------------------------------------------------


@pytest.mark.parametrize("error, retry, refresh", [
    (ProviderUnavailable("gone"), True, False),
    (CertificateMismatch("pin"), True, False),
    (AuthenticationFailed("401"), True, False),
    (MissingModels(("a.safetensors",)), True, True),
    (ValidationFailed(problems=("ckpt_name: 'a.safetensors' not in list",)), True, True),
    (OutOfVram("oom"), True, False),
    (ContentRefused("no"), False, False),
    (GenerationFailed("node error"), False, False),
    (JobTimedOut("long"), False, False),
    (ValidationFailed(problems=("steps has the wrong type",)), False, False),
])
def test_failover_decisions(error, retry, refresh):
    d = decide(error, attempt=1)
    assert d.retry is retry and d.refresh is refresh
    assert d.exclude is retry
    assert decide(error, attempt=3).retry is False  # attempts are bounded


def test_moved_notice_names_both_servers():
    d = decide(ProviderUnavailable("x"), attempt=1)
    assert moved_notice("Laptop", "My PC", d.why) == "'Laptop' could not finish this job (it stopped answering); it continues on 'My PC'."


def test_result_claims_allow_one_saved_result_per_image():
    claims = ResultClaims(saved=[("job-a", 0)])
    assert not claims.claim("job-a", "attempt-2", 0)  # saved before a restart
    assert claims.claim("job-b", "first", 0) and not claims.claim("job-b", "second", 0)
    assert claims.claim("job-b", "second", 1) and claims.claimed_indexes("job-b") == {0, 1}
    assert claims.claim("job-b", "first", 0)  # the owner may repeat itself (idempotent)
    claims.release("job-b", "second", 0)  # not the owner: nothing changes
    assert claims.owner("job-b", 0) == "first"
    claims.release("job-b", "first", 0)
    assert claims.claim("job-b", "second", 0)


def test_orphans_are_cancelled_once_when_the_server_returns():
    ledger = OrphanLedger()
    ledger.add("lan", "p1")
    ledger.add("lan", "p1")
    ledger.add("lan", "p2")
    assert ledger.pending("lan") == ("p1", "p2")
    assert ledger.due("lan") == ["p1", "p2"] and ledger.due("lan") == []
