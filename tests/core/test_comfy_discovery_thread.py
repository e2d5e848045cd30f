"""Looking for a local ComfyUI never builds its HTTP client on the event loop's thread.

httpx loads the CA certificates when a client is made; on the GUI's loop that stalled the
window for up to a quarter of a second (benchmarks/bench_responsiveness.py).
"""

from __future__ import annotations

import asyncio
import threading

from studio_core.providers.comfy import client as client_mod
from studio_core.providers.comfy import discovery


def test_discovery_builds_its_client_off_the_loop_thread(monkeypatch):
    built_on: list[threading.Thread] = []
    real_init = client_mod.ComfyClient.__init__

    def recording_init(self, *args, **kwargs):
        built_on.append(threading.current_thread())
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(client_mod.ComfyClient, "__init__", recording_init)

    async def run() -> tuple[str | None, threading.Thread]:
        # Port 9 (discard) on loopback: nothing answers, so both probes fail quickly.
        return await discovery.find_local_server(("http://127.0.0.1:9",)), threading.current_thread()

    found, loop_thread = asyncio.run(run())
    assert found is None
    assert built_on and all(t is not loop_thread for t in built_on)
