"""BasicSettings: size, steps and seed, for services without a panel of their own.

Same API as the ComfyUI settings panel: ``request_fields()`` returns the request fields it
controls, ``apply_request()`` fills them back, ``changed`` fires on every edit.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QFormLayout, QHBoxLayout, QLabel, QSpinBox, QWidget

from studio_core.models import GenerationRequest

SIZE_MIN, SIZE_MAX = 64, 2048
SEED_MAX = 2**31 - 1


class BasicSettings(QWidget):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None, *, width: int = 1024, height: int = 1024,
                 steps: int = 20, seed: int = -1):
        super().__init__(parent)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)

        self.width_box = self._spin(SIZE_MIN, SIZE_MAX, width, step=64, suffix=" px", name="Width")
        self.height_box = self._spin(SIZE_MIN, SIZE_MAX, height, step=64, suffix=" px", name="Height")
        size = QHBoxLayout()
        size.addWidget(self.width_box)
        size.addWidget(QLabel("×"))
        size.addWidget(self.height_box)
        size.addStretch(1)
        form.addRow("Size", size)

        self.steps_box = self._spin(1, 150, steps, name="Steps")
        self.steps_box.setMaximumWidth(90)
        self.steps_box.setToolTip("More steps: more detail, slower. Some cloud services ignore this.")
        form.addRow("Steps", self.steps_box)

        self.random_seed = QCheckBox("Random")
        self.random_seed.setToolTip("A new seed each time; untick to repeat a result exactly")
        self.seed_box = self._spin(0, SEED_MAX, max(seed, 0), name="Seed")
        self.random_seed.toggled.connect(lambda on: self.seed_box.setEnabled(not on))
        self.random_seed.toggled.connect(lambda _: self.changed.emit())
        self.random_seed.setChecked(seed < 0)
        self.seed_box.setEnabled(seed >= 0)
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed_box)
        seed_row.addWidget(self.random_seed)
        seed_row.addStretch(1)
        form.addRow("Seed", seed_row)

    def _spin(self, lo: int, hi: int, value: int, *, step: int = 1, suffix: str = "", name: str) -> QSpinBox:
        box = QSpinBox()
        box.setRange(lo, hi)
        box.setSingleStep(step)
        box.setValue(value)
        box.setSuffix(suffix)
        box.setAccessibleName(name)
        box.valueChanged.connect(lambda _: self.changed.emit())
        return box

    def request_fields(self) -> dict[str, Any]:
        return {
            "width": self.width_box.value() // 8 * 8,
            "height": self.height_box.value() // 8 * 8,
            "steps": self.steps_box.value(),
            "seed": None if self.random_seed.isChecked() else self.seed_box.value(),
        }

    def apply_request(self, request: GenerationRequest) -> None:
        self.width_box.setValue(request.width)
        self.height_box.setValue(request.height)
        self.steps_box.setValue(request.steps)
        if request.seed is None:
            self.random_seed.setChecked(True)
        else:
            self.random_seed.setChecked(False)
            self.seed_box.setValue(min(max(request.seed, 0), SEED_MAX))
