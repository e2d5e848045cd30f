"""SIGTERM and SIGINT (Ctrl+C in the terminal) close the app the way its close button does.

Without this, SIGTERM ends the process at once: jobs are not cancelled, the index worker
and HTTP clients are not closed, the window layout is not saved and the log never says
"clean exit". Here a signal closes every top-level window (dialogs first, so a modal
``exec`` returns), which runs the main window's ``closeEvent`` and ends ``app.run``'s wait.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Callable

log = logging.getLogger(__name__)


def _signals() -> list[signal.Signals]:
    sigs = [signal.SIGINT, signal.SIGTERM]
    if hasattr(signal, "SIGHUP"):  # the terminal that started the app went away
        sigs.append(signal.SIGHUP)
    if hasattr(signal, "SIGBREAK"):  # Windows' Ctrl+Break
        sigs.append(signal.SIGBREAK)
    return sigs


def install(app, window, closed: asyncio.Event) -> Callable[[], None]:
    """Close ``window`` (and any dialog) on a termination signal; returns the uninstaller."""
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        log.info("%s received: closing the window", signal.Signals(signum).name)
        # No one may be there to answer the close dialog: keep the queue for next time.
        window.close_without_asking("keep")
        app.closeAllWindows()
        if not closed.is_set():
            # Not shown yet (the signal came during start-up): close it directly; nothing
            # else will end the wait for the last window.
            window.close()
            closed.set()

    sigs = _signals()
    try:
        for s in sigs:
            # The loop's wakeup fd turns the signal into a socket event Qt's loop sees at once.
            loop.add_signal_handler(s, on_signal, int(s))
    except (NotImplementedError, RuntimeError):
        return _install_with_signal_module(app, loop, sigs, on_signal)

    def uninstall() -> None:
        for s in sigs:
            loop.remove_signal_handler(s)

    return uninstall


def _install_with_signal_module(app, loop, sigs, on_signal) -> Callable[[], None]:
    """Windows: no ``add_signal_handler``. Python runs a handler only when the interpreter
    gets control, and Qt's C++ loop can idle for long, so a timer hands it control often."""
    from PySide6.QtCore import QTimer

    previous = {s: signal.getsignal(s) for s in sigs}
    for s in sigs:
        signal.signal(s, lambda signum, _frame: loop.call_soon_threadsafe(on_signal, signum))
    timer = QTimer(app)
    timer.setInterval(200)
    timer.timeout.connect(lambda: None)
    timer.start()

    def uninstall() -> None:
        timer.stop()
        for s, h in previous.items():
            signal.signal(s, h)

    return uninstall
