"""TransparencyOption: the Generate tab's "Transparent background" checkbox.

When it is on, every request the tab builds goes through
:func:`studio_core.sprites.background.apply_background_plan` with the best method for the
request's service (the service itself, a removal node on the ComfyUI server, or the
studio's own key-colour removal), and a one-line note says which one that is. The
choice persists in ``Settings.transparent_background``.

For the in-app method, the core's session writes a transparent copy beside each saved
image; an image without a plain background gives a short message in the tab (from the
core's ``ImageProcessed`` event), not an error dialog.

ComfyUI's node list comes from the provider's cached ``/object_info`` (fetched by the
provider's own async client when missing); the plan is worked out in a thread.
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

log = logging.getLogger(__name__)

OBJECT_INFO_TIMEOUT_S = 20.0


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
    """Blocking (walks a big object_info): the plan for ``service``; a ComfyUI removal node
    counts only if the built-in graph can wire it."""
    if service != "comfyui" or not object_info:
        return choose_background_method(service)
    from studio_core.providers.comfy import workflow

    return choose_background_method(service, object_info=object_info,
                                    node_usable=lambda n: workflow.image_node_wiring(object_info, n) is not None)


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
        self._object_info: Mapping[str, Any] | None = None
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
        self._unsubscribe: Callable[[], None] | None = core.settings.subscribe(self._on_settings)
        self._processed = core.changes.subscribe(self._on_result, ImageProcessed)
        auto, unsubscribe = self._processed, self._unsubscribe
        # Once this widget is gone nothing may call back into it.
        self.destroyed.connect(lambda *_: _detach(auto, unsubscribe))
        self._on_settings(core.settings.current, initial=True)

    # -- state ---------------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        return self.checkbox.isChecked()

    def plan(self, service: str | None = None) -> BackgroundPlan:
        """The plan known now for ``service`` (ComfyUI: in-app until its node list is in)."""
        service = service or self._service
        return self._plans.get(service) or choose_background_method(service)

    def decorate(self, request: GenerationRequest) -> GenerationRequest:
        """The tab's prompt decorator: the background plan's options and words, when on."""
        if not self.enabled:
            return request
        if request.service == "comfyui" and request.option("workflow"):
            # A custom workflow is sent as it is: no node can be added, so key it out here.
            plan = choose_background_method("huggingface")
        else:
            plan = self.plan(request.service)
        if plan.prompt_suffix and plan.prompt_suffix in request.prompt:
            # A reused prompt already asks for the key colour.
            plan = BackgroundPlan(plan.method, plan.node, plan.options)
        return apply_background_plan(request, plan)

    def on_reuse(self, request: GenerationRequest) -> None:
        self.checkbox.setChecked(bool(request.option(METHOD_OPTION)))

    # -- events --------------------------------------------------------------------------
    def _on_toggled(self, checked: bool) -> None:
        self.core.settings.update(transparent_background=bool(checked))
        self.message.setVisible(False)
        self._update_note()
        if checked:
            self.refresh()

    def _on_settings(self, settings: Settings, *, initial: bool = False) -> None:
        if not shiboken6.isValid(self):
            return
        if self.checkbox.isChecked() != settings.transparent_background:
            self.checkbox.blockSignals(True)
            self.checkbox.setChecked(settings.transparent_background)
            self.checkbox.blockSignals(False)
        changed = settings.selected_service != self._service or settings.comfy_active_url != self._comfy_url
        if settings.comfy_active_url != self._comfy_url:
            self._object_info = None
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
        if not self.enabled or not shiboken6.isValid(self):
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
        info = None
        if service == "comfyui":
            self._checking = True
            self._update_note()
            try:
                info = await self._comfy_object_info()
            finally:
                self._checking = False
        plan = await asyncio.to_thread(plan_for, service, info)
        if not shiboken6.isValid(self):
            return
        self._plans[service] = plan
        self._update_note()

    async def _comfy_object_info(self) -> Mapping[str, Any] | None:
        if self._object_info is not None:
            return self._object_info
        try:
            provider = self.core.services.provider("comfyui")
            fetch = getattr(provider, "object_info", None)
            if fetch is None:
                return None
            info = await asyncio.wait_for(fetch(), OBJECT_INFO_TIMEOUT_S)
        except (StudioError, TimeoutError, OSError) as exc:
            log.info("no ComfyUI node list for the background plan: %s", exc)
            return None
        except Exception:
            log.exception("ComfyUI node list for the background plan")
            return None
        self._object_info = info if isinstance(info, Mapping) else None
        return self._object_info

    def _on_result(self, result: ImageProcessed) -> None:
        if not shiboken6.isValid(self) or result.ok:
            return
        self.message.setText(result.message)
        self.message.setVisible(True)
        if self._show_notice is not None:
            self._show_notice(result.message)


def _detach(auto: Any, unsubscribe: Callable[[], None] | None) -> None:
    auto.close()
    if unsubscribe is not None:
        try:
            unsubscribe()
        except ValueError:
            pass
