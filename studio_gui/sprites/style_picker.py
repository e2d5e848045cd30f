"""StylePicker: asset-type and art-style choices for the Generate tab.

    picker = StylePicker()
    tasks.spawn(picker.load())                       # reads resources/prompt_styles.json off the GUI thread
    picker.preset_changed.connect(on_preset)         # StylePreset
    request = picker.apply(request)                  # adds the words and suggested settings
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QWidget

from studio_core.models import GenerationRequest
from studio_core.sprites import styles
from studio_core.sprites.styles import StyleBook, StylePreset


class StylePicker(QWidget):
    preset_changed = Signal(object)  # StylePreset

    def __init__(self, book: StyleBook | None = None, *, user_file: Path | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self._book = StyleBook()
        self._user_file = user_file
        self.style_combo = QComboBox()
        self.style_combo.setAccessibleName("Art style")
        self.asset_combo = QComboBox()
        self.asset_combo.setAccessibleName("Asset type")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Style"))
        row.addWidget(self.style_combo)
        row.addWidget(QLabel("Asset"))
        row.addWidget(self.asset_combo)
        row.addStretch(1)
        self.style_combo.currentIndexChanged.connect(self._emit)
        self.asset_combo.currentIndexChanged.connect(self._emit)
        if book is not None:
            self.set_book(book)

    async def load(self) -> StyleBook:
        book = await asyncio.to_thread(styles.load_styles, user_file=self._user_file)
        self.set_book(book)
        return book

    def book(self) -> StyleBook:
        return self._book

    def set_book(self, book: StyleBook) -> None:
        current = self.preset()
        self._book = book
        for combo, entries in ((self.style_combo, book.styles), (self.asset_combo, book.asset_types)):
            combo.blockSignals(True)
            combo.clear()
            combo.addItem("None", "")
            for e in entries:
                combo.addItem(e.label, e.key)
                # The tooltip shows the exact words the preset adds: nothing hidden.
                combo.setItemData(combo.count() - 1, e.prompt or e.label, Qt.ItemDataRole.ToolTipRole)
            combo.blockSignals(False)
        self.set_preset(current)

    def preset(self) -> StylePreset:
        return StylePreset(asset_type=self.asset_combo.currentData() or "", style=self.style_combo.currentData() or "")

    def set_preset(self, preset: StylePreset) -> None:
        for combo, key in ((self.style_combo, preset.style), (self.asset_combo, preset.asset_type)):
            i = combo.findData(key)
            combo.setCurrentIndex(i if i >= 0 else 0)

    def apply(self, request: GenerationRequest, *, apply_settings: bool = True) -> GenerationRequest:
        return styles.apply_preset(request, self.preset(), self._book, apply_settings=apply_settings)

    def _emit(self, _=None) -> None:
        self.preset_changed.emit(self.preset())
