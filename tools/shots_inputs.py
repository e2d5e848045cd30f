"""Screenshots of the image-input widgets: the mask painter with a painted mask (brush
cursor shown), the same after Invert, and the Frames panel's pose strip for each template.

    QT_QPA_PLATFORM=offscreen .venv/bin/python tools/shots_inputs.py [--out screenshots]
"""

from __future__ import annotations

import asyncio
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
    return shots


def main() -> int:
    from shots_common import run_shots

    return run_shots(shoot, __doc__)


if __name__ == "__main__":
    raise SystemExit(main())
