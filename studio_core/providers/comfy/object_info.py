"""Reading ComfyUI's ``/object_info``: node classes, input specs and choice lists.

Choice lists come in two encodings, and servers mix them: legacy core nodes give
``[[...choices], {opts}]`` (2024 servers may drop the options dict: ``[[...]]``), V3 nodes
give ``["COMBO", {"options": [...]}]``; a "remote" combo may carry no options at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

ObjectInfo = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class InputSpec:
    name: str
    type: str  # "INT", "FLOAT", "STRING", "BOOLEAN", "COMBO", or a link type such as "MODEL"
    options: Mapping[str, Any]
    choices: tuple[str, ...] | None = None  # COMBO only; None when the server lists none
    required: bool = True


def parse_spec(name: str, spec: Any, *, required: bool = True) -> InputSpec:
    if not isinstance(spec, (list, tuple)) or not spec:
        return InputSpec(name, str(spec), {}, None, required)
    head = spec[0]
    opts = spec[1] if len(spec) > 1 and isinstance(spec[1], Mapping) else {}
    if isinstance(head, (list, tuple)):
        return InputSpec(name, "COMBO", opts, tuple(str(c) for c in head), required)
    if head == "COMBO":
        raw = opts.get("options")
        choices = tuple(str(c) for c in raw) if isinstance(raw, (list, tuple)) else None
        return InputSpec(name, "COMBO", opts, choices, required)
    return InputSpec(name, str(head), opts, None, required)


def node_inputs(info: ObjectInfo, class_type: str) -> dict[str, InputSpec]:
    """Required and optional inputs of ``class_type`` (empty when the class is unknown)."""
    node = info.get(class_type)
    if not isinstance(node, Mapping):
        return {}
    inputs = node.get("input") or {}
    out: dict[str, InputSpec] = {}
    for section, required in (("required", True), ("optional", False)):
        for name, spec in (inputs.get(section) or {}).items():
            out[name] = parse_spec(name, spec, required=required)
    return out


def choices(info: ObjectInfo, class_type: str, input_name: str) -> tuple[str, ...]:
    spec = node_inputs(info, class_type).get(input_name)
    return spec.choices or () if spec else ()


def has_node(info: ObjectInfo, class_type: str) -> bool:
    return isinstance(info.get(class_type), Mapping)


def checkpoints(info: ObjectInfo) -> tuple[str, ...]:
    return choices(info, "CheckpointLoaderSimple", "ckpt_name")


def diffusion_models(info: ObjectInfo) -> tuple[str, ...]:
    return choices(info, "UNETLoader", "unet_name")


def samplers(info: ObjectInfo) -> tuple[str, ...]:
    return choices(info, "KSampler", "sampler_name")


def schedulers(info: ObjectInfo) -> tuple[str, ...]:
    return choices(info, "KSampler", "scheduler")


def guess_family(name: str) -> str:
    """The family id the file name alone gives ("" when unsure). The decision itself, with
    stronger evidence than the name, is :func:`studio_core.hardware.families.resolve_family`."""
    from studio_core.hardware.families import family_id_from_name

    return family_id_from_name(name)


def output_nodes(info: ObjectInfo) -> frozenset[str]:
    return frozenset(k for k, v in info.items() if isinstance(v, Mapping) and v.get("output_node"))
