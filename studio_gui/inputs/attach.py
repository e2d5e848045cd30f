"""Hooks the Image inputs section into the Generate tab.

- the section sits with the tab's other sections; dropping image files anywhere on the tab
  asks what they are for;
- the request the tab builds carries ``section.inputs()``, and the enabled LoRAs' trigger
  words end its prompt;
- before Generate, what the chosen service or server does not take is said in the section
  (and Generate is off): ComfyUI through its object_info, a cloud model through the catalog;
- "Reuse settings" brings the inputs back when their images are still in the input store.

The server's node list and the cloud catalog load off the GUI thread and are kept here.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import shiboken6
from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QLabel

from studio_core.errors import StudioError
from studio_core.input_support import has_inputs, inputs_problem
from studio_core.inputs import ControlImage, ImageInputs
from studio_core.models import GenerationRequest
from studio_gui.bridge import bridge_for
from studio_gui.inputs.images import dropped_files
from studio_gui.inputs.lora_picker import with_trigger_words
from studio_gui.inputs.section import ImageInputsSection

if TYPE_CHECKING:
    from studio_gui.generate.tab import GenerateTab

log = logging.getLogger(__name__)

OBJECT_INFO_TIMEOUT_S = 20.0
# Stands in for a frame's pose image when asking whether the server could take one: the
# skeletons are drawn only on Generate, but whether a pose ControlNet exists is known now.
PROBE_DIGEST = "0" * 64


class _Drops(QObject):
    """Image files dropped anywhere on the tab go to the section (children that take drops, like
    the prompt box or the character slot, keep theirs)."""

    def __init__(self, section: ImageInputsSection, parent: QObject):
        super().__init__(parent)
        self.section = section

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove) and dropped_files(event.mimeData()):
            event.acceptProposedAction()
            return True
        if kind == QEvent.Type.Drop and dropped_files(event.mimeData()):
            event.acceptProposedAction()
            self.section.receive(dropped_files(event.mimeData()))
            return True
        return False


class ImageInputsHookup:
    def __init__(self, tab: GenerateTab):
        self.tab = tab
        self.object_info: Mapping[str, Any] | None = None
        self.catalog: Any = None
        self.section = ImageInputsSection(tab.core, tasks=tab.tasks, target_size=self.target_size, parent=tab)
        self.problem_label = QLabel("")
        self.problem_label.setWordWrap(True)
        self.problem_label.setStyleSheet("color: #c0392b;")
        self.problem_label.setAccessibleName("Why the image inputs can't be used")
        self.problem_label.hide()
        self.section.body.layout().addWidget(self.problem_label)
        self.section.character_target = self.character_target
        self._shown_problem = ""
        tab.add_section(self.section)
        tab.setAcceptDrops(True)
        self.drops = _Drops(self.section, tab)
        tab.installEventFilter(self.drops)
        tab.add_prompt_decorator(self.decorate)
        tab.add_problem_source(self.problem)
        tab.on_apply_request(self.on_reuse)
        tab.on_started(self.started)
        self.section.changed.connect(tab._update_buttons)
        bridge_for(tab.core).settings_changed.connect(self._on_settings_changed)
        self.section.set_comfy(tab.service == "comfyui")

    # -- the request ----------------------------------------------------------------------
    def target_size(self) -> tuple[int, int]:
        try:
            fields = self.tab.settings_panel.request_fields()
            return int(fields.get("width") or 1024), int(fields.get("height") or 1024)
        except Exception:  # settings mid-edit: the usual size is close enough for the init check
            return 1024, 1024

    def decorate(self, request: GenerationRequest) -> GenerationRequest:
        inputs = self.section.inputs()
        words = self.section.trigger_words()
        changes: dict[str, Any] = {}
        if inputs != request.inputs:
            changes["inputs"] = inputs
        if words:
            prompt = with_trigger_words(request.prompt, words)
            if prompt != request.prompt:
                changes["prompt"] = prompt
        return request.replace(**changes) if changes else request

    def character_target(self) -> Any:
        panel = self.tab.frames_panel
        return panel if panel is not None and panel.mode() == "animation" else None

    # -- before Generate ----------------------------------------------------------------------
    def probe(self) -> GenerationRequest:
        """The request as the service will see it, frames' character and pose included."""
        request = self.tab.build_request()
        panel = self.tab.frames_panel
        extra = panel.animation_inputs() if panel is not None else {}
        inputs = request.inputs
        if extra.get("character") is not None:
            inputs = ImageInputs(init=inputs.init, mask=inputs.mask, references=(extra["character"],) + inputs.references,
                                 controls=inputs.controls, loras=inputs.loras)
        if extra.get("pose_control"):
            inputs = ImageInputs(init=inputs.init, mask=inputs.mask, references=inputs.references,
                                 controls=inputs.controls + (ControlImage(PROBE_DIGEST, "pose"),), loras=inputs.loras)
        return request.replace(inputs=inputs)

    def problem(self) -> str:
        if not shiboken6.isValid(self.section):  # the hookup is a plain object: it can outlive its section
            return ""
        try:
            request = self.probe()
        except (StudioError, ValueError, TypeError):
            return ""  # the fields' own checks say what is wrong
        text = ""
        if request.service == "comfyui":
            text = self.section.loras.problem()
        if not text and has_inputs(request.inputs):
            text = inputs_problem(request, object_info=self.object_info, catalog=self.catalog)
        if text != self._shown_problem:
            self._shown_problem = text
            self.problem_label.setText(text)
            self.problem_label.setVisible(bool(text))
            if text:
                self.section.set_expanded(True)
        return text

    # -- loading --------------------------------------------------------------------------
    async def started(self) -> None:
        await asyncio.gather(self.load_catalog(), self.load_object_info())

    async def load_catalog(self) -> None:
        from studio_core.providers.cloud import catalog

        try:
            cat = await asyncio.to_thread(catalog.load)
        except Exception:  # the cloud services say so on their own cards
            log.exception("cloud catalog not loaded for the image inputs check")
            return
        self.set_catalog(cat)

    def set_catalog(self, cat: Any) -> None:
        self.catalog = cat
        if shiboken6.isValid(self.tab):  # reached after the catalog's await
            self.tab._update_buttons()

    async def load_object_info(self) -> None:
        if self.tab.service != "comfyui":
            return
        try:
            provider = self.tab.core.services.provider("comfyui")
            info = await asyncio.wait_for(provider.object_info(), OBJECT_INFO_TIMEOUT_S)
        except (StudioError, TimeoutError, OSError, AttributeError) as exc:
            log.info("no ComfyUI node list for the image inputs: %s", exc)
            if shiboken6.isValid(self.section):  # after the await the section may be gone
                self.section.loras.set_available(None, why=getattr(exc, "user_message", "") or
                                                 "The LoRA list appears once the ComfyUI server answers.")
            return
        self.set_object_info(info)

    def set_object_info(self, info: Mapping[str, Any] | None) -> None:
        from studio_core.providers.comfy import object_info as oi

        self.object_info = info
        if not shiboken6.isValid(self.section):  # reached after the node list's await
            return
        self.section.loras.set_available(oi.choices(info, "LoraLoader", "lora_name") if info else None)
        self.tab._update_buttons()

    def _on_settings_changed(self, settings: Any, changed: Any = frozenset()) -> None:
        if not shiboken6.isValid(self.section):  # a plain object's slot: Qt keeps it after the section dies
            return
        comfy = settings.selected_service == "comfyui"
        if comfy != self.section.comfy:
            self.section.set_comfy(comfy)
        keys = set(changed or ())
        if comfy and (self.object_info is None or keys & {"comfy_url", "comfy_servers", "selected_service"}):
            self.tab.tasks.spawn(self.load_object_info(), name="object info for image inputs")

    # -- Reuse settings ---------------------------------------------------------------------
    def on_reuse(self, request: GenerationRequest) -> None:
        if has_inputs(request.inputs) or request.inputs.loras:
            self.tab.tasks.spawn(self._reuse(request), name="restore image inputs")
        else:
            self.section.clear()

    async def _reuse(self, request: GenerationRequest) -> None:
        from studio_core.storage.images import reuse_request

        reused = await asyncio.to_thread(reuse_request, request, self.section.store)
        if shiboken6.isValid(self.section):  # after the await the section may be gone
            await self.section.restore(reused.request.inputs, reused.notice)

    async def send(self, path: Path, role: str) -> bool:
        """The gallery's "Edit this…" / "Use as reference": the image straight into its role (a
        reference becomes the animation's character while the Frames panel makes one)."""
        if role == "reference" and self.character_target() is not None:
            role = "character"
        return await self.section.add(path, role)


def attach_image_inputs(tab: GenerateTab) -> ImageInputsHookup | None:
    try:
        return ImageInputsHookup(tab)
    except Exception:
        log.exception("image inputs not available")
        return None
