"""ComfyProvider against servers that differ from the one it was written for (issue 11, items 16 and 17):
a port that accepts but never answers, routes only under /api, /history entries whose status
disagrees with their outputs, and cancel racing a job that starts."""

from __future__ import annotations

import asyncio
import time

import pytest

from studio_core.errors import GenerationFailed, NotAComfyServer, RequestTimedOut
from studio_core.models import GenerationRequest, JobImage, JobProgress, JobStarted, ServiceState
from studio_core.providers.comfy.client import STATUS_TIMEOUT
from studio_core.providers.comfy.provider import ComfyProvider, _Job
from tests.comfy_fake_server import Behaviour, FakeComfyServer
from tests.conftest import run_async

REQ = GenerationRequest(prompt="a red potion bottle, pixel art", width=512, height=512, steps=4, seed=42)


class SilentPort:
    """Accepts connections and reads whatever comes, never writes a byte."""

    def __init__(self):
        self.accepted = 0
        self._server: asyncio.base_events.Server | None = None
        self._conns: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> str:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.accepted += 1
            self._conns.append(writer)
            try:
                while await reader.read(4096):
                    pass
            except ConnectionError:
                pass

        self._server = await asyncio.start_server(handle, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc) -> None:
        for w in self._conns:
            w.transport.abort()
        self._server.close()


def test_check_on_a_silent_port_uses_the_short_status_timeout():
    async def main():
        async with SilentPort() as url:
            prov = ComfyProvider(url)
            try:
                t0 = time.monotonic()
                status = await prov.check()
                elapsed = time.monotonic() - t0
                with pytest.raises(RequestTimedOut) as ei:
                    await prov.system_stats()
                return url, status, elapsed, ei.value
            finally:
                await prov.aclose()

    url, status, elapsed, exc = run_async(main())
    assert STATUS_TIMEOUT.read is not None and STATUS_TIMEOUT.read <= 5 and STATUS_TIMEOUT.connect <= 5
    assert status.state is ServiceState.unreachable
    assert url in status.message and "did not answer within 4 s" in status.message
    assert url in exc.user_message
    assert elapsed < 15  # generous: the old default waited 30 s


def test_not_comfy_names_the_address_and_what_answered():
    async def main():
        async with FakeComfyServer(behaviour=Behaviour(html=True)) as fake:
            prov = ComfyProvider(fake.url)
            try:
                return fake.url, await prov.check()
            finally:
                await prov.aclose()

    url, status = run_async(main())
    assert status.state is ServiceState.error
    assert url in status.message and "HTTP 404" in status.message
    assert "aiohttp" in status.message and "404 Not Found" in status.message  # the Server header and first bytes


def test_server_behind_an_api_only_proxy_works_end_to_end():
    async def main():
        async with FakeComfyServer(behaviour=Behaviour(api_only=True)) as fake:
            prov = ComfyProvider(fake.url)
            try:
                status = await prov.check()
                events = [e async for e in prov.generate(REQ, job_id="j")]
            finally:
                await prov.aclose()
            return fake, status, events

    fake, status, events = run_async(main())
    assert status.state is ServiceState.ready, status.message
    assert len([e for e in events if isinstance(e, JobImage)]) == 1
    assert [e for e in events if isinstance(e, JobProgress) and e.preview]  # the websocket worked too
    assert fake.ws_connects == 1
    # One bare probe, then every request (and /ws) under /api.
    assert fake.raw_paths[0] == "/system_stats"
    assert all(p.startswith("/api/") for p in fake.raw_paths[1:]) and "/api/ws" in fake.raw_paths


def test_2024_server_keeps_the_bare_routes():
    async def main():
        async with FakeComfyServer(version="2024") as fake:
            prov = ComfyProvider(fake.url)
            try:
                events = [e async for e in prov.generate(REQ, job_id="j")]
            finally:
                await prov.aclose()
            return fake, events

    fake, events = run_async(main())
    assert len([e for e in events if isinstance(e, JobImage)]) == 1
    assert not [p for p in fake.raw_paths if p.startswith("/api/")]


# ---- /history: finished only when the status says so ------------------------------------------

class HistoryClient:
    def __init__(self, entry):
        self.entry = entry
        self.prefix = ""

    async def get_json(self, path, **_kw):
        if path.startswith("/history/"):
            return {"p1": self.entry} if self.entry is not None else {}
        return {"queue_running": [[1, "p1", {}, {}, []]], "queue_pending": []}


def _history_outcome(entry, *, cancel_requested=False):
    async def main():
        prov = ComfyProvider("http://127.0.0.1:9")
        real = prov._client
        prov._client = HistoryClient(entry)
        job = _Job("j", "p1", {}, asyncio.Queue())
        job.cancel_requested = cancel_requested

        async def no_download(job, key, seed):
            return key

        prov._download = no_download
        try:
            events = [e async for e in prov._from_history(job, None, final=False)]
            return events, job.done
        finally:
            await real.aclose()

    return run_async(main())


OUT = {"9": {"images": [{"filename": "a.png", "subfolder": "", "type": "output"}]}}


def test_history_with_outputs_but_error_status_is_a_failure():
    entry = {"outputs": OUT, "status": {"status_str": "error", "completed": False,
                                        "messages": [["execution_error", {"exception_message": "boom", "node_type": "X"}]]}}
    with pytest.raises(GenerationFailed):
        _history_outcome(entry)


def test_history_entry_still_running_is_not_finished():
    # A server that writes history as it goes: outputs so far, status not completed yet.
    events, done = _history_outcome({"outputs": OUT, "status": {"completed": False, "messages": []}})
    assert None not in events and not done


@pytest.mark.parametrize("status", [{"status_str": "success", "completed": True}, {"completed": True}, None])
def test_history_finished_by_status_or_by_outputs_without_status(status):
    entry = {"outputs": OUT} if status is None else {"outputs": OUT, "status": status}
    events, done = _history_outcome(entry)
    assert events[-1] is None and done and ("a.png", "", "output") in events


def test_cancelled_job_missing_from_history_ends_quietly():
    events, done = _history_outcome(None, cancel_requested=True)
    assert events == [None] and done


# ---- cancel ----------------------------------------------------------------------------------

def test_cancel_stops_a_job_that_starts_while_cancelling():
    """Held in the queue until someone reads /queue; then it starts at once. Reading /queue to decide
    between delete and interrupt would see "pending", delete nothing by the time it acts, and let it run."""
    async def main():
        async with FakeComfyServer(behaviour=Behaviour(hold=True, release_on_queue_read=True, step_delay=0.05)) as fake:
            prov = ComfyProvider(fake.url)
            await prov.check()  # learn the server's version, as the app's health check does
            fake._release.clear()  # that check read /queue, which let held jobs go; hold again
            fake.requests.clear()
            started = asyncio.Event()

            async def run():
                async for e in prov.generate(REQ.replace(steps=40), job_id="x"):
                    if isinstance(e, JobStarted):
                        started.set()

            task = asyncio.create_task(run())
            await started.wait()
            await prov.cancel("x")
            await asyncio.wait_for(task, 10)
            fake.release()
            await asyncio.sleep(0.3)
            await prov.aclose()
            return fake

    fake = run_async(main())
    pid = fake.posted("/prompt")[0]["prompt_id"]
    assert fake.posted("/queue") == [{"delete": [pid]}] and fake.posted("/interrupt") == [{"prompt_id": pid}]
    assert pid not in fake.history and pid not in fake.jobs  # never ran


def test_cancel_on_a_2024_server_never_stops_another_clients_job():
    """A 2024 server ignores the interrupt's prompt_id and stops whatever runs."""
    async def main():
        async with FakeComfyServer(version="2024", behaviour=Behaviour(step_delay=0.02)) as fake:
            other, mine = ComfyProvider(fake.url), ComfyProvider(fake.url)
            progressed = asyncio.Event()
            other_events: list = []

            async def run_other():
                async for e in other.generate(REQ.replace(steps=30), job_id="other"):
                    other_events.append(e)
                    if isinstance(e, JobProgress):
                        progressed.set()

            t_other = asyncio.create_task(run_other())
            await progressed.wait()
            started = asyncio.Event()

            async def run_mine():
                async for e in mine.generate(REQ, job_id="mine"):
                    if isinstance(e, JobStarted):
                        started.set()

            t_mine = asyncio.create_task(run_mine())
            await started.wait()
            await mine.cancel("mine")
            await asyncio.wait_for(t_mine, 10)
            await asyncio.wait_for(t_other, 20)
            await other.aclose()
            await mine.aclose()
            return fake, other_events

    fake, other_events = run_async(main())
    assert len(fake.posted("/queue")) == 1 and fake.posted("/interrupt") == []
    assert len([e for e in other_events if isinstance(e, JobImage)]) == 1
