"""WorkflowMappingDialog: which input of a custom workflow takes each request field.

Non-modal: the caller uses ``open()`` and listens to ``mapping_chosen`` (no nested loop).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QPushButton, QVBoxLayout,
                               QWidget)

from studio_core.providers.comfy.custom_workflow import FIELDS, Slot, WorkflowMap
from studio_gui.comfy_workflow.loaded import ROLE_KINDS, ROLE_LABELS, LoadedWorkflow

NOT_USED = "(not used)"
SlotRole = Qt.ItemDataRole.UserRole
_SEP = "\x1f"  # item data is a string: Qt turns Python tuples into lists, and node ids may hold ":" or "."


def _key(slot: Slot | None) -> str:
    return f"{slot[0]}{_SEP}{slot[1]}" if slot else ""


def _preview(value: object) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= 28 else text[:27] + "…"


class WorkflowMappingDialog(QDialog):
    """``mapping_chosen(WorkflowMap)`` fires when the user presses OK."""

    mapping_chosen = Signal(object)

    def __init__(self, workflow: LoadedWorkflow, *, current: WorkflowMap, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(f"Map inputs — {workflow.name}")
        self._wf = workflow
        self.combos: dict[str, QComboBox] = {}
        lay = QVBoxLayout(self)
        intro = QLabel("Choose the node input that receives each value from the Generate tab. "
                       "The automatic guess is marked; “(not used)” leaves the workflow's own value.")
        intro.setWordWrap(True)
        lay.addWidget(intro)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for name in FIELDS:
            combo = self._make_combo(name)
            self.combos[name] = combo
            form.addRow(ROLE_LABELS[name], combo)
        lay.addLayout(form)
        self.set_mapping(current)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.reset_button = QPushButton("Use automatic guess")
        self.reset_button.setToolTip("Put back the inputs the app found by itself")
        self.buttons.addButton(self.reset_button, QDialogButtonBox.ButtonRole.ResetRole)
        self.reset_button.clicked.connect(lambda: self.set_mapping(self._wf.guess))
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        lay.addWidget(self.buttons)
        self.setMinimumWidth(600)

    def _make_combo(self, name: str) -> QComboBox:
        combo = QComboBox()
        combo.setAccessibleName(f"{ROLE_LABELS[name]} input")
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(30)
        combo.addItem(NOT_USED, "")
        guess = getattr(self._wf.guess, name)
        kinds = ROLE_KINDS[name]
        # Inputs of the fitting kind only: a seed never goes into a text box. The guess is
        # always offered even if its kind is unusual (e.g. a float width in a custom node).
        for nid, inp, label, kind in self._wf.candidates:
            if kind not in kinds and (nid, inp) != guess:
                continue
            value = self._wf.graph[nid]["inputs"].get(inp)
            # The marker goes before the value: a long prompt text would elide it away.
            mark = " (automatic)" if (nid, inp) == guess else ""
            shown = f"“{_preview(value)}”" if isinstance(value, str) else _preview(value)
            text = f"{nid} · {self._wf.class_of(nid)} · {inp}{mark} = {shown}"
            combo.addItem(text, _key((nid, inp)))
            combo.setItemData(combo.count() - 1, f"{label}: {inp} = {value}", Qt.ItemDataRole.ToolTipRole)
        return combo

    def set_mapping(self, mapping: WorkflowMap) -> None:
        for name, combo in self.combos.items():
            slot = getattr(mapping, name)
            combo.setCurrentIndex(max(combo.findData(_key(slot), SlotRole), 0))

    def select(self, name: str, slot: Slot | None) -> None:
        combo = self.combos[name]
        combo.setCurrentIndex(max(combo.findData(_key(slot), SlotRole), 0))

    def mapping(self) -> WorkflowMap:
        slots = {}
        for name, combo in self.combos.items():
            data = combo.currentData(SlotRole) or ""
            node, _, inp = data.partition(_SEP)
            slots[name] = (node, inp) if data else None
        return WorkflowMap(**slots)

    def accept(self) -> None:
        self.mapping_chosen.emit(self.mapping())
        super().accept()
