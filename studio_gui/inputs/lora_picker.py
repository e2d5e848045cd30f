"""LoraPicker: LoRAs from the ComfyUI server's list, each with its strengths, trigger words
and an on/off switch.

The list is LoraLoader's ``lora_name`` choices in the server's object_info (loaded by the
caller, off the GUI thread). Trigger words and the strength a LoRA starts at are kept per
file name in settings (``lora_notes``), so a pixel-art LoRA brings its words every time.
A LoRA the chosen server does not have is marked and named by :meth:`problem`.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio_core.inputs import LoraSpec

DEFAULT_STRENGTH = 1.0


def split_words(text: str) -> list[str]:
    return [w.strip() for w in text.split(",") if w.strip()]


def with_trigger_words(prompt: str, words: list[str]) -> str:
    """``prompt`` with each word not already in it added at the end (a reused prompt has them)."""
    low = prompt.lower()
    missing = [w for w in dict.fromkeys(words) if w.lower() not in low]
    return ", ".join(p for p in [prompt.strip().rstrip(","), *missing] if p)


class LoraRow:
    """The widgets of one chosen LoRA in the picker's grid."""

    def __init__(self, picker: LoraPicker, spec: LoraSpec, triggers: str):
        self.name = spec.name
        self.enabled = QCheckBox(spec.name)
        self.enabled.setChecked(spec.enabled)
        self.enabled.setAccessibleName(f"Use LoRA {spec.name}")
        self.enabled.setToolTip("Untick to leave this LoRA out without losing its settings")
        self.model = self._spin(spec.strength_model, f"{spec.name} model strength",
                                "How strongly the LoRA changes the picture (1 = as trained)")
        self.clip = self._spin(spec.strength_clip, f"{spec.name} text strength",
                               "How strongly the LoRA changes how the prompt is read")
        self.triggers = QLineEdit(triggers)
        self.triggers.setPlaceholderText("trigger words, comma-separated")
        self.triggers.setAccessibleName(f"{spec.name} trigger words")
        self.triggers.setToolTip("Added to the prompt while this LoRA is on; kept for this LoRA")
        self.remove = QToolButton()
        self.remove.setText("✕")
        self.remove.setAccessibleName(f"Remove LoRA {spec.name}")
        self.remove.setToolTip("Remove this LoRA")
        self.missing = QLabel("")
        self.missing.setStyleSheet("color: #c0392b;")
        self.missing.setWordWrap(True)
        self.enabled.toggled.connect(lambda _on: picker.changed.emit())
        self.model.valueChanged.connect(lambda _v: picker._remember(self))
        self.triggers.editingFinished.connect(lambda: picker._remember(self))
        self.triggers.textChanged.connect(lambda _t: picker.changed.emit())
        self.remove.clicked.connect(lambda: picker.remove(self.name))

    @staticmethod
    def _spin(value: float, name: str, tip: str) -> QDoubleSpinBox:
        s = QDoubleSpinBox()
        s.setRange(-2.0, 2.0)
        s.setSingleStep(0.05)
        s.setDecimals(2)
        s.setValue(value)
        s.setAccessibleName(name)
        s.setToolTip(tip)
        return s

    def spec(self) -> LoraSpec:
        return LoraSpec(self.name, self.model.value(), self.clip.value(), self.enabled.isChecked())

    def widgets(self) -> tuple[QWidget, ...]:
        return (self.enabled, self.model, self.clip, self.triggers, self.remove, self.missing)


class LoraPicker(QWidget):
    changed = Signal()

    def __init__(self, core: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.core = core
        self.available: tuple[str, ...] | None = None  # None: the server's list is not known (yet)
        self.rows: list[LoraRow] = []

        self.choice = QComboBox()
        self.choice.setAccessibleName("LoRA to add")
        self.choice.setMinimumContentsLength(18)
        self.choice.setToolTip("LoRA files on the ComfyUI server (ComfyUI/models/loras)")
        self.add_button = QPushButton("Add LoRA")
        self.add_button.setAccessibleName("Add LoRA")
        self.add_button.clicked.connect(lambda: self.add(self.choice.currentText()))
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self.note.setAccessibleName("LoRA list state")
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(QLabel("LoRA"))
        top.addWidget(self.choice, 1)
        top.addWidget(self.add_button)
        self.grid = QGridLayout()
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.header = [QLabel("<small>on / file</small>"), QLabel("<small>model</small>"),
                       QLabel("<small>text</small>"), QLabel("<small>trigger words</small>")]
        for i, h in enumerate(self.header):
            self.grid.addWidget(h, 0, i)
            h.hide()
        root = QVBoxLayout(self)
        root.setContentsMargins(0, 0, 0, 0)
        root.addLayout(top)
        root.addWidget(self.note)
        root.addLayout(self.grid)
        self.set_available(None)

    # -- the server's list --------------------------------------------------------------
    def set_available(self, names: tuple[str, ...] | None, *, why: str = "") -> None:
        self.available = tuple(names) if names is not None else None
        self.choice.clear()
        for n in names or ():
            self.choice.addItem(n)
        has = bool(names)
        self.choice.setEnabled(has)
        self.add_button.setEnabled(has)
        if names is None:
            self.note.setText(why or "The LoRA list appears once the ComfyUI server answers.")
        elif not names:
            self.note.setText("This server has no LoRAs. Put .safetensors LoRA files in ComfyUI/models/loras "
                              "and restart ComfyUI.")
        self.note.setVisible(not has)
        self._mark_missing()

    def missing(self) -> list[str]:
        if self.available is None:
            return []
        return [r.name for r in self.rows if r.enabled.isChecked() and r.name not in self.available]

    def problem(self) -> str:
        gone = self.missing()
        if not gone:
            return ""
        names = ", ".join(gone)
        one = len(gone) == 1
        return (f"The LoRA{'' if one else 's'} {names} {'is' if one else 'are'} not on the chosen ComfyUI server. "
                "Add the file to ComfyUI/models/loras, or untick or remove it.")

    def _mark_missing(self) -> None:
        gone = set(self.missing())
        for r in self.rows:
            r.missing.setText("not on this server" if r.name in gone else "")
            r.missing.setVisible(r.name in gone)

    # -- chosen LoRAs -------------------------------------------------------------------
    def _notes(self) -> dict[str, dict[str, Any]]:
        return dict(self.core.settings.current.lora_notes)

    def add(self, name: str, spec: LoraSpec | None = None) -> LoraRow | None:
        if not name or any(r.name == name for r in self.rows):
            return None
        note = self._notes().get(name, {})
        if spec is None:
            strength = note.get("strength", DEFAULT_STRENGTH)
            strength = float(strength) if isinstance(strength, (int, float)) and -2 <= strength <= 2 else DEFAULT_STRENGTH
            spec = LoraSpec(name, strength, strength)
        triggers = note.get("triggers", "")
        row = LoraRow(self, spec, triggers if isinstance(triggers, str) else "")
        self.rows.append(row)
        n = len(self.rows)
        for col, w in enumerate(row.widgets()[:5]):
            self.grid.addWidget(w, n * 2 - 1, col)
        self.grid.addWidget(row.missing, n * 2, 0, 1, 5)
        for h in self.header:
            h.show()
        self._mark_missing()
        self.changed.emit()
        return row

    def remove(self, name: str) -> None:
        row = next((r for r in self.rows if r.name == name), None)
        if row is None:
            return
        self.rows.remove(row)
        for w in row.widgets():
            self.grid.removeWidget(w)
            w.deleteLater()
        for h in self.header:
            h.setVisible(bool(self.rows))
        self.changed.emit()

    def row(self, name: str) -> LoraRow | None:
        return next((r for r in self.rows if r.name == name), None)

    def set_loras(self, specs: tuple[LoraSpec, ...]) -> None:
        for r in list(self.rows):
            self.remove(r.name)
        for s in specs:
            self.add(s.name, s)

    def specs(self) -> tuple[LoraSpec, ...]:
        return tuple(r.spec() for r in self.rows)

    def trigger_words(self) -> list[str]:
        return [w for r in self.rows if r.enabled.isChecked() for w in split_words(r.triggers.text())]

    def _remember(self, row: LoraRow) -> None:
        """Keep the row's trigger words and model strength as this LoRA's own (settings)."""
        notes = self._notes()
        entry = {"triggers": row.triggers.text().strip(), "strength": round(row.model.value(), 2)}
        if notes.get(row.name) != entry:
            notes[row.name] = entry
            self.core.settings.update(lora_notes=notes)
        self.changed.emit()
