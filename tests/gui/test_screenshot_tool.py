"""The screenshot helper runs the real app (under Xvfb when available) and writes a PNG of
the main window: its title and tabs, with the Generate button and the prompt box where
the window has them."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from PIL import Image, ImageChops

ROOT = Path(__file__).resolve().parents[2]


def _share_equal(a: Image.Image, b: Image.Image) -> float:
    """Share of pixels that are identical in two same-size images."""
    diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB")).convert("L")
    hist = diff.histogram()
    return hist[0] / max(1, sum(hist))


def test_screenshot_of_main_window(tmp_path):
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import screenshot
    finally:
        sys.path.pop(0)
    out = screenshot.take(tmp_path / "main.png", data_dir=tmp_path / "home")
    manifest = json.loads(out.with_suffix(".json").read_text())
    assert manifest["title"] == "Cloud AI Art Studio"
    assert manifest["tabs"] == ["Generate", "Saved"] and manifest["current_tab"] == "Generate"
    assert set(manifest["landmarks"]) == {"tab_bar", "generate_button", "prompt"}

    with Image.open(out) as shot:
        shot = shot.convert("RGB")
    assert list(shot.size) == manifest["size"] and shot.width >= 800 and shot.height >= 500
    for name, (x, y, w, h) in manifest["landmarks"].items():
        assert 0 <= x and 0 <= y and x + w <= shot.width and y + h <= shot.height, name
        with Image.open(out.with_name(f"main.{name}.png")) as alone:
            alone = alone.convert("RGB")
        region = shot.crop((x, y, x + w, y + h))
        assert region.size == alone.size, name
        # The window's picture holds that very widget at that place (rounded corners and
        # edges may blend with what is behind it, and a caret may blink: not every pixel;
        # the same crop 30 px off scores about 0.9, a wrong place far less).
        assert _share_equal(region, alone) > 0.95, name
        # …and the widget is drawn, not an empty box: a label or text has ink in it.
        assert len(region.getcolors(maxcolors=100_000) or []) > 3, name
    # Landmarks where the layout puts them: tabs along the top, Generate below the prompt.
    tab_y = manifest["landmarks"]["tab_bar"][1]
    assert tab_y < shot.height // 8
    assert manifest["landmarks"]["prompt"][1] < manifest["landmarks"]["generate_button"][1]
