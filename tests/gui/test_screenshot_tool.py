"""The screenshot helper runs the real app (under Xvfb when available) and writes a PNG."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_screenshot_of_main_window(tmp_path):
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import screenshot
    finally:
        sys.path.pop(0)
    out = screenshot.take(tmp_path / "main.png", data_dir=tmp_path / "home")
    from PIL import Image

    with Image.open(out) as img:
        assert img.width >= 800 and img.height >= 500
        # A real window has more than one colour in it.
        assert len(img.convert("RGB").getcolors(maxcolors=1_000_000) or []) > 10
