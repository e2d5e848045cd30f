"""The server list as Settings keeps it, and the list the pool runs with.

Settings stores plain ``ServerSpec.to_dict()`` entries in ``comfy_servers``. Two entries
are special because older parts of the app own their addresses:

- ``my-pc`` is the address field of Settings → ComfyUI server (``comfy_url``). Whatever the
  user types there is this entry's address; an empty field means "look on this computer",
  so the entry then uses what discovery found this run (8188, then 8000).
- ``managed`` is the server the app started. Its port is new every start, so it is never
  saved and never replaces another entry's address: it is added at run time, first in the
  list, while it runs.

With no list and no typed address the pool still has one entry, "This computer", that may
be switched off (shown idle, not as an error, while nothing answers there).
"""

from __future__ import annotations

import logging
from typing import Any, Iterable

from studio_core.errors import StudioError
from studio_core.pool.servers import ServerKind, ServerSpec, normalize_server_url

log = logging.getLogger(__name__)

MY_PC_ID = "my-pc"
MANAGED_ID = "managed"
DEFAULT_LOCAL_URL = "http://127.0.0.1:8188"


def migrated_entries(comfy_url: str) -> tuple[dict[str, Any], ...]:
    """The list an older settings file means: its typed address as the first entry, "my PC"."""
    return ({"id": MY_PC_ID, "name": "my PC", "url": comfy_url.strip()},)


def stored_specs(settings: Any) -> tuple[list[ServerSpec], list[str]]:
    """The saved entries that are usable, and a sentence for each that is not (nothing is dropped from disk)."""
    specs: list[ServerSpec] = []
    problems: list[str] = []
    seen: set[str] = set()
    for raw in getattr(settings, "comfy_servers", ()) or ():
        try:
            spec = ServerSpec.from_dict(raw)
        except StudioError as exc:
            name = raw.get("name") or raw.get("url") or "?" if isinstance(raw, dict) else "?"
            problems.append(f"Server '{name}' is not used: {exc.user_message}")
            continue
        if spec.id in seen or spec.id == MANAGED_ID:
            problems.append(f"Server '{spec.name}' appears twice in the list; the second is not used.")
            continue
        seen.add(spec.id)
        specs.append(spec)
    return specs, problems


def _local(url: str, *, typed: bool, base: ServerSpec | None) -> ServerSpec | None:
    try:
        if base is not None:
            return base.replace(url=url)
        return ServerSpec(id=MY_PC_ID, name="my PC" if typed else "This computer", url=url, may_be_off=not typed)
    except StudioError as exc:
        log.warning("the ComfyUI address %r is not usable: %s", url, exc)
        return None


def pool_entries(settings: Any) -> tuple[ServerSpec, ...]:
    """Every entry the pool runs with now, in the user's order (the managed server first)."""
    specs, _problems = stored_specs(settings)
    typed = (getattr(settings, "comfy_url", "") or "").strip()
    found = (getattr(settings, "comfy_found_url", "") or "").strip()
    managed = (getattr(settings, "comfy_managed_url", "") or "").strip()
    out: list[ServerSpec] = []
    mine = next((s for s in specs if s.id == MY_PC_ID), None)
    for spec in specs:
        if spec.id == MY_PC_ID:
            local = _local(typed or found or spec.url, typed=bool(typed), base=spec)
            if local is not None:
                out.append(local)
        else:
            out.append(spec)
    if mine is None and (typed or not specs):
        local = _local(typed or found or DEFAULT_LOCAL_URL, typed=bool(typed), base=None)
        if local is not None:
            out.insert(0, local)
    if managed:
        try:
            url = normalize_server_url(managed)
        except StudioError:
            url = ""
        if url and not any(s.url == url for s in out):
            out.insert(0, ServerSpec(id=MANAGED_ID, name="Started by the app", url=url))
    return tuple(out)


def entries_to_settings(specs: Iterable[ServerSpec], *, my_pc_url: str | None = None) -> dict[str, Any]:
    """``SettingsStore.update(**result)`` for a list the user edited.

    ``my_pc_url`` is what the user typed as my PC's address ("" = look on this computer);
    None leaves ``comfy_url`` as it is. Removing my PC clears it, so discovery takes over.
    """
    kept = [s for s in specs if s.id != MANAGED_ID]
    ids = [s.id for s in kept]
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate server ids")
    changes: dict[str, Any] = {"comfy_servers": tuple(s.to_dict() for s in kept)}
    if not any(s.id == MY_PC_ID for s in kept):
        changes["comfy_url"] = ""
    elif my_pc_url is not None:
        changes["comfy_url"] = my_pc_url.strip()
    return changes


def new_id(name: str, taken: Iterable[str]) -> str:
    """A stable, readable id for a new entry (``laptop``, ``laptop-2``…)."""
    base = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")[:40] or "server"
    if base in (MANAGED_ID,):
        base = "server"
    taken = set(taken)
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    return candidate


def is_paid(spec: ServerSpec) -> bool:
    return spec.paid or spec.kind is ServerKind.runpod
