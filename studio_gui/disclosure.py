"""Disclosure: a part of the Generate column that opens under an arrow button.

The image inputs and the frames panel both sit closed under a one-line summary (the
button's text) so the first screen stays short, and open in place with their controls
indented under the arrow. The owner keeps the summary up to date and reacts to opening.
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QToolButton, QVBoxLayout, QWidget


class Disclosure:
    """Lays ``owner`` out as ``toggle`` over ``body``; ``layout`` is the body's, ``root`` the owner's
    (for anything that stays visible below a closed body)."""

    def __init__(self, owner: QWidget, accessible_name: str, on_toggled: Callable[[bool], None]):
        self.toggle = QToolButton()
        self.toggle.setCheckable(True)
        self.toggle.setAutoRaise(True)
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.toggle.setAccessibleName(accessible_name)
        self.toggle.toggled.connect(on_toggled)
        self.body = QWidget()
        self.layout = QVBoxLayout(self.body)
        self.layout.setContentsMargins(18, 0, 0, 0)  # under the arrow, not under its text
        self.body.hide()
        self.root = QVBoxLayout(owner)
        self.root.setContentsMargins(0, 0, 0, 0)
        self.root.setSpacing(2)
        self.root.addWidget(self.toggle, 0, Qt.AlignmentFlag.AlignLeft)
        self.root.addWidget(self.body)

    def set_open(self, on: bool) -> bool:
        """Open or close; True once the body has changed. False when this only moved the
        button: its ``toggled`` calls the owner back, which calls this again."""
        if self.toggle.isChecked() != on:
            self.toggle.setChecked(on)
            return False
        self.body.setVisible(on)
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)
        return True
