from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_pyside_emit_canary():
    """PySide6 6.12 on Python 3.11 aborts after ~1000 emits (stack.md §8); we must survive 5000."""
    code = (
        "from PySide6.QtCore import QObject, Signal\n"
        "class O(QObject):\n    ping = Signal(int)\n"
        "o = O(); n = []\no.ping.connect(n.append)\n"
        "for i in range(5000): o.ping.emit(i)\n"
        "assert len(n) == 5000\nprint('survived', len(n))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "survived 5000" in out.stdout


def test_app_starts_and_exits_cleanly(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    home = tmp_path / "portable"
    out = subprocess.run([sys.executable, str(ROOT / "main.py"), "--data-dir", str(home), "--quit-after", "0.3"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    log = (home / "logs" / "studio.log").read_text()
    assert "clean exit" in log
    assert (home / "config" / "ui_state.json").exists()


def test_main_window_builds(qtbot, loop, core):
    """Once started, both tabs are the real ones (not the placeholders shown during the
    first paint), with the controls a user reaches for first."""
    from PySide6.QtWidgets import QLineEdit, QPlainTextEdit, QPushButton, QTextEdit

    from studio_core.services import SERVICES
    from studio_gui.gallery.saved_tab import SavedTab
    from studio_gui.generate.tab import GenerateTab
    from studio_gui.main_window import MainWindow

    w = MainWindow(core)
    qtbot.addWidget(w)
    w.show()
    loop.run_until_complete(w.started())
    _ = w.saved_tab  # otherwise built a moment later, when the loop is idle
    try:
        assert w.windowTitle() == "Cloud AI Art Studio"
        assert [w.tabs.tabText(i).replace("&", "") for i in range(w.tabs.count())] == ["Generate", "Saved"]
        gen, saved = w.tabs.widget(0), w.tabs.widget(1)
        assert isinstance(gen, GenerateTab) and isinstance(saved, SavedTab)
        assert isinstance(gen.generate_button, QPushButton) and gen.generate_button.text() == "Generate"
        assert gen.generate_button.isVisibleTo(w)
        prompt = gen.prompt_panel.prompt
        assert isinstance(prompt, (QPlainTextEdit, QTextEdit)) and not prompt.isReadOnly()
        prompt.setPlainText("a red health potion")
        assert gen.prompt_panel.text() == "a red health potion"
        assert set(w.services.cards) == {s.id for s in SERVICES}
        assert w.settings_button.isVisibleTo(w) and "Settings" in w.settings_button.text()
        assert isinstance(saved.filters.search, QLineEdit) and saved.index is core.index
    finally:
        w.close()
        loop.run_until_complete(w.tasks.cancel_all())


def test_error_presenter_shows_user_message(qtbot):
    from studio_core.errors import AuthenticationFailed
    from studio_gui.errors import present_error

    box = present_error(None, AuthenticationFailed("401 from api with key sk-abcdefgh12345678"))
    assert box is not None
    qtbot.addWidget(box)
    assert box.text() == AuthenticationFailed.user_message
    assert "sk-abcdefgh12345678" not in box.detailedText()


def test_error_presenter_ignores_cancel(qtbot):
    import asyncio

    from studio_gui.errors import present_error

    assert present_error(None, asyncio.CancelledError()) is None


def test_window_paints_before_the_index_opens_and_reopens_on_the_saved_tab(qtbot, loop, paths):
    from studio_core.app_core import StudioCore
    from studio_gui.main_window import MainWindow

    core = loop.run_until_complete(StudioCore.open(paths, open_index=False))
    try:
        w = MainWindow(core, ui={"tab": 1})
        qtbot.addWidget(w)
        w.show()
        # Shown with placeholders: neither tab nor the index exists yet.
        assert core.index is None and w._saved_tab is None and w._generate_tab is None
        assert w.tabs.currentIndex() == 1
        loop.run_until_complete(w.started())
        assert core.index is not None
        assert w.tabs.currentWidget() is w.saved_tab and w.saved_tab.index is core.index
        assert w.tabs.widget(0) is w.generate_tab
        w.close()
        loop.run_until_complete(w.tasks.cancel_all())
    finally:
        loop.run_until_complete(core.aclose())
