"""Settings page “ComfyUI server”: the address to use, a connection test, and a server the
app starts and stops for the user (with its log)."""

from __future__ import annotations

import asyncio

import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QCheckBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit,
                               QPushButton, QVBoxLayout, QWidget)

from studio_core.comfy_server import NotAComfyFolder, ServerState, command_spec, inspect_folder
from studio_core.errors import StudioError
from studio_core.models import ProviderStatus, ServiceState
from studio_core.providers.comfy import discovery
from studio_core.providers.comfy.client import normalize_url
from studio_gui.bridge import bridge_for
from studio_gui.tasks import TaskOwner

_STATE_TEXT = {ServerState.stopped: "Stopped", ServerState.starting: "Starting…", ServerState.running: "Running",
               ServerState.restarting: "Restarting…", ServerState.failed: "Stopped with an error"}


class ServerPage(QWidget):
    def __init__(self, core, *, tasks: TaskOwner, parent: QWidget | None = None):
        super().__init__(parent)
        self.core = core
        self.tasks = tasks
        self.server = core.comfy_server
        s = core.settings.current
        lay = QVBoxLayout(self)
        aform = QFormLayout()
        self.address = QLineEdit(s.comfy_url)
        self.address.setPlaceholderText("empty: look on this computer (port 8188, then ComfyUI Desktop's 8000)")
        self.address.setAccessibleName("ComfyUI address")
        self.address.setToolTip("Where your ComfyUI answers, e.g. http://127.0.0.1:8188 or http://192.168.1.20:8188. "
                                "A server the app starts below is used while it runs; this address is kept.")
        self.test_button = QPushButton("Test connection")
        self.test_button.clicked.connect(self._on_test)
        arow = QHBoxLayout()
        arow.addWidget(self.address, 1)
        arow.addWidget(self.test_button)
        aform.addRow("Address", arow)
        lay.addLayout(aform)
        self.address_error = QLabel()
        self.address_error.setWordWrap(True)
        self.address_error.setStyleSheet("color: #d0312d;")
        self.address_error.hide()
        lay.addWidget(self.address_error)
        self.test_result = QLabel()
        self.test_result.setWordWrap(True)
        self.test_result.setAccessibleName("Connection test result")
        self.test_result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.test_result)
        self.in_use = QLabel()
        self.in_use.setWordWrap(True)
        self.in_use.setStyleSheet("color: palette(placeholder-text);")
        lay.addWidget(self.in_use)
        self.address.editingFinished.connect(self._save_address)
        # The core's bridge: Qt drops these connections with this page.
        bridge = bridge_for(core)
        bridge.settings_changed.connect(self._on_settings_changed)
        self._show_in_use()
        intro = QLabel("The app can start ComfyUI for you on this computer, with settings that suit your GPU, "
                       "and stop it when you close the app.")
        intro.setWordWrap(True)
        lay.addWidget(intro)
        setup_row = QHBoxLayout()
        self.setup_button = QPushButton("Set up local generation…")
        self.setup_button.setToolTip("No ComfyUI yet? Install ComfyUI, PyTorch and a model that fits your GPU.")
        self.setup_button.clicked.connect(self._open_setup)
        setup_row.addWidget(self.setup_button)
        setup_row.addStretch(1)
        lay.addLayout(setup_row)
        form = QFormLayout()
        self.folder = QLineEdit(s.comfy_server_folder)
        self.folder.setPlaceholderText("e.g. C:\\ComfyUI_windows_portable or ~/ComfyUI")
        self.folder.setAccessibleName("ComfyUI folder")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        frow = QHBoxLayout()
        frow.addWidget(self.folder, 1)
        frow.addWidget(browse)
        form.addRow("ComfyUI folder", frow)
        self.command = QLineEdit(s.comfy_start_command)
        self.command.setPlaceholderText("optional, e.g. python main.py --port {port}")
        self.command.setAccessibleName("Start command")
        self.command.setToolTip("Used instead of the folder's own main.py when set. {port} is replaced by the "
                                "port the app picks; without it --listen and --port are added.")
        form.addRow("Or a start command", self.command)
        self.auto = QCheckBox("Start ComfyUI when the app starts")
        self.auto.setChecked(s.comfy_manage_server)
        form.addRow("", self.auto)
        lay.addLayout(form)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #d0312d;")
        self.error.hide()
        lay.addWidget(self.error)
        brow = QHBoxLayout()
        self.start_button = QPushButton("Start")
        self.stop_button = QPushButton("Stop")
        self.start_button.clicked.connect(self._on_start)
        self.stop_button.clicked.connect(lambda: self.tasks.spawn(self.server.stop()))
        self.state_label = QLabel()
        brow.addWidget(self.start_button)
        brow.addWidget(self.stop_button)
        brow.addWidget(self.state_label, 1)
        lay.addLayout(brow)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(2000)
        self.log.setFont(QFont("monospace"))
        self.log.setAccessibleName("ComfyUI log")
        self.log.setPlaceholderText(f"ComfyUI's output appears here (and in {self.server.log_file}).")
        lay.addWidget(self.log, 1)
        for line in self.server.last_lines:
            self.log.appendPlainText(line)
        bridge.server_output.connect(self._on_line)
        bridge.server_state.connect(self._on_server_state)
        for w in (self.folder, self.command):
            w.editingFinished.connect(self._save)
        self.auto.toggled.connect(lambda _: self._save())
        self._on_state(self.server.state, self.server.message)

    def _on_settings_changed(self, _settings: object, _changed: object) -> None:
        self._show_in_use()

    # -- the address ------------------------------------------------------------------------
    def address_problem(self) -> str:
        """"" when the address field is empty or a usable http(s) address, else why not."""
        text = self.address.text().strip()
        if not text:
            return ""
        try:
            normalize_url(text)
        except StudioError as exc:
            return exc.user_message
        return ""

    def _save_address(self) -> bool:
        problem = self.address_problem()
        self.address_error.setText(problem)
        self.address_error.setVisible(bool(problem))
        if problem:
            return False  # the last good address stays in force until this one is fixed
        text = self.address.text().strip()
        url = normalize_url(text) if text else ""
        self.core.settings.update(comfy_url=url)
        return True

    def _show_in_use(self) -> None:
        s = self.core.settings.current
        if s.comfy_managed_url:
            why = "the server the app started"
        elif s.comfy_url:
            why = "your address"
        elif s.comfy_found_url:
            why = "found on this computer"
        else:
            why = "the default; nothing was found on this computer yet"
        self.in_use.setText(f"In use now: {s.comfy_active_url} ({why}).")

    def _on_test(self) -> None:
        if not self._save_address():
            return
        self.test_button.setEnabled(False)
        self.test_result.setStyleSheet("")
        self.test_result.setText("Testing…")
        self.tasks.spawn(self._test(self.address.text().strip()), name="comfy connection test")

    async def _test(self, typed: str) -> None:
        from studio_core.providers.comfy.provider import ComfyProvider

        try:
            if typed:
                url = normalize_url(typed)
            else:
                url = await discovery.refresh_found_url(self.core.settings) or ""
                if not url:
                    self._show_test(False, "No ComfyUI answered on this computer at "
                                    + " or ".join(discovery.LOCAL_CANDIDATES) + ". Start ComfyUI, or enter its address.")
                    return
            prov = ComfyProvider(url)
            try:
                status = await prov.check()
            finally:
                await prov.aclose()
            self._show_test(status.state is ServiceState.ready, describe_status(url, status, found=not typed))
        finally:
            if shiboken6.isValid(self):  # after the await the page may be gone
                self.test_button.setEnabled(True)

    def _show_test(self, ok: bool, text: str) -> None:
        if not shiboken6.isValid(self):  # reached after the test's await
            return
        self.test_result.setText(("✔ " if ok else "✕ ") + text)
        self.test_result.setStyleSheet("" if ok else "color: #d0312d;")

    def _open_setup(self) -> None:
        from studio_gui.setup_wizard import SetupWizard

        self.setup_wizard = SetupWizard(self.core, tasks=self.tasks, parent=self)
        self.setup_wizard.finished.connect(lambda _r: self._reload_folder())
        self.setup_wizard.show()

    def _reload_folder(self) -> None:
        if shiboken6.isValid(self):  # the wizard may have registered its install as the managed server
            s = self.core.settings.current
            self.folder.setText(s.comfy_server_folder)
            self.auto.setChecked(s.comfy_manage_server)

    def _browse(self) -> None:
        dlg = QFileDialog(self, "Choose the ComfyUI folder")
        dlg.setFileMode(QFileDialog.FileMode.Directory)
        dlg.fileSelected.connect(lambda path: (self.folder.setText(path), self._save()))
        dlg.open()

    def validate(self) -> str:
        """"" when the folder/command can be started, else the message to show in place."""
        try:
            if self.command.text().strip():
                command_spec(self.command.text(), cwd=self.folder.text().strip() or None)
            else:
                inspect_folder(self.folder.text())
        except NotAComfyFolder as exc:
            return exc.user_message
        return ""

    def _save(self) -> None:
        problem = self.validate() if (self.folder.text().strip() or self.command.text().strip()) else ""
        self.error.setText(problem)
        self.error.setVisible(bool(problem))
        self.core.settings.update(comfy_server_folder=self.folder.text().strip(),
                                  comfy_start_command=self.command.text().strip(),
                                  comfy_manage_server=self.auto.isChecked())

    def _on_start(self) -> None:
        self._save()
        problem = self.validate()
        if problem:
            self.error.setText(problem)
            self.error.show()
            return
        self.tasks.spawn(self._start())

    async def _start(self) -> None:
        try:
            await self.server.start()
        except StudioError as exc:
            if shiboken6.isValid(self):  # after the await the page may be gone
                self.error.setText(exc.user_message)
                self.error.show()
        except asyncio.CancelledError:
            raise

    def _on_line(self, line: str) -> None:
        self.log.appendPlainText(line)

    def _on_server_state(self, state: str, message: str) -> None:
        self._on_state(ServerState(state), message)

    def _on_state(self, state: ServerState, message: str) -> None:
        busy = state in (ServerState.starting, ServerState.restarting)
        self.start_button.setEnabled(state in (ServerState.stopped, ServerState.failed))
        self.stop_button.setEnabled(state is not ServerState.stopped)
        text = _STATE_TEXT[state] + (f" — {message}" if message and not busy else "")
        if state is ServerState.running:
            text = f"Running at {self.server.url}"
        self.state_label.setText(text)
        if state is ServerState.running:
            self.error.hide()


def describe_status(url: str, status: ProviderStatus, *, found: bool = False) -> str:
    """A connection test's outcome in one or two sentences: version, device and VRAM, or the reason."""
    if status.state is not ServiceState.ready:
        return status.message
    version = status.detail("version") or "(version not reported: an older ComfyUI)"
    device = status.detail("device") or "an unknown device"
    total, free = status.detail("vram_total"), status.detail("vram_free")
    memory = "RAM" if status.detail("device_type") == "cpu" else "VRAM"
    vram = f", {free / 2**30:.1f} of {total / 2**30:.1f} GB {memory} free" if isinstance(total, (int, float)) \
        and isinstance(free, (int, float)) and total > 0 else ""
    where = f"found at {url}" if found else f"at {url}"
    return f"ComfyUI {version} {where}, running on {device}{vram}."


def server_page(core, *, tasks: TaskOwner, parent: QWidget | None = None) -> QWidget:
    return ServerPage(core, tasks=tasks, parent=parent)
