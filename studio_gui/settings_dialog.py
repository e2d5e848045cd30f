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
        self.core = core
        self._tasks = tasks
        # Only the page shown is built; each other is built when its tab is first chosen
        # (building all five at once held the GUI thread for ~150–200 ms on opening).
        self._factories: dict[int, Callable[..., QWidget]] = {}
        self.tabs = QTabWidget()
        current = 0
        for title, factory in PAGES:
            index = self.tabs.addTab(QWidget(), title)
            self._factories[index] = factory
            if page == title:
                current = index
        self.tabs.setCurrentIndex(current)
        self.page_at(current)
        self.tabs.currentChanged.connect(self.page_at)
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

    def page_at(self, index: int) -> QWidget | None:
        """The page of tab ``index``, built now if it was not yet."""
        factory = self._factories.pop(index, None)
        if factory is None:
            return self.tabs.widget(index)
        built = factory(self.core, tasks=self._tasks, parent=self)
        title = self.tabs.tabText(index)
        placeholder = self.tabs.widget(index)
        current = self.tabs.currentIndex()
        self.tabs.blockSignals(True)  # the swap must not re-enter here
        try:
            self.tabs.removeTab(index)
            self.tabs.insertTab(index, built, title)
            self.tabs.setCurrentIndex(current)
        finally:
            self.tabs.blockSignals(False)
        placeholder.deleteLater()
        return built

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
