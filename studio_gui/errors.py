"""The one place errors are shown to the user.

StudioError → its user message, with the technical detail behind "Show Details…".
Anything else → a generic message pointing at the log file, with the traceback logged.
Cancellation shows nothing. Secrets are scrubbed from everything shown or copied.

Some errors have a next step, decided here by type (never by class name): MissingModels
names each file and the ComfyUI folder it belongs in (:func:`hint`); :func:`offers` says
which one-click fix fits — OutOfVram: the planner's "Make it fit"; a retryable error: Retry.
A widget that can carry the fix out (the Generate tab's error area) shows the button.
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

from studio_core.errors import MissingModels, OutOfVram, StudioError
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


RETRY, MAKE_IT_FIT = "retry", "make_it_fit"
OFFER_LABELS = {RETRY: "Retry", MAKE_IT_FIT: "Make it fit"}

# ComfyUI's folder for each kind of model file (studio_core.providers.comfy.errors.MODEL_INPUTS names the kinds).
MODEL_FOLDERS = {
    "checkpoint": "models/checkpoints",
    "diffusion model": "models/diffusion_models",
    "text encoder": "models/text_encoders",
    "VAE": "models/vae",
    "LoRA": "models/loras",
    "ControlNet": "models/controlnet",
    "upscale model": "models/upscale_models",
    "style model": "models/style_models",
    "CLIP vision model": "models/clip_vision",
}


def model_places(exc: MissingModels) -> list[tuple[str, str]]:
    """``(file, folder)`` for each missing file; the folder from the loader that asked for it."""
    problems = tuple(getattr(exc, "problems", ()) or ())
    out = []
    for name in exc.missing:
        line = next((p for p in problems if name in p), "")
        folder = next((f for kind, f in MODEL_FOLDERS.items() if line.startswith(kind + " ")), "")
        out.append((name, folder or "the models folder its loader reads"))
    return out


def hint(exc: BaseException) -> str:
    """The next step in plain words, or ""."""
    if isinstance(exc, MissingModels):
        places = "; ".join(f"{name} → {folder}" for name, folder in model_places(exc))
        return (f"Put the files into ComfyUI's folder: {places}. Then restart ComfyUI (or refresh its "
                "model list) and generate again.")
    return ""


def offers(exc: BaseException) -> tuple[str, ...]:
    """The one-click fixes that fit ``exc`` (a widget shows those it can carry out)."""
    if isinstance(exc, OutOfVram):
        return (MAKE_IT_FIT,)
    if isinstance(exc, StudioError) and exc.retryable:
        return (RETRY,)
    return ()


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
    elif hint(exc):
        box.setInformativeText(_redactor(hint(exc)))
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
