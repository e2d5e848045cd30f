"""A thumbnail worker finishing after its loader was deleted emits into nothing, not into
a dead C++ object (issue 12: "thumbnail workers cannot emit into a deleted loader")."""

from __future__ import annotations

import threading

import shiboken6
from PySide6.QtCore import QObject

from studio_gui.gallery import thumbnail_loader
from studio_gui.gallery.thumbnail_loader import ThumbnailLoader
from tests.fakes import png_bytes


def test_a_worker_that_finishes_after_the_loader_is_deleted_does_not_crash(tmp_path, qapp, monkeypatch):
    started, release = threading.Event(), threading.Event()

    def slow_thumbnail(path, cache_dir, **kw):
        started.set()
        release.wait(30)
        return png_bytes()

    monkeypatch.setattr(thumbnail_loader, "thumbnail_bytes", slow_thumbnail)
    # The old guard (is the loader still alive?) could pass an instant before the GUI
    # thread deleted it; make it always pass, as in that race.
    monkeypatch.setattr(shiboken6, "isValid", lambda obj: True)
    crashes: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: crashes.append(args.exc_value))
    logged: list[str] = []
    monkeypatch.setattr(thumbnail_loader.log, "exception", lambda *a, **k: logged.append(str(a)))

    owner = QObject()
    loader = ThumbnailLoader(tmp_path / "thumbs", parent=owner, workers=1)
    ready: list = []
    loader.ready.connect(ready.append)
    src = tmp_path / "a.png"
    src.write_bytes(png_bytes())
    loader.request("a", src)
    assert started.wait(30)
    workers = list(loader._threads)
    shiboken6.delete(owner)  # the loader goes with its parent (a closed tab)
    release.set()
    for t in workers:
        t.join(30)
        assert not t.is_alive()
    qapp.processEvents()
    assert crashes == [], crashes
    assert ready == []
