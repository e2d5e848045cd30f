"""One entry of the server list: where a ComfyUI (or RunPod endpoint) is and how to reach it.

The entry is what Settings stores, so it never holds a secret: the ``Authorization``
value and the query token live in the keyring under :meth:`ServerSpec.secret_name`, and the
entry only says whether they are used. Everything a user types is checked here, once, with
a sentence that says what to fix.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urlsplit

from studio_core.pool.errors import ServerConfigInvalid
from studio_core.pool.pinned_tls import normalize_fingerprint

RUNPOD_API = "https://api.runpod.ai/v2"
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 header-name characters
_PARAM = re.compile(r"[A-Za-z0-9_.\-]+")
_ENDPOINT_ID = re.compile(r"[A-Za-z0-9]{6,40}")
_RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "upgrade",
                               "sec-websocket-key", "sec-websocket-version"})
MAX_SLOTS = 64


class ServerKind(enum.StrEnum):
    comfyui = "comfyui"
    runpod = "runpod"


def _bad(detail: str, message: str) -> ServerConfigInvalid:
    return ServerConfigInvalid(detail, user_message=message)


def normalize_server_url(text: str, kind: ServerKind = ServerKind.comfyui) -> str:
    """``scheme://host[:port][/path]`` from what a user typed, or ServerConfigInvalid saying why not."""
    raw = (text or "").strip()
    if kind is ServerKind.runpod and _ENDPOINT_ID.fullmatch(raw):
        return f"{RUNPOD_API}/{raw}"  # users paste the endpoint id from RunPod's console
    if not raw:
        raise _bad("empty address", "Enter the server's address, e.g. http://192.168.1.20:8188.")
    if any(c.isspace() for c in raw):
        raise _bad(f"address with spaces: {raw[:100]!r}", f"'{raw[:60]}' is not an address: it contains spaces.")
    m = re.match(r"([A-Za-z][A-Za-z0-9+.\-]*)://", raw)
    if m is None:
        raw = "http://" + raw
    scheme = (m.group(1) if m else "http").lower()
    if scheme in ("ws", "wss"):
        raise _bad(f"websocket scheme {scheme}",
                   f"Use http:// or https:// for the address (got {scheme}://); the live connection's "
                   f"{scheme}:// address follows from it.")
    if scheme not in ("http", "https"):
        raise _bad(f"unknown scheme {scheme!r}",
                   f"The address must start with http:// or https://, not {scheme}://.")
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise _bad(f"bad address {raw[:100]!r}: {exc}",
                   f"'{text.strip()[:60]}' is not a valid address (the port must be a number from 1 to 65535).") from exc
    if not parts.hostname:
        raise _bad(f"no host in {raw[:100]!r}", f"'{text.strip()[:60]}' has no host name or IP address.")
    if parts.username or parts.password:
        raise _bad("credentials in the address",
                   "Don't put a user name or password in the address: they would be saved in plain text. "
                   "Use the server's authentication fields, which keep secrets in the system keyring.")
    if parts.query or parts.fragment:
        raise _bad("query or fragment in the address",
                   "The address must not contain '?' or '#'. For a token in the address, use the "
                   "'token as query parameter' field.")
    if port == 0:
        raise _bad("port 0", "The port must be a number from 1 to 65535.")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    netloc = host + (f":{port}" if port else "")
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """A server the user added. Frozen: Settings replaces an entry, it never edits one in place.

    ``running_slots + queued_slots`` jobs may be on the server at once (SwarmUI's 1 + OverQueue):
    the queued one hides the upload and submit latency. For RunPod, running slots are the
    endpoint's worker count. ``paid`` servers are overflow only; ``price_per_s`` turns their
    execution time into a cost estimate. ``models`` is the user's list for endpoints that cannot
    report theirs (RunPod); ComfyUI servers report their models through ``/object_info``.
    """

    id: str
    name: str
    url: str
    kind: ServerKind = ServerKind.comfyui
    uses_auth: bool = False  # secret under secret_name("auth"), sent as auth_header
    auth_header: str = "Authorization"
    extra_headers: tuple[tuple[str, str], ...] = ()  # not secret (e.g. ngrok-skip-browser-warning)
    token_param: str = ""  # name of the query parameter carrying secret_name("token"); "" = none
    trusted_cert_sha256: str = ""  # "" = the normal CA check
    connect_timeout_s: float = 5.0
    running_slots: int = 1
    queued_slots: int = 1
    enabled: bool = True
    may_be_off: bool = False
    paid: bool = False
    price_per_s: float = 0.0
    models: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        kind = ServerKind(self.kind) if not isinstance(self.kind, ServerKind) else self.kind
        object.__setattr__(self, "kind", kind)
        if not str(self.id).strip() or not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", str(self.id)):
            raise _bad(f"bad server id {self.id!r}", "The server entry has no valid id (letters, digits, '-', '_').")
        object.__setattr__(self, "url", normalize_server_url(self.url, kind))
        name = " ".join(str(self.name or "").split())
        object.__setattr__(self, "name", name or (urlsplit(self.url).hostname or self.url))
        if not _TOKEN.fullmatch(self.auth_header or "") or self.auth_header.lower() in _RESERVED_HEADERS:
            raise _bad(f"bad auth header name {self.auth_header!r}",
                       f"'{self.auth_header}' cannot be used as the name of the authentication header.")
        headers: list[tuple[str, str]] = []
        for pair in self.extra_headers:
            name_, value = (pair if isinstance(pair, (tuple, list)) and len(pair) == 2 else (str(pair), ""))
            name_, value = str(name_).strip(), str(value).strip()
            if not _TOKEN.fullmatch(name_) or name_.lower() in _RESERVED_HEADERS:
                raise _bad(f"bad header name {name_!r}", f"'{name_[:40]}' is not a header name you can set.")
            if any(c in value for c in "\r\n\0") or not value.isprintable():
                raise _bad(f"bad header value for {name_}", f"The value of header '{name_}' contains a line break or control character.")
            headers.append((name_, value))
        object.__setattr__(self, "extra_headers", tuple(headers))
        if self.token_param and not _PARAM.fullmatch(self.token_param):
            raise _bad(f"bad token parameter {self.token_param!r}",
                       f"'{self.token_param[:40]}' cannot be a query parameter name (letters, digits, '-', '_', '.').")
        if self.trusted_cert_sha256:
            if not self.url.startswith("https://"):
                raise _bad("fingerprint on http",
                           "A trusted certificate only applies to https:// addresses. Change the address to https:// "
                           "or remove the fingerprint.")
            object.__setattr__(self, "trusted_cert_sha256", normalize_fingerprint(self.trusted_cert_sha256))
        timeout = _number(self.connect_timeout_s, "connect timeout")
        if not 0.5 <= timeout <= 120:
            raise _bad(f"connect timeout {timeout}", "The connect timeout must be between 0.5 and 120 seconds.")
        object.__setattr__(self, "connect_timeout_s", timeout)
        for field_name, low in (("running_slots", 1), ("queued_slots", 0)):
            v = getattr(self, field_name)
            if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= MAX_SLOTS:
                what = "running jobs" if field_name == "running_slots" else "queued jobs"
                raise _bad(f"{field_name}={v!r}", f"The number of {what} must be a whole number from {low} to {MAX_SLOTS}.")
        price = _number(self.price_per_s, "price per second")
        if price < 0:
            raise _bad(f"price {price}", "The price per second cannot be negative.")
        object.__setattr__(self, "price_per_s", price)
        object.__setattr__(self, "models", tuple(dict.fromkeys(str(m).strip() for m in self.models if str(m).strip())))
        if kind is ServerKind.runpod and not self.uses_auth:
            object.__setattr__(self, "uses_auth", True)  # every RunPod call needs the API key

    # ---- derived -------------------------------------------------------------------

    @property
    def slots(self) -> int:
        return self.running_slots + self.queued_slots

    @property
    def ws_url(self) -> str:
        return ("wss" if self.url.startswith("https://") else "ws") + self.url[self.url.index("://"):] + "/ws"

    @property
    def introspects(self) -> bool:
        """True when the server reports its models and nodes (ComfyUI); False when the user lists them."""
        return self.kind is ServerKind.comfyui

    def secret_name(self, which: str) -> str:
        """Keyring name of this server's ``"auth"`` value or query ``"token"``."""
        if which not in ("auth", "token"):
            raise ValueError(which)
        return f"pool-server:{self.id}:{which}"

    def replace(self, **changes: Any) -> ServerSpec:
        return dataclasses.replace(self, **changes)

    # ---- settings storage ------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["kind"] = self.kind.value
        d["extra_headers"] = [list(p) for p in self.extra_headers]
        d["models"] = list(self.models)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServerSpec:
        """An entry from settings; ServerConfigInvalid (naming the field) when a value is unusable."""
        if not isinstance(data, Mapping):
            raise _bad(f"server entry is {type(data).__name__}", "A server entry in the settings is damaged.")
        known = {f.name: f for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                continue  # written by a newer version; keep loading
            if key == "kind":
                try:
                    value = ServerKind(value)
                except ValueError:
                    raise _bad(f"unknown server kind {value!r}",
                               f"Server '{data.get('name', '?')}' has an unknown kind '{value}' (ComfyUI or RunPod).") from None
            elif key in ("extra_headers", "models"):
                if not isinstance(value, (list, tuple)):
                    raise _bad(f"{key} is {type(value).__name__}", f"Server '{data.get('name', '?')}': the {key.replace('_', ' ')} are damaged.")
                value = tuple(tuple(v) if key == "extra_headers" and isinstance(v, (list, tuple)) else v for v in value)
            elif key in ("uses_auth", "enabled", "may_be_off", "paid"):
                value = bool(value)
            kwargs[key] = value
        for required in ("id", "url"):
            if required not in kwargs:
                raise _bad(f"server entry without {required}", "A server entry in the settings has no " + required + ".")
        kwargs.setdefault("name", "")
        if kwargs.get("kind") == ServerKind.runpod:
            kwargs.setdefault("paid", True)
        return cls(**kwargs)


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool):
        raise _bad(f"{what} is a bool", f"The {what} must be a number.")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise _bad(f"{what}={value!r}", f"The {what} must be a number (got '{str(value)[:20]}').") from None
    if v != v or v in (float("inf"), float("-inf")):
        raise _bad(f"{what}={value!r}", f"The {what} must be a number.")
    return v


def runpod_endpoint(id: str, name: str, endpoint: str, *, workers: int = 1, models: tuple[str, ...] = (),
                    price_per_s: float = 0.0, overflow: bool = True) -> ServerSpec:
    """A RunPod serverless endpoint (endpoint id or its ``https://api.runpod.ai/v2/<id>`` address)."""
    return ServerSpec(id=id, name=name, url=endpoint, kind=ServerKind.runpod, uses_auth=True, running_slots=workers,
                      queued_slots=0, paid=overflow, price_per_s=price_per_s, models=models, connect_timeout_s=15.0)
