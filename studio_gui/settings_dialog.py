"""Settings: one page per area. Each area adds its page class to ``PAGES``.

A page is a QWidget taking ``(core, *, tasks, parent)``; it saves its own values
through ``core.settings`` / ``core.secrets`` when the user applies them.
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QTabWidget, QVBoxLayout, QWidget

from studio_core.app_core import StudioCore
from studio_gui.bridge import bridge_for
from studio_gui.comfy_settings.server_page import server_page
from studio_gui.gallery.storage_page import StoragePage
from studio_gui.services.fallback_page import FallbackPage
from studio_gui.services.provider_pages import ServicesPage
from studio_gui.servers.page import servers_page
from studio_gui.tasks import TaskOwner

# (title, factory) in display order.
PAGES: list[tuple[str, Callable[..., QWidget]]] = [
    ("Services", ServicesPage),
    ("ComfyUI server", server_page),
    ("ComfyUI servers", servers_page),
    ("Fallback", FallbackPage),
    ("Storage", StoragePage),
]


class SettingsDialog(QDialog):
    def __init__(self, core: StudioCore, *, tasks: TaskOwner, parent=None, page: str | None = None,
                 provider: str | None = None):
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.resize(720, 520)
        lay = QVBoxLayout(self)
        self.tabs = QTabWidget()
        for title, factory in PAGES:
            self.tabs.addTab(factory(core, tasks=tasks, parent=self), title)
            if page == title:
                self.tabs.setCurrentIndex(self.tabs.count() - 1)
        show_provider = getattr(self.tabs.currentWidget(), "show_provider", None)
        if provider and show_provider is not None:
            show_provider(provider)
        lay.addWidget(self.tabs)
        # Where the user just saved: a write that failed on disk is told here, not only logged.
        self.write_problem = QLabel()
        self.write_problem.setWordWrap(True)
        self.write_problem.setAccessibleName("Settings not saved")
        self.write_problem.setStyleSheet("color: #c0392b;")
        self.write_problem.hide()
        lay.addWidget(self.write_problem)
        bridge_for(core).settings_write_failed.connect(self._on_write_failed)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.finished.connect(self._save_pages_on_close)

    def _on_write_failed(self, message: str) -> None:
        page = self.tabs.tabText(self.tabs.currentIndex())
        self.write_problem.setText(f"{message} (on the {page} page). The change is in use until the studio "
                                   "closes; check that the settings folder is writable and has free space.")
        self.write_problem.show()

    def _save_pages_on_close(self, _result: int) -> None:
        for i in range(self.tabs.count()):
            hook = getattr(self.tabs.widget(i), "save_on_close", None)
            if hook is not None:
                hook()
