"""ComfyUI transport: one httpx client and one shared websocket per server.

The websocket listener runs as one task for the whole provider and puts each message on
the queue of the job whose ``prompt_id`` it carries (krita's ``_listen`` → per-job
queues). When the socket drops it tells every job (``Disconnected``), reconnects with
backoff under the same ``client_id`` and tells them again (``Reconnected``); jobs then
catch up through ``/history``. Library exceptions stop here and become StudioErrors.
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
import sys
import uuid
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urlsplit

import httpx
import websockets
from websockets.asyncio.client import ClientConnection, connect

from studio_core.errors import (
    AuthenticationFailed,
    InvalidRequest,
    NotAComfyServer,
    ProviderUnavailable,
    RequestTimedOut,
    StudioError,
)

log = logging.getLogger(__name__)

WS_MAX_SIZE = 64 * 1024 * 1024  # SaveImageWebsocket sends full-size PNGs in one frame
RECONNECT_DELAYS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
# Health checks and the route probe: a port that accepts but never answers must not hold the
# status check for the 30 s a generation request may legitimately wait.
STATUS_TIMEOUT = httpx.Timeout(4.0, connect=3.0)
# Route prefixes, in the order tried: servers since mid-2024 answer both; the 2024 server
# knows only the bare routes; some proxies and hosted front-ends pass only /api/...
PREFIXES = ("", "/api")


def start_hint(platform: str | None = None) -> str:
    """How to start ComfyUI on this platform, and where its address is set."""
    platform = platform or sys.platform
    if platform.startswith("win"):
        how = ("Start ComfyUI (ComfyUI Desktop, or run_nvidia_gpu.bat in the portable folder; "
               "or let the app start it for you)")
    else:
        how = ("Start ComfyUI (run 'python main.py' in the ComfyUI folder, or let the app start it for you"
               + (", or open ComfyUI Desktop" if platform == "darwin" else "") + ")")
    return how + ", or check the address in Settings → ComfyUI server."


START_HINT = start_hint()


@dataclass(frozen=True, slots=True)
class Message:
    type: str
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Preview:
    image: bytes
    mime: str
    node: str = ""


@dataclass(frozen=True, slots=True)
class Disconnected:
    reason: str


@dataclass(frozen=True, slots=True)
class Reconnected:
    pass


def normalize_url(url: str) -> str:
    """``http://host:port`` from what a user typed; InvalidRequest when it is no URL."""
    raw = (url or "").strip()
    if not raw:
        raise InvalidRequest("empty ComfyUI address", user_message="Enter the ComfyUI address, e.g. http://127.0.0.1:8188.")
    if "://" not in raw:
        raw = "http://" + raw
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise InvalidRequest(f"bad ComfyUI address {url!r}: {exc}",
                             user_message=f"'{url}' is not a valid address. Use the form http://127.0.0.1:8188.") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname or " " in raw:
        raise InvalidRequest(f"bad ComfyUI address {url!r}",
                             user_message=f"'{url}' is not a valid address. Use the form http://127.0.0.1:8188.")
    path = parts.path.rstrip("/")
    netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if port:
        netloc += f":{port}"
    return f"{parts.scheme}://{netloc}{path}"


def describe_reply(r: httpx.Response) -> str:
    """What answered, in words: status code, Server header and the first bytes of the body."""
    parts = [f"HTTP {r.status_code}"]
    server = r.headers.get("server", "")
    if server:
        parts.append(f"server \"{server[:60]}\"")
    head = r.content[:80].decode("utf-8", errors="replace")
    head = " ".join(head.split())
    parts.append(f"starting \"{head}\"" if head else "empty body")
    return ", ".join(parts)


def parse_binary(frame: bytes) -> tuple[Preview | None, str | None]:
    """A preview (and its prompt_id when the frame says) from a binary frame, or (None, None)."""
    if len(frame) < 8:
        return None, None
    event, second = struct.unpack(">II", frame[:8])
    if event == 1:
        return Preview(frame[8:], "image/png" if second == 2 else "image/jpeg"), None
    if event == 4:
        try:
            meta = json.loads(frame[8:8 + second].decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return None, None
        mime = str(meta.get("image_type") or "image/jpeg")
        return Preview(frame[8 + second:], mime, str(meta.get("node_id") or "")), meta.get("prompt_id")
    return None, None  # type 3 (progress text) carries no prompt id and is broadcast to all clients


def _json_or_none(r: httpx.Response) -> Any:
    try:
        return r.json()
    except ValueError:
        return None


class ComfyClient:
    """HTTP calls and the shared websocket for one ComfyUI server. Use from one loop."""

    def __init__(self, base_url: str, *, http_timeout: float = 30.0, connect_timeout: float = 5.0,
                 connection: Any = None):
        """``connection`` (a :class:`studio_core.pool.connection.Connection`) carries a pool server's
        headers, query token, TLS context and connect timeout to HTTP and the websocket alike."""
        self.base_url = normalize_url(base_url)
        self.connection = connection
        self.client_id = uuid.uuid4().hex
        # Found by probe(): "" or "/api", then used for every route and the websocket.
        self.prefix: str | None = None
        self.system_stats: dict[str, Any] | None = None
        self._probe_lock = asyncio.Lock()
        if connection is not None:
            connect_timeout = connection.connect_timeout
            self._http = httpx.AsyncClient(**connection.http_client_kwargs(read_timeout=http_timeout))
        else:
            self._http = httpx.AsyncClient(base_url=self.base_url, trust_env=False,
                                           timeout=httpx.Timeout(http_timeout, connect=connect_timeout))
        self._connect_timeout = connect_timeout
        self._queues: dict[str, asyncio.Queue] = {}
        # Messages for prompt ids nobody subscribed to yet: a 2024 server ignores our prompt_id and
        # may start sending under its own before the POST /prompt reply names it.
        self._orphans: dict[str, list[Any]] = {}
        self._running_prompt: str | None = None
        self._ws: ClientConnection | None = None
        self._listener: asyncio.Task | None = None
        self._connected = asyncio.Event()
        self._first_error: StudioError | None = None
        self._closed = False
        self.reconnects = 0
        self._uploaded: set[str] = set()  # input names this server is known to hold

    @property
    def ws_url(self) -> str:
        scheme = "wss" if self.base_url.startswith("https") else "ws"
        return f"{scheme}{self.base_url[self.base_url.index('://'):]}{self.prefix or ''}/ws?clientId={self.client_id}"

    @property
    def display(self) -> str:
        """The server for messages: its name and address when it is a pool entry, never a secret."""
        return self.connection.display if self.connection is not None else self.base_url

    def _scrub(self, text: str) -> str:
        for secret in (self.connection.secrets if self.connection is not None else ()):
            if secret:
                text = text.replace(secret, "***")
        return text

    def _rejected(self, status: int, where: str) -> AuthenticationFailed:
        has_auth = self.connection is not None and bool(self.connection.secrets)
        what = ("rejected the token" if has_auth else "wants a token or password, and none is set for it")
        return AuthenticationFailed(
            f"{where}: HTTP {status}",
            user_message=f"The server {self.display} {what} (HTTP {status}). "
                         "Check its authentication in Settings → ComfyUI servers.")

    @property
    def version(self) -> str:
        """The server's comfyui_version once probed; "" when unknown (servers before 2025 lack it)."""
        system = (self.system_stats or {}).get("system")
        return str(system.get("comfyui_version") or "") if isinstance(system, Mapping) else ""

    @property
    def targeted_interrupt(self) -> bool:
        """Whether ``POST /interrupt {"prompt_id"}`` stops only that prompt on this server.

        ComfyUI PR #9607 (August 2025) added it; older servers ignore the id and stop whatever
        runs. 0.3.60 is a release safely after it (0.3.64 was checked against the real server).
        """
        try:
            parts = tuple(int(p) for p in self.version.split(".")[:3])
        except ValueError:
            return False
        return bool(parts) and parts >= (0, 3, 60)

    # ---- HTTP ---------------------------------------------------------------------

    async def probe(self) -> dict[str, Any]:
        """``/system_stats`` from the first route prefix that serves it; remembers the prefix.

        Raises ProviderUnavailable when nothing answers, RequestTimedOut when something accepts
        but does not answer within STATUS_TIMEOUT, NotAComfyServer when what answers is not ComfyUI.
        """
        async with self._probe_lock:
            first_reply: str | None = None
            for prefix in PREFIXES:
                r = await self._send("GET", prefix + "/system_stats", timeout=STATUS_TIMEOUT)
                data = _json_or_none(r) if r.status_code == 200 else None
                if isinstance(data, Mapping) and isinstance(data.get("devices"), list):
                    self.prefix, self.system_stats = prefix, dict(data)
                    return dict(data)
                first_reply = first_reply or describe_reply(r)
            raise NotAComfyServer(
                f"{self.base_url}: no /system_stats or /api/system_stats ({first_reply})",
                user_message=f"The server at {self.base_url} is not a ComfyUI server: GET /system_stats gave "
                             f"{first_reply}. Check the address and port.")

    async def _send(self, method: str, path: str, *, json_body: Any = None, params: Mapping[str, Any] | None = None,
                    timeout: float | httpx.Timeout | None = None) -> httpx.Response:
        try:
            kw: dict[str, Any] = {}
            if timeout is not None:
                kw["timeout"] = timeout
            r = await self._http.request(method, path, json=json_body, params=params, **kw)
        except httpx.ConnectError as exc:
            from studio_core.pool.pinned_tls import tls_failure

            tls = tls_failure(exc, server=self.display)
            raise (tls or self._unreachable(exc)) from exc
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, httpx.ReadError,
                httpx.WriteError) as exc:
            raise self._unreachable(exc) from exc
        except httpx.TimeoutException as exc:
            limit = timeout.read if isinstance(timeout, httpx.Timeout) else timeout
            within = f" within {limit:g} s" if limit else ""
            raise RequestTimedOut(f"{method} {path}: {exc.__class__.__name__}",
                                  user_message=f"Something at {self.base_url} accepted the connection but did not "
                                               f"answer{within}. If it is ComfyUI it may be busy or stuck; otherwise "
                                               "check the address and port.") from exc
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(self._scrub(f"{method} {path}: {exc!r}")) from exc
        if r.status_code in (401, 403) and self.connection is not None:
            # A plain ComfyUI never asks for credentials; an auth proxy in front of it does.
            raise self._rejected(r.status_code, f"{method} {path}")
        return r

    def _unreachable(self, exc: Exception) -> ProviderUnavailable:
        return ProviderUnavailable(self._scrub(f"{self.base_url}: {exc.__class__.__name__}: {exc}"),
                                   user_message=f"ComfyUI is not answering at {self.display}. {START_HINT}")

    async def request(self, method: str, path: str, *, json_body: Any = None, params: Mapping[str, Any] | None = None,
                      timeout: float | httpx.Timeout | None = None) -> httpx.Response:
        if self.prefix is None:
            await self.probe()
        return await self._send(method, f"{self.prefix}{path}", json_body=json_body, params=params, timeout=timeout)

    async def get_json(self, path: str, *, params: Mapping[str, Any] | None = None,
                       timeout: float | httpx.Timeout | None = None) -> Any:
        r = await self.request("GET", path, params=params, timeout=timeout)
        data = _json_or_none(r) if r.status_code == 200 else None
        if data is None:
            raise NotAComfyServer(f"GET {self.prefix}{path}: {describe_reply(r)}",
                                  user_message=f"The server at {self.base_url} answered, but not like ComfyUI "
                                               f"(GET {self.prefix}{path} gave {describe_reply(r)}). "
                                               "Check the address and port.")
        return data

    async def view_metadata(self, folder: str, filename: str) -> dict[str, Any] | None:
        """A model file's safetensors ``__metadata__``; None when it has none (404, an empty
        body) or the server is too old for the route. Unreachable still raises."""
        r = await self.request("GET", f"/view_metadata/{folder}", params={"filename": filename}, timeout=STATUS_TIMEOUT)
        data = _json_or_none(r) if r.status_code == 200 else None
        return dict(data) if isinstance(data, Mapping) else None

    async def post(self, path: str, body: Any = None) -> httpx.Response:
        return await self.request("POST", path, json_body=body)

    async def upload_input(self, name: str, data: bytes) -> str:
        """Put ``data`` into the server's input folder as ``name`` unless it is already there;
        returns the name the server uses. Names are content hashes, so one that exists holds
        these bytes: a HEAD on /view is all it costs, and a second server simply gets its own copy."""
        if name in self._uploaded:
            return name
        if self.prefix is None:
            await self.probe()
        head = await self._send("HEAD", f"{self.prefix}/view", params={"filename": name, "type": "input"},
                                timeout=STATUS_TIMEOUT)
        if head.status_code == 200:
            self._uploaded.add(name)
            return name
        try:
            r = await self._http.post(f"{self.prefix}/upload/image", files={"image": (name, data, "image/png")},
                                      data={"type": "input", "overwrite": "true"}, timeout=120)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        if r.status_code == 413:
            raise InvalidRequest(f"upload {name}: 413 {r.text[:200]}", user_message=(
                f"An input image ({len(data) / 1e6:.1f} MB) is larger than the ComfyUI server at {self.base_url} "
                "accepts (its --max-upload-size). Use a smaller image or raise that limit."))
        reply = _json_or_none(r) if r.status_code == 200 else None
        if not isinstance(reply, Mapping) or not reply.get("name"):
            raise NotAComfyServer(f"POST /upload/image: {describe_reply(r)}", user_message=(
                f"ComfyUI at {self.base_url} did not take the input image (POST /upload/image gave {describe_reply(r)})."))
        stored = (f"{reply['subfolder']}/" if reply.get("subfolder") else "") + str(reply["name"])
        self._uploaded.add(stored)
        return stored

    async def aclose(self) -> None:
        self._closed = True
        if self._listener:
            self._listener.cancel()
            try:
                await self._listener
            except (asyncio.CancelledError, Exception):
                pass
        if self._ws is not None:
            try:
                await self._ws.close()
            except Exception:
                pass
        await self._http.aclose()

    # ---- websocket ------------------------------------------------------------------

    def subscribe(self, prompt_id: str) -> asyncio.Queue:
        q: asyncio.Queue = asyncio.Queue()
        self._queues[prompt_id] = q
        return q

    def rekey(self, old: str, new: str) -> None:
        """The server chose ``new`` as the job's id: route its messages, including early ones, to the job."""
        q = self._queues.pop(old, None)
        if q is None:
            return
        self._queues[new] = q
        for item in self._orphans.pop(new, ()):
            q.put_nowait(item)
        if self._running_prompt == old:
            self._running_prompt = new

    def unsubscribe(self, prompt_id: str) -> None:
        self._queues.pop(prompt_id, None)
        if self._running_prompt == prompt_id:
            self._running_prompt = None

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def ensure_listening(self) -> None:
        """Start the shared listener if needed and wait for the first connection."""
        if self._closed:
            raise ProviderUnavailable("client closed")
        if self.prefix is None:
            await self.probe()  # the socket lives under the same prefix as the routes
        if self._listener is None or self._listener.done():
            self._first_error = None
            self._listener = asyncio.create_task(self._listen(), name=f"comfy-ws {self.base_url}")
        if self._connected.is_set():
            return
        waiter = asyncio.ensure_future(self._connected.wait())
        try:
            await asyncio.wait({waiter, self._listener}, timeout=self._connect_timeout + 5,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if not self._connected.is_set():
            if self._listener.done() and self._first_error:
                raise self._first_error
            raise ProviderUnavailable(f"websocket to {self.base_url} did not open",
                                      user_message=f"Could not open a live connection to ComfyUI at {self.base_url}. {START_HINT}")

    async def _open(self) -> ClientConnection:
        url, kw = self.ws_url, {"proxy": None, "open_timeout": self._connect_timeout}
        if self.connection is not None:
            # Same headers, query token and TLS context as the HTTP calls: an auth proxy checks both.
            _, kw = self.connection.websocket_connect_kwargs(client_id=self.client_id)
            if self.connection.params:
                from urllib.parse import urlencode

                url += "&" + urlencode(list(self.connection.params))
        ws = await connect(url, max_size=WS_MAX_SIZE, compression=None, ping_interval=20, ping_timeout=20,
                           close_timeout=2, max_queue=None, **kw)
        # Ask for binary type-4 previews (carry their prompt_id); servers before 2025 ignore it.
        await ws.send(json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}}))
        return ws

    async def _listen(self) -> None:
        attempt = 0
        ever_connected = False
        while not self._closed:
            try:
                self._ws = await self._open()
            except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException) as exc:
                if not ever_connected:
                    self._first_error = self._ws_error(exc)
                    return
                if not self._queues:
                    return  # nobody is waiting; the next job reopens the socket
                delay = RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)]
                attempt += 1
                log.info("ComfyUI websocket reconnect %d failed (%s); retrying in %.1fs", attempt, exc, delay)
                await asyncio.sleep(delay)
                continue
            if ever_connected:
                self.reconnects += 1
                self._broadcast(Reconnected())
            ever_connected = True
            attempt = 0
            self._connected.set()
            reason = "closed"
            try:
                async for frame in self._ws:
                    self._dispatch(frame)
            except websockets.exceptions.ConnectionClosed as exc:
                reason = f"{exc.__class__.__name__}: {exc}"
            except OSError as exc:
                reason = f"{exc.__class__.__name__}: {exc}"
            finally:
                self._connected.clear()
            if self._closed:
                return
            log.warning("ComfyUI websocket dropped (%s); reconnecting", reason)
            self._running_prompt = None
            if not self._queues:
                return
            self._broadcast(Disconnected(reason))
            await asyncio.sleep(RECONNECT_DELAYS[0])

    def _ws_error(self, exc: Exception) -> StudioError:
        from studio_core.pool.pinned_tls import tls_failure

        tls = tls_failure(exc, server=self.display)
        if tls is not None:
            return tls
        if isinstance(exc, websockets.exceptions.InvalidStatus):
            status = exc.response.status_code
            if status in (401, 403):
                return self._rejected(status, "websocket upgrade")
            server = exc.response.headers.get("server", "")
            what = f"HTTP {status}" + (f" from \"{server[:60]}\"" if server else "")
            return NotAComfyServer(f"websocket upgrade refused: {what}",
                                   user_message=f"The server at {self.base_url} does not speak ComfyUI's live protocol "
                                                f"({what} on {self.prefix or ''}/ws). Check the address and port.")
        if isinstance(exc, (websockets.exceptions.InvalidHandshake, websockets.exceptions.InvalidMessage)):
            return NotAComfyServer(f"websocket handshake failed: {exc}")
        return self._unreachable(exc)

    def _broadcast(self, item: Any) -> None:
        for q in self._queues.values():
            q.put_nowait(item)

    def _dispatch(self, frame: str | bytes) -> None:
        if isinstance(frame, bytes):
            preview, prompt_id = parse_binary(frame)
            target = prompt_id or self._running_prompt
            if preview is not None and target in self._queues:
                self._queues[target].put_nowait(preview)
            elif preview is not None and target:
                self._orphan(target, preview)
            return
        try:
            msg = json.loads(frame)
            mtype = str(msg["type"])
            data = msg.get("data") or {}
        except (ValueError, KeyError, TypeError):
            log.debug("ignoring malformed ComfyUI message %.200s", frame)
            return
        if not isinstance(data, Mapping):
            return
        prompt_id = data.get("prompt_id")
        if prompt_id is None:
            return  # status broadcasts, the reconnect "executing" without prompt_id, feature_flags
        # Type-1 previews carry no prompt id: they belong to whichever job runs now.
        if mtype == "execution_start" or (mtype == "executing" and data.get("node") is not None):
            self._running_prompt = prompt_id
        elif mtype == "executing" and data.get("node") is None and self._running_prompt == prompt_id:
            self._running_prompt = None
        q = self._queues.get(prompt_id)
        if q is not None:
            q.put_nowait(Message(mtype, data))
        else:
            self._orphan(prompt_id, Message(mtype, data))

    def _orphan(self, prompt_id: str, item: Any) -> None:
        if prompt_id not in self._orphans and len(self._orphans) >= 16:
            self._orphans.pop(next(iter(self._orphans)))
        bucket = self._orphans.setdefault(prompt_id, [])
        if len(bucket) < 2000:
            bucket.append(item)

    async def drop_connection(self) -> None:
        """Close the current socket as if the network dropped it (used by tests to drill reconnects)."""
        if self._ws is not None:
            await self._ws.close()
