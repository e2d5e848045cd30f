"""The running pool against protocol-faithful fake ComfyUI servers (tests/comfy_fake_server.py):
spreading, capability routing, failover with one saved result, cancel (also while POST /prompt
is in flight), jobs orphaned by an outage cancelled when the server is back, health states,
and the server list in Settings."""

from __future__ import annotations

import asyncio
import copy
import json

import pytest

from studio_core.errors import AuthenticationFailed
from studio_core.models import GenerationRequest, JobImage, JobNotice, JobStarted, ServiceState
from studio_core.pool.errors import NoCapableServer
from studio_core.pool.provider import PoolProvider
from studio_core.pool.server_list import MANAGED_ID, MY_PC_ID, entries_to_settings, pool_entries
from studio_core.pool.servers import ServerSpec
from studio_core.providers.comfy.provider import ComfyProvider
from studio_core.settings import Settings, SettingsStore
from tests.comfy_fake_server import DATA, Behaviour, FakeComfyServer
from tests.conftest import run_async


def info_with(models: list[str]) -> dict:
    info = json.loads((DATA / "comfy_object_info_0.3.64.json").read_text())
    info = copy.deepcopy(info)
    info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"] = [models, {}]
    return info


def req(model: str = "a.safetensors", seed: int = 7, steps: int = 4) -> GenerationRequest:
    return GenerationRequest(prompt="a slime", width=64, height=64, steps=steps, seed=seed, model=model)


def spec(fake: FakeComfyServer, sid: str, **kw) -> ServerSpec:
    kw.setdefault("running_slots", 1)
    kw.setdefault("queued_slots", 0)
    return ServerSpec(id=sid, name=kw.pop("name", sid), url=fake.url, **kw)


def pool(*specs: ServerSpec, **kw) -> PoolProvider:
    kw.setdefault("lost_server_grace_s", 0.5)
    kw.setdefault("poll_s", 0.2)
    return PoolProvider(specs, secret=lambda name: None, **kw)


async def collect(p, request: GenerationRequest, job_id: str) -> list:
    return [e async for e in p.generate(request, job_id=job_id)]


class PortFake(FakeComfyServer):
    """A fake on a chosen port, to come back where an earlier one died."""

    def __init__(self, port: int = 0, **kw):
        super().__init__(**kw)
        self.port = port

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._worker = asyncio.create_task(self._run_jobs())
        if not self.b.hold:
            self._release.set()
        return self.url


class GatedPost(FakeComfyServer):
    """POST /prompt is held until ``gate`` opens, as on a slow link; the ids it queued are kept."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.gate = asyncio.Event()
        self.post_seen = asyncio.Event()
        self.queued_ids: list[str] = []

    async def _route(self, method, path, query, body):
        if method == "POST" and path == "/prompt":
            self.post_seen.set()
            await self.gate.wait()
        return await super()._route(method, path, query, body)

    def _post_prompt(self, data):
        res = super()._post_prompt(data)
        if res and res[0] == 200:
            self.queued_ids.append(json.loads(res[2])["prompt_id"])
        return res


def deleted_ids(fake: FakeComfyServer) -> set[str]:
    return {pid for body in fake.posted("/queue") for pid in (body or {}).get("delete", [])}


def test_jobs_spread_over_two_servers_and_record_the_server():
    async def main():
        b = Behaviour(step_delay=0.05)
        async with FakeComfyServer(behaviour=b, object_info=info_with(["a.safetensors"])) as one, \
                FakeComfyServer(behaviour=Behaviour(step_delay=0.05), object_info=info_with(["a.safetensors"])) as two:
            p = pool(spec(one, "one"), spec(two, "two"))
            try:
                results = await asyncio.gather(*(collect(p, req(seed=i), f"j{i}") for i in range(4)))
            finally:
                await p.aclose()
            return one, two, results

    one, two, results = run_async(main())
    assert len(one.posted("/prompt")) >= 1 and len(two.posted("/prompt")) >= 1
    assert len(one.posted("/prompt")) + len(two.posted("/prompt")) == 4
    images = [e for events in results for e in events if isinstance(e, JobImage)]
    assert len(images) == 4
    names = {dict(i.info)["server_name"] for i in images}
    assert names == {"one", "two"}
    info = dict(images[0].info)
    assert info["server"] == f"{info['server_name']} ({info['server_url']})"


def test_model_only_one_server_has_goes_there_and_a_model_nobody_has_is_named():
    async def main():
        async with FakeComfyServer(object_info=info_with(["a.safetensors"])) as a, \
                FakeComfyServer(object_info=info_with(["b.safetensors"])) as b:
            p = pool(spec(a, "a"), spec(b, "b"))
            try:
                events = await collect(p, req(model="b.safetensors"), "j1")
                with pytest.raises(NoCapableServer) as exc:
                    await collect(p, req(model="zz.safetensors"), "j2")
                where = p.model_servers()
            finally:
                await p.aclose()
            return a, b, events, exc.value, where

    a, b, events, err, where = run_async(main())
    assert a.posted("/prompt") == [] and len(b.posted("/prompt")) == 1
    assert dict(next(e for e in events if isinstance(e, JobImage)).info)["server_name"] == "b"
    assert "zz.safetensors" in err.user_message and err.missing == ("zz.safetensors",)
    assert where["a.safetensors"] == ("a",) and where["b.safetensors"] == ("b",)


def test_server_dying_mid_job_moves_it_and_saves_one_result():
    async def main():
        dying = FakeComfyServer(behaviour=Behaviour(step_delay=0.05, die_at_step=2), object_info=info_with(["a.safetensors"]))
        async with dying, FakeComfyServer(object_info=info_with(["a.safetensors"])) as good:
            p = pool(spec(dying, "laptop"), spec(good, "pc", name="my PC"))
            try:
                events = await collect(p, req(), "j1")
                states = {s.id: s.state for s in p.states()}
            finally:
                await p.aclose()
            return dying, good, events, states

    dying, good, events, states = run_async(main())
    assert len(dying.posted("/prompt")) == 1 and len(good.posted("/prompt")) == 1
    assert [type(e) for e in events].count(JobStarted) == 1
    images = [e for e in events if isinstance(e, JobImage)]
    assert len(images) == 1 and dict(images[0].info)["server_name"] == "my PC"
    notices = [e.message for e in events if isinstance(e, JobNotice)]
    assert any("'laptop' could not finish this job" in n and "continues on 'my PC'" in n for n in notices)
    assert states["laptop"] == "offline"


def test_job_left_on_a_dead_server_is_cancelled_when_it_comes_back():
    async def main():
        dying = PortFake(behaviour=Behaviour(step_delay=0.05, die_at_step=2), object_info=info_with(["a.safetensors"]))
        await dying.start()
        async with FakeComfyServer(object_info=info_with(["a.safetensors"])) as good:
            p = pool(spec(dying, "laptop"), spec(good, "pc"))
            try:
                await collect(p, req(), "j1")
                left = p.orphans.pending("laptop")
                back = PortFake(port=dying.port, object_info=info_with(["a.safetensors"]))
                await back.start()
                try:
                    for _ in range(100):
                        if deleted_ids(back):
                            break
                        await asyncio.sleep(0.05)
                    return left, deleted_ids(back), {s.id: s.state for s in p.states()}
                finally:
                    await back.stop()
            finally:
                await p.aclose()
                await dying.stop()

    left, deleted, states = run_async(main())
    assert len(left) == 1 and deleted == set(left)
    assert states["laptop"] == "running"


def test_cancel_through_the_pool_stops_the_job_where_it_runs():
    async def main():
        async with FakeComfyServer(object_info=info_with(["a.safetensors"])) as a, \
                FakeComfyServer(behaviour=Behaviour(step_delay=0.2), object_info=info_with(["b.safetensors"])) as b:
            p = pool(spec(a, "a"), spec(b, "b"))
            try:
                events: list = []

                async def run():
                    async for e in p.generate(req(model="b.safetensors", steps=50), job_id="j1"):
                        events.append(e)

                task = asyncio.create_task(run())
                while not any(isinstance(e, JobStarted) for e in events):
                    await asyncio.sleep(0.02)
                await p.cancel("j1")
                await asyncio.wait_for(task, 10)
            finally:
                await p.aclose()
            return b, events

    b, events = run_async(main())
    assert b.posted("/interrupt") or b.posted("/queue")
    assert not any(isinstance(e, JobImage) for e in events)


@pytest.mark.parametrize("version", ["2025", "2024"])
def test_cancel_while_post_prompt_is_in_flight_still_cancels_on_the_server(version: str):
    async def main():
        async with GatedPost(version=version, behaviour=Behaviour(step_delay=0.05)) as fake:
            prov = ComfyProvider(fake.url)
            try:
                task = asyncio.create_task(collect(prov, req(model=""), "j1"))
                await asyncio.wait_for(fake.post_seen.wait(), 10)
                task.cancel()
                await asyncio.sleep(0.2)  # the cancel reaches the server before the job does
                fake.gate.set()
                with pytest.raises(asyncio.CancelledError):
                    await task
            finally:
                await prov.aclose()  # waits for the cancel that follows the POST's answer
            await asyncio.sleep(0.3)
            return fake

    fake = run_async(main())
    assert len(fake.queued_ids) == 1
    server_id = fake.queued_ids[0]
    assert server_id in deleted_ids(fake)
    assert server_id not in fake.history or fake.history[server_id]["status"]["status_str"] != "success"


def test_health_states_idle_offline_error_and_running():
    async def main():
        async with FakeComfyServer() as up:
            dead = PortFake()
            await dead.start()
            await dead.stop()
            p = pool(spec(up, "up"), ServerSpec(id="maybe", name="maybe", url=dead.url, may_be_off=True),
                     ServerSpec(id="gone", name="gone", url=dead.url),
                     ServerSpec(id="locked", name="locked", url=dead.url, uses_auth=True))
            seen: list = []
            p.add_listener(seen.append)
            try:
                states = await p.refresh()
            finally:
                await p.aclose()
            return {s.id: (s.state, s.message) for s in states}, seen

    states, seen = run_async(main())
    assert states["up"][0] == "running"
    assert states["maybe"] == ("idle", "not answering (may be switched off)")
    assert states["gone"][0] == "offline" and "not answering" in states["gone"][1]
    assert states["locked"][0] == "error" and "needs its token" in states["locked"][1]
    assert seen and seen[-1][0].id == "up"


def test_single_server_pool_keeps_the_servers_own_message_for_a_missing_model():
    async def main():
        async with FakeComfyServer(behaviour=Behaviour(missing_models=True)) as fake:
            p = pool(spec(fake, MY_PC_ID))
            try:
                await collect(p, req(model="nothere.safetensors"), "j1")
            finally:
                await p.aclose()

    from studio_core.errors import StudioError

    with pytest.raises(StudioError) as exc:
        run_async(main())
    assert "nothere.safetensors" in exc.value.user_message


# ---- the list in Settings --------------------------------------------------------------


def test_typed_address_becomes_my_pc_and_managed_server_never_overwrites_it(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"schema_version": 2, "comfy_url": "http://192.168.1.20:8188"}))
    store = SettingsStore(path)
    s = store.current
    assert s.comfy_servers == ({"id": MY_PC_ID, "name": "my PC", "url": "http://192.168.1.20:8188"},)
    store.update(comfy_managed_url="http://127.0.0.1:40123")
    entries = pool_entries(store.current)
    assert [(e.id, e.url) for e in entries] == [(MANAGED_ID, "http://127.0.0.1:40123"), (MY_PC_ID, "http://192.168.1.20:8188")]
    laptop = ServerSpec(id="laptop", name="the laptop", url="http://10.0.0.5:8188", uses_auth=True)
    store.update(**entries_to_settings([*entries, laptop]))
    store.close()
    again = SettingsStore(path).current
    assert again.comfy_url == "http://192.168.1.20:8188"
    assert [e.id for e in pool_entries(again)] == [MY_PC_ID, "laptop"]  # managed is never saved
    assert "managed" not in path.read_text() and "40123" not in path.read_text()


def test_empty_address_uses_what_discovery_found_and_may_be_off():
    s = Settings(comfy_found_url="http://127.0.0.1:8000")
    (entry,) = pool_entries(s)
    assert entry.url == "http://127.0.0.1:8000" and entry.may_be_off
    (entry,) = pool_entries(Settings())
    assert entry.url == "http://127.0.0.1:8188" and entry.may_be_off


def test_damaged_entry_is_skipped_with_a_reason_and_the_rest_run():
    from studio_core.pool.server_list import stored_specs

    s = Settings(comfy_servers=({"id": "bad", "name": "bad one", "url": "ftp://x"},
                                {"id": "ok", "name": "ok", "url": "10.0.0.2:8188"}))
    specs, problems = stored_specs(s)
    assert [x.id for x in specs] == ["ok"] and "bad one" in problems[0] and "ftp://" in problems[0]
    assert [e.id for e in pool_entries(s)] == ["ok"]


def test_rejected_token_is_said_in_words():
    # A proxy answering 401 stands in for the real auth proxy of test_pool_real_servers.
    async def main():
        server = await asyncio.start_server(_answer_401, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            p = PoolProvider([ServerSpec(id="lan", name="lan", url=f"http://127.0.0.1:{port}", uses_auth=True)],
                             secret=lambda n: "wrong-token")
            try:
                status = await p.check()
                with pytest.raises(AuthenticationFailed) as exc:
                    await collect(p, req(), "j1")
            finally:
                await p.aclose()
            return status, exc.value
        finally:
            server.close()

    status, err = run_async(main())
    assert status.state is ServiceState.error and "rejected the token" in status.message
    assert "rejected the token" in err.user_message and "wrong-token" not in err.user_message + str(err)


async def _answer_401(reader, writer):
    try:
        while True:
            line = await reader.readline()
            if not line:
                return
            while (await reader.readline()) not in (b"\r\n", b""):
                pass
            writer.write(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()
