"""GalleryDelegate: paints one tile (thumbnail on a checkerboard, title, badges).

Badges are painted, never child widgets, so 100,000 rows cost nothing but their data.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from studio_gui.gallery.model import GalleryModel, RecordRole, is_placeholder

THUMB = 128
PAD = 8
TEXT_H = 18
TILE = QSize(THUMB + 2 * PAD, THUMB + 2 * PAD + TEXT_H)

_checker: dict[int, QPixmap] = {}


def checker_tile(cell: int = 8) -> QPixmap:
    """A 2×2-cell checkerboard pixmap to tile behind transparent images."""
    pm = _checker.get(cell)
    if pm is None:
        pm = QPixmap(cell * 2, cell * 2)
        pm.fill(QColor(204, 204, 204))
        p = QPainter(pm)
        p.fillRect(0, 0, cell, cell, QColor(240, 240, 240))
        p.fillRect(cell, cell, cell, cell, QColor(240, 240, 240))
        p.end()
        _checker[cell] = pm
    return pm


class GalleryDelegate(QStyledItemDelegate):
    def __init__(self, parent=None, *, thumb: int = THUMB, show_text: bool = True):
        super().__init__(parent)
        self.thumb = thumb
        self.show_text = show_text
        # Paint runs for every visible tile on every repaint: keep what does not change.
        self._font: QFont | None = None
        self._small: QFont | None = None
        self._elided: dict[tuple[str, int, bool], str] = {}

    def tile_size(self) -> QSize:
        return QSize(self.thumb + 2 * PAD, self.thumb + 2 * PAD + (TEXT_H if self.show_text else 0))

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        return self.tile_size()

    def _fonts(self, font: QFont) -> QFont:
        if self._font is None or self._font != font:
            self._font = QFont(font)
            self._small = QFont(font)
            self._small.setPointSizeF(max(7.0, font.pointSizeF() * 0.8))
            self._elided.clear()
        assert self._small is not None
        return self._small

    def _elide(self, painter: QPainter, text: str, width: int, small: bool) -> str:
        key = (text, width, small)
        out = self._elided.get(key)
        if out is None:
            if len(self._elided) > 4000:
                self._elided.clear()
            out = self._elided[key] = painter.fontMetrics().elidedText(text, Qt.TextElideMode.ElideRight, width)
        return out

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> None:
        model = index.model()
        if isinstance(model, GalleryModel):
            # Straight to the Python model: no QVariant round trips for the record and pixmap.
            rec = model.record(index.row())
            pm = model.data(index, Qt.ItemDataRole.DecorationRole)
        else:
            rec = index.data(RecordRole)
            pm = index.data(Qt.ItemDataRole.DecorationRole)
        pal = option.palette
        r = option.rect
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        hover = bool(option.state & QStyle.StateFlag.State_MouseOver)
        if selected or hover:
            color = QColor(pal.color(QPalette.ColorRole.Highlight))
            if not selected:
                color.setAlpha(60)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(color)
            painter.drawRoundedRect(r.adjusted(2, 2, -2, -2), 6, 6)

        box = QRect(r.x() + PAD, r.y() + PAD, self.thumb, self.thumb)
        if isinstance(pm, QPixmap) and not pm.isNull():
            size = pm.size().scaled(box.size(), Qt.AspectRatioMode.KeepAspectRatio)
            if pm.width() <= box.width() and pm.height() <= box.height():
                size = pm.size()
            target = QRect(0, 0, size.width(), size.height())
            target.moveCenter(box.center())
            if pm.hasAlphaChannel() and not is_placeholder(pm):
                painter.fillRect(target, checker_tile(max(4, self.thumb // 16)))
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
            painter.drawPixmap(target, pm)

        if rec is not None:
            small = self._fonts(option.font)
            painter.setFont(small)
            if rec.favourite:
                star = QRect(box.right() - 22, box.top() + 2, 20, 20)
                painter.setPen(Qt.PenStyle.NoPen)
                painter.setBrush(QColor(0, 0, 0, 120))
                painter.drawEllipse(star)
                painter.setPen(QColor(255, 200, 40))
                painter.drawText(star, Qt.AlignmentFlag.AlignCenter, "★")
            badge = rec.service if rec.service and rec.service != "unknown" else ""
            if badge and self.thumb >= 96:
                fm = painter.fontMetrics()
                w = min(fm.horizontalAdvance(badge) + 8, self.thumb)
                rb = QRect(box.left() + 2, box.bottom() - fm.height() - 2, w, fm.height() + 2)
                painter.setPen(Qt.PenStyle.NoPen)
                painter.setBrush(QColor(0, 0, 0, 140))
                painter.drawRoundedRect(rb, 4, 4)
                painter.setPen(QColor(255, 255, 255))
                painter.drawText(rb, Qt.AlignmentFlag.AlignCenter, self._elide(painter, badge, w - 4, True))
            if self.show_text:
                painter.setFont(option.font)
                text_rect = QRect(r.x() + 4, box.bottom() + 4, r.width() - 8, TEXT_H)
                painter.setPen(pal.color(QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text))
                title = self._elide(painter, rec.title, text_rect.width(), False)
                painter.drawText(text_rect, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignVCenter, title)
        if option.state & QStyle.StateFlag.State_HasFocus:
            painter.setPen(QColor(pal.color(QPalette.ColorRole.Highlight)))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(r.adjusted(1, 1, -1, -1), 6, 6)
        painter.restore()
