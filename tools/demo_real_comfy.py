"""End to end through the real window and a real ComfyUI server, with screenshots.

Starts the CPU ComfyUI test server (tools/comfy_test_server.py), uploads a few Pillow-made
sprites to its input folder, points the studio at it with a model-free custom workflow
(LoadImage → ImageScale nearest → SaveImage), types a prompt into the real Generate tab,
presses Generate, and waits for the saved PNGs. Then it shows the Saved tab. Screenshots
of each step go to screenshots/demo_*.png (and docs/ with --docs).

    xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python tools/demo_real_comfy.py [--docs]
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

# Like the screenshot scripts: offscreen unless a display (or Xvfb) is there.
if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))
OUT = ROOT / "screenshots"


def workflow(image_name: str) -> str:
    return json.dumps({
        "1": {"class_type": "LoadImage", "inputs": {"image": image_name}},
        "2": {"class_type": "ImageScale", "inputs": {"image": ["1", 0], "upscale_method": "nearest-exact",
                                                      "width": 512, "height": 512, "crop": "disabled"}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "studio_demo"}},
    })


async def wait_until(cond, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise TimeoutError("demo step did not finish")
        await asyncio.sleep(0.05)


async def demo(app, home: Path, url: str, docs: bool) -> None:
    from studio_core.app_core import StudioCore
    from studio_core.changes import ImageSaved
    from studio_core.models import Workflow
    from studio_core.paths import AppPaths
    from studio_gui.main_window import MainWindow

    core = await StudioCore.open(AppPaths.portable(home))
    wf = home / "sprite_upscale_api.json"
    wf.write_text(workflow("demo_0.png"))
    core.settings.update(comfy_url=url, selected_service="comfyui", first_run_done=True, comfy_workflow_file=str(wf))
    core.settings.update_provider("comfyui", workflow_file=str(wf),
                                  workflow_map={"width": "2.width", "height": "2.height", "prompt": None,
                                                "negative": None, "seed": None, "steps": None})
    win = MainWindow(core)
    win.resize(1400, 900)
    win.show()
    await win.started()
    tab = win.generate_tab
    await asyncio.sleep(1.5)
    tab.prompt_panel.set_texts("tiny slime monster, pixel art, game sprite, transparent background")
    await asyncio.sleep(0.3)
    win.grab().save(str(OUT / "demo_1_ready.png"))
    saved: list = []
    # The change stream tells every file that reached the disk (ImageSaved), in order.
    core.changes.subscribe(lambda ev: saved.append(ev.saved), ImageSaved)
    tab.generate_button.click()  # the real button: request built from the real panels
    # Two more sprites queued behind it through the same queue (another input image each).
    for i in (1, 2):
        req = tab.build_request()
        req = dataclasses.replace(req, workflow=Workflow.of(workflow(f"demo_{i}.png"), req.workflow.mapping))
        core.jobs.submit(req)
    await asyncio.sleep(0.4)
    win.grab().save(str(OUT / "demo_2_queued.png"))
    await wait_until(lambda: len(saved) >= 3)
    await asyncio.sleep(1.0)
    win.grab().save(str(OUT / "demo_3_results.png"))
    if docs:
        win.grab().save(str(ROOT / "docs" / "screenshot-main.png"))
    for s in saved:
        print("saved:", s.path.name, s.width, "x", s.height)
    win.tabs.setCurrentIndex(1)
    await asyncio.sleep(1.5)
    win.grab().save(str(OUT / "demo_4_saved_tab.png"))
    win.close()
    await win.tasks.cancel_all()
    await core.aclose()


def main() -> int:
    import httpx
    import qasync
    from PySide6.QtWidgets import QApplication

    import comfy_test_server as cts
    from shots_gallery import sprite

    OUT.mkdir(exist_ok=True)
    docs = "--docs" in sys.argv
    proc, url = cts.start(log_path=Path(tempfile.gettempdir()) / "demo_comfy.log")
    try:
        rnd = random.Random(7)
        for i in range(3):
            r = httpx.post(url + "/upload/image", files={"image": (f"demo_{i}.png", sprite(rnd, 64), "image/png")},
                           data={"overwrite": "true"})
            r.raise_for_status()
        app = QApplication.instance() or QApplication(sys.argv)
        app.setStyle("Fusion")
        app.setQuitOnLastWindowClosed(False)
        with tempfile.TemporaryDirectory(prefix="studio-demo-") as tmp:
            asyncio.run(demo(app, Path(tmp), url, docs), loop_factory=qasync.QEventLoop)
    finally:
        cts.stop(proc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
