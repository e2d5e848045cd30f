"""ComfySettingsPanel (the seed's ComfyUISettings): model, size, quality, batch, seed, and
whether it all fits the card, with the planner's fixes one click away.

Contract with the Generate tab: ``request_fields()`` returns the GenerationRequest fields
this panel controls (model, width, height, steps, cfg, sampler, scheduler, seed, batch,
quality, options); ``apply_request()`` fills the panel from a request; ``changed`` fires on
every edit; ``problem()`` is "" or the inline error that should keep Generate disabled.

The "Workflow" row is the custom-workflow picker (studio_gui.comfy_workflow): its
``request_options()`` join ``options``. While a custom workflow is in use the model, sampler,
scheduler and CFG come from the workflow file, so those controls are greyed out and say so,
and so are the planner's fixes that only the built-in graph reads (tiled decode, upscale).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import shiboken6
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QHBoxLayout, QLabel,
                               QLineEdit, QPushButton, QSpinBox, QVBoxLayout, QWidget)

from studio_core.errors import StudioError
from studio_core.hardware.estimator import Precision
from studio_core.hardware.planner import JobShape, Proposal, ProposalKind, assess
from studio_core.hardware.presets import InvalidSize, parse_seed, quality_spec
from studio_core.models import GenerationRequest, QualityTier
from studio_gui.comfy_settings.fit_view import FitView
from studio_gui.comfy_settings.model_selector import ModelSelector, precision_of
from studio_gui.comfy_settings.monitor import monitor_for
from studio_gui.comfy_settings.size_picker import SizePicker, error_label
from studio_gui.comfy_workflow import WorkflowPicker
from studio_gui.eliding_combo import ElidingComboBox
from studio_gui.tasks import TaskOwner

log = logging.getLogger(__name__)

CUSTOM_NOTE = ("A custom workflow is in use: the model, sampler, scheduler and CFG come from the workflow file. "
               "The prompt, seed, size and steps go to the inputs it maps (see “Map inputs…” below). "
               "The VRAM estimate still assumes the model chosen here.")
CUSTOM_TIP = "Not used with a custom workflow: the workflow file sets this. Choose the built-in workflow to set it here."
TILED_CUSTOM_TIP = ("Only the built-in workflow reads this: a custom workflow file has its own VAE decode node. "
                    "Choose the built-in workflow to decode in tiles.")
# Request options that only the app's own graph reads; a custom workflow request leaves them out.
BUILT_IN_OPTIONS = ("tiled_vae", "upscale_to", "family")
# Evidence the workflow builder cannot see itself (it has the name and the folder).
DECIDING_SOURCES = ("metadata", "tensors", "user")


def _short_combo(name: str) -> QComboBox:
    """A combo box as wide as ten characters; longer names are elided (the list shows them whole)."""
    box = ElidingComboBox(min_chars=10)
    box.setAccessibleName(name)
    box.setToolTip(name)
    box.currentTextChanged.connect(lambda text: box.setToolTip(f"{name}: {text}") if box.isEnabled() else None)
    return box


class ComfySettingsPanel(QWidget):
    changed = Signal()

    def __init__(self, core, *, tasks: TaskOwner, parent: QWidget | None = None, monitor=None):
        super().__init__(parent)
        self.core = core
        self.tasks = tasks
        self.monitor = monitor
        self._options: dict[str, Any] = {}
        self._updating = False
        self._answers: dict[str, Any] = {}  # model → FamilyAnswer (which server was asked)
        self._identify_task: asyncio.Task | None = None
        self._server_count = 1
        s = core.settings.current
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        # Fields keep to the column's width (a 1024 px screen leaves it ~400 px): long rows are
        # split below, and a field too wide still goes under its label instead of off the edge.
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)

        self.models = ModelSelector()
        self.models.set_offline(s.comfy_model)
        self.models.model_changed.connect(self._on_model_changed)
        self.models.family_chosen.connect(self._on_family_chosen)
        reload = QPushButton("↻")
        reload.setToolTip("Ask the servers again what models they have")
        reload.setAccessibleName("Reload models")
        reload.setMaximumWidth(32)
        reload.clicked.connect(lambda: self.tasks.spawn(self.load_models(refresh=True), name="reload models"))
        mrow = QHBoxLayout()
        mrow.addWidget(self.models, 1)
        mrow.addWidget(reload, 0, Qt.AlignmentFlag.AlignTop)
        self.reload_button = reload
        form.addRow("Model", mrow)
        self.workflow_note = QLabel(CUSTOM_NOTE)
        self.workflow_note.setWordWrap(True)
        self.workflow_note.setAccessibleName("Custom workflow note")
        self.workflow_note.setStyleSheet("color: palette(placeholder-text);")
        self.workflow_note.hide()
        form.addRow("", self.workflow_note)

        self.size_picker = SizePicker()
        self.size_picker.changed.connect(self._on_size_changed)
        sp = self.size_picker
        self.preset, self.width_edit, self.height_edit = sp.preset, sp.width_edit, sp.height_edit
        self.size_error = self.size_picker.error_text
        form.addRow("Size", self.size_picker)
        self.upscale_note = QLabel()
        self.upscale_note.hide()
        form.addRow("", self.upscale_note)

        self.tier_group = QButtonGroup(self)
        trow = QHBoxLayout()
        self.tier_buttons: dict[QualityTier, QPushButton] = {}
        for tier in QualityTier:
            b = QPushButton(quality_spec(tier).label)
            b.setCheckable(True)
            b.setAccessibleName(f"Quality {tier.value}")
            self.tier_group.addButton(b)
            self.tier_buttons[tier] = b
            b.clicked.connect(lambda _=False, t=tier: self._on_tier(t))
            trow.addWidget(b)
        trow.addStretch(1)
        self.tier_hint = QLabel()
        self.tier_hint.setWordWrap(True)
        quality = QVBoxLayout()
        quality.setSpacing(2)
        quality.addLayout(trow)
        quality.addWidget(self.tier_hint)
        form.addRow("Quality", quality)

        self.steps = QSpinBox()
        self.steps.setRange(1, 150)
        self.steps.setAccessibleName("Steps")
        self.cfg = QDoubleSpinBox()
        self.cfg.setRange(0.0, 30.0)
        self.cfg.setSingleStep(0.5)
        self.cfg.setDecimals(1)
        self.cfg.setAccessibleName("CFG")
        self.sampler = _short_combo("Sampler")
        self.scheduler = _short_combo("Scheduler")
        srow = QHBoxLayout()
        srow.addWidget(self.steps)
        srow.addSpacing(8)
        srow.addWidget(QLabel("CFG"))
        srow.addWidget(self.cfg)
        srow.addStretch(1)
        form.addRow("Steps", srow)
        prow = QHBoxLayout()
        prow.addWidget(self.sampler, 1)
        prow.addWidget(self.scheduler, 1)
        form.addRow("Sampler", prow)

        self.batch = QSpinBox()
        self.batch.setRange(1, 8)
        self.batch.setAccessibleName("Batch size")
        self.batch.setToolTip("Images made in one run; each needs its own memory while sampling")
        self.random_seed = QCheckBox("Random")
        self.seed_edit = QLineEdit()
        self.seed_edit.setPlaceholderText("seed")
        self.seed_edit.setAccessibleName("Seed")
        self.seed_edit.setMaximumWidth(180)
        self.seed_edit.setMinimumWidth(self.seed_edit.fontMetrics().horizontalAdvance("4294967295") + 16)
        self.random_seed.toggled.connect(self._on_random_toggled)
        self.tiled = QCheckBox("Tiled VAE decode")
        self.tiled.setToolTip("Decode the image in 512-pixel tiles (VAEDecodeTiled): far less memory, a bit slower")
        brow = QHBoxLayout()
        brow.addWidget(self.batch)
        brow.addSpacing(16)
        brow.addWidget(self.tiled)
        brow.addStretch(1)
        form.addRow("Batch", brow)
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed_edit, 1)
        seed_row.addWidget(self.random_seed)
        form.addRow("Seed", seed_row)
        self.seed_error = error_label()
        form.addRow("", self.seed_error)

        self.workflow_picker = WorkflowPicker(core, tasks=tasks)
        self.workflow_picker.changed.connect(self._on_workflow_changed)
        form.addRow("Workflow", self.workflow_picker)

        self.fit = FitView()
        self.fit.proposal_chosen.connect(self.apply_proposal)
        form.addRow(self.fit)
        self.server_note = error_label()
        form.addRow(self.server_note)

        for w in (self.steps, self.batch):
            w.valueChanged.connect(self._on_edit)
        self.cfg.valueChanged.connect(self._on_edit)
        self.sampler.currentIndexChanged.connect(self._on_edit)
        self.scheduler.currentIndexChanged.connect(self._on_edit)
        self.seed_edit.textChanged.connect(self._on_edit)
        self.tiled.toggled.connect(self._on_edit)

        self._fill_presets()
        self._set_samplers(("euler", "euler_ancestral", "dpmpp_2m", "dpmpp_2m_sde"), ("normal", "karras"))
        self._updating = True
        self._set_size(s.width, s.height)
        self.batch.setValue(max(1, min(8, s.batch)))
        self.random_seed.setChecked(s.seed < 0)
        if s.seed >= 0:
            self.seed_edit.setText(str(s.seed))
        self._on_random_toggled(s.seed < 0)
        try:
            tier = QualityTier(s.quality)
        except ValueError:
            tier = QualityTier.optimized
        self._updating = False
        # The built-in state's tooltips, put back when a custom workflow is given up again.
        self._tips = {w: w.toolTip() for w in self._built_in_only_widgets()}
        self._on_tier(tier)

    # -- building blocks --------------------------------------------------------------------
    def _set_samplers(self, samplers, schedulers) -> None:
        for box, items, default in ((self.sampler, samplers, "euler"), (self.scheduler, schedulers, "normal")):
            cur = box.currentText() or default
            box.blockSignals(True)
            box.clear()
            box.addItems(list(items))
            i = box.findText(cur)
            box.setCurrentIndex(i if i >= 0 else 0)
            box.blockSignals(False)

    def _fill_presets(self) -> None:
        self.size_picker.set_family(self.models.family())

    def _set_size(self, w: int, h: int) -> None:
        self.size_picker.set_size(w, h)

    # -- reactions ----------------------------------------------------------------------------
    def _on_model_changed(self, name: str) -> None:
        self._on_family_changed()
        self._identify(name)

    def _on_family_changed(self) -> None:
        self._fill_presets()
        fam = self.models.family()
        if fam.default_steps:  # distilled models (Turbo, schnell) want their own steps/CFG
            self._on_tier(self.current_tier())
        self._on_edit()

    # -- which family the model is ----------------------------------------------------------
    def _identify(self, name: str) -> None:
        """Decide ``name``'s family off the GUI thread (server metadata, the local file's
        header); the name-based guess serves until then. A newer choice cancels an older one."""
        if not name or self.models.decided(name):
            return
        if self._identify_task is not None and not self._identify_task.done():
            self._identify_task.cancel()
        self._identify_task = self.tasks.spawn(self._identify_now(name), name="model family")

    async def _identify_now(self, name: str) -> None:
        from studio_core.providers.comfy.family_lookup import FamilyAnswer, family_of

        settings = self.core.settings.current
        try:
            provider = self.core.services.provider("comfyui")
            answer = await family_of(provider, name, settings)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any evidence lost must still leave an answer (the name's) or the question
            log.warning("family of %s not decided: %s", name, exc)
            answer = FamilyAnswer(name, self.models.guess(name), self._server_key(), "")
        if not shiboken6.isValid(self):  # after the await the panel may be gone
            return
        self._answers[name] = answer
        before = self.models.family()
        self.models.set_identified(name, answer.guess)
        if name == self.models.current() and self.models.family() != before:
            self._on_family_changed()
        else:
            self._on_edit()

    def _server_key(self) -> str:
        s = self.core.settings.current
        return "managed" if s.comfy_managed_url else s.comfy_active_url

    def _on_family_chosen(self, name: str, answer: str) -> None:
        """The user said what ``name`` is: remember it for the server asked, and use it now."""
        from studio_core.hardware.families import UNKNOWN, FamilyGuess, family_by_id
        from studio_core.providers.comfy.family_lookup import with_answer

        known = self._answers.get(name)
        key = known.server_key if known is not None and known.server_key else self._server_key()
        settings = self.core.settings
        settings.update(model_families=with_answer(settings.current, key, name, answer))
        before = self.models.family()
        self.models.set_identified(name, FamilyGuess(family_by_id(answer) or UNKNOWN, "user"))
        if self.models.family() != before:
            self._on_family_changed()
        else:
            self._on_edit()

    def _on_size_changed(self) -> None:
        self._options.pop("upscale_to", None)  # the user chose a size themselves
        self._on_edit()

    def _on_size_typed(self) -> None:
        self.size_picker.on_typed()

    def _on_tier(self, tier: QualityTier) -> None:
        spec = quality_spec(tier, profile=self._profile(), family=self.models.family())
        self.tier_buttons[tier].setChecked(True)
        self._updating = True
        self.steps.setValue(spec.steps)
        self.cfg.setValue(spec.cfg)
        self._updating = False
        self.tier_hint.setText(f"{spec.steps} steps · CFG {spec.cfg:g} · {spec.time_hint}")
        self._on_edit()

    def _built_in_only_widgets(self) -> tuple[QWidget, ...]:
        """Controls whose value only the built-in graph reads."""
        return (self.models.combo, self.reload_button, self.cfg, self.sampler, self.scheduler, self.tiled)

    def _on_workflow_changed(self) -> None:
        self._show_workflow_state()
        self._validate()
        self.refresh_fit()
        self.changed.emit()

    def _show_workflow_state(self) -> None:
        custom = self.workflow_picker.is_custom()
        self.workflow_note.setVisible(custom)
        for w in self._built_in_only_widgets():
            w.setEnabled(not custom)
            if custom:
                w.setToolTip(TILED_CUSTOM_TIP if w is self.tiled else CUSTOM_TIP)
            elif w in (self.sampler, self.scheduler):
                w.setToolTip(f"{w.accessibleName()}: {w.currentText()}")
            elif w is self.models.combo:
                self.models.restore_tooltip()
            else:
                w.setToolTip(self._tips.get(w, ""))
        self.fit.set_custom_workflow(custom)

    def _on_random_toggled(self, on: bool) -> None:
        self.seed_edit.setEnabled(not on)
        self._on_edit()

    def _on_edit(self, *_a) -> None:
        if self._updating:
            return
        self._validate()
        self.refresh_fit()
        self.changed.emit()

    def _validate(self) -> None:
        self.size_picker.validate()
        seed_err = ""
        if not self.random_seed.isChecked():
            try:
                if parse_seed(self.seed_edit.text()) is None:
                    seed_err = "Enter a seed, or tick Random."
            except InvalidSize as exc:
                seed_err = exc.user_message
        self.seed_error.setText(seed_err)
        self.seed_error.setVisible(bool(seed_err))
        up = None if self.workflow_picker.is_custom() else self._options.get("upscale_to")
        self.upscale_note.setText(f"Upscaled to {up.replace('x', '×')} afterwards (the planner's proposal)." if up else "")
        self.upscale_note.setVisible(bool(up))

    # -- the contract ---------------------------------------------------------------------------
    def current_tier(self) -> QualityTier:
        for tier, b in self.tier_buttons.items():
            if b.isChecked():
                return tier
        return QualityTier.optimized

    def problem(self) -> str:
        self._validate()
        for lab in (self.size_error, self.seed_error):
            if lab.text():
                return lab.text()
        if not self.workflow_picker.is_custom():  # a custom workflow names its own model files
            return self.models.missing_reason()
        return ""

    def request_fields(self) -> dict[str, Any]:
        s = self.core.settings.current
        seed = None
        if not self.random_seed.isChecked():
            try:
                seed = parse_seed(self.seed_edit.text())
            except InvalidSize:
                seed = None
        options = dict(self._options)
        if self.tiled.isChecked():
            options["tiled_vae"] = True
        guess = self.models.guess()
        if guess.known and guess.source in DECIDING_SOURCES and self.models.decided():
            # The workflow builder would go by the name alone; what the file or the user said wins.
            options["family"] = guess.family.id
        workflow = self.workflow_picker.request_options()
        if workflow:
            # The workflow file decodes and sizes the image itself: built-in-only options would mislead.
            options = {k: v for k, v in options.items() if k not in BUILT_IN_OPTIONS}
            options.update(workflow)
        return {
            "model": self.models.current() or s.comfy_model,
            "width": (self.size_picker.chosen() or (s.width, s.height))[0],
            "height": (self.size_picker.chosen() or (s.width, s.height))[1],
            "steps": self.steps.value(),
            "cfg": float(self.cfg.value()),
            "sampler": self.sampler.currentText() or "euler",
            "scheduler": self.scheduler.currentText() or "normal",
            "seed": seed,
            "batch": self.batch.value(),
            "quality": self.current_tier(),
            "options": options,
        }

    def apply_request(self, request: GenerationRequest) -> None:
        """Fill the fields from ``request``. The workflow picker is left as the user has it: a
        request's ``workflow`` option is a file's text, not a choice to restore here."""
        self._updating = True
        try:
            if request.model:
                self.models.select(request.model)
                self._fill_presets()
            self._set_size(request.width, request.height)
            self.tier_buttons[request.quality].setChecked(True)
            self.steps.setValue(request.steps)
            self.cfg.setValue(request.cfg)
            for box, value in ((self.sampler, request.sampler), (self.scheduler, request.scheduler)):
                if box.findText(value) < 0:
                    box.addItem(value)
                box.setCurrentIndex(box.findText(value))
            self.batch.setValue(max(1, min(8, request.batch)))
            self.random_seed.setChecked(request.seed is None)
            self.seed_edit.setText("" if request.seed is None else str(request.seed))
            self.tiled.setChecked(bool(request.option("tiled_vae")))
            self._options = {k: v for k, v in (("upscale_to", request.option("upscale_to")),) if v}
        finally:
            self._updating = False
        self._on_edit()

    # -- the estimate ---------------------------------------------------------------------------
    def _profile(self):
        from studio_core.hardware.profiles import DEFAULT_PROFILE

        return self.monitor.profile if self.monitor is not None else DEFAULT_PROFILE

    def _server_lowvram(self) -> bool:
        server = getattr(self.core, "_comfy_server", None)
        return bool(server is not None and server.running and "--lowvram" in server.argv)

    def job_shape(self) -> JobShape:
        f = self.request_fields()
        name = f["model"]
        return JobShape(self.models.family(), f["width"], f["height"], f["batch"], Precision(precision_of(name)),
                        bool(f["options"].get("tiled_vae")), self._server_lowvram())

    def refresh_fit(self) -> None:
        profile = self._profile()
        mon = self.monitor
        self.fit.show_assessment(assess(self.job_shape(), profile), profile=profile,
                                 gpu=mon.gpu if mon else None, note=mon.note() if mon else "",
                                 profile_guessed=mon.profile_is_guess if mon else True)

    def apply_proposal(self, p: Proposal) -> None:
        """The user picked a fix: change exactly what it says, nothing else."""
        self._updating = True
        try:
            if "batch" in p.changes:
                self.batch.setValue(p.changes["batch"])
            if "width" in p.changes:
                self._set_size(p.changes["width"], p.changes["height"])
            if p.options.get("tiled_vae"):
                self.tiled.setChecked(True)
            if "upscale_to" in p.options:
                self._options["upscale_to"] = p.options["upscale_to"]
        finally:
            self._updating = False
        if p.kind is ProposalKind.lowvram:
            self._lowvram()
        self._on_edit()

    def _lowvram(self) -> None:
        s = self.core.settings.current
        if not s.comfy_manage_server or not hasattr(self.core, "comfy_server"):
            self.server_note.setText("Add --lowvram to the command that starts your ComfyUI server, then restart it. "
                                     "(The app can start ComfyUI for you: Settings → ComfyUI server.)")
            self.server_note.show()
            return
        server = self.core.comfy_server
        server.extra_flags = tuple(dict.fromkeys(server.extra_flags + ("--lowvram",)))
        self.server_note.setText("Restarting ComfyUI with --lowvram…")
        self.server_note.show()
        self.tasks.spawn(self._restart(server))

    async def _restart(self, server) -> None:
        try:
            await server.stop()
            await server.start()
            text = "ComfyUI runs with --lowvram now."
        except StudioError as exc:
            text = exc.user_message
        if shiboken6.isValid(self):  # after the await the panel may be gone
            self.server_note.setText(text)
            self.refresh_fit()

    # -- lifecycle ---------------------------------------------------------------------------
    async def started(self) -> None:
        from studio_gui.bridge import bridge_for

        bridge_for(self.core).change.connect(self._on_core_change)
        if self.monitor is None:
            self.monitor = monitor_for(self.core, tasks=self.tasks)
        self.monitor.updated.connect(self._on_monitor)
        await asyncio.gather(self._start_workflow(), self.load_models())

    async def _start_workflow(self) -> None:
        """Reload the saved custom workflow (read off the GUI thread by the picker)."""
        try:
            await self.workflow_picker.started()
        except asyncio.CancelledError:
            raise
        except Exception:  # the picker shows file problems itself; anything else must not stop the models
            log.exception("custom workflow not restored")

    def _on_monitor(self) -> None:
        self.refresh_fit()

    async def load_models(self, *, refresh: bool = False) -> None:
        """Read the servers' models (``refresh``: ask every server again for what it has first,
        the ↻ button) and which servers have each."""
        wanted = self.models.current() or self.core.settings.current.comfy_model
        self.reload_button.setEnabled(False)
        try:
            provider = self.core.services.provider("comfyui")
            if refresh:
                await _reread_capabilities(provider)
            models = await provider.list_models()
        except StudioError as exc:
            if shiboken6.isValid(self):  # after the await the panel may be gone
                self.models.set_offline(wanted)
                self.models.set_availability(None, None)
                self.server_note.setText(exc.user_message)
                self.server_note.show()
                self._identify(self.models.current())
            return
        except (ImportError, asyncio.TimeoutError) as exc:
            log.info("models not loaded: %s", exc)
            return
        finally:
            if shiboken6.isValid(self):  # after the await the panel may be gone
                self.reload_button.setEnabled(not self.workflow_picker.is_custom())
        if not shiboken6.isValid(self):  # after the await the panel may be gone
            return
        self.server_note.hide()
        if refresh:
            # What the user may have just copied onto a server is looked at afresh.
            self.models.forget_decisions()
            self._answers.clear()
        self._show_availability(provider, models)
        self.models.set_models(models, wanted=wanted)
        samplers = getattr(provider, "samplers", None)
        schedulers = getattr(provider, "schedulers", None)
        if samplers and schedulers:
            self._set_samplers(samplers(), schedulers())
        self._identify(self.models.current())
        self._on_edit()

    def _show_availability(self, provider: Any, models: Any) -> None:
        """Which servers have each model and whether any enabled one has the chosen model: the
        pool knows per server; a single-server provider only what its list says."""
        where_of = getattr(provider, "model_servers", None)
        missing_of = getattr(provider, "missing_everywhere", None)
        members = getattr(provider, "members", None)
        if callable(where_of) and callable(missing_of):
            servers = sum(1 for m in members if m.usable) if members is not None else 1
            self._server_count = servers
            self.models.set_availability(where_of(), lambda name: bool(missing_of([name])), servers=servers)
        else:
            names = {m.id for m in models}
            self._server_count = 1
            self.models.set_availability(None, lambda name: name not in names)

    def _on_core_change(self, event: object) -> None:
        """Pool health changed (a server came back with other models, one was switched off):
        say again which servers have each model, from what the pool already knows."""
        from studio_core.changes import PoolStateChanged

        if not isinstance(event, PoolStateChanged):
            return
        try:
            provider = self.core.services.provider("comfyui")
        except (StudioError, ImportError):
            return
        if callable(getattr(provider, "model_servers", None)) and self.models.availability_known():
            self._show_availability(provider, ())
            self._on_edit()


async def _reread_capabilities(provider: Any) -> None:
    """Every server's /object_info read again (the pool's refresh), or the one server's."""
    refresh = getattr(provider, "refresh", None)
    if callable(refresh):
        await refresh()
        return
    object_info = getattr(provider, "object_info", None)
    if callable(object_info):
        await object_info(refresh=True)
