"""The one place errors are shown to the user.

StudioError → its user message, with the technical detail behind "Show Details…".
Anything else → a generic message pointing at the log file, with the traceback logged.
Cancellation shows nothing. Secrets are scrubbed from everything shown or copied.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import traceback
from pathlib import Path
from typing import Callable

from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from studio_core.errors import StudioError
from studio_core.secrets import redact

log = logging.getLogger(__name__)

_redactor: Callable[[str], str] = redact
_log_file: Path | None = None
_open_boxes: list[QMessageBox] = []


def configure(*, redactor: Callable[[str], str], log_file: Path | None) -> None:
    global _redactor, _log_file
    _redactor = redactor
    _log_file = log_file


def user_text(exc: BaseException) -> str:
    if isinstance(exc, StudioError):
        return _redactor(exc.user_message)
    return "Something unexpected went wrong. The app keeps running; details are in the log."


def details_text(exc: BaseException) -> str:
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    where = f"\nLog file: {_log_file}" if _log_file else ""
    return _redactor(tb) + where


def present_error(parent: QWidget | None, exc: BaseException, *, title: str = "Cloud AI Art Studio") -> QMessageBox | None:
    if isinstance(exc, asyncio.CancelledError):
        return None
    if isinstance(exc, StudioError):
        log.warning("%s: %s", type(exc).__name__, _redactor(str(exc)))
    else:
        log.error("unexpected error", exc_info=exc)
    if QApplication.instance() is None:
        return None
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning if isinstance(exc, StudioError) else QMessageBox.Icon.Critical)
    box.setWindowTitle(title)
    box.setText(user_text(exc))
    if not isinstance(exc, StudioError) and _log_file:
        box.setInformativeText(f"The log is at {_log_file}")
    box.setDetailedText(details_text(exc) if not isinstance(exc, StudioError) else _redactor(exc.detail))
    copy = box.addButton("Copy details", QMessageBox.ButtonRole.ActionRole)
    box.addButton(QMessageBox.StandardButton.Close)
    copy.clicked.connect(lambda: QApplication.clipboard().setText(details_text(exc)))
    box.setModal(False)
    _open_boxes.append(box)
    box.finished.connect(lambda _=0, b=box: _open_boxes.remove(b) if b in _open_boxes else None)
    box.open()
    return box


def install_excepthooks(get_parent: Callable[[], QWidget | None]) -> None:
    """Route uncaught exceptions (Qt slots, qasync slots, threads) to the log and the presenter."""

    def hook(exc_type, exc, tb):
        if exc is None:
            exc = exc_type()
        exc.__traceback__ = exc.__traceback__ or tb
        try:
            present_error(get_parent(), exc)
        except Exception:  # the presenter itself must never take the app down
            log.exception("error presenter failed")

    def thread_hook(args: threading.ExceptHookArgs):
        log.error("uncaught exception in thread %s", getattr(args.thread, "name", "?"),
                  exc_info=(args.exc_type, args.exc_value, args.exc_traceback))

    sys.excepthook = hook
    threading.excepthook = thread_hook
