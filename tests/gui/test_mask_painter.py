"""MaskPainter: strokes with the mouse make white mask pixels; eraser, undo, clear, invert, save."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtTest import QTest

from studio_core.masks import InvalidMask

W, H = 320, 200  # not square: the widget's fit and the image's pixels must still agree


def picture() -> QImage:
    img = QImage(W, H, QImage.Format.Format_RGB32)
    img.fill(QColor(90, 140, 200))
    return img


def grey(img: QImage) -> np.ndarray:
    assert img.format() == QImage.Format.Format_Grayscale8
    a = np.frombuffer(img.constBits(), np.uint8, img.sizeInBytes()).reshape(img.height(), img.bytesPerLine())
    return a[:, : img.width()].copy()


@pytest.fixture
def painter(qtbot):
    from studio_gui.inputs.mask_painter import MaskPainter

    p = MaskPainter()
    qtbot.addWidget(p)
    p.resize(700, 520)
    p.set_image(picture())
    p.show()
    qtbot.waitExposed(p)
    return p


def at(painter, x: float, y: float) -> QPoint:
    """The widget point over image pixel (x, y)."""
    return painter.canvas.to_widget(QPointF(x, y)).toPoint()


def drag(painter, points) -> None:
    c = painter.canvas
    pts = [at(painter, x, y) for x, y in points]
    QTest.mousePress(c, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pts[0])
    for p in pts[1:]:
        QTest.mouseMove(c, p)  # QTest moves carry the pressed button
    QTest.mouseRelease(c, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pts[-1])


def test_a_stroke_paints_white_along_its_path_and_the_mask_is_the_image_size(painter):
    painter.size.setValue(10)
    drag(painter, [(40, 100), (120, 100), (200, 100), (280, 100)])
    m = grey(painter.save())
    assert m.shape == (H, W)
    assert set(np.unique(m).tolist()) == {0, 255}  # black and white, nothing in between
    assert (m[100, 45:275] == 255).all()  # along the whole stroke
    assert (m[:85] == 0).all() and (m[116:] == 0).all()  # and only there (10 px brush)
    assert m[100, 10] == 0 and m[100, 310] == 0


def test_eraser_undo_clear_invert(painter):
    painter.size.setValue(20)
    drag(painter, [(50, 50), (250, 50)])
    painter.eraser.click()
    painter.size.setValue(12)
    drag(painter, [(150, 20), (150, 80)])
    m = grey(painter.mask())
    assert m[50, 100] == 255 and m[50, 150] == 0 and m[50, 200] == 255
    painter.canvas.undo()  # the erase comes back
    assert grey(painter.mask())[50, 150] == 255
    painter.canvas.clear()
    assert not grey(painter.mask()).any()
    painter.canvas.invert()
    assert (grey(painter.mask()) == 255).all()
    for _ in range(2):  # several steps back: invert, then clear
        painter.canvas.undo()
    m = grey(painter.mask())
    assert m[50, 150] == 255 and m[150, 150] == 0
    painter.canvas.undo()  # before the first stroke
    assert not grey(painter.mask()).any() and not painter.undo_button.isEnabled()


def test_keyboard_shortcuts(painter, qtbot):
    painter.canvas.setFocus()
    start = painter.size.value()
    QTest.keyClick(painter.canvas, Qt.Key.Key_BracketRight)
    assert painter.size.value() > start and painter.canvas.brush_size == painter.size.value()
    QTest.keyClick(painter.canvas, Qt.Key.Key_BracketLeft)
    QTest.keyClick(painter.canvas, Qt.Key.Key_BracketLeft)
    assert painter.size.value() < start
    QTest.keyClick(painter.canvas, Qt.Key.Key_E)
    assert painter.eraser.isChecked() and painter.canvas.erasing
    QTest.keyClick(painter.canvas, Qt.Key.Key_B)
    assert painter.brush.isChecked() and not painter.canvas.erasing
    drag(painter, [(100, 100), (110, 100)])
    assert grey(painter.mask()).any()
    QTest.keyClick(painter.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not grey(painter.mask()).any()


def test_save_emits_the_mask_and_controls_are_named(painter, qtbot):
    drag(painter, [(10, 10), (30, 30)])
    with qtbot.waitSignal(painter.mask_saved) as sig:
        painter.save_button.click()
    mask = sig.args[0]
    assert (mask.width(), mask.height()) == (W, H) and mask.isGrayscale() and grey(mask)[20, 20] == 255
    for w in (painter.brush, painter.eraser, painter.size, painter.undo_button, painter.clear_button,
              painter.invert_button, painter.save_button, painter.canvas):
        assert w.accessibleName() and w.toolTip()


def test_a_mask_of_another_size_or_with_colours_is_refused_with_a_reason(painter):
    small = QImage(100, 100, QImage.Format.Format_Grayscale8)
    small.fill(255)
    with pytest.raises(InvalidMask) as info:
        painter.canvas.set_mask(small)
    assert "100×100" in info.value.user_message and f"{W}×{H}" in info.value.user_message
    coloured = QImage(W, H, QImage.Format.Format_RGB32)
    coloured.fill(QColor(255, 0, 0))
    with pytest.raises(InvalidMask, match="colours"):
        painter.canvas.set_mask(coloured)
    assert not grey(painter.mask()).any()  # nothing changed
    ok = QImage(W, H, QImage.Format.Format_RGB32)  # grey pixels in a colour format are fine
    ok.fill(QColor(255, 255, 255))
    painter.canvas.set_mask(ok)
    assert (grey(painter.mask()) == 255).all()
    painter.canvas.undo()
    assert not grey(painter.mask()).any()
