"""SpriteToolsDialog: the Sprite and Sheet tabs over a set of images, non-modal."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

from PySide6.QtWidgets import QDialog, QTabWidget, QVBoxLayout, QWidget

from studio_core.app_core import StudioCore
from studio_core.models import GenerationRequest, SavedImage
from studio_core.sprites.palettes import Palette
from studio_gui.errors import present_error
from studio_gui.sprites.rendered import clear_drag_folders
from studio_gui.sprites.sheet_tab import SheetTab
from studio_gui.sprites.sprite_tab import SpriteTab
from studio_gui.tasks import TaskOwner

log = logging.getLogger(__name__)


def _saved_record(path: Path) -> SavedImage:
    """Worker thread: describe a processed sprite like a generation, so the gallery lists it."""
    from PIL import Image

    from studio_core.storage.images import read_metadata

    meta = read_metadata(path)
    with Image.open(path) as img:
        size = img.size
    request = meta.request or GenerationRequest(prompt=path.stem)
    return SavedImage(path=path, request=request, created=datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                      seed=meta.seed, file_size=path.stat().st_size, width=size[0], height=size[1],
                      info=(("sprite_of", path.name),))


class SpriteToolsDialog(QDialog):
    def __init__(self, core: StudioCore, paths: Sequence[Path], parent: QWidget | None = None):
        super().__init__(parent)
        self.core = core
        self.setWindowTitle("Sprite Tools")
        self.setObjectName("SpriteToolsDialog")
        self.resize(1100, 720)
        self.tasks = TaskOwner(on_error=lambda exc: present_error(self, exc))
        self.drag_base = core.paths.cache / "sprite-drag"
        self.sprite_tab = SpriteTab(drag_base=self.drag_base, tasks=self.tasks, on_saved=self._announce, parent=self)
        self.sheet_tab = SheetTab(drag_base=self.drag_base, tasks=self.tasks, recipe=self.sprite_tab.recipe,
                                  palette=self._chosen_palette, parent=self)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.sprite_tab, "&Sprite")
        self.tabs.addTab(self.sheet_tab, "Sh&eet")
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        self.set_paths(list(paths))
        # Drag copies from an earlier session are no longer needed by any drop target.
        self.tasks.spawn(asyncio.to_thread(clear_drag_folders, self.drag_base))

    def set_paths(self, paths: list[Path]) -> None:
        self.paths = list(paths)
        self.sprite_tab.set_paths(self.paths)
        self.sheet_tab.set_paths(self.paths)
        self.tabs.setCurrentWidget(self.sheet_tab if len(self.paths) > 1 else self.sprite_tab)

    def _chosen_palette(self) -> Palette | None:
        pal = self.sprite_tab.selected_palette()
        return pal if isinstance(pal, Palette) else None

    async def _announce(self, path: Path) -> None:
        record = await asyncio.to_thread(_saved_record, path)
        await self.core.announce_saved(record, origin="tool")

    def closeEvent(self, event) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass  # no loop running (a test tearing down): its tasks end with the loop
        else:
            asyncio.ensure_future(self.tasks.cancel_all())
        super().closeEvent(event)


def open_sprite_tools(parent: QWidget | None, core: StudioCore, paths: list[Path]) -> SpriteToolsDialog:
    """Open the Sprite Tools on ``paths`` (one image: Sprite tab; several: Sheet tab).
    Non-modal; returns the dialog."""
    dlg = SpriteToolsDialog(core, paths, parent)
    dlg.show()
    return dlg
