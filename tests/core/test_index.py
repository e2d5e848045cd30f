from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import datetime, timedelta, timezone

import pytest

from studio_core.errors import StorageError
from studio_core.models import GenerationRequest, SavedImage
from studio_core.storage.cleanup import disk_space_ok, trash_files
from studio_core.storage.images import save_generated_image
from studio_core.storage.index import SCHEMA_VERSION, ImageIndex
from studio_core.storage.records import ImageQuery
from tests.conftest import run_async
from tests.fakes import png_bytes

T0 = datetime(2025, 9, 7, 12, 0, 0, tzinfo=timezone.utc)


def save(paths, prompt, *, service="huggingface", when=None, info=None, seed=1, **kw) -> SavedImage:
    req = GenerationRequest(prompt=prompt, service=service, model=kw.pop("model", "flux"), seed=seed, **kw)
    return save_generated_image(png_bytes(16, 16), req, folder=paths.images, seed=seed, when=when or T0, info=info)


async def _open_add(paths, saved_list):
    idx = await ImageIndex.open(paths)
    for s in saved_list:
        await idx.add_saved(s)
    return idx


def test_schema_fts_and_fields(paths):
    s = save(paths, "cute green dragon, pixel art", info={"cost_usd": 0.003, "provider": "fal-ai", "duration_s": 2.5},
             negative_prompt="blurry", steps=4, cfg=1.5, sampler="euler_a")

    async def go():
        idx = await _open_add(paths, [s, save(paths, "wooden chest", seed=2)])
        try:
            recs = await idx.query(ImageQuery(text="drag"))
            assert [r.prompt for r in recs] == ["cute green dragon, pixel art"]
            r = recs[0]
            assert (r.service, r.model, r.seed, r.steps, r.cfg, r.sampler) == ("huggingface", "flux", 1, 4, 1.5, "euler_a")
            assert (r.provider, r.cost_usd, r.duration_s, r.negative) == ("fal-ai", 0.003, 2.5, "blurry")
            assert r.path == s.path.name and r.file_size == s.path.stat().st_size and (r.width, r.height) == (16, 16)
            assert await idx.query(ImageQuery(text="blurry")) == []  # negatives are not searched
            assert await idx.query(ImageQuery(text='"AND NEAR(')) == []  # user text never breaks FTS syntax
            assert await idx.count(ImageQuery(text="")) == 2
            req = await idx.request_for(r)
            assert req.prompt == r.prompt and req.negative_prompt == "blurry"
        finally:
            await idx.aclose()
        con = sqlite3.connect(paths.index_file)
        assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    run_async(go())


def test_filters_sort_and_keyset_paging(paths):
    saved = [save(paths, f"item {i:03d} {'potion' if i % 2 else 'sword'}", service="comfyui" if i % 3 else "openai",
                  when=T0 + timedelta(minutes=i), seed=i) for i in range(30)]

    async def go():
        idx = await _open_add(paths, saved)
        try:
            q = ImageQuery()
            page1 = await idx.query(q, limit=10)
            page2 = await idx.query(q, after=page1[-1], limit=10)
            assert [r.seed for r in page1] == list(range(29, 19, -1))
            assert [r.seed for r in page2] == list(range(19, 9, -1))
            oldest = await idx.query(q.replace(sort="oldest"), limit=3)
            assert [r.seed for r in oldest] == [0, 1, 2]
            by_prompt = await idx.query(q.replace(sort="prompt"), limit=40)
            assert [r.prompt for r in by_prompt] == sorted(r.prompt for r in by_prompt)
            assert await idx.count(ImageQuery(service="openai")) == 10
            assert await idx.count(ImageQuery(text="potion", service="openai")) == 5
            since = (T0 + timedelta(minutes=25)).timestamp()
            assert await idx.count(ImageQuery(since_ts=since)) == 5
            await idx.set_favourite([page1[0].id], True)
            favs = await idx.query(ImageQuery(favourites_only=True))
            assert [r.id for r in favs] == [page1[0].id] and favs[0].favourite
            st = await idx.stats()
            assert st.count == 30 and {s.service for s in st.per_service} == {"comfyui", "openai"}
            assert st.total_bytes == sum(s.path.stat().st_size for s in saved)
            services, _models = await idx.distinct_values()
            assert services == ["comfyui", "openai"]
        finally:
            await idx.aclose()

    run_async(go())


def test_rows_by_offset_and_rank_for_a_windowed_view(paths):
    saved = [save(paths, f"item {i:03d} {'potion' if i % 2 else 'sword'}", when=T0 + timedelta(minutes=i), seed=i)
             for i in range(30)]

    async def go():
        idx = await _open_add(paths, saved)
        try:
            for q in (ImageQuery(), ImageQuery(sort="oldest"), ImageQuery(sort="prompt"), ImageQuery(text="potion")):
                everything = await idx.query(q, limit=100)
                assert await idx.rows(q, 5, 7) == everything[5:12]
                assert await idx.rows(q, len(everything) - 2, 10) == everything[-2:]
                runs = await idx.rows_many(q, [(0, 3), (10, 2)])
                assert runs == [everything[0:3], everything[10:12]]
                for row in (0, 4, len(everything) - 1):
                    assert await idx.rank(q, everything[row]) == row  # a record's row in a view of q
        finally:
            await idx.aclose()

    run_async(go())


def test_spend_summary(paths):
    day1, day2 = T0, T0 + timedelta(days=1)
    saved = [save(paths, "a", info={"cost_usd": 0.01, "provider": "fal-ai"}, when=day1),
             save(paths, "b", info={"cost_usd": 0.02, "provider": "fal-ai"}, when=day2),
             save(paths, "c", info={"cost_usd": 0.04}, service="openai", when=day2),
             save(paths, "d", service="comfyui", when=day2)]

    async def go():
        idx = await _open_add(paths, saved)
        try:
            s = await idx.spend_summary(now=day2.timestamp())
            assert s.today == pytest.approx(0.06) and s.this_month == pytest.approx(0.07) and s.total == pytest.approx(0.07)
            assert ("fal-ai", "2025-09-08", 0.02) in s.per_day and ("openai", "2025-09-08", 0.04) in s.per_day
            assert ("fal-ai", "2025-09", 0.03) in s.per_month
        finally:
            await idx.aclose()

    run_async(go())


def test_listeners_and_remove(paths):
    s = save(paths, "slime")
    events = []

    async def go():
        idx = await ImageIndex.open(paths)
        idx.record_added.append(lambda r: events.append(("add", r.prompt)))
        idx.records_removed.append(lambda ids: events.append(("rm", len(ids))))
        try:
            rec = await idx.add_saved(s)
            await idx.remove([rec.id])
            assert await idx.count() == 0
        finally:
            await idx.aclose()

    run_async(go())
    assert events == [("add", "slime"), ("rm", 1)]


def test_cleanup_candidates_never_favourites(paths):
    now = T0 + timedelta(days=100)
    saved = [save(paths, f"old {i}", when=T0 + timedelta(days=i), seed=i) for i in range(5)]
    saved.append(save(paths, "new", when=now))

    async def go():
        idx = await _open_add(paths, saved)
        try:
            recs = await idx.query(ImageQuery(sort="oldest"))
            await idx.set_favourite([recs[0].id], True)
            old = await idx.cleanup_candidates(older_than_days=30, budget_bytes=None, now=now.timestamp())
            assert [r.prompt for r in old] == ["old 1", "old 2", "old 3", "old 4"]
            size = recs[0].file_size
            budget = await idx.cleanup_candidates(older_than_days=None, budget_bytes=size * 4, now=now.timestamp())
            assert [r.prompt for r in budget] == ["old 1", "old 2"]
            result = await asyncio.to_thread(trash_files, paths.images, budget)
            assert set(result.trashed) == {r.id for r in budget} and not result.problems
            assert not (paths.images / budget[0].path).exists()
        finally:
            await idx.aclose()

    run_async(go())


def test_disk_space_check(paths):
    assert disk_space_ok(paths, 1)
    assert not disk_space_ok(paths, 10**12)


def test_closed_index_raises_storage_error(paths):
    async def go():
        idx = await ImageIndex.open(paths)
        await idx.aclose()
        with pytest.raises(StorageError):
            await idx.count()

    run_async(go())


def test_core_wiring_indexes_saved_images(paths):
    from studio_core.app_core import StudioCore
    from studio_core.models import JobImage

    async def go():
        core = await StudioCore.open(paths, use_keyring=False)
        try:
            assert core.index is not None
            await core.save_image(JobImage("j", png_bytes(), seed=5, info=(("cost_usd", 0.01),)),
                                  GenerationRequest(prompt="treasure map"))
            recs = await core.index.query(ImageQuery(text="treasure"))
            assert len(recs) == 1 and recs[0].cost_usd == 0.01
        finally:
            await core.aclose()

    run_async(go())


def test_unusable_index_folder_leaves_the_app_running(paths, monkeypatch):
    from studio_core.app_core import StudioCore

    def refuse(self):
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(ImageIndex, "_connect", refuse)

    async def go():
        core = await StudioCore.open(paths, use_keyring=False)
        try:
            assert core.index is None
            assert core.startup_messages and "read-only" in core.startup_messages[0]
        finally:
            await core.aclose()

    run_async(go())
