"""The local-setup wizard: plan → confirm → progress (per file and overall) → result.

All reading of the GPU, the disk and the catalog, the downloads, unpacking and pip run in
the core on the asyncio loop or in worker threads; this dialog only shows events. The test
image is decoded in a worker thread too (QImage, not QPixmap, is safe off the GUI thread).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import sys
from pathlib import Path
from typing import Callable

import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QImage, QPixmap
from PySide6.QtWidgets import (QComboBox, QDialog, QFileDialog, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
                               QPlainTextEdit, QProgressBar, QPushButton, QStackedWidget, QTreeWidget, QTreeWidgetItem,
                               QVBoxLayout, QWidget)

from studio_core.errors import StudioError
from studio_core.setup import (catalog as catalog_mod, entered_sums, first_start, gitsource, gpu_facts, installer,
                                update)
from studio_core.setup.catalog import Catalog, FileSpec
from studio_core.setup.plan import PORTABLE_WORDS, Plan, human_size, make_plan
from studio_core.setup.progress import describe
from studio_core.setup.pyenv import PythonEnv
from studio_gui.tasks import TaskOwner

log = logging.getLogger(__name__)

_ERROR_STYLE = "color: #d0312d;"
# What an update moved across, in the user's words (studio_core.setup.update.KEEP and the venv).
_CARRIED_WORDS = {"models": "your models", "custom_nodes": "custom nodes", "user": "ComfyUI's settings and workflows",
                  "output": "your images", "input": "input images", "venv": "the Python environment"}
_MUTED_STYLE = "color: palette(placeholder-text);"


def _label(text: str = "", *, style: str = "", name: str = "") -> QLabel:
    lab = QLabel(text)
    lab.setWordWrap(True)
    lab.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if style:
        lab.setStyleSheet(style)
    if name:
        lab.setObjectName(name)
        lab.setAccessibleName(name)
    return lab


class SetupWizard(QDialog):
    """Non-modal; everything it starts is cancelled when it closes."""

    def __init__(self, core, *, tasks: TaskOwner | None = None, catalog: Catalog | None = None,
                 env: PythonEnv | None = None, gpu_reader: Callable[[], gpu_facts.GpuFacts | None] = gpu_facts.read,
                 disk_usage: Callable = shutil.disk_usage, folder: str | Path | None = None,
                 platform: str = sys.platform, git_finder: Callable[[], str | None] = gitsource.find_git,
                 parent=None):
        super().__init__(parent)
        self._platform = platform  # the plan is for this computer; screenshots and tests pass another
        self._git_finder = git_finder
        self._git_found = True
        self.core = core
        self.tasks = tasks or TaskOwner()
        self._catalog = catalog
        self._env = env
        self._gpu_reader = gpu_reader
        self._disk_usage = disk_usage
        self._gpu: gpu_facts.GpuFacts | None = None
        self.plan: Plan | None = None
        self._run: asyncio.Task | None = None
        self._sum_for: FileSpec | None = None  # the unpinned file the checksum row is asking about
        self.result_image: QImage | None = None
        self.setWindowTitle("Set up local generation")
        self.setObjectName("SetupWizard")
        self.resize(860, 560)
        self.pages = QStackedWidget()
        QVBoxLayout(self).addWidget(self.pages)
        self._build_plan_page(folder)
        self._build_progress_page()
        self._build_result_page()
        self.finished.connect(lambda _r: self._cancel())
        self.tasks.spawn(self._load(), name="setup plan")

    # -- page 1: the plan ------------------------------------------------------------------------
    def _build_plan_page(self, folder: str | Path | None) -> None:
        page = QWidget()
        lay = QVBoxLayout(page)
        lay.addWidget(_label("<h3>Set up local generation</h3>Free image generation on this computer: the app "
                             "downloads ComfyUI, a Python environment and one model that suits your graphics card. "
                             "Nothing is downloaded until you press Install."))
        self.gpu_label = _label("Reading the graphics card…", name="GPU")
        lay.addWidget(self.gpu_label)
        # NVML sees NVIDIA cards only: on Windows without one, the user says which card there is.
        self.build_row = QWidget()
        brow0 = QHBoxLayout(self.build_row)
        brow0.setContentsMargins(0, 0, 0, 0)
        brow0.addWidget(QLabel("Graphics card"))
        self.build_choice = QComboBox()
        self.build_choice.setAccessibleName("Portable build")
        for build, text in (("nvidia", "None (or not listed): run on the processor"),
                            ("amd", f"{PORTABLE_WORDS['amd']}: the AMD portable build"),
                            ("intel", f"{PORTABLE_WORDS['intel']}: the Intel portable build")):
            self.build_choice.addItem(text, build)
        self.build_choice.currentIndexChanged.connect(lambda _i: self._replan())
        brow0.addWidget(self.build_choice)
        brow0.addStretch(1)
        self.build_row.hide()
        lay.addWidget(self.build_row)
        self.notes_label = _label(style=_MUTED_STYLE, name="Plan notes")
        lay.addWidget(self.notes_label)
        self.components = QTreeWidget()
        self.components.setHeaderLabels(["What", "Size", "Licence", "Checksum", "From"])
        self.components.setRootIsDecorated(False)
        self.components.setAccessibleName("Components to install")
        self.components.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.components.header().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.components.header().setSectionResizeMode(3, QHeaderView.ResizeMode.ResizeToContents)
        # Licence and source are one hover away (tooltips): the name of each piece gets the room.
        self.components.header().setStretchLastSection(False)
        self.components.setColumnWidth(2, 120)
        self.components.setColumnWidth(4, 150)
        lay.addWidget(self.components, 1)
        frow = QHBoxLayout()
        frow.addWidget(QLabel("Install into"))
        default = folder or self.core.settings.current.comfy_server_folder or (self.core.paths.data / "ComfyUI")
        self.folder = QLineEdit(str(default))
        self.folder.setAccessibleName("Install folder")
        self.folder.editingFinished.connect(self._replan)
        frow.addWidget(self.folder, 1)
        browse = QPushButton("Change…")
        browse.clicked.connect(self._browse)
        frow.addWidget(browse)
        lay.addLayout(frow)
        self.disk_label = _label(name="Disk space")
        lay.addWidget(self.disk_label)
        self.problems_label = _label(style=_ERROR_STYLE, name="Why it can't be installed")
        self.problems_label.hide()
        lay.addWidget(self.problems_label)
        self._build_sum_row(lay)
        brow = QHBoxLayout()
        brow.addStretch(1)
        self.repair_button = QPushButton("Repair")
        self.repair_button.setToolTip("Check every installed file against its checksum and fetch what is wrong.")
        self.repair_button.clicked.connect(self._on_repair)
        self.repair_button.hide()
        self.update_button = QPushButton("Update")
        self.update_button.setToolTip("Download the next ComfyUI version, keep your models, custom nodes and images, "
                                      "and switch over only once it starts.")
        self.update_button.clicked.connect(self._on_update)
        self.update_button.hide()
        self.install_button = QPushButton("Install")
        self.install_button.setEnabled(False)
        self.install_button.setDefault(True)
        self.install_button.clicked.connect(self._on_install)
        close = QPushButton("Close")
        close.clicked.connect(self.reject)
        for b in (self.repair_button, self.update_button, self.install_button, close):
            brow.addWidget(b)
        lay.addLayout(brow)
        self.pages.addWidget(page)

    def _build_sum_row(self, lay: QVBoxLayout) -> None:
        """Where the user pastes the SHA-256 of a file the app has no pinned sum for."""
        self.sum_box = QWidget()
        box = QVBoxLayout(self.sum_box)
        box.setContentsMargins(0, 0, 0, 0)
        self.sum_prompt = _label(name="Checksum to enter")
        self.sum_prompt.setOpenExternalLinks(True)
        self.sum_prompt.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        box.addWidget(self.sum_prompt)
        row = QHBoxLayout()
        self.sum_edit = QLineEdit()
        self.sum_edit.setPlaceholderText("64 letters and digits, e.g. 3f8a…")
        self.sum_edit.setAccessibleName("SHA-256 checksum")
        self.sum_edit.setFont(QFont("monospace"))
        self.sum_edit.returnPressed.connect(self._on_sum_entered)
        row.addWidget(self.sum_edit, 1)
        self.sum_button = QPushButton("Use this checksum")
        self.sum_button.setToolTip("The download is checked against it; a file that does not match is deleted.")
        self.sum_button.clicked.connect(self._on_sum_entered)
        row.addWidget(self.sum_button)
        box.addLayout(row)
        self.sum_error = _label(style=_ERROR_STYLE, name="Checksum problem")
        self.sum_error.hide()
        box.addWidget(self.sum_error)
        self.sum_box.hide()
        lay.addWidget(self.sum_box)

    def _entered(self) -> dict:
        return dict(self.core.settings.current.setup_entered_sums or {})

    def _effective_catalog(self) -> Catalog:
        """The shipped catalog with the sums the user entered filling its gaps."""
        assert self._catalog is not None
        return self._catalog.with_user_sums(entered_sums.sums_from_settings(self._entered()))

    def _ask_sum_for(self, spec: FileSpec | None) -> None:
        self._sum_for = spec
        self.sum_box.setVisible(spec is not None)
        self.sum_error.hide()
        if spec is None:
            return
        where = f'<a href="{spec.source}">{spec.source}</a>' if spec.source else spec.url
        self.sum_prompt.setText(f"To use {spec.name} anyway, copy the SHA-256 checksum shown for it at {where} and "
                                "paste it here. The download is checked against it, and the plan marks it as "
                                "entered by you.")

    def _on_sum_entered(self) -> None:
        spec = self._sum_for
        if spec is None:
            return
        try:
            stored = entered_sums.remember(self._entered(), spec, self.sum_edit.text())
        except StudioError as exc:
            self.sum_error.setText(exc.user_message)
            self.sum_error.show()
            return
        self.core.settings.update(setup_entered_sums=stored)
        self.sum_edit.clear()
        self._replan()

    def _browse(self) -> None:
        dlg = QFileDialog(self, "Where should ComfyUI go?")
        dlg.setFileMode(QFileDialog.FileMode.Directory)
        dlg.fileSelected.connect(lambda p: (self.folder.setText(str(Path(p) / "ComfyUI")), self._replan()))
        dlg.open()

    async def _load(self) -> None:
        if self._catalog is None:
            try:
                self._catalog = await asyncio.to_thread(catalog_mod.load)
            except (OSError, ValueError, KeyError) as exc:
                if shiboken6.isValid(self):  # after the await the wizard may be gone
                    self.gpu_label.setText(f"The setup data could not be read ({exc}); reinstalling the app "
                                           "fixes this.")
                return
        self._gpu = await asyncio.to_thread(self._gpu_reader)
        self._git_found = bool(await asyncio.to_thread(self._git_finder))
        if shiboken6.isValid(self):  # after the await the wizard may be gone
            await self._make_plan()

    def _replan(self) -> None:
        if self._catalog is not None:
            self.tasks.spawn(self._make_plan(), name="setup re-plan")

    async def _make_plan(self) -> None:
        assert self._catalog is not None
        folder = Path(self.folder.text().strip() or ".").expanduser()
        catalog = self._effective_catalog()
        # An update a crash cut off is put right before the folder is read.
        recovered = await asyncio.to_thread(update.recover, folder)
        free = await asyncio.to_thread(installer.free_bytes, folder, self._disk_usage)
        manifest = await asyncio.to_thread(installer.read_manifest, folder)
        if not shiboken6.isValid(self):  # after the await the wizard may be gone
            return
        windows = self._platform == "win32" and bool(catalog.latest.portable)
        self.build_row.setVisible(windows and self._gpu is None)
        build = self.build_choice.currentData() if self.build_row.isVisible() else None
        self.plan = plan = make_plan(self._gpu, free, catalog, folder, platform=self._platform,
                                     git_found=self._git_found, windows_build=build)
        self.gpu_label.setText(plan.device)
        notes = ([recovered] if recovered else []) + list(plan.notes)
        self.notes_label.setText("\n".join(notes))
        self.notes_label.setVisible(bool(notes))
        self.components.clear()
        for c in plan.components:
            item = QTreeWidgetItem([c.title, c.detail, c.licence, c.sum_source, c.source])
            for col in range(5):  # the columns are narrow; the full text is one hover away
                item.setToolTip(col, item.text(col))
            if c.sum_from:
                item.setToolTip(3, f"{c.sum_source}: {c.sum_from}")
            if not c.pinned:
                item.setToolTip(0, "No pinned checksum: this item will not be installed.")
                item.setForeground(0, Qt.GlobalColor.red)
            self.components.addTopLevelItem(item)
        self.disk_label.setText(f"Needs about {human_size(plan.disk_needed)}; {human_size(plan.disk_free)} is free "
                                f"there. Sizes and sums as of {self._catalog.as_of}.")
        problems = list(plan.problems) if manifest is None else []
        unpinned = next((f for f in plan.downloads if not f.pinned), None) if manifest is None else None
        offer = None
        if manifest is not None:
            problems.append(f"ComfyUI {manifest.get('comfyui')} is already installed in {folder}. Repair checks "
                            "every file and that PyTorch imports, and fetches what is wrong.")
            offer = update.offer_for(manifest, catalog)
            if offer is None:
                problems.append(f"No newer pinned version of ComfyUI than {manifest.get('comfyui')} is known to this "
                                "version of the app for this install.")
            else:
                problems.append(f"An update is available: {offer.what_changes()}")
                if offer.asset is not None and not offer.asset.pinned:
                    problems.append(f"{offer.asset.name} has no pinned checksum in this version of the app.")
                    unpinned = offer.asset
        self.problems_label.setText("\n".join(problems))
        self.problems_label.setVisible(bool(problems))
        self._ask_sum_for(unpinned)
        self.repair_button.setVisible(manifest is not None)
        self.update_button.setVisible(offer is not None)
        if offer is not None:
            self.update_button.setText(f"Update to {offer.release.version}")
            self.update_button.setEnabled(offer.pinned)
        self.install_button.setEnabled(plan.can_install and manifest is None)

    # -- page 2: progress --------------------------------------------------------------------------
    def _build_progress_page(self) -> None:
        page = QWidget()
        lay = QVBoxLayout(page)
        self.step_label = _label(name="Step")
        self.step_label.setFont(QFont(self.font().family(), self.font().pointSize() + 1, QFont.Weight.Bold))
        lay.addWidget(self.step_label)
        self.file_label = _label(name="Current file")
        self.file_bar = QProgressBar()
        self.file_bar.setRange(0, 1000)
        self.file_bar.setAccessibleName("This file")
        self.file_detail = _label(style=_MUTED_STYLE)
        self.overall_label = _label("All downloads")
        self.overall_bar = QProgressBar()
        self.overall_bar.setRange(0, 1000)
        self.overall_bar.setAccessibleName("All downloads")
        self.overall_detail = _label(style=_MUTED_STYLE)
        for w in (self.file_label, self.file_bar, self.file_detail, self.overall_label, self.overall_bar,
                  self.overall_detail):
            lay.addWidget(w)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(2000)
        self.log.setFont(QFont("monospace"))
        self.log.setAccessibleName("Setup log")
        lay.addWidget(self.log, 1)
        brow = QHBoxLayout()
        brow.addStretch(1)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop and remove everything this setup has put on disk so far.")
        self.cancel_button.clicked.connect(self._cancel)
        brow.addWidget(self.cancel_button)
        lay.addLayout(brow)
        self.pages.addWidget(page)

    def _on_event(self, event: installer.SetupEvent) -> None:
        if not shiboken6.isValid(self):  # called from the install task, which outlives a closed wizard
            return
        if isinstance(event, installer.StepStarted):
            self.step_label.setText(event.text)
        elif isinstance(event, installer.DownloadProgress):
            self.file_label.setText(event.name)
            self.file_bar.setValue(int(event.file.fraction * 1000))
            self.file_detail.setText(describe(event.file))
            self.overall_bar.setValue(int(event.overall.fraction * 1000))
            self.overall_detail.setText(describe(event.overall))
        elif isinstance(event, installer.UnpackProgress):
            self.file_label.setText(f"Unpacking {event.name}")
            self.file_bar.setValue(int(min(1.0, event.done / event.total) * 1000) if event.total else 0)
            self.file_detail.setText(f"{human_size(event.done)} of {human_size(event.total)} unpacked")
        elif isinstance(event, installer.LogLine):
            self.log.appendPlainText(event.text)

    # -- running -----------------------------------------------------------------------------------
    def _on_install(self) -> None:
        if self.plan is None or not self.plan.can_install:
            return
        self.pages.setCurrentIndex(1)
        self.cancel_button.setEnabled(True)
        self._run = self.tasks.spawn(self._install(self.plan), name="local setup")

    def _on_repair(self) -> None:
        self.pages.setCurrentIndex(1)
        self.cancel_button.setEnabled(True)
        self._run = self.tasks.spawn(self._repair(Path(self.folder.text().strip()).expanduser()),
                                     name="local setup repair")

    def _on_update(self) -> None:
        self.pages.setCurrentIndex(1)
        self.cancel_button.setEnabled(True)
        self._run = self.tasks.spawn(self._update(Path(self.folder.text().strip()).expanduser()),
                                     name="local setup update")

    async def _stop_server_in(self, folder: Path) -> bool:
        """Stop the managed server when it runs from ``folder`` (its files are about to change); True if it ran."""
        s = self.core.settings.current
        server = self.core.comfy_server
        same = bool(s.comfy_server_folder) and Path(s.comfy_server_folder).expanduser() == folder
        if same and server.running:
            self._on_event(installer.StepStarted("stop", "Stopping ComfyUI while its files change…"))
            await server.stop()
            return True
        return False

    def _cancel(self) -> None:
        if self._run is not None and not self._run.done():
            self.step_label.setText("Cancelling and removing the partial setup…")
            self.cancel_button.setEnabled(False)
            self._run.cancel()

    async def _install(self, plan: Plan) -> None:
        assert self._catalog is not None
        try:
            folder = await installer.Installer(plan, self._effective_catalog(), env=self._env,
                                               on_event=self._on_event,
                                               disk_usage=self._disk_usage).install()
            await self._start_and_prove(folder)
        except asyncio.CancelledError:
            self._show_result(False, "Cancelled. Nothing from this setup is left on disk.", retry=True)
            raise
        except StudioError as exc:
            self._show_result(False, exc.user_message, retry=True)

    async def _repair(self, folder: Path) -> None:
        assert self._catalog is not None
        try:
            await self._stop_server_in(folder)
            report = await installer.repair(folder, self._effective_catalog(), env=self._env, on_event=self._on_event)
            fixed = (f"{len(report.fixed)} fixed: {', '.join(report.fixed)}." if report.fixed
                     else "Every file matched its checksum.")
            self._show_result(True, f"Checked {report.checked} files. {fixed} PyTorch {report.torch} imports in "
                                    "ComfyUI's Python.", retry=False)
        except asyncio.CancelledError:
            self._show_result(False, "Repair cancelled.", retry=True)
            raise
        except StudioError as exc:
            self._show_result(False, exc.user_message, retry=True)

    async def _update(self, folder: Path) -> None:
        assert self._catalog is not None
        server = self.core.comfy_server

        async def prove() -> None:
            first_start.register(self.core.settings, folder)
            await server.start()

        was_running = False
        try:
            was_running = await self._stop_server_in(folder)
            report = await update.update(folder, self._effective_catalog(), prove=prove, env=self._env,
                                         on_event=self._on_event, disk_usage=self._disk_usage)
        except asyncio.CancelledError:
            self._show_result(False, "Update cancelled. The installed ComfyUI was left as it was.", retry=True)
            raise
        except StudioError as exc:
            self._show_result(False, exc.user_message, retry=True)
            if was_running:  # the version that worked before is what the user had running
                try:
                    await server.start()
                except StudioError as again:
                    log.warning("restarting the previous ComfyUI after a failed update: %s", again)
            return
        edited = (f" Your edited {', '.join(report.kept_edited)} were kept as they were." if report.kept_edited
                  else "")
        kept = ", ".join(_CARRIED_WORDS.get(name.rsplit("/", 1)[-1], name) for name in report.carried)
        self._show_result(True, f"ComfyUI {report.to_version} is installed and running at {server.url}; "
                                f"{report.from_version} was removed. Carried over: {kept}.{edited}", retry=False)

    async def _start_and_prove(self, folder: Path) -> None:
        self._on_event(installer.StepStarted("start", "Starting ComfyUI and making a test image…"))
        first_start.register(self.core.settings, folder)
        url = await self.core.comfy_server.start()
        assert self._catalog is not None
        checkpoint = await asyncio.to_thread(first_start.installed_checkpoint, folder, self._catalog)
        result = await first_start.smoke_image(url, folder, checkpoint=checkpoint)
        image = await asyncio.to_thread(QImage.fromData, result.png)
        self.result_image = image
        if shiboken6.isValid(self):  # after the await the wizard may be gone
            self.image_label.setPixmap(QPixmap.fromImage(image).scaled(
                128, 128, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation))
            self.image_label.show()
        drawn = f"drawn by {result.checkpoint}" if result.checkpoint else "a plain test image"
        note = f" {result.note}" if result.note else ""
        self._show_result(True, f"ComfyUI is installed in {folder}, added as the server the app starts for you, "
                                f"and running at {url}. The image below ({drawn}) came from it and was then deleted "
                                f"from its output folder.{note} Pick ComfyUI on the left and generate a sprite.",
                          retry=False)

    # -- page 3: the result ------------------------------------------------------------------------
    def _build_result_page(self) -> None:
        page = QWidget()
        lay = QVBoxLayout(page)
        self.result_label = _label(name="Setup result")
        lay.addWidget(self.result_label)
        self.image_label = QLabel()
        self.image_label.setAccessibleName("Test image")
        self.image_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image_label.hide()
        lay.addWidget(self.image_label)
        lay.addStretch(1)
        brow = QHBoxLayout()
        brow.addStretch(1)
        self.retry_button = QPushButton("Try again")
        self.retry_button.setToolTip("Downloads that broke off continue where they stopped.")
        self.retry_button.clicked.connect(self._retry)
        self.done_button = QPushButton("Close")
        self.done_button.clicked.connect(self.accept)
        brow.addWidget(self.retry_button)
        brow.addWidget(self.done_button)
        lay.addLayout(brow)
        self.pages.addWidget(page)

    def _show_result(self, ok: bool, text: str, *, retry: bool) -> None:
        if not shiboken6.isValid(self):  # reached at the end of the install task, which outlives a closed wizard
            return
        self.result_label.setText(("✔ " if ok else "✕ ") + text)
        self.result_label.setStyleSheet("" if ok else _ERROR_STYLE)
        self.retry_button.setVisible(retry)
        self.pages.setCurrentIndex(2)

    def _retry(self) -> None:
        self.pages.setCurrentIndex(0)
        self._replan()
