"""BatchDialog: a prompt list → many images, with the count, time and cost said before starting.

Paste lines or open a .txt/.csv; ``{a|b}`` choices and ``__name__`` word lists from a folder;
× seeds × sizes. The list is read and expanded on a worker thread (word lists are files),
a quarter second after the last keystroke. Running batches show one progress bar with the
ETA and Pause / Resume / Cancel; they live in the core's BatchManager, so closing the
dialog does not stop them and a restart offers the unfinished one again.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Callable

import shiboken6
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio_core.batch import BatchManager, BatchProgress, BatchRun
from studio_core.errors import StudioError
from studio_core.models import GenerationRequest
from studio_gui.batch.plan import BatchPreview, preview, read_list_file
from studio_gui.bridge import bridge_for
from studio_gui.errors import present_error
from studio_gui.tasks import TaskOwner

PLACEHOLDER = ("One prompt per line, e.g.\n"
               "a {red|blue|green} health potion, pixel art\n"
               "a __monsters__ sprite, side view\n\n"
               "Or open a .csv with columns prompt, negative, seed, width, height, count.")
STATE_WORDS = {"running": "Running", "paused": "Paused", "cancelled": "Cancelled", "finished": "Finished"}


def eta_text(seconds: float | None) -> str:
    from studio_gui.sprites.frame_estimate import duration

    if seconds is None:
        return "time left: measuring…"
    return "done" if seconds <= 0 else f"~{duration(seconds)} left"


class BatchDialog(QDialog):
    def __init__(self, core, manager: BatchManager, *, tasks: TaskOwner,
                 template_source: Callable[[], GenerationRequest], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Batch run")
        self.core = core
        self.manager = manager
        self.tasks = tasks
        self.template_source = template_source
        self.csv_mode = False
        self.preview_result = BatchPreview()
        self.run: BatchRun | None = None
        self._catalog: Any = None
        self._preview_task: asyncio.Task | None = None

        lay = QVBoxLayout(self)
        form = QFormLayout()
        self.name = QLineEdit("Batch")
        self.name.setAccessibleName("Set name")
        self.name.setToolTip("The name of the set in the gallery (filter Saved by it)")
        form.addRow("Set name", self.name)
        lay.addLayout(form)

        self.text = QPlainTextEdit()
        self.text.setPlaceholderText(PLACEHOLDER)
        self.text.setAccessibleName("Prompt list")
        self.text.setMinimumHeight(140)
        lay.addWidget(self.text, 1)
        row = QHBoxLayout()
        self.open_button = QPushButton("Open .txt / .csv…")
        self.open_button.setToolTip("Read a prompt list from a file")
        self.open_button.clicked.connect(self._on_open)
        self.source_label = QLabel("Pasted lines")
        row.addWidget(self.open_button)
        row.addWidget(self.source_label, 1)
        lay.addLayout(row)

        opts = QFormLayout()
        words = QHBoxLayout()
        self.words_folder = QLineEdit(core.settings.current.batch_wordlists_folder)
        self.words_folder.setPlaceholderText("folder with name.txt files for __name__")
        self.words_folder.setAccessibleName("Word-list folder")
        browse = QPushButton("Browse…")
        browse.setToolTip("Choose the folder of word lists")
        browse.clicked.connect(self._on_browse)
        words.addWidget(self.words_folder, 1)
        words.addWidget(browse)
        opts.addRow("Word lists", words)
        self.seeds = QSpinBox()
        self.seeds.setRange(1, 100)
        self.seeds.setAccessibleName("Seeds per prompt")
        self.seeds.setToolTip("Images per prompt, each with its own seed")
        opts.addRow("Seeds per prompt", self.seeds)
        self.sizes = QLineEdit()
        self.sizes.setPlaceholderText("the Generate tab's size, or e.g. 1024x1024, 768x1344")
        self.sizes.setAccessibleName("Sizes")
        opts.addRow("Sizes", self.sizes)
        lay.addLayout(opts)

        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setAccessibleName("Batch summary")
        self.problems = QLabel("")
        self.problems.setWordWrap(True)
        self.problems.setStyleSheet("color: #b3261e")
        self.problems.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.problems.hide()
        lay.addWidget(self.summary)
        lay.addWidget(self.problems)

        self.progress = QProgressBar()
        self.progress.setAccessibleName("Batch progress")
        self.progress.hide()
        self.status = QLabel("")
        self.status.hide()
        lay.addWidget(self.progress)
        lay.addWidget(self.status)

        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start batch")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self._on_start)
        self.pause_button = QPushButton("Pause")
        self.pause_button.setToolTip("Finish the images being made, start no new ones")
        self.pause_button.clicked.connect(self._on_pause)
        self.cancel_button = QPushButton("Cancel batch")
        self.cancel_button.setToolTip("Stop now; the images already saved stay in the gallery")
        self.cancel_button.clicked.connect(self._on_cancel)
        self.sheet_button = QPushButton("Contact sheet…")
        self.sheet_button.setToolTip("One PNG with every image of this set and its prompt")
        self.sheet_button.clicked.connect(self._on_sheet)
        close = QPushButton("Close")
        close.setToolTip("Close this window; a running batch goes on")
        close.clicked.connect(self.close)
        for b in (self.start_button, self.pause_button, self.cancel_button, self.sheet_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(close)
        lay.addLayout(buttons)

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(250)
        self._debounce.timeout.connect(self._refresh_preview)
        for sig in (self.text.textChanged, self.words_folder.textChanged, self.sizes.textChanged):
            sig.connect(self._debounce.start)
        self.seeds.valueChanged.connect(self._debounce.start)
        # For the dialog's whole life, not until it is first closed: the Batch… button
        # shows the same dialog again, and it must still follow its run then.
        bridge_for(core).change.connect(self._on_change)
        unfinished = manager.unfinished()
        if unfinished:
            self.show_run(unfinished[-1])
        self._update_buttons()
        self.tasks.spawn(self._load_catalog(), name="batch price catalog")

    # -- the list --------------------------------------------------------------------
    def set_list(self, text: str, *, csv_mode: bool, source: str = "Pasted lines") -> None:
        self.csv_mode = csv_mode
        self.source_label.setText(source)
        self.text.setPlainText(text)

    def _template(self) -> GenerationRequest | None:
        try:
            return self.template_source()
        except (StudioError, ValueError, TypeError):
            return None

    def _refresh_preview(self) -> None:
        if self._preview_task is not None:
            self._preview_task.cancel()
        self._preview_task = self.tasks.spawn(self.refresh_preview(), name="batch preview")

    async def refresh_preview(self) -> BatchPreview:
        t = self._template()
        size = (t.width, t.height) if t is not None else (1024, 1024)
        result = await asyncio.to_thread(
            preview, text=self.text.toPlainText(), csv_mode=self.csv_mode, words_folder=self.words_folder.text().strip(),
            seeds_per_prompt=self.seeds.value(), sizes=self.sizes.text(), default_size=size,
            negative=t.negative_prompt if t is not None else "")
        if shiboken6.isValid(self):  # after the await the dialog may be gone
            self.preview_result = result
            self._show_preview()
        return result

    def _show_preview(self) -> None:
        r = self.preview_result
        lines = ([r.error] if r.error else []) + r.problems
        shown = lines[:8] + ([f"… and {len(lines) - 8} more rows left out"] if len(lines) > 8 else [])
        self.problems.setText("\n".join(shown))
        self.problems.setVisible(bool(lines))
        self.summary.setText(self.describe())
        self._update_buttons()

    def describe(self) -> str:
        """'30 images · ~12 min · free' — what Start will do, before it does it."""
        from studio_gui.sprites.frame_estimate import seconds_per_image, time_text

        n = len(self.preview_result.jobs)
        if not n:
            return ""
        t = self._template()
        service = t.service if t is not None else ""
        parts = [f"{n:,} image{'s' if n != 1 else ''}"]
        per_image = seconds_per_image(self.core.jobs.entries(include_finished=True), service)
        when = time_text(images=n, service=service, per_image=per_image, quality=t.quality if t else None)
        if when:
            parts.append(when)
        elif service:
            parts.append("time unknown until the first images are made")
        if service == "comfyui":
            parts.append("free")
        else:
            cost = self._cost(t, n)
            parts.append(f"~${cost:,.2f}" if cost is not None else "price unknown")
        return " · ".join(parts)

    def _cost(self, t: GenerationRequest | None, n: int) -> float | None:
        if t is None or self._catalog is None or t.service not in self._catalog.providers:
            return None
        from studio_core import costs

        est = costs.price_per_image(t.service, t.model, width=t.width, height=t.height, cat=self._catalog)
        return est.total(n)

    async def _load_catalog(self) -> None:
        from studio_core.providers.cloud import catalog

        try:
            self._catalog = await asyncio.to_thread(catalog.load)
        except StudioError:
            return
        if shiboken6.isValid(self):  # after the await the dialog may be gone
            self.summary.setText(self.describe())

    def problem(self) -> str:
        """Why Start can't run now; "" when it can."""
        if self.run is not None and self.run.state in ("running",):
            return "A batch is running. Pause or cancel it first."
        if self.preview_result.error:
            return self.preview_result.error
        if not self.preview_result.jobs:
            return "Paste prompts or open a .txt / .csv list first."
        if self._template() is None:
            return "The Generate tab's settings are not valid; fix them there first."
        return ""

    # -- running ----------------------------------------------------------------------
    def _on_start(self) -> None:
        if self.problem():
            return
        self.tasks.spawn(self.start(), name="start batch")

    async def start(self) -> BatchRun | None:
        template = self._template()
        if template is None or not self.preview_result.jobs:
            return None
        folder = self.words_folder.text().strip()
        if folder != self.core.settings.current.batch_wordlists_folder:
            self.core.settings.update(batch_wordlists_folder=folder)
        try:
            run = await self.manager.start(self.name.text(), template, list(self.preview_result.jobs))
        except StudioError as exc:
            present_error(self, exc)
            return None
        if shiboken6.isValid(self):  # after the await the dialog may be gone
            self.show_run(run)
        return run

    def show_run(self, run: BatchRun) -> None:
        self.run = run
        self.name.setText(run.rec.name)
        self._show_progress(run.progress())

    def _on_change(self, ev: Any) -> None:
        if isinstance(ev, BatchProgress) and self.run is not None and ev.batch_id == self.run.rec.id:
            self._show_progress(ev)

    def _show_progress(self, ev: BatchProgress) -> None:
        self.progress.setRange(0, max(1, ev.total))
        self.progress.setValue(ev.done)
        self.progress.setFormat(f"{ev.done} / {ev.total}")
        bits = [f"{STATE_WORDS.get(ev.state, ev.state)}: '{ev.name}'", f"{ev.done} of {ev.total} saved"]
        if ev.failed:
            bits.append(f"{ev.failed} failed (Resume tries them again)")
        if ev.state == "running":
            bits.append(eta_text(ev.eta_s))
        if ev.message:
            bits.append(ev.message)
        self.status.setText(" · ".join(bits))
        self.progress.show()
        self.status.show()
        self._update_buttons()

    def _on_pause(self) -> None:
        if self.run is None:
            return
        if self.run.state == "running":
            self.run.pause()
        else:
            self.run.resume()

    def _on_cancel(self) -> None:
        if self.run is not None:
            self.run.cancel()

    def _update_buttons(self) -> None:
        problem = self.problem()
        self.start_button.setEnabled(not problem)
        self.start_button.setToolTip(problem or "Start making every image of the list")
        state = self.run.state if self.run is not None else ""
        self.pause_button.setText("Resume" if state in ("paused", "cancelled") else "Pause")
        self.pause_button.setEnabled(state in ("running", "paused", "cancelled"))
        self.cancel_button.setEnabled(state in ("running", "paused"))
        self.sheet_button.setEnabled(self.run is not None and bool(self.run.done))

    # -- files ------------------------------------------------------------------------
    def _on_open(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a prompt list", "", "Prompt lists (*.txt *.csv)")
        if path:
            self.tasks.spawn(self.open_file(Path(path)), name="open prompt list")

    async def open_file(self, path: Path) -> None:
        try:
            text, is_csv = await asyncio.to_thread(read_list_file, path)
        except StudioError as exc:
            if shiboken6.isValid(self):  # after the await the dialog may be gone
                self.preview_result = BatchPreview(error=exc.user_message)
                self._show_preview()
            return
        if shiboken6.isValid(self):  # after the await the dialog may be gone
            self.set_list(text, csv_mode=is_csv, source=path.name)

    def _on_browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Word-list folder", self.words_folder.text())
        if folder:
            self.words_folder.setText(folder)

    def _on_sheet(self) -> None:
        if self.run is None:
            return
        dest, _ = QFileDialog.getSaveFileName(self, "Save contact sheet", f"{self.run.rec.name} contact sheet.png",
                                              "PNG image (*.png)")
        if dest:
            self.tasks.spawn(self.export_sheet(Path(dest)), name="contact sheet")

    async def export_sheet(self, dest: Path) -> Path | None:
        """The set's images in the gallery, oldest first, captioned with their prompts."""
        from studio_core.storage.contact_sheet import write_contact_sheet
        from studio_core.storage.records import ImageQuery

        if self.run is None or self.core.index is None:
            return None
        records = await self.core.index.query(ImageQuery(set_name=self.run.rec.name, sort="oldest"), limit=5000)
        items = [(self.core.index.abs_path(r), r.prompt) for r in records]
        try:
            path = await asyncio.to_thread(write_contact_sheet, items, dest)
        except StudioError as exc:
            present_error(self, exc)
            return None
        if shiboken6.isValid(self):  # after the await the dialog may be gone
            self.status.setText(f"Contact sheet saved: {path}")
        return path


def attach_batch_button(tab, layout) -> QPushButton:
    """The Generate tab's "Batch…" button: opens the dialog; the manager opens at once so a
    batch a crash interrupted claims its queued jobs before anything could run them twice."""
    manager = BatchManager(tab.core)
    tab.batch_manager = manager
    button = QPushButton("Batch…")
    button.setMinimumHeight(34)
    button.setAccessibleName("Batch run")
    button.setToolTip("Make many images from a list of prompts (.txt, .csv, or pasted lines)")

    async def open_manager() -> None:
        unfinished = await manager.open()
        if unfinished and shiboken6.isValid(button):  # after the await the button may be gone
            button.setText(f"Batch… ({len(unfinished)} unfinished)")
            button.setToolTip("A batch stopped before it was done: open to resume it")

    def build_template() -> GenerationRequest:
        return tab.build_request()

    def open_dialog() -> None:
        dlg = getattr(tab, "_batch_dialog", None)
        if dlg is None:
            dlg = BatchDialog(tab.core, manager, tasks=tab.tasks, template_source=build_template, parent=tab)
            dlg.resize(640, 620)
            tab._batch_dialog = dlg
        button.setText("Batch…")
        dlg.show()
        dlg.raise_()

    button.clicked.connect(open_dialog)
    layout.addWidget(button, 1)
    tab.tasks.spawn(open_manager(), name="batch manager")
    return button
