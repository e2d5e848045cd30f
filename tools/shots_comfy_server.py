"""Screenshots of Settings → ComfyUI server: the address field with a passed and a failed
"Test connection" (against the loopback fake ComfyUI from the tests).

    .venv/bin/python tools/shots_comfy_server.py [--out screenshots]
"""

from __future__ import annotations

import asyncio
import socket
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


async def shoot(out: Path) -> list[Path]:
    from studio_core.app_core import StudioCore
    from studio_core.paths import AppPaths
    from studio_gui.settings_dialog import SettingsDialog
    from studio_gui.tasks import TaskOwner
    from tests.comfy_fake_server import FakeComfyServer

    home = Path(tempfile.mkdtemp(prefix="studio-shots-"))
    core = await StudioCore.open(AppPaths.portable(home), use_keyring=False)
    tasks = TaskOwner()
    shots: list[Path] = []
    try:
        async with FakeComfyServer() as fake:
            dlg = SettingsDialog(core, tasks=tasks, page="ComfyUI server")
            dlg.resize(720, 520)
            dlg.show()
            page = dlg.tabs.currentWidget()
            for url, name in ((fake.url, "comfy-server-test-passed.png"), (_closed_port(), "comfy-server-test-failed.png")):
                page.address.setText(url)
                page.address.editingFinished.emit()
                page.test_button.click()
                for _ in range(300):
                    await asyncio.sleep(0.02)
                    if page.test_button.isEnabled() and "Testing" not in page.test_result.text():
                        break
                await asyncio.sleep(0.1)
                shots.append(_save(dlg, out / name))
            page.address.setText("ftp://my-pc:8188")
            page.address.editingFinished.emit()
            await asyncio.sleep(0.1)
            shots.append(_save(dlg, out / "comfy-server-bad-address.png"))
            dlg.close()
    finally:
        await tasks.cancel_all()
        await core.aclose()
    return shots


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def _save(widget, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    widget.grab().save(str(path))
    return path


def main() -> int:
    from shots_common import run_shots

    return run_shots(shoot, __doc__)


if __name__ == "__main__":
    raise SystemExit(main())
