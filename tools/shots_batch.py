"""Screenshots of the Batch dialog: a list with a broken row before starting, and a run in
progress (a scripted stand-in provider makes the images, so nothing needs a GPU).

    .venv/bin/python tools/shots_batch.py [--out screenshots]
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from shots_common import run_shots, save, shot_core, shot_tasks


async def shoot(out: Path) -> list[Path]:
    from studio_core.batch import BatchManager
    from studio_core.models import GenerationRequest
    from studio_gui.batch.dialog import BatchDialog
    from tests.fakes import FakeProvider

    shots: list[Path] = []
    async with shot_core() as core, shot_tasks() as tasks:
        fake = FakeProvider(steps=4, delay=0.05)
        core.jobs.provider_for = lambda service: fake
        manager = BatchManager(core, window=2)
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
        shots.append(save(dlg, out / "batch-before-start.png"))
        run = await dlg.start()
        while len(run.done) < 6:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.05)
        shots.append(save(dlg, out / "batch-running.png"))
        run.pause()
        await run.wait()
        shots.append(save(dlg, out / "batch-paused.png"))
        run.cancel()
        sheet = await dlg.export_sheet(out / "batch-contact-sheet.png")
        if sheet is not None:
            shots.append(sheet)
        dlg.close()
    return shots


def main() -> int:
    return run_shots(shoot, __doc__)


if __name__ == "__main__":
    raise SystemExit(main())
