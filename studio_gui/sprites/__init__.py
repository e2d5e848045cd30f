"""Sprite Tools dialog and the style picker the Generate tab embeds.

    from studio_gui.sprites import open_sprite_tools, StylePicker
    open_sprite_tools(parent, core, [path, ...])   # gallery selection or session results

Names load on first use: the StylePicker alone must not pull numpy into start-up.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "SpriteToolsDialog": "studio_gui.sprites.dialog",
    "open_sprite_tools": "studio_gui.sprites.dialog",
    "StylePicker": "studio_gui.sprites.style_picker",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    try:
        module = _WHERE[name]
    except KeyError:
        raise AttributeError(name) from None
    return getattr(importlib.import_module(module), name)
