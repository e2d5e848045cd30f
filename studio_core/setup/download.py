"""One file from a pinned URL into a ``.part`` file: resumed with HTTP Range, sha256-checked.

A broken connection is retried from the byte it stopped at (``Range: bytes=N-``); a server
that ignores Range (200 instead of 206) makes the download start over rather than append
the whole file to the part. The hash is updated as bytes arrive (the part already on disk is
hashed first), so a multi-GB model is not read twice. Disk writes and hashing run in a
worker thread: on the GUI, the asyncio loop is the Qt thread.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
from pathlib import Path
from typing import Callable

import httpx

from studio_core.setup.catalog import FileSpec
from studio_core.setup.errors import ChecksumMismatch, DiskFull, DownloadFailed, NotPinned

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
RETRIES = 4  # attempts in a row without a single new byte
TIMEOUT = httpx.Timeout(30.0, connect=15.0)  # 30 s without data counts as a broken connection


def refuse_unpinned(spec: FileSpec) -> None:
    if not spec.pinned:
        raise NotPinned(f"{spec.name}: no sha256",
                        user_message=f"{spec.name} has no pinned checksum in this version of the app, so it is not "
                                     "downloaded or used. Paste the SHA-256 shown on its release page into the plan, "
                                     "or update the app.")


def _append(f, hasher, chunk: bytes) -> None:
    f.write(chunk)
    hasher.update(chunk)


def _hash_existing(path: Path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h


def _disk_full(exc: OSError, spec: FileSpec) -> DiskFull:
    return DiskFull(f"{spec.name}: {exc}", user_message=f"The disk filled up while downloading {spec.name}. "
                                                         "The partial setup was removed; free some space and try again.")


async def fetch(client: httpx.AsyncClient, spec: FileSpec, part: Path, *,
                on_bytes: Callable[[int], None] = lambda n: None, retry_delay: float = 0.5) -> Path:
    """Download ``spec`` into ``part`` (resuming what is there) and check its sum; returns ``part``.

    ``on_bytes`` gets every change to the byte count, negative when a part had to be dropped.
    """
    refuse_unpinned(spec)
    part.parent.mkdir(parents=True, exist_ok=True)
    fruitless = 0
    while True:
        have = part.stat().st_size if part.exists() else 0
        hasher = await asyncio.to_thread(_hash_existing, part) if have else hashlib.sha256()
        before = have
        try:
            have, hasher = await _one_request(client, spec, part, have, hasher, on_bytes)
            break
        except httpx.TransportError as exc:
            now = part.stat().st_size if part.exists() else 0
            fruitless = 0 if now > before else fruitless + 1
            log.info("download of %s broke at %d bytes (%s); attempt %d", spec.name, now, exc, fruitless)
            if fruitless >= RETRIES:
                raise DownloadFailed(f"{spec.url}: {exc}", user_message=(
                    f"The download of {spec.name} stopped ({type(exc).__name__}) at {now:,} bytes. "
                    "Check the internet connection and click Try again: it continues where it left off.")) from None
            await asyncio.sleep(retry_delay * 2 ** max(0, fruitless - 1))
    digest = hasher.hexdigest()
    if digest != spec.sha256:
        await asyncio.to_thread(part.unlink, missing_ok=True)
        on_bytes(-have)
        if spec.sum_by_user:
            raise ChecksumMismatch(f"{spec.name}: sha256 {digest} != entered {spec.sha256}", user_message=(
                f"{spec.name} did not match the SHA-256 checksum you entered, so it was deleted and nothing was "
                f"installed. Check that you copied the checksum of this exact file from {spec.source or spec.url}."))
        raise ChecksumMismatch(f"{spec.name}: sha256 {digest} != pinned {spec.sha256}", user_message=(
            f"{spec.name} did not match its pinned checksum, so it was deleted and nothing was installed. "
            f"The file at {spec.url} is not the one this app expects."))
    return part


async def _one_request(client: httpx.AsyncClient, spec: FileSpec, part: Path, have: int, hasher,
                       on_bytes: Callable[[int], None]):
    headers = {"Range": f"bytes={have}-"} if have else {}
    async with client.stream("GET", spec.url, headers=headers, timeout=TIMEOUT, follow_redirects=True) as r:
        if r.status_code == 416 and have:
            return have, hasher  # the part is already whole; the sum decides
        if r.status_code >= 400:
            raise DownloadFailed(f"{spec.url}: HTTP {r.status_code}", retryable=r.status_code >= 500, user_message=(
                f"The server for {spec.name} answered {r.status_code} ({r.reason_phrase}) at {spec.url}."))
        mode = "ab"
        if have and (r.status_code != 206 or not r.headers.get("content-range", "").startswith(f"bytes {have}-")):
            log.info("%s: server did not resume at %d (HTTP %d); starting over", spec.name, have, r.status_code)
            on_bytes(-have)
            have, mode, hasher = 0, "wb", hashlib.sha256()
        f = await asyncio.to_thread(open, part, mode)
        buf = bytearray()

        async def flush() -> None:
            try:
                await asyncio.to_thread(_append, f, hasher, bytes(buf))
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    raise _disk_full(exc, spec) from None
                raise
            buf.clear()

        try:
            # Pieces as they arrive (a fixed chunk size would hold back up to a chunk when the
            # connection breaks); written in batches so a big file is not a million thread hops.
            async for piece in r.aiter_bytes():
                buf += piece
                have += len(piece)
                on_bytes(len(piece))
                if len(buf) >= CHUNK:
                    await flush()
        finally:
            try:
                if buf:
                    await flush()  # what arrived before a break is kept for the resume
            finally:
                try:
                    await asyncio.to_thread(f.close)
                except OSError as exc:  # a full disk often shows only when the buffer is flushed
                    if exc.errno == errno.ENOSPC:
                        raise _disk_full(exc, spec) from None
                    raise
    return have, hasher
