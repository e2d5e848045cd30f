"""ComfyProvider against a real (March-2024, CPU, no weights) ComfyUI server.

The server comes from tools/comfy_test_server.py, installed into the test cache on first
use. Model-free graphs (EmptyImage → ImageScale/ImageBlur → SaveImage) really run; the
SD graphs from the builder are validated by the server, which may only miss their weights.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from pathlib import Path

import httpx
import pytest

from studio_core.errors import MissingModels, ValidationFailed
from studio_core.models import GenerationRequest, JobImage, JobNotice, JobProgress, JobStarted, ServiceState
from studio_core.providers.comfy.provider import ComfyProvider
from studio_core.storage.images import check_image_bytes, read_metadata, save_generated_image
from tests.conftest import run_async

pytestmark = pytest.mark.comfy_server
ROOT = Path(__file__).resolve().parents[2]


def _tool():
    spec = importlib.util.spec_from_file_location("comfy_test_server", ROOT / "tools" / "comfy_test_server.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("comfy_test_server", mod)
    spec.loader.exec_module(mod)
    return mod


_TOOL = _tool()
# Resolved at import: the autouse isolation fixture later points XDG_CACHE_HOME at a temp folder.
_CACHE = str(_TOOL.cache_root())


@pytest.fixture(scope="module")
def comfy_url(tmp_path_factory: pytest.TempPathFactory):
    tool = _TOOL
    log = tmp_path_factory.mktemp("comfy") / "server.log"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STUDIO_TEST_CACHE", _CACHE)
        proc, url = tool.start(log_path=log)
    try:
        yield url
    finally:
        tool.stop(proc)


def model_free(*, size: int = 64, blur_stages: int = 0) -> dict:
    return _TOOL.model_free_graph(size=size, blur_stages=blur_stages)


def req(graph: dict, **kw) -> GenerationRequest:
    # width/height/seed stay out of the graph: the mapping finds EmptyImage's size, so keep it.
    return GenerationRequest(prompt="model-free test", width=graph["1"]["inputs"]["width"],
                             height=graph["1"]["inputs"]["height"], seed=1, options={"workflow": json.dumps(graph)}, **kw)


def test_check_reports_a_ready_server(comfy_url):
    async def main():
        prov = ComfyProvider(comfy_url)
        try:
            return await prov.check(), await prov.list_models(), await prov.object_info()
        finally:
            await prov.aclose()

    status, models, info = run_async(main())
    assert status.state is ServiceState.ready
    assert status.detail("device") == "cpu" and status.detail("vram_total") > 0 and status.detail("queue_length") == 0
    assert models == () and "KSampler" in info


def test_full_generation_ends_as_saved_png_with_metadata(comfy_url, tmp_path: Path):
    graph = model_free()

    async def main():
        prov = ComfyProvider(comfy_url)
        try:
            return [e async for e in prov.generate(req(graph), job_id="real-1")]
        finally:
            await prov.aclose()

    events = run_async(main())
    assert isinstance(events[0], JobStarted)
    images = [e for e in events if isinstance(e, JobImage)]
    assert len(images) == 1
    img = check_image_bytes(images[0].data)
    assert img.size == (96, 80)
    r = req(graph)
    saved = save_generated_image(images[0].data, r, folder=tmp_path / "images", seed=images[0].seed,
                                 info=dict(images[0].info), extra_text=dict(images[0].extra_text))
    meta = read_metadata(saved.path)
    assert json.loads(meta.comfy_prompt)["3"]["class_type"] == "SaveImage"
    assert meta.request is not None and meta.request.prompt == "model-free test"
    assert saved.path.parent == tmp_path / "images" and saved.width == 96


def test_cancel_pending_and_interrupt_running(comfy_url):
    long_graph = model_free(size=768, blur_stages=12)

    async def main():
        prov = ComfyProvider(comfy_url)
        ids: dict[str, str] = {}
        running = asyncio.Event()
        b_started = asyncio.Event()

        async def run(name, graph):
            async for e in prov.generate(req(graph), job_id=name):
                if isinstance(e, JobStarted):
                    ids[name] = e.server_job_id
                    if name == "b":
                        b_started.set()
                if isinstance(e, JobProgress) and name == "a":
                    running.set()

        ta = asyncio.create_task(run("a", long_graph))
        await asyncio.wait_for(running.wait(), 60)
        tb = asyncio.create_task(run("b", model_free()))
        await asyncio.wait_for(b_started.wait(), 30)
        async with httpx.AsyncClient(base_url=comfy_url) as http:
            pending = [i[1] for i in (await http.get("/queue")).json()["queue_pending"]]
            assert ids["b"] in pending
            tb.cancel()
            await asyncio.gather(tb, return_exceptions=True)
            q = (await http.get("/queue")).json()
            assert ids["b"] not in [i[1] for i in q["queue_pending"] + q["queue_running"]]
            ta.cancel()
            await asyncio.gather(ta, return_exceptions=True)
            for _ in range(100):  # interrupt acts between nodes
                hist = (await http.get(f"/history/{ids['a']}")).json()
                if hist:
                    break
                await asyncio.sleep(0.1)
            b_hist = (await http.get(f"/history/{ids['b']}")).json()
        await prov.aclose()
        return hist[ids["a"]], b_hist

    a_entry, b_hist = run_async(main(), timeout=120)
    assert b_hist == {}  # deleted before it ran
    assert a_entry["status"]["status_str"] == "error"
    assert a_entry["status"]["messages"][-1][0] == "execution_interrupted"


def test_socket_cut_mid_job_recovers_result(comfy_url):
    graph = model_free(size=512, blur_stages=3)

    async def main():
        prov = ComfyProvider(comfy_url)
        events = []
        dropped = False
        try:
            async for e in prov.generate(req(graph), job_id="cut"):
                events.append(e)
                if isinstance(e, JobProgress) and not dropped:
                    dropped = True
                    await prov.client.drop_connection()
            return events, prov.client.reconnects
        finally:
            await prov.aclose()

    events, reconnects = run_async(main(), timeout=120)
    assert any(isinstance(e, JobNotice) and "lost" in e.message for e in events)
    images = [e for e in events if isinstance(e, JobImage)]
    assert len(images) == 1 and check_image_bytes(images[0].data).size == (96, 80)


def test_validation_error_is_readable(comfy_url):
    graph = model_free()
    graph["2"]["inputs"]["upscale_method"] = "magic"

    async def main():
        prov = ComfyProvider(comfy_url)
        try:
            with pytest.raises(ValidationFailed) as ei:
                async for _ in prov.generate(req(graph), job_id="bad"):
                    pass
            return ei.value
        finally:
            await prov.aclose()

    err = run_async(main())
    assert "ImageScale (node 2): 'magic' is not a valid choice for upscale_method" in err.user_message


@pytest.mark.parametrize("model", ["v1-5-pruned-emaonly.safetensors", "sd_xl_base_1.0.safetensors"])
def test_builder_graphs_fail_only_on_missing_weights(comfy_url, model):
    async def main():
        prov = ComfyProvider(comfy_url)
        try:
            with pytest.raises(MissingModels) as ei:
                async for _ in prov.generate(GenerationRequest(prompt="slime", model=model, steps=20, batch=2), job_id="sd"):
                    pass
            return ei.value
        finally:
            await prov.aclose()

    err = run_async(main())
    assert err.missing == (model,)
    assert f"checkpoint {model} is not on the server" in err.user_message
