"""FramesPanel: one image, N variants, or an animation's frames from one Generate click.

    panel = FramesPanel(core, tasks=tasks, parent=generate_tab)
    tasks.spawn(panel.load())                        # cloud batch limits and prices, off the GUI thread
    panel.set_request_source(generate_tab.build_request)   # optional: the summary shows the seed
    job_ids = panel.submit(request)                  # expand, queue, and follow the set

When a set is done the "Frames ready" bar offers the Sprite Tools' Sheet tab on its
images, aligned on a bottom-centre pivot. The requests themselves come from
:mod:`studio_core.sprites.frames`; this widget only chooses among them.
"""

from __future__ import annotations

import asyncio
import logging
import random
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QRadioButton,
    QSpinBox,
    QWidget,
)

from studio_core.app_core import StudioCore
from studio_core.frame_plans import MAX_VARIANTS, MODES, FramePlan, FrameSetSpec, Mode, describe as describe_plan, plan_frames
from studio_core.models import GenerationRequest
from studio_core.sprites import frames
from studio_gui.bridge import bridge_for
from studio_gui.disclosure import Disclosure
from studio_gui.sprites.frame_tracker import FrameSetView
from studio_gui.sprites.frames_ready_bar import FramesReadyBar
from studio_gui.sprites.pose_strip import PoseStrip
from studio_gui.tasks import TaskOwner

log = logging.getLogger(__name__)

# The choice, the plan and its summary line are the core's (studio_core.frame_plans), so a
# script gets the same requests from the same FrameSetSpec.
FrameSettings = FrameSetSpec


def frame_animations(meta: dict[str, Any], names: list[str]) -> list[str | None]:
    """The animation of each handed-over frame: ``meta["animations"]`` is in plan order
    (``all_names``), while ``names`` leaves out frames that failed; None where unknown
    (the Sheet tab then reads it from the frame's name)."""
    planned = [str(n) for n in meta.get("all_names") or meta.get("names") or ()]
    anims = [str(a) for a in meta.get("animations") or ()]
    by_name = dict(zip(planned, anims)) if len(anims) == len(planned) else {}
    return [by_name.get(n) for n in names]


class FramesPanel(QWidget):
    """The Generate tab's 'one / variants / animation' choice, collapsed to one line by default."""

    summary_changed = Signal(str)
    mode_changed = Signal(str)

    def __init__(self, core: StudioCore, *, tasks: TaskOwner, parent: QWidget | None = None):
        super().__init__(parent)
        self.core = core
        self.tasks = tasks
        self.rng = random.Random()
        self._request_source: Callable[[], GenerationRequest] | None = None
        self._catalog: Any = None  # studio_core.providers.cloud.catalog.Catalog once load() ran
        self.tracker = FrameSetView(core, self)
        self.tracker.set_progress.connect(self._on_tracker_progress)
        self.tracker.set_finished.connect(self._on_tracker_set_finished)
        self._build()
        self.ready_bar.make_sheet.connect(self.open_sheet)
        bridge_for(core).settings_changed.connect(self._on_settings_changed)
        self.refresh()

    def _on_settings_changed(self, _settings: object, _changed: object) -> None:
        self.refresh()

    # -- layout -----------------------------------------------------------------------
    def _build(self) -> None:
        self.disclosure = Disclosure(self, "Frames and variants", self.set_expanded)
        self.toggle, self.body = self.disclosure.toggle, self.disclosure.body

        self.mode_group = QButtonGroup(self)
        self.mode_buttons: dict[str, QRadioButton] = {}
        modes = QHBoxLayout()
        for key, label in MODES.items():
            b = QRadioButton(label)
            b.setAccessibleName(f"{label} mode")
            self.mode_group.addButton(b)
            self.mode_buttons[key] = b
            modes.addWidget(b)
        modes.addStretch(1)
        self.mode_buttons["single"].setChecked(True)
        self.mode_buttons["variants"].setToolTip("The same prompt N times with consecutive seeds")
        self.mode_buttons["animation"].setToolTip("One frame per pose and direction, one seed, the same settings")

        self.count = QSpinBox()
        self.count.setRange(2, MAX_VARIANTS)
        self.count.setValue(4)
        self.count.setAccessibleName("Number of variants")
        self.variants_row = QWidget()
        vr = QHBoxLayout(self.variants_row)
        vr.setContentsMargins(0, 0, 0, 0)
        vr.addWidget(QLabel("Count"))
        vr.addWidget(self.count)
        vr.addWidget(QLabel("seed, seed+1, …"))
        vr.addStretch(1)

        self.template = QComboBox()
        self.template.setAccessibleName("Animation template")
        for name, poses in frames.ANIMATIONS.items():
            self.template.addItem(name, name)
            # The tooltip lists the exact pose words each frame adds: nothing hidden.
            self.template.setItemData(self.template.count() - 1, "\n".join(f"{i + 1}. {p}" for i, p in enumerate(poses)),
                                      Qt.ItemDataRole.ToolTipRole)
        self.template.setCurrentIndex(max(0, self.template.findData("walk")))
        self.directions = QComboBox()
        self.directions.setAccessibleName("Directions")
        for d in sorted(frames.DIRECTIONS):
            self.directions.addItem(f"{d}", d)
            self.directions.setItemData(self.directions.count() - 1,
                                        ", ".join(k for k, _ in frames.DIRECTIONS[d]), Qt.ItemDataRole.ToolTipRole)
        self.per_direction = QSpinBox()
        self.per_direction.setAccessibleName("Frames per direction")
        self.per_direction.setToolTip("Fewer frames pick poses evenly spread over the cycle")
        self.animation_row = QWidget()
        ar = QHBoxLayout(self.animation_row)
        ar.setContentsMargins(0, 0, 0, 0)
        ar.addWidget(QLabel("Template"))
        ar.addWidget(self.template)
        ar.addWidget(QLabel("Directions"))
        ar.addWidget(self.directions)
        ar.addWidget(QLabel("Frames"))
        ar.addWidget(self.per_direction)
        ar.addStretch(1)
        self._sync_per_direction()
        self.pose_strip = PoseStrip(tasks=self.tasks)
        # Consistent animation: one character on every frame, each frame posed by its skeleton.
        from studio_gui.inputs.character_slot import CharacterSlot

        self.character = CharacterSlot(self.core, tasks=self.tasks)
        self.pose_control = QCheckBox("Pose each frame from its template (pose ControlNet)")
        self.pose_control.setAccessibleName("Pose control")
        self.pose_control.setToolTip("Each frame's request carries its skeleton above as a pose control image. "
                                     "ComfyUI needs a pose ControlNet (e.g. control_v11p_sd15_openpose).")
        # A character is what makes posing worth it: choosing one turns posing on (it can be untaken).
        self.character.changed.connect(lambda: self.character.digest and self.pose_control.setChecked(True))
        self.character.changed.connect(self.refresh)
        self.pose_control.toggled.connect(lambda _on: self.refresh())

        self.summary = QLabel("")
        self.summary.setObjectName("FramesSummary")
        self.summary.setWordWrap(True)
        self.summary.setAccessibleName("Frames summary")

        bl = self.disclosure.layout
        bl.addLayout(modes)
        bl.addWidget(self.variants_row)
        bl.addWidget(self.animation_row)
        bl.addWidget(self.pose_strip)
        bl.addWidget(self.character)
        bl.addWidget(self.pose_control)
        bl.addWidget(self.summary)

        self.ready_bar = FramesReadyBar()
        self.disclosure.root.addWidget(self.ready_bar)  # progress and "ready" show with the panel closed too

        for sig in (self.count.valueChanged, self.directions.currentIndexChanged, self.per_direction.valueChanged):
            sig.connect(lambda *_: self.refresh())
        self.template.currentIndexChanged.connect(self._on_template_changed)
        for b in self.mode_buttons.values():
            b.toggled.connect(self._on_mode_toggled)
        self.variants_row.hide()
        self.animation_row.hide()
        self.pose_strip.hide()
        self.character.hide()
        self.pose_control.hide()

    def set_expanded(self, on: bool) -> None:
        if self.disclosure.set_open(on):
            self.refresh()

    def _sync_per_direction(self) -> None:
        poses = len(frames.ANIMATIONS.get(self.template.currentData() or "", ())) or 1
        self.per_direction.blockSignals(True)
        self.per_direction.setRange(1, poses)
        self.per_direction.setValue(poses)
        self.per_direction.blockSignals(False)

    def _on_template_changed(self, _=None) -> None:
        self._sync_per_direction()
        self.refresh()

    def _on_mode_toggled(self, checked: bool) -> None:
        if not checked:
            return
        mode = self.mode()
        self.variants_row.setVisible(mode == "variants")
        self.animation_row.setVisible(mode == "animation")
        self.pose_strip.setVisible(mode == "animation")
        self.character.setVisible(mode == "animation")
        self.pose_control.setVisible(mode == "animation")
        self.refresh()
        self.mode_changed.emit(mode)

    # -- state ------------------------------------------------------------------------
    def mode(self) -> Mode:
        return next((k for k, b in self.mode_buttons.items() if b.isChecked()), "single")  # type: ignore[return-value]

    def set_mode(self, mode: Mode) -> None:
        self.mode_buttons[mode].setChecked(True)

    def settings(self) -> FrameSettings:
        per = self.per_direction.value()
        full = len(frames.ANIMATIONS.get(self.template.currentData() or "", ()))
        return FrameSettings(mode=self.mode(), count=self.count.value(), animation=self.template.currentData() or "walk",
                             directions=int(self.directions.currentData() or 1),
                             frames_per_direction=0 if per >= full else per)

    def set_settings(self, s: FrameSettings) -> None:
        self.count.setValue(s.count)
        self.template.setCurrentIndex(max(0, self.template.findData(s.animation)))
        self.directions.setCurrentIndex(max(0, self.directions.findData(s.directions)))
        if s.frames_per_direction:
            self.per_direction.setValue(s.frames_per_direction)
        self.set_mode(s.mode)

    def animation_inputs(self) -> dict[str, Any]:
        """The order's consistent-animation fields (``GenerationOrder.character``/``pose_control``)."""
        if self.mode() != "animation":
            return {}
        return {"character": self.character.reference(), "pose_control": self.pose_control.isChecked()}

    async def set_character(self, path: Path) -> bool:
        self.set_mode("animation")
        self.set_expanded(True)
        return await self.character.set_character(path)

    def set_request_source(self, source: Callable[[], GenerationRequest] | None) -> None:
        self._request_source = source
        self.refresh()

    async def load(self) -> None:
        """Read the cloud catalog (batch limits, prices) in a thread; until then a cloud
        service counts as one image per job."""
        from studio_core.providers.cloud import catalog

        self._catalog = await asyncio.to_thread(catalog.load)
        self.refresh()

    def batch_limit(self, request: GenerationRequest) -> int:
        """Images one job may make (the session's rule, with the catalog once loaded):
        ComfyUI's Batch setting, which the VRAM gauge checked for this card; a cloud
        model's catalog ``max_batch``; else 1."""
        return self.core.session.batch_limit(request, self._catalog)

    def plan(self, request: GenerationRequest) -> FramePlan:
        return plan_frames(request, self.settings(), max_batch=self.batch_limit(request), rng=self.rng)

    def expand(self, request: GenerationRequest) -> list[GenerationRequest]:
        """Pure: the requests one Generate click queues, in frame order."""
        return list(self.plan(request).requests)

    def _cost(self, plan: FramePlan, request: GenerationRequest) -> float | None:
        if self._catalog is None or request.service not in self._catalog.providers:
            return None
        from studio_core import costs

        est = costs.price_per_image(request.service, request.model, width=request.width, height=request.height,
                                    cat=self._catalog)
        return est.total(plan.images)

    def describe(self, request: GenerationRequest | None = None) -> str:
        if request is None:
            request = self._current_request()
        plan = self.plan(request if request is not None else GenerationRequest(prompt="", seed=0))
        known = request is not None and request.seed is not None
        if request is None:
            return describe_plan(plan, seed_known=known)
        from studio_gui.sprites.frame_estimate import seconds_per_image, time_text

        per_image = seconds_per_image(self.core.jobs.entries(include_finished=True), request.service)
        when = time_text(images=plan.images, service=request.service, per_image=per_image, quality=request.quality)
        local = request.service == "comfyui"
        # The core's line, then what only the window knows: measured time, and "free" on the user's GPU.
        parts = [describe_plan(plan, seed_known=known, cost=None if local else self._cost(plan, request))]
        return " · ".join(parts + [p for p in (when, "free" if local else "") if p])

    def _current_request(self) -> GenerationRequest | None:
        if self._request_source is None:
            return None
        try:
            return self._request_source()
        except Exception:  # settings mid-edit; the summary simply omits the seed
            return None

    def refresh(self) -> None:
        text = self.describe()
        self.summary.setText(text)
        mode = self.mode()
        # Collapsed, the header carries the summary so a 64-job click is never a surprise.
        collapsed = not self.toggle.isChecked() and mode != "single"
        self.toggle.setText(f"Frames: {MODES[mode]}" + (f" — {text}" if collapsed else ""))
        if mode == "animation" and self.toggle.isChecked():  # drawn only once someone can see it
            s = self.settings()
            self.pose_strip.show_poses(s.animation, s.directions, s.frames_per_direction or None)
        self.summary_changed.emit(text)

    # -- commands ---------------------------------------------------------------------
    def title(self, plan: FramePlan) -> str:
        return str(plan.meta.get("animation", "")).capitalize() if plan.kind == "animation" else "Variants"

    def follow(self, plan: FramePlan) -> None:
        """Show ``plan``'s progress and, when it is done, its frames in the ready bar. Call
        it before ``core.session.submit_plan(plan)`` (a set can finish inside the submit)."""
        if plan.kind == "single":
            return
        self.tracker.expect(plan, self.title(plan))
        self.ready_bar.show_progress(self.title(plan), 0, plan.images, 0)

    def submit(self, request: GenerationRequest) -> list[str]:
        """Expand ``request`` by the core's session, queue it and follow the set; returns the
        job ids. Raises what ``JobQueue.submit`` raises. (The Generate tab builds a whole
        GenerationOrder itself; this is the panel on its own.)"""
        from studio_core.session import GenerationOrder

        session = self.core.session
        plan = session.expand(GenerationOrder(request, self.settings()), max_batch=self.batch_limit(request))
        self.follow(plan)
        return list(session.submit_plan(plan).job_ids)

    def _on_tracker_progress(self, set_id: str, saved: int, total: int, lost: int) -> None:
        if self.tracker.is_running(set_id) and saved + lost < total:
            self.ready_bar.show_progress(self.tracker.title(set_id), saved, total, lost)

    def _on_tracker_set_finished(self, paths: list, meta: dict) -> None:
        self.ready_bar.show_set(str(meta.get("title") or "Frames"), [Path(p) for p in paths], meta)

    def open_sheet(self, paths: list, meta: dict) -> QWidget | None:
        """The Sprite Tools on ``paths``, Sheet tab, frames aligned bottom-centre; an
        animation gets one row per direction and starts building at once."""
        if not paths:
            return None
        from studio_gui.sprites import dialog  # the dialog pulls numpy: load it on first use

        dlg = dialog.open_sprite_tools(self.window(), self.core, [Path(p) for p in paths])
        sheet = getattr(dlg, "sheet_tab", None)
        if sheet is not None:
            animation = meta.get("kind") == "animation"
            dlg.tabs.setCurrentWidget(sheet)
            sheet.name.setText(str(meta.get("animation") or "variants"))
            # Frame names read better than the gallery's file names, and each frame plays in
            # its own animation (walk_down, walk_left…): one Godot animation / Aseprite tag each.
            names = [str(n) for n in meta.get("names") or ()]
            sheet.set_paths([Path(p) for p in paths], names=names, animations=frame_animations(meta, names))
            # align_frames' default pivot is bottom-centre, which is what the check box says.
            sheet.align.setChecked(animation)
            if animation and int(meta.get("directions") or 1) > 1 and not meta.get("failed"):
                sheet.columns.setValue(int(meta.get("frames_per_direction") or 0))
            sheet.build()
        return dlg
