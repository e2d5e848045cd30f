"""GUI test fixtures: a qasync loop over pytest-qt's QApplication.

Drive asyncio work with ``loop.run_until_complete(wait_until(...))``; qtbot.waitUntil spins
Qt outside qasync's run loop and asyncio steps then fail with "no running event loop".
"""

from __future__ import annotations

import asyncio
import time

import pytest


@pytest.fixture
def loop(qapp):
    """A qasync loop that asyncio sees as running for the whole test.

    qasync's run_until_complete processes events once more after the loop stopped (qasync
    0.28: "run loop one last time"), and pytest-qt processes events after each test; a
    task step that falls due then fails with "no running event loop", which kills
    background tasks between two waits. The app never hits this: it runs a single
    run_until_complete for its whole life.
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
    try:
        pending = [t for t in asyncio.all_tasks(lp) if not t.done()]
        for t in pending:
            t.cancel()
        if pending:
            lp.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    finally:
        asyncio.events._set_running_loop(None)
        asyncio.set_event_loop(None)
        lp.close()


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
