"""The pool against REAL ComfyUI servers (the March-2024 CPU test server, separate processes),
and behind a real auth proxy and a self-signed TLS proxy.

Graphs are model-free (EmptyImage → blur/invert chain → ImageScale → SaveImage), so they
really run on the CPU; a long chain keeps a job busy long enough to kill its server.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from pathlib import Path

import pytest

from studio_core.errors import AuthenticationFailed
from studio_core.models import JobImage, JobNotice, JobProgress, JobStarted, ServiceState
from studio_core.pool.errors import CertificateMismatch
from studio_core.pool.pinned_tls import fetch_fingerprint
from studio_core.pool.provider import PoolProvider
from studio_core.pool.servers import ServerSpec
from tests.conftest import run_async
from tests.core.test_comfy_real_server import _CACHE, _TOOL, model_free, req

pytestmark = pytest.mark.comfy_server
TOKEN = "s3cret-pool-token"


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory: pytest.TempPathFactory):
    logs = tmp_path_factory.mktemp("pool")
    procs = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STUDIO_TEST_CACHE", _CACHE)
        try:
            for i in range(2):
                procs.append(_TOOL.start(log_path=logs / f"server{i}.log"))
            yield [url for _, url in procs]
        finally:
            for proc, _ in procs:
                _TOOL.stop(proc)


def start_server(tmp_path: Path, port: int | None = None):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STUDIO_TEST_CACHE", _CACHE)
        return _TOOL.start(port, log_path=tmp_path / f"server-{port or 'x'}.log")


def entry(sid: str, url: str, **kw) -> ServerSpec:
    kw.setdefault("running_slots", 1)
    kw.setdefault("queued_slots", 0)
    return ServerSpec(id=sid, name=kw.pop("name", sid), url=url, **kw)


async def run_job(p: PoolProvider, graph: dict, job_id: str) -> list:
    return [e async for e in p.generate(req(graph), job_id=job_id)]


def test_jobs_spread_over_two_real_servers(two_servers):
    async def main():
        p = PoolProvider([entry("a", two_servers[0]), entry("b", two_servers[1])], secret=lambda n: None)
        try:
            return await asyncio.gather(*(run_job(p, model_free(size=256, blur_stages=2), f"j{i}") for i in range(4)))
        finally:
            await p.aclose()

    results = run_async(main(), timeout=240)
    images = [e for events in results for e in events if isinstance(e, JobImage)]
    assert len(images) == 4
    assert {dict(i.info)["server_name"] for i in images} == {"a", "b"}


def test_server_started_later_joins_and_a_killed_one_hands_its_job_over(two_servers, tmp_path: Path):
    port = _TOOL.free_port()
    late_url = f"http://127.0.0.1:{port}"

    async def main():
        # The late server is first in the list: once it is up, the job goes there first.
        p = PoolProvider([entry("late", late_url, may_be_off=True), entry("a", two_servers[0])],
                         secret=lambda n: None, poll_s=0.5, lost_server_grace_s=1.0)
        try:
            before = {s.id: s.state for s in await p.refresh()}
            proc, _ = await asyncio.to_thread(start_server, tmp_path, port)
            try:
                after = {s.id: s.state for s in await p.refresh()}
                events: list = []
                saw_progress = asyncio.Event()

                async def run():
                    async for e in p.generate(req(model_free(size=768, blur_stages=14)), job_id="long"):
                        events.append(e)
                        active = p._active.get("long")
                        if isinstance(e, JobProgress) and active is not None and active[0].id == "late":
                            saw_progress.set()

                task = asyncio.create_task(run())
                await asyncio.wait_for(saw_progress.wait(), 60)
                proc.kill()  # SIGKILL: no goodbye, the socket just ends
                await asyncio.wait_for(task, 180)
                return before, after, events, {s.id: s.state for s in p.states()}
            finally:
                if proc.poll() is None:
                    _TOOL.stop(proc)
        finally:
            await p.aclose()

    before, after, events, states = run_async(main(), timeout=300)
    assert before["late"] == "idle" and after["late"] == "running"
    images = [e for e in events if isinstance(e, JobImage)]
    assert len(images) == 1 and dict(images[0].info)["server_name"] == "a"
    assert [type(e) for e in events].count(JobStarted) == 1
    assert any("continues on 'a'" in e.message for e in events if isinstance(e, JobNotice))
    assert states["late"] in ("idle", "offline")


# ---- an auth proxy and a self-signed TLS proxy in front of a real server ---------------------


class AuthProxy:
    """Demands ``Authorization: Bearer TOKEN`` (or ``?token=TOKEN``) on every request and on the
    websocket upgrade; forwards one request per connection to the upstream server."""

    def __init__(self, upstream: str, *, tls: ssl.SSLContext | None = None):
        host, port = upstream.split("://", 1)[1].split(":")
        self.up = (host, int(port))
        self.tls = tls
        self.seen_ws_auth: list[bool] = []
        self.refused = 0
        self.requests = 0
        self.server: asyncio.base_events.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.tls)
        port = self.server.sockets[0].getsockname()[1]
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self.server:
            self.server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ssl.SSLError):
            writer.close()
            return
        self.requests += 1
        lines = head.decode("latin-1").split("\r\n")
        target = lines[0].split(" ")[1]
        headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:] if l)}
        ok = headers.get("authorization") == f"Bearer {TOKEN}" or f"token={TOKEN}" in target
        is_ws = headers.get("upgrade", "").lower() == "websocket"
        if is_ws:
            self.seen_ws_auth.append(ok)
        if not ok:
            self.refused += 1
            writer.write(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 12\r\nConnection: close\r\n\r\nunauthorized")
            await writer.drain()
            writer.close()
            return
        if not is_ws:  # one request per connection, so every request is checked
            kept = [l for l in lines[1:] if l and not l.lower().startswith("connection:")]
            head = ("\r\n".join([lines[0], *kept, "Connection: close"]) + "\r\n\r\n").encode("latin-1")
        up_r, up_w = await asyncio.open_connection(*self.up)
        up_w.write(head)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, ssl.SSLError, OSError):
                pass
            finally:
                try:
                    dst.close()
                except Exception:
                    pass

        await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))


def self_signed(tmp_path: Path) -> tuple[ssl.SSLContext, str]:
    """A server context with a fresh self-signed certificate (made here with ``cryptography``)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "comfy.home")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_path, key_path)
    return ctx, cert.fingerprint(hashes.SHA256()).hex()


def test_auth_proxy_works_with_the_token_on_http_and_websocket_and_says_when_it_is_wrong(two_servers):
    async def main():
        proxy = AuthProxy(two_servers[0])
        url = await proxy.start()
        secrets = {"pool-server:lan:auth": TOKEN, "pool-server:bad:auth": "not-the-token"}
        try:
            good = PoolProvider([entry("lan", url, uses_auth=True)], secret=secrets.get)
            try:
                status = await good.check()
                events = await run_job(good, model_free(), "ok")
            finally:
                await good.aclose()
            out = {}
            for sid, kw in (("bad", {"uses_auth": True}), ("none", {})):
                p = PoolProvider([entry(sid, url, **kw)], secret=secrets.get)
                try:
                    out[sid] = (await p.check(),)
                    with pytest.raises(AuthenticationFailed) as exc:
                        await run_job(p, model_free(), "no")
                    out[sid] += (exc.value,)
                finally:
                    await p.aclose()
            return status, events, out, proxy
        finally:
            await proxy.stop()

    status, events, out, proxy = run_async(main(), timeout=120)
    assert status.state is ServiceState.ready
    assert len([e for e in events if isinstance(e, JobImage)]) == 1
    assert proxy.seen_ws_auth and proxy.seen_ws_auth[0] is True  # the websocket carried the token too
    bad_status, bad_err = out["bad"]
    assert "rejected the token" in bad_status.message and "rejected the token" in bad_err.user_message
    assert "not-the-token" not in bad_err.user_message + str(bad_err)
    none_status, none_err = out["none"]
    assert "wants a token" in none_status.message and "Settings → ComfyUI servers" in none_err.user_message


def test_query_token_reaches_the_websocket_too(two_servers):
    async def main():
        proxy = AuthProxy(two_servers[1])
        url = await proxy.start()
        try:
            p = PoolProvider([entry("q", url, token_param="token")], secret={"pool-server:q:token": TOKEN}.get)
            try:
                return await run_job(p, model_free(), "q"), proxy
            finally:
                await p.aclose()
        finally:
            await proxy.stop()

    events, proxy = run_async(main(), timeout=120)
    assert len([e for e in events if isinstance(e, JobImage)]) == 1 and proxy.seen_ws_auth == [True]


def test_self_signed_tls_proxy_works_only_with_its_fingerprint_trusted(two_servers, tmp_path: Path):
    async def main():
        ctx, fp = self_signed(tmp_path)
        proxy = AuthProxy(two_servers[0], tls=ctx)
        url = await proxy.start()
        port = int(url.rsplit(":", 1)[1])
        secrets = {f"pool-server:{s}:auth": TOKEN for s in ("pinned", "plain", "other")}
        try:
            fetched = await fetch_fingerprint("127.0.0.1", port)
            out = {}
            for sid, pin in (("pinned", fp), ("plain", ""), ("other", "ab" * 32)):
                p = PoolProvider([entry(sid, url, uses_auth=True, trusted_cert_sha256=pin)], secret=secrets.get)
                try:
                    if sid == "pinned":
                        out[sid] = await run_job(p, model_free(), "tls")
                        out["requests"] = proxy.requests
                    else:
                        with pytest.raises(CertificateMismatch) as exc:
                            await run_job(p, model_free(), "tls")
                        out[sid] = exc.value
                finally:
                    await p.aclose()
            return fp, fetched, out, proxy
        finally:
            await proxy.stop()

    fp, fetched, out, proxy = run_async(main(), timeout=120)
    assert fetched == fp
    assert len([e for e in out["pinned"] if isinstance(e, JobImage)]) == 1
    assert "not trusted" in out["plain"].user_message and "fingerprint" in out["plain"].user_message
    assert "different certificate" in out["other"].user_message
    # Not one request (so no token) went out to the certificate that was not trusted.
    assert out["requests"] > 0 and proxy.requests == out["requests"]
