"""Screenshots of the custom-workflow picker and its input-mapping dialog (issue 3 item 4).

    QT_QPA_PLATFORM=offscreen .venv/bin/python tools/shots_workflow.py [--out screenshots]

Uses the workflow files in tests/data, copied into a throw-away data folder; no server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT / "tests" / "data"


async def shoot(out: Path) -> list[Path]:
    from PySide6.QtWidgets import QGroupBox, QVBoxLayout

    from studio_core.app_core import StudioCore
    from studio_core.paths import AppPaths
    from studio_gui.comfy_workflow import WorkflowPicker
    from studio_gui.tasks import TaskOwner

    home = Path(tempfile.mkdtemp(prefix="studio-shots-"))
    core = await StudioCore.open(AppPaths.portable(home), use_keyring=False)
    api = Path(shutil.copy(DATA / "comfy_workflow_api_sdxl.json", home / "item_icon_sdxl.json"))
    ui = Path(shutil.copy(DATA / "comfy_workflow_ui.json", home / "item_icon_ui.json"))
    tasks = TaskOwner()
    # Framed the way it sits on the ComfyUI settings, at that panel's width.
    host = QGroupBox("Workflow")
    QVBoxLayout(host).addWidget(picker := WorkflowPicker(core, tasks=tasks))
    host.resize(560, 10)
    host.show()
    shots: list[Path] = []

    async def grab(name: str, widget=None) -> None:
        widget = widget or host
        await asyncio.sleep(0.2)
        widget.adjustSize()
        if widget is host:
            host.resize(560, host.sizeHint().height())
        await asyncio.sleep(0.1)
        path = out / f"workflow-{name}.png"
        widget.grab().save(str(path))
        shots.append(path)

    try:
        await grab("1-built-in")
        await picker.load(str(api))
        await grab("2-custom")
        await picker.load(str(ui))
        await grab("3-ui-format")
        dialog = picker.open_mapping_dialog()
        dialog.select("negative", None)
        await grab("4-mapping-dialog", dialog)
        dialog.reject()
        # A new start after the file went away.
        api.unlink()
        host2 = QGroupBox("Workflow")
        QVBoxLayout(host2).addWidget(again := WorkflowPicker(core, tasks=tasks))
        host2.resize(560, 10)
        host2.show()
        await again.started()
        await asyncio.sleep(0.2)
        host2.resize(560, host2.sizeHint().height())
        await asyncio.sleep(0.1)
        path = out / "workflow-5-vanished.png"
        host2.grab().save(str(path))
        shots.append(path)
        host2.close()
    finally:
        host.close()
        await tasks.cancel_all()
        await core.aclose()
        shutil.rmtree(home, ignore_errors=True)
    return shots


def main() -> int:
    from shots_common import run_shots

    return run_shots(shoot, __doc__)


if __name__ == "__main__":
    raise SystemExit(main())
