"""What a run left behind, names aside: the files written and the gallery rows.

Shared by tests/core/test_same_as_gui.py (a plain script through ``core.session``) and
the Generate-tab half of that test, so both compare the same thing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image

from studio_core.storage.images import read_metadata
from studio_core.storage.records import ImageQuery

# Row fields that say how an image was made; ids, paths, times and sizes on disk are names.
ROW_FIELDS = ("service", "model", "prompt", "negative", "seed", "width", "height", "steps", "cfg", "sampler",
              "scheduler", "quality", "source", "origin")


def _file_facts(path: Path) -> dict[str, Any]:
    meta = read_metadata(path)
    with Image.open(path) as img:
        mode, size = img.mode, img.size
    req = meta.request
    info = dict(meta.info)
    return {"mode": mode, "size": size, "seed": meta.seed,
            "prompt": req.prompt if req else None,
            "frame": req.member.name if req and req.member else None,
            "background": req.background.mode.value if req else None,
            "processed": bool(info.get("processed_from"))}


async def outcome(core) -> dict[str, list]:
    """``files``: sorted facts of every PNG in the images folder; ``rows``: sorted index rows."""
    folder = Path(core.paths.images)
    files = sorted((_file_facts(p) for p in folder.rglob("*.png")), key=repr)
    records = await core.index.query(ImageQuery(), limit=10_000)
    rows = sorted((tuple((f, getattr(r, f)) for f in ROW_FIELDS) for r in records), key=repr)
    return {"files": files, "rows": rows}
