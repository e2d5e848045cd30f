"""Logging to a rotating file in the platform log folder, with secrets scrubbed.

A windowed Windows build has no stdout (``sys.stderr is None``), so the file is the log;
a console handler is added only when a real stream exists.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path
from typing import Callable

_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class RedactingFilter(logging.Filter):
    def __init__(self, redact: Callable[[str], str]):
        super().__init__()
        self._redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg = self._redact(msg)
        record.args = None
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        return True


def configure_logging(log_file: Path, *, redact: Callable[[str], str] | None = None, level: int = logging.INFO) -> Path:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_studio", False):
            root.removeHandler(h)
            h.close()
    handlers: list[logging.Handler] = [
        logging.handlers.RotatingFileHandler(log_file, maxBytes=2_000_000, backupCount=3, encoding="utf-8")
    ]
    if sys.stderr is not None:
        handlers.append(logging.StreamHandler(sys.stderr))
    for h in handlers:
        h._studio = True  # type: ignore[attr-defined]
        h.setFormatter(logging.Formatter(_FORMAT))
        if redact is not None:
            h.addFilter(RedactingFilter(redact))
        root.addHandler(h)
    root.setLevel(level)
    # httpx2 is the fork openai 3.x sends through; like httpx it logs every request at INFO.
    for noisy in ("httpx", "httpx2", "httpcore", "httpcore2", "websockets", "botocore", "urllib3", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return log_file
