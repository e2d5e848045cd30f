"""PoseStrip: the pose template of an animation as a row of small skeleton pictures.

The first row plays the cycle of the set's first direction; with 4 or 8 directions a
second row shows the first pose turned to each direction. The pictures are the very
images a pose ControlNet gets (:mod:`studio_core.sprites.poses`), drawn smaller.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget

from studio_core.sprites import frames
from studio_gui.tasks import TaskOwner

THUMB = 52
GAP = 4
RENDER = 96  # drawn larger and shrunk smoothly: 1-px sticks at thumbnail size are hard to read

StripKey = tuple[str, int, int | None]


@dataclass(frozen=True)
class StripImages:
    cycle: tuple[QImage, ...]
    turns: tuple[QImage, ...]  # first pose per direction; empty for one direction
    cycle_direction: str
    turn_names: tuple[str, ...]


def render_strip(animation: str, directions: int, per_direction: int | None) -> StripImages:
    """Worker thread: Pillow draws, QImage wraps (QImage, unlike QPixmap, is thread-safe)."""
    from studio_core.sprites import poses  # numpy and Pillow: not on the first screen's path

    def q(img) -> QImage:
        rgb = img.convert("RGB")
        return QImage(rgb.tobytes(), rgb.width, rgb.height, rgb.width * 3, QImage.Format.Format_RGB888).copy()

    keys = [k for k, _ in frames.DIRECTIONS[directions]]
    t = poses.load_templates()
    cycle = poses.render_animation(animation, keys[0], (RENDER, RENDER), frames=per_direction, templates=t)
    turns = [poses.render_pose(animation, k, 0, (RENDER, RENDER), templates=t) for k in keys] if len(keys) > 1 else []
    return StripImages(tuple(q(i) for i in cycle), tuple(q(i) for i in turns), keys[0], tuple(keys) if turns else ())


class PoseStrip(QWidget):
    """Shows :func:`render_strip`'s images; renders each choice once, off the GUI thread."""

    def __init__(self, *, tasks: TaskOwner, parent: QWidget | None = None):
        super().__init__(parent)
        self._tasks = tasks
        self._cache: dict[StripKey, StripImages] = {}
        self._want: StripKey | None = None
        self._shown: StripImages | None = None
        self._task: asyncio.Task | None = None
        self.setAccessibleName("Pose template preview")
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)

    def show_poses(self, animation: str, directions: int, per_direction: int | None) -> None:
        key: StripKey = (animation, directions, per_direction)
        if key == self._want:
            return
        self._want = key
        if key in self._cache:
            self._set(self._cache[key])
            return
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = self._tasks.spawn(self._render(key), name="pose strip")

    async def _render(self, key: StripKey) -> None:
        images = await asyncio.to_thread(render_strip, *key)
        self._cache[key] = images
        if key == self._want:
            self._set(images)

    def _set(self, images: StripImages) -> None:
        self._shown = images
        cyc = f"{len(images.cycle)} poses, facing {images.cycle_direction.replace('_', '-')}"
        tip = f"Pose template: {cyc}"
        if images.turns:
            tip += f"\nSecond row: the first pose in each direction ({', '.join(images.turn_names)})"
        self.setToolTip(tip + "\nA server with a pose ControlNet draws each frame in its pose.")
        self.updateGeometry()
        self.update()

    def shown(self) -> StripImages | None:
        return self._shown

    def sizeHint(self) -> QSize:
        rows = 0 if self._shown is None else 1 + bool(self._shown.turns)
        cols = 0 if self._shown is None else max(len(self._shown.cycle), len(self._shown.turns))
        return QSize(cols * (THUMB + GAP), rows * (THUMB + GAP))

    def minimumSizeHint(self) -> QSize:
        return QSize(0, self.sizeHint().height())

    def paintEvent(self, event) -> None:
        if self._shown is None:
            return
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        for row, images in enumerate((self._shown.cycle, self._shown.turns)):
            for col, img in enumerate(images):
                p.drawImage(QRect(col * (THUMB + GAP), row * (THUMB + GAP), THUMB, THUMB), img)
        p.setPen(self.palette().mid().color())
        p.drawRect(QRect(0, 0, len(self._shown.cycle) * (THUMB + GAP) - GAP, THUMB).adjusted(0, 0, -1, -1))
        p.end()
