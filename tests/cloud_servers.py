"""Loopback HTTP servers that speak the cloud providers' documented wire formats.

One threaded ``http.server`` per test, on 127.0.0.1 with a free port. Routes are a method
plus a regular expression over the path (query string excluded); each route holds a
queue of replies (the last one repeats) or a callable ``handler(Recorded) -> Reply``.
Every request is recorded (method, path with query, headers, body) so tests can assert
what went over the wire. The reply builders below follow providers.md, section by section.
"""

from __future__ import annotations

import base64
import io
import json
import re
import struct
import threading
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import urlsplit


@dataclass
class Recorded:
    method: str
    path: str  # with the query string
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def route(self) -> str:
        return urlsplit(self.path).path

    @property
    def query(self) -> str:
        return urlsplit(self.path).query

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def parts(self) -> list[Part]:
        """The parts of a multipart/form-data body, in order."""
        return multipart_parts(self.headers, self.body)


@dataclass
class Part:
    name: str
    filename: str | None
    content_type: str
    data: bytes

    @property
    def text(self) -> str:
        return self.data.decode()


def multipart_parts(headers: dict[str, str], body: bytes) -> list[Part]:
    """Split a multipart/form-data body the way a server would (the stdlib email parser)."""
    import email
    import email.policy

    ctype = headers.get("content-type", "")
    assert ctype.startswith("multipart/form-data"), ctype
    msg = email.message_from_bytes(f"Content-Type: {ctype}\r\n\r\n".encode() + body, policy=email.policy.HTTP)
    out = []
    for part in msg.iter_parts():
        out.append(Part(part.get_param("name", header="content-disposition"), part.get_filename(),
                        part.get_content_type() if part.get("content-type") else "", part.get_payload(decode=True)))
    return out


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | dict | list | None = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering: the timeout case
    content_type: str = ""

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, (dict, list)):
            return json.dumps(self.body).encode(), self.content_type or "application/json"
        if isinstance(self.body, str):
            return self.body.encode(), self.content_type or "text/plain; charset=utf-8"
        return self.body or b"", self.content_type or "application/octet-stream"


Handler = Callable[[Recorded], Reply]


class LoopbackServer:
    """A scriptable HTTP server. Use as a context manager; ``url`` is its base URL."""

    def __init__(self, port: int = 0) -> None:
        self.requests: list[Recorded] = []
        self._routes: list[tuple[str, re.Pattern[str], list[Reply] | Handler]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                rec = Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                reply = server._dispatch(rec)
                if reply.delay and server._stop.wait(reply.delay):
                    return
                data, ctype = reply.encoded()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def route(self, method: str, path_regex: str, *replies: Reply | Handler) -> LoopbackServer:
        """Answer ``method path`` with ``replies`` in order (the last repeats), or with one handler."""
        if len(replies) == 1 and callable(replies[0]) and not isinstance(replies[0], Reply):
            target: list[Reply] | Handler = replies[0]  # type: ignore[assignment]
        else:
            target = list(replies)  # type: ignore[arg-type]
        self._routes.append((method.upper(), re.compile(path_regex + r"\Z"), target))
        return self

    def _dispatch(self, rec: Recorded) -> Reply:
        with self._lock:
            self.requests.append(rec)
            for method, pattern, target in self._routes:
                if method == rec.method and pattern.match(rec.route):
                    if callable(target):
                        return target(rec)
                    return target.pop(0) if len(target) > 1 else target[0]
        return Reply(404, {"error": f"no route for {rec.method} {rec.route}"})

    def by_route(self, regex: str, method: str | None = None) -> list[Recorded]:
        pat = re.compile(regex + r"\Z")
        return [r for r in self.requests if pat.match(r.route) and (method is None or r.method == method)]

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()


def closed_port() -> int:
    """A loopback port nothing listens on right now: connecting to it is refused."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------------------------------
# Image payloads


def png_bytes(width: int = 32, height: int = 32, color: tuple[int, ...] = (40, 160, 90, 255)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGBA", (width, height), color).save(buf, format="PNG")
    return buf.getvalue()


def jpeg_bytes(width: int = 32, height: int = 32) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buf, format="JPEG")
    return buf.getvalue()


def huge_png_header(width: int = 30000, height: int = 30000) -> bytes:
    """A PNG whose header claims ``width``×``height`` pixels: the decompression-bomb case, in 60 bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


NOT_AN_IMAGE = b"<html><body>Service temporarily unavailable</body></html>"

# ---------------------------------------------------------------------------------------
# §1 Hugging Face (router, hf-inference)


def hf_image(data: bytes | None = None, ctype: str = "image/png") -> Reply:
    return Reply(200, data if data is not None else png_bytes(), content_type=ctype)


def hf_json_b64(data: bytes | None = None) -> Reply:
    return Reply(200, {"data": [{"b64_json": b64(data or png_bytes())}]})


def hf_error(status: int, message: str, **extra: Any) -> Reply:
    return Reply(status, {"error": message, **extra})


HF_BAD_TOKEN = hf_error(401, "Invalid credentials in Authorization header")
HF_RETIRED = hf_error(410, "The requested model is deprecated and no longer supported by provider hf-inference")

# ---------------------------------------------------------------------------------------
# §2 Replicate


def replicate_prediction(pid: str = "q1w2e3r4t5", *, status: str = "succeeded", output: Any = None, error: str | None = None,
                         model: str = "black-forest-labs/flux-schnell", base: str = "https://api.replicate.com",
                         logs: str = "") -> dict[str, Any]:
    return {
        "id": pid, "model": model, "version": "hidden", "input": {}, "logs": logs, "output": output, "data_removed": False,
        "error": error, "status": status, "created_at": "2026-11-26T10:00:00.000Z",
        "urls": {"get": f"{base}/v1/predictions/{pid}", "cancel": f"{base}/v1/predictions/{pid}/cancel",
                 "web": f"https://replicate.com/p/{pid}"},
    }


def replicate_problem(status: int, detail: str, title: str = "", **extra: Any) -> Reply:
    body = {"detail": detail, "status": status, **extra}
    if title:
        body["title"] = title
    return Reply(status, body, content_type="application/problem+json")


REPLICATE_BAD_TOKEN = replicate_problem(401, "You did not pass a valid authentication token", "Unauthenticated")
REPLICATE_NSFW = "All generated images contained NSFW content. Try running it again with a different prompt."

# ---------------------------------------------------------------------------------------
# §4 Azure OpenAI and §6 OpenAI


def openai_images(*images: bytes, **extra: Any) -> Reply:
    imgs = images or (png_bytes(),)
    body = {"created": 1764150000, "data": [{"b64_json": b64(i)} for i in imgs], **extra}
    return Reply(200, body)


def openai_error(status: int, message: str, *, code: str | None = None, type: str = "invalid_request_error",
                 headers: dict[str, str] | None = None, **extra: Any) -> Reply:
    return Reply(status, {"error": {"message": message, "type": type, "param": None, "code": code, **extra}},
                 headers=headers or {})


OPENAI_MODERATION = openai_error(
    400, "Your request was rejected by the safety system. If you believe this is an error, contact us at help.openai.com"
         " and include the request ID. safety_violations=[sexual].",
    code="moderation_blocked", type="image_generation_user_error",
    moderation_details={"moderation_stage": "input", "categories": ["sexual"]})

AZURE_CONTENT_FILTER = Reply(400, {"error": {
    "code": "content_policy_violation",
    "inner_error": {"code": "ResponsibleAIPolicyViolation",
                    "content_filter_results": {"jailbreak": {"detected": False, "filtered": False},
                                               "violence": {"filtered": True, "severity": "high"}}},
    "message": "Your request was rejected as a result of our safety system. Your prompt may contain text that is not allowed by our safety system.",
    "type": "invalid_request_error"}})

AZURE_NO_DEPLOYMENT = Reply(404, {"error": {
    "code": "DeploymentNotFound",
    "message": "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again."}})


# ---------------------------------------------------------------------------------------
# Driving a provider in a test


class RecordingSleep:
    """Stands in for asyncio.sleep in retry loops: records each wait, waits no real time."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        import asyncio

        self.delays.append(delay)
        await asyncio.sleep(0)


class StartServerOnFirstWait(RecordingSleep):
    """A retry wait that starts the server ``make()`` builds on the port that refused the first connect.

    The server is built only then: a bound socket already accepts connections.
    """

    def __init__(self, make: Callable[[], LoopbackServer]) -> None:
        super().__init__()
        self._make = make
        self.server: LoopbackServer | None = None

    async def __call__(self, delay: float) -> None:
        if self.server is None:
            self.server = self._make().__enter__()
        await super().__call__(delay)

    def close(self) -> None:
        if self.server is not None:
            self.server.__exit__(None, None, None)


async def collect(provider: Any, request: Any, job_id: str = "job-1") -> list[Any]:
    """All events of one generation; an exception propagates after closing the provider."""
    events: list[Any] = []
    try:
        async for ev in provider.generate(request, job_id=job_id):
            events.append(ev)
    finally:
        await provider.aclose()
    return events


def of_type(events: list[Any], cls: type) -> list[Any]:
    return [e for e in events if isinstance(e, cls)]
