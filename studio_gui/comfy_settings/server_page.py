"""Settings page “ComfyUI server”: let the app start and stop ComfyUI, and watch its log."""

from __future__ import annotations

import asyncio

import shiboken6
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QCheckBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit,
                               QPushButton, QVBoxLayout, QWidget)

from studio_core.comfy_server import NotAComfyFolder, ServerState, command_spec, inspect_folder
from studio_core.errors import StudioError
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
        intro = QLabel("The app can start ComfyUI for you on this computer, with settings that suit your GPU, "
                       "and stop it when you close the app.")
        intro.setWordWrap(True)
        lay.addWidget(intro)
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
        self.server.log_listeners.append(self._on_line)
        self.server.state_listeners.append(self._on_state)
        self.destroyed.connect(lambda *_: self._detach())
        for w in (self.folder, self.command):
            w.editingFinished.connect(self._save)
        self.auto.toggled.connect(lambda _: self._save())
        self._on_state(self.server.state, self.server.message)

    def _detach(self) -> None:
        for lst, cb in ((self.server.log_listeners, self._on_line), (self.server.state_listeners, self._on_state)):
            if cb in lst:
                lst.remove(cb)

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
            if shiboken6.isValid(self):
                self.error.setText(exc.user_message)
                self.error.show()
        except asyncio.CancelledError:
            raise

    def _on_line(self, line: str) -> None:
        if shiboken6.isValid(self):
            self.log.appendPlainText(line)

    def _on_state(self, state: ServerState, message: str) -> None:
        if not shiboken6.isValid(self):
            return
        busy = state in (ServerState.starting, ServerState.restarting)
        self.start_button.setEnabled(state in (ServerState.stopped, ServerState.failed))
        self.stop_button.setEnabled(state is not ServerState.stopped)
        text = _STATE_TEXT[state] + (f" — {message}" if message and not busy else "")
        if state is ServerState.running:
            text = f"Running at {self.server.url}"
        self.state_label.setText(text)
        if state is ServerState.running:
            self.error.hide()


def server_page(core, *, tasks: TaskOwner, parent: QWidget | None = None) -> QWidget:
    return ServerPage(core, tasks=tasks, parent=parent)
