"""Image inputs on OpenAI and Azure OpenAI: ``images.edit`` through the real ``openai`` SDK
against a loopback server; the multipart body is read back part by part."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from studio_core.errors import InputsNotSupported
from studio_core.input_store import InputStore
from studio_core.inputs import ControlImage, ImageInputs, InitImage, Mask, ReferenceImage
from studio_core.models import GenerationRequest, JobImage, JobNotice
from studio_core.providers.cloud import catalog
from studio_core.providers.cloud.azure_openai import AzureOpenAIProvider
from studio_core.providers.cloud.openai_images import OpenAIImagesProvider
from tests.cloud_servers import LoopbackServer, RecordingSleep, collect, of_type, openai_images, png_bytes
from tests.conftest import run_async

KEY = "sk-test-SECRET1234567890abcdef"
EDITS = r"/v1/images/edits"


def picture(w: int, h: int, color=(200, 40, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, "PNG")
    return buf.getvalue()


def noise(w: int, h: int) -> bytes:
    import os

    buf = io.BytesIO()
    Image.frombytes("L", (w, h), os.urandom(w * h)).save(buf, "PNG")
    return buf.getvalue()


def half_mask(w: int, h: int) -> bytes:
    img = Image.new("L", (w, h), 0)
    img.paste(255, (0, 0, w // 2, h))  # left half is redrawn
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def store(tmp_path) -> InputStore:
    return InputStore.in_data_folder(tmp_path)


def make(srv: LoopbackServer, store: InputStore | None, **kw) -> OpenAIImagesProvider:
    return OpenAIImagesProvider(api_key=KEY, endpoint=srv.url + "/v1", timeout=5.0, attempts=1, base_delay=0.01,
                                sleep=RecordingSleep(), input_store=store, **kw)


def req(inputs: ImageInputs, **kw) -> GenerationRequest:
    return GenerationRequest(prompt=kw.pop("prompt", "the same knight, walking left"),
                             service=kw.pop("service", "openai"), inputs=inputs, **kw)


def test_edit_sends_init_references_and_mask_as_multipart(store):
    init = store.add_init(picture(64, 64), target=(1024, 1024))
    ref1 = store.add_image(picture(48, 48, (10, 200, 10)))
    ref2 = store.add_image(picture(40, 40, (10, 10, 200)))
    mask = store.add_mask(half_mask(64, 64), size=(64, 64))
    inputs = ImageInputs(init=InitImage(init.digest, 0.4), mask=Mask(mask.digest),
                         references=(ReferenceImage(ref1.digest), ReferenceImage(ref2.digest, kind="style")))
    with LoopbackServer() as srv:
        srv.route("POST", EDITS, openai_images(png_bytes()))
        events = run_async(collect(make(srv, store), req(inputs, quality="high")))
    assert len(of_type(events, JobImage)) == 1
    (r,) = srv.requests
    assert r.route == EDITS and r.headers["authorization"] == f"Bearer {KEY}"
    assert r.headers["content-type"].startswith("multipart/form-data; boundary=")
    parts = r.parts()
    fields = {p.name: p.text for p in parts if p.filename is None}
    assert fields == {"model": "gpt-image-1.5", "prompt": "the same knight, walking left", "n": "1",
                      "size": "1024x1024", "output_format": "png", "quality": "medium"}
    images = [p for p in parts if p.name == "image[]"]
    # the init image first (the one a mask applies to), then the references, as stored
    assert [p.data for p in images] == [store.read(init.digest), store.read(ref1.digest), store.read(ref2.digest)]
    assert all(p.content_type == "image/png" and p.filename.endswith(".png") for p in images)
    (m,) = [p for p in parts if p.name == "mask"]
    assert m.content_type == "image/png" and m.filename == "mask.png"
    with Image.open(io.BytesIO(m.data)) as got:
        assert got.mode == "RGBA" and got.size == (64, 64)
        alpha = got.getchannel("A")
        assert alpha.getpixel((5, 5)) == 0 and alpha.getpixel((60, 5)) == 255  # transparent = redrawn
    notes = " ".join(n.message for n in of_type(events, JobNotice))
    assert "no strength setting" in notes


def test_no_inputs_still_uses_generations(store):
    with LoopbackServer() as srv:
        srv.route("POST", r"/v1/images/generations", openai_images(png_bytes()))
        run_async(collect(make(srv, store), req(ImageInputs())))
    (r,) = srv.requests
    assert r.route == "/v1/images/generations" and r.headers["content-type"] == "application/json"


def test_azure_edit_goes_to_the_deployment(store):
    init = store.add_init(picture(32, 32), target=(1024, 1024))
    with LoopbackServer() as srv:
        srv.route("POST", r"/openai/deployments/sprites/images/edits", openai_images(png_bytes()))
        prov = AzureOpenAIProvider(api_key="0123456789abcdef0123456789abcdef", endpoint=srv.url, deployment="sprites",
                                   timeout=5.0, attempts=1, sleep=RecordingSleep(), input_store=store)
        events = run_async(collect(prov, req(ImageInputs(init=InitImage(init.digest)), service="azure")))
    (r,) = srv.requests
    assert r.route == "/openai/deployments/sprites/images/edits" and r.query == "api-version=2025-04-01-preview"
    assert r.headers["api-key"] and "authorization" not in r.headers
    (img_part,) = [p for p in r.parts() if p.name == "image[]"]
    assert img_part.data == store.read(init.digest)
    # Azure's own support for edits is not in the catalog: the job says it is trying
    assert any("not confirmed" in n.message for n in of_type(events, JobNotice))


def test_model_without_edits_is_refused_before_sending(store):
    init = store.add_init(picture(32, 32), target=(1024, 1024))
    with LoopbackServer() as srv:
        prov = AzureOpenAIProvider(api_key="0123456789abcdef0123456789abcdef", endpoint=srv.url, deployment="d3",
                                   model="dall-e-3", timeout=5.0, attempts=1, input_store=store)
        with pytest.raises(InputsNotSupported) as info:
            run_async(collect(prov, req(ImageInputs(init=InitImage(init.digest)), service="azure")))
    assert srv.requests == []
    msg = info.value.user_message
    assert "DALL" in msg or "dall-e-3" in msg
    assert "does not take an init image" in msg and "none known" in msg


def test_too_many_input_images_names_the_limit(store):
    refs = tuple(ReferenceImage(f"{k:064x}") for k in range(17))  # never read: refused before the store is asked
    with LoopbackServer() as srv:
        with pytest.raises(InputsNotSupported) as info:
            run_async(collect(make(srv, store), req(ImageInputs(references=refs))))
    assert srv.requests == []
    assert "17 input images (it takes at most 16)" in info.value.user_message


def test_control_images_are_refused(store):
    pose = store.add_image(picture(32, 32))
    with LoopbackServer() as srv:
        with pytest.raises(InputsNotSupported) as info:
            run_async(collect(make(srv, store), req(ImageInputs(controls=(ControlImage(pose.digest, "pose"),)))))
    assert srv.requests == [] and "a pose control image" in info.value.user_message


def test_mask_over_the_size_limit_is_refused_before_sending(store):
    spec = catalog.parse({"providers": {"openai": {"default_model": "gpt-image-1.5", "models": [
        {"id": "gpt-image-1.5", "sizes": ["1024x1024"], "max_batch": 1,
         "inputs": {"init": True, "mask": True, "references": True, "max_images": 16,
                    "max_bytes": 50_000_000, "mask_max_bytes": 20_000}}]}}}).provider("openai")
    init = store.add_init(picture(256, 256), target=(256, 256))
    mask = store.add_mask(noise(256, 256), size=(256, 256))  # noise barely compresses: over 20 kB
    assert store.path(mask.digest).stat().st_size > 20_000
    inputs = ImageInputs(init=InitImage(init.digest), mask=Mask(mask.digest))
    with LoopbackServer() as srv:
        with pytest.raises(InputsNotSupported) as info:
            run_async(collect(make(srv, store, spec=spec), req(inputs)))
    assert srv.requests == []
    assert info.value.user_message.startswith("The mask is 66 kB; OpenAI takes masks up to 20 kB.")


def test_missing_input_image_is_named_before_sending(store):
    with LoopbackServer() as srv:
        with pytest.raises(Exception) as info:
            run_async(collect(make(srv, store), req(ImageInputs(init=InitImage("ab" * 32)))))
    assert srv.requests == []
    assert "no longer in the studio's data folder" in info.value.user_message


def test_registry_gives_cloud_providers_the_data_folders_input_store(tmp_path):
    from studio_core.secrets import SecretStore
    from studio_core.services import ServiceRegistry
    from studio_core.settings import SettingsStore

    reg = ServiceRegistry(SettingsStore(tmp_path / "settings.json"), SecretStore(tmp_path / "s.json", use_keyring=False))
    reg.data_dir = tmp_path / "data"
    for sid in ("openai", "replicate", "huggingface"):
        prov = reg.provider(sid)
        assert prov.input_store is not None and prov.input_store.folder == tmp_path / "data" / "inputs", sid
        run_async(prov.aclose())
