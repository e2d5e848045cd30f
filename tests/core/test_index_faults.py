"""Faults: a killed app, a damaged or missing index, files changed behind the app's back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from studio_core.storage.index import ImageIndex
from studio_core.storage.rescan import list_image_files
from studio_core.storage.records import ImageQuery
from tests.conftest import run_async
from tests.core.test_index import save
from tests.file_permissions import needs_unwritable_folders


@pytest.fixture(autouse=True)
def _no_reconcile_delay(monkeypatch):
    monkeypatch.setattr(ImageIndex, "reconcile_delay_s", 0.0)


def _rows(paths) -> set[str]:
    async def go():
        idx = await ImageIndex.open(paths)
        try:
            await idx.wait_reconciled()
            return {r.path for r in await idx.query(ImageQuery(), limit=100_000)}, list(idx.messages)
        finally:
            await idx.aclose()

    return run_async(go())


def test_sigkill_mid_batch_leaves_rows_and_files_in_step(paths, tmp_path):
    script = textwrap.dedent(f"""
        import asyncio, sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from studio_core.app_core import StudioCore
        from studio_core.models import GenerationRequest, JobImage
        from studio_core.paths import AppPaths
        from tests.fakes import png_bytes

        async def main():
            core = await StudioCore.open(AppPaths.portable({str(paths.data.parent)!r}), use_keyring=False)
            i = 0
            while True:
                await core.save_image(JobImage("j", png_bytes(32, 32, (i % 255, 0, 0, 255)), seed=i),
                                      GenerationRequest(prompt=f"batch image {{i}}"))
                i += 1
                if i == 5:
                    print("ready", flush=True)

        asyncio.run(main())
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.3)  # let it be somewhere inside a save or an insert
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    files = set(list_image_files(paths.images))
    assert len(files) >= 5
    rows, _msgs = _rows(paths)
    assert rows == set(list_image_files(paths.images))  # no row without a file, no file without a row
    assert not [f for f in os.listdir(paths.images) if f.startswith(".tmp-") and
                time.time() - os.stat(paths.images / f).st_mtime > 3600]


def test_corrupt_index_is_rebuilt_with_a_message(paths):
    saved = [save(paths, f"ghost {i}", seed=i) for i in range(3)]
    rows, _ = _rows(paths)
    assert len(rows) == 3
    for suffix in ("-wal", "-shm"):
        Path(str(paths.index_file) + suffix).unlink(missing_ok=True)
    paths.index_file.write_bytes(b"this is not a database" * 100)
    rows, msgs = _rows(paths)
    assert rows == {s.path.name for s in saved}
    assert any("damaged" in m and "rebuilt" in m for m in msgs)
    assert list(paths.data.glob("index.sqlite3.damaged-*"))


def test_missing_index_is_rebuilt_with_a_message(paths):
    save(paths, "lost index")
    rows, msgs = _rows(paths)
    assert len(rows) == 1 and any("missing" in m for m in msgs)
    rows, msgs = _rows(paths)  # second open: nothing to say
    assert msgs == []


def test_newer_schema_is_set_aside_not_crashed(paths):
    import sqlite3

    save(paths, "future")
    _rows(paths)
    con = sqlite3.connect(paths.index_file)
    con.execute("PRAGMA user_version=999")
    con.close()
    rows, msgs = _rows(paths)
    # Set aside (kept for the newer app), rebuilt from the files, and said so.
    assert len(rows) == 1
    assert any("rebuilt" in m for m in msgs), msgs
    assert list(paths.data.glob("index.sqlite3.damaged-*"))


def test_files_changed_behind_the_apps_back(paths):
    a = save(paths, "alpha sprite", seed=1)
    b = save(paths, "beta sprite", seed=2)

    async def go():
        idx = await ImageIndex.open(paths)
        try:
            rec_a = (await idx.query(ImageQuery(text="alpha")))[0]
            await idx.set_favourite([rec_a.id], True)
            # b deleted by hand, a replaced by another image, junk and a hand-made file dropped in
            b.path.unlink()
            from PIL import Image

            Image.new("RGBA", (40, 20), (0, 0, 0, 0)).save(a.path)
            (paths.images / "notes.png").write_text("not an image")
            (paths.images / "ドラゴン 🐉 ünï.png").write_bytes(open(a.path, "rb").read())
            broken = paths.images / "broken-meta.png"
            from PIL import PngImagePlugin

            info = PngImagePlugin.PngInfo()
            info.add_text("studio", "{not json")
            info.add_text("parameters", "\x00\x01 garbage")
            Image.new("RGB", (8, 8)).save(broken, pnginfo=info)
            rep = await idx.rescan()
            assert rep.removed == 1 and rep.updated == 1 and rep.added == 2
            assert rep.unreadable == ("notes.png",)
            recs = {r.path: r for r in await idx.query(ImageQuery())}
            assert set(recs) == {a.path.name, "ドラゴン 🐉 ünï.png", "broken-meta.png"}
            assert (recs[a.path.name].width, recs[a.path.name].height) == (40, 20)
            assert recs[a.path.name].favourite  # the user's flag survives a rescan
        finally:
            await idx.aclose()

    run_async(go())


@needs_unwritable_folders
def test_read_only_index_folder_refuses_to_open_and_loses_nothing(paths):
    """The intended outcome, and the only one accepted: SQLite's WAL mode must create files
    beside the index, so in a read-only folder the index does not open; the error says why
    in plain words, and the index is neither set aside as damaged nor rebuilt (the app then
    starts without a gallery, see StudioCore.ensure_index)."""
    from studio_core.errors import StorageError

    save(paths, "ro", seed=1)
    rows, _ = _rows(paths)
    before = paths.index_file.read_bytes()
    listing = sorted(os.listdir(paths.data))
    os.chmod(paths.index_file, 0o444)
    os.chmod(paths.data, 0o555)
    try:
        with pytest.raises(StorageError) as ei:
            run_async(ImageIndex.open(paths))
        assert "read-only" in ei.value.user_message
        assert sorted(os.listdir(paths.data)) == listing  # nothing moved aside, nothing half-made
    finally:
        os.chmod(paths.data, 0o755)
        os.chmod(paths.index_file, 0o644)
    assert paths.index_file.read_bytes() == before
    rows_after, msgs = _rows(paths)  # writable again: the same index, no rebuild
    assert rows_after == rows and not any("damaged" in m or "rebuilt" in m for m in msgs)
