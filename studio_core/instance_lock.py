"""One studio per data folder: a lock file holding the owner's PID.

Two instances on one folder would write the same index and settings. The lock is a
file created with ``O_CREAT | O_EXCL`` (atomic on every platform, Windows included); a
lock left by a process that no longer exists (a crash, a kill) is taken over.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path

from studio_core.errors import StudioError

log = logging.getLogger(__name__)

FILE = "studio.lock"


class AlreadyRunning(StudioError):
    """Another live studio holds this data folder; ``pid`` is its process id."""

    def __init__(self, pid: int, folder: Path):
        super().__init__(f"data folder {folder} is locked by pid {pid}",
                         user_message=f"The studio is already running (process {pid}) with this data folder. "
                                      "Switch to that window, or start with another --data-dir.")
        self.pid = pid
        self.folder = folder


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if sys.platform == "win32":  # pragma: no cover - Windows only
        import ctypes

        kernel32 = ctypes.windll.kernel32
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        try:
            code = ctypes.c_ulong()
            if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
                return True
            return code.value == 259  # STILL_ACTIVE
        finally:
            kernel32.CloseHandle(handle)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


class InstanceLock:
    """``acquire()`` or raise AlreadyRunning; ``release()`` removes the file if it is ours."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.path = self.folder / FILE
        self.held = False

    def owner(self) -> int | None:
        """The PID in the lock file, or None when there is none (or it is unreadable)."""
        try:
            return int(self.path.read_text(encoding="ascii").strip() or "0") or None
        except (OSError, ValueError):
            return None

    def acquire(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                pid = self.owner()
                if pid == os.getpid():
                    self.held = True  # a second core in this process (tests, tools): same owner
                    return
                if pid is not None and pid_alive(pid):
                    raise AlreadyRunning(pid, self.folder) from None
                log.info("taking over a stale lock (pid %s)", pid)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)
                continue
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(str(os.getpid()))
            self.held = True
            return
        raise AlreadyRunning(self.owner() or 0, self.folder)

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        if self.owner() == os.getpid():
            with contextlib.suppress(OSError):
                os.unlink(self.path)
