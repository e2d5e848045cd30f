"""The Saved tab's offer of images that could not be saved (kept in the recovery folder).

A failed save writes the bytes to ``<data>/recovery`` at once (studio_core.recovery), so
they survive a crash or a quit. This banner lists them — this run's and earlier runs' —
and offers "Save them now" (through ``core.session.restore``, which writes each at most
once) or "Discard" (after asking: it is the one way these images can be lost).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QMessageBox, QWidget

from studio_core.errors import StudioError
from studio_core.plural import counted
from studio_gui.bridge import bridge_for
from studio_gui.offer_banner import OfferBanner
from studio_gui.tasks import TaskOwner


class RecoveryBanner(OfferBanner):
    def __init__(self, core: Any, *, tasks: TaskOwner, parent: QWidget | None = None):
        super().__init__("RecoveryBanner", "Images that could not be saved", tone="warning", parent=parent)
        self.core = core
        self.tasks = tasks
        self.recovered: list[Any] = []  # studio_core.recovery.RecoveredImage
        self.confirm: QMessageBox | None = None
        self.save_button = self.add_action("Save them now", "Write them into the images folder and the gallery",
                                           self._save_clicked)
        self.discard_button = self.add_action("Discard…", "Delete them from the recovery folder", self.ask_discard)
        bridge_for(core).unsaved_kept.connect(self._on_change)

    def _save_clicked(self) -> None:
        self.tasks.spawn(self.save_all(), name="restore unsaved")

    async def refresh(self) -> None:
        self.recovered = await self.core.session.recovered()
        self._show()

    def _show(self, problem: str = "") -> None:
        n = len(self.recovered)
        if not n:
            self.hide()
            return
        folder = self.core.recovery.folder
        text = (f"{counted(n, 'image')} could not be saved. {'It is' if n == 1 else 'They are'} kept in {folder}.")
        if problem:
            text += f" {problem}"
        self.title.setText(text)
        self.title.setToolTip("\n".join(f"{r.request.prompt[:60]}: {r.reason}" for r in self.recovered[:10]))
        self.show()

    def _on_change(self, ev: Any) -> None:
        self.tasks.spawn(self.refresh(), name="recovery list")

    async def save_all(self) -> None:
        self.save_button.setEnabled(False)
        problems: list[str] = []
        try:
            for item in list(self.recovered):
                try:
                    await self.core.session.restore(item.unsaved_id)
                except StudioError as exc:
                    problems.append(exc.user_message)
                except KeyError:
                    pass  # gone already (saved or discarded from elsewhere)
        finally:
            self.save_button.setEnabled(True)
        self.recovered = await self.core.session.recovered()
        self._show(f"Still not saved: {problems[0]}" if problems else "")

    def ask_discard(self) -> QMessageBox:
        n = len(self.recovered)
        box = QMessageBox(QMessageBox.Icon.Warning, "Discard images",
                          f"Delete {counted(n, 'image')} that could not be saved? This cannot be undone.",
                          QMessageBox.StandardButton.Cancel, self)
        discard = box.addButton("Discard", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.buttonClicked.connect(
            lambda b: self.tasks.spawn(self.discard_all(), name="discard unsaved") if b is discard else None)
        self.confirm = box
        box.open()
        return box

    async def discard_all(self) -> None:
        for item in list(self.recovered):
            await self.core.session.discard(item.unsaved_id)
        self.recovered = await self.core.session.recovered()
        self._show()
