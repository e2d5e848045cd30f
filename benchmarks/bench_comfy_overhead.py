"""Per-job overhead of ComfyProvider against a minimal raw httpx + websockets client.

Both do the same work against the same real ComfyUI test server (tools/comfy_test_server.py)
in the same run: submit a tiny model-free graph, wait for the end of the job on the
websocket, download the image. Runs alternate (raw, provider, raw, …) so drift hits both
alike. Goal: provider ≤ 1.2× raw.

    .venv/bin/python benchmarks/bench_comfy_overhead.py [--jobs 40] [--url http://127.0.0.1:8188]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from studio_core.models import GenerationRequest, JobImage  # noqa: E402
from studio_core.providers.comfy.provider import ComfyProvider  # noqa: E402


def graph() -> dict:
    return {"1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1,
                                                          "color": random.randrange(1 << 24)}},
            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "bench"}}}


class RawClient:
    """The least a correct client does: shared ws + client_id, POST, wait for executing null, history, view."""

    def __init__(self, url: str):
        self.url = url
        self.cid = uuid.uuid4().hex

    async def __aenter__(self):
        self.http = httpx.AsyncClient(base_url=self.url, trust_env=False)
        self.ws = await connect(self.url.replace("http", "ws", 1) + f"/ws?clientId={self.cid}", max_size=64 << 20,
                                compression=None, proxy=None)
        return self

    async def __aexit__(self, *exc):
        await self.ws.close()
        await self.http.aclose()

    async def job(self, g: dict) -> bytes:
        r = await self.http.post("/prompt", json={"prompt": g, "client_id": self.cid})
        pid = r.json()["prompt_id"]
        while True:
            msg = await self.ws.recv()
            if isinstance(msg, str):
                m = json.loads(msg)
                if m["type"] == "executing" and m["data"].get("node") is None and m["data"].get("prompt_id") == pid:
                    break
        hist = (await self.http.get(f"/history/{pid}")).json()[pid]
        ref = next(iter(hist["outputs"].values()))["images"][0]
        return (await self.http.get("/view", params=ref)).content


async def provider_job(prov: ComfyProvider, g: dict) -> bytes:
    req = GenerationRequest(prompt="bench", width=64, height=64, seed=1, options={"workflow": json.dumps(g)})
    data = b""
    async for e in prov.generate(req, job_id="bench"):
        if isinstance(e, JobImage):
            data = e.data
    return data


async def run(url: str, jobs: int, warmup: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"raw": [], "provider": []}
    async with RawClient(url) as raw:
        prov = ComfyProvider(url)
        try:
            for _ in range(warmup):
                await raw.job(graph())
                await provider_job(prov, graph())
            for i in range(jobs):
                order = ("raw", "provider") if i % 2 == 0 else ("provider", "raw")
                for who in order:
                    g = graph()
                    t0 = time.perf_counter()
                    data = await (raw.job(g) if who == "raw" else provider_job(prov, g))
                    times[who].append(time.perf_counter() - t0)
                    assert data.startswith(b"\x89PNG"), who
        finally:
            await prov.aclose()
    return times


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--url", default="", help="use a running server instead of starting the test server")
    a = ap.parse_args()
    proc = None
    url = a.url
    if not url:
        spec = importlib.util.spec_from_file_location("comfy_test_server", ROOT / "tools" / "comfy_test_server.py")
        tool = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(tool)
        proc, url = tool.start()
    try:
        times = asyncio.run(run(url, a.jobs, a.warmup))
    finally:
        if proc is not None:
            tool.stop(proc)
    print(f"ComfyUI at {url}, {a.jobs} jobs each (after {a.warmup} warm-up), EmptyImage 64² → SaveImage")
    print(f"{'client':<10}{'median ms':>11}{'mean ms':>10}{'p90 ms':>9}{'min ms':>9}")
    for who, ts in times.items():
        ms = sorted(t * 1000 for t in ts)
        print(f"{who:<10}{statistics.median(ms):>11.1f}{statistics.fmean(ms):>10.1f}{ms[int(len(ms) * 0.9) - 1]:>9.1f}{ms[0]:>9.1f}")
    ratio = statistics.median(times["provider"]) / statistics.median(times["raw"])
    print(f"provider / raw (median): {ratio:.2f}×  (goal ≤ 1.20×)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
