"""MaskPainter: paint an inpainting mask over an image.

    painter = MaskPainter()
    painter.set_image(qimage)                 # decoded off the GUI thread by the caller
    painter.mask_saved.connect(use_mask)      # a Grayscale8 QImage the image's size, white = repaint

Strokes go straight onto two QImages at the image's own resolution: the mask itself and
a red overlay shown over the picture, so a stroke costs one line drawn twice and never a
whole-image conversion. Undo keeps whole-mask snapshots taken before each change.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QKeySequence, QPainter, QPen, QShortcut
from PySide6.QtWidgets import (
    QButtonGroup,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio_core.masks import check_mask

OVERLAY = QColor(230, 30, 60)
OVERLAY_OPACITY = 0.5
UNDO_STEPS = 20  # each a full mask copy: 4 MB at 2048²
MAX_BRUSH = 512


class MaskCanvas(QWidget):
    """The image, fitted to the widget, with the mask over it. ``brush_size`` is in image pixels."""

    mask_changed = Signal()
    undo_available = Signal(bool)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._image = QImage()
        self._mask = QImage()
        self._overlay = QImage()
        self._undo: list[QImage] = []
        self._last: QPointF | None = None
        self._hover: QPointF | None = None
        self.erasing = False
        self.brush_size = 32
        self.setMouseTracking(True)
        self.setMinimumSize(200, 200)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAccessibleName("Mask canvas")
        self.setToolTip("Paint where the image should be redrawn. B brush, E eraser, [ ] size, Ctrl+Z undo")

    # -- state ------------------------------------------------------------------------
    def set_image(self, image: QImage) -> None:
        self._image = image.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)
        self._mask = QImage(image.size(), QImage.Format.Format_Grayscale8)
        self._mask.fill(0)
        self._undo.clear()
        self._rebuild_overlay()
        self.undo_available.emit(False)
        self.update()

    def image(self) -> QImage:
        return self._image

    def mask(self) -> QImage:
        return self._mask.copy()

    def set_mask(self, mask: QImage) -> None:
        """Use an existing mask; raises InvalidMask when it is another size or has colours."""
        check_mask((mask.width(), mask.height()), (self._image.width(), self._image.height()),
                   greyscale=mask.isGrayscale())
        self._push_undo()
        self._mask = mask.convertToFormat(QImage.Format.Format_Grayscale8)
        self._changed(rebuild=True)

    def can_undo(self) -> bool:
        return bool(self._undo)

    def undo(self) -> None:
        if not self._undo:
            return
        self._mask = self._undo.pop()
        self._changed(rebuild=True)

    def clear(self) -> None:
        if self._mask.isNull():
            return
        self._push_undo()
        self._mask.fill(0)
        self._changed(rebuild=True)

    def invert(self) -> None:
        if self._mask.isNull():
            return
        self._push_undo()
        self._mask.invertPixels()
        self._changed(rebuild=True)

    def _push_undo(self) -> None:
        self._undo.append(self._mask.copy())
        del self._undo[:-UNDO_STEPS]

    def _changed(self, *, rebuild: bool = False) -> None:
        if rebuild:
            self._rebuild_overlay()
        self.undo_available.emit(bool(self._undo))
        self.mask_changed.emit()
        self.update()

    def _rebuild_overlay(self) -> None:
        self._overlay = QImage(self._mask.size(), QImage.Format.Format_ARGB32_Premultiplied)
        self._overlay.fill(OVERLAY)
        self._overlay.setAlphaChannel(self._mask)

    # -- geometry ---------------------------------------------------------------------
    def image_rect(self) -> QRectF:
        """Where the image is drawn: fitted, centred, aspect kept."""
        if self._image.isNull():
            return QRectF()
        w, h = self._image.width(), self._image.height()
        s = min(self.width() / w, self.height() / h)
        return QRectF((self.width() - w * s) / 2, (self.height() - h * s) / 2, w * s, h * s)

    def to_image(self, pos: QPointF) -> QPointF:
        r = self.image_rect()
        s = r.width() / self._image.width()
        return QPointF((pos.x() - r.x()) / s, (pos.y() - r.y()) / s)

    def to_widget(self, pos: QPointF) -> QPointF:
        r = self.image_rect()
        s = r.width() / self._image.width()
        return QPointF(r.x() + pos.x() * s, r.y() + pos.y() * s)

    # -- painting strokes -------------------------------------------------------------
    def _stroke(self, a: QPointF, b: QPointF) -> None:
        value = 0 if self.erasing else 255
        pen = QPen(QColor(value, value, value), self.brush_size, Qt.PenStyle.SolidLine,
                   Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin)
        # No antialiasing: the mask stays pure black and white, as inpainting expects.
        p = QPainter(self._mask)
        p.setPen(pen)
        p.drawLine(a, b)
        p.end()
        p = QPainter(self._overlay)
        pen.setColor(OVERLAY)
        if self.erasing:
            p.setCompositionMode(QPainter.CompositionMode.CompositionMode_Clear)
        p.setPen(pen)
        p.drawLine(a, b)
        p.end()
        half = self.brush_size / 2 + 2
        box = QRectF(self.to_widget(a), self.to_widget(b)).normalized()
        s = self.image_rect().width() / max(1, self._image.width())
        self.update(box.adjusted(-half * s, -half * s, half * s, half * s).toAlignedRect())

    def mousePressEvent(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton or self._image.isNull():
            return super().mousePressEvent(event)
        self._push_undo()
        self._last = self.to_image(event.position())
        self._stroke(self._last, self._last)

    def mouseMoveEvent(self, event) -> None:
        old = self._hover
        self._hover = event.position()
        if self._last is not None and event.buttons() & Qt.MouseButton.LeftButton:
            pt = self.to_image(event.position())
            self._stroke(self._last, pt)
            self._last = pt
        self._update_cursor(old)

    def mouseReleaseEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self._last is not None:
            self._last = None
            self._changed()

    def leaveEvent(self, event) -> None:
        old, self._hover = self._hover, None
        self._update_cursor(old)

    def _update_cursor(self, old: QPointF | None) -> None:
        r = self.brush_size * self.image_rect().width() / max(1, self._image.width()) / 2 + 3
        for c in (old, self._hover):
            if c is not None:
                self.update(QRectF(c.x() - r, c.y() - r, 2 * r, 2 * r).toAlignedRect())

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), self.palette().dark())
        if self._image.isNull():
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No image")
            p.end()
            return
        r = self.image_rect()
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, r.width() < self._image.width())
        p.drawImage(r, self._image)
        p.setOpacity(OVERLAY_OPACITY)
        p.drawImage(r, self._overlay)
        p.setOpacity(1.0)
        if self._hover is not None:
            rad = self.brush_size * r.width() / self._image.width() / 2
            p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            for colour, width in ((QColor(0, 0, 0), 3), (QColor(255, 255, 255), 1)):
                p.setPen(QPen(colour, width, Qt.PenStyle.DashLine if self.erasing else Qt.PenStyle.SolidLine))
                p.drawEllipse(self._hover, rad, rad)
        p.end()


class MaskPainter(QWidget):
    """Canvas plus tools: brush and eraser (B, E), size ([ and ]), undo (Ctrl+Z), clear,
    invert, and "Use mask", which emits ``mask_saved`` with the mask."""

    mask_saved = Signal(QImage)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.canvas = MaskCanvas()
        self.brush = self._tool("Brush", "Paint the area to redraw (B)", "B")
        self.eraser = self._tool("Eraser", "Take area out of the mask (E)", "E")
        self.brush.setChecked(True)
        group = QButtonGroup(self)
        group.setExclusive(True)
        group.addButton(self.brush)
        group.addButton(self.eraser)
        self.eraser.toggled.connect(self._on_eraser_toggled)

        self.size = QSpinBox()
        self.size.setRange(1, MAX_BRUSH)
        self.size.setValue(self.canvas.brush_size)
        self.size.setSuffix(" px")
        self.size.setAccessibleName("Brush size")
        self.size.setToolTip("Brush size in image pixels ([ smaller, ] larger)")
        self.size.valueChanged.connect(self._on_size_changed)

        self.undo_button = self._button("Undo", "Undo the last stroke (Ctrl+Z)", self.canvas.undo)
        self.undo_button.setEnabled(False)
        self.canvas.undo_available.connect(self.undo_button.setEnabled)
        self.clear_button = self._button("Clear", "Remove the whole mask", self.canvas.clear)
        self.invert_button = self._button("Invert", "Swap painted and unpainted areas", self.canvas.invert)
        self.save_button = self._button("Use mask", "Keep this mask with the image's inputs", self.save)
        self.save_button.setDefault(True)

        tools = QHBoxLayout()
        tools.addWidget(self.brush)
        tools.addWidget(self.eraser)
        tools.addWidget(QLabel("Size"))
        tools.addWidget(self.size)
        tools.addStretch(1)
        tools.addWidget(self.undo_button)
        tools.addWidget(self.clear_button)
        tools.addWidget(self.invert_button)
        tools.addWidget(self.save_button)
        root = QVBoxLayout(self)
        root.addLayout(tools)
        root.addWidget(self.canvas, 1)
        hint = QLabel("Red marks what gets redrawn; the rest of the image is kept.")
        hint.setAccessibleName("Mask hint")
        root.addWidget(hint)

        for keys, slot in ((QKeySequence.StandardKey.Undo, self.canvas.undo), ("B", self.brush.click),
                           ("E", self.eraser.click), ("[", lambda: self.step_size(-1)), ("]", lambda: self.step_size(1))):
            sc = QShortcut(QKeySequence(keys), self)
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            sc.activated.connect(slot)

    def _tool(self, text: str, tip: str, key: str) -> QToolButton:
        b = QToolButton()
        b.setText(text)
        b.setCheckable(True)
        b.setToolTip(tip)
        b.setAccessibleName(text)
        return b

    def _button(self, text: str, tip: str, slot) -> QPushButton:
        b = QPushButton(text)
        b.setToolTip(tip)
        b.setAccessibleName(text)
        b.clicked.connect(lambda: slot())
        return b

    def _on_eraser_toggled(self, on: bool) -> None:
        self.canvas.erasing = on
        self.canvas.update()

    def _on_size_changed(self, value: int) -> None:
        self.canvas.brush_size = value
        self.canvas.update()

    def step_size(self, direction: int) -> None:
        """[ and ]: about 20% a step, so both a 4 px and a 300 px brush are a few presses away."""
        v = self.size.value()
        step = max(1, round(v * 0.2))
        self.size.setValue(v + direction * step)

    def set_image(self, image: QImage) -> None:
        self.canvas.set_image(image)

    def mask(self) -> QImage:
        return self.canvas.mask()

    def save(self) -> QImage:
        """The mask as a Grayscale8 image the image's size (white = repaint); also emitted."""
        mask = self.canvas.mask()
        self.mask_saved.emit(mask)
        return mask

    def sizeHint(self) -> QSize:
        return QSize(640, 560)
