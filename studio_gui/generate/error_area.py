"""ErrorArea: the one place on the Generate tab where problems appear, in plain words.

The user message first, the technical detail (status code, server text) behind a
"Details" toggle, and at most one action button (Retry saving, Settings…).
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QToolButton, QVBoxLayout, QWidget

from studio_core.errors import StudioError
from studio_gui.errors import OFFER_LABELS, hint, offers, user_text
from studio_core.secrets import redact


class ErrorArea(QFrame):
    def __init__(self, parent: QWidget | None = None, *, redactor: Callable[[str], str] = redact):
        super().__init__(parent)
        self._redact = redactor
        self._action: Callable[[], None] | None = None
        # The fixes this area can carry out, by offer (studio_gui.errors.offers): the owner
        # registers e.g. RETRY → resubmit the failed request, MAKE_IT_FIT → the planner.
        self.offer_handlers: dict[str, Callable[[BaseException], None]] = {}
        self.setObjectName("errorArea")
        self.setStyleSheet("QFrame#errorArea { border: 1px solid #d98880; border-radius: 4px;"
                           " background: rgba(231, 76, 60, 0.10); }")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(8, 6, 8, 6)
        row = QHBoxLayout()
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.setAccessibleName("Error message")
        self.details_button = QToolButton()
        self.details_button.setText("Details")
        self.details_button.setCheckable(True)
        self.details_button.setToolTip("Show the technical details")
        self.action_button = QPushButton()
        self.action_button.setVisible(False)
        self.action_button.clicked.connect(self._on_action)
        self.close_button = QToolButton()
        self.close_button.setText("✕")
        self.close_button.setAutoRaise(True)
        self.close_button.setToolTip("Dismiss this message")
        self.close_button.setAccessibleName("Dismiss error")
        self.close_button.clicked.connect(self.clear)
        row.addWidget(self.message, 1)
        row.addWidget(self.action_button)
        row.addWidget(self.details_button)
        row.addWidget(self.close_button)
        outer.addLayout(row)
        self.details = QPlainTextEdit()
        self.details.setReadOnly(True)
        self.details.setMaximumHeight(64)
        self.details.setVisible(False)
        self.details_button.toggled.connect(self.details.setVisible)
        outer.addWidget(self.details)
        self.setVisible(False)

    def show_error(self, exc: BaseException, *, context: str = "",
                   action: tuple[str, Callable[[], None]] | None = None) -> None:
        text = user_text(exc)
        shown = f"{context}{text}" if context else text
        if hint(exc):
            shown += "\n" + self._redact(hint(exc))
        self.message.setText(shown)
        detail = exc.detail if isinstance(exc, StudioError) else f"{type(exc).__name__}: {exc}"
        self.details.setPlainText(self._redact(detail))
        self.details_button.setVisible(bool(detail) and detail != text)
        self.details_button.setChecked(False)
        if action is None:
            offer = next((o for o in offers(exc) if o in self.offer_handlers), None)
            if offer is not None:
                handler = self.offer_handlers[offer]
                action = (OFFER_LABELS[offer], lambda: handler(exc))
        if action:
            self.action_button.setText(action[0])
            self._action = action[1]
            self.action_button.setVisible(True)
        else:
            self._action = None
            self.action_button.setVisible(False)
        self.setVisible(True)

    def clear(self) -> None:
        self._action = None
        self.setVisible(False)

    def _on_action(self) -> None:
        if self._action is not None:
            action = self._action
            self.clear()
            action()
