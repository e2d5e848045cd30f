"""SizePicker: eight presets for the model's family, or a custom size checked as it is typed."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QGridLayout, QHBoxLayout, QLabel, QLineEdit, QWidget

from studio_core.hardware.families import ModelFamily
from studio_core.hardware.presets import InvalidSize, parse_side, presets_for

CUSTOM = "Custom size…"
ERROR_STYLE = "color: #d0312d;"


def error_label() -> QLabel:
    lab = QLabel()
    lab.setWordWrap(True)
    lab.setStyleSheet(ERROR_STYLE)
    lab.hide()
    return lab


class SizePicker(QWidget):
    """``changed`` fires on every edit; ``chosen()`` is None while a side is invalid and
    ``error()`` then says why (also shown under the fields)."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        self.preset = QComboBox()
        self.preset.setAccessibleName("Size preset")
        self.preset.currentIndexChanged.connect(self._on_preset)
        self.width_edit = self._edit("Width")
        self.height_edit = self._edit("Height")
        row = QHBoxLayout()
        row.addWidget(self.preset, 1)
        row.addWidget(self.width_edit)
        row.addWidget(QLabel("×"))
        row.addWidget(self.height_edit)
        grid.addLayout(row, 0, 0)
        self.error_text = error_label()
        grid.addWidget(self.error_text, 1, 0)

    def _edit(self, name: str) -> QLineEdit:
        e = QLineEdit()
        e.setAccessibleName(name)
        e.setMaximumWidth(70)
        e.setToolTip(f"{name} in pixels, 64–4096; rounded to a multiple of 8")
        e.editingFinished.connect(self._on_edited)
        e.textEdited.connect(lambda _: self.on_typed())
        return e

    @staticmethod
    def side(edit: QLineEdit) -> int | None:
        try:
            return parse_side(edit.text())
        except InvalidSize:
            return None

    def chosen(self) -> tuple[int, int] | None:
        w, h = self.side(self.width_edit), self.side(self.height_edit)
        return (w, h) if w and h else None

    def set_family(self, family: ModelFamily) -> None:
        cur = self.chosen()
        self.preset.blockSignals(True)
        self.preset.clear()
        for p in presets_for(family):
            self.preset.addItem(p.label, f"{p.width}x{p.height}")
        self.preset.addItem(CUSTOM, None)
        self.preset.blockSignals(False)
        self._sync(cur)

    def set_size(self, w: int, h: int) -> None:
        self.width_edit.setText(str(w))
        self.height_edit.setText(str(h))
        self._sync((w, h))
        self.validate()

    def _sync(self, size: tuple[int, int] | None) -> None:
        i = self.preset.findData(f"{size[0]}x{size[1]}") if size else -1
        self.preset.blockSignals(True)
        self.preset.setCurrentIndex(i if i >= 0 else self.preset.count() - 1)
        self.preset.blockSignals(False)

    def _on_preset(self, _i: int) -> None:
        data = self.preset.currentData()
        if data:
            w, h = data.split("x")
            self.width_edit.setText(w)
            self.height_edit.setText(h)
        else:
            self.width_edit.setFocus()
        self.validate()
        self.changed.emit()

    def on_typed(self) -> None:
        self.validate()
        self._sync(self.chosen())
        self.changed.emit()

    def _on_edited(self) -> None:
        # Show the rounded value once the user leaves the field.
        for e in (self.width_edit, self.height_edit):
            v = self.side(e)
            if v is not None and e.text().strip() != str(v):
                e.setText(str(v))
        self.on_typed()

    def validate(self) -> str:
        errors = []
        for edit, what in ((self.width_edit, "Width"), (self.height_edit, "Height")):
            try:
                parse_side(edit.text(), what=what)
            except InvalidSize as exc:
                errors.append(exc.user_message)
        self.error_text.setText(" ".join(errors))
        self.error_text.setVisible(bool(errors))
        return self.error_text.text()

    def error(self) -> str:
        return self.validate()
