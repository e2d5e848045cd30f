"""Two real CPU ComfyUI servers against one, on the same batch, through the pool.

Starts two March-2024 test servers (tools/comfy_test_server.py), then runs the same batch of
model-free jobs (EmptyImage → blur/invert chain → ImageScale → SaveImage, each with its own
colour so nothing is cached) once through a pool of one server and once through a pool of
both, and reports the makespans. Each server is a separate process, so the speed-up is
bounded by the machine's cores: on a 2-core machine two CPU-bound servers share the cores
that one server's torch threads already used.

    .venv/bin/python benchmarks/bench_pool_real.py [--jobs 8] [--size 512] [--blur 4]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from studio_core.models import GenerationRequest, JobImage  # noqa: E402
from studio_core.pool.provider import PoolProvider  # noqa: E402
from studio_core.pool.servers import ServerSpec  # noqa: E402


def _tool():
    spec = importlib.util.spec_from_file_location("comfy_test_server", ROOT / "tools" / "comfy_test_server.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


TOOL = _tool()


async def batch(urls: list[str], jobs: int, size: int, blur: int) -> tuple[float, dict[str, int]]:
    specs = [ServerSpec(id=f"s{i}", name=f"server {i + 1}", url=u, running_slots=1, queued_slots=1)
             for i, u in enumerate(urls)]
    pool = PoolProvider(specs, secret=lambda n: None)
    per_server: dict[str, int] = {}

    async def one(i: int) -> None:
        g = TOOL.model_free_graph(size=size, blur_stages=blur, prefix="bench_pool")
        req = GenerationRequest(prompt="bench", width=size, height=size, seed=i, options={"workflow": json.dumps(g)})
        async for e in pool.generate(req, job_id=f"b{i}"):
            if isinstance(e, JobImage):
                name = dict(e.info)["server_name"]
                per_server[name] = per_server.get(name, 0) + 1

    try:
        await pool.refresh()
        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(jobs)))
        return time.perf_counter() - t0, per_server
    finally:
        await pool.aclose()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--blur", type=int, default=4)
    args = ap.parse_args()
    tool = TOOL
    logs = Path(tempfile.mkdtemp(prefix="bench-pool-"))
    procs = [tool.start(log_path=logs / f"server{i}.log") for i in range(2)]
    try:
        urls = [u for _, u in procs]
        asyncio.run(batch(urls[:1], 2, args.size, args.blur))  # warm both: first-run imports
        asyncio.run(batch(urls[1:], 2, args.size, args.blur))
        one_s, one_where = asyncio.run(batch(urls[:1], args.jobs, args.size, args.blur))
        two_s, two_where = asyncio.run(batch(urls, args.jobs, args.size, args.blur))
    finally:
        for p, _ in procs:
            tool.stop(p)
    print(f"machine: {os.cpu_count()} cores; batch: {args.jobs} jobs, {args.size}² with {args.blur} blur stages")
    print(f"one server : {one_s:7.2f} s  ({one_s / args.jobs:.2f} s/job)  {one_where}")
    print(f"two servers: {two_s:7.2f} s  ({two_s / args.jobs:.2f} s/job)  {two_where}")
    print(f"speed-up   : {one_s / two_s:.2f}× (ideal 2.00× with a core budget per server)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
