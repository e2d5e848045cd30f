"""First-run panel: what the studio found, where images go, and the one next step.

Shown once, non-modal, when the app starts with no settings. Everything in it can be
skipped and changed later in Settings.
"""

from __future__ import annotations

import asyncio
import logging

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPushButton, QVBoxLayout

from studio_core.app_core import StudioCore
from studio_core.models import ServiceState
from studio_core.secrets import ENV_VARS, SecretStore
from studio_core.services import SERVICES
from studio_gui.tasks import TaskOwner

log = logging.getLogger(__name__)


def env_keys_found() -> list[str]:
    names = {s.secret_name: s.name for s in SERVICES if s.secret_name}
    return [f"{names.get(n, n)} ({', '.join(v for v in ENV_VARS[n] if SecretStore.from_env(n))})"
            for n in ENV_VARS if SecretStore.from_env(n)]


class FirstRunPanel(QDialog):
    open_settings = Signal(str)

    def __init__(self, core: StudioCore, *, tasks: TaskOwner, parent=None):
        super().__init__(parent)
        self.core = core
        self.setWindowTitle("Welcome to Cloud AI Art Studio")
        self.setObjectName("FirstRunPanel")
        self.setModal(False)
        self.resize(560, 360)
        lay = QVBoxLayout(self)
        intro = QLabel("<h3>Let's get you drawing sprites</h3>"
                       "Pick any service on the left. Everything here can be changed later in Settings.")
        intro.setWordWrap(True)
        lay.addWidget(intro)

        self.comfy_label = QLabel("Looking for a ComfyUI server…")
        self.comfy_label.setWordWrap(True)
        self.comfy_label.setObjectName("comfyStatus")
        lay.addWidget(self.comfy_label)

        keys = env_keys_found()
        self.keys_label = QLabel(
            "Cloud keys found in your environment: " + ", ".join(keys) if keys
            else "No cloud API keys were found in your environment. Add one under Settings → Services when you want a cloud service."
        )
        self.keys_label.setWordWrap(True)
        lay.addWidget(self.keys_label)

        where = QLabel(f"Your images will be saved in:<br><code>{core.paths.images}</code>")
        where.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        where.setWordWrap(True)
        lay.addWidget(where)
        # Asking the keyring which backend it has can take a moment (D-Bus): filled in off-thread.
        self.store_label = QLabel("")
        self.store_label.setWordWrap(True)
        lay.addWidget(self.store_label)
        lay.addStretch(1)

        buttons = QDialogButtonBox()
        # Offered only once the probe finds no server: installing is the answer to "nothing answers".
        self.setup_button = QPushButton("Set up local generation…")
        self.setup_button.clicked.connect(self._open_setup)
        buttons.addButton(self.setup_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.setup_button.hide()  # after addButton, which shows it
        self.settings_button = QPushButton("Open Settings…")
        self.settings_button.clicked.connect(lambda: self.open_settings.emit("Services"))
        buttons.addButton(self.settings_button, QDialogButtonBox.ButtonRole.ActionRole)
        start = buttons.addButton("Start", QDialogButtonBox.ButtonRole.AcceptRole)
        start.setDefault(True)
        buttons.accepted.connect(self.accept)
        lay.addWidget(buttons)
        self.finished.connect(self._on_finished)
        self._tasks = tasks
        tasks.spawn(self._probe_comfy(), name="first-run comfy probe")
        tasks.spawn(self._describe_key_store(), name="first-run key store")

    async def _describe_key_store(self) -> None:
        info = await asyncio.to_thread(self.core.secrets.info)
        self.store_label.setText(info.description)

    async def _probe_comfy(self) -> None:
        from studio_core.providers.comfy import discovery

        try:
            # With no address typed, ComfyUI may be on 8188 or (ComfyUI Desktop) on 8000.
            await discovery.refresh_found_url(self.core.settings)
        except Exception as exc:  # a courtesy, as below
            log.info("first-run ComfyUI discovery failed: %s", exc)
        url = self.core.settings.current.comfy_active_url
        try:
            status = await self.core.services.provider("comfyui").check()
        except Exception as exc:  # the probe is a courtesy; it must never bother the user
            log.info("first-run ComfyUI probe failed: %s", exc)
            self.comfy_label.setText(f"Could not check for ComfyUI at {url}.")
            return
        if status.state == ServiceState.ready:
            version = status.detail("version") or ""
            self.comfy_label.setText(f"✔ ComfyUI {version} is running at {url}. You can generate right away, for free.")
        else:
            self.comfy_label.setText(
                f"No ComfyUI server answered at {url}. Start ComfyUI (or let the studio start it: Settings → ComfyUI server), "
                "or pick a cloud service — or let the studio install ComfyUI and a model for your GPU."
            )
            self.setup_button.show()

    def _open_setup(self) -> None:
        from studio_gui.setup_wizard import SetupWizard

        self.setup_wizard = SetupWizard(self.core, tasks=self._tasks, parent=self.parentWidget())
        self.setup_wizard.show()

    def _on_finished(self, _result: int) -> None:
        self.core.settings.update(first_run_done=True)
