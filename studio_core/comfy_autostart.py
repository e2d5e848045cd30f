"""What the studio does about ComfyUI when a front end starts: start the server it manages
(Settings → "Start ComfyUI when the app starts"), or, with no address set, look for one
already running on the usual ports. The same decision for the window and for a script."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def start_action(settings: Any) -> str:
    """Pure: "start" (the managed server), "discover" (no address: look on 8188/8000) or ""."""
    if settings.comfy_manage_server:
        return "start"
    if not settings.comfy_url:
        return "discover"
    return ""


async def on_start(core: Any) -> str:
    """Carry out :func:`start_action` for ``core``; returns what it did. A server that
    fails to start says so in its state (``ServerStateChanged``); a refusal before it
    starts (a port in use) is raised as a StudioError with its user message."""
    action = start_action(core.settings.current)
    if action == "start":
        await core.comfy_server.start()
    elif action == "discover":
        from studio_core.providers.comfy import discovery

        await discovery.refresh_found_url(core.settings)
    return action
