"""The usage example in studio_core.sprites' package docstring is real code (issue 11, item 18)."""

from __future__ import annotations

import re


def test_sprites_package_docstring_example_runs(tmp_path):
    """The usage example in studio_core.sprites' docstring is real code: run it as written."""
    from PIL import Image

    import studio_core.sprites as sprites

    block = re.search(r"::\n\n((?:    .*\n)+)", sprites.__doc__).group(1)
    code = "\n".join(line[4:] for line in block.splitlines())
    img = Image.new("RGB", (64, 64), (255, 255, 255))
    img.paste((200, 30, 30), (16, 16, 48, 48))
    img.save(tmp_path / "slime.png")
    namespace: dict = {}
    import os

    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(code, "studio_core.sprites docstring", "exec"), namespace)
    finally:
        os.chdir(cwd)
    assert namespace["sprite"].size == (32, 32)
