"""In-app transparency: key out the plain background of a saved image into a new file.

A request planned with the in-app method (``request.background.mode == "in_app"``, set by
:func:`studio_core.sprites.background_plan.apply_background_plan`) asked the service for a
plain key-colour background. :func:`make_transparent_copy` runs
:func:`~studio_core.sprites.background.remove_background` on a saved image and writes the
result as a new file beside it (``<stem>_transparent.png``) with the original's metadata;
the original is never opened for writing.

A pure, blocking function: the session (:mod:`studio_core.session`) calls it in a worker
thread for every image saved for such a request, then indexes and announces the copy.
"""

from __future__ import annotations

import io
import json
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from studio_core.models import SavedImage

log = logging.getLogger(__name__)

SUFFIX = "transparent"
IN_APP = "in_app"
# Facts of the original that must not be counted twice (the spend view sums cost_usd).
_NOT_COPIED = ("cost_usd", "cost", "usage")


def wants_in_app(request: Any) -> bool:
    return request is not None and request.background.mode == IN_APP


def make_transparent_copy(source: Path, *, suffix: str = SUFFIX, **remove_kw: Any) -> SavedImage:
    """Blocking (Pillow, disk): key out ``source``'s background and write the RGBA result
    beside it as ``<stem>_<suffix>.png`` (then ``-2``, ``-3``…), atomically and never over an
    existing file, keeping the original's text chunks. Raises NoBackgroundFound (a
    StudioError) when there is no plain background, NotAnImage/StorageError as usual."""
    from PIL import Image, PngImagePlugin

    from studio_core.errors import NotAnImage
    from studio_core.sprites.background import remove_background
    from studio_core.storage.atomic import atomic_write_bytes
    from studio_core.storage.images import STUDIO_CHUNK, read_metadata

    source = Path(source)
    try:
        with Image.open(source) as img:
            img.load()
            text = {k: v for k, v in (getattr(img, "text", {}) or {}).items() if isinstance(v, str)}
            original = img.copy()
    except (OSError, ValueError, SyntaxError) as exc:
        raise NotAnImage(f"{source.name}: {exc}", user_message=f"{source.name} could not be read.") from exc
    out = remove_background(original, **remove_kw)

    meta = read_metadata(source)
    created = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    info = {k: v for k, v in meta.info if k not in _NOT_COPIED}
    info.update(processed_from=source.name, background_removed=IN_APP)
    pnginfo = PngImagePlugin.PngInfo()
    for key, value in text.items():
        if key == STUDIO_CHUNK and meta.request is not None:
            payload = {"request": meta.request.to_dict(), "seed": meta.seed, "created": created, "info": info}
            pnginfo.add_itxt(STUDIO_CHUNK, json.dumps(payload, ensure_ascii=False, default=str), zip=True)
        else:
            pnginfo.add_text(key, value)
    buf = io.BytesIO()
    out.save(buf, format="PNG", pnginfo=pnginfo, compress_level=4)
    data = buf.getvalue()

    stem = f"{source.stem}_{suffix}"
    for n in range(1, 10_000):
        target = source.with_name(f"{stem}.png" if n == 1 else f"{stem}-{n}.png")
        try:
            atomic_write_bytes(target, data, exclusive=True)
        except FileExistsError:
            continue
        request = meta.request
        if request is None:
            from studio_core.models import GenerationRequest

            request = GenerationRequest(prompt=source.stem)
        return SavedImage(path=target, request=request, created=created, seed=meta.seed, file_size=len(data),
                          width=out.width, height=out.height, info=tuple(sorted(info.items())))
    raise FileExistsError(stem)
