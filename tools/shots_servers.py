"""Screenshots of Settings → ComfyUI servers: a pool of "my PC" (a loopback fake ComfyUI,
running), a laptop that may be switched off (idle), a LAN server behind a token that is down
(offline) and a RunPod endpoint; then the entry form with a refused address.

    .venv/bin/python tools/shots_servers.py [--out screenshots]
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from shots_common import closed_url, run_shots, save, shot_core, shot_tasks


async def shoot(out: Path) -> list[Path]:
    from studio_core.pool.server_list import entries_to_settings
    from studio_core.pool.servers import ServerSpec, runpod_endpoint
    from studio_gui.settings_dialog import SettingsDialog
    from tests.comfy_fake_server import FakeComfyServer

    shots: list[Path] = []
    async with shot_core() as core, shot_tasks() as tasks:
        async with FakeComfyServer() as fake:
            specs = [ServerSpec(id="my-pc", name="my PC", url=fake.url),
                     ServerSpec(id="laptop", name="the laptop", url=closed_url(), may_be_off=True),
                     ServerSpec(id="lan", name="GPU box (LAN)", url=closed_url("https"),
                                uses_auth=True, trusted_cert_sha256="ab" * 32, running_slots=2),
                     runpod_endpoint("runpod", "RunPod A40", "abc123xyz", workers=3,
                                     models=("flux1-dev-fp8.safetensors",), price_per_s=0.00044)]
            core.secrets.set("pool-server:lan:auth", "Bearer shot-token")
            core.secrets.set("pool-server:runpod:auth", "rp-key")
            core.settings.update(**entries_to_settings(specs, my_pc_url=fake.url))
            dlg = SettingsDialog(core, tasks=tasks, page="ComfyUI servers")
            dlg.resize(760, 560)
            dlg.show()
            page = dlg.tabs.currentWidget()
            page.refresh_button.click()
            for _ in range(400):
                await asyncio.sleep(0.02)
                if page.refresh_button.isEnabled() and "running" in page.list.item(0).text():
                    break
            await asyncio.sleep(0.2)
            shots.append(save(dlg, out / "servers-list.png"))
            page.list.setCurrentRow(2)
            editor = page.open_editor(page._selected())
            editor.resize(640, 620)
            await asyncio.sleep(0.1)
            shots.append(save(editor, out / "servers-edit.png"))
            editor.url.setText("ftp://nas:8188")
            editor._on_save()
            await asyncio.sleep(0.1)
            shots.append(save(editor, out / "servers-edit-bad-address.png"))
            editor.reject()
            dlg.close()
    return shots


def main() -> int:
    return run_shots(shoot, __doc__)


if __name__ == "__main__":
    raise SystemExit(main())
