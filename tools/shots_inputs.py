"""Screenshots of the image-input widgets: the mask painter with a painted mask (brush
cursor shown), the same after Invert, and the Frames panel's pose strip for each template.

    QT_QPA_PLATFORM=offscreen .venv/bin/python tools/shots_inputs.py [--out screenshots]
"""

from __future__ import annotations

import asyncio
import io
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))


async def shoot(out: Path) -> list[Path]:
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtGui import QImage, QMouseEvent
    from PySide6.QtWidgets import QApplication

    from shots_frames import figure
    from studio_gui.inputs.mask_painter import MaskPainter

    shots: list[Path] = []

    async def grab(name: str, widget) -> None:
        await asyncio.sleep(0.2)
        path = out / f"inputs-{name}.png"
        widget.grab().save(str(path))
        shots.append(path)

    knight = figure("a knight, walk cycle passing pose, right leg passing", 384).convert("RGB")
    img = QImage(knight.tobytes(), knight.width, knight.height, knight.width * 3, QImage.Format.Format_RGB888).copy()
    painter = MaskPainter()
    painter.resize(720, 600)
    painter.set_image(img)
    painter.show()
    await asyncio.sleep(0.1)
    c = painter.canvas
    painter.size.setValue(40)

    def mouse(kind, x, y):
        pos = c.to_widget(QPointF(x, y))
        buttons = Qt.MouseButton.NoButton if kind == QMouseEvent.Type.MouseButtonRelease else Qt.MouseButton.LeftButton
        QApplication.sendEvent(c, QMouseEvent(kind, pos, c.mapToGlobal(pos), Qt.MouseButton.LeftButton, buttons,
                                              Qt.KeyboardModifier.NoModifier))

    # paint over the head: "give him a helmet"
    for y in (100, 130, 160):
        mouse(QMouseEvent.Type.MouseButtonPress, 120, y)
        for x in range(120, 270, 10):
            mouse(QMouseEvent.Type.MouseMove, x, y)
        mouse(QMouseEvent.Type.MouseButtonRelease, 260, y)
    mouse(QMouseEvent.Type.MouseMove, 300, 300)  # the brush outline where the pointer rests
    await grab("1-mask-painted", painter)
    painter.eraser.click()
    await grab("2-eraser", painter)
    painter.canvas.invert()
    await grab("3-inverted", painter)
    painter.close()

    from studio_core.app_core import StudioCore
    from studio_core.paths import AppPaths
    from studio_gui.sprites.frames_panel import FramesPanel
    from studio_gui.tasks import TaskOwner

    core = await StudioCore.open(AppPaths.portable(Path(tempfile.mkdtemp(prefix="studio-shots-"))), use_keyring=False)
    tasks = TaskOwner()
    panel = FramesPanel(core, tasks=tasks)
    panel.setFixedWidth(560)
    panel.show()
    try:
        panel.set_expanded(True)
        panel.set_mode("animation")
        for template, directions in (("walk", 1), ("run", 8), ("attack", 4), ("jump", 8), ("idle", 8)):
            panel.template.setCurrentIndex(panel.template.findData(template))
            panel.directions.setCurrentIndex(panel.directions.findData(directions))
            async with asyncio.timeout(10):
                while panel.pose_strip.shown() is None or len(panel.pose_strip.shown().turns) != (directions if directions > 1 else 0) \
                        or panel.pose_strip._want != (template, directions, None):
                    await asyncio.sleep(0.02)
            panel.adjustSize()
            await grab(f"poses-{template}-{directions}", panel)
    finally:
        panel.close()
        await tasks.cancel_all()
        await core.aclose()
    shots += await shoot_tab(out, knight, grab)
    return shots


async def shoot_tab(out: Path, knight, grab) -> list[Path]:
    """The Generate tab's Image inputs: the role question, an init image with a painted mask,
    a reference and two LoRAs (one missing on the server), a cloud model that takes no image,
    and the Frames panel with a character and pose control."""
    from PIL import Image, ImageDraw

    from studio_core.app_core import StudioCore
    from studio_core.paths import AppPaths
    from studio_gui.generate.tab import GenerateTab
    from studio_gui.inputs.images import look
    from studio_gui.tasks import TaskOwner
    from tests.core.test_comfy_inputs_graphs import IPADAPTER_PACK, server

    root = Path(tempfile.mkdtemp(prefix="studio-shots-"))
    hero = root / "knight.png"
    knight.save(hero)
    core = await StudioCore.open(AppPaths.portable(root), use_keyring=False)
    core.settings.update(selected_service="comfyui", lora_notes={"pixel-art-xl.safetensors": {
        "triggers": "pixel art, 16-bit", "strength": 0.8}})
    tasks = TaskOwner()
    tab = GenerateTab(core, tasks=tasks)
    tab.resize(1180, 900)
    tab.show()
    try:
        await tab.started()
        hook = tab.image_inputs
        info = server("0.3.64", loras=("pixel-art-xl.safetensors", "chibi-style.safetensors"),
                      controlnets=("control_v11p_sd15_openpose.pth",), extra=IPADAPTER_PACK)
        hook.set_object_info(info)
        section = hook.section
        tab.prompt_panel.prompt.setPlainText("a knight in blue armour, game sprite")
        box = section.ask_role(await asyncio.to_thread(look, hero))
        await asyncio.sleep(0.3)
        await grab("4-role-question", box)
        box.reject()
        await section.add(hero, "init")
        mask = Image.new("L", knight.size, 0)
        ImageDraw.Draw(mask).ellipse((110, 70, 280, 190), fill=255)
        buf = io.BytesIO()
        mask.save(buf, "PNG")
        section.set_mask(section.store.add_mask(buf.getvalue(), size=knight.size).digest)
        await section.add(hero, "reference")
        picker = section.loras
        picker.add("pixel-art-xl.safetensors")
        hook.set_object_info(server("0.3.64", loras=("chibi-style.safetensors",),
                                    controlnets=("control_v11p_sd15_openpose.pth",), extra=IPADAPTER_PACK))
        tab._update_buttons()
        await asyncio.sleep(0.3)
        tab.column_scroll.ensureWidgetVisible(section)
        await grab("5-tab-inputs", tab)
        hook.set_object_info(info)
        tab._update_buttons()
        await asyncio.sleep(0.2)
        await grab("6-section", section)
        dlg = section.open_mask_painter()
        await dlg.loaded
        await grab("7-mask-dialog", dlg)
        dlg.reject()
        core.settings.update(selected_service="huggingface")
        tab._update_buttons()
        await asyncio.sleep(0.3)
        await grab("8-cloud-no-init", section)
        core.settings.update(selected_service="comfyui")
        section.clear()
        section.set_expanded(False)
        panel = tab.frames_panel
        panel.set_expanded(True)
        panel.set_mode("animation")
        panel.directions.setCurrentIndex(panel.directions.findData(8))
        await hook.send(hero, "reference")
        await asyncio.sleep(0.5)
        tab.column_scroll.ensureWidgetVisible(panel.pose_control)
        await grab("9-frames-character", panel)
    finally:
        tab.closing()
        await tasks.cancel_all()
        await core.aclose()
    return [out / f"inputs-{n}.png" for n in ("4-role-question", "5-tab-inputs", "6-section", "7-mask-dialog",
                                              "8-cloud-no-init", "9-frames-character")]


def main() -> int:
    from shots_common import run_shots

    return run_shots(shoot, __doc__)


if __name__ == "__main__":
    raise SystemExit(main())
