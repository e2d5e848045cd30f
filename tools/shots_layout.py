"""The main window at three screen sizes (1024×640, 1366×768, 1920×1080), Generate and
Saved tabs, for each of ComfyUI and a cloud service selected (issue 11, item 7).

    QT_QPA_PLATFORM=offscreen .venv/bin/python tools/shots_layout.py [--out screenshots]

Throw-away data folder, no keyring; ComfyUI is pointed at a closed loopback port, so its
card says "unreachable" as on a machine where ComfyUI is not running. Nothing leaves
the machine.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZES = ((1024, 640), (1366, 768), (1920, 1080))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def shoot(out: Path) -> list[Path]:
    from studio_core.app_core import StudioCore
    from studio_core.paths import AppPaths
    from studio_gui.main_window import MainWindow

    home = Path(tempfile.mkdtemp(prefix="studio-shots-"))
    core = await StudioCore.open(AppPaths.portable(home), use_keyring=False)
    core.settings.update(first_run_done=True, comfy_url=f"http://127.0.0.1:{closed_port()}")
    window = MainWindow(core)
    window.resize(*SIZES[0])
    window.show()
    await window.started()
    shots: list[Path] = []

    async def grab(name: str) -> None:
        await asyncio.sleep(0.4)
        path = out / f"layout-{name}.png"
        window.grab().save(str(path))
        shots.append(path)

    try:
        await asyncio.sleep(1.5)  # let the service checks finish
        for service in ("comfyui", "openai"):
            core.settings.update(selected_service=service)
            for w, h in SIZES:
                window.resize(w, h)
                window.tabs.setCurrentIndex(0)
                await grab(f"{w}x{h}-generate-{service}")
        for w, h in SIZES:
            window.resize(w, h)
            window.tabs.setCurrentIndex(1)
            await grab(f"{w}x{h}-saved")
    finally:
        window.close()
        await window.tasks.cancel_all()
        await core.aclose()
    return shots


def main() -> int:
    from shots_common import run_shots

    return run_shots(shoot, __doc__)


if __name__ == "__main__":
    raise SystemExit(main())
