"""Errors of the pool: each says in plain words what is wrong and what to do."""

from __future__ import annotations

from studio_core.errors import InvalidRequest, ProviderUnavailable, StudioError


class ServerConfigInvalid(InvalidRequest):
    """A server entry the app cannot use as typed (bad address, scheme, fingerprint…)."""

    user_message = "This server entry is not valid."


class CertificateMismatch(ProviderUnavailable):
    """The server's TLS certificate is not the one the user chose to trust."""

    user_message = "The server's certificate is not the one you trusted."
    retryable = False


class PayloadTooLarge(InvalidRequest):
    user_message = "The request is too large for this service."


class NoCapableServer(StudioError):
    """No enabled server in the pool can run the job (models or nodes missing everywhere)."""

    user_message = "No enabled server has what this job needs."

    def __init__(self, detail: str = "", *, missing: tuple[str, ...] = (), **kw):
        super().__init__(detail, **kw)
        self.missing = missing


class PromptListError(InvalidRequest):
    user_message = "The prompt list could not be read."
