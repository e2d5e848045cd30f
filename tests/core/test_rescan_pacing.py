"""The background rescan gives way to the GUI thread (issue 11 item 25: scrolling stalls).

A rescan's Python on another thread makes every call Qt makes into Python wait for the
GIL, so the walk pauses regularly and waits altogether while the gallery is scrolled.
"""

from __future__ import annotations

import asyncio

import pytest
from PIL import Image

from studio_core.storage import rescan
from studio_core.storage.index import ImageIndex
from tests.conftest import run_async
from tests.core.test_index import save


class CountingPacer(rescan.Pacer):
    def __init__(self) -> None:
        super().__init__()
        self.breaths = 0

    def breathe(self) -> None:
        self.breaths += 1
        super().breathe()


def _tiles(folder, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (4, 4), (i, 0, 0)).save(folder / f"tile{i}.png")


def test_a_paced_walk_breathes_and_lists_the_same(tmp_path, monkeypatch):
    _tiles(tmp_path / "a", 5)
    _tiles(tmp_path / "a" / "deeper", 4)
    monkeypatch.setattr(rescan, "BREATHE_EVERY", 2)
    pacer = CountingPacer()
    paced = rescan.list_image_files(tmp_path, pacer=pacer)
    assert paced == rescan.list_image_files(tmp_path)
    assert len(paced) == 9 and "a/deeper/tile3.png" in paced
    assert pacer.breaths >= 4  # 10 entries (9 files and a folder), a pause every 2


def test_diff_listing_finds_new_changed_and_gone(tmp_path):
    (tmp_path / "saved-after-listing.png").write_bytes(b"x")
    files = {"same.png": (10, 1), "changed.png": (11, 2), "new.png": (12, 3)}
    rows = {"same.png": (1, 10, 1), "changed.png": (2, 99, 2), "gone.png": (3, 5, 5),
            "saved-after-listing.png": (4, 1, 1)}
    todo, gone, known = rescan.diff_listing(files, rows, tmp_path, pacer=rescan.Pacer())
    assert sorted(todo) == ["changed.png", "new.png"]
    assert gone == [3]  # the file saved after the listing keeps its row
    assert known == {"changed.png": 2}


def test_rescan_waits_while_the_gallery_is_scrolled(paths, monkeypatch):
    monkeypatch.setattr(ImageIndex, "reconcile_delay_s", 0.0)
    save(paths, "first knight", seed=1)

    async def go():
        idx = await ImageIndex.open(paths)
        try:
            await idx.wait_reconciled()
            _tiles(paths.images, 1)  # dropped in by hand
            idx.hold_background(600)  # the user keeps scrolling
            task = asyncio.ensure_future(idx.rescan())
            await asyncio.sleep(0.5)
            assert not task.done() and await idx.count() == 1  # the gallery's queries still answer
            idx.pacer.release()
            report = await asyncio.wait_for(task, 30)
            assert report.added == 1 and await idx.count() == 2
        finally:
            await idx.aclose()

    run_async(go())


def test_rescan_while_idle_is_not_held(paths, monkeypatch):
    monkeypatch.setattr(ImageIndex, "reconcile_delay_s", 0.0)

    async def go():
        idx = await ImageIndex.open(paths)
        try:
            await idx.wait_reconciled()
            _tiles(paths.images, 3)
            report = await asyncio.wait_for(idx.rescan(), 30)
            assert report.added == 3 and idx.pacer.waited_s == 0
        finally:
            await idx.aclose()

    run_async(go())


@pytest.mark.parametrize("seconds", [0.0, -1.0])
def test_a_hold_never_shortens_one_in_force(seconds):
    pacer = rescan.Pacer()
    pacer.hold(600)
    pacer.hold(seconds)
    assert pacer.busy_for() > 500
