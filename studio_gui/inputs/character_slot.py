"""CharacterSlot: the one image an animation's frames are all drawn from.

Drop a sprite on it (a file or a tile from a grid), or send one from the gallery. The image
is checked and kept in the input store in a worker; the frames panel puts it on every
frame's request as a character reference (``GenerationOrder.character``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import shiboken6
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QDoubleSpinBox, QHBoxLayout, QLabel, QToolButton, QWidget

from studio_core.errors import StudioError
from studio_core.inputs import ReferenceImage
from studio_gui.inputs.images import dropped_files, look, thumbnail
from studio_gui.inputs.rows import remove_button, set_thumb, thumb_label
from studio_gui.tasks import TaskOwner

EMPTY = "No character: drop a sprite here (or use a gallery image's \u201cUse as reference\u201d) so every frame shows it."


class CharacterSlot(QWidget):
    changed = Signal()

    def __init__(self, core: Any, *, tasks: TaskOwner, parent: QWidget | None = None):
        super().__init__(parent)
        self.store = core.session.input_store
        self.tasks = tasks
        self.digest = ""
        self.setAcceptDrops(True)
        self.setAccessibleName("Animation character")
        self.thumb = thumb_label("Character image")
        self.thumb.setFixedSize(44, 44)
        self.thumb.setScaledContents(True)
        self.text = QLabel(EMPTY)
        self.text.setWordWrap(True)
        self.text.setAccessibleName("Character state")
        self.weight = QDoubleSpinBox()
        self.weight.setRange(0.0, 2.0)
        self.weight.setSingleStep(0.1)
        self.weight.setValue(1.0)
        self.weight.setAccessibleName("Character weight")
        self.weight.setToolTip("How strongly each frame keeps the character (1 = normal)")
        self.weight.valueChanged.connect(lambda _v: self.changed.emit())
        self.remove: QToolButton = remove_button("character")
        self.remove.clicked.connect(self.clear)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.thumb)
        lay.addWidget(self.text, 1)
        lay.addWidget(self.weight)
        lay.addWidget(self.remove)
        self._show()

    def _show(self) -> None:
        has = bool(self.digest)
        self.thumb.setVisible(has)
        self.weight.setVisible(has)
        self.remove.setVisible(has)
        if not has:
            self.text.setText(EMPTY)
            self.text.setStyleSheet("")

    def reference(self) -> ReferenceImage | None:
        return ReferenceImage(self.digest, self.weight.value(), "character") if self.digest else None

    def clear(self) -> None:
        self.digest = ""
        self._show()
        self.changed.emit()

    async def set_character(self, path: Path) -> bool:
        try:
            await asyncio.to_thread(look, path)  # a non-image gets the drop's own sentence
            stored = await asyncio.to_thread(self.store.add_image, path, what="character image")
            thumb = await asyncio.to_thread(thumbnail, stored.path)
        except StudioError as exc:
            if shiboken6.isValid(self):  # after the await the slot may be gone
                self.text.setText(exc.user_message)
                self.text.setStyleSheet("color: #c0392b;")
            return False
        if not shiboken6.isValid(self):  # after the await the slot may be gone
            return False
        self.digest = stored.digest
        set_thumb(self.thumb, thumb)
        self.text.setText(f"Every frame is drawn from {path.name}.")
        self.text.setStyleSheet("")
        self._show()
        self.changed.emit()
        return True

    # -- drops --------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if dropped_files(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        files = dropped_files(event.mimeData())
        if files:
            event.acceptProposedAction()
            self.tasks.spawn(self.set_character(files[0]), name="character image")


