"""Saved tab (the seed's SavedImagesManager). Placeholder until the gallery issue lands."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget


class SavedTab(QWidget):
    def __init__(self, core, *, tasks, parent=None):
        super().__init__(parent)
        self.core = core
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("No saved images yet."))
