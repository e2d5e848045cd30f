"""Sprite Tools dialog and the style picker the Generate tab embeds.

    from studio_gui.sprites import open_sprite_tools, StylePicker
    open_sprite_tools(parent, core, [path, ...])   # gallery selection or session results
"""

from __future__ import annotations

from studio_gui.sprites.dialog import SpriteToolsDialog, open_sprite_tools
from studio_gui.sprites.style_picker import StylePicker

__all__ = ["SpriteToolsDialog", "StylePicker", "open_sprite_tools"]
