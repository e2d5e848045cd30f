"""OfferBanner: the framed box in which the app offers back what it kept for the user
(jobs left waiting last time, images that could not be saved), with a line that says what
and the buttons that deal with it. Both "nothing lost" banners look and lay out alike, so
a user who has met one reads the other at a glance.
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

# border, background: "warning" for what is at risk until the user acts (unsaved images),
# "neutral" for what simply waits (a queue from last time).
TONES = {
    "neutral": ("palette(mid)", "palette(alternate-base)"),
    "warning": ("#d4ac0d", "rgba(241, 196, 15, 0.12)"),
}


class OfferBanner(QFrame):
    """``title`` with the action buttons beside it; a subclass may add lines below
    (``body.addWidget``). Hidden until the subclass has something to offer."""

    def __init__(self, name: str, accessible_name: str, *, tone: str = "neutral", parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName(name)
        self.setAccessibleName(accessible_name)
        border, background = TONES[tone]
        self.setStyleSheet(f"QFrame#{name} {{ border: 1px solid {border}; border-radius: 4px;"
                           f" background: {background}; }}")
        self.body = QVBoxLayout(self)
        self.body.setContentsMargins(8, 6, 8, 6)
        self.title = QLabel()
        self.title.setWordWrap(True)
        self.actions = QHBoxLayout()
        self.actions.addWidget(self.title, 1)
        self.body.addLayout(self.actions)
        self.hide()

    def add_action(self, text: str, tooltip: str, slot: Callable[[], object]) -> QPushButton:
        button = QPushButton(text)
        button.setToolTip(tooltip)
        button.clicked.connect(slot)
        self.actions.addWidget(button)
        return button
