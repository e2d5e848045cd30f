"""Turn ComfyUI's error bodies and messages into StudioErrors a user can read."""

from __future__ import annotations

import re
from typing import Any, Mapping

from studio_core.errors import (
    GenerationFailed,
    MissingModels,
    OutOfVram,
    StudioError,
    ValidationFailed,
)

# Loader inputs whose "not in list" means: that model file is not on the server.
MODEL_INPUTS: dict[str, str] = {
    "ckpt_name": "checkpoint",
    "unet_name": "diffusion model",
    "clip_name": "text encoder",
    "clip_name1": "text encoder",
    "clip_name2": "text encoder",
    "clip_name3": "text encoder",
    "vae_name": "VAE",
    "lora_name": "LoRA",
    "control_net_name": "ControlNet",
    "model_name": "model",
    "upscale_model": "upscale model",
    "style_model_name": "style model",
    "clip_vision": "CLIP vision model",
}

_READABLE = {
    "required_input_missing": "is missing",
    "invalid_input_type": "has the wrong type",
    "bad_linked_input": "is connected to the wrong kind of output",
    "return_type_mismatch": "is connected to the wrong kind of output",
}


def _node_label(node_id: str, body: Mapping[str, Any], graph: Mapping[str, Any] | None) -> str:
    node = graph.get(node_id) if graph else None
    node = node if isinstance(node, Mapping) else {}
    cls = str(body.get("class_type") or node.get("class_type") or "node")
    meta = node.get("_meta") if isinstance(node.get("_meta"), Mapping) else {}
    title = str(meta.get("title") or "") if node.get("class_type") == cls else ""
    return f"{title} ({cls}, node {node_id})" if title and title != cls else f"{cls} (node {node_id})"


def _problem(node_id: str, label: str, err: Mapping[str, Any]) -> tuple[str, str | None]:
    """One sentence for one input error, plus the missing model name if it is one."""
    etype = str(err.get("type", ""))
    extra = err.get("extra_info") if isinstance(err.get("extra_info"), Mapping) else {}
    inp = str(extra.get("input_name") or "")
    details = str(err.get("details") or "")
    if not inp and ":" in details:
        inp = details.split(":", 1)[0].strip()
    received = extra.get("received_value")
    if etype == "value_not_in_list" and inp in MODEL_INPUTS:
        value = received
        if value is None:
            m = re.search(r":\s*'(.*)' not in", details)
            value = m.group(1) if m else "?"
        kind = MODEL_INPUTS[inp]
        return f"{kind} {value} is not on the server", str(value)
    if etype == "value_not_in_list":
        return f"{label}: '{received}' is not a valid choice for {inp}", None
    if etype == "value_smaller_than_min":
        return f"{label}: {inp or details} is too small ({err.get('message', '')})", None
    if etype == "value_bigger_than_max":
        return f"{label}: {inp or details} is too large ({err.get('message', '')})", None
    if etype in _READABLE:
        return f"{label}: input {inp or details} {_READABLE[etype]}", None
    msg = str(err.get("message") or etype or "invalid")
    tail = f" ({details})" if details and details not in msg else ""
    return f"{label}: {msg}{tail}", None


def validation_error(body: Any, *, graph: Mapping[str, Any] | None = None, status: int = 400) -> StudioError:
    """The error for a refused ``POST /prompt``: MissingModels when the only problems are
    missing model files, else ValidationFailed with one readable line per problem."""
    if not isinstance(body, Mapping):
        text = str(body or "").strip()[:200]
        return ValidationFailed(f"POST /prompt {status}: {text}", problems=(_plain_500(text, status),))
    problems: list[str] = []
    missing: list[str] = []
    other = False
    node_errors = body.get("node_errors") if isinstance(body.get("node_errors"), Mapping) else {}
    for node_id, nb in node_errors.items():
        if not isinstance(nb, Mapping):
            continue
        label = _node_label(str(node_id), nb, graph)
        for err in nb.get("errors") or ():
            if not isinstance(err, Mapping):
                continue
            line, model = _problem(str(node_id), label, err)
            if model is not None:
                if model not in missing:
                    missing.append(model)
            else:
                other = True
            if line not in problems:
                problems.append(line)
    top = body.get("error") if isinstance(body.get("error"), Mapping) else {}
    if not problems:
        msg = str(top.get("message") or "ComfyUI refused the workflow")
        det = str(top.get("details") or "")
        if top.get("type") == "prompt_no_outputs":
            msg = "The workflow has no output node (add a Save Image node)"
        problems.append(msg + (f" ({det})" if det else ""))
        other = True
    detail = f"POST /prompt {status}: " + "; ".join(problems)
    if missing and not other:
        err = MissingModels(tuple(missing), user_message="ComfyUI is missing model files: " + "; ".join(problems) + ".")
        err.problems = tuple(problems)  # type: ignore[attr-defined]
        return err
    return ValidationFailed(detail, problems=tuple(problems))


def _plain_500(text: str, status: int) -> str:
    if "does not exist" in text or status == 500:
        return ("the server could not read the workflow; it may use a node this ComfyUI does not have "
                "(update ComfyUI or install the custom node)")
    return text or f"HTTP {status}"


def node_errors_present(body: Any) -> bool:
    return isinstance(body, Mapping) and bool(body.get("node_errors"))


def execution_error(data: Mapping[str, Any]) -> StudioError:
    """The error for an ``execution_error`` message (or the same payload from /history)."""
    exc_type = str(data.get("exception_type") or "")
    exc_msg = str(data.get("exception_message") or "").strip()
    node_type = str(data.get("node_type") or "a node")
    node_id = str(data.get("node_id") or "?")
    detail = f"{node_type} (node {node_id}): {exc_type}: {exc_msg}"
    low = (exc_type + " " + exc_msg).lower()
    if "out of memory" in low or "outofmemory" in low or "allocation on device" in low:
        return OutOfVram(detail)
    short = exc_msg.splitlines()[0][:200] if exc_msg else exc_type or "unknown error"
    return GenerationFailed(detail, user_message=f"ComfyUI failed while running {node_type}: {short}")
