"""One studio per data folder, seen from the window: the first one listens, a second
launch asks it to come forward and leaves.

The lock itself is the core's (studio_core.instance_lock, a PID file). This adds the part
only a GUI can do: a QLocalServer named after the data folder, so a second launch on the
same folder can send "raise" and the user finds the window they already have, instead of
a dialog about process ids.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from PySide6.QtCore import QObject, Qt
from PySide6.QtNetwork import QLocalServer, QLocalSocket
from PySide6.QtWidgets import QWidget

log = logging.getLogger(__name__)

RAISE = b"raise\n"
CONNECT_MS = 1000  # a live first instance answers at once; this only bounds a hung one


def server_name(data_dir: Path) -> str:
    digest = hashlib.sha256(str(Path(data_dir).resolve()).encode("utf-8")).hexdigest()[:16]
    return f"CloudAIArtStudio-{digest}"


def ask_first_to_raise(data_dir: Path) -> bool:
    """Blocking for at most ~2 s (once, before any window exists): whether the first
    instance got the request."""
    sock = QLocalSocket()
    sock.connectToServer(server_name(data_dir))
    if not sock.waitForConnected(CONNECT_MS):
        return False
    sock.write(RAISE)
    ok = sock.waitForBytesWritten(CONNECT_MS)
    sock.disconnectFromServer()
    return ok


class RaiseServer(QObject):
    """Listens for "raise" from a second launch and brings ``window`` forward."""

    def __init__(self, data_dir: Path, window: QWidget):
        super().__init__(window)
        self.window = window
        self.raised = 0
        self.server = QLocalServer(self)
        name = server_name(data_dir)
        # This process holds the data folder's lock, so a socket file left under this name
        # by a crashed instance is stale and safe to remove.
        QLocalServer.removeServer(name)
        self.server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not self.server.listen(name):
            log.info("no raise server (%s); a second launch will only be told", self.server.errorString())
        self.server.newConnection.connect(self._on_connection)

    def _on_connection(self) -> None:
        while self.server.hasPendingConnections():
            sock = self.server.nextPendingConnection()
            sock.readyRead.connect(lambda s=sock: self._on_ready(s))
            sock.disconnected.connect(sock.deleteLater)

    def _on_ready(self, sock: QLocalSocket) -> None:
        if bytes(sock.readAll().data()).strip() == RAISE.strip():
            log.info("raise requested by a second launch")
            self.raised += 1
            w = self.window
            if w.isMinimized():
                w.setWindowState(w.windowState() & ~Qt.WindowState.WindowMinimized)
            w.show()
            w.raise_()
            w.activateWindow()

    def close(self) -> None:
        self.server.close()
