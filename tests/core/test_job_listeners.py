"""The queue's listeners are served by a ChangeBus of its own: one order for every
listener, and an async iterator that ends when the queue has closed (even one started
after the close)."""

from __future__ import annotations

import asyncio

from studio_core.jobs import JobQueue
from studio_core.models import GenerationRequest, JobCancelled, JobQueued
from tests.conftest import run_async


def idle_queue() -> JobQueue:
    async def never_saves(image, request):  # pragma: no cover - no job runs in these tests
        raise AssertionError("nothing is generated here")

    def no_provider(service):  # pragma: no cover
        raise AssertionError("nothing is generated here")

    return JobQueue(no_provider, never_saves)


def test_a_listener_that_cancels_while_hearing_an_event_does_not_reorder_the_others():
    async def main():
        queue = idle_queue()
        first, second = [], []
        queue.subscribe(lambda ev: first.append(type(ev).__name__))
        queue.subscribe(lambda ev: second.append(type(ev).__name__))

        def cancel_on_queued(ev):
            # Cancelling inside delivery emits JobCancelled before the others heard JobQueued.
            if isinstance(ev, JobQueued) and not cancelled:
                cancelled.append(queue.cancel(ev.job_id))

        cancelled: list[bool] = []
        queue.subscribe(cancel_on_queued)
        # A later listener, added after the one that cancels.
        last: list[str] = []
        queue.subscribe(lambda ev: last.append(type(ev).__name__))
        queue.submit(GenerationRequest("a potion", service="fake"))
        assert cancelled == [True]
        assert first == second == last == ["JobQueued", "JobCancelled"]
        await queue.aclose()

    run_async(main())


def test_events_end_when_the_queue_closes_and_at_once_after_it():
    async def main():
        queue = idle_queue()
        seen: list = []

        async def read() -> None:
            async for ev in queue.events():
                seen.append(ev)

        reader = asyncio.create_task(read())
        await asyncio.sleep(0)
        job = queue.submit(GenerationRequest("a potion", service="fake"))
        queue.cancel(job)
        await queue.aclose()
        await asyncio.wait_for(reader, 5)
        assert [type(e) for e in seen] == [JobQueued, JobCancelled]
        # A reader that starts after the close would otherwise wait forever.
        await asyncio.wait_for(read(), 5)

    run_async(main())


def test_callbacks_still_hear_after_the_close_and_unsubscribe_by_calling():
    async def main():
        queue = idle_queue()
        heard: list = []
        unsubscribe = queue.subscribe(heard.append)
        await queue.aclose()
        queue._emit(JobCancelled("late"))  # what a "Retry saving" after the close reports
        unsubscribe()
        queue._emit(JobCancelled("after unsubscribe"))
        assert [e.job_id for e in heard] == ["late"]

    run_async(main())
