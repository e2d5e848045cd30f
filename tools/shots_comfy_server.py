"""Screenshots of Settings → ComfyUI server: the address field with a passed and a failed
"Test connection" (against the loopback fake ComfyUI from the tests).

    .venv/bin/python tools/shots_comfy_server.py [--out screenshots]
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from shots_common import closed_url, run_shots, save, shot_core, shot_tasks


async def shoot(out: Path) -> list[Path]:
    from studio_gui.settings_dialog import SettingsDialog
    from tests.comfy_fake_server import FakeComfyServer

    shots: list[Path] = []
    async with shot_core() as core, shot_tasks() as tasks:
        async with FakeComfyServer() as fake:
            dlg = SettingsDialog(core, tasks=tasks, page="ComfyUI server")
            dlg.resize(720, 520)
            dlg.show()
            page = dlg.tabs.currentWidget()
            for url, name in ((fake.url, "comfy-server-test-passed.png"), (closed_url(), "comfy-server-test-failed.png")):
                page.address.setText(url)
                page.address.editingFinished.emit()
                page.test_button.click()
                for _ in range(300):
                    await asyncio.sleep(0.02)
                    if page.test_button.isEnabled() and "Testing" not in page.test_result.text():
                        break
                await asyncio.sleep(0.1)
                shots.append(save(dlg, out / name))
            page.address.setText("ftp://my-pc:8188")
            page.address.editingFinished.emit()
            await asyncio.sleep(0.1)
            shots.append(save(dlg, out / "comfy-server-bad-address.png"))
            dlg.close()
    return shots


def main() -> int:
    return run_shots(shoot, __doc__)


if __name__ == "__main__":
    raise SystemExit(main())
