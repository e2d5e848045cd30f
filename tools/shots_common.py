"""What every screenshot script shares: parse --out, start Qt offscreen on a qasync loop, run.

    def main() -> int:
        return run_shots(shoot, __doc__)          # shoot(out) -> list[Path]
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import os
import sys
from pathlib import Path
from typing import Awaitable, Callable

ROOT = Path(__file__).resolve().parents[1]


def run_shots(shoot: Callable[..., Awaitable[list[Path]]], doc: str | None = None) -> int:
    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("--out", type=Path, default=ROOT / "screenshots")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import qasync
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv)
    app.setStyle("Fusion")
    app.setQuitOnLastWindowClosed(False)
    wants_app = "app" in inspect.signature(shoot).parameters
    coro = shoot(app, args.out) if wants_app else shoot(args.out)
    for p in asyncio.run(coro, loop_factory=qasync.QEventLoop):
        print(p)
    return 0
