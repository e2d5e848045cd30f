"""RunPod serverless + worker-comfyui: request bodies and reading replies (no I/O).

Shapes, from runpod-workers/worker-comfyui ``README.md`` (input, output ≥ 5.0.0),
``docs/configuration.md`` (S3 output), ``handler.py`` (error texts) and RunPod's
send-requests / operation-reference pages, with the caveats in scaleout.md's addendum:
a FAILED job's ``error`` is lifted to the top level of ``/status`` while ``details`` stay
under ``output.details``; validation errors are flattened Python-repr text; a result over
the 20 MB response limit comes back COMPLETED without output.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any, Mapping, Sequence

from studio_core.errors import GenerationFailed, InvalidResponse, MissingModels, StudioError
from studio_core.pool.errors import PayloadTooLarge

SERVICE = "RunPod"
MAX_RUN_BYTES = 10 * 1000 * 1000  # /run's documented limit; decimal MB is the stricter reading
TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"})
_NOT_IN_LIST = re.compile(r"(\w+_name\w*|model_name|upscale_model|clip_vision):\s*'([^']+)'\s*not in")


def run_body(workflow: Mapping[str, Any], images: Sequence[tuple[str, bytes]] = ()) -> bytes:
    """The ``POST /run`` body, or PayloadTooLarge (before anything is sent) when it passes 10 MB."""
    inp: dict[str, Any] = {"workflow": workflow}
    if images:
        names = [n for n, _ in images]
        if len(set(names)) != len(names):
            raise GenerationFailed(f"duplicate input image names {names}",
                                   user_message="Two input images have the same name; RunPod needs each name once.")
        inp["images"] = [{"name": n, "image": base64.b64encode(data).decode("ascii")} for n, data in images]
    body = json.dumps({"input": inp}, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(body) > MAX_RUN_BYTES:
        mb = len(body) / 1_000_000
        raise PayloadTooLarge(
            f"/run body is {len(body)} bytes (limit {MAX_RUN_BYTES})",
            user_message=f"This job is {mb:.1f} MB with its input images; RunPod accepts at most 10 MB per job "
                         "(images grow by a third as base64). Use smaller or fewer input images. Nothing was sent.")
    return body


def _details(reply: Mapping[str, Any]) -> list[str]:
    out = reply.get("output") if isinstance(reply.get("output"), Mapping) else {}
    raw = out.get("details") if isinstance(out, Mapping) else None
    if raw is None:
        raw = reply.get("details")
    if isinstance(raw, str):
        return [raw]
    return [str(d) for d in raw] if isinstance(raw, list) else []


def error_of(reply: Mapping[str, Any]) -> str:
    err = reply.get("error")
    out = reply.get("output")
    if not err and isinstance(out, Mapping):
        err = out.get("error")  # older SDKs left it inside output
    if isinstance(err, Mapping):
        err = err.get("message") or json.dumps(err)[:300]
    return str(err or "").strip()


def failure(reply: Mapping[str, Any]) -> StudioError:
    """A FAILED ``/status`` reply as an error whose message says what went wrong."""
    error = error_of(reply)
    details = _details(reply)
    text = "\n".join([error, *details])
    missing = tuple(dict.fromkeys(m.group(2) for m in _NOT_IN_LIST.finditer(text)))
    if missing:
        return MissingModels(missing, user_message=(
            f"The RunPod endpoint does not have: {', '.join(missing)}. Put the file in the endpoint's image or network "
            "volume, or take it off the endpoint's model list in Settings."))
    if "No checkpoint models appear to be available" in text:
        return MissingModels(("checkpoint",), user_message=(
            "The RunPod endpoint has no checkpoint models at all. Check its network volume (models/checkpoints) "
            "or its image."))
    # Flattened validation text: keep the sentence and the bullet lines, not the Python reprs.
    lines = [ln.strip() for ln in error.splitlines() if ln.strip()]
    head = lines[0] if lines else "no reason given"
    bullets = [re.sub(r"\[\{.*", "", ln).strip(" •:") for ln in lines[1:] if ln.startswith("•")]
    words = head.rstrip(":.") + (": " + "; ".join(b for b in bullets if b) if any(bullets) else "")
    if details:
        words += ". Details: " + "; ".join(d.strip()[:200] for d in details[:5])
    return GenerationFailed(f"{SERVICE} FAILED: {text[:1000]}", user_message=f"The RunPod job failed: {words[:600]}")


def output_images(reply: Mapping[str, Any]) -> tuple[list[Mapping[str, Any]], list[str]]:
    """``(images, warnings)`` of a COMPLETED reply; InvalidResponse / GenerationFailed when there are none."""
    out = reply.get("output")
    if out is None or out == {} or out == []:
        raise InvalidResponse(f"{SERVICE}: COMPLETED without output",
                              user_message="RunPod finished the job but sent back no result. Results larger than "
                                           "RunPod's 20 MB response limit are dropped this way: make fewer or smaller "
                                           "images per job, or set the endpoint up to upload results to S3.")
    if not isinstance(out, Mapping):
        raise InvalidResponse(f"{SERVICE}: output is {type(out).__name__}",
                              user_message="The RunPod endpoint answered in a format this app does not know "
                                           "(is it running worker-comfyui 5 or newer?).")
    warnings = [str(e) for e in out.get("errors") or [] if e]
    images = [i for i in out.get("images") or [] if isinstance(i, Mapping)]
    if not images:
        if out.get("status") == "success_no_images":
            raise GenerationFailed(f"{SERVICE}: success_no_images",
                                   user_message="The workflow ran on RunPod but saved no image. Does it end in a "
                                                "Save Image node?")
        raise InvalidResponse(f"{SERVICE}: output without images: {json.dumps(out)[:300]}",
                              user_message="RunPod finished the job but its result holds no image.")
    return images, warnings


def safe_name(name: Any) -> str:
    """A file name for display and metadata only: never a path, never written under."""
    base = re.split(r"[\\/]", str(name or ""))[-1]
    base = re.sub(r"[^\w.\- ]", "_", base).strip(". ") or "image.png"
    return base[:120]
