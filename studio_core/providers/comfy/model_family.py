"""Gathering the evidence for a model's family from a ComfyUI server and this computer.

The decision itself is :func:`studio_core.hardware.families.resolve_family`; this module only
fetches what it weighs: the server's ``/view_metadata`` answer, and the safetensors header of
the same file when the server's models folder is on this computer (the managed server).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, Mapping

from studio_core.errors import StudioError
from studio_core.hardware.families import FamilyGuess, read_safetensors_header, resolve_family

log = logging.getLogger(__name__)

METADATA_TIMEOUT_S = 10.0


def local_model_file(models_dir: Path | None, folder: str, name: str) -> Path | None:
    """The file ``name`` (as ComfyUI lists it, maybe ``sub/x.safetensors``) under
    ``models_dir/folder``; None when it is not there or the name would leave the folder."""
    if models_dir is None or not name:
        return None
    base = (Path(models_dir) / folder).resolve()
    path = (base / name.replace("\\", "/")).resolve()
    if base not in path.parents:
        return None
    return path if path.is_file() else None


def _header_of(models_dir: Path | None, folder: str, name: str) -> dict[str, Any] | None:
    path = local_model_file(models_dir, folder, name)
    return read_safetensors_header(path) if path is not None else None


async def identify_family(client: Any, name: str, *, folder: str = "checkpoints", models_dir: Path | None = None,
                          remembered: Mapping[str, str] | None = None) -> FamilyGuess:
    """The family of ``name`` on the server behind ``client`` (a ComfyClient, or anything with
    ``view_metadata(folder, filename)``). A server that cannot answer the metadata question
    costs only that evidence; the rest still decides."""
    metadata = None
    fetch = getattr(client, "view_metadata", None)
    if fetch is not None:
        try:
            metadata = await asyncio.wait_for(fetch(folder, name), METADATA_TIMEOUT_S)
        except (StudioError, TimeoutError, OSError) as exc:
            log.info("no metadata for %s: %s", name, exc)
    header = await asyncio.to_thread(_header_of, models_dir, folder, name) if models_dir is not None else None
    return resolve_family(name, metadata=metadata, header=header,
                          folder=folder if folder != "checkpoints" else "",
                          remembered=(remembered or {}).get(name, ""))
