"""Generate tab (the seed's SpriteGenerator). Placeholder until the ComfyUI issue lands."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QPlainTextEdit, QVBoxLayout, QWidget


class GenerateTab(QWidget):
    def __init__(self, core, *, tasks, parent=None):
        super().__init__(parent)
        self.core = core
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("Prompt"))
        self.prompt = QPlainTextEdit()
        lay.addWidget(self.prompt)
