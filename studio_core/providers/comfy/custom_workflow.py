"""User workflows exported from ComfyUI in API format, and where the request goes into them.

A :class:`WorkflowMap` names the ``(node_id, input_name)`` that takes each request field.
:func:`find_inputs` guesses it (following the sampler's positive/negative links back to
their text encoders); the user can override any entry, e.g. from the settings panel,
through ``request.option("workflow_map")``.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping

from studio_core.errors import WorkflowError

EXPORT_HINT = (
    "In ComfyUI, open the workflow and export it in API format: menu Workflow → Export (API) "
    "in current versions, or in older ones enable 'Dev mode Options' in the settings (gear icon) "
    "and use the 'Save (API Format)' button. Then load that .json file here."
)

Slot = tuple[str, str]  # (node_id, input_name)
FIELDS = ("prompt", "negative", "seed", "width", "height", "steps")


@dataclass(frozen=True, slots=True)
class WorkflowMap:
    prompt: Slot | None = None
    negative: Slot | None = None
    seed: Slot | None = None
    width: Slot | None = None
    height: Slot | None = None
    steps: Slot | None = None

    def to_dict(self) -> dict[str, str]:
        return {f.name: f"{v[0]}.{v[1]}" for f in fields(self) if (v := getattr(self, f.name))}

    @classmethod
    def from_value(cls, value: Any) -> WorkflowMap:
        """From ``{"prompt": "6.text", "seed": ["3", "seed"], ...}`` or its JSON text."""
        if isinstance(value, WorkflowMap):
            return value
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else {}
            except ValueError as exc:
                raise WorkflowError(f"bad workflow_map: {exc}", user_message="The workflow input mapping is not valid JSON.") from exc
        if not isinstance(value, Mapping):
            return cls()
        slots: dict[str, Slot | None] = {}
        for name in FIELDS:
            v = value.get(name)
            if isinstance(v, str) and "." in v:
                node, _, inp = v.partition(".")
                slots[name] = (node, inp)
            elif isinstance(v, (list, tuple)) and len(v) == 2:
                slots[name] = (str(v[0]), str(v[1]))
        return cls(**slots)

    def merged(self, override: WorkflowMap) -> WorkflowMap:
        return replace(self, **{f: getattr(override, f) for f in FIELDS if getattr(override, f) is not None})


def load_file(path: str | Path) -> str:
    """The text of a workflow file, checked to be an API-format graph (blocking: call off the GUI thread).
    Put it into ``request.with_options(workflow=text)``."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkflowError(f"cannot read workflow {path}: {exc}",
                            user_message=f"The workflow file '{Path(path).name}' could not be read.") from exc
    parse(text)
    return text


def parse(text: str | bytes | Mapping[str, Any]) -> dict[str, Any]:
    """The API-format graph in ``text``; WorkflowError (with export instructions) otherwise."""
    if isinstance(text, Mapping):
        data: Any = dict(text)
    else:
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise WorkflowError(f"workflow is not JSON: {exc}",
                                user_message="The workflow file is not valid JSON. " + EXPORT_HINT) from exc
    if isinstance(data, Mapping) and isinstance(data.get("prompt"), Mapping) and "nodes" not in data:
        data = data["prompt"]  # a saved POST /prompt body
    if isinstance(data, Mapping) and isinstance(data.get("nodes"), list):
        raise WorkflowError("UI-format workflow (has 'nodes'/'links')",
                            user_message="This is a ComfyUI workflow in the editor (UI) format, which the studio "
                                         "cannot run. " + EXPORT_HINT)
    if not isinstance(data, Mapping) or not data:
        raise WorkflowError("workflow JSON is not an object of nodes",
                            user_message="The workflow file holds no ComfyUI nodes. " + EXPORT_HINT)
    graph: dict[str, Any] = {}
    for node_id, node in data.items():
        if not isinstance(node, Mapping) or not isinstance(node.get("class_type"), str) \
                or not isinstance(node.get("inputs", {}), Mapping):
            raise WorkflowError(f"node {node_id!r} has no class_type/inputs",
                                user_message=f"The workflow's node {node_id} is not in ComfyUI's API format. " + EXPORT_HINT)
        graph[str(node_id)] = {**node, "inputs": dict(node.get("inputs") or {})}
    return graph


def _is_link(v: Any) -> bool:
    return isinstance(v, list) and len(v) == 2 and isinstance(v[0], (str, int)) and isinstance(v[1], int)


def _text_source(graph: Mapping[str, Any], link: Any, depth: int = 0) -> Slot | None:
    """Follow a conditioning link back to the node input holding literal text."""
    if not _is_link(link) or depth > 8:
        return None
    node = graph.get(str(link[0]))
    if not isinstance(node, Mapping):
        return None
    inputs = node.get("inputs") or {}
    for name in ("text", "text_g", "prompt", "t5xxl", "clip_l"):
        if isinstance(inputs.get(name), str):
            return (str(link[0]), name)
    for name in ("conditioning", "conditioning_1", "positive", "cond", "conditioning_to"):
        found = _text_source(graph, inputs.get(name), depth + 1)
        if found:
            return found
    for v in inputs.values():
        found = _text_source(graph, v, depth + 1) if _is_link(v) else None
        if found:
            return found
    return None


def _first(graph: Mapping[str, Any], names: tuple[str, ...], kind: type, *, prefer: tuple[str, ...] = ()) -> Slot | None:
    order = sorted(graph, key=lambda nid: (not any(p in str(graph[nid].get("class_type", "")).lower() for p in prefer),
                                           _num(nid)))
    for nid in order:
        inputs = graph[nid].get("inputs") or {}
        for name in names:
            v = inputs.get(name)
            if isinstance(v, kind) and not isinstance(v, bool):
                return (nid, name)
    return None


def _num(node_id: str) -> tuple[int, str]:
    try:
        return (int(node_id), "")
    except ValueError:
        return (1 << 30, node_id)


def find_inputs(graph: Mapping[str, Any]) -> WorkflowMap:
    """Best guess of where each request field goes; fields with no match stay None."""
    prompt = negative = None
    samplers = [nid for nid in sorted(graph, key=_num)
                if "sampler" in str(graph[nid].get("class_type", "")).lower() or "guider" in str(graph[nid].get("class_type", "")).lower()]
    for nid in samplers:
        inputs = graph[nid].get("inputs") or {}
        prompt = prompt or _text_source(graph, inputs.get("positive") or inputs.get("conditioning"))
        negative = negative or _text_source(graph, inputs.get("negative"))
    if negative == prompt:
        negative = None
    if prompt is None:
        titled = [nid for nid in sorted(graph, key=_num) if isinstance((graph[nid].get("inputs") or {}).get("text"), str)]
        neg = [n for n in titled if "negative" in _title(graph[n]).lower()]
        pos = [n for n in titled if n not in neg]
        prompt = (pos[0], "text") if pos else None
        negative = negative or ((neg[0], "text") if neg else None)
    latent = ("latent", "empty")
    return WorkflowMap(
        prompt=prompt,
        negative=negative,
        seed=_first(graph, ("seed", "noise_seed"), int, prefer=("sampler", "noise")),
        width=_first(graph, ("width",), int, prefer=latent),
        height=_first(graph, ("height",), int, prefer=latent),
        steps=_first(graph, ("steps",), int, prefer=("sampler", "scheduler")),
    )


def _title(node: Mapping[str, Any]) -> str:
    meta = node.get("_meta")
    return str(meta.get("title", "")) if isinstance(meta, Mapping) else ""


def candidates(graph: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """Every literal input a user could map: (node_id, input_name, node label, value kind)."""
    out = []
    for nid in sorted(graph, key=_num):
        node = graph[nid]
        label = _title(node) or str(node.get("class_type", ""))
        for name, v in (node.get("inputs") or {}).items():
            if isinstance(v, bool) or _is_link(v):
                continue
            if isinstance(v, (int, float, str)):
                out.append((nid, name, label, type(v).__name__))
    return out


def apply(graph: Mapping[str, Any], mapping: WorkflowMap, values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``graph`` with ``values`` (keys from FIELDS) written into the mapped inputs."""
    out = copy.deepcopy(dict(graph))
    for name in FIELDS:
        slot = getattr(mapping, name)
        if slot is None or name not in values or values[name] is None:
            continue
        node = out.get(slot[0])
        if not isinstance(node, dict):
            raise WorkflowError(f"mapped node {slot[0]} not in workflow",
                                user_message=f"The workflow has no node {slot[0]} for the {name} (check the input mapping).")
        node.setdefault("inputs", {})[slot[1]] = values[name]
    return out
