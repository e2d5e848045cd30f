"""ThumbnailLoader: thumbnails made on worker threads, kept as QPixmaps in a bounded LRU.

Workers produce bytes through :mod:`studio_core.thumbs` (disk cache) and decode them to a
``QImage`` (allowed off the GUI thread); the ``QPixmap`` is built on the GUI thread when
the queued signal arrives. Each key is requested at most once while pending, and the
newest requests are served first, so what is on screen after a fast scroll comes first.
:meth:`request_many` hands a first screen over in a few batched jobs (one per worker),
delivered with one ``ready_many`` signal each, so it costs one repaint, not one per tile.
"""

from __future__ import annotations

import collections
import logging
import threading
from pathlib import Path
from typing import Hashable, Sequence

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage, QPixmap

from studio_core.thumbs import THUMB_SIZE, cached_thumbnail_bytes, thumbnail_bytes

log = logging.getLogger(__name__)

# 128 px RGBA is ~64 KiB, so 1,500 pixmaps stay under ~100 MiB whatever the row count.
DEFAULT_CAPACITY = 1500
# Requests beyond this are for tiles long scrolled past; they are dropped (and may be
# requested again when scrolled back to).
MAX_QUEUED = 400


_NOT_CACHED = object()  # a batch's "not in the disk cache yet"


class _Relay(QObject):
    """What workers emit on. It has no parent and each worker holds a reference, so it
    outlives the loader; Qt drops the queued calls into a deleted loader. (Emitting on
    the loader itself raced with its deletion: a check that it was alive could pass just
    before the GUI thread deleted it.)"""

    delivered = Signal(object, object)  # key, QImage | None
    delivered_many = Signal(object)  # list of (key, QImage | None, item)


class ThumbnailLoader(QObject):
    ready = Signal(object)  # key: a thumbnail (or a failure) is now known for it
    ready_many = Signal(object)  # list of keys, for a batch from request_many

    def __init__(self, cache_dir: Path, *, capacity: int = DEFAULT_CAPACITY, workers: int = 2,
                 px: int = THUMB_SIZE, parent: QObject | None = None):
        super().__init__(parent)
        self.cache_dir = Path(cache_dir)
        self.capacity = capacity
        self.px = px
        self._lru: collections.OrderedDict[Hashable, QPixmap] = collections.OrderedDict()
        self._failed: set[Hashable] = set()
        self._pending: set[Hashable] = set()
        # Jobs: lists of (key, path, size, mtime_ns); a single request is a list of one.
        self._queue: collections.deque[list[tuple[Hashable, Path, int | None, int | None]]] = collections.deque()
        self._cond = threading.Condition()
        self._stop = False
        self._threads: list[threading.Thread] = []
        self._workers = workers
        self.requested = 0  # for tests and the benchmark: how many loads were started
        self._relay = _Relay()
        self._relay.delivered.connect(self._on_delivered)
        self._relay.delivered_many.connect(self._on_delivered_many)
        self.destroyed.connect(lambda *_: self._halt())

    # -- GUI thread ------------------------------------------------------------------
    def get(self, key: Hashable) -> QPixmap | None:
        pm = self._lru.get(key)
        if pm is not None:
            self._lru.move_to_end(key)
        return pm

    def failed(self, key: Hashable) -> bool:
        return key in self._failed

    def is_pending(self, key: Hashable) -> bool:
        return key in self._pending

    def request(self, key: Hashable, path: Path, *, size: int | None = None, mtime_ns: int | None = None) -> None:
        if key in self._pending or key in self._lru or key in self._failed or self._stop:
            return
        self._pending.add(key)
        self.requested += 1
        self._enqueue([(key, Path(path), size, mtime_ns)])

    def request_many(self, items: Sequence[tuple[Hashable, Path, int | None, int | None]]) -> None:
        """Request ``(key, path, size, mtime_ns)`` items as a few batched jobs (a first screen).

        Batches only read the disk cache; a thumbnail not made yet goes back to the queue
        as an ordinary request, so a first screen never waits behind Pillow.
        """
        todo = [(k, Path(p), s, m) for k, p, s, m in items
                if k not in self._pending and k not in self._lru and k not in self._failed]
        if not todo or self._stop:
            return
        for k, *_rest in todo:
            self._pending.add(k)
        self.requested += len(todo)
        n = max(1, min(self._workers, len(todo)))
        per = -(-len(todo) // n)
        # Queued so that the first rows' batch is taken first (the queue is served newest first).
        for i in reversed(range(0, len(todo), per)):
            self._enqueue([(*item, True) for item in todo[i:i + per]])

    def _enqueue(self, job: list) -> None:
        job = [item if len(item) == 5 else (*item, False) for item in job]
        with self._cond:
            self._queue.append(job)
            while len(self._queue) > MAX_QUEUED:
                for old in self._queue.popleft():
                    self._pending.discard(old[0])
            self._cond.notify()
        if len(self._threads) < self._workers:
            t = threading.Thread(target=self._work, name=f"thumbs-{len(self._threads)}", daemon=True)
            self._threads.append(t)
            t.start()

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    def forget(self, key: Hashable) -> None:
        self._lru.pop(key, None)
        self._failed.discard(key)

    def __len__(self) -> int:
        return len(self._lru)

    def _accept(self, key: Hashable, image: QImage | None) -> bool:
        if key not in self._pending:
            return False
        self._pending.discard(key)
        if image is None or image.isNull():
            self._failed.add(key)
        else:
            self._lru[key] = QPixmap.fromImage(image)
            while len(self._lru) > self.capacity:
                self._lru.popitem(last=False)
        return True

    def _on_delivered(self, key: Hashable, image: QImage | None) -> None:
        if self._accept(key, image):
            self.ready.emit(key)

    def _on_delivered_many(self, results: list) -> None:
        keys = []
        for key, image, item in results:
            if image is _NOT_CACHED:
                if key in self._pending:  # make it the ordinary way
                    self._enqueue([item])
            elif self._accept(key, image):
                keys.append(key)
        if keys:
            self.ready_many.emit(keys)

    def _halt(self) -> None:
        with self._cond:
            self._stop = True
            self._queue.clear()
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._queue.clear()
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout=2)
        self._threads.clear()

    # -- worker threads ----------------------------------------------------------------
    def _work(self) -> None:
        relay = self._relay
        while True:
            with self._cond:
                while not self._queue and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                job = self._queue.pop()  # newest first
            results = []
            for key, path, size, mtime, cached_only in job:
                try:
                    if cached_only and size is not None and mtime is not None:
                        data = cached_thumbnail_bytes(path, self.cache_dir, size=size, mtime_ns=mtime, px=self.px)
                        if data is None:
                            results.append((key, _NOT_CACHED, (key, path, size, mtime)))
                            continue
                    else:
                        data = thumbnail_bytes(path, self.cache_dir, size=size, mtime_ns=mtime, px=self.px)
                    image = QImage.fromData(data) if data else None
                except Exception:  # a worker must survive any one bad file
                    log.exception("thumbnail for %s failed", path)
                    image = None
                results.append((key, image, (key, path, size, mtime)))
                if self._stop:
                    return
            if self._stop:
                return
            if len(job) == 1 and not job[0][4]:
                relay.delivered.emit(*results[0][:2])
            else:
                relay.delivered_many.emit(results)
