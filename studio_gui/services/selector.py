"""Service selector (the seed's CloudServiceSelector). Placeholder until the cloud issue lands."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget


class ServiceSelector(QWidget):
    def __init__(self, core, *, tasks, parent=None):
        super().__init__(parent)
        self.core = core
        lay = QVBoxLayout(self)
        title = QLabel("<b>SERVICES</b>")
        lay.addWidget(title)
        lay.addWidget(QLabel("ComfyUI (local)"))
        lay.addStretch(1)
