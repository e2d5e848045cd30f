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

_checker: dict[tuple[int, int], QPixmap] = {}
_checker_boards: dict[tuple[int, int], QPixmap] = {}

# Enum values and colours built once: PySide's enum operators and QColor() cost microseconds
# each, and paint() runs for every visible tile on every repaint.
_CENTER = Qt.AlignmentFlag.AlignCenter
_TITLE_ALIGN = Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignVCenter
_NO_PEN = Qt.PenStyle.NoPen
_NO_BRUSH = Qt.BrushStyle.NoBrush
_KEEP = Qt.AspectRatioMode.KeepAspectRatio
_AA = QPainter.RenderHint.Antialiasing
_SMOOTH = QPainter.RenderHint.SmoothPixmapTransform
_SELECTED = QStyle.StateFlag.State_Selected.value
_HOVER = QStyle.StateFlag.State_MouseOver.value
_FOCUS = QStyle.StateFlag.State_HasFocus.value
_HIGHLIGHT = QPalette.ColorRole.Highlight
_TEXT = QPalette.ColorRole.Text
_HIGHLIGHTED_TEXT = QPalette.ColorRole.HighlightedText
_STAR_BG = QColor(0, 0, 0, 120)
_STAR_FG = QColor(255, 200, 40)
_BADGE_BG = QColor(0, 0, 0, 140)
_WHITE = QColor(255, 255, 255)


def checker_tile(cell: int = 8, *, dark: int = 240) -> QPixmap:
    """A 2×2-cell checkerboard pixmap to tile behind transparent images.

    The gallery uses a soft board; the sprite tools a stronger one (``dark=153``) so
    single pixels at the edge of a sprite stay visible.
    """
    pm = _checker.get((cell, dark))
    if pm is None:
        pm = QPixmap(cell * 2, cell * 2)
        pm.fill(QColor(204, 204, 204))
        p = QPainter(pm)
        p.fillRect(0, 0, cell, cell, QColor(dark, dark, dark))
        p.fillRect(cell, cell, cell, cell, QColor(dark, dark, dark))
        p.end()
        _checker[(cell, dark)] = pm
    return pm


def checker_board(px: int, cell: int) -> QPixmap:
    """A ``px``×``px`` checkerboard, drawn once: blitting part of it beats a tiled fill."""
    pm = _checker_boards.get((px, cell))
    if pm is None:
        pm = QPixmap(px, px)
        p = QPainter(pm)
        p.fillRect(0, 0, px, px, checker_tile(cell))
        p.end()
        _checker_boards[(px, cell)] = pm
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
        self._badges: dict[str, tuple[int, int]] = {}

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
            self._badges.clear()
        assert self._small is not None
        return self._small

    def _badge_size(self, painter: QPainter, badge: str) -> tuple[int, int]:
        """(text width, font height) of a badge in the small font (cleared with the fonts)."""
        got = self._badges.get(badge)
        if got is None:
            fm = painter.fontMetrics()
            got = self._badges[badge] = (fm.horizontalAdvance(badge), fm.height())
        return got

    def _elide(self, painter: QPainter, text: str, width: int, small: bool) -> str:
        key = (text, width, small)
        out = self._elided.get(key)
        if out is None:
            if len(self._elided) > 4000:
                self._elided.clear()
            self._badges.clear()
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
        state = option.state.value
        font = option.font
        painter.save()
        painter.setRenderHint(_AA)
        selected = bool(state & _SELECTED)
        if selected or state & _HOVER:
            color = QColor(pal.color(_HIGHLIGHT))
            if not selected:
                color.setAlpha(60)
            painter.setPen(_NO_PEN)
            painter.setBrush(color)
            painter.drawRoundedRect(r.adjusted(2, 2, -2, -2), 6, 6)

        self._draw_content(painter, r, rec, pm, selected, pal, font, self._fonts(font))
        if state & _FOCUS:
            painter.setPen(pal.color(_HIGHLIGHT))
            painter.setBrush(_NO_BRUSH)
            painter.drawRoundedRect(r.adjusted(1, 1, -1, -1), 6, 6)
        painter.restore()

    def _draw_content(self, painter: QPainter, r: QRect, rec, pm, selected: bool, pal: QPalette, font: QFont,
                      small: QFont) -> None:
        x0, y0, t = r.x() + PAD, r.y() + PAD, self.thumb
        if isinstance(pm, QPixmap) and not pm.isNull():
            w, h = pm.width(), pm.height()
            if w > t or h > t:  # fit, keeping the aspect ratio
                f = min(t / w, t / h)
                w, h = max(1, round(w * f)), max(1, round(h * f))
            target = QRect(x0 + (t - w) // 2, y0 + (t - h) // 2, w, h)
            if pm.hasAlphaChannel() and not is_placeholder(pm):
                painter.drawPixmap(target, checker_board(t, max(4, t // 16)), QRect(0, 0, w, h))
            painter.setRenderHint(_SMOOTH, False)
            painter.drawPixmap(target, pm)
        box = QRect(x0, y0, t, t)

        if rec is not None:
            painter.setFont(small)
            if rec.favourite:
                star = QRect(box.right() - 22, box.top() + 2, 20, 20)
                painter.setPen(_NO_PEN)
                painter.setBrush(_STAR_BG)
                painter.drawEllipse(star)
                painter.setPen(_STAR_FG)
                painter.drawText(star, _CENTER, "★")
            badge = rec.service if rec.service and rec.service != "unknown" else ""
            if badge and self.thumb >= 96:
                bw, fh = self._badge_size(painter, badge)
                w = min(bw + 8, t)
                rb = QRect(x0 + 2, y0 + t - 1 - fh - 2, w, fh + 2)
                painter.setPen(_NO_PEN)
                painter.setBrush(_BADGE_BG)
                painter.drawRoundedRect(rb, 4, 4)
                painter.setPen(_WHITE)
                painter.drawText(rb, _CENTER, self._elide(painter, badge, w - 4, True))
            if self.show_text:
                painter.setFont(font)
                tw = r.width() - 8
                text_rect = QRect(r.x() + 4, y0 + t - 1 + 4, tw, TEXT_H)
                painter.setPen(pal.color(_HIGHLIGHTED_TEXT if selected else _TEXT))
                painter.drawText(text_rect, _TITLE_ALIGN, self._elide(painter, rec.title, tw, False))
