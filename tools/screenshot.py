"""Run the real app and save a screenshot of its main window.

Under Xvfb when there is no display (a real X server, real fonts and window system),
otherwise offscreen. Uses a throw-away data folder unless --data-dir is given.

    python tools/screenshot.py screenshots/main.png [--data-dir DIR] [--tab saved]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def take(out: Path, *, data_dir: Path | None = None, size: str = "1400x900", extra: list[str] | None = None) -> Path:
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    if data_dir is None:
        tmp = tempfile.mkdtemp(prefix="studio-shot-")
        data_dir = Path(tmp)
    cmd = [sys.executable, str(ROOT / "main.py"), "--data-dir", str(data_dir), "--screenshot", str(out),
           "--quit-after", "1.5", *(extra or [])]
    env = dict(os.environ)
    if not env.get("DISPLAY") and shutil.which("xvfb-run"):
        env.pop("QT_QPA_PLATFORM", None)
        cmd = ["xvfb-run", "-a", "-s", f"-screen 0 {size}x24", *cmd]
    else:
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
    try:
        subprocess.run(cmd, cwd=ROOT, env=env, check=True, timeout=120)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--data-dir", type=Path)
    a, rest = ap.parse_known_args()
    print(take(a.out, data_dir=a.data_dir, extra=rest))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
