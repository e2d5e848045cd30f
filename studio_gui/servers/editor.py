"""The form for one server entry: address, authentication, TLS trust, limits, paid overflow.

Secrets typed here go to the keyring (on a worker thread) only when the user saves; the
entry itself (plain data) goes to Settings. An empty secret field keeps the stored one.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout,
                               QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit, QPushButton, QSpinBox, QVBoxLayout,
                               QWidget)

from studio_core.errors import StudioError
from studio_core.models import ServiceState
from studio_core.pool.pinned_tls import fetch_fingerprint, pretty_fingerprint
from studio_core.pool.servers import ServerKind, ServerSpec
from studio_gui.tasks import TaskOwner

ERROR_STYLE = "color: #d0312d;"


class ServerEditor(QDialog):
    """Edit ``spec`` (or a new entry with ``new_id``); ``result_spec`` and ``typed_secrets`` after accept."""

    def __init__(self, core, *, tasks: TaskOwner, spec: ServerSpec | None = None, new_id: str = "",
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.core = core
        self.tasks = tasks
        self.original = spec
        self.entry_id = spec.id if spec else new_id
        self.result_spec: ServerSpec | None = None
        self.typed_secrets: dict[str, str] = {}
        self.setWindowTitle("Edit server" if spec else "Add server")
        s = spec or ServerSpec(id=self.entry_id or "new", name="", url="http://127.0.0.1:8188")
        lay = QVBoxLayout(self)
        form = QFormLayout()
        self.name = QLineEdit(s.name if spec else "")
        self.name.setPlaceholderText("e.g. the laptop")
        self.name.setAccessibleName("Server name")
        form.addRow("Name", self.name)
        self.kind = QComboBox()
        self.kind.addItem("ComfyUI", ServerKind.comfyui.value)
        self.kind.addItem("RunPod serverless (worker-comfyui)", ServerKind.runpod.value)
        self.kind.setCurrentIndex(1 if s.kind is ServerKind.runpod else 0)
        form.addRow("Kind", self.kind)
        self.url = QLineEdit(s.url if spec else "")
        self.url.setPlaceholderText("http://192.168.1.20:8188 — or, for RunPod, the endpoint id")
        self.url.setAccessibleName("Server address")
        form.addRow("Address", self.url)
        stored = "stored in the system keyring" if spec and spec.uses_auth else ""
        self.auth = QLineEdit()
        self.auth.setEchoMode(QLineEdit.EchoMode.Password)
        self.auth.setAccessibleName("Authorization")
        self.auth.setPlaceholderText(f"Bearer … ({stored}; empty keeps it)" if stored else "e.g. Bearer abc123 (optional)")
        self.use_auth = QCheckBox("Send an Authorization header")
        self.use_auth.setChecked(s.uses_auth)
        arow = QHBoxLayout()
        arow.addWidget(self.use_auth)
        arow.addWidget(self.auth, 1)
        form.addRow("Authentication", arow)
        self.headers = QPlainTextEdit("\n".join(f"{k}: {v}" for k, v in s.extra_headers))
        self.headers.setPlaceholderText("Extra headers, one per line: Name: value (not secret)")
        self.headers.setFixedHeight(52)
        self.headers.setAccessibleName("Extra headers")
        form.addRow("Extra headers", self.headers)
        self.use_token = QCheckBox("Token as query parameter")
        self.use_token.setChecked(bool(s.token_param))
        self.token_param = QLineEdit(s.token_param or "token")
        self.token_param.setAccessibleName("Query parameter name")
        self.token_param.setMaximumWidth(110)
        self.token = QLineEdit()
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setAccessibleName("Query token")
        self.token.setPlaceholderText("token (kept in the keyring; empty keeps it)" if s.token_param else "token")
        trow = QHBoxLayout()
        trow.addWidget(self.use_token)
        trow.addWidget(self.token_param)
        trow.addWidget(self.token, 1)
        form.addRow("", trow)
        self.trust = QCheckBox("Trust its certificate")
        self.trust.setToolTip("For a server with its own (self-signed) certificate: trust exactly that certificate, "
                              "by its fingerprint. Verification is never switched off.")
        self.trust.setChecked(bool(s.trusted_cert_sha256))
        self.fingerprint = QLineEdit(pretty_fingerprint(s.trusted_cert_sha256) if s.trusted_cert_sha256 else "")
        self.fingerprint.setPlaceholderText("SHA-256 fingerprint (AB:CD:…); Fetch shows what the server presents")
        self.fingerprint.setAccessibleName("Certificate fingerprint")
        self.fetch_button = QPushButton("Fetch")
        self.fetch_button.clicked.connect(self._on_fetch)
        frow = QHBoxLayout()
        frow.addWidget(self.fingerprint, 1)
        frow.addWidget(self.fetch_button)
        form.addRow(self.trust, frow)
        self.fetched = QLabel()
        self.fetched.setWordWrap(True)
        self.fetched.hide()
        form.addRow("", self.fetched)
        self.timeout = QDoubleSpinBox()
        self.timeout.setRange(0.5, 120)
        self.timeout.setSuffix(" s")
        self.timeout.setValue(s.connect_timeout_s)
        self.running = QSpinBox()
        self.running.setRange(1, 64)
        self.running.setValue(s.running_slots)
        self.queued = QSpinBox()
        self.queued.setRange(0, 64)
        self.queued.setValue(s.queued_slots)
        lrow = QHBoxLayout()
        for label, w in (("connect timeout", self.timeout), ("running", self.running), ("+ queued", self.queued)):
            lrow.addWidget(QLabel(label))
            lrow.addWidget(w)
        lrow.addStretch(1)
        form.addRow("Limits", lrow)
        self.enabled = QCheckBox("Enabled")
        self.enabled.setChecked(s.enabled)
        self.may_be_off = QCheckBox("May be switched off (shown idle, not as an error)")
        self.may_be_off.setChecked(s.may_be_off)
        orow = QHBoxLayout()
        orow.addWidget(self.enabled)
        orow.addWidget(self.may_be_off)
        orow.addStretch(1)
        form.addRow("", orow)
        self.paid = QCheckBox("Paid: use only as overflow")
        self.paid.setChecked(s.paid)
        self.price = QDoubleSpinBox()
        self.price.setDecimals(5)
        self.price.setRange(0, 10)
        self.price.setPrefix("$ ")
        self.price.setSuffix(" per second")
        self.price.setValue(s.price_per_s)
        prow = QHBoxLayout()
        prow.addWidget(self.paid)
        prow.addWidget(self.price)
        prow.addStretch(1)
        form.addRow("", prow)
        self.models = QPlainTextEdit("\n".join(s.models))
        self.models.setPlaceholderText("RunPod cannot list its models: one file name per line, e.g. flux1-dev-fp8.safetensors")
        self.models.setFixedHeight(52)
        self.models.setAccessibleName("Endpoint models")
        self.models_label = QLabel("Endpoint's models")
        form.addRow(self.models_label, self.models)
        lay.addLayout(form)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet(ERROR_STYLE)
        self.error.setAccessibleName("Server entry problem")
        self.error.hide()
        lay.addWidget(self.error)
        test_row = QHBoxLayout()
        self.test_button = QPushButton("Test connection")
        self.test_button.clicked.connect(self._on_test)
        self.test_result = QLabel()
        self.test_result.setWordWrap(True)
        self.test_result.setAccessibleName("Connection test result")
        self.test_result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        test_row.addWidget(self.test_button)
        test_row.addWidget(self.test_result, 1)
        lay.addLayout(test_row)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._on_save)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.kind.currentIndexChanged.connect(lambda _i: self._kind_changed())
        self._kind_changed()

    def _kind_changed(self) -> None:
        runpod = self.kind.currentData() == ServerKind.runpod.value
        self.models.setVisible(runpod)
        self.models_label.setVisible(runpod)
        if runpod:
            self.use_auth.setChecked(True)
            self.paid.setChecked(True)

    # ---- reading the form ---------------------------------------------------------------
    def spec_from_form(self) -> ServerSpec:
        """The entry as typed; ServerConfigInvalid (a StudioError) says what to fix."""
        headers = []
        for n, line in enumerate(self.headers.toPlainText().splitlines(), 1):
            if not line.strip():
                continue
            name, sep, value = line.partition(":")
            if not sep:
                from studio_core.pool.errors import ServerConfigInvalid

                raise ServerConfigInvalid(f"header line {n} without ':'",
                                          user_message=f"Extra headers, line {n}: write it as 'Name: value'.")
            headers.append((name.strip(), value.strip()))
        return ServerSpec(
            id=self.entry_id, name=self.name.text(), url=self.url.text(), kind=ServerKind(self.kind.currentData()),
            uses_auth=self.use_auth.isChecked(), extra_headers=tuple(headers),
            token_param=self.token_param.text().strip() if self.use_token.isChecked() else "",
            trusted_cert_sha256=self.fingerprint.text().strip() if self.trust.isChecked() else "",
            connect_timeout_s=self.timeout.value(), running_slots=self.running.value(),
            queued_slots=self.queued.value(), enabled=self.enabled.isChecked(), may_be_off=self.may_be_off.isChecked(),
            paid=self.paid.isChecked(), price_per_s=self.price.value(),
            models=tuple(m.strip() for m in self.models.toPlainText().splitlines() if m.strip()))

    def _secrets_typed(self) -> dict[str, str]:
        out = {}
        if self.auth.text().strip():
            out["auth"] = self.auth.text().strip()
        if self.token.text().strip():
            out["token"] = self.token.text().strip()
        return out

    def _show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.setVisible(bool(text))

    def _on_save(self) -> None:
        try:
            spec = self.spec_from_form()
        except StudioError as exc:
            self._show_error(exc.user_message)
            return
        typed = self._secrets_typed()
        for which, needed in (("auth", spec.uses_auth), ("token", bool(spec.token_param))):
            if needed and which not in typed and not self.core.secrets.is_cached(spec.secret_name(which)) \
                    and not (self.original and self._had(which)):
                what = "the Authorization value" if which == "auth" else "the token"
                self._show_error(f"Enter {what}: it is kept in the system keyring, never in the settings file.")
                return
        self.result_spec, self.typed_secrets = spec, typed
        self.accept()

    def _had(self, which: str) -> bool:
        o = self.original
        return bool(o and (o.uses_auth if which == "auth" else o.token_param))

    # ---- actions ------------------------------------------------------------------------
    def _on_fetch(self) -> None:
        try:
            url = self.spec_from_form().url
        except StudioError as exc:
            self._show_error(exc.user_message)
            return
        parts = urlsplit(url)
        if parts.scheme != "https":
            self._show_error("Only an https:// address has a certificate to trust.")
            return
        self.fetch_button.setEnabled(False)
        self.tasks.spawn(self._fetch(parts.hostname or "", parts.port or 443), name="fetch fingerprint")

    async def _fetch(self, host: str, port: int) -> None:
        try:
            fp = await fetch_fingerprint(host, port)
            text = (f"The server at {host}:{port} presents SHA-256 {pretty_fingerprint(fp)}. Compare it with the "
                    "certificate on the server before you trust it.")
            ok = True
        except (OSError, asyncio.TimeoutError) as exc:
            fp, text, ok = "", f"Could not read a certificate from {host}:{port} ({exc.__class__.__name__}).", False
        if not shiboken6.isValid(self):  # after the await the editor may be gone
            return
        self.fetch_button.setEnabled(True)
        self.fetched.setText(text)
        self.fetched.setStyleSheet("" if ok else ERROR_STYLE)
        self.fetched.show()
        if fp:
            self.fingerprint.setText(pretty_fingerprint(fp))

    def _on_test(self) -> None:
        try:
            spec = self.spec_from_form()
        except StudioError as exc:
            self._show_error(exc.user_message)
            return
        self._show_error("")
        self.test_button.setEnabled(False)
        self.test_result.setStyleSheet("")
        self.test_result.setText("Testing…")
        self.tasks.spawn(self._test(spec, self._secrets_typed()), name="server connection test")

    async def _test(self, spec: ServerSpec, typed: dict[str, str]) -> None:
        from studio_core.pool.provider import PoolProvider
        from studio_gui.comfy_settings.server_page import describe_status

        names = {spec.secret_name(k): v for k, v in typed.items()}
        stored = await asyncio.to_thread(lambda: {n: self.core.secrets.get(n) for n in
                                                  (spec.secret_name("auth"), spec.secret_name("token"))})
        lookup = lambda name: names.get(name) or stored.get(name)  # noqa: E731
        pool = PoolProvider([spec], secret=lookup)
        try:
            status = await pool.check()
        finally:
            await pool.aclose()
        if not shiboken6.isValid(self):  # after the await the editor may be gone
            return
        self.test_button.setEnabled(True)
        ok = status.state is ServiceState.ready
        self.test_result.setText(("✔ " if ok else "✕ ") + describe_status(spec.url, status))
        self.test_result.setStyleSheet("" if ok else ERROR_STYLE)
