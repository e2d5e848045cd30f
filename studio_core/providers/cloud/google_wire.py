"""Reading Google's answers: generateContent image parts, Imagen predictions, error envelopes.

Pure functions over google-genai's response objects and ``APIError`` fields, so the
provider module stays about flow. Google reports blocked prompts and images as HTTP 200
(``promptFeedback.blockReason``, ``finishReason``, ``raiFilteredReason``); errors come in
the ``{"error": {"code", "message", "status", "details": [...]}}`` envelope.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from studio_core.errors import (
    AuthenticationFailed,
    ContentRefused,
    GenerationFailed,
    InvalidResponse,
    ModelNotFound,
    QuotaExceeded,
    RateLimited,
    RequestTimedOut,
    ServerError,
    StudioError,
)
from studio_core.providers.cloud.common import error_for_status, parse_retry_after

SERVICE = "Google"
# finishReason values that mean "stopped by a policy", not "failed"
REFUSAL_REASONS = {"SAFETY", "IMAGE_SAFETY", "PROHIBITED_CONTENT", "IMAGE_PROHIBITED_CONTENT", "BLOCKLIST", "SPII",
                   "RECITATION", "IMAGE_RECITATION"}


def _name(value: Any) -> str:
    return str(getattr(value, "value", value) or "")


@dataclass(frozen=True, slots=True)
class Picture:
    data: bytes
    mime: str


def pictures_from_content(response: Any) -> Picture:
    """The image in one generateContent reply, or the reason there is none."""
    feedback = getattr(response, "prompt_feedback", None)
    reason = _name(getattr(feedback, "block_reason", None))
    if reason:
        why = getattr(feedback, "block_reason_message", None) or ""
        raise ContentRefused(f"{SERVICE}: prompt blocked ({reason}) {why}".strip(),
                             user_message=f"Google refused this prompt ({reason})" + (f": {why}" if why else ".")
                             + " Rephrase it and try again.")
    candidates = getattr(response, "candidates", None) or []
    texts: list[str] = []
    for cand in candidates:
        content = getattr(cand, "content", None)
        for part in (getattr(content, "parts", None) or []):
            if getattr(part, "thought", None):
                continue  # interim "thinking" images are drafts, not the answer
            inline = getattr(part, "inline_data", None)
            data = getattr(inline, "data", None)
            if data:
                return Picture(bytes(data), str(getattr(inline, "mime_type", "") or "image/png"))
            if getattr(part, "text", None):
                texts.append(part.text)
    finish = _name(getattr(candidates[0], "finish_reason", None)) if candidates else ""
    message = (getattr(candidates[0], "finish_message", None) or "") if candidates else ""
    if finish in REFUSAL_REASONS:
        raise ContentRefused(f"{SERVICE}: finishReason {finish} {message}".strip(),
                             user_message=f"Google blocked the image ({finish})" + (f": {message}" if message else ".")
                             + " Rephrase the prompt and try again.")
    if texts:
        said = " ".join(t.strip() for t in texts)[:300]
        raise GenerationFailed(f"{SERVICE}: text instead of an image ({finish}): {said}",
                               user_message=f"Gemini answered with text instead of an image: \u201c{said}\u201d")
    if finish:
        raise GenerationFailed(f"{SERVICE}: no image, finishReason {finish}",
                               user_message=f"Gemini made no image (reason: {finish}). Try again or change the prompt.",
                               retryable=finish in ("IMAGE_OTHER", "OTHER", "NO_IMAGE"))
    raise InvalidResponse(f"{SERVICE}: reply without candidates", user_message="Google answered without any image.")


def pictures_from_imagen(response: Any) -> tuple[list[Picture], list[str]]:
    """Imagen ``predictions``: images, and the RAI reasons for the ones that were filtered out."""
    pics: list[Picture] = []
    reasons: list[str] = []
    for gen in (getattr(response, "generated_images", None) or []):
        image = getattr(gen, "image", None)
        data = getattr(image, "image_bytes", None)
        if data:
            pics.append(Picture(bytes(data), str(getattr(image, "mime_type", "") or "image/png")))
        elif getattr(gen, "rai_filtered_reason", None):
            reasons.append(str(gen.rai_filtered_reason))
    if not pics:
        # Imagen drops filtered images; an empty answer means everything was filtered
        why = "; ".join(reasons) or "all images were filtered"
        raise ContentRefused(f"{SERVICE} Imagen: {why}",
                             user_message=f"Google filtered the images for this prompt ({why}). Rephrase it and try again.")
    return pics, reasons


def _duration(text: Any) -> float | None:
    m = re.fullmatch(r"\s*([0-9.]+)s\s*", str(text or ""))
    return float(m.group(1)) if m else None


def error_for_api(code: int, envelope: Any, headers: Mapping[str, str] | None, *, model: str, surface: str,
                  model_gone: str = "") -> StudioError:
    """``model_gone`` is the catalog's sentence for a retired or unknown model (names the current default)."""
    err = envelope.get("error", envelope) if isinstance(envelope, Mapping) else {}
    err = err if isinstance(err, Mapping) else {}
    status = str(err.get("status", "") or "")
    message = str(err.get("message", "") or "")[:300]
    details = err.get("details") if isinstance(err.get("details"), list) else []
    reasons = {str(d.get("reason", "")) for d in details if isinstance(d, Mapping)}
    retry = next((_duration(d.get("retryDelay")) for d in details
                  if isinstance(d, Mapping) and str(d.get("@type", "")).endswith("RetryInfo")), None)
    low = message.lower()
    detail = f"{SERVICE} ({surface}): HTTP {code} {status}: {message}"
    if "API_KEY_INVALID" in reasons or "api key not valid" in low or "api key expired" in low:
        return AuthenticationFailed(detail, user_message="Google rejected the API key. Check it in Settings "
                                                         "(create one at aistudio.google.com).")
    if code in (401, 403) or status in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        if "SERVICE_DISABLED" in reasons or "has not been used" in low or "is disabled" in low:
            return AuthenticationFailed(detail, user_message=f"The API is not enabled for this Google Cloud project: {message}")
        return AuthenticationFailed(detail, user_message=f"Google denied access ({status or code}): {message or 'check the key or credentials'}")
    if code == 429 or status == "RESOURCE_EXHAUSTED":
        wait = retry if retry is not None else parse_retry_after(headers or {})
        if wait is None and ("billing" in low or "limit: 0" in low):
            return QuotaExceeded(detail, user_message=f"Google says this account's quota is used up: {message}")
        return RateLimited(detail, retry_after=wait, user_message="Google is rate-limiting requests"
                           + (f"; it asks to wait {wait:.0f} s." if wait else "."))
    if code in (404, 410) or status == "NOT_FOUND":
        return ModelNotFound(detail, user_message=model_gone or f"Google: the model {model} does not exist or was retired.")
    if code == 504 or status == "DEADLINE_EXCEEDED":
        return RequestTimedOut(detail, user_message="Google took too long to make the image.")
    if code >= 500:
        return ServerError(detail, user_message=f"Google had a server error ({code}). Try again in a moment.")
    return error_for_status(SERVICE, code, envelope, headers)
