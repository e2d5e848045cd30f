"""Which server to ask about a model's family, and where the user's own answer is kept.

:func:`studio_core.providers.comfy.model_family.identify_family` gathers the evidence from
one server; this module picks that server (in a pool: the first, in the user's order, that
answers and has the file), finds the folder the file is listed under, whether the server's
models folder is on this computer, and what the user said about the file before.

The user's answers live in ``settings.model_families`` per server: ``{key: {file: family id}}``.
The key is the server's address, except for the server the app starts, whose port is new at
every start (its answers would be lost each time) and which is kept under ``"managed"``.
``"other"`` is a valid answer ("none of these"): remembered so the user is asked once, and
estimated like an unknown model.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from studio_core.errors import StudioError
from studio_core.hardware.families import UNKNOWN, FamilyGuess
from studio_core.providers.comfy import object_info as oi
from studio_core.providers.comfy.model_family import identify_family

log = logging.getLogger(__name__)

MANAGED_KEY = "managed"
OTHER = "other"
ANSWERS = ("sd15", "sdxl", "sd3", "flux", OTHER)  # what the GUI offers when nothing else decides
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_MANAGED_ID = "managed"  # studio_core.pool.server_list.MANAGED_ID; not imported so plain providers work alone


@dataclass(frozen=True, slots=True)
class FamilyAnswer:
    """``server_key``: where an answer from the user is remembered ("" when there is no server)."""

    name: str
    guess: FamilyGuess
    server_key: str
    server_name: str = ""

    @property
    def needs_asking(self) -> bool:
        return self.guess.source == ""


@dataclass(frozen=True, slots=True)
class _Server:
    key: str
    name: str
    url: str
    provider: Any  # a ComfyProvider (or anything with ``client`` and ``object_info``)
    online: bool
    managed: bool


def _servers(provider: Any, name: str) -> list[_Server]:
    """The servers to ask, best first: those that answer and have the file, then those that answer."""
    members = getattr(provider, "members", None)
    if members is None:
        url = str(getattr(provider, "base_url", "") or "")
        return [_Server(url, url, url, provider, True, False)] if url else []
    found: list[tuple[int, int, _Server]] = []
    for order, m in enumerate(members):
        spec = m.spec
        if not m.usable or getattr(spec.kind, "value", spec.kind) != "comfyui":
            continue
        managed = spec.id == _MANAGED_ID
        has = name in (getattr(m.caps, "models", None) or ())
        rank = (0 if m.online and has else 1 if m.online else 2 if has else 3)
        found.append((rank, order, _Server(MANAGED_KEY if managed else spec.url, spec.name, spec.url, m.provider,
                                           bool(m.online), managed)))
    return [s for _r, _o, s in sorted(found, key=lambda t: (t[0], t[1]))]


def models_dir_of(comfy_folder: str) -> Path | None:
    """The ``models`` folder of the ComfyUI in ``comfy_folder`` (a git checkout or the Windows
    portable build, which keeps it in ``ComfyUI/``); None when there is none. Touches the disk."""
    if not comfy_folder.strip():
        return None
    base = Path(comfy_folder).expanduser()
    for candidate in (base / "models", base / "ComfyUI" / "models"):
        if candidate.is_dir():
            return candidate
    return None


def _is_local(server: _Server) -> bool:
    if server.managed:
        return True
    try:
        return (urlsplit(server.url).hostname or "") in _LOOPBACK
    except ValueError:
        return False


async def _folder_of(server: _Server, name: str) -> str:
    """"diffusion_models" for a file only UNETLoader lists, as the workflow builder decides it."""
    if not server.online:
        return "checkpoints"
    fetch = getattr(server.provider, "object_info", None)
    if fetch is None:
        return "checkpoints"
    try:
        info = await fetch()
    except StudioError as exc:
        log.info("no object_info from %s for %s: %s", server.name, name, exc)
        return "checkpoints"
    if name in oi.diffusion_models(info) and name not in oi.checkpoints(info):
        return "diffusion_models"
    return "checkpoints"


def remembered(settings: Any, key: str) -> dict[str, str]:
    answers = (getattr(settings, "model_families", None) or {}).get(key) or {}
    return {str(k): str(v) for k, v in answers.items() if isinstance(v, str)}


async def family_of(provider: Any, name: str, settings: Any) -> FamilyAnswer:
    """The family of model file ``name`` as the ``comfyui`` provider's servers and this computer
    tell it. Never raises for a server that does not answer; that evidence is simply missing."""
    servers = _servers(provider, name)
    server = servers[0] if servers else None
    key = server.key if server is not None else ""
    folder = await _folder_of(server, name) if server is not None else "checkpoints"
    models_dir = None
    comfy_folder = str(getattr(settings, "comfy_server_folder", "") or "")
    if server is not None and comfy_folder and _is_local(server):
        models_dir = await asyncio.to_thread(models_dir_of, comfy_folder)
    # A server that does not answer would only cost a timeout: ask it nothing.
    client = getattr(server.provider, "client", None) if server is not None and server.online else None
    said = remembered(settings, key)
    guess = await identify_family(client, name, folder=folder, models_dir=models_dir, remembered=said)
    if not guess.known and said.get(name) == OTHER:
        guess = FamilyGuess(UNKNOWN, "user")
    return FamilyAnswer(name, guess, key, server.name if server is not None else "")


def with_answer(settings: Any, key: str, name: str, family_id: str) -> dict[str, dict[str, Any]]:
    """``settings.model_families`` with the user's answer for ``name`` on server ``key`` added."""
    if family_id not in ANSWERS:
        raise ValueError(f"unknown family answer {family_id!r}")
    current: Mapping[str, Any] = getattr(settings, "model_families", None) or {}
    out = {k: dict(v) for k, v in current.items()}
    out.setdefault(key, {})[name] = family_id
    return out
