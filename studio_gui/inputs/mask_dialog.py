"""MaskDialog: the mask painter over the init image, in its own window.

The image (and a mask painted before) are decoded in a worker; "Use mask" hands the mask
to the input store in a worker too (PNG encode, checks, hash, atomic write), and the
section gets only its digest. Closing without "Use mask" keeps the mask there was.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Callable

import shiboken6
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QDialog, QLabel, QVBoxLayout, QWidget

from studio_core.errors import StudioError
from studio_gui.inputs.images import full_image, png_bytes
from studio_gui.inputs.mask_painter import MaskPainter
from studio_gui.tasks import TaskOwner


class MaskDialog(QDialog):
    def __init__(self, *, store: Any, tasks: TaskOwner, image: Path, size: tuple[int, int], mask: Path | None,
                 on_mask: Callable[[str], None], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Paint the mask")
        self.store = store
        self.tasks = tasks
        self.size_ = size
        self.on_mask = on_mask
        self.painter = MaskPainter(self)
        self.painter.setEnabled(False)
        self.message = QLabel("Loading the image…")
        self.message.setWordWrap(True)
        self.message.setAccessibleName("Mask message")
        lay = QVBoxLayout(self)
        lay.addWidget(self.painter, 1)
        lay.addWidget(self.message)
        self.resize(760, 680)
        self.painter.mask_saved.connect(self._on_mask_saved)
        self.loaded = tasks.spawn(self._load(image, mask), name="mask image")

    async def _load(self, image: Path, mask: Path | None) -> None:
        img = await asyncio.to_thread(full_image, image)
        old = await asyncio.to_thread(full_image, mask) if mask is not None else QImage()
        if not shiboken6.isValid(self):  # after the await the dialog may be gone
            return
        if img.isNull():
            self.message.setText("The init image can no longer be read. Add it again.")
            return
        self.painter.set_image(img)
        if not old.isNull():
            self.painter.canvas.set_mask(old.convertToFormat(QImage.Format.Format_Grayscale8))
        self.painter.setEnabled(True)
        self.message.setText("Paint over what should change, then press Use mask.")

    def _on_mask_saved(self, mask: QImage) -> None:
        self.painter.setEnabled(False)
        self.message.setText("Keeping the mask…")
        self.saving = self.tasks.spawn(self._keep(mask), name="keep mask")

    async def _keep(self, mask: QImage) -> None:
        def store() -> str:
            return self.store.add_mask(png_bytes(mask), size=self.size_).digest

        try:
            digest = await asyncio.to_thread(store)
        except StudioError as exc:
            if shiboken6.isValid(self):  # after the await the dialog may be gone
                self.painter.setEnabled(True)
                self.message.setText(exc.user_message)
            return
        if not shiboken6.isValid(self):  # after the await the dialog may be gone
            return
        self.on_mask(digest)
        self.accept()
