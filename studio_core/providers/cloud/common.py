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
    default_model: str = "",
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
        hint = f" The current default is {default_model}." if default_model else ""
        return ModelNotFound(detail, user_message=f"{service}: that model or deployment does not exist or was retired.{hint}")
    if status in (408, 504):
        return RequestTimedOut(detail, user_message=f"{service} timed out ({status}).")
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
) -> T:
    """Run ``call``; retry retryable StudioErrors up to ``attempts`` times in all.

    Rate limits wait what the provider asked (capped); other retryable errors back off
    exponentially with jitter. ``on_wait`` gets a sentence for the user before each wait.
    """
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except StudioError as exc:
            if not exc.retryable or attempt == attempts:
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
