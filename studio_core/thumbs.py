"""Thumbnails: small PNG bytes per image, cached on disk by file identity.

The cache key is the file's path, size and modification time, so an image changed
behind the app's back gets a fresh thumbnail and a stale one is never shown. Blocking
(disk, Pillow): call from a worker thread.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
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


def make_thumbnail(path: Path, px: int = THUMB_SIZE) -> bytes:
    """PNG bytes of ``path`` fitted into ``px``×``px``, alpha kept. Raises OSError/ValueError."""
    # Pillow is imported on first use (a worker thread), not when the gallery module loads:
    # the window's first screen never makes a thumbnail.
    from PIL import Image, ImageOps

    with Image.open(path) as img:
        img.draft("RGBA", (px, px))  # JPEG: decode at reduced size
        img = ImageOps.exif_transpose(img)
        if img.mode not in ("RGBA", "RGB", "LA", "L"):
            img = img.convert("RGBA")
        # Pixel art stays crisp when scaled by a whole factor with nearest-neighbour.
        small = max(img.width, img.height) <= px // 2
        img.thumbnail((px, px), Image.Resampling.NEAREST if small else Image.Resampling.LANCZOS)
        if small:
            f = px // max(img.width, img.height)
            img = img.resize((img.width * f, img.height * f), Image.Resampling.NEAREST)
        buf = io.BytesIO()
        img.save(buf, format="PNG", compress_level=1)
        return buf.getvalue()


def cached_thumbnail_bytes(path: Path, cache_dir: Path, *, size: int, mtime_ns: int,
                           px: int = THUMB_SIZE) -> bytes | None:
    """The disk cache's bytes for ``path`` or None when not cached yet (never makes one)."""
    try:
        return cache_path(cache_dir, cache_key(Path(path), size, mtime_ns, px)).read_bytes()
    except OSError:
        return None


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
        data = make_thumbnail(path, px)
    except (OSError, ValueError, SyntaxError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        log.debug("no thumbnail for %s: %s", path, exc)
        return None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(target, data)
    except Exception as exc:  # a full or read-only cache disk only costs speed
        log.debug("thumbnail cache write failed: %s", exc)
    return data
