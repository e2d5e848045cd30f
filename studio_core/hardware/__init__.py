"""Hardware-aware generation settings: model families, VRAM estimates, card profiles,
the safe-parameter planner, size presets and quality tiers. Pure functions, no I/O."""

from __future__ import annotations
