"""Expected failures, each carrying a message fit to show a user.

Provider and storage code catches library exceptions (httpx, websockets, SDKs, OSError)
at its boundary and raises one of these instead, so nothing library-specific ever
reaches the GUI. ``str(error)`` is technical detail for the log and the "Details"
section; ``user_message`` is what the user reads. Neither may contain a secret.
``asyncio.CancelledError`` is deliberately not part of this hierarchy.
"""

from __future__ import annotations


class StudioError(Exception):
    user_message = "Something went wrong."
    retryable = False

    def __init__(self, detail: str = "", *, user_message: str | None = None, retryable: bool | None = None):
        super().__init__(detail or user_message or self.user_message)
        if user_message:
            self.user_message = user_message
        if retryable is not None:
            self.retryable = retryable

    @property
    def detail(self) -> str:
        return str(self)


class ProviderUnavailable(StudioError):
    user_message = "Can't reach the image service. Check that it is running and the address is right."
    retryable = True


class ConnectionLost(ProviderUnavailable):
    """The connection broke after the request was sent: like a timeout, the work may go on (and be billed)."""

    user_message = "The connection to the service broke before it answered."
    retryable = False
    sent = True


class NotAComfyServer(ProviderUnavailable):
    user_message = "Something answered at that address, but it is not a ComfyUI server."
    retryable = False


class AuthenticationFailed(StudioError):
    user_message = "The API key was rejected. Check it in Settings."


class MissingCredentials(StudioError):
    user_message = "This service needs an API key. Add one in Settings."


class QuotaExceeded(StudioError):
    user_message = "The service says its usage limit or credits are used up."


class RateLimited(StudioError):
    user_message = "The service is busy (rate limit). Try again in a moment."
    retryable = True

    def __init__(self, detail: str = "", *, retry_after: float | None = None, **kw):
        super().__init__(detail, **kw)
        self.retry_after = retry_after


class ServerError(StudioError):
    user_message = "The service had an internal error. Try again in a moment."
    retryable = True


class RequestTimedOut(StudioError):
    """No answer in time. ``sent`` says whether the request may have reached the service.

    A request that never left (connect timeout, no free connection) is safe to send again.
    One that was sent may still be running, and be billed, on the service; sending it
    again could pay twice, so it is not retried (``retryable`` follows ``sent``).
    """

    user_message = "The service took too long to answer."
    retryable = False

    def __init__(self, detail: str = "", *, sent: bool = True, **kw):
        kw.setdefault("retryable", not sent)
        super().__init__(detail, **kw)
        self.sent = sent


class ContentRefused(StudioError):
    user_message = "The service refused this prompt under its content policy."


class ModelNotFound(StudioError):
    user_message = "That model is not available on this service."


class InvalidRequest(StudioError):
    user_message = "The service rejected the request settings."


class InputsNotSupported(InvalidRequest):
    """The chosen model does not take an image input the request carries (found before sending)."""

    user_message = "This model does not take the image inputs of this request."


class InvalidResponse(StudioError):
    user_message = "The service sent back something that is not a usable image."


class WorkflowError(StudioError):
    user_message = "The ComfyUI workflow could not be used."


class ValidationFailed(StudioError):
    """ComfyUI refused the graph; ``problems`` lists one readable line per input."""

    user_message = "ComfyUI refused the workflow."

    def __init__(self, detail: str = "", *, problems: tuple[str, ...] = (), **kw):
        if problems and "user_message" not in kw:
            kw["user_message"] = "ComfyUI refused the workflow: " + "; ".join(problems)
        super().__init__(detail or "; ".join(problems), **kw)
        self.problems = problems


class MissingModels(StudioError):
    user_message = "The server does not have the model files this needs."

    def __init__(self, missing: tuple[str, ...], **kw):
        kw.setdefault("user_message", "Not on the server: " + ", ".join(missing))
        super().__init__(", ".join(missing), **kw)
        self.missing = missing


class OutOfVram(StudioError):
    user_message = "The GPU ran out of memory. Try a smaller size, batch 1, or tiled decoding."


class GenerationFailed(StudioError):
    user_message = "The image could not be generated."


class JobTimedOut(StudioError):
    user_message = "The generation took longer than the time limit and was stopped."


class StorageError(StudioError):
    user_message = "The image could not be saved."


class NotAnImage(StudioError):
    user_message = "That file is not an image the studio can read."


class DiskFull(StorageError):
    user_message = "The disk is full. Free some space; nothing was overwritten."


class SettingsError(StudioError):
    user_message = "The settings could not be saved."


class DependencyMissing(StudioError):
    """An optional package (a cloud SDK) is not installed in this build."""

    user_message = "A component this service needs is not included in this build."

    def __init__(self, package: str, *, extra: str = "cloud", **kw):
        kw.setdefault(
            "user_message",
            f"The package '{package}' is not installed. Install it with: pip install \"cloud-ai-art-studio[{extra}]\""
            " (in a packaged build: it is not included in this build).",
        )
        super().__init__(f"missing optional dependency {package}", **kw)
        self.package = package
