"""Finding a ComfyUI on this computer when the user has not given an address.

ComfyUI listens on 8188 by default; ComfyUI Desktop picks 8000. Both are probed at once
(a refused loopback connection fails at once; a silent port costs the short status
timeout), and the first in this order that answers like ComfyUI wins. What is found is kept
in the settings' runtime ``comfy_found_url``: it is never saved, so a server started later
on the other port is found the next time.
"""

from __future__ import annotations

import asyncio
import logging

from studio_core.errors import StudioError
from studio_core.providers.comfy.client import ComfyClient

log = logging.getLogger(__name__)

LOCAL_CANDIDATES: tuple[str, ...] = ("http://127.0.0.1:8188", "http://127.0.0.1:8000")


async def answers(url: str) -> bool:
    # Built on a worker: httpx loads the system's CA certificates for every new client,
    # a GUI-thread stall of 50-250 ms (benchmarks/bench_responsiveness.py caught it).
    client = await asyncio.to_thread(ComfyClient, url)
    try:
        await client.probe()
        return True
    except StudioError as exc:
        log.debug("no ComfyUI at %s: %s", url, exc)
        return False
    finally:
        await client.aclose()


async def find_local_server(candidates: tuple[str, ...] | None = None) -> str | None:
    """The first of ``candidates`` (default: 8188, then 8000 on 127.0.0.1) where ComfyUI answers."""
    urls = LOCAL_CANDIDATES if candidates is None else candidates
    results = await asyncio.gather(*(answers(u) for u in urls))
    return next((u for u, ok in zip(urls, results) if ok), None)


async def refresh_found_url(store) -> str | None:
    """When the user set no address, look on this computer and remember the answer for this run.

    Returns what was found, or None when nothing answered or the user's address is set (then
    nothing is probed: their address is the one to use).
    """
    if store.current.comfy_url:
        return None
    found = await find_local_server()
    if not store.current.comfy_url:  # the user may have typed one meanwhile
        store.update(comfy_found_url=found or "")
    return found
