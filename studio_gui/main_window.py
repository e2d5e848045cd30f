"""The main window: services on the left, Generate and Saved tabs, status bar."""

from __future__ import annotations

import asyncio
import base64
import importlib
import logging
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QSplitter,
    QStatusBar,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio_core.app_core import StudioCore
from studio_gui import ui_state
from studio_gui.bridge import bridge_for
from studio_gui.errors import MAKE_IT_FIT, RETRY, present_error
from studio_gui.tasks import TaskOwner

if TYPE_CHECKING:
    from studio_gui.close_dialog import CloseDialog, WorkInFlight

log = logging.getLogger(__name__)

MIN_WIDTH, MIN_HEIGHT = 900, 560
FIRST_PAINT_WAIT_S = 2.0


class MainWindow(QMainWindow):
    def __init__(self, core: StudioCore, *, ui: dict | None = None):
        super().__init__()
        self.core = core
        self.tasks = TaskOwner(on_error=lambda exc: present_error(self, exc))
        self.ui_state_path = core.paths.config / "ui_state.json"
        self.ui = ui if ui is not None else {}
        self.setWindowTitle("Cloud AI Art Studio")
        self.setObjectName("MainWindow")
        self.resize(1280, 800)
        # Small enough for a 1024×640 laptop screen minus the task bar; every column is
        # usable down to here (the Generate column scrolls rather than cuts).
        self.setMinimumSize(MIN_WIDTH, MIN_HEIGHT)
        self._started = False
        self._saved_started = False
        self._painted = asyncio.Event()
        # What to do with jobs in flight once the window is closed ("wait", "cancel",
        # "keep"); None until the user answered the close dialog (app.run reads it).
        self.close_choice: str | None = None
        self.close_dialog: CloseDialog | None = None
        self._build()
        # Failed jobs' requests by their error, for the error area's Retry (newest few only).
        self._failed: dict[int, tuple[BaseException, object]] = {}
        bridge = bridge_for(core)
        bridge.settings_write_failed.connect(self._on_settings_write_failed)
        bridge.job_failed.connect(self._remember_failed)

    # -- layout ---------------------------------------------------------------------
    def _build(self) -> None:
        from studio_gui.services.selector import ServiceSelector

        self.services = ServiceSelector(self.core, tasks=self.tasks, parent=self)
        # The two tabs are built just after the window first paints (see started()); until
        # then each holds a placeholder. Building them first made the window appear ~3x
        # later than a bare Qt window; accessing .generate_tab / .saved_tab builds at once.
        self._generate_tab = None
        self._saved_tab = None
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self._placeholder("Getting the prompt ready…"), "&Generate")
        self.tabs.addTab(self._placeholder("Opening your gallery…"), "&Saved")
        self.tabs.currentChanged.connect(self._on_tabs_current_changed)
        self.settings_button = QToolButton()
        self.settings_button.setText("⚙ Settings")
        self.settings_button.setToolTip("Service keys, ComfyUI server and storage settings")
        self.settings_button.setAccessibleName("Settings")
        self.settings_button.clicked.connect(self.open_settings)
        self.tabs.setCornerWidget(self.settings_button, Qt.Corner.TopRightCorner)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.services)
        self.splitter.addWidget(self.tabs)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        # Wide enough for the longest service name ("Google (Gemini / Vertex AI)"), not more.
        side = max(230, min(300, self.services.preferred_width()))
        self.splitter.setSizes([side, 1280 - side])
        self.setCentralWidget(self.splitter)

        self.status = QStatusBar()
        self.status_label = QLabel("Ready")
        self.status.addWidget(self.status_label, 1)
        from studio_gui.services.spend import SpendLabel

        # The ComfyUI health button (its module pulls in the hardware monitor) follows the
        # first paint, like the tabs; this line keeps its place meanwhile. Asking for
        # .comfy_health builds it at once.
        self._comfy_health = None
        self._health_slot = QWidget()
        slot = QHBoxLayout(self._health_slot)
        slot.setContentsMargins(0, 0, 0, 0)
        self._health_placeholder = QLabel("ComfyUI: checking…")
        self._health_placeholder.setEnabled(False)
        slot.addWidget(self._health_placeholder)
        self.status.addPermanentWidget(self._health_slot)
        self.spend = SpendLabel(self.core, tasks=self.tasks)
        self.status.addPermanentWidget(self.spend)
        self.setStatusBar(self.status)

        quit_action = QAction("Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        self.addAction(quit_action)
        self._restore_ui()

    @staticmethod
    def _placeholder(text: str) -> QWidget:
        w = QWidget()
        w.setObjectName("TabPlaceholder")
        lay = QVBoxLayout(w)
        label = QLabel(text)
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        label.setEnabled(False)
        lay.addWidget(label)
        return w

    def _install_tab(self, index: int, widget: QWidget, title: str) -> None:
        current = self.tabs.currentIndex()
        old = self.tabs.widget(index)
        self.tabs.blockSignals(True)
        self.tabs.removeTab(index)
        self.tabs.insertTab(index, widget, title)
        self.tabs.setCurrentIndex(current)
        self.tabs.blockSignals(False)
        old.deleteLater()

    @property
    def generate_tab(self):
        if self._generate_tab is None:
            from studio_gui.generate.tab import GenerateTab

            # Its secondary parts follow the first paint (GenerateTab's defer_sections).
            self._generate_tab = GenerateTab(self.core, tasks=self.tasks, parent=self, defer_sections=True)
            self._install_tab(0, self._generate_tab, "&Generate")
            from studio_gui.resume_banner import ResumeBanner

            self.resume_banner = ResumeBanner(self.core, parent=self._generate_tab)
            self._generate_tab.add_results_banner(self.resume_banner)
            self.resume_banner.refresh()
            self._generate_tab.error_area.offer_handlers.update({RETRY: self.retry_failed,
                                                                 MAKE_IT_FIT: self.make_it_fit})
        return self._generate_tab

    @property
    def comfy_health(self):
        """The status bar's ComfyUI button (a click opens the health panel)."""
        if self._comfy_health is None:
            from studio_gui.comfy_settings.health_panel import HealthStatusButton

            self._comfy_health = HealthStatusButton(self.core, tasks=self.tasks)
            self._health_slot.layout().replaceWidget(self._health_placeholder, self._comfy_health)
            self._health_placeholder.deleteLater()
            self._health_placeholder = None
        return self._comfy_health

    @property
    def saved_tab(self):
        if self._saved_tab is None:
            from studio_gui.gallery.saved_tab import SavedTab

            self._saved_tab = SavedTab(self.core, tasks=self.tasks, parent=self)
            self._install_tab(1, self._saved_tab, "&Saved")
            from studio_gui.gallery.recovery_banner import RecoveryBanner

            self.recovery_banner = RecoveryBanner(self.core, tasks=self.tasks, parent=self._saved_tab)
            # Under the tab's own news line, above the search: the first thing seen there.
            self._saved_tab.layout().insertWidget(1, self.recovery_banner)
            self.tasks.spawn(self.recovery_banner.refresh(), name="recovered images")
            if self._started:
                self.tasks.spawn(self._start_saved(), name="saved tab start")
        return self._saved_tab

    async def _start_saved(self) -> None:
        if not self._saved_started:
            self._saved_started = True
            await self._saved_tab.started()

    def _on_tabs_current_changed(self, index: int) -> None:
        # Before started() the index is not open yet; started() builds the tab then.
        if index == 1 and self._saved_tab is None and self._started:
            _ = self.saved_tab

    def open_settings(self, page: str | None = None) -> None:
        from studio_gui.settings_dialog import SettingsDialog

        dlg = SettingsDialog(self.core, tasks=self.tasks, parent=self, page=page or None)
        dlg.open()

    def _show_first_run(self) -> None:
        from studio_gui.first_run import FirstRunPanel

        self.first_run = FirstRunPanel(self.core, tasks=self.tasks, parent=self)
        self.first_run.open_settings.connect(self.open_settings)
        self.first_run.show()

    # -- lifecycle ------------------------------------------------------------------
    async def started(self) -> None:
        """Called once the window is shown: build the tabs, start background checks (never blocks)."""
        # The keys, the tabs' secondary parts and the background checks all wait for the
        # window's first paint (asyncio.sleep(0) alone resumed before it).
        await self.first_paint_done()
        # Read every key on a worker before any part starts: their checks and providers ask
        # for keys, and a keyring read on the GUI thread can block it for seconds. Until
        # then the service cards say "checking…".
        # The gallery index opens on its worker meanwhile: nothing before the first paint
        # waits for it (the session grid is built after it, see GenerateTab.started).
        index = asyncio.ensure_future(self.core.ensure_index())
        try:
            await self.core.services.preload_secrets()
        finally:
            await index
        self._started = True
        if not self.core.settings.current.first_run_done and not self.core.settings.existed:
            self._show_first_run()
        notes = list(getattr(self.core, "startup_messages", ())) + list(self.core.settings.warnings)
        if notes:
            self.status.showMessage(" · ".join(notes), 20000)
        generate = self.generate_tab
        if self.tabs.currentIndex() == 1:  # the window reopened on the Saved tab
            _ = self.saved_tab
        for part in (self.services, generate, self.spend, self.comfy_health):
            hook = getattr(part, "started", None)
            if hook is not None:
                await hook()
        if self._saved_tab is not None:
            await self._start_saved()
        else:
            # Built while the user looks at the Generate tab, so switching to it is instant.
            self.tasks.spawn(self._build_saved_when_idle(), name="build saved tab")

    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        # Set during the first paint pass; whoever waits resumes after it, children included.
        self._painted.set()

    async def first_paint_done(self) -> None:
        """Returns once the shown window has painted (or after a bounded wait)."""
        if not self.isVisible():  # a window never shown (tests, tools) never paints
            return
        try:
            # Bounded: a minimised or off-screen window may not paint for a long time, and
            # the keys and checks must not wait for it.
            await asyncio.wait_for(self._painted.wait(), FIRST_PAINT_WAIT_S)
        except TimeoutError:
            log.info("no first paint after %.0f s; starting anyway", FIRST_PAINT_WAIT_S)

    async def _build_saved_when_idle(self) -> None:
        await asyncio.sleep(0.3)
        _ = self.saved_tab
        # Settings' modules load on a worker thread now, not on the GUI thread at the first
        # click (they made that click stall for ~50 ms; benchmarks/bench_responsiveness.py).
        await asyncio.sleep(0.5)
        await asyncio.to_thread(importlib.import_module, "studio_gui.settings_dialog")

    async def smoke_check(self, *, timeout: float = 90) -> None:
        """Headless check for packaged builds: one generation through the selected service, saved.

        Raises whatever stopped it; the caller turns that into the exit code.
        """
        from studio_core.models import GenerationRequest

        log.info("smoke: main window shown (%dx%d)", self.width(), self.height())
        service = self.core.settings.current.selected_service
        request = GenerationRequest(prompt="smoke test sprite, pixel art potion", service=service,
                                    width=256, height=256, steps=4, seed=7)
        done: asyncio.Future = asyncio.get_running_loop().create_future()
        job_id = ""

        saved_images: list = []

        def on_saved(ev) -> None:
            if ev.job_id == job_id:
                saved_images.append(ev.saved)

        def on_finished(finished_id: str, _count: int) -> None:
            # Wait for the job's end, not its first save: closing while it still runs
            # would (rightly) ask what to do with the work in flight.
            if finished_id == job_id and not done.done():
                if saved_images:
                    done.set_result(saved_images[0])
                else:
                    done.set_exception(RuntimeError("the job finished without a saved image"))

        def on_failed(failed_id: str, error: object) -> None:
            if failed_id == job_id and not done.done():
                done.set_exception(error if isinstance(error, BaseException) else RuntimeError(str(error)))

        def on_cancelled(cancelled_id: str) -> None:
            if cancelled_id == job_id and not done.done():
                done.set_exception(asyncio.CancelledError())

        bridge = bridge_for(self.core)
        slots = ((bridge.job_saved, on_saved), (bridge.job_finished, on_finished), (bridge.job_failed, on_failed),
                 (bridge.job_cancelled, on_cancelled))
        for signal, slot in slots:
            signal.connect(slot)
        try:
            # Only JobQueued comes inside submit(), before the id is known here.
            job_id = self.core.jobs.submit(request)
            saved = await asyncio.wait_for(done, timeout)
        finally:
            for signal, slot in slots:  # closures, not a widget's methods: Qt would keep them
                signal.disconnect(slot)
        log.info("smoke: %s saved %s (%d bytes)", service, saved.path, saved.file_size)

    def _restore_ui(self) -> None:
        geo = self.ui.get("geometry")
        if isinstance(geo, str):
            try:
                self.restoreGeometry(QByteArray(base64.b64decode(geo)))
            except ValueError:
                pass
        sizes = self.ui.get("splitter")
        if isinstance(sizes, list) and all(isinstance(s, int) for s in sizes):
            self.splitter.setSizes(sizes)
        tab = self.ui.get("tab")
        if isinstance(tab, int) and 0 <= tab < self.tabs.count():
            self.tabs.setCurrentIndex(tab)

    def collect_ui_state(self) -> dict:
        return {
            "geometry": base64.b64encode(bytes(self.saveGeometry())).decode(),
            "splitter": self.splitter.sizes(),
            "tab": self.tabs.currentIndex(),
        }

    # -- closing ----------------------------------------------------------------------
    # The close dialog's module is imported on the first close, not before the first paint
    # (its QMessageBox types cost ~6 ms there); "keep" is its KEEP.
    def close_without_asking(self, choice: str = "keep") -> None:
        """Later closes go ahead with ``choice`` for any work in flight (a termination
        signal, --quit-after): nobody is there to answer a dialog."""
        self.close_choice = choice

    def work_in_flight(self) -> WorkInFlight:
        from studio_gui.close_dialog import WorkInFlight, work_in_flight

        return work_in_flight(self.core) if getattr(self.core, "jobs", None) is not None else WorkInFlight()

    def _ask_before_closing(self, work: WorkInFlight) -> None:
        if self.close_dialog is not None:
            self.close_dialog.raise_()
            return
        from studio_gui.close_dialog import CloseDialog

        self.close_dialog = CloseDialog(work, self)
        self.close_dialog.chosen.connect(self._on_close_chosen)
        self.close_dialog.open()

    def _on_close_chosen(self, choice: str) -> None:
        dialog, self.close_dialog = self.close_dialog, None
        if dialog is not None:
            dialog.deleteLater()
        if not choice:
            return
        from studio_gui.close_dialog import WAIT

        if choice == WAIT:
            # The window stays usable while the work finishes; closing again asks again.
            self.status.showMessage("The studio closes when the running and waiting jobs have finished…")
            self.tasks.spawn(self._close_when_idle(), name="close when idle")
            return
        self.close_choice = choice
        self.close()

    async def _close_when_idle(self) -> None:
        await self.core.jobs.drain()
        if self.close_choice is None:
            from studio_gui.close_dialog import WAIT

            self.close_choice = WAIT
        self.close()

    # -- the error area's one-click fixes ----------------------------------------------------
    def _remember_failed(self, job_id: str, error: object) -> None:
        entry = self.core.jobs.entry(job_id)
        if entry is not None and isinstance(error, BaseException):
            self._failed[id(error)] = (error, entry.request)
            while len(self._failed) > 20:
                self._failed.pop(next(iter(self._failed)))

    def retry_failed(self, exc: BaseException) -> str | None:
        """Queue the failed job's request again (offered only for retryable errors: the
        request never reached the service, so nothing is paid twice)."""
        kept = self._failed.get(id(exc))
        if kept is None or kept[0] is not exc:
            self.status.showMessage("That job is no longer known; press Generate to run it again.", 8000)
            return None
        return self.core.jobs.submit(kept[1])

    def make_it_fit(self, _exc: BaseException) -> bool:
        """Apply the VRAM planner's first proposal that fits, as its own button does."""
        fit = getattr(self.generate_tab.settings_panel, "fit", None)
        if fit is None or fit.fix_row.isHidden():
            self.status.showMessage("No smaller setting is known to fit this card: lower the size or batch, "
                                    "or start ComfyUI with --lowvram.", 12000)
            return False
        fit.fix_button.click()
        return True

    def _on_settings_write_failed(self, message: str) -> None:
        self.status.showMessage(f"{message} They stay in force until the studio closes.")

    def closeEvent(self, event) -> None:
        from studio_gui.close_dialog import KEEP

        if self.close_choice is None:
            work = self.work_in_flight()
            if work.any:
                event.ignore()
                self._ask_before_closing(work)
                return
            self.close_choice = KEEP
        self.ui = self.collect_ui_state()
        for part in (self.services, self._generate_tab, self._saved_tab, self.spend, self._comfy_health):
            hook = getattr(part, "closing", None)
            if hook is not None:
                hook()
        super().closeEvent(event)
