"""VramGauge: the card's memory as a bar, with the job's estimated peak against the safe budget.

The bar spans the card's total VRAM. The coloured part is the estimate (green, amber within
10% of the budget, red over it); the thin grey strip under it is what is in use right now;
the dark tick is the safe budget. When the card is unknown (no driver reading, no GPU from
the server) the budget is an assumed profile's, so the estimate is drawn in a neutral grey:
red would claim a failure nobody measured.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import QSizePolicy, QWidget

from studio_core.hardware.planner import FitLevel

COLOURS = {FitLevel.ok: QColor("#2e9d4f"), FitLevel.near: QColor("#d99a00"), FitLevel.over: QColor("#d0312d")}
NEUTRAL = QColor("#7b8794")  # an estimate against an assumed card: no verdict colour


def level_colour(level: FitLevel, *, guessed: bool = False) -> QColor:
    """The colour for an estimate: red/amber/green for a known card, neutral for an assumed one."""
    return QColor(NEUTRAL) if guessed else QColor(COLOURS[level])


class VramGauge(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.total_mib = 6144.0
        self.used_mib: float | None = None
        self.budget_mib = 5120.0
        self.estimate_mib: float | None = None
        self.level = FitLevel.ok
        self.guessed = False  # the budget comes from an assumed profile, not the card
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setAccessibleName("VRAM gauge")

    def sizeHint(self) -> QSize:
        return QSize(240, 18)

    def minimumSizeHint(self) -> QSize:
        return QSize(80, 18)

    def set_values(self, *, total_mib: float, used_mib: float | None, budget_mib: float,
                   estimate_mib: float | None, level: FitLevel, guessed: bool = False) -> None:
        self.total_mib = max(1.0, total_mib)
        self.used_mib, self.budget_mib, self.estimate_mib, self.level = used_mib, budget_mib, estimate_mib, level
        self.guessed = guessed
        used = f"{used_mib / 1024:.1f} GB in use, " if used_mib is not None else ""
        est = f"estimated peak {estimate_mib / 1024:.1f} GB, " if estimate_mib is not None else ""
        budget = "assumed safe budget" if guessed else "safe budget"
        self.setAccessibleDescription(f"{used}{est}{budget} {budget_mib / 1024:.1f} of {total_mib / 1024:.1f} GB"
                                      + (" (GPU unknown)" if guessed else ""))
        self.update()

    def colour(self) -> QColor:
        return level_colour(self.level, guessed=self.guessed)

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        r = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        track = pal.color(QPalette.ColorRole.Mid)
        track.setAlpha(70)
        p.setPen(pal.color(QPalette.ColorRole.Mid))
        p.setBrush(track)
        p.drawRoundedRect(r, 3, 3)

        def x_of(mib: float) -> float:
            return r.left() + r.width() * max(0.0, min(1.0, mib / self.total_mib))

        if self.estimate_mib is not None:
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(self.colour())
            p.drawRoundedRect(QRectF(r.left(), r.top() + 1, x_of(self.estimate_mib) - r.left(), r.height() - 6), 2, 2)
        if self.used_mib is not None:
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(pal.color(QPalette.ColorRole.WindowText))
            p.setOpacity(0.45)
            p.drawRect(QRectF(r.left(), r.bottom() - 4, x_of(self.used_mib) - r.left(), 3))
            p.setOpacity(1.0)
        bx = x_of(self.budget_mib)
        p.setPen(pal.color(QPalette.ColorRole.WindowText))
        p.drawLine(int(bx), int(r.top()) - 1, int(bx), int(r.bottom()) + 1)
        p.end()
