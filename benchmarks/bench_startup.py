"""Start-up: process start to a *usable* main window, app vs a bare Qt window, same run.

What is timed, from the moment the benchmark starts the process (wall clock, handed to
the child in ``BENCH_T0``, so interpreter start and every import count):

* bare:   ``QApplication`` + an empty 1280×800 ``QWidget`` shown, until its first paint
          event (an event filter on the widget; the floor any Qt app pays).
* app:    ``main.py`` until the window is usable: the first service card has painted
          *and* the real Generate tab's Generate button has painted (prompt, settings
          toggle and Generate; the ComfyUI settings panel and the tab's secondary parts
          are built one per event-loop turn right after, so they do not count). The probe
          is ``studio_gui/startup_probe.py``, installed only when ``STUDIO_BENCH_STARTUP``
          is set; it also reports the window's first paint ("shown") for comparison.

Runs alternate bare/app so machine noise hits both alike; medians are reported. Goal:
app usable ≤ 1.6× bare first paint. ``--baseline DIR`` adds a third program, ``main.py``
of another checkout (e.g. ``git archive HEAD~1 | tar -x -C DIR``), in the same rotation:
a before/after in one run, since on a shared machine two separate runs differ by more
than most changes.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_startup.py [--runs 11] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BARE = r"""
import os, time
t0 = float(os.environ["BENCH_T0"])
from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QApplication, QWidget
app = QApplication([])

class FirstPaint(QObject):
    def eventFilter(self, obj, ev):
        if ev.type() == QEvent.Type.Paint:
            print("USABLE", time.time() - t0, flush=True)
            obj.removeEventFilter(self)
            app.quit()
        return False

w = QWidget(); w.resize(1280, 800)
probe = FirstPaint(); w.installEventFilter(probe)
w.show()
app.exec()
"""


def run_once(cmd: list[str], env: dict) -> dict[str, float]:
    env = {**env, "BENCH_T0": repr(time.time())}
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    marks = {"process": time.perf_counter() - t}
    if out.returncode != 0:
        raise SystemExit(f"{cmd} failed (rc {out.returncode}): {out.stderr[-2000:]}")
    for line in out.stdout.splitlines():
        word, _, value = line.partition(" ")
        if word in ("SHOWN", "USABLE"):
            marks[word.lower()] = float(value)
    if "usable" not in marks:
        raise SystemExit(f"{cmd} never reported a usable window:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return marks


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--baseline", type=Path, default=None,
                    help="another checkout whose main.py runs in the same rotation (before/after)")
    a = ap.parse_args()
    if a.baseline is not None and not (a.baseline / "main.py").is_file():
        raise SystemExit(f"--baseline {a.baseline}: no main.py there")
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen"),
           "STUDIO_BENCH_STARTUP": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        # Both programs start as on a user's machine after the first start: with compiled
        # bytecode. Without this, PYTHONDONTWRITEBYTECODE (set in some shells and CI) makes
        # every run recompile the app's ~200 modules, a cost no user pays twice. The
        # bytecode goes to a private folder, so the source tree stays clean.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = os.path.join(tmp, "pycache")
        data = os.path.join(tmp, "data")
        cmds = {"bare": [sys.executable, "-c", BARE],
                "app": [sys.executable, str(ROOT / "main.py"), "--data-dir", data]}
        if a.baseline is not None:
            # Its own data folder: an older checkout may not read what a newer one wrote.
            cmds["baseline"] = [sys.executable, str(a.baseline.resolve() / "main.py"),
                                "--data-dir", os.path.join(tmp, "baseline-data")]
        for cmd in cmds.values():  # the first run creates the data folder and index; not counted
            run_once(cmd, env)
        res: dict[str, list[dict[str, float]]] = {who: [] for who in cmds}
        names = list(cmds)
        for i in range(a.runs):
            # Each program goes first, second, … in turn, so drifting load hits all alike.
            order = names[i % len(names):] + names[:i % len(names)]
            for who in order:
                res[who].append(run_once(cmds[who], env))

    def med(who: str, key: str) -> float:
        vals = [r[key] for r in res[who] if key in r]
        return statistics.median(vals) * 1000 if vals else float("nan")

    def spread(who: str, key: str) -> str:
        vals = sorted(r[key] * 1000 for r in res[who])
        return f"{vals[0]:.0f}–{vals[-1]:.0f}"

    print(f"start-up, {a.runs} alternating runs each, Qt platform {env['QT_QPA_PLATFORM']}, bytecode cached")
    print(f"{'program':8} {'first paint':>12} {'usable (median)':>16} {'usable min–max':>15} {'whole process':>14}")
    for who in res:
        shown = med(who, "usable") if who == "bare" else med(who, "shown")
        print(f"{who:8} {shown:10.0f}ms {med(who, 'usable'):14.0f}ms {spread(who, 'usable'):>15} "
              f"{med(who, 'process'):12.0f}ms")
    ratio = med("app", "usable") / med("bare", "usable")
    ratios = sorted(app["usable"] / bare["usable"] for app, bare in zip(res["app"], res["bare"]))
    print(f"app usable / bare first paint: {ratio:.2f}× of medians (pairwise {ratios[0]:.2f}–{ratios[-1]:.2f}×);"
          f" goal ≤ 1.60× — {'met' if ratio <= 1.6 else 'MISSED'}")
    if "baseline" in res:
        before = med("baseline", "usable")
        print(f"baseline ({a.baseline}) usable / bare: {before / med('bare', 'usable'):.2f}×; "
              f"this tree is usable {before - med('app', 'usable'):.0f} ms earlier "
              f"({med('app', 'usable') / before:.2f}× the baseline's time)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
