"""Rebuilding index rows from the image files themselves.

The files are the truth: every row can be recomputed from a file's embedded metadata
(this app's ``studio`` chunk, A1111's ``parameters``, ComfyUI's ``prompt`` graph), so a
lost or damaged index costs nothing but a rescan. Everything here blocks (disk,
Pillow); the index calls it from its worker thread.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator


from studio_core.errors import NotAnImage, StorageError
from studio_core.models import GenerationRequest, SavedImage
from studio_core.storage.records import UNKNOWN_SERVICE, iso_to_ts

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".webp", ".jpg", ".jpeg")
IMPORTED_DIR = "imported"
GENERATED, IMPORTED = "generated", "imported"  # the ``origin`` column


def is_candidate(name: str) -> bool:
    # Dot files include atomic_write's ".tmp-*.part" leftovers from a killed save.
    return not name.startswith(".") and name.lower().endswith(IMAGE_SUFFIXES)


def relpath(root: Path, path: Path) -> str:
    return Path(os.path.relpath(path, root)).as_posix()


# A background walk pauses this long every BREATHE_EVERY entries. Each stat releases the GIL
# only for the syscall and takes it straight back, so a walk of 100k files left the GUI
# thread waiting a full switch interval (5 ms) for every call Qt made into Python while
# painting: 100+ ms frames. A real sleep (not sleep(0), which the walking thread usually
# wins again) hands the GIL over; 1 ms per 200 entries adds ~0.5 s to a 100k walk.
BREATHE_EVERY = 200
BREATHE_S = 0.001


class Pacer:
    """Paces background work (the reconcile) around what the user is doing.

    ``breathe()`` sleeps briefly, and for as long as the foreground said it is busy
    (``hold``): while the user drags through the gallery, any Python running on another
    thread costs the GUI thread a GIL wait on each of the hundreds of calls Qt makes into
    Python per frame, so the walk simply waits until the scrolling stops. Thread-safe
    enough by design: ``hold`` only raises a float deadline.
    """

    def __init__(self) -> None:
        self.busy_until = 0.0
        self.waited_s = 0.0  # time spent waiting for the foreground (tests, benchmarks)

    def hold(self, seconds: float) -> None:
        self.busy_until = max(self.busy_until, time.monotonic() + seconds)

    def release(self) -> None:
        """The foreground is idle now (e.g. the gallery closed): background work goes on."""
        self.busy_until = 0.0

    def busy_for(self) -> float:
        return max(0.0, self.busy_until - time.monotonic())

    def breathe(self) -> None:
        time.sleep(BREATHE_S)
        while (left := self.busy_for()) > 0:
            time.sleep(min(left, 0.05))
            self.waited_s += min(left, 0.05)


def list_image_files(root: Path, *, temp_files: list[str] | None = None,
                     pacer: Pacer | None = None) -> dict[str, tuple[int, int]]:
    """``{relative path: (size, mtime_ns)}`` for every image under ``root``; one directory walk.

    Plain strings rather than pathlib: this runs over every file on each start. Leftover
    ``.tmp-*.part`` files of a killed save are collected into ``temp_files`` (absolute).
    ``pacer``: a background walk that pauses every ``BREATHE_EVERY`` entries so the GUI
    thread gets the GIL (slower in total; not for a walk somebody waits on).
    """
    out: dict[str, tuple[int, int]] = {}
    stack = [(os.fspath(root), "")]
    seen = 0
    while stack:
        folder, prefix = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as exc:
            log.warning("cannot list %s: %s", folder, exc)
            continue
        for e in entries:
            seen += 1
            if pacer is not None and seen % BREATHE_EVERY == 0:
                pacer.breathe()
            try:
                if e.is_dir(follow_symlinks=False):
                    if not e.name.startswith("."):
                        stack.append((e.path, f"{prefix}{e.name}/"))
                elif is_candidate(e.name):
                    st = e.stat()
                    out[prefix + e.name] = (st.st_size, st.st_mtime_ns)
                elif temp_files is not None and e.name.startswith(".tmp-") and e.name.endswith(".part"):
                    temp_files.append(e.path)
            except OSError:
                continue
    return out


def diff_listing(files: dict[str, tuple[int, int]], rows: dict[str, tuple[int, int, int]], root: Path, *,
                 pacer: Pacer | None = None) -> tuple[list[str], list[int], dict[str, int]]:
    """(files to (re)read, row ids whose file is gone, {path: id} of changed rows).

    ``rows`` is the index's ``{path: (id, size, mtime_ns)}``. Blocking; any thread."""
    todo: list[str] = []
    for n, (p, ident) in enumerate(files.items(), 1):
        known = rows.get(p)
        if known is None or known[1:] != ident:
            todo.append(p)
        if pacer is not None and n % (BREATHE_EVERY * 10) == 0:
            pacer.breathe()
    # A row missing from the listing may belong to an image saved after the listing was
    # taken; only a file that is really not there loses its row.
    gone = [i for p, (i, _s, _m) in rows.items() if p not in files and not (root / p).exists()]
    return todo, gone, {p: rows[p][0] for p in todo if p in rows}


def remove_stale_temp_files(files: list[str], *, older_than_s: float = 3600) -> int:
    """Delete half-written ``.tmp-*.part`` files a killed save left behind (not a running one's)."""
    now = time.time()
    n = 0
    for f in files:
        try:
            if now - os.stat(f).st_mtime > older_than_s:
                os.unlink(f)
                n += 1
        except OSError:
            pass
    return n


def _num(value: Any, conv, default=None):
    try:
        if value is None or isinstance(value, bool):
            return default
        return conv(value)
    except (TypeError, ValueError):
        return default


def _request_columns(req: GenerationRequest | None) -> dict[str, Any]:
    if req is None:
        return {}
    return {
        "service": req.service, "model": req.model, "prompt": req.prompt, "negative": req.negative_prompt,
        "width": req.width, "height": req.height, "steps": req.steps, "cfg": req.cfg, "sampler": req.sampler,
        "scheduler": req.scheduler, "quality": req.quality.value, "request_json": req.to_json(),
        # A batch run's image: found by its set, and by its job id when the batch resumes.
        "set_name": str(req.option("batch_set") or ""), "batch_id": str(req.option("batch_id") or ""),
        "batch_job": str(req.option("batch_job") or ""),
        "input_digests": ",".join(req.inputs.digests()),
    }


def _info_columns(info: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(info.get("provider"), str):
        out["provider"] = info["provider"]
    if isinstance(info.get("server"), str):
        out["server"] = info["server"]
    cost = _num(info.get("cost_usd"), float)
    if cost is not None:
        out["cost_usd"] = cost
    dur = _num(info.get("duration_s"), float)
    if dur is not None:
        out["duration_s"] = dur
    return out


def origin_of(rel: str, source: str) -> str:
    """Whether a file found in the images folder was generated by this install.

    Our own files carry the ``studio`` chunk and live outside ``imported/``; anything the
    Import command copied in, or another tool's file dropped in by hand, is imported, so
    a cost recorded in it is not money spent here."""
    if rel.startswith(IMPORTED_DIR + "/") or source != "studio":
        return IMPORTED
    return GENERATED


def row_from_saved(root: Path, saved: SavedImage) -> dict[str, Any]:
    path = Path(saved.path)
    try:
        st = path.stat()
        size, mtime = st.st_size, st.st_mtime_ns
    except OSError:
        size, mtime = saved.file_size, 0
    row = {
        "path": relpath(root, path), "seed": saved.seed, "created": saved.created,
        "created_ts": iso_to_ts(saved.created), "file_size": size, "mtime_ns": mtime, "source": "studio",
        "origin": GENERATED,
        **_request_columns(saved.request),
    }
    if saved.width and saved.height:
        row["width"], row["height"] = saved.width, saved.height
    row.update(_info_columns(dict(saved.info)))
    return row


def row_from_file(root: Path, rel: str, size: int, mtime_ns: int) -> dict[str, Any]:
    """Index row for one file from its embedded metadata. Raises NotAnImage for a file
    that is not a readable image; broken metadata just gives a row with less in it."""
    # Pillow is imported here, not at module level: opening the index at start-up needs none of it.
    from PIL import Image, UnidentifiedImageError

    from studio_core.storage.images import read_metadata

    path = Path(root) / rel
    try:
        with Image.open(path) as img:
            width, height = img.size
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise NotAnImage(f"{rel}: {exc.__class__.__name__}: {exc}",
                         user_message=f"{Path(rel).name} is not an image the studio can read.") from exc
    meta = read_metadata(path)
    req = meta.request
    source = meta.source
    if req is None and meta.comfy_prompt:
        req = parse_comfy_prompt(meta.comfy_prompt)
        source = "comfyui" if req is not None else source
    created = meta.created or datetime.fromtimestamp(mtime_ns / 1e9, timezone.utc).isoformat(timespec="milliseconds")
    row: dict[str, Any] = {
        "path": rel, "created": created, "created_ts": iso_to_ts(created) or mtime_ns / 1e9,
        "file_size": size, "mtime_ns": mtime_ns, "source": source, "origin": origin_of(rel, source),
        "seed": meta.seed if meta.seed is not None else (req.seed if req else None),
        **_request_columns(req),
    }
    if req is None:
        row["service"] = UNKNOWN_SERVICE
    row["width"], row["height"] = width, height
    row.update(_info_columns(dict(meta.info)))
    return row


# ---------------------------------------------------------------------------------------
# ComfyUI API graphs


def _follow(graph: dict, ref: Any) -> dict | None:
    if isinstance(ref, list) and ref and isinstance(graph.get(str(ref[0])), dict):
        return graph[str(ref[0])]
    return None


def _text_of(graph: dict, node: dict | None, depth: int = 0) -> str:
    if node is None or depth > 8:
        return ""
    inputs = node.get("inputs") or {}
    for key in ("text", "text_g", "prompt", "positive"):
        v = inputs.get(key)
        if isinstance(v, str):
            return v
        if isinstance(v, list):
            return _text_of(graph, _follow(graph, v), depth + 1)
    for key in ("conditioning", "conditioning_1", "positive"):
        if isinstance(inputs.get(key), list):
            return _text_of(graph, _follow(graph, inputs[key]), depth + 1)
    return ""


def parse_comfy_prompt(text: str) -> GenerationRequest | None:
    """Prompt and sampler settings from a ComfyUI API-format graph (vanilla nodes)."""
    try:
        graph = json.loads(text)
    except ValueError:
        return None
    if not isinstance(graph, dict):
        return None
    d: dict[str, Any] = {"service": "comfyui"}
    for node in graph.values():
        if not isinstance(node, dict):
            continue
        ctype = str(node.get("class_type", ""))
        inputs = node.get("inputs") or {}
        if not isinstance(inputs, dict):
            continue
        if ctype.startswith("KSampler") and "prompt" not in d:
            d["prompt"] = _text_of(graph, _follow(graph, inputs.get("positive")))
            d["negative_prompt"] = _text_of(graph, _follow(graph, inputs.get("negative")))
            for src, dst, conv in (("seed", "seed", int), ("noise_seed", "seed", int), ("steps", "steps", int),
                                   ("cfg", "cfg", float), ("sampler_name", "sampler", str), ("scheduler", "scheduler", str)):
                v = _num(inputs.get(src), conv)
                if v is not None:
                    d[dst] = v
        elif "ckpt_name" in inputs and isinstance(inputs["ckpt_name"], str):
            d.setdefault("model", inputs["ckpt_name"])
        elif "unet_name" in inputs and isinstance(inputs["unet_name"], str):
            d.setdefault("model", inputs["unet_name"])
        elif ctype.startswith("EmptyLatentImage") or ctype.startswith("EmptySD3LatentImage"):
            w, h = _num(inputs.get("width"), int), _num(inputs.get("height"), int)
            if w and h:
                d["width"], d["height"] = w, h
    if "prompt" not in d:
        return None
    return GenerationRequest.from_dict(d)


# ---------------------------------------------------------------------------------------
# Import


def iter_importable(src: Path) -> Iterator[Path]:
    for dirpath, dirs, files in os.walk(src):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for f in sorted(files):
            if is_candidate(f):
                yield Path(dirpath) / f


def import_folder(src: Path, images_root: Path) -> tuple[list[str], list[str]]:
    """Copy the images of ``src`` (e.g. a ComfyUI ``output/``) under ``images/imported/<name>/``.

    Returns (copied relative paths, problems). Files keep their names and metadata;
    a file already imported with the same name and size is skipped.
    """
    src = Path(src)
    if not src.is_dir():
        raise StorageError(f"{src} is not a folder", user_message=f"{src} is not a folder.")
    images_root = Path(images_root).resolve()
    if src.resolve() == images_root or images_root in src.resolve().parents:
        raise StorageError("import from inside the gallery",
                           user_message="That folder is already part of the gallery; use Rescan instead.")
    from studio_core.storage.images import safe_component

    dest_root = images_root / IMPORTED_DIR / safe_component(src.name, fallback="folder")
    copied, problems = [], []
    for f in iter_importable(src):
        target = dest_root / f.relative_to(src)
        try:
            if target.exists() and target.stat().st_size == f.stat().st_size:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".tmp-{target.name}.part")
            shutil.copy2(f, tmp)
            os.replace(tmp, target)
            copied.append(relpath(images_root, target))
        except OSError as exc:
            problems.append(f"{f.name}: {exc.strerror or exc}")
            if getattr(exc, "errno", None) == 28:  # ENOSPC: everything after fails the same way
                problems.append("The disk is full; the import stopped.")
                break
    return copied, problems
