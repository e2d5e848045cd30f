"""Screenshots of the Generate tab: idle, mid-progress with a live preview, with results,
an over-long prompt, and an error.

    QT_QPA_PLATFORM=offscreen .venv/bin/python tools/shots_generate.py [--out screenshots]

Runs the real window and JobQueue against a scripted stand-in provider (no server, no
network), in a throw-away data folder. Under Xvfb drop QT_QPA_PLATFORM to get the
platform's fonts and style.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import AsyncIterator

from shots_common import run_shots, save, shot_core, shot_window, wait_until  # also puts the project on sys.path

from PIL import Image, ImageDraw, ImageFilter  # noqa: E402

from studio_core.errors import ProviderUnavailable  # noqa: E402
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


def sprite(kind: int, size: int = 512) -> Image.Image:
    """A plausible game-item picture drawn with Pillow (potion, gem, coin, slime)."""
    img = Image.new("RGB", (size, size), (236, 232, 222))
    d = ImageDraw.Draw(img)
    s = size / 512
    palette = [((200, 40, 50), (250, 120, 120)), ((40, 120, 210), (140, 200, 255)),
               ((220, 170, 30), (255, 230, 120)), ((60, 170, 80), (160, 230, 160))]
    dark, light = palette[kind % len(palette)]
    if kind % 4 == 0:  # potion
        d.rectangle([226 * s, 110 * s, 286 * s, 190 * s], fill=(150, 200, 210), outline=(40, 40, 40), width=int(6 * s))
        d.rectangle([218 * s, 90 * s, 294 * s, 120 * s], fill=(140, 90, 50), outline=(40, 40, 40), width=int(6 * s))
        d.ellipse([136 * s, 170 * s, 376 * s, 410 * s], fill=dark, outline=(40, 40, 40), width=int(8 * s))
        d.ellipse([180 * s, 210 * s, 240 * s, 270 * s], fill=light)
    elif kind % 4 == 1:  # gem
        pts = [(256, 90), (380, 200), (256, 420), (132, 200)]
        d.polygon([(x * s, y * s) for x, y in pts], fill=dark, outline=(30, 30, 60), width=int(8 * s))
        d.polygon([(x * s, y * s) for x, y in [(256, 90), (300, 200), (256, 420), (212, 200)]], fill=light)
    elif kind % 4 == 2:  # coin
        d.ellipse([126 * s, 126 * s, 386 * s, 386 * s], fill=dark, outline=(90, 60, 10), width=int(10 * s))
        d.ellipse([176 * s, 176 * s, 336 * s, 336 * s], outline=light, width=int(14 * s))
    else:  # slime
        d.chord([116 * s, 170 * s, 396 * s, 450 * s], 180, 360, fill=dark, outline=(20, 60, 20), width=int(8 * s))
        d.rectangle([116 * s, 308 * s, 396 * s, 380 * s], fill=dark)
        for cx in (210, 302):
            d.ellipse([(cx - 22) * s, 250 * s, (cx + 22) * s, 300 * s], fill=(255, 255, 255))
            d.ellipse([(cx - 9) * s, 268 * s, (cx + 9) * s, 290 * s], fill=(20, 20, 20))
    return img


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def preview_jpeg(img: Image.Image, amount: float) -> bytes:
    """A half-denoised look: blur plus noise, like a sampler's latent preview."""
    small = img.resize((256, 256)).filter(ImageFilter.GaussianBlur(18 * amount))
    noise = Image.effect_noise((256, 256), 90 * amount).convert("RGB")
    mixed = Image.blend(small, noise, 0.45 * amount)
    buf = io.BytesIO()
    mixed.save(buf, format="JPEG", quality=80)
    return buf.getvalue()


class ScriptedProvider:
    """Stands in for ComfyUI: steps with previews, then one image. ``hold`` pauses at a step."""

    id = "comfyui"
    display_name = "ComfyUI (scripted)"

    def __init__(self) -> None:
        self.hold_at: int | None = None
        self.held = asyncio.Event()
        self.release = asyncio.Event()
        self.fail_next: Exception | None = None
        self.count = 0

    async def check(self) -> ProviderStatus:
        return ProviderStatus(ServiceState.ready, "ready")

    async def list_models(self) -> tuple[ModelInfo, ...]:
        return (ModelInfo("sd_xl_base_1.0.safetensors", "SDXL Base 1.0", "sdxl"),)

    async def generate(self, request: GenerationRequest, *, job_id: str) -> AsyncIterator[JobEvent]:
        kind = self.count
        self.count += 1
        yield JobStarted(job_id, server_job_id=f"p-{kind}")
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc
        final = sprite(kind)
        total = request.steps
        for step in range(1, total + 1):
            await asyncio.sleep(0.08)
            preview = preview_jpeg(final, max(0.05, 1 - step / total)) if step % 2 == 0 else None
            yield JobProgress(job_id, step, total, preview=preview)
            if self.hold_at is not None and step == self.hold_at:
                self.held.set()
                await self.release.wait()
        for n in range(request.batch):
            yield JobImage(job_id, png(final), seed=(request.seed or 1000 + kind) + n, index=n,
                           info=(("provider", "comfyui"),))

    async def cancel(self, job_id: str) -> None:
        pass

    async def aclose(self) -> None:
        pass


async def shoot(out: Path) -> list[Path]:
    async with shot_core() as core:
        provider = ScriptedProvider()
        core.jobs.provider_for = lambda service: provider
        # The window checks the selected service before it lets Generate run: the scripted
        # stand-in answers those checks too, as a running ComfyUI would.
        real_provider = core.services.provider
        core.services.provider = lambda service: provider if service == "comfyui" else real_provider(service)
        async with shot_window(core, 1360, 860) as window:
            return await _shoot(core, window, provider, out)


async def _shoot(core, window, provider: ScriptedProvider, out: Path) -> list[Path]:
    tab = window.generate_tab
    shots: list[Path] = []

    async def grab(name: str) -> None:
        await asyncio.sleep(0.3)
        shots.append(save(window, out / f"generate-{name}.png"))

    await grab("1-idle")

    tab.prompt_panel.prompt.setPlainText("a red health potion in a round glass bottle with a cork, "
                                         "game item icon, centered, plain background")
    tab.basic_settings.steps_box.setValue(20)
    provider.hold_at = 14
    tab.generate()
    await asyncio.wait_for(provider.held.wait(), 10)
    tab.prompt_panel.prompt.setPlainText("a blue gem, game item icon")
    tab.generate()
    tab.prompt_panel.prompt.setPlainText("a gold coin, game pickup icon")
    tab.generate()
    await asyncio.sleep(1.2)  # let elapsed tick and the preview decode
    await grab("2-progress")

    provider.hold_at = None
    provider.release.set()
    await wait_until(lambda: not core.jobs.busy, timeout=20)
    tab.prompt_panel.prompt.setPlainText("a cute green slime monster with big eyes, game enemy sprite")
    tab.generate()
    await wait_until(lambda: not core.jobs.busy and tab.results_model.rowCount() == 4, timeout=20)
    await grab("3-results")

    tab.prompt_panel.prompt.setPlainText("a knight " * 230)
    await grab("4-too-long")

    tab.prompt_panel.prompt.setPlainText("a wooden treasure chest, game item icon")
    provider.fail_next = ProviderUnavailable(
        "ConnectError: [Errno 111] Connection refused (http://127.0.0.1:8188/prompt)",
        user_message="ComfyUI is not running at 127.0.0.1:8188. Start ComfyUI, or pick a cloud service.")
    tab.generate()
    await wait_until(lambda: tab.error_area.isVisible(), timeout=10)
    tab.error_area.details_button.setChecked(True)
    await grab("5-error")
    return shots


def main() -> int:
    return run_shots(shoot, __doc__)


if __name__ == "__main__":
    raise SystemExit(main())
