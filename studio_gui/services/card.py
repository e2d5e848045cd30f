"""One service in the selector: status dot, name, price, a capability line, the model in use."""

from __future__ import annotations

import html

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QKeyEvent, QMouseEvent, QPalette
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QSizePolicy

from studio_core.models import ProviderStatus, ServiceState
from studio_gui.services.checks import NEEDS_SETUP, NOT_INSTALLED

# GUI-only states beyond the core's ServiceState.
CHECKING = "checking"
NOT_INSTALLED_STATE = "not_installed"
NEEDS_SETUP_STATE = "needs_setup"

# (dot colour, short words) per state; the words are what a screen reader and the tooltip say.
STATE_LOOK: dict[str, tuple[str, str]] = {
    ServiceState.ready.value: ("#2e9d4d", "ready"),
    ServiceState.needs_key.value: ("#d99a00", "needs a key — click to set up"),
    ServiceState.unreachable.value: ("#c0392b", "unreachable"),
    ServiceState.error.value: ("#c0392b", "error — click to fix"),
    ServiceState.unknown.value: ("#8a8a8a", "not checked yet"),
    CHECKING: ("#8a8a8a", "checking…"),
    NOT_INSTALLED_STATE: ("#8a8a8a", "not included in this build"),
    NEEDS_SETUP_STATE: ("#d99a00", "needs setup — click to set up"),
}


class ElidedLabel(QLabel):
    """One line that shortens with "…" instead of widening the narrow services column."""

    def __init__(self, text: str = "", *, mode: Qt.TextElideMode = Qt.TextElideMode.ElideRight, parent=None):
        super().__init__(parent)
        self._full = ""
        self._mode = mode
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.set_full_text(text)

    def set_full_text(self, text: str) -> None:
        self._full = text
        self._elide()

    def full_text(self) -> str:
        return self._full

    def minimumSizeHint(self) -> QSize:
        return QSize(16, super().minimumSizeHint().height())

    def sizeHint(self) -> QSize:
        # What the whole text needs, so the column's default width can be chosen to show it.
        return QSize(self.fontMetrics().horizontalAdvance(self._full) + 4, super().sizeHint().height())

    def is_elided(self) -> bool:
        return self.text() != self._full

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        shown = self.fontMetrics().elidedText(self._full, self._mode, max(16, self.width()))
        if shown != self.text():
            self.setText(shown)
            # A shortened line keeps its whole text one hover away.
            self.setToolTip(self._full if shown != self._full else "")


def gui_state(status: ProviderStatus | None) -> str:
    if status is None:
        return CHECKING
    if status.detail(NOT_INSTALLED):
        return NOT_INSTALLED_STATE
    if status.state == ServiceState.needs_key and status.detail(NEEDS_SETUP):
        return NEEDS_SETUP_STATE
    return status.state.value


class ServiceCard(QFrame):
    activated = Signal(str)

    def __init__(self, service_id: str, name: str, parent=None):
        super().__init__(parent)
        self.service_id = service_id
        self.name = name
        self.state = ServiceState.unknown.value
        self.status: ProviderStatus | None = None
        self.setObjectName("ServiceCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        # Not Fixed: a fixed height is the height for the card's *hint* width (narrower, so more
        # wrapped lines), which made the column scroll though every card fitted. Preferred lets
        # the scroll area use the height for the real width.
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.setProperty("selected", False)

        self.dot = QLabel("●")
        self.dot.setAccessibleName("status")
        self.title = ElidedLabel(name)
        f = self.title.font()
        f.setBold(True)
        self.title.setFont(f)
        self.price_text = ""
        self.caps_text = ""
        # price first: it is what people compare; the rest wraps under it
        self.caps = QLabel("")
        self.caps.setWordWrap(True)
        self.caps.setTextFormat(Qt.TextFormat.RichText)
        self.model = ElidedLabel("")
        self.state_text = QLabel("")
        self.state_text.setWordWrap(True)
        for small in (self.caps, self.model, self.state_text):
            sf = small.font()
            sf.setPointSizeF(max(7.0, sf.pointSizeF() * 0.88))
            small.setFont(sf)
        # a muted colour that follows light and dark schemes
        self.model.setForegroundRole(QPalette.ColorRole.PlaceholderText)

        grid = QGridLayout(self)
        grid.setContentsMargins(8, 6, 8, 6)
        grid.setHorizontalSpacing(6)
        grid.setVerticalSpacing(1)
        grid.addWidget(self.dot, 0, 0)
        grid.addWidget(self.title, 0, 1)
        grid.addWidget(self.caps, 1, 1)
        grid.addWidget(self.model, 2, 1)
        grid.addWidget(self.state_text, 3, 1)
        grid.setColumnStretch(1, 1)
        self.model_id = ""
        self.set_status(None, checking=False)

    # -- content ----------------------------------------------------------------------
    def set_facts(self, *, price: str, caps: str, model: str, model_id: str = "") -> None:
        self.model_id = model_id or model
        self.price_text = price
        self.caps_text = caps
        self.caps.setText(f"<b>{html.escape(price)}</b> · {html.escape(caps)}" if price else html.escape(caps))
        self.model.set_full_text(f"model: {model}" if model else "")
        self.model.setVisible(bool(model))
        self._update_a11y()

    def set_status(self, status: ProviderStatus | None, *, checking: bool = False) -> None:
        self.status = status
        self.state = CHECKING if checking else (gui_state(status) if status else ServiceState.unknown.value)
        colour, words = STATE_LOOK.get(self.state, STATE_LOOK[ServiceState.unknown.value])
        self.dot.setStyleSheet(f"color: {colour};")
        self.dot.setText("○" if self.state in (CHECKING, ServiceState.unknown.value) else "●")
        show = self.state != ServiceState.ready.value
        self.state_text.setText(words)
        self.state_text.setStyleSheet(f"color: {colour};")
        self.state_text.setVisible(show)
        message = status.message if status else ""
        model = getattr(self, "model_id", "")
        self.setToolTip(f"{self.name}: {words}" + (f"\n{message}" if message and not checking else "")
                        + (f"\nmodel: {model}" if model else ""))
        self._update_a11y()

    def set_selected(self, selected: bool) -> None:
        if self.property("selected") == selected:
            return
        self.setProperty("selected", selected)
        # Re-polish only what is already polished: before the first show Qt polishes
        # every widget anyway, and re-polishing seven cards cost ~20 ms of start-up.
        if self.testAttribute(Qt.WidgetAttribute.WA_WState_Polished):
            self.style().unpolish(self)
            self.style().polish(self)

    @property
    def needs_setup(self) -> bool:
        return self.state in (ServiceState.needs_key.value, ServiceState.error.value, NOT_INSTALLED_STATE,
                              NEEDS_SETUP_STATE)

    def _update_a11y(self) -> None:
        _, words = STATE_LOOK.get(self.state, STATE_LOOK[ServiceState.unknown.value])
        self.setAccessibleName(f"{self.name}, {words}")
        self.setAccessibleDescription(" · ".join(t for t in (self.price_text, self.caps_text, self.model.full_text()) if t))

    # -- input ------------------------------------------------------------------------
    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.rect().contains(event.position().toPoint()):
            self.activated.emit(self.service_id)
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Space, Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.activated.emit(self.service_id)
            event.accept()
            return
        super().keyPressEvent(event)
