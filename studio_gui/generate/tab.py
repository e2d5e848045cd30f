"""Generate tab (the seed's SpriteGenerator): prompt, settings, Generate/Cancel, progress,
queue, and this session's results.

A click builds a :class:`~studio_core.session.GenerationOrder` (request, frames, prompt
style, transparent background) and hands it to ``core.session``, which expands and queues
it exactly as for a script. This widget only turns the core's events (through the core's
bridge) into pixels. Decoding (previews, thumbnails) runs in threads; pixmaps are built
here, on the GUI thread.
"""

from __future__ import annotations

import asyncio
import dataclasses
import html
import logging
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

import shiboken6
from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from studio_core.app_core import StudioCore
from studio_core.changes import JobPreview
from studio_core.errors import GenerationFailed, StudioError
from studio_core.frame_inputs import needs_pose_images, with_frame_inputs
from studio_core.frame_plans import FramePlan, FrameSetSpec
from studio_core.jobs import JobSaved, JobSaveFailed, JobState
from studio_core.models import GenerationRequest, JobImage, JobProgress, ProviderStatus, ServiceState
from studio_core.services import service_info
from studio_core.session import GenerationOrder
from studio_core.settings import Settings
from studio_gui.bridge import bridge_for
from studio_gui.errors import present_error, user_text
from studio_gui.generate.error_area import ErrorArea
from studio_gui.generate.progress_panel import ProgressPanel
from studio_gui.generate.prompt_panel import PromptPanel, load_suggestions
from studio_gui.generate.queue_view import QueueView
from studio_gui.generate.settings_slot import SettingsSlot
from studio_gui.tasks import TaskOwner

log = logging.getLogger(__name__)

PromptDecorator = Callable[[GenerationRequest], GenerationRequest]
_REQUEST_FIELDS = {f.name for f in dataclasses.fields(GenerationRequest)}
# Known states in which a job could only fail; "unknown"/"checking" leave Generate on.
_BLOCKING = (ServiceState.unreachable, ServiceState.needs_key, ServiceState.error)
# The tab's secondary parts (see GenerateTab.__init__'s ``defer_sections``).
_PARTS = ("batch_button", "image_inputs", "style_picker", "transparency", "frames_panel")


class GenerateTab(QWidget):
    def __init__(self, core: StudioCore, *, tasks: TaskOwner, parent: QWidget | None = None,
                 extensions: bool = True, defer_sections: bool = False):
        """``defer_sections``: the ComfyUI settings panel and the secondary parts (batch
        button, image inputs, style picker, transparency, frames) are built after the tab
        first paints, one per event-loop turn, so the prompt and Generate show first (the
        main window's start-up; ComfyUI's settings say "Loading…" for that moment).
        Anything that needs them (a click, Reuse settings, an accessor) builds the rest
        at once, so nothing acts on a half-built tab."""
        super().__init__(parent)
        self._parts: dict[str, Any] = dict.fromkeys(_PARTS)
        self._defer = defer_sections
        self._pending_parts: list[tuple[str, Callable[[], Any]]] = []
        self._building_part = False
        self._slices_running = False
        self.core = core
        self.tasks = tasks
        self._decorators: list[PromptDecorator] = []
        self._current_job: str | None = None
        self._started = False
        self._apply_hooks: list[Callable[[GenerationRequest], None]] = []
        self._start_hooks: list[Callable[[], Awaitable[Any]]] = []
        self._problem_sources: list[Callable[[], str]] = []
        self._preparing: asyncio.Task | None = None  # pose images being drawn for a click
        self._created_at = time.time()
        self._results_model: Any = None
        self._results_view: Any = None
        self._build()
        # Bound methods only: Qt drops each connection when this tab is deleted.
        self.bridge = bridge_for(core)
        self._connect_bridge()
        self.service_events = self.bridge  # the selector's latest status of each service
        self.bridge.status_updated.connect(self._on_service_status)
        self.bridge.settings_changed.connect(self._on_settings_changed)
        self._on_settings_changed(core.settings.current)
        if defer_sections:
            # First, so that every later part (and its first button update) finds the
            # settings panel whose fields make up the request.
            self._pending_parts.append(("settings_panel", self.settings_slot.build_deferred))
        self._pending_parts.append(("batch_button", self._attach_batch_button))
        if extensions:
            from studio_gui.generate.extensions import part_builders

            self._pending_parts += part_builders(self)
        if defer_sections:
            self._pending_parts.append(("results", lambda: self._build_results()[0]))
        if defer_sections:
            self.generate_button.installEventFilter(self)
        else:
            self.finish_building()
        self._refresh_queue()
        self._update_buttons()

    # -- the secondary parts, built after the first paint ---------------------------------
    # Properties, so that code outside the tab never sees a part missing only because it
    # has not been built yet: asking for one builds whatever is still pending.
    style_picker = property(lambda self: self._part("style_picker"))
    transparency = property(lambda self: self._part("transparency"))
    frames_panel = property(lambda self: self._part("frames_panel"))
    image_inputs = property(lambda self: self._part("image_inputs"))
    batch_button = property(lambda self: self._part("batch_button"))

    def _part(self, name: str) -> Any:
        # Inside a part's own build (its first layout and button update) the others are
        # asked for as they are; building them there would undo the slicing.
        if self._pending_parts and not self._building_part:
            self.finish_building()
        return self._parts[name]

    @property
    def parts_pending(self) -> bool:
        return bool(self._pending_parts)

    def finish_building(self) -> None:
        """Build every part still pending, now."""
        while self._pending_parts:
            self._build_next_part()

    def _build_next_part(self) -> None:
        name, build = self._pending_parts.pop(0)
        self._building_part = True
        try:
            self._parts[name] = build()
            self._update_buttons()
        finally:
            self._building_part = False

    def build_parts_soon(self) -> None:
        """Start building the pending parts, one per event-loop turn (idempotent)."""
        if self._pending_parts and not self._slices_running:
            self._slices_running = True
            QTimer.singleShot(0, self._build_parts_in_slices)

    def _build_parts_in_slices(self) -> None:
        # One part per event-loop turn: paints and input get in between, so the growing
        # tab never holds the GUI thread for the whole set (~100 ms here).
        if not shiboken6.isValid(self):  # a queued call may outlive the tab
            return
        if self._pending_parts:
            self._build_next_part()
        if self._pending_parts:
            QTimer.singleShot(0, self._build_parts_in_slices)
        else:
            self._slices_running = False

    def eventFilter(self, obj, event) -> bool:
        if obj is self.generate_button and event.type() == QEvent.Type.Paint:
            obj.removeEventFilter(self)
            self.build_parts_soon()
        return False

    def _attach_batch_button(self) -> QPushButton:
        from studio_gui.batch.dialog import attach_batch_button

        return attach_batch_button(self, self._batch_slot)

    # -- layout -----------------------------------------------------------------------
    def _build(self) -> None:
        self.prompt_panel = PromptPanel()
        self.prompt_panel.changed.connect(self._update_buttons)
        # Extra prompt controls (sprite styles, asset types) are added here by other parts.
        self.extras_layout = QHBoxLayout()
        self.extras_layout.setContentsMargins(0, 0, 0, 0)

        self.settings_slot = SettingsSlot(self.core, tasks=self.tasks, defer_comfy=self._defer)
        self.settings_slot.changed.connect(self._update_buttons)
        self.basic_settings = self.settings_slot.basic
        self.settings_toggle = self.settings_slot.toggle

        self.error_area = ErrorArea()
        # Why Generate is off when the chosen service is known not to work (the details are
        # on its card and in its settings; this line says what to do).
        self.service_note = QLabel()
        self.service_note.setWordWrap(True)
        self.service_note.setAccessibleName("Why Generate is off")
        self.service_note.setStyleSheet("color: #b9770e;")
        self.service_note.setTextFormat(Qt.TextFormat.RichText)
        self.service_note.linkActivated.connect(self._on_service_note_link)
        self.service_note.setVisible(False)

        self.generate_button = QPushButton("Generate")
        self.generate_button.setDefault(True)
        self.generate_button.setMinimumHeight(34)
        self.generate_button.setAccessibleName("Generate")
        self.generate_button.clicked.connect(self.generate)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setMinimumHeight(34)
        self.cancel_button.setAccessibleName("Cancel generation")
        self.cancel_button.clicked.connect(self.cancel_current)
        buttons = QHBoxLayout()
        buttons.addWidget(self.generate_button, 2)
        buttons.addWidget(self.cancel_button, 1)
        self._batch_slot = QHBoxLayout()  # the Batch… button, built with the other parts
        self._batch_slot.setContentsMargins(0, 0, 0, 0)
        buttons.addLayout(self._batch_slot, 1)
        buttons.addStretch(1)

        self.progress = ProgressPanel()
        self.queue_view = QueueView()
        self.queue_view.cancel_requested.connect(self.cancel_job)

        column = QWidget()
        col = QVBoxLayout(column)
        col.addWidget(self.prompt_panel)
        col.addLayout(self.extras_layout)
        col.addWidget(self.settings_slot)
        self.sections_layout = QVBoxLayout()
        self.sections_layout.setContentsMargins(0, 0, 0, 0)
        col.addLayout(self.sections_layout)
        col.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(column)
        # A horizontal bar only when the column is narrower than its widest row (the ComfyUI
        # panel at 1024 px): cut-off fields with no way to reach them were worse.
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.column_scroll = scroll
        # Errors, the buttons and the progress line stay pinned below the scrolling
        # settings, so Generate and what it is doing never scroll out of sight.
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 6)
        ll.addWidget(scroll, 1)
        pinned = QVBoxLayout()
        pinned.setContentsMargins(9, 0, 9, 0)
        pinned.addWidget(self.error_area)
        pinned.addWidget(self.service_note)
        pinned.addLayout(buttons)
        pinned.addWidget(self.progress)
        ll.addLayout(pinned)

        now = QHBoxLayout()
        now.addWidget(self.progress.preview, 0, Qt.AlignmentFlag.AlignTop)
        now.addWidget(self.queue_view, 1)
        results = QWidget()
        rl = QVBoxLayout(results)
        self._results_layout = rl
        rl.addLayout(now)
        rl.addWidget(QLabel("<b>THIS SESSION</b>"))
        # Holds the session grid's place until it is built (see _build_results).
        self._results_placeholder = QWidget()
        rl.addWidget(self._results_placeholder, 1)
        self.results_hint = QLabel("Finished sprites appear here. Drag one into Godot, Unity, Aseprite or a folder.")
        self.results_hint.setWordWrap(True)
        rl.addWidget(self.results_hint)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(results)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setSizes([620, 460])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.splitter)

        ctx = Qt.ShortcutContext.WidgetWithChildrenShortcut
        for keys in ("Ctrl+Return", "Ctrl+Enter"):
            QShortcut(QKeySequence(keys), self, self.generate, context=ctx)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.cancel_current, context=ctx)
        self.setFocusProxy(self.prompt_panel.prompt)
        if not self._defer:
            self._build_results()

    # -- this session's grid ------------------------------------------------------------
    # Built after the first paint when the tab defers its parts: the gallery's model, view,
    # delegate and menus (and the index modules under them) are ~30 ms of imports and Qt
    # types the prompt and Generate do not need. Asking for either builds it at once.
    results_model = property(lambda self: self._build_results()[0])
    results_view = property(lambda self: self._build_results()[1])

    def _build_results(self) -> tuple[Any, Any]:
        if self._results_model is None:
            from studio_gui.gallery.session import connect_session_actions, session_grid

            # The Saved tab's model, delegate and view over this session's images: it fills
            # itself from the gallery index (ImageIndexed on the bridge), so both grids stay
            # alike. From the tab's creation on, so nothing saved before the grid is missed.
            model, view = session_grid(self.core, tasks=self.tasks, since_ts=self._created_at, parent=self)
            self._results_model, self._results_view = model, view
            connect_session_actions(view, self.core, tasks=self.tasks, reuse=self.apply_request,
                                    report=self._show_action_error, send=self.send_image)
            self._results_layout.replaceWidget(self._results_placeholder, view)
            self._results_placeholder.deleteLater()
            self._results_placeholder = None
            if self._started:  # started() already ran: show what was saved meanwhile
                self._show_session_results()
        return self._results_model, self._results_view

    def _show_session_results(self) -> None:
        model = self._results_model
        if model.image_index is None:  # built before the index had opened
            model.image_index = self.core.index
        if model.image_index is not None:
            model.set_query(model.query)

    def _connect_bridge(self) -> None:
        b = self.bridge
        b.queue_changed.connect(self._refresh_queue)
        b.job_queued.connect(self._on_job_queued)
        b.job_started.connect(self._on_job_started)
        b.job_progress.connect(self._on_job_progress)
        b.job_preview.connect(self._on_job_preview)
        b.job_notice.connect(self._on_job_notice)
        b.job_image.connect(self._on_job_image)
        b.job_saved.connect(self._on_job_saved)
        b.job_save_failed.connect(self._on_job_save_failed)
        b.job_finished.connect(self._on_job_finished)
        b.job_failed.connect(self._on_job_failed)
        b.job_cancelled.connect(self._on_job_cancelled)

    # -- hooks for other parts ----------------------------------------------------------
    def add_prompt_decorator(self, fn: PromptDecorator) -> Callable[[], None]:
        """``fn(request) -> request`` runs on the request :meth:`build_request` makes, before
        the core expands it (prompt styles and the transparent background are part of the
        order instead, so the core applies them). Returns the remover."""
        self._decorators.append(fn)
        return lambda: self._decorators.remove(fn) if fn in self._decorators else None

    def add_prompt_widget(self, widget: QWidget) -> None:
        """A control shown under the prompt (style and asset-type pickers)."""
        self.extras_layout.addWidget(widget)

    def add_results_banner(self, widget: QWidget) -> None:
        """Show ``widget`` above the session grid, where it stays in view while the settings scroll."""
        self._results_layout.insertWidget(1, widget)

    def add_section(self, widget: QWidget) -> None:
        """A block shown under the service settings (frames and variants)."""
        self.sections_layout.addWidget(widget)

    def add_problem_source(self, fn: Callable[[], str]) -> None:
        """``fn()`` says why Generate can't run ("" when it can): image inputs the chosen
        service does not take, a LoRA missing on the server."""
        self._problem_sources.append(fn)

    def on_apply_request(self, fn: Callable[[GenerationRequest], None]) -> None:
        """``fn(request)`` runs after :meth:`apply_request` filled the fields."""
        self._apply_hooks.append(fn)

    def on_started(self, fn: Callable[[], Awaitable[Any]]) -> None:
        """An async start-up step (loading data off the GUI thread) run by :meth:`started`."""
        self._start_hooks.append(fn)
        if self._started:
            self.tasks.spawn(fn(), name="generate tab start hook")

    def apply_request(self, request: GenerationRequest) -> None:
        """Fill the fields from a request (the gallery's "Reuse settings")."""
        self.finish_building()  # the parts restore their own share (inputs, frames) through hooks
        if request.service != self.service:
            try:
                service_info(request.service)
                self.core.settings.update(selected_service=request.service)
            except StudioError:
                log.info("reuse: unknown service %r, keeping %r", request.service, self.service)
        self.prompt_panel.set_texts(request.prompt, request.negative_prompt)
        panel = self.settings_panel
        apply = getattr(panel, "apply_request", None)
        if apply is not None:
            apply(request)
        for hook in list(self._apply_hooks):
            hook(request)
        self.prompt_panel.prompt.setFocus()

    def send_image(self, path: Any, role: str) -> None:
        """An image from a grid as the init image ("init") or a reference ("reference")."""
        if self.image_inputs is not None:
            self.tasks.spawn(self.image_inputs.send(Path(path), role), name="send image to inputs")

    # -- state ------------------------------------------------------------------------
    @property
    def service(self) -> str:
        return self.core.settings.current.selected_service

    @property
    def settings_panel(self) -> Any:
        if self.settings_slot.comfy_pending and not self._building_part:
            self.finish_building()  # its fields make the request: the real panel, never the loading line
        return self.settings_slot.panel

    def service_problem(self) -> str:
        """Why the selected service can't take a job, from its latest check; "" when it can or is unchecked."""
        status = self.service_events.last.get(self.service)
        if not isinstance(status, ProviderStatus) or status.state not in _BLOCKING:
            return ""
        name = self._service_name()
        what = "can't be reached" if status.state == ServiceState.unreachable else "is not set up yet"
        return f"{name} {what}. {status.message}".strip()

    def _service_name(self) -> str:
        try:
            return service_info(self.service).name
        except StudioError:
            return self.service

    def problem(self) -> str:
        """Why Generate can't run now, in plain words; "" when it can."""
        service = self.service_problem()
        if service:
            return service
        problem = self.prompt_panel.problem()
        if not problem:
            # The slot's page as it is: a still-loading ComfyUI panel has no say yet, and
            # this runs on every edit (a click builds it first, see generate()).
            panel_problem = getattr(self.settings_slot.panel, "problem", None)
            if callable(panel_problem):
                problem = panel_problem() or ""
        if not problem and self._preparing is not None and not self._preparing.done():
            problem = "Drawing the pose images for the frames…"
        for source in list(self._problem_sources):
            if problem:
                break
            problem = source() or ""
        return problem

    def build_request(self) -> GenerationRequest:
        fields = {k: v for k, v in self.settings_panel.request_fields().items() if k in _REQUEST_FIELDS}
        fields.pop("prompt", None)
        fields.pop("service", None)
        request = GenerationRequest(prompt=self.prompt_panel.text(), service=self.service,
                                    negative_prompt=self.prompt_panel.negative_text(), **fields)
        for deco in list(self._decorators):
            request = deco(request)
        return request

    def build_order(self) -> GenerationOrder:
        """What a click asks for: the request, the frames choice, the prompt style and
        whether the background is to be transparent."""
        request = self.build_request()
        frames = self.frames_panel.settings() if self.frames_panel is not None else FrameSetSpec()
        style = self.style_picker.preset() if self.style_picker is not None else None
        if style is not None and not (style.asset_type or style.style):
            style = None
        transparent = self.transparency is not None and self.transparency.enabled
        extra = self.frames_panel.animation_inputs() if self.frames_panel is not None else {}
        return GenerationOrder(request, frames, style=style, transparent=transparent, **extra)

    def plan(self, order: GenerationOrder) -> FramePlan:
        """The requests ``order`` queues, expanded by the core's session.

        ``Session.generate`` would await the style book, ComfyUI's node list and the cloud
        catalog; the tab's parts load those ahead (from the same core functions), so a
        click expands at once and never waits on a slow server before it is queued."""
        request = order.request
        book = self.style_picker.book() if order.style is not None else None
        background = self.transparency.plan_for(request) if order.transparent else None
        if self.frames_panel is not None:
            max_batch = self.frames_panel.batch_limit(request)
        else:
            max_batch = self.core.session.batch_limit(request)
        return self.core.session.expand(order, book=book, background=background, max_batch=max_batch)

    # -- commands -----------------------------------------------------------------------
    def generate(self) -> str | None:
        """Queue what the fields ask for; returns the first job id (None when nothing was queued)."""
        self.finish_building()  # a part may veto (a missing LoRA) or add to the order
        if self.problem():
            self.prompt_panel.prompt.setFocus()
            return None
        try:
            order = self.build_order()
            plan = self.plan(order)
        except StudioError as exc:
            self.error_area.show_error(exc)
            return None
        except (ValueError, TypeError) as exc:
            self.error_area.show_error(StudioError(f"bad settings: {exc}",
                                                   user_message="Some settings are not valid. Check the values above."))
            return None
        self.error_area.clear()
        if needs_pose_images(plan, pose_control=order.pose_control):
            # Drawing and storing a skeleton per frame is disk and Pillow work: a worker does it.
            self._preparing = self.tasks.spawn(self._submit_with_poses(plan), name="pose images")
            self.progress.show_notice(f"Drawing {len(plan.requests)} pose images…")
            self._update_buttons()
            return None
        return self._submit(plan)

    async def _submit_with_poses(self, plan: FramePlan) -> str | None:
        try:
            poses = await self.core.session.pose_images(plan)
        except StudioError as exc:
            if shiboken6.isValid(self):  # after the await the tab may be gone
                self.error_area.show_error(exc)
            return None
        finally:
            self._preparing = None
            if shiboken6.isValid(self):  # after the await the tab may be gone
                self.progress.show_notice("")
                self._update_buttons()
        if not shiboken6.isValid(self):  # after the await the tab may be gone
            return None
        return self._submit(with_frame_inputs(plan, poses=poses))

    def _submit(self, plan: FramePlan) -> str | None:
        if self.frames_panel is not None:
            self.frames_panel.follow(plan)
        try:
            handle = self.core.session.submit_plan(plan)
        except StudioError as exc:
            self.error_area.show_error(exc)
            return None
        self._update_buttons()
        return handle.job_ids[0] if handle.job_ids else None

    def cancel_current(self) -> None:
        if self._current_job is not None:
            self.cancel_job(self._current_job)

    def cancel_job(self, job_id: str) -> None:
        self.core.jobs.cancel(job_id)

    # -- job events -----------------------------------------------------------------------
    def _on_job_queued(self, job_id: str, position: int) -> None:
        if self._current_job is None:
            self.progress.show_waiting(position)

    def _on_job_started(self, job_id: str) -> None:
        self._current_job = job_id
        self.progress.start()
        self._update_buttons()

    def _on_job_progress(self, ev: JobProgress) -> None:
        if ev.job_id != self._current_job:
            return
        self.progress.update_progress(ev.step, ev.total)

    def _on_job_preview(self, ev: JobPreview) -> None:
        if ev.job_id == self._current_job:
            self.tasks.spawn(self.progress.show_preview(ev.data), name="preview")

    def _on_job_notice(self, job_id: str, message: str) -> None:
        if job_id == self._current_job:
            self.progress.show_notice(message)

    def _on_job_image(self, ev: JobImage) -> None:
        if ev.job_id == self._current_job:
            self.tasks.spawn(self.progress.show_preview(ev.data), name="final preview")

    def _on_job_saved(self, ev: JobSaved) -> None:
        # The grid adds the image itself when the index has it (ImageIndexed on the bridge).
        self.results_hint.setText("Drag a sprite into Godot, Unity, Aseprite or a folder. Hover for its prompt;"
                                  " right-click for more.")

    def _show_action_error(self, exc: BaseException) -> None:
        # Called when a gallery action's task ends, possibly after the tab was deleted:
        # Qt drops signal connections to a dead widget, but not a task's callback.
        if not shiboken6.isValid(self):
            return
        if isinstance(exc, StudioError):
            self.error_area.show_error(exc)
        else:
            present_error(self, exc)

    def _on_job_save_failed(self, ev: JobSaveFailed) -> None:
        self.error_area.show_error(
            ev.error, context="A finished image is kept in memory but not saved. ",
            action=("Retry saving", lambda: self.tasks.spawn(self._retry_save(ev.unsaved_id), name="retry save")))

    async def _retry_save(self, unsaved_id: str) -> None:
        try:
            await self.core.jobs.retry_save(unsaved_id)
        except StudioError as exc:
            if shiboken6.isValid(self):  # the tab may have been deleted during the await
                self.error_area.show_error(
                    exc, context="Still not saved. ",
                    action=("Retry saving", lambda: self.tasks.spawn(self._retry_save(unsaved_id))))

    def _job_ended(self, job_id: str, text: str) -> bool:
        if job_id != self._current_job:
            return False
        self._current_job = None
        self.progress.stop(text)
        # Another service's lane may still be running: follow that one from here on.
        other = next((e for e in self.core.jobs.entries() if e.state is JobState.running), None)
        if other is not None:
            self._current_job = other.job_id
            self.progress.start()
            if other.total:
                self.progress.update_progress(other.step, other.total)
        self._update_buttons()
        return True

    def _on_job_finished(self, job_id: str, images: int) -> None:
        n = f"{images} image{'s' if images != 1 else ''}"
        mine = self._job_ended(job_id, f"Done · {n} in {self.progress.elapsed_text()}")
        if mine and images == 0:
            self.error_area.show_error(GenerationFailed(
                "the job ended without an image",
                user_message="The service finished but sent back no image. Try again, or check the server's log."))

    def _on_job_failed(self, job_id: str, error: object) -> None:
        self._job_ended(job_id, "Failed.")
        exc = error if isinstance(error, BaseException) else StudioError(str(error))
        if isinstance(exc, StudioError):
            if self._shown_in_settings(user_text(exc)):
                # The ComfyUI panel already says "not answering at …" in place; a second copy
                # under it was the "error shows twice" of issue 11.
                log.info("job %s failed with what the settings already show: %s", job_id, exc)
                return
            self.error_area.show_error(exc)
        else:
            present_error(self, exc)

    def _shown_in_settings(self, text: str) -> bool:
        panel = self.settings_panel
        if not text or not isinstance(panel, QWidget) or not panel.isVisible():
            return False
        return any(lab.isVisible() and lab.text().strip() == text.strip() for lab in panel.findChildren(QLabel))

    def _on_service_status(self, service_id: str, _status: object) -> None:
        if service_id == self.service:
            self._update_buttons()

    def _on_service_note_link(self, link: str) -> None:
        if link == "check":
            # The selector checks a service again whenever its settings are saved.
            self.service_events.config_saved.emit(self.service)
        elif link == "setup":
            window = self.window()
            opener = getattr(getattr(window, "services", None), "open_setup", None)
            if callable(opener):
                opener(self.service)

    def _on_job_cancelled(self, job_id: str) -> None:
        self._job_ended(job_id, "Cancelled.")

    def _refresh_queue(self) -> None:
        self.queue_view.set_entries(self.core.jobs.entries())
        self._update_buttons()

    # -- settings --------------------------------------------------------------------------
    def _on_settings_changed(self, settings: Settings, _changed: object = frozenset()) -> None:
        self.settings_slot.set_service(settings.selected_service)
        self._update_buttons()

    def _update_buttons(self) -> None:
        self._update_service_note()
        problem = self.problem()
        self.generate_button.setEnabled(not problem)
        busy = self.core.jobs.busy
        if problem:
            self.generate_button.setToolTip(problem)
        elif busy:
            self.generate_button.setToolTip("Add to the queue (Ctrl+Enter). It starts when the current job ends.")
        else:
            self.generate_button.setToolTip("Generate (Ctrl+Enter)")
        self.generate_button.setText("Add to queue" if busy and not problem else "Generate")
        running = self._current_job is not None
        self.cancel_button.setEnabled(running)
        self.cancel_button.setToolTip("Stop the running generation (Esc)" if running else "Nothing is running")

    def _update_service_note(self) -> None:
        status = self.service_events.last.get(self.service)
        blocked = bool(self.service_problem())
        if blocked:
            name = html.escape(self._service_name())
            if status.state == ServiceState.unreachable:
                text = f"Generate is off until {name} answers. <a href='check'>Check again</a>"
            else:
                text = f"Generate is off until {name} is set up. <a href='setup'>Set up…</a>"
            self.service_note.setText(text)
            self.service_note.setToolTip(status.message)
        self.service_note.setVisible(blocked)

    # -- lifecycle --------------------------------------------------------------------------
    async def started(self) -> None:
        self._started = True
        self.build_parts_soon()  # also when the tab has not painted (the window opened on Saved)
        self.prompt_panel.prompt.setFocus()
        suggestions = await asyncio.to_thread(load_suggestions)
        # The window may have closed (and deleted this tab) while the file was read.
        if not shiboken6.isValid(self):
            return
        self.prompt_panel.set_suggestions(suggestions)
        self._build_results()
        self._show_session_results()  # images saved before the tab showed
        await self.settings_slot.start()
        for fn in list(self._start_hooks):
            self.tasks.spawn(fn(), name="generate tab start hook")

    def closing(self) -> None:
        # The bridge's signals need no unsubscribing: Qt drops them with this widget.
        if self._results_model is not None:
            self._results_model.detach()
            self._results_model.loader.close()

    def session_results(self) -> list:
        """This session's images as gallery records (newest first; paths relative to the images folder)."""
        return self.results_model.records()

    def running_state(self) -> JobState | None:
        if self._current_job is None:
            return None
        entry = self.core.jobs.entry(self._current_job)
        return entry.state if entry else None
