"""The hardware-aware ComfyUI settings: model, size, quality, VRAM gauge, health, managed server."""

from __future__ import annotations
