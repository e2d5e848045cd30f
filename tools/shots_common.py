"""What every screenshot script shares: parse --out, start Qt offscreen on a qasync loop, run;
a throw-away core, its task owner and main window, each closed after; save a grab.

    async def shoot(out: Path) -> list[Path]:
        async with shot_core() as core, shot_tasks() as tasks:
            ...
            return [save(widget, out / "area-1-state.png")]

    def main() -> int:
        return run_shots(shoot, __doc__)          # shoot(out) -> list[Path]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import os
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the scripts run as tools/shots_X.py, so the project is not on the path


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


def save(widget: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    widget.grab().save(str(path))
    return path


def closed_url(scheme: str = "http") -> str:
    """A loopback address nothing listens on: a server that is down, without the network."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"{scheme}://127.0.0.1:{s.getsockname()[1]}"


async def wait_until(cond: Callable[[], Any], timeout: float = 20.0, settle: float = 0.0) -> None:
    """Until ``cond()`` holds, then ``settle`` seconds more for the screen to repaint."""
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.02)
    if settle:
        await asyncio.sleep(settle)


@contextlib.asynccontextmanager
async def shot_core(**settings: Any) -> AsyncIterator[Any]:
    """A StudioCore on a throw-away data folder, without the system keyring (no real keys
    in a picture), with ``settings`` applied; closed after."""
    from studio_core.app_core import StudioCore
    from studio_core.paths import AppPaths

    home = Path(tempfile.mkdtemp(prefix="studio-shots-"))
    core = await StudioCore.open(AppPaths.portable(home), use_keyring=False)
    if settings:
        core.settings.update(**settings)
    try:
        yield core
    finally:
        await core.aclose()


@contextlib.asynccontextmanager
async def shot_tasks() -> AsyncIterator[Any]:
    """A TaskOwner for widgets shown without the main window; its tasks are cancelled after."""
    from studio_gui.tasks import TaskOwner

    tasks = TaskOwner()
    try:
        yield tasks
    finally:
        await tasks.cancel_all()


@contextlib.asynccontextmanager
async def shot_window(core: Any, width: int, height: int) -> AsyncIterator[Any]:
    """The main window at ``width`` × ``height``, started; closed (and its tasks cancelled) after."""
    from studio_gui.main_window import MainWindow

    window = MainWindow(core)
    try:
        window.resize(width, height)
        window.show()
        await window.started()
        yield window
    finally:
        window.close()
        await window.tasks.cancel_all()
