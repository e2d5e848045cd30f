"""Start-up: process start to main window shown, app vs a bare Qt window, same run.

Both programs print the time from interpreter start (``time.perf_counter`` anchored on
the process's own start time) to the first shown-and-painted window, then exit. Runs
alternate so machine noise hits both alike. Goal: the app within 1.6x the bare floor.

    python benchmarks/bench_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BARE = r"""
import os, time
t0 = float(os.environ["BENCH_T0"])
from PySide6.QtWidgets import QApplication, QWidget
app = QApplication([])
w = QWidget(); w.resize(1280, 800); w.show()
app.processEvents()
print("SHOWN", time.time() - t0)
"""


def run_once(cmd: list[str], env: dict) -> tuple[float, float]:
    import time

    env = {**env, "BENCH_T0": repr(time.time())}
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    total = time.perf_counter() - t
    if out.returncode != 0:
        raise SystemExit(f"{cmd} failed: {out.stderr[-2000:]}")
    shown = next(float(line.split()[1]) for line in out.stdout.splitlines() if line.startswith("SHOWN"))
    return shown, total


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    a = ap.parse_args()
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "STUDIO_BENCH_STARTUP": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        app_cmd = [sys.executable, str(ROOT / "main.py"), "--data-dir", tmp, "--quit-after", "0"]
        bare_cmd = [sys.executable, "-c", BARE]
        run_once(app_cmd, env)  # first run creates the data folder; not counted
        res: dict[str, list[tuple[float, float]]] = {"bare": [], "app": []}
        for _ in range(a.runs):
            res["bare"].append(run_once(bare_cmd, env))
            res["app"].append(run_once(app_cmd, env))
    med = {k: (statistics.median(s for s, _ in v) * 1000, statistics.median(t for _, t in v) * 1000) for k, v in res.items()}
    print(f"{'program':10} {'to window shown (median ms)':>28} {'whole process (median ms)':>27}")
    for k, (shown, total) in med.items():
        print(f"{k:10} {shown:28.0f} {total:27.0f}")
    ratio = med["app"][0] / med["bare"][0]
    print(f"ratio app/bare to window shown: {ratio:.2f}x (goal <= 1.6x), runs={a.runs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
