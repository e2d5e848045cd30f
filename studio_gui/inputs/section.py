"""ImageInputsSection: the Generate tab's "Image inputs" block.

Drop an image on the tab (a file, or a tile from either grid) and say what it is for: the
init image to edit (denoise, a painted mask) or a reference that keeps the character. LoRAs
(ComfyUI) are picked from the server's list. :meth:`inputs` is what the request carries.

Checking, decoding and storing run in workers; the input store keeps each image once by
content, and the request names it by digest. A file that is no image, or one the store
refuses, is told here in words and changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, Callable

import shiboken6
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from studio_core.errors import StudioError
from studio_core.inputs import ControlImage, ImageInputs, InitImage, Mask, ReferenceImage
from studio_gui.disclosure import Disclosure
from studio_gui.inputs.images import Looked, look, thumbnail
from studio_gui.inputs.lora_picker import LoraPicker
from studio_gui.inputs.rows import InitRow, ReferenceRow, set_thumb
from studio_gui.tasks import TaskOwner

log = logging.getLogger(__name__)

INIT, REFERENCE, CHARACTER = "init", "reference", "character"
ROLE_TEXT = {INIT: "Use as init image (edit it)", REFERENCE: "Use as reference (keep the character)",
             CHARACTER: "Character for the animation frames"}


class ImageInputsSection(QWidget):
    changed = Signal()

    def __init__(self, core: Any, *, tasks: TaskOwner, target_size: Callable[[], tuple[int, int]] = lambda: (1024, 1024),
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.core = core
        self.tasks = tasks
        self.target_size = target_size
        self.store = core.session.input_store
        self.references: list[ReferenceRow] = []
        self.controls: tuple[ControlImage, ...] = ()  # restored by Reuse settings (a frame's pose)
        self.role_box: QMessageBox | None = None
        self.mask_dialog: QWidget | None = None
        # Set by the frames panel's owner: where "Character for the animation frames" goes,
        # offered only while that panel makes an animation.
        self.character_target: Callable[[], Any] | None = None
        self.comfy = True
        self._build()

    # -- layout -----------------------------------------------------------------------
    def _build(self) -> None:
        self.disclosure = Disclosure(self, "Image inputs", self.set_expanded)
        self.toggle, self.body = self.disclosure.toggle, self.disclosure.body

        self.drop_hint = QLabel("Drop an image here or anywhere on this tab — a file, or a sprite from a grid — "
                                "to edit it or to keep its character.")
        self.drop_hint.setWordWrap(True)
        self.add_button = QPushButton("Add image…")
        self.add_button.setAccessibleName("Add image")
        self.add_button.setToolTip("Choose an image file to edit or to use as a reference")
        self.add_button.clicked.connect(self.choose_file)
        head = QHBoxLayout()
        head.addWidget(self.drop_hint, 1)
        head.addWidget(self.add_button, 0, Qt.AlignmentFlag.AlignTop)

        self.init_row = InitRow()
        self.init_row.hide()
        self.init_row.changed.connect(self._changed)
        self.init_row.removed.connect(self.remove_init)
        self.init_row.paint_mask.connect(self.open_mask_painter)
        self.refs_layout = QVBoxLayout()
        self.refs_layout.setContentsMargins(0, 0, 0, 0)
        self.controls_label = QLabel("")
        self.controls_label.hide()
        self.loras = LoraPicker(self.core)
        self.loras.changed.connect(self._changed)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setAccessibleName("Image inputs message")
        self.message.hide()

        bl = self.disclosure.layout
        bl.addLayout(head)
        bl.addWidget(self.message)
        bl.addWidget(self.init_row)
        bl.addLayout(self.refs_layout)
        bl.addWidget(self.controls_label)
        bl.addWidget(self.loras)
        self._update_title()

    def set_expanded(self, on: bool) -> None:
        self.disclosure.set_open(on)

    def set_comfy(self, comfy: bool) -> None:
        """LoRAs are ComfyUI's: the picker shows (and the request carries them) only there."""
        self.comfy = comfy
        self.loras.setVisible(comfy)
        self._changed()

    def _update_title(self) -> None:
        parts = []
        if self.init_row.digest:
            parts.append("init image" + (" + mask" if self.init_row.mask_digest else ""))
        if self.references:
            n = len(self.references)
            parts.append(f"{n} reference{'s' if n != 1 else ''}")
        if self.controls:
            parts.append(f"{len(self.controls)} control image{'s' if len(self.controls) != 1 else ''}")
        active = [s for s in self.loras.specs() if s.enabled] if self.comfy else []
        if active:
            parts.append(f"{len(active)} LoRA{'s' if len(active) != 1 else ''}")
        self.toggle.setText("Image inputs" + (f" — {', '.join(parts)}" if parts else ""))

    def _changed(self) -> None:
        self._update_title()
        self.changed.emit()

    def show_message(self, text: str, *, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setStyleSheet("color: #c0392b;" if error else "color: #b9770e;")
        self.message.setVisible(bool(text))
        if text:
            self.set_expanded(True)

    # -- what the request carries -------------------------------------------------------
    def inputs(self) -> ImageInputs:
        init = mask = None
        if self.init_row.digest:
            init = InitImage(self.init_row.digest, self.init_row.value())
            if self.init_row.mask_digest:
                mask = Mask(self.init_row.mask_digest)
        refs = tuple(ReferenceImage(r.digest, r.weight.value(), r.kind) for r in self.references)
        loras = self.loras.specs() if self.comfy else ()
        return ImageInputs(init=init, mask=mask, references=refs, controls=self.controls, loras=loras)

    def trigger_words(self) -> list[str]:
        return self.loras.trigger_words() if self.comfy else []

    # -- taking images in ---------------------------------------------------------------
    def choose_file(self) -> QFileDialog:
        dlg = QFileDialog(self, "Add an image", str(Path.home()), "Images (*.png *.jpg *.jpeg *.webp *.bmp)")
        dlg.setFileMode(QFileDialog.FileMode.ExistingFile)
        dlg.fileSelected.connect(lambda p: self.receive([Path(p)]))
        dlg.open()
        return dlg

    def receive(self, paths: list[Path]) -> asyncio.Task | None:
        """A drop: check the first image in a worker, then ask what it is for."""
        if not paths:
            return None
        return self.tasks.spawn(self._receive(paths[0], extra=len(paths) - 1), name="look at dropped image")

    async def _receive(self, path: Path, *, extra: int = 0) -> None:
        try:
            looked = await asyncio.to_thread(look, path)
        except StudioError as exc:
            if shiboken6.isValid(self):  # after the await the section may be gone
                self.show_message(exc.user_message, error=True)
            return
        if not shiboken6.isValid(self):  # after the await the section may be gone
            return
        self.show_message(f"Only the first of {extra + 1} dropped files is used; drop the others one by one."
                          if extra else "")
        self.ask_role(looked)

    def ask_role(self, looked: Looked) -> QMessageBox:
        box = QMessageBox(self.window())
        box.setWindowTitle("Use this image")
        box.setIconPixmap(_pixmap(looked))
        box.setText(f"How should {looked.path.name} ({looked.width}×{looked.height}) be used?")
        box.setInformativeText("An init image is redrawn (paint a mask to change only part of it). "
                               "A reference keeps its character or style in new pictures.")
        roles = [INIT, REFERENCE] + ([CHARACTER] if self.character_target and self.character_target() else [])
        buttons = {box.addButton(ROLE_TEXT[r], QMessageBox.ButtonRole.AcceptRole): r for r in roles}
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.buttonClicked.connect(lambda b: self._on_role(buttons.get(b), looked.path))
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.role_box = box
        box.open()
        return box

    def _on_role(self, role: str | None, path: Path) -> None:
        self.role_box = None
        if role is not None:
            self.tasks.spawn(self.add(path, role), name="store input image")

    async def add(self, path: Path, role: str) -> bool:
        """Store ``path`` as the init image, a reference or the animation's character (no
        question asked: the gallery's "Edit this…" and "Use as reference"). False when refused."""
        self.set_expanded(True)
        if role == CHARACTER:
            target = self.character_target() if self.character_target else None
            if target is None:
                role = REFERENCE
            else:
                return await target.set_character(path)
        try:
            if role == INIT:
                stored = await asyncio.to_thread(self.store.add_init, path, target=self.target_size())
            else:
                stored = await asyncio.to_thread(self.store.add_image, path, what="reference image")
            thumb = await asyncio.to_thread(thumbnail, stored.path)
        except StudioError as exc:
            if shiboken6.isValid(self):  # after the await the section may be gone
                self.show_message(exc.user_message, error=True)
            return False
        if not shiboken6.isValid(self):  # after the await the section may be gone
            return False
        if role == INIT:
            self.set_init(stored.digest, (stored.width, stored.height), thumb)
        else:
            self.add_reference(stored.digest, thumb=thumb, name=path.name)
        self.show_message(stored.notice)
        return True

    def set_init(self, digest: str, size: tuple[int, int], thumb=None, *, denoise: float | None = None,
                 mask: str = "") -> None:
        row = self.init_row
        row.digest, row.size = digest, size
        set_thumb(row.thumb, thumb)
        row.setToolTip(f"{size[0]}×{size[1]} pixels")
        if denoise is not None:
            row.set_value(denoise)
        row.set_mask(mask)  # a new picture never keeps another picture's mask
        row.show()
        self._changed()

    def remove_init(self) -> None:
        self.init_row.digest = ""
        self.init_row.set_mask("")
        self.init_row.hide()
        self._changed()

    def add_reference(self, digest: str, *, thumb=None, weight: float = 1.0, kind: str = "character",
                      name: str = "") -> ReferenceRow:
        for r in self.references:
            if r.digest == digest:
                return r
        row = ReferenceRow(digest, weight=weight, kind=kind, name=name)
        set_thumb(row.thumb, thumb)
        row.changed.connect(self._changed)
        row.removed.connect(self.remove_reference)
        self.references.append(row)
        self.refs_layout.addWidget(row)
        self._changed()
        return row

    def remove_reference(self, row: ReferenceRow) -> None:
        if row in self.references:
            self.references.remove(row)
            self.refs_layout.removeWidget(row)
            row.deleteLater()
            self._changed()

    def set_mask(self, digest: str) -> None:
        self.init_row.set_mask(digest)

    def open_mask_painter(self) -> QWidget | None:
        if not self.init_row.digest:
            return None
        from studio_gui.inputs.mask_dialog import MaskDialog

        row = self.init_row
        mask = self.store.path(row.mask_digest) if row.mask_digest else None
        self.mask_dialog = MaskDialog(store=self.store, tasks=self.tasks, image=self.store.path(row.digest),
                                      size=row.size, mask=mask, on_mask=self._on_mask, parent=self.window())
        self.mask_dialog.open()
        return self.mask_dialog

    def _on_mask(self, digest: str) -> None:
        if shiboken6.isValid(self):  # called by the mask dialog, the window's child, which can outlive this section
            self.set_mask(digest)

    # -- Reuse settings -----------------------------------------------------------------
    def clear(self) -> None:
        self.remove_init()
        for r in list(self.references):
            self.remove_reference(r)
        self.controls = ()
        self.controls_label.hide()
        self._changed()

    async def restore(self, inputs: ImageInputs, notice: str = "") -> None:
        """Show ``inputs`` (already checked against the store): thumbnails read in a worker."""
        digests = inputs.digests()
        thumbs = await asyncio.to_thread(lambda: {d: thumbnail(self.store.path(d)) for d in digests})
        sizes = {}
        if inputs.init is not None:
            sizes = await asyncio.to_thread(_image_size, self.store.path(inputs.init.image))
        if not shiboken6.isValid(self):  # after the await the section may be gone
            return
        self.clear()
        if inputs.init is not None:
            self.set_init(inputs.init.image, sizes or (0, 0), thumbs.get(inputs.init.image),
                          denoise=inputs.init.denoise, mask=inputs.mask.image if inputs.mask else "")
        for r in inputs.references:
            self.add_reference(r.image, thumb=thumbs.get(r.image), weight=r.weight, kind=r.kind)
        self.controls = inputs.controls
        if self.controls:
            kinds = ", ".join(dict.fromkeys(c.type for c in self.controls))
            self.controls_label.setText(f"Control images from the reused image: {kinds}")
        self.controls_label.setVisible(bool(self.controls))
        self.loras.set_loras(inputs.loras)
        if not inputs.empty or inputs.loras:
            self.set_expanded(True)
        self.show_message(notice)
        self._changed()


def _pixmap(looked: Looked):
    from PySide6.QtGui import QPixmap

    return QPixmap.fromImage(looked.thumb)


def _image_size(path: Path) -> tuple[int, int]:
    from PySide6.QtGui import QImageReader

    s = QImageReader(str(path)).size()
    return (s.width(), s.height()) if s.isValid() else (0, 0)
