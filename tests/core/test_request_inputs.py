"""Typed image inputs on the request: hashable, round-tripped through the saved PNG by digest
(never by path), restored for "Reuse settings" from the input store, and checked against the
cloud catalog's per-model facts."""

from __future__ import annotations

import io
import json

from PIL import Image

from studio_core.input_store import InputStore
from studio_core.inputs import ControlImage, ImageInputs, InitImage, LoraSpec, Mask, ReferenceImage
from studio_core.models import GenerationRequest
from studio_core.providers.cloud import catalog
from studio_core.storage.images import read_metadata, reuse_request, save_generated_image


def picture(w: int = 32, h: int = 32, color=(200, 100, 50)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, "PNG")
    return buf.getvalue()


def mask_png(w: int = 32, h: int = 32) -> bytes:
    img = Image.new("L", (w, h), 0)
    img.paste(255, (0, 0, w // 2, h))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def full_inputs(store: InputStore) -> ImageInputs:
    init = store.add_init(picture(), target=(64, 64))
    mask = store.add_mask(mask_png(), size=(32, 32))
    ref = store.add_image(picture(color=(0, 200, 0)))
    pose = store.add_image(picture(color=(0, 0, 200)))
    return ImageInputs(init=InitImage(init.digest, 0.35), mask=Mask(mask.digest, 4),
                       references=(ReferenceImage(ref.digest, 0.8, "style"),),
                       controls=(ControlImage(pose.digest, "pose", 0.9, 0.0, 0.8),),
                       loras=(LoraSpec("pixel-art.safetensors", 0.7, 0.6), LoraSpec("off.safetensors", enabled=False)))


def test_request_inputs_default_empty_and_hashable():
    r = GenerationRequest("a slime")
    assert r.inputs == ImageInputs() and r.inputs.empty
    assert hash(r) == hash(GenerationRequest("a slime"))


def test_round_trip_and_hash(tmp_path):
    store = InputStore.in_data_folder(tmp_path)
    r = GenerationRequest("a slime", inputs=full_inputs(store))
    back = GenerationRequest.from_dict(json.loads(r.to_json()))
    assert back == r and hash(back) == hash(r)
    assert GenerationRequest.from_dict(r.to_dict()).inputs.loras[1].enabled is False


def test_metadata_form_is_checked_like_any_input():
    r = GenerationRequest("x", inputs={"init": {"image": "ab" * 32, "denoise": 0.5}})
    assert r.inputs.init == InitImage("ab" * 32, 0.5)


def test_damaged_inputs_in_metadata_keep_the_rest():
    r = GenerationRequest.from_dict({"prompt": "kept", "steps": 9, "inputs": {"init": {"image": "../../etc/passwd"}}})
    assert r.prompt == "kept" and r.steps == 9 and r.inputs == ImageInputs()


def test_saved_png_names_inputs_by_digest_not_path(tmp_path):
    store = InputStore.in_data_folder(tmp_path / "data")
    inputs = full_inputs(store)
    saved = save_generated_image(picture(), GenerationRequest("a slime", inputs=inputs), folder=tmp_path / "images")
    with Image.open(saved.path) as img:
        chunk = img.text["studio"]
    assert str(tmp_path) not in chunk and "inputs/" not in chunk
    assert json.loads(chunk)["request"]["inputs"]["init"] == {"image": inputs.init.image, "denoise": 0.35}
    meta = read_metadata(saved.path)
    assert meta.request.inputs == inputs


def test_reuse_restores_inputs_that_are_still_stored(tmp_path):
    store = InputStore.in_data_folder(tmp_path)
    inputs = full_inputs(store)
    got = reuse_request(GenerationRequest("a slime", inputs=inputs), store)
    assert got.request.inputs == inputs and got.notice == ""
    assert dict(got.paths) == {d: store.path(d) for d in inputs.digests()}


def test_reuse_drops_inputs_whose_images_are_gone(tmp_path):
    store = InputStore.in_data_folder(tmp_path)
    inputs = full_inputs(store)
    store.path(inputs.init.image).unlink()
    store.path(inputs.references[0].image).unlink()
    got = reuse_request(GenerationRequest("a slime", inputs=inputs), store)
    kept = got.request.inputs
    assert kept.init is None and kept.mask is None and kept.references == ()  # a mask without its image is no use
    assert kept.controls == inputs.controls and kept.loras == inputs.loras
    assert got.notice.startswith("Restored without the init image, the mask and 1 reference image")


# ---- the catalog's facts --------------------------------------------------------------------


def test_accepts_reads_the_catalog_and_unknown_stays_unknown():
    gpt = catalog.accepts("openai", "gpt-image-1.5")
    assert gpt.init is True and gpt.mask is True and gpt.max_images == 16 and gpt.source
    schnell = catalog.accepts("replicate", "black-forest-labs/flux-schnell")
    assert schnell.init is False and schnell.references is False
    unknown = catalog.accepts("replicate", "someone/not-in-the-catalog")
    assert unknown.init is None and unknown.mask is None and unknown.max_images is None
    # every model that says something says when and where it was read
    for prov in catalog.load().providers.values():
        for m in prov.models:
            if m.get("inputs") is not None:
                assert m.inputs.as_of and m.inputs.source, m.id


def test_inputs_problem_names_a_model_that_takes_them():
    init_only = ImageInputs(init=InitImage("ab" * 32))
    assert catalog.inputs_problem("replicate", "black-forest-labs/flux-kontext-pro", init_only) == ""
    msg = catalog.inputs_problem("replicate", "black-forest-labs/flux-schnell", init_only)
    assert "does not take an init image" in msg and "black-forest-labs/flux-kontext-pro" in msg
    masked = ImageInputs(init=InitImage("ab" * 32), mask=Mask("cd" * 32))
    msg = catalog.inputs_problem("google", "gemini-3.1-flash-image", masked)
    assert "does not take a mask" in msg and "none known" in msg
    assert catalog.inputs_problem("openai", "", ImageInputs()) == ""


def test_loras_are_comfyui_only():
    msg = catalog.inputs_problem("openai", "gpt-image-1.5", ImageInputs(loras=(LoraSpec("pixel.safetensors"),)))
    assert "LoRAs (they work with ComfyUI)" in msg
    disabled = ImageInputs(loras=(LoraSpec("pixel.safetensors", enabled=False),))
    assert catalog.inputs_problem("openai", "gpt-image-1.5", disabled) == ""


# ---- the index --------------------------------------------------------------------------------


def test_index_records_the_inputs_and_reuse_gets_them_back(paths):
    import sqlite3

    from studio_core.storage.index import SCHEMA_VERSION, ImageIndex
    from studio_core.storage.records import ImageQuery
    from tests.conftest import run_async

    store = InputStore.in_data_folder(paths.data)
    inputs = full_inputs(store)
    with_inputs = save_generated_image(picture(), GenerationRequest("edited slime", inputs=inputs), folder=paths.images)
    plain = save_generated_image(picture(), GenerationRequest("plain slime"), folder=paths.images)

    async def go():
        idx = await ImageIndex.open(paths)
        try:
            await idx.add_saved(with_inputs)
            await idx.add_saved(plain)
            recs = {r.prompt: r for r in await idx.query(ImageQuery())}
            assert recs["edited slime"].input_digests == inputs.digests() and recs["edited slime"].has_inputs
            assert recs["plain slime"].input_digests == () and not recs["plain slime"].has_inputs
            assert (await idx.request_for(recs["edited slime"])).inputs == inputs
        finally:
            await idx.aclose()

    run_async(go())
    con = sqlite3.connect(paths.index_file)
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    con.close()


def test_an_index_from_before_inputs_is_upgraded_in_place(paths):
    import sqlite3

    from studio_core.storage import schema
    from studio_core.storage.index import ImageIndex
    from studio_core.storage.records import ImageQuery
    from tests.conftest import run_async

    con = sqlite3.connect(paths.index_file)
    before = len(schema.MIGRATIONS) - 1  # the step that adds input_digests is the last one
    assert any("input_digests" in stmt for stmt in schema.MIGRATIONS[before])
    for step in schema.MIGRATIONS[:before]:
        for stmt in step:
            con.execute(stmt)
    con.execute("INSERT INTO images(path, prompt, source, origin) VALUES ('old.png', 'old slime', 'studio', 'generated')")
    con.execute(f"PRAGMA user_version={before}")
    con.commit()
    con.close()

    async def go():
        idx = await ImageIndex.open(paths)
        try:
            return await idx.query(ImageQuery())
        finally:
            await idx.aclose()

    recs = run_async(go())
    old = [r for r in recs if r.path == "old.png"]
    assert old and old[0].input_digests == ()
