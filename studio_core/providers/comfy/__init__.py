"""ComfyUI provider: HTTP + websocket client, workflow builder, custom workflows."""

from __future__ import annotations
