"""The index keeps every seed ComfyUI accepts (up to 2**64-1), files other tools' images
under their own source, and counts as spent only what this install generated."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from datetime import datetime, timezone

import pytest
from PIL import Image, PngImagePlugin

from studio_core.models import GenerationRequest
from studio_core.storage import schema
from studio_core.storage.images import encode_png, parse_a1111, read_metadata, save_generated_image
from studio_core.storage.index import SCHEMA_VERSION, ImageIndex
from studio_core.storage.records import A1111_SERVICE, ImageQuery, service_label
from studio_core.storage.rescan import row_from_file
from tests.conftest import run_async
from tests.core.test_index import save
from tests.fakes import png_bytes

BIG_SEEDS = (2**63, 2**64 - 1)


@pytest.fixture(autouse=True)
def _no_reconcile_delay(monkeypatch):
    monkeypatch.setattr(ImageIndex, "reconcile_delay_s", 0.0)


def _png(path, size=(24, 24), **text):
    info = PngImagePlugin.PngInfo()
    for k, v in text.items():
        info.add_text(k, v)
    Image.new("RGBA", size, (1, 2, 3, 255)).save(path, pnginfo=info)


def _comfy_graph(seed: int, text: str) -> str:
    return json.dumps({
        "3": {"class_type": "KSampler", "inputs": {"seed": seed, "steps": 20, "cfg": 7, "sampler_name": "euler",
                                                    "scheduler": "normal", "positive": ["6", 0], "negative": ["7", 0]}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": text}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": ""}},
    })


async def _seeds(idx: ImageIndex, text: str) -> list[int | None]:
    return sorted((r.seed for r in await idx.query(ImageQuery(text=text))), key=lambda s: (s is None, s))


# -- seeds beyond SQLite's signed 64 bits ------------------------------------------------------

def test_huge_seeds_survive_save_search_and_rebuild(paths):
    saved = [save(paths, f"giant seed dragon {i}", seed=s) for i, s in enumerate(BIG_SEEDS)]
    saved.append(save(paths, "giant seed dragon small", seed=7))

    async def go():
        idx = await ImageIndex.open(paths)
        try:
            for s in saved:
                rec = await idx.add_saved(s)  # raised OverflowError after the file was written
                assert rec.seed == s.seed
            assert await _seeds(idx, "giant dragon") == [7, *BIG_SEEDS]
            rec = (await idx.query(ImageQuery(text="giant dragon 1")))[0]
            assert (await idx.request_for(rec)).seed == 2**64 - 1
        finally:
            await idx.aclose()

    run_async(go())
    for suffix in ("", "-wal", "-shm"):
        (paths.index_file.parent / (paths.index_file.name + suffix)).unlink(missing_ok=True)

    async def rebuilt():
        idx = await ImageIndex.open(paths)  # a missing index used to stop the app from starting
        try:
            assert any("rebuilt" in m for m in idx.messages)
            assert await _seeds(idx, "giant dragon") == [7, *BIG_SEEDS]
        finally:
            await idx.aclose()

    run_async(rebuilt())


def test_huge_seeds_survive_import(paths, tmp_path):
    src = tmp_path / "comfy-output"
    src.mkdir()
    _png(src / "a1111_top.png", parameters="import giant one\nSteps: 20, Sampler: Euler, CFG scale: 7,"
         f" Seed: {2**64 - 1}, Size: 24x24")
    _png(src / "comfy_mid.png", prompt=_comfy_graph(2**63, "import giant two"))
    _png(src / "plain_small.png", parameters="import giant three\nSteps: 20, Seed: 5, Size: 24x24")

    async def go():
        idx = await ImageIndex.open(paths)
        try:
            report, problems = await idx.import_folder(src)
            assert (report.added, report.unreadable, problems) == (3, (), [])  # the whole batch, not none of it
            assert await _seeds(idx, "import giant") == [5, 2**63, 2**64 - 1]
        finally:
            await idx.aclose()

    run_async(go())


@pytest.mark.skipif(sys.platform != "linux", reason="needs a file system that takes any bytes as a name")
def test_one_unstorable_row_costs_only_itself(paths):
    # A name with bytes that are not UTF-8 reaches Python as lone surrogates, which SQLite
    # cannot store. Before, the whole rebuild failed and the app did not start.
    for i in range(3):
        save(paths, f"neighbour {i}", seed=i)
    bad = os.fsencode(paths.images) + b"/bad-\xff-name.png"
    with open(bad, "wb") as fh:
        fh.write(png_bytes(8, 8))

    async def go():
        idx = await ImageIndex.open(paths)
        try:
            assert len(await idx.query(ImageQuery(text="neighbour"))) == 3
            assert any("bad-" in m for m in idx.messages)  # named, not silently dropped
        finally:
            await idx.aclose()

    run_async(go())


def test_row_values_make_odd_metadata_storable():
    values = dict(zip(schema.ROW_COLUMNS, schema.row_values({
        "path": "x.png", "seed": 2**64 - 1, "width": 2**70, "steps": True, "cfg": float("nan"),
        "cost_usd": 10**400, "duration_s": float("inf"), "prompt": "bad \udcff byte", "model": None})))
    assert values["seed_text"] == str(2**64 - 1)
    assert (values["width"], values["steps"], values["cfg"]) == (0, 0, 0.0)
    assert values["cost_usd"] is None and values["duration_s"] is None
    assert values["prompt"] == "bad ? byte" and values["model"] == ""
    assert schema.row_values({"path": "y.png", "seed": "12"})[schema.ROW_COLUMNS.index("seed_text")] == "12"
    assert schema.row_values({"path": "y.png", "seed": "junk"})[schema.ROW_COLUMNS.index("seed_text")] is None


def test_schema_3_index_is_upgraded_keeping_its_rows(paths):
    """An index from the previous release: seeds move to text, user flags stay, rows read
    from another tool's metadata are re-read so their service becomes truthful."""
    own = save(paths, "old own image", seed=2**63 - 1, info={"cost_usd": 0.04, "provider": "hf"})
    foreign = paths.images / "from_a1111.png"
    _png(foreign, parameters="old foreign image\nSteps: 20, Seed: 9, Size: 24x24")
    con = sqlite3.connect(paths.index_file)
    with con:
        for step in schema.MIGRATIONS[:3]:
            for sql in step:
                con.execute(sql)
        con.execute("PRAGMA user_version=3")
        cols = ("path", "service", "prompt", "seed", "file_size", "mtime_ns", "source", "favourite", "tags",
                "cost_usd", "created_ts")
        st = own.path.stat()
        con.execute(f"INSERT INTO images({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                    (own.path.name, "huggingface", own.request.prompt, 2**63 - 1, st.st_size, st.st_mtime_ns,
                     "studio", 1, "keep", 0.04, 1.0))
        st = foreign.stat()
        con.execute(f"INSERT INTO images({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                    (foreign.name, "comfyui", "old foreign image", 9, st.st_size, st.st_mtime_ns, "a1111", 0, "",
                     None, 1.0))
    con.close()

    async def go():
        idx = await ImageIndex.open(paths)
        try:
            await idx.wait_reconciled()
            recs = {r.path: r for r in await idx.query(ImageQuery(text="old image"))}
            mine, theirs = recs[own.path.name], recs[foreign.name]
            assert (mine.seed, mine.favourite, mine.tags, mine.origin) == (2**63 - 1, True, ("keep",), "generated")
            assert (theirs.seed, theirs.service, theirs.origin) == (9, A1111_SERVICE, "imported")
        finally:
            await idx.aclose()
        con = sqlite3.connect(paths.index_file)
        assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        con.close()

    run_async(go())


# -- A1111 images are their own source ----------------------------------------------------------

def test_a1111_without_service_is_not_filed_under_comfyui(paths, tmp_path):
    assert parse_a1111("a potion\nSteps: 20, Seed: 3").service == A1111_SERVICE
    assert parse_a1111("a potion\nSteps: 20, Seed: 3, Service: huggingface").service == "huggingface"
    assert service_label(A1111_SERVICE, {"comfyui": "ComfyUI (local)"}) == "imported (A1111)"
    assert service_label("comfyui", {"comfyui": "ComfyUI (local)"}) == "ComfyUI (local)"
    src = tmp_path / "webui"
    src.mkdir()
    _png(src / "potion.png", parameters="red potion\nSteps: 20, Sampler: Euler a, Seed: 3, Size: 24x24")
    _png(src / "comfy.png", prompt=_comfy_graph(4, "blue potion"))

    async def go():
        idx = await ImageIndex.open(paths)
        try:
            await idx.import_folder(src)
            services, _models = await idx.distinct_values()
            assert services == [A1111_SERVICE, "comfyui"]
            assert [r.prompt for r in await idx.query(ImageQuery(service=A1111_SERVICE))] == ["red potion"]
            assert [r.prompt for r in await idx.query(ImageQuery(service="comfyui"))] == ["blue potion"]
        finally:
            await idx.aclose()

    run_async(go())


def test_own_pngs_still_say_their_service(tmp_path):
    s = save_generated_image(png_bytes(8, 8), GenerationRequest(prompt="mine", service="openai"), folder=tmp_path)
    assert read_metadata(s.path).request.service == "openai"
    row = row_from_file(tmp_path, s.path.name, 1, 1)
    assert (row["service"], row["origin"]) == ("openai", "generated")


# -- spend counts only what this install generated -------------------------------------------

def test_costs_in_imported_images_are_not_spent_today(paths, tmp_path):
    now = datetime.now(timezone.utc)
    mine = save(paths, "paid here", service="openai", when=now, info={"cost_usd": 0.04, "provider": "openai"})
    # Another install's image, with its own cost recorded, arrives through Import folder.
    src = tmp_path / "friend"
    src.mkdir()
    req = GenerationRequest(prompt="paid elsewhere", service="openai")
    with Image.new("RGBA", (8, 8)) as img:
        data = encode_png(img, request=req, seed=1, created=now.isoformat(timespec="milliseconds"),
                          info={"cost_usd": 0.25, "provider": "openai"})
    (src / "friend.png").write_bytes(data)

    async def go():
        idx = await ImageIndex.open(paths)
        try:
            await idx.add_saved(mine)
            await idx.import_folder(src)
            recs = {r.prompt: r for r in await idx.query(ImageQuery(text="paid"))}
            assert recs["paid elsewhere"].imported and not recs["paid here"].imported
            assert recs["paid elsewhere"].cost_usd == 0.25  # kept and shown, just not counted
            spend = await idx.spend_summary(now=now.timestamp())
            assert (spend.today, spend.this_month, spend.total) == (0.04, 0.04, 0.04)
        finally:
            await idx.aclose()

    run_async(go())
    paths.index_file.unlink()
    for suffix in ("-wal", "-shm"):
        (paths.index_file.parent / (paths.index_file.name + suffix)).unlink(missing_ok=True)

    async def rebuilt():
        idx = await ImageIndex.open(paths)  # rebuilt from files: our own image still counts
        try:
            assert (await idx.spend_summary(now=now.timestamp())).today == 0.04
        finally:
            await idx.aclose()

    run_async(rebuilt())
