"""Bedrock InvokeModel bodies, responses and errors, as pure functions (no I/O).

Three body families share the one ``POST /model/{modelId}/invoke`` operation:
``titan`` (Titan Image Generator), ``nova`` (Nova Canvas, same layout plus ``style``)
and ``stability`` (SD3.5 / Stable Image, aspect ratios instead of sizes, one image a call).
"""

from __future__ import annotations

import base64
import binascii
import json
import random
from dataclasses import dataclass
from typing import Any, Mapping

from studio_core.errors import (
    AuthenticationFailed,
    ContentRefused,
    GenerationFailed,
    InvalidRequest,
    InvalidResponse,
    ModelNotFound,
    QuotaExceeded,
    RateLimited,
    RequestTimedOut,
    ServerError,
    StudioError,
)
from studio_core.models import GenerationRequest, QualityTier
from studio_core.providers.cloud.common import error_for_status, error_text, parse_retry_after

SERVICE = "AWS Bedrock"
SEED_MAX = {"titan": 2_147_483_646, "nova": 858_993_459, "stability": 4_294_967_294}
_FILTER_WORDS = ("content filter", "blocked by our content", "filter reason")


def family_of(model_id: str) -> str:
    mid = model_id.lower()
    # cross-region inference profiles prefix the id: "us.amazon.nova-canvas-v1:0"
    if "nova-canvas" in mid:
        return "nova"
    if mid.startswith("stability.") or ".stability." in mid:
        return "stability"
    return "titan"


def pick_seed(request: GenerationRequest, family: str, index: int = 0) -> int:
    top = SEED_MAX[family]
    base = request.seed if request.seed is not None else random.randint(0, top)
    return (base + index) % (top + 1)


@dataclass(frozen=True, slots=True)
class Shape:
    width: int = 0
    height: int = 0
    aspect_ratio: str = ""


def text_image_body(request: GenerationRequest, *, family: str, shape: Shape, count: int, seed: int) -> dict[str, Any]:
    if family == "stability":
        body: dict[str, Any] = {"prompt": request.prompt, "mode": "text-to-image", "aspect_ratio": shape.aspect_ratio or "1:1",
                                "seed": seed, "output_format": "png"}
        if request.negative_prompt:
            body["negative_prompt"] = request.negative_prompt
        return body
    params: dict[str, Any] = {"text": request.prompt}
    if request.negative_prompt:
        params["negativeText"] = request.negative_prompt
    if family == "nova" and request.option("style"):
        params["style"] = str(request.option("style"))
    return {
        "taskType": "TEXT_IMAGE",
        "textToImageParams": params,
        "imageGenerationConfig": {
            "numberOfImages": count,
            "quality": titan_quality(request),
            "cfgScale": round(min(max(request.cfg, 1.1), 10.0), 2),
            "height": shape.height,
            "width": shape.width,
            "seed": seed,
        },
    }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _clamp(v: float, lo: float, hi: float) -> float:
    return round(min(max(float(v), lo), hi), 3)


def image_input_body(request: GenerationRequest, *, family: str, shape: Shape, count: int, seed: int,
                     init: bytes | None = None, denoise: float = 0.6, references: tuple[tuple[bytes, float], ...] = (),
                     mask: bytes | None = None, canny: tuple[bytes, float] | None = None) -> dict[str, Any]:
    """The InvokeModel body for a request with image inputs (``mask`` already in Titan's form, black = redraw).

    Stability: ``mode: image-to-image`` with ``image`` and ``strength`` (providers.md §3.3.3; the
    aspect ratio is for text-to-image only). Titan: INPAINTING with ``maskImage`` when there is
    a mask, IMAGE_VARIATION over the init image and references otherwise (``similarityStrength``
    0.2-1.0: how close to stay), TEXT_IMAGE with a canny ``conditionImage`` for a control image.
    """
    if family == "stability":
        if init is None:
            raise InvalidRequest("stability image-to-image without an image",
                                 user_message=f"{SERVICE}: this Stability model needs an init image to start from.")
        body: dict[str, Any] = {"prompt": request.prompt, "mode": "image-to-image", "image": _b64(init),
                                "strength": _clamp(denoise, 0.0, 1.0), "seed": seed, "output_format": "png"}
        if request.negative_prompt:
            body["negative_prompt"] = request.negative_prompt
        return body
    config = text_image_body(request, family=family, shape=shape, count=count, seed=seed)["imageGenerationConfig"]
    text: dict[str, Any] = {"text": request.prompt}
    if request.negative_prompt:
        text["negativeText"] = request.negative_prompt
    if mask is not None and init is not None:
        # The edited picture keeps the input's size, so no width/height is sent with it.
        config = {k: v for k, v in config.items() if k not in ("width", "height")}
        return {"taskType": "INPAINTING", "inPaintingParams": {"image": _b64(init), "maskImage": _b64(mask), **text},
                "imageGenerationConfig": config}
    if init is not None or references:
        images = ([init] if init is not None else []) + [d for d, _ in references]
        if init is not None:
            similarity = 1.0 - denoise  # a low denoise keeps close to the init image
        else:
            similarity = 0.2 + 0.4 * (sum(w for _, w in references) / len(references))  # weight 1 → 0.6
        return {"taskType": "IMAGE_VARIATION",
                "imageVariationParams": {"images": [_b64(d) for d in images], "similarityStrength": _clamp(similarity, 0.2, 1.0),
                                         **text},
                "imageGenerationConfig": config}
    if canny is not None:
        data, strength = canny
        return {"taskType": "TEXT_IMAGE",
                "textToImageParams": {**text, "conditionImage": _b64(data), "controlMode": "CANNY_EDGE",
                                      "controlStrength": _clamp(strength, 0.0, 1.0)},
                "imageGenerationConfig": config}
    return text_image_body(request, family=family, shape=shape, count=count, seed=seed)


def titan_quality(request: GenerationRequest) -> str:
    return "standard" if request.quality == QualityTier.optimized else "premium"


def background_removal_body(image: bytes) -> dict[str, Any]:
    return {"taskType": "BACKGROUND_REMOVAL", "backgroundRemovalParams": {"image": base64.b64encode(image).decode()}}


@dataclass(frozen=True, slots=True)
class Decoded:
    images: tuple[bytes, ...]
    seeds: tuple[int | None, ...]
    note: str = ""  # e.g. "some images were blocked"


def parse_images(content: bytes) -> Decoded:
    """Images from an InvokeModel reply (Titan/Nova ``images`` + ``error``; Stability adds ``finish_reasons``/``seeds``)."""
    try:
        data = json.loads(content)
    except ValueError as exc:
        raise InvalidResponse(f"{SERVICE}: reply is not JSON ({content[:60]!r})",
                              user_message=f"{SERVICE} sent back something that is not a valid reply.") from exc
    if not isinstance(data, Mapping):
        raise InvalidResponse(f"{SERVICE}: reply is not an object", user_message=f"{SERVICE} sent back an unexpected reply.")
    raw = data.get("images") or []
    reasons = [r for r in (data.get("finish_reasons") or []) if r]
    error = data.get("error") if isinstance(data.get("error"), str) else ""
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise InvalidResponse(f"{SERVICE}: 'images' is not a list of strings",
                              user_message=f"{SERVICE} sent back an unexpected reply.")
    filtered = [r for r in reasons if "filter" in str(r).lower()]
    if not raw:
        if filtered or any(w in error.lower() for w in _FILTER_WORDS):
            why = str(filtered[0] if filtered else error)
            raise ContentRefused(f"{SERVICE}: {why}", user_message=f"{SERVICE} blocked this prompt or its result ({why}). "
                                                               "Rephrase the prompt and try again.")
        if reasons or error:
            why = str(reasons[0] if reasons else error)
            raise GenerationFailed(f"{SERVICE}: {why}", user_message=f"{SERVICE} could not make the image: {why}", retryable=True)
        raise InvalidResponse(f"{SERVICE}: reply has no images", user_message=f"{SERVICE} answered without any image.")
    images = []
    for item in raw:
        try:
            images.append(base64.b64decode(item, validate=True))
        except (binascii.Error, ValueError) as exc:
            raise InvalidResponse(f"{SERVICE}: image is not valid base64",
                                  user_message=f"{SERVICE} sent back an image that could not be decoded.") from exc
    seeds_raw = data.get("seeds") or []
    seeds = tuple(s if isinstance(s, int) and not isinstance(s, bool) else None for s in seeds_raw)
    note = ""
    if error or filtered:
        note = f"{SERVICE}: {error or filtered[0]}"
    return Decoded(tuple(images), seeds, note)


def error_code(headers: Mapping[str, str], body: Any) -> str:
    """The AWS error code, as botocore's RestJSONParser finds it (header first, then body)."""
    lower = {k.lower(): v for k, v in headers.items()}
    raw = lower.get("x-amzn-errortype", "")
    if raw:
        return raw.split(":", 1)[0].rsplit("#", 1)[-1]
    if isinstance(body, Mapping):
        for key in ("__type", "code", "Code"):
            if isinstance(body.get(key), str):
                return body[key].rsplit("#", 1)[-1]
    return ""


def error_for_reply(status: int, headers: Mapping[str, str], content: bytes, *, model: str, region: str,
                    model_gone: str = "") -> StudioError:
    """``model_gone`` is the catalog's sentence for a retired or unknown model (names the current default)."""
    try:
        body: Any = json.loads(content) if content else {}
    except ValueError:
        body = content.decode("utf-8", "replace")
    code = error_code(headers, body)
    text = error_text(body) or code or f"HTTP {status}"
    low = text.lower()
    detail = f"{SERVICE}: HTTP {status} {code}: {text}"
    if any(w in low for w in _FILTER_WORDS):
        return ContentRefused(detail, user_message=f"{SERVICE} refused this prompt: {text}")
    if code in ("ThrottlingException", "TooManyRequestsException") or (status == 429 and code != "ModelNotReadyException"):
        wait = parse_retry_after(headers)
        return RateLimited(detail, retry_after=wait, user_message=f"{SERVICE} is throttling requests (too many at once).")
    if code == "ModelNotReadyException":
        return ServerError(detail, user_message=f"{SERVICE}: the model {model} is starting up. Waiting for it.")
    if code == "ServiceQuotaExceededException":
        return QuotaExceeded(detail, user_message=f"{SERVICE} says a service quota is used up: {text}")
    if code in ("UnrecognizedClientException", "InvalidSignatureException", "IncompleteSignatureException",
                "MissingAuthenticationTokenException", "InvalidClientTokenId", "SignatureDoesNotMatch"):
        return AuthenticationFailed(detail, user_message=f"AWS rejected the credentials or API key ({text}). Check them in Settings.")
    if code == "ExpiredTokenException" or "expired" in low and status in (400, 403):
        return AuthenticationFailed(detail, user_message="Your AWS credentials have expired. Sign in again "
                                                         "(for SSO: aws sso login) or create a new Bedrock API key.")
    if status == 403 or code == "AccessDeniedException":
        if "model" in low and ("access" in low or "subscri" in low or "authorized" in low):
            return AuthenticationFailed(detail, user_message=(
                f"Your AWS account can't use {model} in {region} yet. Enable model access in the Bedrock console "
                f"(Bedrock → Model access, region {region}), then try again."))
        return AuthenticationFailed(detail, user_message=f"AWS denied the request ({text}). The credentials need permission "
                                                         "for bedrock:InvokeModel, and the model must be enabled in the Bedrock console.")
    if code == "ResourceNotFoundException" or status == 404 or (
            code == "ValidationException" and any(w in low for w in ("model identifier", "end of its life", "model id",
                                                                      "not supported in this region", "legacy"))):
        return ModelNotFound(detail, user_message=model_gone or f"{SERVICE}: the model {model} is not available in {region} "
                                                               f"(wrong id, not offered there, or retired): {text}")
    if code == "ModelTimeoutException" or status in (408, 504):
        return RequestTimedOut(detail, user_message=f"{SERVICE}: the model took too long to answer.")
    if code == "ModelErrorException" or status == 424:
        return ServerError(detail, user_message=f"{SERVICE}: the model failed while making the image: {text}")
    if code == "ValidationException" or status == 400:
        return InvalidRequest(detail, user_message=f"{SERVICE} rejected the request settings: {text}")
    return error_for_status(SERVICE, status, body, headers)
