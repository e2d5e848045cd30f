"""What every cloud provider shares: HTTP error mapping and bounded retries.

Providers call :func:`raise_for_response` on a non-2xx reply (or build the error with
:func:`error_for_status`) and wrap the call that can be retried in :func:`with_retries`.
Messages are built from the status and the provider's own error text; keys never appear.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import time
from typing import Any, Awaitable, Callable, Mapping, TypeVar

from studio_core.errors import (
    AuthenticationFailed,
    ContentRefused,
    InvalidRequest,
    ModelNotFound,
    QuotaExceeded,
    RateLimited,
    RequestTimedOut,
    ServerError,
    StudioError,
)
from studio_core.secrets import redact
from studio_core.settings import PROVIDER_RETRIES_KEY, PROVIDER_TIMEOUT_KEY

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_ATTEMPTS = 3
MAX_RETRY_WAIT = 120.0


def parse_retry_after(headers: Mapping[str, str], body: Any = None) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or HTTP date), ``retry-after-ms``, or a body's ``retry_after``."""
    lower = {k.lower(): v for k, v in headers.items()}
    ms = lower.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    ra = lower.get("retry-after")
    if ra:
        try:
            return max(0.0, float(ra))
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(ra)
                return max(0.0, when.timestamp() - time.time())
            except (TypeError, ValueError):
                pass
    if isinstance(body, Mapping):
        for key in ("retry_after", "retryAfter"):
            v = body.get(key)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return float(v)
    return None


def error_text(body: Any) -> str:
    """The provider's own error sentence from a JSON or text body, shortened."""
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return redact(body.strip()[:300])
    if isinstance(body, Mapping):
        for path in (("error", "message"), ("error",), ("detail",), ("message",), ("Message",), ("title",)):
            cur: Any = body
            for p in path:
                cur = cur.get(p) if isinstance(cur, Mapping) else None
            if isinstance(cur, str) and cur.strip():
                return redact(cur.strip()[:300])
            if isinstance(cur, list) and cur and isinstance(cur[0], Mapping) and "msg" in cur[0]:
                return redact(str(cur[0]["msg"])[:300])
    return ""


def error_for_status(
    service: str,
    status: int,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    *,
    idempotent: bool = False,
    where: str = "",
    content_policy_markers: tuple[str, ...] = ("content_policy", "safety", "moderation", "nsfw", "responsible ai",
                                                 "content filter", "content_filter", "blocked"),
) -> StudioError:
    headers = headers or {}
    text = error_text(body)
    detail = f"{service}: HTTP {status}" + (f": {text}" if text else "")
    low = (text + " " + (json.dumps(body) if isinstance(body, Mapping) else str(body or ""))).lower()
    if any(m in low for m in content_policy_markers) and status in (400, 403, 422, 451):
        return ContentRefused(detail, user_message=f"{service} refused this prompt: {text or 'content policy'}")
    if status in (401, 403):
        return AuthenticationFailed(detail, user_message=f"{service} rejected the key or credentials ({status}). Check them in Settings.")
    if status == 402:
        return QuotaExceeded(detail, user_message=f"{service} says the account has no credit left (402).")
    if status == 429:
        wait = parse_retry_after(headers, body if isinstance(body, Mapping) else None)
        if "quota" in low or "insufficient" in low or "billing" in low:
            return QuotaExceeded(detail, user_message=f"{service} says the usage quota is used up: {text}")
        return RateLimited(detail, retry_after=wait,
                           user_message=f"{service} is rate-limiting requests" + (f"; retry in {wait:.0f} s." if wait else "."))
    if status in (404, 410) or "model_not_found" in low or "deploymentnotfound" in low:
        # Providers replace this with the catalog's sentence, which names a model that still works.
        return ModelNotFound(detail, user_message=f"{service}: that model or deployment does not exist or was retired.")
    if status == 408:  # the server gave up waiting for our request, so it never ran
        return RequestTimedOut(detail, sent=False, user_message=f"{service} timed out ({status}).")
    if status == 504:  # a gateway gave up waiting for the service, which may still be working on it
        if idempotent:
            return RequestTimedOut(detail, retryable=True, user_message=f"{service} timed out ({status}).")
        return RequestTimedOut(detail, user_message=sent_no_answer(service, where))
    if status >= 500:
        return ServerError(detail, user_message=f"{service} had a server error ({status}). Try again in a moment.")
    return InvalidRequest(detail, user_message=f"{service} rejected the request: {text or f'HTTP {status}'}")


async def with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    attempts: int = DEFAULT_ATTEMPTS,
    base_delay: float = 1.0,
    on_wait: Callable[[str], Any] | None = None,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    retry_if: Callable[[StudioError], bool] | None = None,
) -> T:
    """Run ``call``; retry retryable StudioErrors up to ``attempts`` times in all.

    Rate limits wait what the provider asked (capped); other retryable errors back off
    exponentially with jitter. ``on_wait`` gets a sentence for the user before each wait.
    ``retry_if`` narrows further which retryable errors are retried.
    """
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except StudioError as exc:
            if not exc.retryable or attempt >= attempts or (retry_if is not None and not retry_if(exc)):
                raise
            if isinstance(exc, RateLimited) and exc.retry_after is not None:
                delay = min(exc.retry_after, MAX_RETRY_WAIT)
                why = "rate limit"
            else:
                delay = min(base_delay * (2 ** (attempt - 1)) * (1 + random.random() * 0.25), MAX_RETRY_WAIT)
                why = type(exc).__name__
            msg = f"{exc.user_message} Retrying in {delay:.0f} s (attempt {attempt + 1} of {attempts})."
            log.info("retry after %s: %.1fs (%s)", why, delay, exc)
            if on_wait is not None:
                on_wait(msg)
            await sleep(delay)
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------------------
# Helpers the cloud providers share: keys, endpoints, image bytes, sizes, status, retries
# that report their waits as job events.

MIN_TIMEOUT = 1.0  # low enough for a quick test against a hung server; real image calls need 60 s or more
MAX_TIMEOUT = 600.0
MAX_RETRIES = 5
MAX_IMAGE_BYTES = 64 * 1024 * 1024  # a generated image is a few MB; more is a broken or hostile reply

# The one set of setting names every cloud provider reads (settings.providers[<id>]);
# retries are tries after the first, and only requests that are safe to repeat are retried.
TIMEOUT_KEY = PROVIDER_TIMEOUT_KEY
RETRIES_KEY = PROVIDER_RETRIES_KEY


def clamp_timeout(value: Any, default: float) -> float:
    """A per-provider timeout from settings, kept inside 1–600 s; ``default`` when unset or not a number."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float(default)
    if v != v:  # NaN
        v = float(default)
    return min(max(v, MIN_TIMEOUT), MAX_TIMEOUT)


def timeout_setting(cfg: Mapping[str, Any], default: float) -> float:
    """The provider's timeout in seconds from its settings entry."""
    return clamp_timeout(cfg.get(TIMEOUT_KEY), default)


def attempts_setting(cfg: Mapping[str, Any], default: int = DEFAULT_ATTEMPTS) -> int:
    """Tries in all (1 + retries) from the provider's settings entry, retries kept inside 0–5."""
    raw = cfg.get(RETRIES_KEY)
    if isinstance(raw, bool):
        raw = None
    try:
        retries = int(str(raw).strip()) if raw is not None else default - 1
    except ValueError:
        retries = default - 1
    return min(max(retries, 0), MAX_RETRIES) + 1


def clean_key(service: str, raw: str | None) -> str:
    """The key without surrounding whitespace; MissingCredentials if absent or malformed.

    Checked before any request so a bad paste gets a sentence instead of a 401 (or a
    header encoding crash). The key itself is never part of the message.
    """
    from studio_core.errors import MissingCredentials

    key = (raw or "").strip()
    if not key:
        raise MissingCredentials(f"{service}: no key", user_message=f"{service} needs an API key. Add one in Settings.")
    if any(c.isspace() for c in key) or not key.isascii() or not key.isprintable():
        raise MissingCredentials(
            f"{service}: key contains spaces, line breaks or non-ASCII characters",
            user_message=f"The {service} key looks damaged: it contains spaces, line breaks or unusual characters."
                         " Copy it again from the provider's website and paste it in Settings.")
    if len(key) < 8:
        raise MissingCredentials(f"{service}: key too short ({len(key)} characters)",
                                 user_message=f"The {service} key is too short to be a real key. Paste the whole key in Settings.")
    return key


def require_url(service: str, url: Any, *, what: str = "endpoint") -> str:
    """``url`` without a trailing slash, or InvalidRequest when it is not an http(s) URL."""
    from urllib.parse import urlsplit

    text = str(url or "").strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in text):
        raise InvalidRequest(f"{service}: {what} is not a URL: {redact(text)[:100]!r}",
                             user_message=f"The {service} {what} must be a web address such as https://example.com"
                                          f" (got {redact(text)[:60]!r}). Fix it in Settings.")
    return text.rstrip("/")


def scrub(exc: StudioError, secrets: Any) -> StudioError:
    """Remove ``secrets`` from an error's text (a server may echo the key back)."""
    keys = {s for s in (secrets or ()) if s}
    if keys:
        exc.args = tuple(redact(str(a), keys) for a in exc.args) or exc.args
        exc.user_message = redact(exc.user_message, keys)
    return exc


# Failures before the request was written: the service cannot have seen it, so sending
# it again is safe. Names, so httpx, httpx2 and the OS errors all match.
_NOT_SENT = frozenset({"ConnectError", "ConnectTimeout", "PoolTimeout", "ConnectionRefusedError"})
# Transport failures that can happen after the request was written.
_MAYBE_SENT = frozenset({"TimeoutException", "NetworkError", "TransportError", "ProtocolError", "TimeoutError",
                         "ConnectionError", "StreamError"})


def _names(exc: BaseException) -> set[str]:
    return {c.__name__ for c in type(exc).__mro__}


def never_sent(exc: BaseException) -> bool:
    """Whether ``exc`` failed before the request was written (no connection was made).

    SDK errors (openai's APIConnectionError / APITimeoutError) wrap the transport error,
    so the explicit cause chain is followed to the first transport-level failure. Anything
    unclear counts as sent: guessing "not sent" wrongly would pay twice.
    """
    cur: BaseException | None = exc
    for _ in range(8):
        if cur is None:
            break
        names = _names(cur)
        if names & _NOT_SENT:
            return True
        if names & _MAYBE_SENT:
            return False
        cur = cur.__cause__
    return False


def _timed_out(exc: BaseException) -> bool:
    cur: BaseException | None = exc
    for _ in range(8):
        if cur is None:
            return False
        if isinstance(cur, TimeoutError) or _names(cur) & {"TimeoutException", "APITimeoutError"}:
            return True
        cur = cur.__cause__
    return False


def sent_no_answer(service: str, where: str = "", *, lost: bool = False) -> str:
    """The sentence for a request that was sent but never answered: it was not sent again."""
    what = "The connection broke before" if lost else "No answer came in time, but"
    look = f" Look at {where} before trying again." if where else " Check your account before trying again."
    return (f"{service}: {what} the request had reached the service, so the image may still be made and billed."
            f" It was not sent again.{look}")


def transport_error(service: str, exc: BaseException, *, idempotent: bool = False, where: str = "",
                    address_hint: bool = True) -> StudioError:
    """Map an httpx/httpx2/SDK transport failure (or TimeoutError) to a StudioError.

    Only a failure before sending is retryable, unless the request is ``idempotent`` (a
    GET: asking again costs nothing). ``where`` names the place the user can look for a
    request that may still be running.
    """
    from studio_core.errors import ConnectionLost, ProviderUnavailable

    detail = f"{service}: {type(exc).__name__}"
    cause = exc.__cause__
    if cause is not None:
        detail += f" ({type(cause).__name__})"
    timed_out = _timed_out(exc)
    if never_sent(exc):
        if timed_out:
            return RequestTimedOut(detail, sent=False, user_message=f"{service} could not be reached in time.")
        hint = " and the address in Settings" if address_hint else ""
        return ProviderUnavailable(f"{detail}: {redact(str(exc))[:200]}",
                                   user_message=f"Can't reach {service}. Check the internet connection{hint}.")
    if timed_out:
        if idempotent:
            return RequestTimedOut(detail, retryable=True, user_message=f"{service} took too long to answer.")
        return RequestTimedOut(detail, user_message=sent_no_answer(service, where))
    if idempotent:
        return ProviderUnavailable(f"{detail}: {redact(str(exc))[:200]}",
                                   user_message=f"The connection to {service} broke. Try again in a moment.")
    return ConnectionLost(f"{detail}: {redact(str(exc))[:200]}", user_message=sent_no_answer(service, where, lost=True))


def json_object(service: str, response: Any, what: str = "reply") -> dict[str, Any]:
    """The JSON object an HTTP ``response`` (httpx's or alike) carries, or InvalidResponse.

    Broken JSON or a bare list or string in a 2xx means a proxy's page or a changed wire
    format: nothing the provider can read, and nothing worth retrying."""
    from studio_core.errors import InvalidResponse

    damaged = f"{service} sent back a damaged answer."
    try:
        body = response.json()
    except ValueError as exc:
        raise InvalidResponse(f"{service}: {what} is not JSON (HTTP {response.status_code})",
                              user_message=damaged) from exc
    if not isinstance(body, dict):
        raise InvalidResponse(f"{service}: {what} is JSON {type(body).__name__}", user_message=damaged)
    return body


def sniff_mime(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return "application/octet-stream"


def image_from_bytes(service: str, data: bytes) -> tuple[bytes, str]:
    """Check that ``data`` is a whole, decodable, not-oversized image; return it with its MIME type."""
    from studio_core.errors import NotAnImage
    from studio_core.imagecheck import check_image_bytes

    if len(data) > MAX_IMAGE_BYTES:
        raise NotAnImage(f"{service}: {len(data)} bytes", user_message=f"{service} sent an image file that is too large to open safely.")
    try:
        check_image_bytes(data)
    except NotAnImage as exc:
        raise NotAnImage(f"{service}: {exc}", user_message=f"{service}: {exc.user_message}") from exc
    return data, sniff_mime(data)


def image_from_base64(service: str, text: Any) -> tuple[bytes, str]:
    """Decode base64 or a ``data:image/...;base64,`` URI into checked image bytes."""
    import base64
    import binascii

    from studio_core.errors import InvalidResponse

    if not isinstance(text, str) or not text:
        raise InvalidResponse(f"{service}: image field is {type(text).__name__}",
                              user_message=f"{service} answered without an image.")
    if text.startswith("data:"):
        _, _, text = text.partition(",")
    try:
        data = base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError) as exc:
        raise InvalidResponse(f"{service}: bad base64 ({exc})", user_message=f"{service} sent an image that could not be decoded.") from exc
    return image_from_bytes(service, data)


def parse_size(text: Any) -> tuple[int, int] | None:
    if isinstance(text, (list, tuple)) and len(text) == 2:
        return int(text[0]), int(text[1])
    if isinstance(text, str) and "x" in text:
        a, _, b = text.lower().partition("x")
        if a.strip().isdigit() and b.strip().isdigit():
            return int(a), int(b)
    return None


def nearest_size(width: int, height: int, choices: Any) -> tuple[int, int]:
    """The choice closest in aspect ratio first, then in area; ``choices`` are (w, h) pairs or 'WxH'."""
    import math

    sizes = [s for s in (parse_size(c) for c in choices) if s]
    if not sizes:
        return width, height
    want_ratio = math.log(max(width, 1) / max(height, 1))
    want_area = max(width * height, 1)
    return min(sizes, key=lambda s: (round(abs(math.log(s[0] / s[1]) - want_ratio), 3),
                                     abs(math.log(s[0] * s[1] / want_area))))


def fit_size(width: int, height: int, *, min_side: int = 64, max_side: int = 4096, multiple: int = 1,
             max_pixels: int = 0, max_ratio: float = 0.0) -> tuple[int, int]:
    """Clamp a free-form size to a model's limits, keeping the aspect ratio where it can."""
    w, h = float(max(width, 1)), float(max(height, 1))
    if max_ratio:
        if w / h > max_ratio:
            w = h * max_ratio
        elif h / w > max_ratio:
            h = w * max_ratio
    if max_pixels and w * h > max_pixels:
        f = (max_pixels / (w * h)) ** 0.5
        w, h = w * f, h * f
    big = max(w, h)
    if big > max_side:
        w, h = w * max_side / big, h * max_side / big
    small = min(w, h)
    if small < min_side:
        w, h = w * min_side / small, h * min_side / small
    m = max(multiple, 1)

    def snap(v: float) -> int:
        return int(min(max(round(v / m) * m, -(-min_side // m) * m), max_side // m * m))

    rw, rh = snap(w), snap(h)
    while max_ratio and rw / rh > max_ratio and rw - m >= min_side:
        rw -= m
    while max_ratio and rh / rw > max_ratio and rh - m >= min_side:
        rh -= m
    while max_pixels and rw * rh > max_pixels:
        if rw >= rh:
            rw -= m
        else:
            rh -= m
    return rw, rh


def size_notice(service: str, requested: tuple[int, int], used: tuple[int, int]) -> str:
    return (f"{service} can't make {requested[0]}×{requested[1]} images with this model; "
            f"using the nearest supported size, {used[0]}×{used[1]}.")


def status_from_error(exc: BaseException) -> Any:
    """A ProviderStatus sentence for a failed check (``check`` never raises)."""
    from studio_core.errors import DependencyMissing, MissingCredentials, ProviderUnavailable
    from studio_core.models import ProviderStatus, ServiceState

    if isinstance(exc, (MissingCredentials, AuthenticationFailed)):
        return ProviderStatus(ServiceState.needs_key, exc.user_message)
    if isinstance(exc, (ProviderUnavailable, RequestTimedOut)):
        return ProviderStatus(ServiceState.unreachable, exc.user_message)
    if isinstance(exc, (StudioError, DependencyMissing)):
        return ProviderStatus(ServiceState.error, exc.user_message)
    return ProviderStatus(ServiceState.error, f"Unexpected problem: {type(exc).__name__}")


class Done:
    """The result that :func:`retry_events` yields last."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value


async def retry_events(
    call: Callable[[], Awaitable[T]],
    *,
    job_id: str,
    attempts: int = DEFAULT_ATTEMPTS,
    base_delay: float = 1.0,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    retry_if: Callable[[StudioError], bool] | None = None,
):
    """:func:`with_retries` inside a generator: yields a ``JobNotice`` for each wait as it starts, then ``Done(result)``.

    The notice must reach the user while the wait is running, so the retry loop runs as
    a child task; cancelling the consumer cancels it.
    """
    from studio_core.models import JobNotice

    queue: asyncio.Queue[str] = asyncio.Queue()
    task = asyncio.ensure_future(with_retries(call, attempts=attempts, base_delay=base_delay,
                                              on_wait=queue.put_nowait, sleep=sleep, retry_if=retry_if))
    getter: asyncio.Future | None = None
    try:
        while True:
            getter = asyncio.ensure_future(queue.get())
            await asyncio.wait({task, getter}, return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                yield JobNotice(job_id, getter.result())
                continue
            getter.cancel()
            while not queue.empty():
                yield JobNotice(job_id, queue.get_nowait())
            yield Done(task.result())
            return
    finally:
        if getter is not None and not getter.done():
            getter.cancel()
        if not task.done():
            task.cancel()
            try:
                await task
            except BaseException:  # noqa: BLE001 - the consumer is leaving; its own exception wins
                pass
