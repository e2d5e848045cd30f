"""ComfyProvider against the protocol-faithful fake server (tests/comfy_fake_server.py)."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from pathlib import Path

import pytest

from studio_core.errors import (
    GenerationFailed,
    InvalidResponse,
    JobTimedOut,
    MissingModels,
    NotAComfyServer,
    OutOfVram,
    ProviderUnavailable,
    ValidationFailed,
    WorkflowError,
)
from studio_core.models import GenerationRequest, JobImage, JobNotice, JobProgress, JobStarted, ServiceState
from studio_core.providers.comfy.provider import ComfyProvider, create
from studio_core.storage.images import read_metadata, save_generated_image
from tests.comfy_fake_server import Behaviour, FakeComfyServer
from tests.conftest import run_async

REQ = GenerationRequest(prompt="a red potion bottle, pixel art", width=512, height=512, steps=4, seed=42)


async def collect(provider: ComfyProvider, request: GenerationRequest = REQ, job_id: str = "job-1") -> list:
    return [e async for e in provider.generate(request, job_id=job_id)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("version", ["2025", "2024"])
def test_generation_progress_previews_and_image(version: str, tmp_path: Path):
    async def main():
        async with FakeComfyServer(version=version) as fake:
            prov = ComfyProvider(fake.url)
            try:
                events = await collect(prov)
            finally:
                await prov.aclose()
            return fake, events, prov.client.client_id

    fake, events, client_id = run_async(main())
    assert isinstance(events[0], JobStarted)
    steps = [(e.step, e.total) for e in events if isinstance(e, JobProgress) and e.preview is None]
    assert steps == [(1, 4), (2, 4), (3, 4), (4, 4)]
    previews = [e for e in events if isinstance(e, JobProgress) and e.preview]
    assert len(previews) == 4 and all(p.preview_mime == "image/jpeg" for p in previews)
    images = [e for e in events if isinstance(e, JobImage)]
    assert len(images) == 1 and images[0].seed == 42 and images[0].data.startswith(b"\x89PNG")
    graph = json.loads(dict(images[0].extra_text)["prompt"])
    assert graph == fake.posted("/prompt")[0]["prompt"]
    assert dict(images[0].info)["server"] == fake.url
    body = fake.posted("/prompt")[0]
    assert body["client_id"] == client_id and dict(images[0].info)["prompt_id"] == events[0].server_job_id
    if version == "2025":  # the 2024 server ignores the client's prompt_id and picks its own
        assert body["prompt_id"] == events[0].server_job_id
    saved = save_generated_image(images[0].data, REQ, folder=tmp_path, seed=images[0].seed,
                                 extra_text=dict(images[0].extra_text))
    assert read_metadata(saved.path).comfy_prompt


def test_type4_previews_only_after_feature_flags():
    async def main():
        async with FakeComfyServer(version="2025") as fake:
            prov = ComfyProvider(fake.url)
            try:
                await collect(prov)
            finally:
                await prov.aclose()
            return fake

    fake = run_async(main())
    assert all(fake.flags.values())  # the client sent feature_flags, so the fake sent type 4 frames


def test_out_of_memory_becomes_out_of_vram():
    async def main():
        async with FakeComfyServer(behaviour=Behaviour(fail="oom")) as fake:
            prov = ComfyProvider(fake.url)
            try:
                await collect(prov)
            finally:
                await prov.aclose()

    with pytest.raises(OutOfVram) as ei:
        run_async(main())
    assert "memory" in ei.value.user_message.lower()


def test_server_dying_mid_job_gives_clear_error():
    async def main():
        async with FakeComfyServer(behaviour=Behaviour(die_at_step=2, step_delay=0.01)) as fake:
            prov = ComfyProvider(fake.url, lost_server_grace_s=0.5)
            events = []
            try:
                async for e in prov.generate(REQ, job_id="j"):
                    events.append(e)
            except ProviderUnavailable as exc:
                return events, exc
            finally:
                await prov.aclose()

    events, exc = run_async(main())
    assert "stopped answering" in exc.user_message and "Start ComfyUI" in exc.user_message
    assert any(isinstance(e, JobNotice) and "reconnecting" in e.message for e in events)


@pytest.mark.parametrize("mute", [False, True])
def test_socket_drop_recovers_result_from_history(mute: bool):
    async def main():
        b = Behaviour(drop_ws_at_step=2, step_delay=0.05, mute_after_drop=mute)
        async with FakeComfyServer(behaviour=b) as fake:
            prov = ComfyProvider(fake.url)
            try:
                return fake, await collect(prov)
            finally:
                await prov.aclose()

    fake, events = run_async(main())
    assert [e for e in events if isinstance(e, JobImage)]
    assert any(isinstance(e, JobNotice) and "lost" in e.message for e in events)
    assert fake.ws_connects >= 2


def test_view_returning_non_image_bytes():
    async def main():
        async with FakeComfyServer(behaviour=Behaviour(view_body=b"<html>oops</html>")) as fake:
            prov = ComfyProvider(fake.url)
            try:
                await collect(prov)
            finally:
                await prov.aclose()

    with pytest.raises(InvalidResponse) as ei:
        run_async(main())
    assert "not an image" in ei.value.user_message


def test_hostile_server_filename_is_never_a_local_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    b = Behaviour(filename="../../../../tmp/evil.png", subfolder="../..", out_type="output")

    async def main():
        async with FakeComfyServer(behaviour=b) as fake:
            prov = ComfyProvider(fake.url)
            try:
                return fake, await collect(prov)
            finally:
                await prov.aclose()

    fake, events = run_async(main())
    img = next(e for e in events if isinstance(e, JobImage))
    views = [b for m, p, b in fake.requests if p == "/view"]
    assert views  # asked for exactly the server's name, as a query parameter
    out = tmp_path / "gallery"
    saved = save_generated_image(img.data, REQ, folder=out, seed=img.seed)
    assert saved.path.parent == out and "evil" not in saved.path.name
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [saved.path.name]


def test_server_not_running():
    async def main():
        prov = ComfyProvider(f"http://127.0.0.1:{free_port()}")
        try:
            status = await prov.check()
            with pytest.raises(ProviderUnavailable) as ei:
                await collect(prov)
            return status, ei.value
        finally:
            await prov.aclose()

    status, exc = run_async(main())
    assert status.state is ServiceState.unreachable
    assert "Start ComfyUI" in status.message and "Settings → ComfyUI server" in status.message
    assert ("run_nvidia_gpu.bat" in status.message) == sys.platform.startswith("win")
    assert "Start ComfyUI" in exc.user_message


@pytest.mark.parametrize("platform,present,absent", [
    ("win32", ("run_nvidia_gpu.bat", "ComfyUI Desktop"), ("python main.py",)),
    ("linux", ("python main.py",), ("run_nvidia_gpu.bat", ".bat")),
    ("darwin", ("python main.py", "ComfyUI Desktop"), ("run_nvidia_gpu.bat",)),
])
def test_start_hint_fits_the_platform(platform, present, absent):
    from studio_core.providers.comfy.client import start_hint

    hint = start_hint(platform)
    assert all(p in hint for p in present) and not any(a in hint for a in absent)
    assert "Settings → ComfyUI server" in hint


def test_not_a_comfy_server():
    async def main():
        async with FakeComfyServer(behaviour=Behaviour(html=True)) as fake:
            prov = ComfyProvider(fake.url)
            try:
                status = await prov.check()
                with pytest.raises(NotAComfyServer) as ei:
                    await collect(prov)
                return status, ei.value
            finally:
                await prov.aclose()

    status, exc = run_async(main())
    assert status.state is ServiceState.error and "not" in status.message and "ComfyUI" in status.message
    assert "ComfyUI" in exc.user_message


@pytest.mark.parametrize("url", ["http://", "ftp://host:8188", "htp//bad host", "http://127.0.0.1:99999"])
def test_wrong_url_format(url: str):
    async def main():
        prov = ComfyProvider(url)
        try:
            return await prov.check()
        finally:
            await prov.aclose()

    status = run_async(main())
    assert status.state is ServiceState.error and "http://127.0.0.1:8188" in status.message


def test_check_reports_health_details():
    async def main():
        async with FakeComfyServer() as fake:
            prov = ComfyProvider(fake.url)
            try:
                return await prov.check()
            finally:
                await prov.aclose()

    st = run_async(main())
    assert st.state is ServiceState.ready
    assert st.detail("version") == "0.3.64" and st.detail("device") == "cpu"
    assert st.detail("vram_total") > 0 and st.detail("queue_length") == 0


def test_missing_checkpoint_is_missing_models():
    async def main():
        async with FakeComfyServer(behaviour=Behaviour(missing_models=True)) as fake:
            prov = ComfyProvider(fake.url)
            try:
                await collect(prov)
            finally:
                await prov.aclose()

    with pytest.raises(MissingModels) as ei:
        run_async(main())
    assert ei.value.missing == ("sd_xl_base_1.0.safetensors",)
    assert "checkpoint sd_xl_base_1.0.safetensors is not on the server" in ei.value.user_message


def test_200_with_node_errors_is_refused_and_job_removed():
    async def main():
        async with FakeComfyServer(behaviour=Behaviour(node_errors_on_200=True, hold=True)) as fake:
            prov = ComfyProvider(fake.url)
            try:
                with pytest.raises(ValidationFailed) as ei:
                    await collect(prov)
            finally:
                await prov.aclose()
            return fake, ei.value

    fake, exc = run_async(main())
    assert "crop" in exc.user_message and "ImageScale" in exc.user_message
    assert fake.posted("/queue") == [{"delete": [fake.posted("/prompt")[0]["prompt_id"]]}]


def test_flux_on_2024_server_is_refused_before_posting():
    async def main():
        async with FakeComfyServer(version="2024") as fake:
            prov = ComfyProvider(fake.url)
            try:
                await collect(prov, REQ.replace(model="flux1-schnell.safetensors", steps=4).with_options(loader="unet"))
            finally:
                await prov.aclose()

    with pytest.raises(Exception) as ei:
        run_async(main())
    assert "FLUX" in getattr(ei.value, "user_message", "")


def test_timeout_keeps_finished_images_then_raises(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("COMFYUI_TIMEOUT", "400")
    # Two outputs: the first SaveImage finishes, then the sampler of the second part hangs.
    graph = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 16, "height": 16, "batch_size": 1, "color": 0}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "a"}},
        "3": {"class_type": "KSampler", "inputs": {"steps": 3, "seed": 1}},
    }

    async def main():
        async with FakeComfyServer(behaviour=Behaviour(hang=True, step_delay=0.02)) as fake:
            prov = create(type("S", (), {"comfy_url": fake.url, "comfy_model": ""})(), None)
            assert prov.timeout_s == pytest.approx(0.4)
            events = []
            try:
                async for e in prov.generate(REQ.with_options(workflow=json.dumps(graph)), job_id="j"):
                    events.append(e)
            except JobTimedOut as exc:
                await asyncio.sleep(0.1)
                return fake, events, exc
            finally:
                await prov.aclose()

    fake, events, exc = run_async(main())
    assert [e for e in events if isinstance(e, JobImage)]
    assert "kept" in exc.user_message
    assert fake.posted("/interrupt")


def test_cancel_pending_deletes_and_cancel_running_interrupts():
    async def main():
        async with FakeComfyServer(behaviour=Behaviour(step_delay=0.05)) as fake:
            prov = ComfyProvider(fake.url)
            started = {"a": asyncio.Event(), "b": asyncio.Event()}
            progressed = asyncio.Event()

            async def run(name: str, steps: int):
                async for e in prov.generate(REQ.replace(steps=steps), job_id=name):
                    if isinstance(e, JobStarted):
                        started[name].set()
                    if isinstance(e, JobProgress) and name == "a":
                        progressed.set()

            ta = asyncio.create_task(run("a", 200))
            await progressed.wait()
            tb = asyncio.create_task(run("b", 3))
            await started["b"].wait()
            tb.cancel()
            await asyncio.gather(tb, return_exceptions=True)
            ta.cancel()
            await asyncio.gather(ta, return_exceptions=True)
            await asyncio.sleep(0.2)
            await prov.aclose()
            return fake

    fake = run_async(main())
    bodies = [b for b in fake.posted("/prompt")]
    a_id, b_id = bodies[0]["prompt_id"], bodies[1]["prompt_id"]
    # Each cancel deletes from the queue and then interrupts by prompt_id, whatever the job's state.
    assert fake.posted("/queue") == [{"delete": [b_id]}, {"delete": [a_id]}]
    assert fake.posted("/interrupt") == [{"prompt_id": b_id}, {"prompt_id": a_id}]
    order = [(m, p) for m, p, _ in fake.requests if (m, p) in (("POST", "/queue"), ("POST", "/interrupt"))]
    assert order == [("POST", "/queue"), ("POST", "/interrupt")] * 2
    assert b_id not in fake.history  # never ran
    assert fake.history[a_id]["status"]["status_str"] == "error"


def test_cancel_method_ends_job_quietly():
    async def main():
        async with FakeComfyServer(behaviour=Behaviour(step_delay=0.05)) as fake:
            prov = ComfyProvider(fake.url)
            events = []

            async def run():
                async for e in prov.generate(REQ.replace(steps=200), job_id="x"):
                    events.append(e)
                    if isinstance(e, JobProgress):
                        await prov.cancel("x")

            await asyncio.wait_for(run(), 20)
            await prov.aclose()
            return fake, events

    fake, events = run_async(main())
    assert fake.posted("/interrupt") and not [e for e in events if isinstance(e, JobImage)]


def test_broken_custom_workflow_says_how_to_export():
    async def main():
        async with FakeComfyServer() as fake:
            prov = ComfyProvider(fake.url)
            try:
                await collect(prov, REQ.with_options(workflow='{"nodes": [], "links": []}'))
            finally:
                await prov.aclose()

    with pytest.raises(WorkflowError) as ei:
        run_async(main())
    assert "API" in ei.value.user_message


def test_interrupted_by_someone_else_is_an_error():
    async def main():
        async with FakeComfyServer(behaviour=Behaviour(step_delay=0.05)) as fake:
            prov = ComfyProvider(fake.url)
            try:
                async for e in prov.generate(REQ.replace(steps=100), job_id="x"):
                    if isinstance(e, JobProgress):
                        fake._interrupt = True
            finally:
                await prov.aclose()

    with pytest.raises(GenerationFailed):
        run_async(main())


def test_one_websocket_serves_concurrent_jobs():
    async def main():
        async with FakeComfyServer() as fake:
            prov = ComfyProvider(fake.url)
            try:
                results = await asyncio.gather(*(collect(prov, REQ.replace(seed=i), f"j{i}") for i in range(3)))
            finally:
                await prov.aclose()
            return fake, results

    fake, results = run_async(main())
    assert fake.ws_connects == 1
    for i, events in enumerate(results):
        imgs = [e for e in events if isinstance(e, JobImage)]
        assert len(imgs) == 1 and imgs[0].seed == i and imgs[0].job_id == f"j{i}"


def test_2024_messages_before_the_post_reply_are_not_lost():
    async def main():
        async with FakeComfyServer(version="2024", behaviour=Behaviour(run_before_reply=True)) as fake:
            prov = ComfyProvider(fake.url)
            try:
                return await asyncio.wait_for(collect(prov), 20)
            finally:
                await prov.aclose()

    events = run_async(main())
    assert len([e for e in events if isinstance(e, JobImage)]) == 1
    assert len([e for e in events if isinstance(e, JobProgress) and e.preview]) == 4


def test_large_preview_frames_fit_the_receive_limit():
    async def main():
        async with FakeComfyServer(behaviour=Behaviour(preview_bytes=5 * 1024 * 1024)) as fake:
            prov = ComfyProvider(fake.url)
            try:
                return await collect(prov, REQ.replace(steps=2))
            finally:
                await prov.aclose()

    events = run_async(main())
    previews = [e for e in events if isinstance(e, JobProgress) and e.preview]
    assert len(previews) == 2 and len(previews[0].preview) == 5 * 1024 * 1024


PREVIEW_ONLY = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 20, "height": 10, "batch_size": 1, "color": 0}},
    "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
    "3": {"class_type": "KSampler", "inputs": {"steps": 2, "seed": 1}},
}


def test_preview_only_workflow_downloads_temp_images_with_subfolder():
    async def main():
        async with FakeComfyServer(behaviour=Behaviour(subfolder="sub/dir")) as fake:
            prov = ComfyProvider(fake.url)
            try:
                return fake, await collect(prov, REQ.with_options(workflow=json.dumps(PREVIEW_ONLY)))
            finally:
                await prov.aclose()

    fake, events = run_async(main())
    imgs = [e for e in events if isinstance(e, JobImage)]
    assert len(imgs) == 1 and imgs[0].seed == 42
    assert [b for m, p, b in fake.requests if p == "/view"]
    assert ("temp", "sub/dir", "studio_00001_.png") in fake.files


def test_timeout_still_hands_up_finished_preview_images(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("COMFYUI_TIMEOUT", "300")

    async def main():
        async with FakeComfyServer(behaviour=Behaviour(hang=True, step_delay=0.02)) as fake:
            graph = dict(PREVIEW_ONLY)
            prov = ComfyProvider(fake.url)
            events = []
            try:
                async for e in prov.generate(REQ.with_options(workflow=json.dumps(graph)), job_id="t"):
                    events.append(e)
            except JobTimedOut:
                return events
            finally:
                await prov.aclose()

    events = run_async(main())
    assert len([e for e in events if isinstance(e, JobImage)]) == 1


def test_models_samplers_and_factory_from_settings():
    from studio_core.settings import Settings

    info = json.loads((Path(__file__).parent.parent / "data" / "comfy_object_info_0.3.64.json").read_text())
    info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"] = [["sd_xl_base_1.0.safetensors", "SD15/dreamshaper_8.safetensors"], {}]
    info["UNETLoader"]["input"]["required"]["unet_name"] = ["COMBO", {"options": ["flux1-schnell.safetensors"]}]

    async def main():
        async with FakeComfyServer(object_info=info) as fake:
            prov = create(Settings().replace(comfy_url=fake.url.replace("http://", "") + "/"), None)
            try:
                before = prov.samplers()
                models = await prov.list_models()
                return before, models, prov.samplers(), prov.schedulers(), prov
            finally:
                await prov.aclose()

    before, models, samplers, schedulers, prov = run_async(main())
    assert "euler" in before
    assert [(m.id, m.family) for m in models] == [("sd_xl_base_1.0.safetensors", "sdxl"),
                                                  ("SD15/dreamshaper_8.safetensors", "sd15"),
                                                  ("flux1-schnell.safetensors", "flux")]
    assert "dpmpp_2m" in samplers and "karras" in schedulers
    assert prov.base_url.startswith("http://127.0.0.1:") and prov.timeout_s == 20 * 60


def test_execution_success_without_final_executing_still_ends():
    async def main():
        async with FakeComfyServer(behaviour=Behaviour(skip_final_executing=True)) as fake:
            prov = ComfyProvider(fake.url)
            try:
                return await asyncio.wait_for(collect(prov), 20)
            finally:
                await prov.aclose()

    events = run_async(main())
    assert len([e for e in events if isinstance(e, JobImage)]) == 1
