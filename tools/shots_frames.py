"""Screenshots of the Frames panel (single / variants / animation), a set in progress,
a finished set with one failed frame, and the Sheet tab it opens.

    QT_QPA_PLATFORM=offscreen .venv/bin/python tools/shots_frames.py [--out screenshots]

Runs the real JobQueue against a stand-in provider that draws a little walking figure
with Pillow (its pose and facing follow the prompt words), in a throw-away data folder.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import AsyncIterator

from shots_common import run_shots, shot_core, shot_tasks, wait_until  # also puts the project on sys.path

from PIL import Image, ImageDraw  # noqa: E402

from studio_core.errors import GenerationFailed  # noqa: E402
from studio_core.models import (  # noqa: E402
    GenerationRequest,
    JobEvent,
    JobImage,
    JobProgress,
    JobStarted,
    ModelInfo,
    ProviderStatus,
    ServiceState,
)
from studio_core.sprites import frames  # noqa: E402

WIDTH = 560  # about the Generate tab's left column


def figure(prompt: str, size: int = 256) -> Image.Image:
    """A small knight on a transparent background: legs follow the pose, the face the direction."""
    poses = frames.ANIMATIONS["walk"]
    step = next((i for i, p in enumerate(poses) if p in prompt), 0)
    facing = 0
    if "facing left" in prompt or "down-left" in prompt or "up-left" in prompt:
        facing = -1
    elif "facing right" in prompt or "down-right" in prompt or "up-right" in prompt:
        facing = 1
    back = "back view" in prompt
    img = Image.new("RGBA", (size, size))
    d = ImageDraw.Draw(img)
    s = size / 256
    cx = 128 * s + (step % 2) * 3 * s  # a little sway, which the sheet's alignment takes out
    swing = [-18, -8, 0, 8, 18, 8, 0, -8][step] * s
    d.rectangle((cx - 22 * s + swing, 180 * s, cx - 6 * s + swing, 236 * s), fill=(60, 50, 120))
    d.rectangle((cx + 6 * s - swing, 180 * s, cx + 22 * s - swing, 236 * s), fill=(60, 50, 120))
    d.rounded_rectangle((cx - 36 * s, 100 * s, cx + 36 * s, 190 * s), 14 * s, fill=(190, 60, 50),
                        outline=(30, 20, 20), width=max(1, int(4 * s)))
    d.ellipse((cx - 32 * s, 36 * s, cx + 32 * s, 104 * s), fill=(150, 150, 165) if back else (240, 200, 160),
              outline=(30, 20, 20), width=max(1, int(4 * s)))
    if not back:
        for ex in ((-12, 12) if facing == 0 else ((facing * 14,))):
            d.ellipse((cx + (ex - 5) * s, 64 * s, cx + (ex + 5) * s, 76 * s), fill=(20, 20, 30))
    return img


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


class FigureProvider:
    id = "comfyui"
    display_name = "ComfyUI (scripted)"

    def __init__(self) -> None:
        self.fail_on = ""
        self.delay = 0.01

    async def check(self) -> ProviderStatus:
        return ProviderStatus(ServiceState.ready, "ready")

    async def list_models(self) -> tuple[ModelInfo, ...]:
        return (ModelInfo("sd_xl_base_1.0.safetensors", "SDXL Base 1.0", "sdxl"),)

    async def generate(self, request: GenerationRequest, *, job_id: str) -> AsyncIterator[JobEvent]:
        yield JobStarted(job_id)
        for step in (1, 2):
            await asyncio.sleep(self.delay)
            yield JobProgress(job_id, step, 2)
        if self.fail_on and self.fail_on in request.prompt:
            raise GenerationFailed("CUDA out of memory", user_message="The GPU ran out of memory.")
        for n in range(request.batch):
            yield JobImage(job_id, png(figure(request.prompt)), seed=(request.seed or 0) + n, index=n)

    async def cancel(self, job_id: str) -> None:
        pass

    async def aclose(self) -> None:
        pass


async def shoot(out: Path) -> list[Path]:
    async with shot_core() as core, shot_tasks() as tasks:
        provider = FigureProvider()
        core.jobs.provider_for = lambda service: provider
        return await _shoot(core, tasks, provider, out)


async def _shoot(core, tasks, provider: FigureProvider, out: Path) -> list[Path]:
    from PySide6.QtWidgets import QVBoxLayout, QWidget

    from studio_gui.sprites.frames_panel import FrameSettings, FramesPanel

    host = QWidget()
    host.setFixedWidth(WIDTH)
    lay = QVBoxLayout(host)
    panel = FramesPanel(core, tasks=tasks)
    lay.addWidget(panel)
    lay.addStretch(1)
    host.show()
    await panel.load()
    seed = 1234
    request = GenerationRequest("a small knight with a red tunic, pixel art character sprite", service="comfyui",
                                seed=seed, width=512, height=512, steps=20, batch=2)
    panel.set_request_source(lambda: request)
    shots: list[Path] = []
    dialogs = []

    async def grab(name: str, widget=None) -> None:
        await asyncio.sleep(0.2)
        w = widget or host
        if w is host:
            host.adjustSize()
        path = out / f"frames-{name}.png"
        w.grab().save(str(path))
        shots.append(path)

    try:
        await grab("1-single-collapsed")
        panel.set_expanded(True)
        await grab("2-single")
        panel.set_settings(FrameSettings(mode="variants", count=8))
        await grab("3-variants")
        panel.set_settings(FrameSettings(mode="animation", animation="walk", directions=8))
        await grab("4-animation-8dir")
        panel.set_expanded(False)
        await grab("4b-animation-collapsed")
        panel.set_expanded(True)

        panel.set_settings(FrameSettings(mode="animation", animation="walk", directions=4))
        provider.delay = 0.15
        panel.submit(request)
        await wait_until(lambda: "10 of 32" in panel.ready_bar.text.text() or "11 of 32" in panel.ready_bar.text.text())
        await grab("5-running")
        provider.delay = 0.01
        await wait_until(lambda: panel.ready_bar.sheet_button.isVisible())

        provider.fail_on = frames.ANIMATIONS["walk"][5]
        done: list = []
        panel.tracker.set_finished.connect(lambda p, m: done.append((p, m)))
        panel.set_settings(FrameSettings(mode="animation", animation="walk", directions=1))
        panel.submit(request)
        await wait_until(lambda: done)
        await grab("6-ready-one-failed")

        provider.fail_on = ""
        done.clear()
        panel.set_settings(FrameSettings(mode="animation", animation="walk", directions=4))
        panel.submit(request)
        await wait_until(lambda: done)
        await grab("7-ready")
        dlg = panel.open_sheet(*done[0])
        dialogs.append(dlg)
        dlg.resize(1100, 720)
        await wait_until(lambda: dlg.sheet_tab.message.text().startswith("Ready to drag"))
        await grab("8-sheet", dlg)
    finally:
        for dlg in dialogs:
            dlg.close()
            await dlg.tasks.cancel_all()
        host.close()
    return shots


def main() -> int:
    return run_shots(shoot, __doc__)


if __name__ == "__main__":
    raise SystemExit(main())
