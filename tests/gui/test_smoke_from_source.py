"""The bundle's smoke run, from the source tree: `main.py --smoke` starts offscreen,
generates once through a loopback Hugging Face-format service, saves, and exits 0 by
itself. The PyInstaller stage runs the same check on the bundle; this one runs in the
suite so a close path that waits for an answer (a dialog nobody can click) fails here
first, in seconds, instead of as a 300 s time-out at the end of CI."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _smoke_module():
    spec = importlib.util.spec_from_file_location("packaging_smoke", ROOT / "packaging" / "smoke.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_smoke_run_from_source_saves_one_image_and_exits_cleanly(tmp_path):
    smoke = _smoke_module()
    smoke.Handler.png = smoke.sprite_png()
    smoke.Handler.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), smoke.Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        home = tmp_path / "home dir ünï"
        (home / "config").mkdir(parents=True)
        url = f"http://127.0.0.1:{server.server_address[1]}"
        (home / "config" / "settings.json").write_text(json.dumps({
            "first_run_done": True, "selected_service": "huggingface",
            "providers": {"huggingface": {"endpoint": url}}}))
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HF_TOKEN": "hf_smoketesttoken123"}
        env.pop("STUDIO_HOME", None)
        out = subprocess.run([sys.executable, str(ROOT / "main.py"), "--data-dir", str(home), "--smoke"],
                             env=env, capture_output=True, text=True, timeout=120)
    finally:
        server.shutdown()
    log = (home / "logs" / "studio.log").read_text(errors="replace")
    assert out.returncode == 0, out.stderr[-2000:] + log[-2000:]
    assert len(list((home / "data" / "images").glob("*.png"))) == 1
    assert smoke.Handler.seen and smoke.Handler.seen[0]["auth"] == "Bearer hf_smoketesttoken123"
    assert "smoke:" in log and log.rstrip().endswith("clean exit")
    assert "hf_smoketesttoken123" not in log
