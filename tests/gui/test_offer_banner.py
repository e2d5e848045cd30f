"""OfferBanner, the frame both "nothing lost" banners stand on: hidden until there is
something to offer, the buttons beside the line in the order added, the tone by risk."""

from __future__ import annotations

import pytest

from studio_gui.offer_banner import OfferBanner


def test_buttons_follow_the_line_in_order_and_call_their_slot(qtbot):
    banner = OfferBanner("TestBanner", "Things kept for you")
    qtbot.addWidget(banner)
    pressed: list[str] = []
    keep = banner.add_action("Keep", "Keep them", lambda: pressed.append("keep"))
    drop = banner.add_action("Drop…", "Drop them", lambda: pressed.append("drop"))
    assert banner.isHidden()
    assert [banner.actions.itemAt(i).widget() for i in range(3)] == [banner.title, keep, drop]
    assert drop.toolTip() == "Drop them" and banner.accessibleName() == "Things kept for you"
    drop.click()
    keep.click()
    assert pressed == ["drop", "keep"]


def test_the_tone_says_whether_something_is_at_risk(qtbot):
    warning = OfferBanner("A", "a", tone="warning")
    neutral = OfferBanner("B", "b")
    qtbot.addWidget(warning)
    qtbot.addWidget(neutral)
    assert warning.styleSheet().startswith("QFrame#A {") and "#d4ac0d" in warning.styleSheet()
    assert "palette(mid)" in neutral.styleSheet()
    with pytest.raises(KeyError):
        OfferBanner("C", "c", tone="loud")

