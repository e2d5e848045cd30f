from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap

from studio_core.storage.index import ImageIndex
from studio_core.storage.records import ImageQuery, ImageRecord
from studio_gui.gallery import model as model_mod
from studio_gui.gallery.model import GalleryModel, RecordRole, thumb_key
from studio_gui.gallery.thumbnail_loader import ThumbnailLoader
from studio_gui.tasks import TaskOwner
from tests.core.test_index import save
from tests.gui.conftest import wait_until

T0 = datetime(2025, 9, 7, 12, 0, 0, tzinfo=timezone.utc)


def recs(n: int) -> list[ImageRecord]:
    return [ImageRecord(id=i + 1, path=f"img{i}.png", prompt=f"sprite {i}", created_ts=1000.0 - i) for i in range(n)]


@pytest.fixture
def loader(qapp, paths):
    ld = ThumbnailLoader(paths.thumbnails, capacity=50)
    yield ld
    ld.close()


def test_modeltester_and_no_io_in_data(qtmodeltester, loader, paths, loop):
    m = GalleryModel(None, loader, tasks=TaskOwner(), images_root=paths.images)
    m.set_records(recs(20))
    idx = m.index(3, 0)
    assert idx.data() == "sprite 3" and idx.data(RecordRole).id == 4
    assert "sprite 3" in idx.data(Qt.ItemDataRole.ToolTipRole)
    assert isinstance(idx.data(Qt.ItemDataRole.DecorationRole), QPixmap)  # placeholder, instantly
    assert loader.requested == 1
    for _ in range(5):
        idx.data(Qt.ItemDataRole.DecorationRole)
    assert loader.requested == 1  # requested once while pending
    qtmodeltester.check(m, force_py=True)  # the C++ tester fails to construct under PySide6 6.12
    # the file does not exist: it turns into a "broken" tile, not an endless retry
    loop.run_until_complete(wait_until(lambda: loader.failed(thumb_key(idx.data(RecordRole)))))
    assert idx.data(model_mod.ThumbStateRole) == "broken"
    n = loader.requested
    idx.data(Qt.ItemDataRole.DecorationRole)
    assert loader.requested == n


def test_thumbnails_arrive_as_pixmaps_and_lru_is_bounded(qapp, paths, loop):
    saved = [save(paths, f"p{i}", seed=i, when=T0 + timedelta(seconds=i)) for i in range(8)]
    loader = ThumbnailLoader(paths.thumbnails, capacity=5)
    try:
        m = GalleryModel(None, loader, tasks=TaskOwner(), images_root=paths.images)
        m.set_records([ImageRecord(id=i + 1, path=s.path.name, file_size=s.file_size, mtime_ns=i) for i, s in enumerate(saved)])
        changed = []
        m.dataChanged.connect(lambda a, b, roles: changed.append((a.row(), list(roles))))
        for r in range(8):
            m.index(r, 0).data(Qt.ItemDataRole.DecorationRole)
        loop.run_until_complete(wait_until(lambda: len(changed) == 8))
        assert all(roles == [Qt.ItemDataRole.DecorationRole] for _r, roles in changed)
        assert len(loader) == 5  # bounded
        states = [m.index(r, 0).data(model_mod.ThumbStateRole) for r in range(8)]
        assert states.count("ready") == 5  # evicted ones are simply requested again when shown
    finally:
        loader.close()


def test_windowed_pages_live_insert_and_remove(qapp, paths, loop, loader, monkeypatch, qtmodeltester):
    monkeypatch.setattr(model_mod, "FIRST_PAGE", 10)
    for i in range(25):
        save(paths, f"knight {i}", seed=i, when=T0 + timedelta(minutes=i))
    index = loop.run_until_complete(ImageIndex.open(paths))
    tasks = TaskOwner()
    m = GalleryModel(index, loader, tasks=tasks)
    try:
        m.page_size, m.max_pages = 10, 2
        loop.run_until_complete(m.set_query(ImageQuery()))
        # the whole count is known at once; only the first page's records are held
        assert m.rowCount() == 25 and m.total == 25 and m.loaded_count == 10
        assert m.record(9).seed == 15 and m.record(10) is None
        changed = []
        m.dataChanged.connect(lambda a, b, roles: changed.append((a.row(), b.row())))
        # a row whose page is not loaded: placeholder now, its page requested once
        assert m.index(15, 0).data() is None
        assert isinstance(m.index(15, 0).data(Qt.ItemDataRole.DecorationRole), QPixmap)
        assert m.fetching and len(m._pending) == 1
        loop.run_until_complete(wait_until(lambda: not m.fetching and (15, 15) in changed))
        # only the row the view was shown a placeholder for is announced, not the whole page
        assert not [c for c in changed if c[0] >= 10 and c != (15, 15)]
        assert m.record(15).seed == 9 and m.pages_fetched == 1
        m.index(22, 0).data()
        loop.run_until_complete(wait_until(lambda: m.record(22) is not None))
        assert m.record(22).seed == 2
        assert m.loaded_count <= 2 * 10  # the least recently used page went
        assert m.record(0) is None
        # selections reach beyond the loaded pages: fetched in one round trip
        got = loop.run_until_complete(m.fetch_records([0, 1, 15, 24]))
        assert [r.seed for r in got] == [24, 23, 9, 0]
        checked = GalleryModel(index, loader, tasks=tasks, live=False)
        checked.page_size = 10
        loop.run_until_complete(checked.set_query(ImageQuery()))
        qtmodeltester.check(checked, force_py=True)  # unloaded rows included
        loop.run_until_complete(wait_until(lambda: not checked.fetching))
        m.index(0, 0).data()
        loop.run_until_complete(wait_until(lambda: m.record(0) is not None))
        # a new image: one row inserted at the top, later pages shift, no reset
        resets, inserted = [], []
        m.modelReset.connect(lambda: resets.append(1))
        m.rowsInserted.connect(lambda _p, a, b: inserted.append((a, b)))
        new = save(paths, "knight new", seed=99, when=T0 + timedelta(days=1))
        loop.run_until_complete(index.add_saved(new))
        assert m.record(0).seed == 99 and inserted[-1] == (0, 0) and m.total == 26 and m.rowCount() == 26
        assert m.record(1).seed == 24
        m.max_pages = 3
        for r in (16, 25):
            m.index(r, 0).data()
        loop.run_until_complete(wait_until(lambda: not m.fetching))
        assert [m.record(16).seed, m.record(25).seed] == [9, 0]
        # removed in place
        removed = []
        m.rowsRemoved.connect(lambda _p, a, b: removed.append((a, b)))
        loop.run_until_complete(index.remove([m.record(0).id, m.record(1).id]))
        assert removed == [(0, 1)] and m.rowCount() == 24 and not resets
        # an image in a page nobody looked at goes too: the count catches it
        m.max_pages = 1
        m._carve(0, 5)
        m.index(2, 0).data()
        loop.run_until_complete(wait_until(lambda: not m.fetching))
        assert m.loaded_count <= 10
        far = next(r for r in loop.run_until_complete(index.query(ImageQuery(), limit=30)) if r.id not in m._id_map())
        loop.run_until_complete(index.remove([far.id]))
        loop.run_until_complete(wait_until(lambda: m.rowCount() == 23 and not m.fetching))
        # a new image between pages that are not loaded: the index ranks it
        loop.run_until_complete(m.set_query(ImageQuery(sort="prompt")))
        assert m.record(0).prompt == "knight 0" and m.record(15) is None
        inserted.clear()
        loop.run_until_complete(index.add_saved(save(paths, "knight 8b", seed=77)))
        loop.run_until_complete(wait_until(lambda: inserted))
        row = inserted[0][0]
        expected = [r.prompt for r in loop.run_until_complete(index.query(ImageQuery(sort="prompt"), limit=50))]
        assert expected[row] == "knight 8b" and m.rowCount() == 24
        m.index(row, 0).data()
        loop.run_until_complete(wait_until(lambda: m.record(row) is not None))
        assert m.record(row).prompt == "knight 8b"
        # a query that does not match ignores new images
        loop.run_until_complete(m.set_query(ImageQuery(text="dragon")))
        assert m.rowCount() == 0
        loop.run_until_complete(index.add_saved(save(paths, "knight again", seed=7)))
        assert m.rowCount() == 0
        loop.run_until_complete(index.add_saved(save(paths, "dragon egg", seed=8)))
        assert m.rowCount() == 1
    finally:
        m.detach()
        loop.run_until_complete(tasks.cancel_all())
        loop.run_until_complete(index.aclose())


def test_search_cancels_previous_query(qapp, paths, loop, loader):
    for i in range(5):
        save(paths, f"goblin {i}" if i % 2 else f"orc {i}", seed=i)
    index = loop.run_until_complete(ImageIndex.open(paths))
    tasks = TaskOwner()
    try:
        m = GalleryModel(index, loader, tasks=tasks)
        first = m.set_query(ImageQuery(text="orc"))
        second = m.set_query(ImageQuery(text="gob"))
        loop.run_until_complete(wait_until(lambda: first.done() and second.done()))
        assert first.cancelled()
        assert sorted(m.record(r).prompt for r in range(m.rowCount())) == ["goblin 1", "goblin 3"]
    finally:
        m.detach()
        loop.run_until_complete(tasks.cancel_all())
        loop.run_until_complete(index.aclose())


def test_session_grid_shows_only_this_sessions_images(qtbot, core, loop):
    import time as _time

    from studio_core.models import GenerationRequest, JobImage
    from studio_gui.gallery.delegate import GalleryDelegate
    from studio_gui.gallery.session import session_grid
    from tests.fakes import png_bytes

    old = save(core.paths, "before the session", when=T0)
    loop.run_until_complete(core.index.rescan())
    tasks = TaskOwner()
    model, view = session_grid(core, tasks=tasks, since_ts=_time.time() - 1)
    qtbot.addWidget(view)
    try:
        loop.run_until_complete(model.set_query(model.query))
        assert model.rowCount() == 0 and old.path.exists()
        loop.run_until_complete(core.save_image(JobImage("j", png_bytes(), seed=3), GenerationRequest(prompt="fresh imp")))
        assert [model.record(r).prompt for r in range(model.rowCount())] == ["fresh imp"]
        assert isinstance(view.itemDelegate(), GalleryDelegate)
        assert view.mime_for([model.record(0)]).urls()[0].fileName() == "fresh_imp_3.png"
    finally:
        model.detach()
        model.loader.close()
        loop.run_until_complete(tasks.cancel_all())


def test_view_requests_only_visible_thumbnails(qtbot, loader, paths):
    # Pure Qt (no asyncio work), so qtbot may spin the event loop here.
    from studio_gui.gallery.view import GalleryView

    m = GalleryModel(None, loader, tasks=TaskOwner(), images_root=paths.images)
    m.set_records(recs(5000))
    view = GalleryView()
    qtbot.addWidget(view)
    view.setModel(m)
    view.resize(620, 420)
    view.show()
    qtbot.waitExposed(view)
    qtbot.waitUntil(lambda: loader.requested > 0)  # batched layout places items over a few turns
    qtbot.wait(50)
    grid = view.gridSize()
    visible = (view.viewport().width() // grid.width() + 1) * (view.viewport().height() // grid.height() + 1)
    assert 0 < loader.requested <= visible
    first = loader.requested
    for _ in range(5):
        view.scrollToBottom()
        qtbot.wait(20)
    assert m.index(4999, 0).data(model_mod.ThumbStateRole) != "loading" or loader.is_pending(thumb_key(m.record(4999)))
    assert loader.requested <= first + visible  # the end, not the 5,000 in between


def _without_embedded_thumbnail(path) -> None:
    """Rewrite ``path`` as a plain PNG, like an image from another tool (no stTH chunk)."""
    from PIL import Image

    with Image.open(path) as img:
        img.load()
        img.save(path)


def test_first_screen_batch_reads_the_disk_cache_and_falls_back(qapp, paths, loop):
    saved = [save(paths, f"b{i}", seed=i, when=T0 + timedelta(seconds=i)) for i in range(6)]
    for s in saved:
        _without_embedded_thumbnail(s.path)
    items = [((s.path.name, i), s.path, s.path.stat().st_size, s.path.stat().st_mtime_ns) for i, s in enumerate(saved)]
    loader = ThumbnailLoader(paths.thumbnails, capacity=50)
    try:
        singles, batches = [], []
        loader.ready.connect(singles.append)
        loader.ready_many.connect(batches.append)
        loader.request_many(items)  # nothing cached yet: each goes back as an ordinary request
        assert loader.pending_count == 6 and loader.requested == 6
        loop.run_until_complete(wait_until(lambda: len(loader) == 6))
        assert len(singles) == 6 and not batches
        loader2 = ThumbnailLoader(paths.thumbnails, capacity=50)
        try:
            got = []
            loader2.ready_many.connect(got.append)
            loader2.request_many(items)  # now from the disk cache, in batches (one per worker)
            loop.run_until_complete(wait_until(lambda: len(loader2) == 6))
            assert sorted(k for batch in got for k in batch) == sorted(k for k, *_ in items) and len(got) <= 2
        finally:
            loader2.close()
    finally:
        loader.close()


def test_first_screen_batch_serves_the_apps_own_images_on_a_cold_cache(qapp, paths, loop):
    """Images the app saved carry their thumbnail: a cold cache costs no full decode."""
    saved = [save(paths, f"c{i}", seed=i, when=T0 + timedelta(seconds=i)) for i in range(6)]
    items = [((s.path.name, i), s.path, s.file_size, s.path.stat().st_mtime_ns) for i, s in enumerate(saved)]
    assert not paths.thumbnails.exists() or not any(paths.thumbnails.rglob("*.png"))
    loader = ThumbnailLoader(paths.thumbnails, capacity=50)
    try:
        singles, batches = [], []
        loader.ready.connect(singles.append)
        loader.ready_many.connect(batches.append)
        loader.request_many(items)
        loop.run_until_complete(wait_until(lambda: len(loader) == 6))
        assert not singles and sorted(k for b in batches for k in b) == sorted(k for k, *_ in items)
        assert all(loader.get(k).width() > 0 for k, *_ in items)
    finally:
        loader.close()


class _SlowIndex:
    """An index whose page reads wait until the test lets them through."""

    images = None

    def __init__(self, total: int):
        self.total = total
        self.asked: list[int] = []
        self.gate = asyncio.Event()

    async def first_page(self, query, limit):
        return [], self.total

    async def rows(self, query, start, count):
        self.asked.append(start)
        await self.gate.wait()
        return [_record(i) for i in range(start, min(start + count, self.total))]


def _record(i: int) -> ImageRecord:
    return ImageRecord(id=i + 1, path=f"r{i}.png", service="comfyui", model="m", prompt=f"row {i}", seed=i,
                       width=64, height=64, created="2024-01-01T00:00:00.000+00:00", created_ts=float(i),
                       file_size=1, mtime_ns=1)


def test_fast_scroll_fetches_only_the_newest_pages(qapp, tmp_path, loop):
    """A scroll-bar drag asks for a page per frame: the screens flown past are never loaded."""
    index = _SlowIndex(100_000)
    loader = ThumbnailLoader(tmp_path, capacity=10)
    m = GalleryModel(index, loader, tasks=TaskOwner(), images_root=tmp_path, live=False)
    try:
        loop.run_until_complete(m.set_query(ImageQuery()))
        assert m.rowCount() == 100_000
        for row in range(0, 100_000, 5_000):  # twenty screens in a row, each painted once
            m.index(row, 0).data(Qt.ItemDataRole.DisplayRole)
        loop.run_until_complete(asyncio.sleep(0.05))  # the fetches started have reached the index
        assert len(index.asked) == model_mod.MAX_IN_FLIGHT == 1  # the first, then only wishes
        index.gate.set()
        loop.run_until_complete(wait_until(lambda: not m.fetching))
        # The one in flight and the last screen asked for; none of the eighteen in between
        # (the index has one worker: a second fetch in flight would only queue behind the first).
        assert index.asked == [0, 95_000]
        assert m.record(95_000) is not None and m.record(50_000) is None
    finally:
        m.detach()
        loader.close()


class _HeldIndex(_SlowIndex):
    """A slow index that records when the gallery asks background work to wait."""

    def __init__(self, total: int):
        super().__init__(total)
        self.holds: list[float] = []

    def hold_background(self, seconds: float) -> None:
        self.holds.append(seconds)


def test_a_page_announces_only_the_rows_shown_as_placeholders(qapp, tmp_path, loop):
    """QListView walks every row of a dataChanged range (calls into Python for each), so an
    arriving page names only the rows the view painted as placeholders, in one signal."""
    index = _SlowIndex(1000)
    loader = ThumbnailLoader(tmp_path, capacity=10)
    m = GalleryModel(index, loader, tasks=TaskOwner(), images_root=tmp_path, live=False)
    try:
        m.page_size = 100
        loop.run_until_complete(m.set_query(ImageQuery()))
        changed = []
        m.dataChanged.connect(lambda a, b, roles: changed.append((a.row(), b.row())))
        for row in (7, 3, 5):  # a screen's tiles painted before their page is in
            m.index(row, 0).data(Qt.ItemDataRole.DecorationRole)
        index.gate.set()
        loop.run_until_complete(wait_until(lambda: not m.fetching and changed))
        loop.run_until_complete(asyncio.sleep(0.05))  # anything else would come within a frame
        assert changed == [(3, 7)] and m.record(50) is not None  # the whole page is loaded
    finally:
        m.detach()
        loader.close()


def test_scrolling_holds_the_background_rescan(qapp, tmp_path, loop):
    from studio_gui.gallery.view import GalleryView

    index = _HeldIndex(5000)
    index.gate.set()
    loader = ThumbnailLoader(tmp_path, capacity=10)
    m = GalleryModel(index, loader, tasks=TaskOwner(), images_root=tmp_path, live=False)
    view = GalleryView(thumb=64)
    try:
        loop.run_until_complete(m.set_query(ImageQuery()))
        m.index(2500, 0).data()  # a row whose page must be fetched: the user is scrolling
        assert index.holds and all(s > 0 for s in index.holds)
        index.holds.clear()
        loop.run_until_complete(wait_until(lambda: not m.fetching))
        view.setModel(m)
        view.resize(400, 300)
        sb = view.verticalScrollBar()
        sb.setRange(0, 1000)  # not shown (closing a shown top-level would quit the test's loop)
        index.holds.clear()
        sb.setValue(sb.singleStep())  # a wheel step within the loaded first page
        assert index.holds  # moving through loaded rows counts too
    finally:
        view.deleteLater()
        m.detach()
        loader.close()


def test_thumbnail_rows_follow_inserted_rows(qapp, paths, loop):
    loader = ThumbnailLoader(paths.thumbnails, capacity=5)
    try:
        m = GalleryModel(None, loader, tasks=TaskOwner(), images_root=paths.images)
        records = recs(5)
        m.set_records(records)
        changed = []
        m.dataChanged.connect(lambda a, b, roles: changed.append((a.row(), b.row())))
        m._on_thumbnail_ready(thumb_key(records[2]))
        m.insert_record(ImageRecord(id=99, path="new.png", prompt="newest", created_ts=5000.0))
        m._on_thumbnail_ready(thumb_key(records[2]))
        m._on_thumbnails_ready([thumb_key(records[4]), thumb_key(records[0])])
        assert changed == [(2, 2), (3, 3), (1, 5)]
    finally:
        loader.close()
