"""Image inputs through the server pool: every member reads the data folder's input store,
and a job that moves to another server uploads its images there before posting the graph.

The fake below adds what tests/comfy_fake_server.py leaves out: ``HEAD /view?type=input``
and ``POST /upload/image`` (multipart, as ComfyUI's server.py takes it: the file in
``image``, ``type`` and ``overwrite`` fields; reply ``{name, subfolder, type}``), and, like
ComfyUI's LoadImage validation, a prompt whose image is not in the input folder is refused.
"""

from __future__ import annotations

import hashlib
import io
import json

from PIL import Image

from studio_core.input_store import InputStore
from studio_core.inputs import ImageInputs, InitImage
from studio_core.models import GenerationRequest, JobImage, JobNotice, JobStarted
from studio_core.pool.provider import PoolProvider
from studio_core.pool.server_list import entries_to_settings
from studio_core.pool.servers import ServerSpec
from studio_core.providers.comfy.input_nodes import input_filename
from tests.comfy_fake_server import Behaviour, FakeComfyServer
from tests.conftest import run_async
from tests.core.test_pool_runtime import info_with

JS = "application/json; charset=utf-8"


def multipart(body: bytes) -> dict[str, tuple[str, bytes]]:
    """``{field: (filename, bytes)}`` of a multipart/form-data body (the boundary is its first line)."""
    boundary = body.split(b"\r\n", 1)[0]
    out = {}
    for part in body.split(boundary)[1:]:
        if part.startswith(b"--"):
            break
        head, _, data = part.partition(b"\r\n\r\n")
        disp = next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-disposition"))
        fields = dict(x.strip().split(b"=", 1) for x in disp.split(b";")[1:])
        out[fields[b"name"].strip(b'"').decode()] = (fields.get(b"filename", b"").strip(b'"').decode(), data[:-2])
    return out


class UploadingFake(FakeComfyServer):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.inputs: dict[str, bytes] = {}
        self.order: list[str] = []  # "HEAD name", "upload name", "prompt" as they arrived

    async def _route(self, method, path, query, body):
        if method == "HEAD" and path == "/view" and query.get("type") == ["input"]:
            name = query.get("filename", [""])[0]
            self.order.append(f"HEAD {name}")
            return (200, "image/png", b"") if name in self.inputs else (404, "text/plain", b"")
        if method == "POST" and path == "/upload/image":
            parts = multipart(body)
            name, data = parts["image"]
            assert parts["type"][1] == b"input"
            self.inputs[name] = data
            self.order.append(f"upload {name}")
            self.requests.append((method, path, None))
            return 200, JS, json.dumps({"name": name, "subfolder": "", "type": "input"}).encode()
        if method == "POST" and path == "/prompt":
            self.order.append("prompt")
        return await super()._route(method, path, query, body)

    def _post_prompt(self, data):
        graph = (data or {}).get("prompt") or {} if isinstance(data, dict) else {}
        for nid, node in graph.items():
            image = node.get("inputs", {}).get("image")
            if node.get("class_type") == "LoadImage" and image not in self.inputs:
                body = {"error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
                                  "details": "", "extra_info": {}},
                        "node_errors": {nid: {"errors": [{"type": "custom_validation_failed",
                                                          "message": "Custom validation failed for node",
                                                          "details": f"image - Invalid image file: {image}",
                                                          "extra_info": {}}],
                                              "dependent_outputs": [], "class_type": "LoadImage"}}}
                return 400, JS, json.dumps(body).encode()
        return super()._post_prompt(data)


def inputs_info() -> dict:
    """The 0.3.64 subset plus the nodes an img2img graph uses (their recorded definitions)."""
    from tests.core.test_comfy_inputs_graphs import DATA

    info = info_with(["a.safetensors"])
    info.update(json.loads((DATA / "comfy_object_info_inputs_0.3.64.json").read_text()))
    return info


def picture() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (180, 60, 40)).save(buf, "PNG")
    return buf.getvalue()


def test_a_job_with_an_init_image_moves_to_another_server_and_uploads_it_there(tmp_path):
    store = InputStore.in_data_folder(tmp_path / "data")
    init = store.add_init(picture(), target=(64, 64))
    name = input_filename(init.digest)
    request = GenerationRequest(prompt="a slime", width=64, height=64, steps=4, seed=7, model="a.safetensors",
                                inputs=ImageInputs(init=InitImage(init.digest, 0.5)))

    async def main():
        dying = UploadingFake(behaviour=Behaviour(step_delay=0.05, die_at_step=2), object_info=inputs_info())
        async with dying, UploadingFake(object_info=inputs_info()) as good:
            p = PoolProvider([ServerSpec(id="laptop", name="laptop", url=dying.url, running_slots=1, queued_slots=0),
                              ServerSpec(id="pc", name="my PC", url=good.url, running_slots=1, queued_slots=0)],
                             secret=lambda name: None, lost_server_grace_s=0.5, poll_s=0.2)
            p.input_store = store  # as the service registry hands it over after the factory
            try:
                events = [e async for e in p.generate(request, job_id="j1")]
            finally:
                await p.aclose()
            return dying, good, events

    dying, good, events = run_async(main())
    # The first server got the image before the graph, then died mid-job.
    assert dying.order == [f"HEAD {name}", f"upload {name}", "prompt"]
    # The second got its own upload, then the graph; the bytes are the stored ones.
    assert good.order == [f"HEAD {name}", f"upload {name}", "prompt"]
    assert hashlib.sha256(good.inputs[name]).hexdigest() == init.digest
    graph = good.posted("/prompt")[0]["prompt"]
    assert [n["inputs"]["image"] for n in graph.values() if n["class_type"] == "LoadImage"] == [name]
    images = [e for e in events if isinstance(e, JobImage)]
    assert len(images) == 1 and dict(images[0].info)["server_name"] == "my PC"
    assert ImageInputs.from_dict(dict(images[0].info)["inputs"]) == request.inputs
    assert [type(e) for e in events].count(JobStarted) == 1
    assert any("continues on 'my PC'" in e.message for e in events if isinstance(e, JobNotice))


def test_a_server_that_already_holds_the_image_is_not_sent_it_again(tmp_path):
    store = InputStore.in_data_folder(tmp_path / "data")
    init = store.add_init(picture(), target=(64, 64))
    name = input_filename(init.digest)
    request = GenerationRequest(prompt="a slime", width=64, height=64, steps=2, seed=1, model="a.safetensors",
                                inputs=ImageInputs(init=InitImage(init.digest, 0.5)))

    async def main():
        async with UploadingFake(object_info=inputs_info()) as fake:
            fake.inputs[name] = store.read(init.digest)
            p = PoolProvider([ServerSpec(id="pc", name="my PC", url=fake.url)], secret=lambda name: None)
            p.input_store = store
            try:
                events = [e async for e in p.generate(request, job_id="j1")]
            finally:
                await p.aclose()
            return fake, events

    fake, events = run_async(main())
    assert fake.order == [f"HEAD {name}", "prompt"]
    assert len([e for e in events if isinstance(e, JobImage)]) == 1


def test_the_registry_gives_every_pool_member_the_data_folders_input_store(tmp_path):
    from studio_core.secrets import SecretStore
    from studio_core.services import ServiceRegistry
    from studio_core.settings import SettingsStore

    settings = SettingsStore(tmp_path / "settings.json")
    settings.update(**entries_to_settings([ServerSpec(id="pc", name="my PC", url="http://127.0.0.1:1"),
                                           ServerSpec(id="laptop", name="laptop", url="http://10.0.0.5:8188")]))
    reg = ServiceRegistry(settings, SecretStore(tmp_path / "s.json", use_keyring=False))
    reg.data_dir = tmp_path / "data"
    pool = reg.provider("comfyui")
    try:
        assert [m.id for m in pool.members] == ["pc", "laptop"]
        for m in pool.members:
            assert m.provider.input_store is not None
            assert m.provider.input_store.folder == tmp_path / "data" / "inputs", m.id
    finally:
        run_async(pool.aclose())
        settings.close()
