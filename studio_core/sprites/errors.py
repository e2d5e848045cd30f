"""Sprite-tool failures, worded for someone who just wants a sprite."""

from __future__ import annotations

from studio_core.errors import StudioError


class SpriteError(StudioError):
    user_message = "The sprite tool could not process this image."


class PaletteError(SpriteError):
    user_message = ("That palette file could not be read. Use a GIMP .gpl, a JASC .pal, "
                    "or a .hex file with one RRGGBB colour per line.")


class GridTooLarge(SpriteError):
    user_message = "The pixel grid is larger than the image. Pick a smaller grid."


class NoBackgroundFound(SpriteError):
    user_message = ("This image has no plain background to remove: its edges are not one colour. "
                    "Generate it on a plain background (the pixel-art styles ask for one), "
                    "or use a service with transparent output.")


class FrameMismatch(SpriteError):
    user_message = "The selected images have different sizes."


class EmptySheet(SpriteError):
    user_message = "Select at least one image to make a sprite sheet."


class ExportNotPossible(SpriteError):
    user_message = "This export format cannot be written for this sheet."
