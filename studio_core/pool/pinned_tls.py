"""TLS for pool servers: the normal CA check, or exactly one trusted certificate.

A self-signed server (ComfyUI ``--tls-certfile``, a home reverse proxy) fails the CA check.
Turning verification off would let anyone in between read the token, so the user may
instead trust that one certificate by its SHA-256 fingerprint. Python's ``ssl`` has no
verify callback, so the check sits in ``do_handshake`` of the SSL object the context
creates: it runs once the server's certificate is known and before the first byte of the
request (headers, token) is written. httpx (anyio), websockets and asyncio all create
their TLS objects through ``SSLContext.wrap_bio``/``wrap_socket``, so one context serves
both the HTTP client and the websocket handshake.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import ssl
from typing import Any

from studio_core.pool.errors import CertificateMismatch, ServerConfigInvalid

_HEX64 = re.compile(r"[0-9a-f]{64}")


def normalize_fingerprint(text: str) -> str:
    """Lower-case hex without separators from what a browser or ``openssl x509 -fingerprint`` shows."""
    raw = (text or "").strip().lower()
    # openssl prints "SHA256 Fingerprint=AB:…"; some tools write "sha256:ab…".
    raw = re.sub(r"^sha-?256(\s*fingerprint)?\s*[:=]?", "", raw).strip()
    raw = re.sub(r"[\s:\-]", "", raw)
    if not _HEX64.fullmatch(raw):
        raise ServerConfigInvalid(
            f"not a SHA-256 fingerprint: {text[:120]!r}",
            user_message="The certificate fingerprint must be a SHA-256 fingerprint: 64 hexadecimal digits, "
                         "optionally in pairs separated by colons (AB:CD:…). Copy it from the server's certificate.")
    return raw


def pretty_fingerprint(fp: str) -> str:
    return ":".join(fp[i:i + 2] for i in range(0, len(fp), 2)).upper()


def fingerprint_of(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


class PinMismatch(ssl.SSLCertVerificationError):
    """Raised inside the handshake; carries both fingerprints for the user's message."""

    def __init__(self, expected: str, seen: str):
        super().__init__(f"certificate fingerprint {seen or 'missing'} is not the trusted {expected}")
        self.expected = expected
        self.seen = seen


def _check(sslobj: Any, pin: str) -> None:
    der = sslobj.getpeercert(binary_form=True)
    seen = fingerprint_of(der) if der else ""
    if seen != pin:
        raise PinMismatch(pin, seen)


class _PinnedSSLObject(ssl.SSLObject):
    _pin = ""

    def do_handshake(self) -> None:
        super().do_handshake()  # raises SSLWantRead until the handshake is complete
        _check(self, self._pin)


class _PinnedSSLSocket(ssl.SSLSocket):
    _pin = ""

    def do_handshake(self, block: bool = False) -> None:
        super().do_handshake(block)
        _check(self, self._pin)


def pinned_context(fingerprint: str) -> ssl.SSLContext:
    """A client context that accepts the certificate with this SHA-256 fingerprint and nothing else.

    Chain and host name are not checked because the pin is stricter than both: only the
    exact certificate passes, whoever signed it and whatever name it carries.
    """
    pin = normalize_fingerprint(fingerprint)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.sslobject_class = type("PinnedSSLObject", (_PinnedSSLObject,), {"_pin": pin})  # type: ignore[assignment]
    ctx.sslsocket_class = type("PinnedSSLSocket", (_PinnedSSLSocket,), {"_pin": pin})  # type: ignore[assignment]
    return ctx


def default_context() -> ssl.SSLContext:
    """The system's CAs plus certifi's (python.org builds on macOS start with an empty store)."""
    ctx = ssl.create_default_context()
    try:
        import certifi

        ctx.load_verify_locations(certifi.where())
    except (ImportError, OSError):
        pass
    return ctx


def context_for(fingerprint: str = "") -> ssl.SSLContext:
    return pinned_context(fingerprint) if fingerprint else default_context()


def tls_failure(exc: BaseException, *, server: str) -> CertificateMismatch | None:
    """A user-facing error when ``exc`` (or what caused it) is a certificate problem, else None."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, PinMismatch):
            got = pretty_fingerprint(cur.seen) if cur.seen else "none"
            return CertificateMismatch(
                str(cur),
                user_message=f"{server} presented a different certificate from the one you trusted "
                             f"(it shows SHA-256 {got}). If the server got a new certificate, trust the new one in "
                             "Settings; otherwise someone may be intercepting the connection.")
        if isinstance(cur, ssl.SSLCertVerificationError):
            return CertificateMismatch(
                f"{cur.__class__.__name__}: {getattr(cur, 'verify_message', '') or cur}",
                user_message=f"{server} uses a certificate that is not trusted ({getattr(cur, 'verify_message', '') or 'verification failed'}). "
                             "If it is your own self-signed certificate, trust exactly that certificate by its "
                             "fingerprint in Settings.")
        cur = cur.__cause__ or cur.__context__
    return None


async def fetch_fingerprint(host: str, port: int, *, timeout: float = 5.0) -> str:
    """The SHA-256 fingerprint the server at host:port presents, for the user to compare and trust.

    Nothing but the TLS handshake is sent, so no credentials can leak to an impostor.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=ctx, server_hostname=host), timeout)
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), 2)
        except (OSError, asyncio.TimeoutError, ssl.SSLError):
            pass
    return fingerprint_of(der)
