"""Unpack ComfyUI's Windows portable ``.7z`` (blocking; run in a thread) and hash what it put down.

The portable release holds one top folder (``ComfyUI_windows_portable/``); it is stripped so
the install folder itself holds ``python_embeded/`` and ``ComfyUI/``. Every member name is
checked before a single byte is written: a name that would land outside the target, a link
or an encrypted archive makes the whole archive refused, since a crafted archive is not a
ComfyUI, and skipping members would leave a half-unpacked tree.

py7zr decompresses; the files themselves are written here (a ``WriterFactory``), so each is
hashed as it is written (the manifest then needs no second read of 6 GB) and progress and
cancelling work per MB. py7zr may decompress several solid blocks in parallel threads,
hence the lock around the shared counters.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path, PurePosixPath
from typing import Callable

from studio_core.setup.errors import BadArchive

PROGRESS_EVERY = 4 * 1024 * 1024  # bytes between progress calls: often enough for a bar, rare enough to be free


class Stopped(Exception):
    """Raised inside py7zr's writer when the caller asked to stop (a cancelled setup)."""


def _py7zr():
    # Imported on first use: only a Windows portable install needs it, and it loads several
    # compression libraries.
    import py7zr

    return py7zr


def _bad(archive: Path, name: str, why: str) -> BadArchive:
    return BadArchive(f"{archive.name}: {why} {name!r}",
                      user_message=f"{archive.name} holds {why} ({name}), so it was not unpacked and nothing was "
                                   "installed. The archive is not the ComfyUI release the app expects.")


def _top(names: list[str]) -> str:
    tops = {PurePosixPath(n).parts[0] for n in names if PurePosixPath(n).parts}
    if len(tops) == 1 and any(len(PurePosixPath(n).parts) > 1 for n in names):
        return tops.pop()
    return ""


def _relative(name: str, top: str) -> PurePosixPath:
    rel = PurePosixPath(name.replace("\\", "/"))
    if top and rel.parts and rel.parts[0] == top:
        rel = PurePosixPath(*rel.parts[1:]) if len(rel.parts) > 1 else PurePosixPath()
    return rel


def plan_members(archive: Path, dest: Path, szf) -> tuple[dict[str, Path], dict[str, int], int]:
    """{member name: target path} for files, {member: posix mode}, total bytes; raises BadArchive on any unsafe member."""
    if szf.needs_password():
        raise BadArchive(f"{archive.name}: encrypted",
                         user_message=f"{archive.name} is password-protected; ComfyUI's release is not, so it was "
                                      "not unpacked.")
    members = szf.list()
    names = [m.filename for m in members]
    top = _top([n.replace("\\", "/") for n in names])
    root = dest.resolve()
    targets: dict[str, Path] = {}
    modes: dict[str, int] = {}
    total = 0
    by_name = {f.filename: f for f in szf.files}
    for m in members:
        raw = m.filename
        rel = _relative(raw, top)
        if PurePosixPath(raw.replace("\\", "/")).is_absolute() or ".." in rel.parts or (
                len(raw) > 1 and raw[1] == ":"):
            raise _bad(archive, raw, "a file that would land outside the install folder")
        if m.is_symlink or getattr(by_name.get(raw), "is_junction", False):
            raise _bad(archive, raw, "a link")
        if not rel.parts:
            continue
        target = (dest / Path(*rel.parts)).resolve()
        if not target.is_relative_to(root) or target == root:
            raise _bad(archive, raw, "a file that would land outside the install folder")
        if m.is_directory:
            continue
        targets[raw] = target
        mode = getattr(by_name.get(raw), "posix_mode", None)
        if mode:
            modes[raw] = mode
        total += int(m.uncompressed or 0)
    return targets, modes, total


class _Writer:
    """One member: written to its target and hashed as py7zr hands over the bytes."""

    def __init__(self, target: Path, sink: _Sink, rel: str):
        target.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(target, "wb")
        self._hash = hashlib.sha256()
        self._sink, self._rel = sink, rel
        self._size = 0

    def write(self, s: bytes | bytearray) -> int:
        self._sink.check()
        self._f.write(s)
        self._hash.update(s)
        self._size += len(s)
        self._sink.add(len(s))
        return len(s)

    def read(self, size: int | None = None) -> bytes:
        return b""

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._size  # py7zr rewinds finished members for in-memory readers; a file on disk has nothing to do

    def seekable(self) -> bool:
        return False

    def flush(self) -> None:
        self._f.flush()

    def size(self) -> int:
        return self._size

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()
            self._sink.done(self._rel, self._hash.hexdigest())

    def abandon(self) -> None:
        if not self._f.closed:
            self._f.close()


class _Sink:
    """The shared state of one unpack: hashes, the byte count, the stop flag."""

    def __init__(self, total: int, on_progress: Callable[[int, int], None], stop: threading.Event | None):
        self.total, self._on_progress, self._stop = total, on_progress, stop
        self.hashes: dict[str, str] = {}
        self.writers: list[_Writer] = []
        self._lock = threading.Lock()
        self._done = 0
        self._reported = 0

    def check(self) -> None:
        if self._stop is not None and self._stop.is_set():
            raise Stopped()

    def add(self, n: int) -> None:
        with self._lock:
            self._done += n
            report = self._done - self._reported >= PROGRESS_EVERY
            if report:
                self._reported = self._done
            done = self._done
        if report:
            self._on_progress(done, self.total)

    def done(self, rel: str, sha: str) -> None:
        with self._lock:
            self.hashes[rel] = sha


def _factory(targets: dict[str, Path], dest: Path, sink: _Sink):
    from py7zr.io import WriterFactory

    root = dest.resolve()
    by_clean = {name.replace("\\", "/"): (name, target) for name, target in targets.items()}

    class Factory(WriterFactory):
        def create(self, filename: str):
            # py7zr passes the member's sanitized name; anything not planned above is refused.
            hit = by_clean.get(filename.replace("\\", "/"))
            if hit is None:
                raise BadArchive(f"unplanned member {filename!r}",
                                 user_message=f"The archive named a file it did not list ({filename}); it was not "
                                              "unpacked.")
            name, target = hit
            writer = _Writer(target, sink, target.relative_to(root).as_posix())
            sink.writers.append(writer)
            return writer

    return Factory()


def unpack(archive: Path, dest: Path, *, on_progress: Callable[[int, int], None] = lambda done, total: None,
           stop: threading.Event | None = None, only: set[str] | None = None) -> dict[str, str]:
    """Extract ``archive`` into ``dest``; returns {relative posix path: sha256} of every file written.

    ``on_progress(done, total)`` is called from worker threads. Setting ``stop`` ends the
    unpack with :class:`Stopped`. ``only``: relative paths to put back (repair); others are skipped.
    """
    py7zr = _py7zr()
    try:
        szf = py7zr.SevenZipFile(archive, mode="r")
    except (py7zr.exceptions.Bad7zFile, OSError, EOFError) as exc:
        raise BadArchive(str(exc), user_message=f"{archive.name} is not a readable 7z archive ({exc}).") from None
    with szf:
        targets, modes, total = plan_members(archive, dest, szf)
        dest.mkdir(parents=True, exist_ok=True)  # only once every name is known to be safe
        root = dest.resolve()
        if only is not None:
            targets = {n: t for n, t in targets.items() if t.relative_to(root).as_posix() in only}
            total = sum(int(m.uncompressed or 0) for m in szf.list() if m.filename in targets)
        sink = _Sink(total, on_progress, stop)
        try:
            szf.extract(path=None, targets=list(targets), factory=_factory(targets, dest, sink))
        except (Stopped, BadArchive, OSError):
            raise
        except Exception as exc:  # py7zr's CrcError, DecompressionError, UnsupportedCompressionMethodError…
            raise BadArchive(repr(exc), user_message=f"{archive.name} could not be unpacked ({type(exc).__name__}: "
                                                     f"{exc}).") from None
        finally:
            for w in sink.writers:
                w.abandon()
        # Empty members never reach a writer; they still belong to the release.
        for name, target in targets.items():
            rel = target.relative_to(root).as_posix()
            if rel not in sink.hashes and not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                target.touch()
                sink.hashes[rel] = hashlib.sha256(b"").hexdigest()
            mode = modes.get(name)
            if os.name == "posix" and mode and mode & 0o100:  # keep launchers runnable
                target.chmod(target.stat().st_mode | 0o111)
        on_progress(total, total)
        return sink.hashes
