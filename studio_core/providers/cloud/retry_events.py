"""Run a retried call while telling the user about each wait, as job events.

:func:`~studio_core.providers.cloud.common.with_retries` reports waits through a plain
callback, but a provider's ``generate`` is an async generator that can only speak by
yielding. This bridges the two: the retried call runs as a task, each wait sentence
becomes a :class:`JobNotice` as it happens (not after the wait), and the result comes
last. Cancelling the consumer cancels the call (and so aborts its HTTP request).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable, Generic, TypeVar

from studio_core.models import JobNotice
from studio_core.providers.cloud.common import with_retries

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    value: T


async def retry_with_notices(
    call: Callable[[], Awaitable[T]],
    *,
    job_id: str,
    attempts: int,
    base_delay: float,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> AsyncIterator[JobNotice | Outcome[T]]:
    """Yield a JobNotice before every retry wait, then one Outcome with the result."""
    notices: asyncio.Queue[str] = asyncio.Queue()
    task = asyncio.ensure_future(
        with_retries(call, attempts=attempts, base_delay=base_delay, on_wait=notices.put_nowait, sleep=sleep)
    )
    try:
        while True:
            getter = asyncio.ensure_future(notices.get())
            try:
                await asyncio.wait({task, getter}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                if not getter.done():
                    getter.cancel()
            if getter.done() and not getter.cancelled():
                yield JobNotice(job_id, getter.result())
                continue
            while not notices.empty():
                yield JobNotice(job_id, notices.get_nowait())
            yield Outcome(task.result())
            return
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
