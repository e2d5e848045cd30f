"""SettingsSlot: the per-service settings block of the Generate tab.

ComfyUI gets the hardware-aware ComfySettingsPanel (studio_gui.comfy_settings) when that
part is installed and builds; every other service, or ComfyUI without it, gets the
BasicSettings fields. Both offer ``request_fields()``, ``apply_request()`` and ``changed``.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QSizePolicy, QStackedWidget, QToolButton, QVBoxLayout, QWidget

from studio_core.app_core import StudioCore
from studio_core.errors import StudioError
from studio_core.services import service_info
from studio_gui.generate.basic_settings import BasicSettings
from studio_gui.tasks import TaskOwner

log = logging.getLogger(__name__)


class SettingsSlot(QWidget):
    changed = Signal()

    def __init__(self, core: StudioCore, *, tasks: TaskOwner, parent: QWidget | None = None,
                 defer_comfy: bool = False):
        """``defer_comfy``: until :meth:`build_deferred` runs, ComfyUI shows a one-line
        "loading" page instead of its panel (the window's first paint; importing and
        building the panel is a good part of the start-up)."""
        super().__init__(parent)
        self.core = core
        self.tasks = tasks
        self.started = False
        self._comfy_panel: QWidget | None = None
        self._comfy_tried = False
        self._defer_comfy = defer_comfy
        self._loading: QLabel | None = None

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.toggle = QToolButton()
        self.toggle.setCheckable(True)
        self.toggle.setChecked(True)
        self.toggle.setAutoRaise(True)
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setArrowType(Qt.ArrowType.DownArrow)
        self.toggle.toggled.connect(self._on_toggled)
        s = core.settings.current
        self.basic = BasicSettings(width=s.width, height=s.height, seed=s.seed)
        self.basic.changed.connect(self.changed)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.basic)
        lay.addWidget(self.toggle)
        lay.addWidget(self.stack)

    @property
    def panel(self) -> Any:
        return self.stack.currentWidget()

    @property
    def comfy_panel(self) -> QWidget | None:
        return self._comfy_panel

    def set_service(self, service: str) -> None:
        panel: QWidget = self.basic
        if service == "comfyui" and self._defer_comfy:
            panel = self._loading_page()
        elif service == "comfyui":
            panel = self._comfy() or self.basic
        self._show_page(panel)
        try:
            name = service_info(service).name
        except StudioError:
            name = service
        self.toggle.setText("ComfyUI settings" if service == "comfyui" else f"Settings for {name}")

    def _show_page(self, panel: QWidget) -> None:
        # A QStackedWidget is as wide as its widest page; the ComfyUI panel (~575 px) then
        # widened the column for every cloud service too and cut its fields off on the right.
        # Hidden pages are sized as "ignored" so the slot is as wide as what it shows.
        for i in range(self.stack.count()):
            page = self.stack.widget(i)
            ignored = QSizePolicy.Policy.Ignored
            page.setSizePolicy(QSizePolicy.Policy.Preferred if page is panel else ignored,
                               QSizePolicy.Policy.Preferred if page is panel else ignored)
        self.stack.setCurrentWidget(panel)
        self.stack.updateGeometry()

    @property
    def comfy_pending(self) -> bool:
        return self._defer_comfy

    def build_deferred(self) -> QWidget | None:
        """Build the ComfyUI panel now if ComfyUI is chosen (otherwise on first use)."""
        if not self._defer_comfy:
            return self._comfy_panel
        self._defer_comfy = False
        if self.stack.currentWidget() is self._loading:
            self.set_service(self.core.settings.current.selected_service)
        if self._loading is not None:
            self.stack.removeWidget(self._loading)
            self._loading.deleteLater()
            self._loading = None
        return self._comfy_panel

    def _loading_page(self) -> QWidget:
        if self._loading is None:
            self._loading = QLabel("Loading the ComfyUI settings…")
            self._loading.setEnabled(False)
            self._loading.setMinimumHeight(80)
            self._loading.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
            self.stack.addWidget(self._loading)
        return self._loading

    async def start(self) -> None:
        self.started = True
        hook = getattr(self._comfy_panel, "started", None)
        if hook is not None:
            await hook()

    def _comfy(self) -> QWidget | None:
        """The ComfyUI panel, built on first use. Any failure to import or build it falls
        back to the basic fields, logged: a broken optional panel must not take the
        Generate tab down with it."""
        if self._comfy_tried:
            return self._comfy_panel
        self._comfy_tried = True
        try:
            from studio_gui.comfy_settings.panel import ComfySettingsPanel
        except ModuleNotFoundError as exc:
            if not (exc.name or "").startswith("studio_gui.comfy_settings"):
                log.exception("ComfyUI settings panel could not be imported")
            return None
        except Exception:
            log.exception("ComfyUI settings panel could not be imported")
            return None
        try:
            panel = ComfySettingsPanel(self.core, tasks=self.tasks, parent=self)
        except Exception:
            log.exception("ComfyUI settings panel could not be built")
            return None
        changed = getattr(panel, "changed", None)
        if changed is not None:
            changed.connect(self.changed)
        self.stack.addWidget(panel)
        self._comfy_panel = panel
        hook = getattr(panel, "started", None)
        if self.started and hook is not None:
            self.tasks.spawn(hook(), name="comfy settings start")
        return panel

    def _on_toggled(self, on: bool) -> None:
        self.stack.setVisible(on)
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)
