"""Preparing image inputs must not slow a job.

Measures, against the real CPU ComfyUI test server, hashing + checking + resizing + storing
a 2048² init image (target 512²) and 4 reference images and uploading them through the
provider (HEAD /view, then POST /upload/image), against a raw httpx multipart upload of the
same source bytes in the same run. Every round uses new pixels, so nothing is skipped as
already uploaded and both sides really send. Goal: ours ≤ 1.3× raw.

The floor ("raw") sends the original files as they are, one after the other: no checking,
no hashing, no resizing. Ours stores the images one at a time (the Generate tab stores each
picture when it is dropped, before any job) and then uploads what a job's graph loads the
way a job does (ComfyProvider.upload_inputs); the second figure is that job-time part alone.

    python tools/dev.py bench inputs [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from studio_core.input_store import InputStore  # noqa: E402
from studio_core.providers.comfy.input_nodes import input_filename  # noqa: E402
from studio_core.providers.comfy.provider import ComfyProvider  # noqa: E402

GOAL = 1.3
REFERENCES = 4


def _server_tool():
    spec = importlib.util.spec_from_file_location("comfy_test_server", ROOT / "tools" / "comfy_test_server.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def make_image(path: Path, size: int, seed: int) -> None:
    """A sprite-like picture (shapes on a gradient), unique per seed, saved as PNG."""
    img = Image.linear_gradient("L").resize((size, size)).convert("RGB")
    draw = ImageDraw.Draw(img)
    for i in range(40):
        x, y = (seed * 97 + i * 211) % size, (seed * 31 + i * 157) % size
        draw.ellipse((x, y, x + size // 8, y + size // 10), fill=((seed * 40 + i * 13) % 256, i * 6 % 256, 120))
    # Painted texture, as in a real picture: without it the PNG is a few KB and nothing is measured.
    noise = Image.effect_noise((size, size), 40).convert("RGB")
    img = Image.blend(img, noise, 0.25)
    img.putpixel((0, 0), (seed % 256, seed // 256 % 256, 7))
    img.save(path, "PNG")


async def ours(url: str, store: InputStore, init: Path, refs: list[Path]) -> tuple[float, float, int]:
    """(total s, of which preparing s, bytes uploaded)."""
    prov = ComfyProvider(url, input_store=store)
    await prov.client.probe()
    t0 = time.perf_counter()
    stored = [await asyncio.to_thread(store.add_init, init, target=(512, 512))]
    for ref in refs:
        stored.append(await asyncio.to_thread(store.add_image, ref))
    prepared = time.perf_counter() - t0
    graph = {str(i): {"class_type": "LoadImage", "inputs": {"image": input_filename(s.digest)}}
             for i, s in enumerate(stored)}
    await prov.upload_inputs(graph)
    dt = time.perf_counter() - t0
    await prov.aclose()
    return dt, prepared, sum(s.path.stat().st_size for s in stored)


async def raw(url: str, files: list[Path]) -> float:
    async with httpx.AsyncClient(base_url=url, trust_env=False, timeout=120) as http:
        await http.get("/system_stats")
        t0 = time.perf_counter()
        for f in files:
            data = f.read_bytes()
            r = await http.post("/upload/image", files={"image": (f"raw-{f.name}", data, "image/png")},
                                data={"type": "input", "overwrite": "true"})
            r.raise_for_status()
        return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--ref-size", type=int, default=1024)
    a = ap.parse_args()
    tool = _server_tool()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        # Its own input folder: every round uploads new pictures, which must not pile up in the
        # cached test server's folder (nor be found there by a later run).
        (tmp_path / "server-input").mkdir()
        proc, url = tool.start(extra_args=("--input-directory", str(tmp_path / "server-input")))
        try:
            store = InputStore(tmp_path / "inputs")
            t_ours, t_raw, t_prep, t_up, sizes, sent = [], [], [], [], None, 0
            for r in range(a.rounds + 1):  # round 0 warms both paths up
                folder = tmp_path / f"r{r}"
                folder.mkdir()
                init = folder / "init.png"
                make_image(init, 2048, seed=r * 10)
                refs = [folder / f"ref{i}.png" for i in range(REFERENCES)]
                for i, ref in enumerate(refs):
                    make_image(ref, a.ref_size, seed=r * 10 + i + 1)
                sizes = sizes or sum(f.stat().st_size for f in [init, *refs])
                # Alternate which goes first so neither always meets a cold server cache.
                if r % 2:
                    o, w = asyncio.run(ours(url, store, init, refs)), asyncio.run(raw(url, [init, *refs]))
                else:
                    w, o = asyncio.run(raw(url, [init, *refs])), asyncio.run(ours(url, store, init, refs))
                o, prep, sent = o
                if r:
                    t_prep.append(prep)
                    t_up.append(o - prep)
                    t_ours.append(o)
                    t_raw.append(w)
        finally:
            tool.stop(proc)
    mo, mr = statistics.median(t_ours), statistics.median(t_raw)
    print(f"inputs: 2048² init + {REFERENCES} × {a.ref_size}² references, {sizes / 1e6:.1f} MB of PNG, {a.rounds} rounds")
    print(f"  raw httpx multipart upload of the source bytes : median {mr * 1000:7.1f} ms")
    print(f"  store (hash, check, resize init) + upload      : median {mo * 1000:7.1f} ms "
          f"(preparing {statistics.median(t_prep) * 1000:.1f} ms; {sent / 1e6:.1f} MB sent)")
    mu = statistics.median(t_up)
    print(f"    of which the upload a job waits for           : median {mu * 1000:7.1f} ms ({mu / mr:.2f}× raw)")
    ratio = mo / mr
    print(f"  ratio {ratio:.2f}× (goal ≤ {GOAL}×): {'met' if ratio <= GOAL else 'NOT met'}")
    print(f"  rounds (ours/raw ms): " + ", ".join(f"{o * 1000:.0f}/{w * 1000:.0f}" for o, w in zip(t_ours, t_raw)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
