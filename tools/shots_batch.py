"""Screenshots of the Batch dialog: a list with a broken row before starting, and a run in
progress (a scripted stand-in provider makes the images, so nothing needs a GPU).

    .venv/bin/python tools/shots_batch.py [--out screenshots]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


async def shoot(out: Path) -> list[Path]:
    from studio_core.app_core import StudioCore
    from studio_core.batch import BatchManager
    from studio_core.models import GenerationRequest
    from studio_core.paths import AppPaths
    from studio_gui.batch.dialog import BatchDialog
    from studio_gui.tasks import TaskOwner
    from tests.fakes import FakeProvider

    home = Path(tempfile.mkdtemp(prefix="studio-shots-"))
    core = await StudioCore.open(AppPaths.portable(home), use_keyring=False)
    fake = FakeProvider(steps=4, delay=0.05)
    core.jobs.provider_for = lambda service: fake
    tasks = TaskOwner()
    shots: list[Path] = []
    manager = BatchManager(core, window=2)
    try:
        dlg = BatchDialog(core, manager, tasks=tasks,
                          template_source=lambda: GenerationRequest("", service="comfyui", width=512, height=512))
        dlg.resize(640, 620)
        dlg.show()
        dlg.name.setText("potions")
        dlg.set_list("prompt,negative,seed,width,height,count\n"
                     "a {red|blue|green} health potion,blurry,,,,2\n"
                     "a wooden chest,,seven,,,1\n"
                     "a slime,,,512,768,3\n", csv_mode=True, source="potions.csv")
        dlg.seeds.setValue(2)
        await dlg.refresh_preview()
        await asyncio.sleep(0.1)
        shots.append(_save(dlg, out / "batch-before-start.png"))
        run = await dlg.start()
        while len(run.done) < 6:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.05)
        shots.append(_save(dlg, out / "batch-running.png"))
        run.pause()
        await run.wait()
        shots.append(_save(dlg, out / "batch-paused.png"))
        run.cancel()
        sheet = await dlg.export_sheet(out / "batch-contact-sheet.png")
        if sheet is not None:
            shots.append(sheet)
        dlg.close()
    finally:
        await tasks.cancel_all()
        await core.aclose()
    return shots


def _save(widget, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    widget.grab().save(str(path))
    return path


def main() -> int:
    from shots_common import run_shots

    return run_shots(shoot, __doc__)


if __name__ == "__main__":
    raise SystemExit(main())
