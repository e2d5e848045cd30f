"""Pool server entries: validation, storage without secrets, and connecting with auth and pinned TLS.

The connection tests run a loopback "reverse proxy" (a websockets server) that demands a
Bearer token and a query token on plain HTTP routes and on the /ws upgrade, with and
without a self-signed certificate.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import ssl
from pathlib import Path

import httpx
import pytest
import websockets
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.datastructures import Headers
from websockets.http11 import Response

from studio_core.errors import MissingCredentials
from studio_core.pool.connection import connection_for
from studio_core.pool.errors import CertificateMismatch, ServerConfigInvalid
from studio_core.pool.pinned_tls import fetch_fingerprint, fingerprint_of, pretty_fingerprint, tls_failure
from studio_core.pool.servers import ServerKind, ServerSpec, runpod_endpoint
from tests.conftest import run_async

TOKEN = "s3cret-proxy-token-123"
QTOKEN = "q-token-abcdef987"


def spec(**kw) -> ServerSpec:
    return ServerSpec(id=kw.pop("id", "lan"), name=kw.pop("name", "Laptop"), url=kw.pop("url", "http://192.168.1.20:8188"), **kw)


# ---- validation ----------------------------------------------------------------------


def test_defaults_and_derived_addresses():
    s = spec(url="192.168.1.20:8000/")
    assert s.url == "http://192.168.1.20:8000" and s.ws_url == "ws://192.168.1.20:8000/ws"
    assert (s.running_slots, s.queued_slots, s.slots) == (1, 1, 2)
    assert s.enabled and not s.may_be_off and not s.paid and s.kind is ServerKind.comfyui
    t = spec(url="HTTPS://comfy.example.org/proxy/")
    assert t.url == "https://comfy.example.org/proxy" and t.ws_url == "wss://comfy.example.org/proxy/ws"
    assert spec(url="http://[::1]:8188").ws_url == "ws://[::1]:8188/ws"
    assert spec(name="  ").name == "192.168.1.20"


@pytest.mark.parametrize("url, words", [
    ("", "Enter the server's address"),
    ("ftp://nas.local:8188", "must start with http:// or https://, not ftp://"),
    ("ws://pc:8188", "Use http:// or https://"),
    ("http://pc:99999", "port must be a number from 1 to 65535"),
    ("http://pc:abc", "port must be a number"),
    ("http://", "has no host"),
    ("http://my pc:8188", "contains spaces"),
    ("http://bob:hunter2@pc:8188", "Don't put a user name or password"),
    ("http://pc:8188/?token=x", "must not contain '?'"),
])
def test_malformed_addresses_say_what_is_wrong(url, words):
    with pytest.raises(ServerConfigInvalid) as err:
        spec(url=url)
    assert words in err.value.user_message
    assert "hunter2" not in err.value.user_message and "hunter2" not in str(err.value)


def test_fingerprint_forms_and_mistakes():
    fp = "ab" * 32
    assert spec(url="https://pc", trusted_cert_sha256=pretty_fingerprint(fp)).trusted_cert_sha256 == fp
    assert spec(url="https://pc", trusted_cert_sha256="SHA256 Fingerprint=" + pretty_fingerprint(fp)).trusted_cert_sha256 == fp
    with pytest.raises(ServerConfigInvalid) as err:
        spec(url="https://pc", trusted_cert_sha256="ab:cd")
    assert "64 hexadecimal digits" in err.value.user_message
    with pytest.raises(ServerConfigInvalid) as err:
        spec(url="http://pc", trusted_cert_sha256=fp)
    assert "only applies to https://" in err.value.user_message


@pytest.mark.parametrize("kw, words", [
    ({"running_slots": 0}, "running jobs must be a whole number from 1"),
    ({"queued_slots": -1}, "queued jobs"),
    ({"running_slots": True}, "running jobs"),
    ({"connect_timeout_s": 0}, "between 0.5 and 120"),
    ({"connect_timeout_s": "soon"}, "must be a number"),
    ({"price_per_s": -0.1}, "cannot be negative"),
    ({"extra_headers": (("X-Bad Name", "1"),)}, "not a header name"),
    ({"extra_headers": (("Host", "evil"),)}, "not a header name"),
    ({"extra_headers": (("X-A", "1\r\nX-Injected: 2"),)}, "line break"),
    ({"auth_header": "Bad Header"}, "cannot be used as the name"),
    ({"token_param": "to ken"}, "cannot be a query parameter"),
])
def test_bad_fields(kw, words):
    with pytest.raises(ServerConfigInvalid) as err:
        spec(**kw)
    assert words in err.value.user_message


def test_settings_round_trip_holds_no_secret():
    from studio_core.secrets import SecretStore

    store = SecretStore(Path("unused"), use_keyring=True)
    s = spec(uses_auth=True, token_param="token", extra_headers=(("ngrok-skip-browser-warning", "1"),),
             url="https://pc:8443", trusted_cert_sha256="cd" * 32, models=("a.safetensors", "a.safetensors"))
    store.set(s.secret_name("auth"), f"Bearer {TOKEN}")
    store.set(s.secret_name("token"), QTOKEN)
    stored = json.dumps(s.to_dict())
    assert TOKEN not in stored and QTOKEN not in stored
    back = ServerSpec.from_dict(json.loads(stored))
    assert back == s and back.models == ("a.safetensors",)
    assert ServerSpec.from_dict({**s.to_dict(), "added_in_v9": 1}) == s
    with pytest.raises(ServerConfigInvalid) as err:
        ServerSpec.from_dict({**s.to_dict(), "kind": "swarm"})
    assert "unknown kind 'swarm'" in err.value.user_message
    with pytest.raises(ServerConfigInvalid):
        ServerSpec.from_dict({"name": "x"})


def test_runpod_entry():
    r = runpod_endpoint("rp", "RunPod", "abc123xyz9", workers=3, models=("flux1-dev.safetensors",), price_per_s=0.00031)
    assert r.url == "https://api.runpod.ai/v2/abc123xyz9" and r.kind is ServerKind.runpod
    assert r.paid and r.uses_auth and r.running_slots == 3 and r.queued_slots == 0 and not r.introspects
    assert ServerSpec.from_dict({"id": "rp2", "url": "https://api.runpod.ai/v2/x1y2z3", "kind": "runpod"}).paid


def test_missing_secret_is_named():
    with pytest.raises(MissingCredentials) as err:
        connection_for(spec(uses_auth=True), lambda name: None)
    assert "'Laptop' needs its token" in err.value.user_message
    with pytest.raises(MissingCredentials) as err:
        connection_for(spec(token_param="token"), lambda name: None)
    assert "('token')" in err.value.user_message


def test_bare_token_becomes_bearer_and_custom_header_is_kept_raw():
    c = connection_for(spec(uses_auth=True), {"pool-server:lan:auth": TOKEN}.get)
    assert ("Authorization", f"Bearer {TOKEN}") in c.headers and TOKEN not in repr(c)
    k = connection_for(spec(uses_auth=True, auth_header="X-API-Key"), {"pool-server:lan:auth": TOKEN}.get)
    assert ("X-API-Key", TOKEN) in k.headers


# ---- a loopback reverse proxy that wants the token on HTTP and on the websocket ------


class AuthProxy:
    def __init__(self, ssl_ctx: ssl.SSLContext | None = None):
        self.ssl_ctx = ssl_ctx
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.url = ""

    def _process(self, connection, request):
        headers = {k.lower(): v for k, v in request.headers.raw_items()}
        self.seen.append((request.path, headers))
        if headers.get("authorization") != f"Bearer {TOKEN}" or f"token={QTOKEN}" not in request.path:
            return Response(401, "Unauthorized", Headers([("Content-Length", "12")]), b"unauthorized")
        if request.path.startswith("/system_stats"):
            body = b'{"devices": []}'
            return Response(200, "OK", Headers([("Content-Type", "application/json"), ("Content-Length", str(len(body)))]), body)
        return None  # /ws: go on with the upgrade

    async def _handler(self, ws):
        await ws.send(json.dumps({"type": "status", "data": {"sid": "x"}}))
        await ws.close()

    async def __aenter__(self):
        self._server = await serve(self._handler, "127.0.0.1", 0, process_request=self._process, ssl=self.ssl_ctx)
        port = self._server.sockets[0].getsockname()[1]
        self.port = port
        self.url = f"{'https' if self.ssl_ctx else 'http'}://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc):
        self._server.close()
        await self._server.wait_closed()


def lookup(name: str) -> str | None:
    return {"pool-server:lan:auth": f"Bearer {TOKEN}", "pool-server:lan:token": QTOKEN}.get(name)


async def http_and_ws(s: ServerSpec, secrets=lookup) -> tuple[int, str]:
    conn = connection_for(s, secrets)
    async with httpx.AsyncClient(**conn.http_client_kwargs()) as client:
        r = await client.get("/system_stats")
    url, kw = conn.websocket_connect_kwargs(client_id="c1")
    async with connect(url, **kw) as ws:
        first = await ws.recv()
    return r.status_code, json.loads(first)["type"]


def test_headers_and_query_token_reach_http_and_the_websocket_handshake():
    async def main():
        async with AuthProxy() as proxy:
            s = spec(url=proxy.url, uses_auth=True, token_param="token", extra_headers=(("X-Tunnel", "skip"),))
            result = await http_and_ws(s)
            return result, proxy.seen

    (status, first), seen = run_async(main())
    assert status == 200 and first == "status"
    (http_path, http_h), (ws_path, ws_h) = seen
    assert http_path == f"/system_stats?token={QTOKEN}"
    assert ws_path == f"/ws?clientId=c1&token={QTOKEN}"
    for h in (http_h, ws_h):
        assert h["authorization"] == f"Bearer {TOKEN}" and h["x-tunnel"] == "skip"
    assert ws_h["upgrade"].lower() == "websocket"


def test_wrong_token_is_refused_on_both():
    async def main():
        async with AuthProxy() as proxy:
            s = spec(url=proxy.url, uses_auth=True, token_param="token")
            bad = {"pool-server:lan:auth": "Bearer wrong-token-000", "pool-server:lan:token": QTOKEN}.get
            conn = connection_for(s, bad)
            async with httpx.AsyncClient(**conn.http_client_kwargs()) as client:
                status = (await client.get("/system_stats")).status_code
            url, kw = conn.websocket_connect_kwargs(client_id="c1")
            with pytest.raises(websockets.exceptions.InvalidStatus) as err:
                async with connect(url, **kw):
                    pass
            return status, err.value.response.status_code

    assert run_async(main()) == (401, 401)


# ---- self-signed TLS -----------------------------------------------------------------


def self_signed(tmp: Path, cn: str = "localhost") -> tuple[ssl.SSLContext, str]:
    crypto = pytest.importorskip("cryptography")
    del crypto
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_pem, key_pem = tmp / f"{cn}.crt", tmp / f"{cn}.key"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_pem, key_pem)
    return ctx, fingerprint_of(cert.public_bytes(serialization.Encoding.DER))


def test_self_signed_proxy_works_only_when_its_fingerprint_is_trusted(tmp_path):
    server_ctx, fp = self_signed(tmp_path)
    _other_ctx, other_fp = self_signed(tmp_path, "impostor")

    async def main():
        async with AuthProxy(server_ctx) as proxy:
            s = spec(url=proxy.url, uses_auth=True, token_param="token")
            shown = await fetch_fingerprint("127.0.0.1", proxy.port)
            outcomes = {}
            for label, pin in (("pinned", fp), ("other", other_fp), ("none", "")):
                before = len(proxy.seen)
                try:
                    outcomes[label] = await http_and_ws(s.replace(trusted_cert_sha256=pin))
                except Exception as exc:  # noqa: BLE001 - the test inspects what the libraries raise
                    outcomes[label] = exc
                outcomes[label + "_requests"] = len(proxy.seen) - before
            return shown, outcomes

    shown, out = run_async(main())
    assert shown == fp
    assert out["pinned"] == (200, "status") and out["pinned_requests"] == 2
    # A wrong pin fails in the handshake: the token never reached the impostor.
    assert out["other_requests"] == 0 and out["none_requests"] == 0
    mismatch = tls_failure(out["other"], server="'Laptop'")
    assert isinstance(mismatch, CertificateMismatch)
    assert pretty_fingerprint(fp) in mismatch.user_message and "different certificate" in mismatch.user_message
    untrusted = tls_failure(out["none"], server="'Laptop'")
    assert isinstance(untrusted, CertificateMismatch) and "trust exactly that certificate" in untrusted.user_message


def test_pinned_websocket_alone_rejects_a_wrong_certificate(tmp_path):
    server_ctx, _fp = self_signed(tmp_path)

    async def main():
        async with AuthProxy(server_ctx) as proxy:
            conn = connection_for(spec(url=proxy.url, uses_auth=True, token_param="token",
                                       trusted_cert_sha256="00" * 32), lookup)
            url, kw = conn.websocket_connect_kwargs(client_id="c1")
            with pytest.raises(Exception) as err:
                async with connect(url, **kw):
                    pass
            return err.value, len(proxy.seen)

    exc, requests = run_async(main())
    assert requests == 0 and isinstance(tls_failure(exc, server="x"), CertificateMismatch)
