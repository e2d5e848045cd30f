"""GUI test fixtures: a qasync loop over pytest-qt's QApplication.

Drive asyncio work with ``loop.run_until_complete(wait_until(...))``; qtbot.waitUntil spins
Qt outside qasync's run loop and asyncio steps then fail with "no running event loop".
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest


@pytest.fixture(scope="session")
def _session_loop(qapp):
    """One qasync loop for the whole GUI run, as the app has one for its whole life.

    A loop per test left Qt timers of closed loops behind, and Qt occasionally fired one
    into a deleted object (a segfault in QTimerInfoList::activateTimers, seen under gdb).

    qasync's run_until_complete also processes events once more after the loop stopped
    (qasync 0.28: "run loop one last time"), and pytest-qt processes events after each
    test; a task step that falls due then fails with "no running event loop". So asyncio
    is told the loop is running for the whole session.

    Why no other way: pytest-qt's own event processing (after each test, qtbot.wait*)
    runs outside any asyncio run, and a qasync timer that fires there steps a task with
    no running loop; a test cannot move pytest-qt's processing into the loop. The cost is
    that a slot needing a running loop would pass here even if Qt ran it outside one, so
    tests/gui/test_event_loop.py switches this off (:func:`real_loop_only`) and drives
    signals and the Generate tab through qasync's own run, where such a bug fails.
    """
    import qasync

    class Loop(qasync.QEventLoop):
        def run_forever(self):
            try:
                return super().run_forever()
            finally:
                asyncio.events._set_running_loop(self)

    lp = Loop(qapp, already_running=False)
    asyncio.set_event_loop(lp)
    asyncio.events._set_running_loop(lp)
    yield lp
    asyncio.events._set_running_loop(None)
    asyncio.set_event_loop(None)
    lp.close()


@pytest.fixture
def loop(_session_loop):
    """The session loop; whatever a test left running is cancelled when it ends."""
    asyncio.set_event_loop(_session_loop)
    asyncio.events._set_running_loop(_session_loop)
    yield _session_loop
    pending = [t for t in asyncio.all_tasks(_session_loop) if not t.done()]
    for t in pending:
        t.cancel()
    if pending:
        _session_loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    # Nothing is left to step, so tests that run asyncio.run() after this one may.
    asyncio.events._set_running_loop(None)


@contextlib.contextmanager
def real_loop_only():
    """Inside: no session-wide "running" loop. Only code that qasync's run_forever runs
    (``loop.run_until_complete``) sees a running loop, as in the app."""
    saved = asyncio.events._get_running_loop()
    asyncio.events._set_running_loop(None)
    try:
        yield
    finally:
        asyncio.events._set_running_loop(saved)


async def wait_until(cond, timeout: float = 10.0, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


@pytest.fixture
def core(loop, paths):
    from studio_core.app_core import StudioCore

    c = loop.run_until_complete(StudioCore.open(paths))
    yield c
    loop.run_until_complete(c.aclose())


@pytest.fixture
def window(qtbot, core, qapp):
    """The main window on the test's core, shown; closed at the end without a question,
    unless the test closed it. As in app.main, its closing must not quit Qt (and stop the
    loop) under a test."""
    from studio_gui.main_window import MainWindow

    was = qapp.quitOnLastWindowClosed()
    qapp.setQuitOnLastWindowClosed(False)
    w = MainWindow(core)
    qtbot.addWidget(w)
    w.show()
    yield w
    if w.isVisible():
        w.close_without_asking("cancel")
        w.close()
    qapp.processEvents()
    qapp.setQuitOnLastWindowClosed(was)


@contextlib.contextmanager
def shown_generate_tab(qtbot, core, loop, *, service: str, size: tuple[int, int] = (1100, 760)):
    """A Generate tab on ``core`` for ``service``, shown and started; closed and its tasks
    cancelled after. The tab fixtures of the GUI test modules are built on this."""
    from studio_gui.generate.tab import GenerateTab
    from studio_gui.tasks import TaskOwner

    core.settings.update(selected_service=service)
    tasks = TaskOwner()
    w = GenerateTab(core, tasks=tasks)
    qtbot.addWidget(w)
    w.resize(*size)
    w.show()
    qtbot.waitExposed(w)
    loop.run_until_complete(w.started())
    try:
        yield w
    finally:
        w.closing()
        loop.run_until_complete(tasks.cancel_all())
