"""Sprite tools: turn a generated picture into a game-ready sprite, sheet or tile.

Pure functions over Pillow images (numpy inside), usable from a script::

    from PIL import Image
    from studio_core.sprites import background, palettes, pixelart
    img = background.remove_background(Image.open("slime.png"))
    sprite = pixelart.pixelate(img, grid=32, palette=palettes.builtin_palette("pico-8"))

Nothing here touches the original file: :mod:`studio_core.sprites.pipeline` writes results
beside it. Everything blocks (CPU); GUI callers run it in a worker thread. Submodules are
imported on demand so that importing this package costs nothing.
"""

from __future__ import annotations
