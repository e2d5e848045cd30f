"""``--screenshot OUT.png``: the main window's picture plus a manifest of what is in it.

A picture alone proves little (an error box has colours too). Beside ``OUT.png`` go
``OUT.json`` (window title, tab names, where the landmark controls sit, in image pixels)
and ``OUT.<landmark>.png``, a grab of each landmark widget on its own, so a check can
confirm that the screenshot shows those very widgets at those places.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import QPoint
from PySide6.QtWidgets import QWidget


def _landmarks(window: Any) -> dict[str, QWidget]:
    out: dict[str, QWidget] = {"tab_bar": window.tabs.tabBar()}
    gen = getattr(window, "_generate_tab", None)  # only if built: a screenshot must not build it
    if gen is not None:
        out["generate_button"] = gen.generate_button
        prompt = getattr(getattr(gen, "prompt_panel", None), "prompt", None)
        if isinstance(prompt, QWidget):
            out["prompt"] = prompt
    return {k: w for k, w in out.items() if w.isVisible()}


async def save(window: Any, out: Path) -> None:
    """Grab on the GUI thread (widgets live there); encode and write on a worker."""
    out = Path(out)
    dpr = window.devicePixelRatioF()
    picture = window.grab().toImage()
    widgets = _landmarks(window)
    grabs = {name: w.grab().toImage() for name, w in widgets.items()}
    rects = {}
    for name, w in widgets.items():
        top_left = w.mapTo(window, QPoint(0, 0))
        rects[name] = [round(v * dpr) for v in (top_left.x(), top_left.y(), w.width(), w.height())]
    manifest = {
        "title": window.windowTitle(),
        "size": [picture.width(), picture.height()],
        "device_pixel_ratio": dpr,
        "tabs": [window.tabs.tabText(i).replace("&", "") for i in range(window.tabs.count())],
        "current_tab": window.tabs.tabText(window.tabs.currentIndex()).replace("&", ""),
        "landmarks": rects,
    }

    def write() -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        picture.save(str(out))
        for name, img in grabs.items():
            img.save(str(out.with_name(f"{out.stem}.{name}.png")))
        out.with_suffix(".json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")

    await asyncio.to_thread(write)
