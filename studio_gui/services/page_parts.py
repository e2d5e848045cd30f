"""Small pieces the provider settings pages are built from: labels, field blocks, result wording."""

from __future__ import annotations

import importlib
import logging

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QLabel, QLayout, QVBoxLayout, QWidget

from studio_core.errors import DependencyMissing
from studio_core.models import ProviderStatus, ServiceState
from studio_core.services import ServiceInfo
from studio_gui.services.card import STATE_LOOK, gui_state

log = logging.getLogger(__name__)

OK_COLOUR = "#2e9d4d"
WARN_COLOUR = "#b07800"
BAD_COLOUR = "#c0392b"


def small(label: QLabel, *, colour: str = "", wrap: bool = True) -> QLabel:
    f = label.font()
    f.setPointSizeF(max(7.0, f.pointSizeF() * 0.9))
    label.setFont(f)
    label.setWordWrap(wrap)
    if colour:
        label.setStyleSheet(f"color: {colour};")
    return label


def help_label(text: str) -> QLabel | None:
    if not text:
        return None
    label = small(QLabel(text))
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    return label


def label_for(text: str, buddy: QWidget) -> QLabel:
    label = QLabel(text)
    label.setBuddy(buddy)
    return label


def block(top: QWidget | QLayout, *below: QLabel | None) -> QWidget:
    """A field with its message and help stacked tightly under it (form rows would space them apart)."""
    w = QWidget()
    col = QVBoxLayout(w)
    col.setContentsMargins(0, 0, 0, 4)
    col.setSpacing(2)
    if isinstance(top, QLayout):
        col.addLayout(top)
    else:
        col.addWidget(top)
    for label in below:
        if label is not None:
            col.addWidget(label)
    return w


def module_problem(info: ServiceInfo) -> str:
    """'' when the provider can be imported, else the words for "not in this build". Blocking."""
    try:
        importlib.import_module(info.module)
    except ImportError as exc:
        name = getattr(exc, "name", "") or ""
        if name.startswith("studio_core"):
            return "This service is not included in this build yet."
        return DependencyMissing(info.sdk or name or info.module).user_message
    except Exception as exc:  # a provider that fails at import must not take Settings down
        log.exception("importing %s failed", info.module)
        return f"This service could not be loaded ({type(exc).__name__}); see the log."
    return ""


def status_icon(status: ProviderStatus) -> QIcon:
    colour, _ = STATE_LOOK.get(gui_state(status), STATE_LOOK[ServiceState.unknown.value])
    pm = QPixmap(12, 12)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor(colour))
    p.drawEllipse(1, 1, 10, 10)
    p.end()
    return QIcon(pm)


def lower_first(text: str) -> str:
    # "Access token" → "access token", but "API key" stays "API key"
    return text[0].lower() + text[1:] if len(text) > 1 and text[1].islower() else text


def describe_test(name: str, status: ProviderStatus) -> tuple[str, str]:
    message = status.message.strip()
    if status.state == ServiceState.ready:
        return f"✓ Connection test passed: {name} answered." + (f" {message}" if message else ""), OK_COLOUR
    reason = {
        ServiceState.needs_key: "a key is needed",
        ServiceState.unreachable: "the service could not be reached",
        ServiceState.error: "the service reported a problem",
    }.get(status.state, "no clear answer")
    return f"✗ Connection test failed: {message or reason}", BAD_COLOUR


def save_provider_values(core, service_id: str, values: dict[str, object]) -> None:
    # Empty answers are dropped so the provider's default applies (0 retries is an answer);
    # update_provider cannot remove keys.
    current = core.settings.current
    providers = {k: dict(v) for k, v in current.providers.items()}
    entry = providers.setdefault(service_id, {})
    for k, v in values.items():
        if v is not None and v != "":
            entry[k] = v
        else:
            entry.pop(k, None)
    if not entry:
        providers.pop(service_id)
    core.settings.update(providers=providers)
