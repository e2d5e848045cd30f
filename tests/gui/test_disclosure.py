"""Disclosure, the arrow-button section the image inputs and the frames panel share."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget

from studio_gui.disclosure import Disclosure


def test_opening_by_call_or_click_tells_the_owner_once_and_turns_the_arrow(qtbot):
    owner = QWidget()
    qtbot.addWidget(owner)
    heard: list[bool] = []

    def set_expanded(on: bool) -> None:
        if part.set_open(on):
            heard.append(on)

    part = Disclosure(owner, "Things", set_expanded)
    part.layout.addWidget(QLabel("inside"))
    below = QLabel("below")
    part.root.addWidget(below)
    owner.show()
    assert part.body.isHidden() and not below.isHidden()
    set_expanded(True)
    assert heard == [True] and part.body.isVisible()
    assert part.toggle.arrowType() == Qt.ArrowType.DownArrow
    part.toggle.click()
    assert heard == [True, False] and part.body.isHidden()
    assert part.toggle.arrowType() == Qt.ArrowType.RightArrow and part.toggle.accessibleName() == "Things"
    assert [part.root.itemAt(i).widget() for i in range(3)] == [part.toggle, part.body, below]
