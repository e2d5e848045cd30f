"""Issue 11 item 7: the main window at a 1024×640 screen — nothing cut off without a way to reach it."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QRect
from PySide6.QtWidgets import QAbstractSpinBox, QLineEdit, QPushButton, QComboBox, QWidget

from tests.gui.services_helpers import READY, UNREACHABLE, FakeServices

CONTROLS = (QAbstractSpinBox, QLineEdit, QPushButton, QComboBox)
LONG_MODEL = "juggernautXL_ragnarokBy_v12RealisticPhotographyLightning8steps.safetensors"


@pytest.fixture
def window(qtbot, loop, core, monkeypatch):
    from studio_gui.main_window import MainWindow

    FakeServices(core, monkeypatch, {"comfyui": UNREACHABLE, "openai": READY})
    w = MainWindow(core)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    loop.run_until_complete(w.started())
    yield w
    w.close()
    loop.run_until_complete(w.tasks.cancel_all())


def _settle(qtbot, loop) -> None:
    import asyncio

    for _ in range(3):
        loop.run_until_complete(asyncio.sleep(0.05))
        qtbot.wait(10)


def _column_controls(tab) -> list[QWidget]:
    column = tab.column_scroll.widget()
    return [w for w in column.findChildren(QWidget) if isinstance(w, CONTROLS) and w.isVisibleTo(column)
            and not isinstance(w.parent(), CONTROLS)]


@pytest.mark.parametrize("service", ["comfyui", "openai"])
def test_generate_column_at_1024x640_is_inside_the_view_or_scrollable(window, qtbot, loop, core, service):
    core.settings.update(selected_service=service)
    window.resize(1024, 640)
    _settle(qtbot, loop)
    if service == "comfyui":
        from studio_core.models import ModelInfo

        # A long checkpoint name must not widen the column: the box elides it, the tooltip has it whole.
        panel = window.generate_tab.settings_panel
        panel.models.set_models((ModelInfo(LONG_MODEL),), wanted=LONG_MODEL)
        _settle(qtbot, loop)
        assert panel.models.combo.shown_text().endswith("…") and LONG_MODEL in panel.models.combo.toolTip()
    assert window.width() <= 1024 and window.height() <= 640, "the window must fit the screen"
    tab = window.generate_tab
    scroll = tab.column_scroll
    column = scroll.widget()
    view = scroll.viewport()
    hbar, vbar = scroll.horizontalScrollBar(), scroll.verticalScrollBar()
    reachable = QRect(0, 0, view.width() + hbar.maximum(), view.height() + vbar.maximum())
    controls = _column_controls(tab)
    assert len(controls) >= 5
    for w in controls:
        rect = QRect(w.mapTo(column, QPoint(0, 0)), w.size())
        assert reachable.contains(rect), f"{type(w).__name__} {w.accessibleName()!r} at {rect} outside {reachable}"
        # A spin box or field narrower than it asks for shows "10" for 1024.
        # (A width the code fixed on purpose, like the 32 px "↻" button, is its own choice.)
        wanted = min(w.minimumSizeHint().width(), w.maximumWidth())
        assert w.width() >= wanted, f"{type(w).__name__} {w.accessibleName()!r} squeezed to {w.width()} < {wanted}"
    # Both the basic fields and the ComfyUI panel fit without a sideways scroll at all.
    assert hbar.maximum() == 0, f"the column needs {hbar.maximum()} px more than the view's {view.width()}"
    # Generate and Cancel sit below the scrolling part, always in sight.
    for b in (tab.generate_button, tab.cancel_button):
        top_left = b.mapTo(window, QPoint(0, 0))
        assert window.rect().contains(QRect(top_left, b.size()))


def test_main_window_can_be_as_small_as_a_small_laptop_screen(window, qtbot, loop):
    from studio_gui.main_window import MIN_HEIGHT, MIN_WIDTH

    _ = window.saved_tab
    _settle(qtbot, loop)
    window.tabs.setCurrentIndex(1)
    _settle(qtbot, loop)
    hint = window.minimumSizeHint()
    assert hint.width() <= 1024 and hint.height() <= 640
    assert window.minimumWidth() == MIN_WIDTH and window.minimumHeight() == MIN_HEIGHT
    assert MIN_WIDTH <= 1024 and MIN_HEIGHT <= 640
