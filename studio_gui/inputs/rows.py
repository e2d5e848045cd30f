"""The rows of the Image inputs section: the init image (thumbnail, denoise, mask) and one
per reference image (thumbnail, weight). Plain widgets; the section fills and reads them."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio_gui.inputs.images import THUMB


def thumb_label(name: str) -> QLabel:
    label = QLabel()
    label.setFixedSize(THUMB, THUMB)
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setStyleSheet("QLabel { background: #2b2b2b; border: 1px solid #555; }")
    label.setAccessibleName(name)
    return label


def set_thumb(label: QLabel, image: QImage | None) -> None:
    if image is None or image.isNull():
        label.setText("?")
        label.setPixmap(QPixmap())
        return
    label.setPixmap(QPixmap.fromImage(image))


def remove_button(what: str) -> QToolButton:
    b = QToolButton()
    b.setText("✕")
    b.setToolTip(f"Remove the {what}")
    b.setAccessibleName(f"Remove the {what}")
    return b


class InitRow(QWidget):
    """The image to edit: how much to change it (denoise) and where (the mask)."""

    changed = Signal()
    paint_mask = Signal()
    removed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.digest = ""
        self.mask_digest = ""
        self.size = (0, 0)
        self.thumb = thumb_label("Init image")
        self.title = QLabel("<b>Init image</b> — the picture is redrawn from this one")
        self.title.setWordWrap(True)
        self.denoise = QSlider(Qt.Orientation.Horizontal)
        self.denoise.setRange(5, 95)
        self.denoise.setValue(60)
        self.denoise.setAccessibleName("Denoise strength")
        self.denoise.setToolTip("How much is redrawn: low keeps the image, high keeps only its layout and colours")
        self.denoise_value = QLabel()
        self.denoise_value.setMinimumWidth(34)
        self.denoise.valueChanged.connect(self._on_denoise)
        self.mask_button = QPushButton("Paint mask…")
        self.mask_button.setAccessibleName("Paint mask")
        self.mask_button.setToolTip("Paint where the image is redrawn; the rest is kept (inpainting)")
        self.mask_button.clicked.connect(self.paint_mask.emit)
        self.mask_state = QLabel("")
        self.mask_state.setAccessibleName("Mask state")
        self.clear_mask = QToolButton()
        self.clear_mask.setText("Clear mask")
        self.clear_mask.setAccessibleName("Clear mask")
        self.clear_mask.setToolTip("Redraw the whole image again (no mask)")
        self.clear_mask.clicked.connect(lambda: self.set_mask(""))
        self.remove = remove_button("init image")
        self.remove.clicked.connect(self.removed.emit)

        strength = QHBoxLayout()
        strength.addWidget(QLabel("Denoise"))
        strength.addWidget(self.denoise, 1)
        strength.addWidget(self.denoise_value)
        mask = QHBoxLayout()
        mask.addWidget(self.mask_button)
        mask.addWidget(self.mask_state)
        mask.addWidget(self.clear_mask)
        mask.addStretch(1)
        right = QVBoxLayout()
        right.setContentsMargins(0, 0, 0, 0)
        right.addWidget(self.title)
        right.addLayout(strength)
        right.addLayout(mask)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.thumb, 0, Qt.AlignmentFlag.AlignTop)
        lay.addLayout(right, 1)
        lay.addWidget(self.remove, 0, Qt.AlignmentFlag.AlignTop)
        self._on_denoise(self.denoise.value())
        self.set_mask("")

    def _on_denoise(self, v: int) -> None:
        self.denoise_value.setText(f"{v / 100:.2f}")
        self.changed.emit()

    def value(self) -> float:
        return self.denoise.value() / 100

    def set_value(self, denoise: float) -> None:
        self.denoise.setValue(round(max(0.05, min(0.95, denoise)) * 100))

    def set_mask(self, digest: str) -> None:
        self.mask_digest = digest
        self.mask_state.setText("mask painted: only the red area is redrawn" if digest else "no mask: all of it")
        self.clear_mask.setVisible(bool(digest))
        self.mask_button.setText("Edit mask…" if digest else "Paint mask…")
        self.changed.emit()


class ReferenceRow(QWidget):
    changed = Signal()
    removed = Signal(object)

    def __init__(self, digest: str, *, weight: float = 1.0, kind: str = "character", name: str = "",
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.digest = digest
        self.kind = kind
        self.thumb = thumb_label("Reference image")
        self.thumb.setFixedSize(THUMB // 2 + 8, THUMB // 2 + 8)
        self.thumb.setScaledContents(True)
        label = QLabel(f"{'Character' if kind == 'character' else 'Style'} reference" + (f" · {name}" if name else ""))
        label.setToolTip("The service keeps this look (face, outfit, colours) in what it makes")
        self.weight = QDoubleSpinBox()
        self.weight.setRange(0.0, 2.0)
        self.weight.setSingleStep(0.1)
        self.weight.setDecimals(2)
        self.weight.setValue(weight)
        self.weight.setAccessibleName("Reference weight")
        self.weight.setToolTip("How strongly this reference steers the picture (1 = normal)")
        self.weight.valueChanged.connect(lambda _v: self.changed.emit())
        self.remove = remove_button("reference image")
        self.remove.clicked.connect(lambda: self.removed.emit(self))
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.thumb)
        lay.addWidget(label, 1)
        lay.addWidget(QLabel("weight"))
        lay.addWidget(self.weight)
        lay.addWidget(self.remove)
