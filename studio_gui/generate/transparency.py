"""TransparencyOption: the Generate tab's "Transparent background" checkbox.

When it is on, the tab's order says ``transparent=True`` and the core's session applies
the best method for the request's service (the service itself, a removal node on the
ComfyUI server, or the studio's own key-colour removal); a one-line note says which one
that is. The choice persists in ``Settings.transparent_background``.

For the in-app method, the core's session writes a transparent copy beside each saved
image; an image without a plain background gives a short message in the tab (from the
core's ``ImageProcessed`` event), not an error dialog.

The plan comes from the core (``core.session.background_plan``: ComfyUI's node list, read
by the provider's own async client, worked through in a thread) and is kept here, so a
click never waits for a server.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, Mapping

import shiboken6
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from studio_core.errors import StudioError
from studio_core.models import GenerationRequest
from studio_core.services import service_info
from studio_core.settings import Settings
from studio_core.changes import ImageProcessed
from studio_core.sprites.background_plan import (  # numpy-free: this runs at start-up
    METHOD_OPTION,
    BackgroundMethod,
    BackgroundPlan,
    apply_background_plan,
    choose_background_method,
)
from studio_gui.bridge import bridge_for

log = logging.getLogger(__name__)


def service_name(service: str) -> str:
    try:
        return service_info(service).name.replace(" (local)", "")
    except StudioError:
        return service


def note_text(plan: BackgroundPlan, service: str, *, checking: bool = False) -> str:
    """The one line under the checkbox: who makes the background transparent."""
    if plan.method is BackgroundMethod.provider:
        return f"{service_name(service)} makes it transparent itself."
    if plan.method is BackgroundMethod.comfy_node:
        return f"ComfyUI node {plan.node} on your server removes the background."
    text = "The studio removes a plain key-colour background after generation."
    if service == "comfyui":
        text += (" Looking for a background-removal node on your ComfyUI server…" if checking
                 else " No background-removal node found on your ComfyUI server.")
    return text


def plan_for(service: str, object_info: Mapping[str, Any] | None = None) -> BackgroundPlan:
    """Blocking: the core's plan for ``service`` (kept for callers outside the tab)."""
    from studio_core.session import background_plan_for

    return background_plan_for(service, object_info=object_info)


class TransparencyOption(QWidget):
    def __init__(self, core: Any, *, tasks: Any, parent: QWidget | None = None,
                 show_notice: Callable[[str], None] | None = None):
        super().__init__(parent)
        self.setObjectName("TransparencyOption")
        self.core = core
        self.tasks = tasks
        self._show_notice = show_notice
        self._service = ""
        self._comfy_url = ""
        self._plans: dict[str, BackgroundPlan] = {}
        self._checking = False
        self._refresh_task: asyncio.Task | None = None

        self.checkbox = QCheckBox("Transparent background")
        self.checkbox.setAccessibleName("Transparent background")
        self.checkbox.setToolTip("Make sprites with a transparent background (an RGBA PNG)")
        self.note = QLabel()
        self.note.setObjectName("TransparencyNote")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: palette(mid);")
        self.message = QLabel()
        self.message.setObjectName("TransparencyMessage")
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #b9770e;")
        self.message.setVisible(False)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.checkbox)
        row.addWidget(self.note, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(9, 0, 9, 0)
        lay.setSpacing(2)
        lay.addLayout(row)
        lay.addWidget(self.message)

        self.checkbox.setChecked(bool(core.settings.current.transparent_background))
        self.checkbox.toggled.connect(self._on_toggled)
        bridge = bridge_for(core)
        bridge.settings_changed.connect(self._on_settings_changed)
        bridge.image_processed.connect(self._on_result)
        self._on_settings(core.settings.current, initial=True)

    # -- state ---------------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        return self.checkbox.isChecked()

    def plan(self, service: str | None = None) -> BackgroundPlan:
        """The plan known now for ``service`` (ComfyUI: in-app until its node list is in)."""
        service = service or self._service
        return self._plans.get(service) or choose_background_method(service)

    def plan_for(self, request: GenerationRequest) -> BackgroundPlan:
        """The plan the order is expanded with: the one known for the service, or for a
        custom ComfyUI workflow (sent as it is, so no node can be added) the app's own."""
        if request.workflow is not None:
            from studio_core.session import background_plan_for

            return background_plan_for(request.service, custom_workflow=True)
        return self.plan(request.service)

    def decorate(self, request: GenerationRequest) -> GenerationRequest:
        """``request`` with the background plan applied when the option is on (what the
        core's session does with a transparent order)."""
        if not self.enabled:
            return request
        from studio_core.session import with_background

        return with_background(request, self.plan_for(request))

    def on_reuse(self, request: GenerationRequest) -> None:
        self.checkbox.setChecked(bool(request.option(METHOD_OPTION)))

    # -- events --------------------------------------------------------------------------
    def _on_toggled(self, checked: bool) -> None:
        self.core.settings.update(transparent_background=bool(checked))
        self.message.setVisible(False)
        self._update_note()
        if checked:
            self.refresh()

    def _on_settings_changed(self, settings: Settings, _changed: object) -> None:
        self._on_settings(settings)

    def _on_settings(self, settings: Settings, *, initial: bool = False) -> None:
        if self.checkbox.isChecked() != settings.transparent_background:
            self.checkbox.blockSignals(True)
            self.checkbox.setChecked(settings.transparent_background)
            self.checkbox.blockSignals(False)
        changed = settings.selected_service != self._service or settings.comfy_active_url != self._comfy_url
        if settings.comfy_active_url != self._comfy_url:
            self._plans.pop("comfyui", None)
        self._service, self._comfy_url = settings.selected_service, settings.comfy_active_url
        self._update_note()
        if changed and not initial:
            self.refresh()

    def _update_note(self) -> None:
        plan = self.plan()
        self.note.setText(note_text(plan, self._service, checking=self._checking))
        self.note.setToolTip("A transparent copy is saved beside each image; the original is kept."
                             if plan.method is BackgroundMethod.in_app else "")
        self.note.setVisible(self.enabled)

    def refresh(self) -> asyncio.Task | None:
        """Work out the plan for the selected service again (ComfyUI: ask its node list).
        Runs only while the option is on, so a closed server is not asked for nothing."""
        if not self.enabled:
            return None
        if self._refresh_task is not None and not self._refresh_task.done():
            self._refresh_task.cancel()
        self._refresh_task = self.tasks.spawn(self._refresh(self._service), name="transparency plan")
        return self._refresh_task

    async def started(self) -> None:
        task = self.refresh()
        if task is not None:
            await asyncio.wait({task})

    async def _refresh(self, service: str) -> None:
        checking = service == "comfyui"
        if checking:
            self._checking = True
            self._update_note()
        try:
            plan = await self.core.session.background_plan(GenerationRequest("", service=service))
        finally:
            self._checking = False
        # Still needed: the option may be deleted while the server is asked (the task's
        # owner is the window, not this widget).
        if not shiboken6.isValid(self):
            return
        self._plans[service] = plan
        self._update_note()

    def _on_result(self, result: ImageProcessed) -> None:
        if result.ok:
            return
        self.message.setText(result.message)
        self.message.setVisible(True)
        if self._show_notice is not None:
            self._show_notice(result.message)
