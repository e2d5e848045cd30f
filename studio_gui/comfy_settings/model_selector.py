"""ModelSelector (the seed's ComfyUIModelSelector): the server's checkpoints with what each needs.

Each entry shows the family (from the file name), whether the server has it, its native
size and the VRAM it needs at that size. SDXL Base 1.0 is chosen when present; with no
checkpoint at all, the empty state says what to download and where it goes.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QLabel, QVBoxLayout, QWidget

from studio_core.hardware.estimator import estimate_vram
from studio_core.hardware.families import ModelFamily, detect_family, family_for
from studio_core.models import ModelInfo

DEFAULT_MODEL = "sd_xl_base_1.0.safetensors"
EMPTY_TEXT = ("The server has no checkpoints. Download one, e.g. <b>sd_xl_base_1.0.safetensors</b> "
              "(6.9 GB, from stabilityai/stable-diffusion-xl-base-1.0 on Hugging Face), into "
              "<b>ComfyUI/models/checkpoints</b>, then restart ComfyUI.")
ModelRole = Qt.ItemDataRole.UserRole


def precision_of(name: str) -> str:
    return "fp8" if "fp8" in name.lower() else "fp16"


def describe(name: str, family: ModelFamily, *, present: bool) -> str:
    w, h = family.native
    need = estimate_vram(family, width=w, height=h, precision=precision_of(name)).peak_gb
    base = name.rsplit("/", 1)[-1]
    tail = f"{family.label} · {w}×{h} · needs ~{need:.1f} GB"
    return f"{base} — {tail}" + ("" if present else " · not on the server")


class ModelSelector(QWidget):
    """``model_changed(name)`` fires when the user (or a reload) changes the choice."""

    model_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.combo = QComboBox()
        self.combo.setAccessibleName("Model")
        self.combo.setToolTip("Checkpoints on the ComfyUI server, with the VRAM each needs at its native size")
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setMinimumContentsLength(24)
        self.combo.currentIndexChanged.connect(self._on_index)
        self.empty = QLabel(EMPTY_TEXT)
        self.empty.setWordWrap(True)
        # A wrapped label in a form row is given one line's height; room for three is needed.
        self.empty.setMinimumHeight(self.empty.fontMetrics().lineSpacing() * 3 + 6)
        self.empty.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.empty.hide()
        lay.addWidget(self.combo)
        lay.addWidget(self.empty)
        self._loading = False
        self._hints: dict[str, str] = {}  # the server's/provider's family per model

    def current(self) -> str:
        return self.combo.currentData(ModelRole) or ""

    def family(self) -> ModelFamily:
        name = self.current() or DEFAULT_MODEL
        return family_for(name, self._hints.get(name, ""))

    def set_models(self, models: tuple[ModelInfo, ...] | list[ModelInfo], *, wanted: str = "") -> None:
        """Fill from the server's list; keep ``wanted`` (else SDXL Base 1.0, else the first)."""
        self._loading = True
        before = self.current()
        self.combo.clear()
        names = [m.id for m in models]
        self._hints = {m.id: m.family for m in models if m.family}
        for m in models:
            self.combo.addItem(describe(m.id, family_for(m.id, m.family), present=m.present), m.id)
            self.combo.setItemData(self.combo.count() - 1, m.notes or m.id, Qt.ItemDataRole.ToolTipRole)
        if wanted and wanted not in names and models:
            self.combo.addItem(describe(wanted, detect_family(wanted), present=False), wanted)
        self.empty.setVisible(not models)
        self.combo.setVisible(bool(models))
        pick = next((n for n in (wanted, DEFAULT_MODEL) if n and n in names), names[0] if names else wanted)
        self._select(pick)
        self._loading = False
        if self.current() != before:
            self.model_changed.emit(self.current())

    def set_offline(self, wanted: str) -> None:
        """No answer from the server: show the configured model, marked as unchecked."""
        self._loading = True
        self.combo.clear()
        self.combo.addItem(describe(wanted, detect_family(wanted), present=True) + " (server not checked)", wanted)
        self.empty.hide()
        self.combo.show()
        self._loading = False

    def select(self, name: str) -> None:
        if name and self.combo.findData(name, ModelRole) < 0:
            self.combo.addItem(describe(name, detect_family(name), present=False), name)
        self._select(name)

    def _select(self, name: str) -> None:
        i = self.combo.findData(name, ModelRole)
        if i >= 0:
            self.combo.setCurrentIndex(i)

    def _on_index(self, _i: int) -> None:
        if not self._loading:
            self.model_changed.emit(self.current())
