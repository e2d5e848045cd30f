"""Thumbnails: small image bytes per image, cached on disk by file identity.

The cache key is the file's path, size and modification time, so an image changed
behind the app's back gets a fresh thumbnail and a stale one is never shown. Blocking
(disk, Pillow): call from a worker thread.

Images this app saves also carry their thumbnail inside the PNG, in a private chunk
ahead of the pixel data (:func:`thumbnail_chunk`, :func:`embedded_thumbnail`). A
1024² generation takes ~20 ms to decode; its embedded thumbnail takes a few hundred
microseconds to read, so a gallery whose thumbnail cache is cold (first start, cache
cleared, images copied from another machine) still fills its first screen at once.
The chunk is "unsafe to copy" in PNG terms: an editor that changes the pixels must drop
it, and the reader also checks the image size it was made for, so a stale thumbnail is
never shown.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import struct
import zlib
from pathlib import Path

from studio_core.storage.atomic import atomic_write_bytes

log = logging.getLogger(__name__)

THUMB_SIZE = 128


def cache_key(path: Path, size: int, mtime_ns: int, px: int = THUMB_SIZE) -> str:
    ident = f"{os.path.normcase(str(Path(path).absolute()))}|{size}|{mtime_ns}|{px}"
    return hashlib.sha1(ident.encode("utf-8", "surrogatepass")).hexdigest()


def cache_path(cache_dir: Path, key: str) -> Path:
    # Two-level fan-out keeps any one folder small with 100k images.
    return Path(cache_dir) / key[:2] / f"{key}.png"


# Private ("st"), ancillary, unsafe-to-copy chunk: lower, lower, upper, upper.
THUMB_CHUNK = b"stTH"
_CHUNK_MAGIC = b"STH1"  # + width, height of the full image (uint32 BE) + the thumbnail's bytes
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_MAX_SCAN = 1 << 20  # chunks before the pixel data are small; never read further than this


def _fit(img, px: int):
    """A new image: ``img`` (Pillow, left untouched) fitted into ``px``×``px`` as the gallery shows it."""
    from PIL import Image

    if img.mode not in ("RGBA", "RGB", "LA", "L"):
        img = img.convert("RGBA")
    w, h = img.size
    longest = max(w, h, 1)
    if longest <= px // 2:  # pixel art stays crisp when scaled by a whole factor, nearest-neighbour
        f = px // longest
        return img.resize((w * f, h * f), Image.Resampling.NEAREST)
    if longest <= px:
        return img.copy()
    size = (max(1, round(w * px / longest)), max(1, round(h * px / longest)))
    # reducing_gap: a cheap integer reduce() first, as Image.thumbnail does, then Lanczos.
    return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)


def _encode(img) -> bytes:
    buf = io.BytesIO()
    if img.mode in ("RGB", "L"):
        img.save(buf, format="JPEG", quality=92)  # 3 KB where PNG takes 20 KB of grain
    else:
        img.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def make_thumbnail(path: Path, px: int = THUMB_SIZE) -> bytes:
    """Image bytes (PNG or JPEG) of ``path`` fitted into ``px``×``px``, alpha kept.

    Raises OSError/ValueError."""
    # Pillow is imported on first use (a worker thread), not when the gallery module loads:
    # the window's first screen never makes a thumbnail.
    from PIL import Image, ImageOps

    with Image.open(path) as img:
        img.draft("RGBA", (px, px))  # JPEG: decode at reduced size
        if img.getexif().get(0x0112, 1) != 1:  # only a rotated photo pays for the transpose copy
            img = ImageOps.exif_transpose(img)
        return _encode(_fit(img, px))


def thumbnail_chunk(img) -> bytes:
    """The :data:`THUMB_CHUNK` payload for a decoded Pillow image about to be saved."""
    return _CHUNK_MAGIC + struct.pack(">II", img.width, img.height) + _encode(_fit(img, THUMB_SIZE))


def embedded_thumbnail(path: Path, px: int = THUMB_SIZE) -> bytes | None:
    """The thumbnail saved inside ``path`` (a PNG this app wrote), or None.

    Reads only the chunks ahead of the pixel data. None when there is none, when it was
    made for another size, or when anything about it does not check out (CRC, the image's
    size): the caller then decodes the image as usual.
    """
    if px != THUMB_SIZE:
        return None
    try:
        with open(path, "rb") as fh:
            if fh.read(8) != _PNG_SIGNATURE:
                return None
            size: tuple[int, int] | None = None
            while fh.tell() < _MAX_SCAN:
                head = fh.read(8)
                if len(head) < 8:
                    return None
                length, kind = struct.unpack(">I4s", head)
                if kind in (b"IDAT", b"IEND") or length > _MAX_SCAN:
                    return None
                if kind not in (b"IHDR", THUMB_CHUNK):
                    fh.seek(length + 4, os.SEEK_CUR)
                    continue
                data = fh.read(length)
                crc = fh.read(4)
                if len(data) < length or len(crc) < 4 or zlib.crc32(kind + data) != struct.unpack(">I", crc)[0]:
                    return None
                if kind == b"IHDR":
                    size = struct.unpack(">II", data[:8])
                elif data[:4] == _CHUNK_MAGIC and size == struct.unpack(">II", data[4:12]):
                    return data[12:] or None
                else:
                    return None
    except (OSError, struct.error):
        return None
    return None


def cached_thumbnail_bytes(path: Path, cache_dir: Path, *, size: int, mtime_ns: int,
                           px: int = THUMB_SIZE) -> bytes | None:
    """The disk cache's or the file's embedded thumbnail, or None (never decodes the image)."""
    try:
        return cache_path(cache_dir, cache_key(Path(path), size, mtime_ns, px)).read_bytes()
    except OSError:
        return embedded_thumbnail(Path(path), px)


def thumbnail_bytes(path: Path, cache_dir: Path, *, size: int | None = None, mtime_ns: int | None = None,
                    px: int = THUMB_SIZE) -> bytes | None:
    """Cached thumbnail bytes for ``path``; None when it is not a readable image (or gone)."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        if size is None or mtime_ns is None:
            st = path.stat()
            size, mtime_ns = st.st_size, st.st_mtime_ns
        target = cache_path(cache_dir, cache_key(path, size, mtime_ns, px))
        try:
            return target.read_bytes()
        except FileNotFoundError:
            pass
        data = embedded_thumbnail(path, px) or make_thumbnail(path, px)
    except (OSError, ValueError, SyntaxError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        log.debug("no thumbnail for %s: %s", path, exc)
        return None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(target, data)
    except Exception as exc:  # a full or read-only cache disk only costs speed
        log.debug("thumbnail cache write failed: %s", exc)
    return data
