"""Automatic in-app transparency: key out the plain background of each saved image.

A request planned with the in-app method (``("background_method", "in_app")``, set by
:func:`studio_core.sprites.background.apply_background_plan`) asked the service for a
plain key-colour background. When the job queue saves such an image, :class:`AutoTransparency`
runs :func:`~studio_core.sprites.background.remove_background` in a worker thread and writes
the result as a new file beside the original (``<stem>_transparent.png``), with the
original's metadata; the original is never opened for writing. The copy is announced
through ``core.image_saved`` so the gallery lists it. An image whose edge is not one plain
colour gives a :class:`TransparencyResult` with a message instead (no exception).

Qt-free; use from the asyncio loop (listener callbacks run on it)::

    auto = AutoTransparency(core, on_result=print)
    ...
    await auto.aclose()
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from studio_core.errors import StudioError
from studio_core.models import SavedImage

log = logging.getLogger(__name__)

SUFFIX = "transparent"
IN_APP = "in_app"
# Facts of the original that must not be counted twice (the spend view sums cost_usd).
_NOT_COPIED = ("cost_usd", "cost", "usage")


@dataclass(frozen=True, slots=True)
class TransparencyResult:
    """What happened to one saved image: ``saved`` is the transparent copy, or None with
    ``message`` saying why not (worded for the user, like a JobNotice)."""

    job_id: str
    source: Path
    saved: SavedImage | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.saved is not None


def wants_in_app(request: Any) -> bool:
    from studio_core.sprites.background import METHOD_OPTION

    return request is not None and request.option(METHOD_OPTION) == IN_APP


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


async def announce(core: Any, saved: SavedImage) -> None:
    """Tell ``core.image_saved`` subscribers (the gallery index) about a new file."""
    for cb in list(core.image_saved):
        try:
            result = cb(saved)
            if asyncio.iscoroutine(result):
                await result
        except Exception:
            log.exception("image_saved subscriber failed for %s", Path(saved.path).name)


async def process_saved(core: Any, job_id: str, saved: SavedImage) -> TransparencyResult:
    """Make and announce the transparent copy of one saved image (the work runs in a thread)."""
    source = Path(saved.path)
    try:
        copy = await asyncio.to_thread(make_transparent_copy, source)
    except StudioError as exc:
        log.info("no transparent copy of %s: %s", source.name, exc)
        return TransparencyResult(job_id, source, message=f"{source.name}: {exc.user_message} The original is kept.")
    await announce(core, copy)
    return TransparencyResult(job_id, source, saved=copy)


class AutoTransparency:
    """Watches ``core.jobs`` and makes a transparent copy of every image saved for an
    in-app-transparency request. ``on_result`` gets a :class:`TransparencyResult` per image."""

    def __init__(self, core: Any, *, on_result: Callable[[TransparencyResult], None] | None = None):
        self.core = core
        self.on_result = on_result
        self._tasks: set[asyncio.Task] = set()
        self._unsubscribe: Callable[[], None] | None = core.jobs.subscribe(self._on_event)

    @property
    def busy(self) -> bool:
        return bool(self._tasks)

    def _on_event(self, event: Any) -> None:
        from studio_core.jobs import JobSaved

        if isinstance(event, JobSaved) and wants_in_app(event.saved.request):
            task = asyncio.get_running_loop().create_task(self._run(event.job_id, event.saved),
                                                          name="auto transparency")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, job_id: str, saved: SavedImage) -> TransparencyResult:
        try:
            result = await process_saved(self.core, job_id, saved)
        except Exception as exc:  # a disk error on the copy must not look like a failed job
            log.exception("transparent copy of %s failed", Path(saved.path).name)
            reason = exc.user_message if isinstance(exc, StudioError) else "the copy could not be written."
            result = TransparencyResult(job_id, Path(saved.path),
                                        message=f"{Path(saved.path).name}: no transparent copy ({reason})")
        if self.on_result is not None:
            try:
                self.on_result(result)
            except Exception:
                log.exception("auto transparency listener failed")
        return result

    async def wait(self) -> None:
        """Until every copy started so far is written (or skipped)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def detach(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    async def aclose(self) -> None:
        """Stop watching and let copies already started finish (a half-done copy is never
        left behind: the write is atomic)."""
        self.detach()
        with contextlib.suppress(asyncio.CancelledError):
            await self.wait()
