"""Start-up: the probe the start-up benchmark relies on, and what the first screen must not load.

The benchmark (benchmarks/bench_startup.py) times; this test only checks facts that do
not depend on the machine's speed: the window reports "usable" only once the real
Generate tab has painted, and by then none of the heavy libraries that only later
screens need (numpy, Pillow, httpx, keyring, the cloud SDKs) has been imported.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Each costs tens to hundreds of milliseconds to import; none is needed to show the window.
# keyring too: the keys are read on a worker after the first paint (its import competed
# with the window build for the interpreter even from a worker thread).
HEAVY = ("numpy", "PIL", "httpx", "httpcore", "websockets", "openai", "boto3", "google", "pynvml", "keyring")
# The ComfyUI settings panel and the Generate tab's secondary parts, built one per
# event-loop turn after the first paint; the session grid (the gallery's model, view and
# the index modules under them), the gallery index itself, the status bar's ComfyUI health
# button and the second-launch listener (QtNetwork), all built after the first paint.
LATER = ("studio_gui.batch.dialog", "studio_gui.inputs.attach", "studio_gui.sprites.style_picker",
         "studio_gui.generate.transparency", "studio_gui.sprites.frames_panel", "studio_gui.comfy_settings.panel",
         "studio_gui.gallery.session", "studio_gui.gallery.view", "studio_core.storage.index",
         "studio_gui.comfy_settings.health_panel", "studio_gui.single_instance", "PySide6.QtNetwork",
         # The close dialog (QMessageBox types) is imported on the first close; platformdirs
         # only without --data-dir/STUDIO_HOME (the test passes --data-dir).
         "studio_gui.close_dialog", "platformdirs")


def test_usable_window_is_reported_after_the_generate_tab_paints_and_without_heavy_imports(tmp_path):
    listing = tmp_path / "modules.txt"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "STUDIO_BENCH_STARTUP": "1", "BENCH_T0": "0",
           "STUDIO_BENCH_MODULES": str(listing)}
    out = subprocess.run([sys.executable, str(ROOT / "main.py"), "--data-dir", str(tmp_path / "data")],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    marks = {w: float(v) for w, _, v in (line.partition(" ") for line in out.stdout.splitlines())
             if w in ("SHOWN", "USABLE")}
    assert set(marks) == {"SHOWN", "USABLE"}, out.stdout
    assert marks["USABLE"] >= marks["SHOWN"]
    loaded = set(listing.read_text(encoding="utf-8").split())
    # The probe only fires once the real Generate tab exists (not its placeholder).
    assert "studio_gui.generate.tab" in loaded and "studio_gui.services.selector" in loaded
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY or m in HEAVY)
    assert not heavy, f"the first screen imported {heavy}"
    early = sorted(m for m in LATER if m in loaded)
    assert not early, f"built before the first paint: {early}"
