"""The main window at three screen sizes (1024×640, 1366×768, 1920×1080), Generate and
Saved tabs, for each of ComfyUI and a cloud service selected (issue 11, item 7).

    QT_QPA_PLATFORM=offscreen .venv/bin/python tools/shots_layout.py [--out screenshots]

Throw-away data folder, no keyring; ComfyUI is pointed at a closed loopback port, so its
card says "unreachable" as on a machine where ComfyUI is not running. Nothing leaves
the machine.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from shots_common import closed_url, run_shots, save, shot_core, shot_window

SIZES = ((1024, 640), (1366, 768), (1920, 1080))


async def shoot(out: Path) -> list[Path]:
    shots: list[Path] = []
    async with shot_core(first_run_done=True, comfy_url=closed_url()) as core, \
            shot_window(core, *SIZES[0]) as window:

        async def grab(name: str) -> None:
            await asyncio.sleep(0.4)
            shots.append(save(window, out / f"layout-{name}.png"))

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
    return shots


def main() -> int:
    return run_shots(shoot, __doc__)


if __name__ == "__main__":
    raise SystemExit(main())
