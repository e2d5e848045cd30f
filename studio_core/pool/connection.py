"""How to talk to one pool server: httpx client arguments and websocket connect arguments.

Both are built from the same pieces so a reverse proxy sees the same credentials on
``/prompt`` and on the ``/ws`` upgrade (krita's first handshake used a different token and
failed behind such proxies). Secrets are looked up at connect time and never stored on
the result's repr-visible fields other than the headers handed to the library.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlencode

from studio_core.errors import MissingCredentials
from studio_core.pool.pinned_tls import context_for
from studio_core.pool.servers import ServerSpec

SecretLookup = Callable[[str], "str | None"]


@dataclass(frozen=True, slots=True)
class Connection:
    """Everything a client needs for one server, secrets resolved."""

    base_url: str
    ws_url: str  # with the query token when the server uses one; never log it, log ``display``
    headers: tuple[tuple[str, str], ...]
    params: tuple[tuple[str, str], ...]
    ssl: ssl.SSLContext | None  # None for plain http
    connect_timeout: float
    display: str  # the address without any secret, for messages and logs
    secrets: tuple[str, ...]  # to scrub from any error text

    def __repr__(self) -> str:  # the headers hold the token
        return f"Connection({self.display!r})"

    def http_client_kwargs(self, *, read_timeout: float = 30.0) -> dict[str, Any]:
        """Arguments for ``httpx.AsyncClient(**kw)``."""
        import httpx

        kw: dict[str, Any] = {
            "base_url": self.base_url,
            "headers": dict(self.headers),
            "params": dict(self.params),
            "timeout": httpx.Timeout(read_timeout, connect=self.connect_timeout),
            "trust_env": False,  # a system proxy must not see the LAN server's token
        }
        if self.ssl is not None:
            kw["verify"] = self.ssl
        return kw

    def websocket_connect_kwargs(self, *, client_id: str) -> tuple[str, dict[str, Any]]:
        """``(url, kwargs)`` for ``websockets.asyncio.client.connect(url, **kwargs)``."""
        query = urlencode([("clientId", client_id), *self.params])
        kw: dict[str, Any] = {
            "additional_headers": list(self.headers),
            "open_timeout": self.connect_timeout,
            "proxy": None,
        }
        if self.ssl is not None:
            kw["ssl"] = self.ssl
        return f"{self.ws_url}?{query}", kw


def connection_for(spec: ServerSpec, secret: SecretLookup) -> Connection:
    """Resolve ``spec``'s secrets through ``secret`` (e.g. ``SecretStore.get``); MissingCredentials if one is absent."""
    headers: list[tuple[str, str]] = list(spec.extra_headers)
    params: list[tuple[str, str]] = []
    secrets: list[str] = []
    if spec.uses_auth:
        value = (secret(spec.secret_name("auth")) or "").strip()
        if not value:
            raise MissingCredentials(f"no auth value stored for server {spec.id}",
                                     user_message=f"The server '{spec.name}' needs its token or API key. "
                                                  "Enter it in Settings → ComfyUI servers.")
        if any(c in value for c in "\r\n\0") or not value.isascii():
            raise MissingCredentials(f"auth value for server {spec.id} has control or non-ASCII characters",
                                     user_message=f"The token for '{spec.name}' looks damaged (line breaks or unusual "
                                                  "characters). Paste it again in Settings.")
        if spec.auth_header.lower() == "authorization" and " " not in value:
            value = f"Bearer {value}"  # a bare token pasted from a console means the Bearer scheme
        headers = [(k, v) for k, v in headers if k.lower() != spec.auth_header.lower()]
        headers.append((spec.auth_header, value))
        secrets.append(value.split(" ", 1)[-1])
    if spec.token_param:
        token = (secret(spec.secret_name("token")) or "").strip()
        if not token:
            raise MissingCredentials(f"no query token stored for server {spec.id}",
                                     user_message=f"The server '{spec.name}' needs the token for its address "
                                                  f"('{spec.token_param}'). Enter it in Settings → ComfyUI servers.")
        params.append((spec.token_param, token))
        secrets.append(token)
    return Connection(
        base_url=spec.url,
        ws_url=spec.ws_url,
        headers=tuple(headers),
        params=tuple(params),
        ssl=context_for(spec.trusted_cert_sha256) if spec.url.startswith("https://") else None,
        connect_timeout=spec.connect_timeout_s,
        display=f"'{spec.name}' ({spec.url})",
        secrets=tuple(secrets),
    )
