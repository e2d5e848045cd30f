"""What a server can run and what a job needs, both as sets of names.

A ComfyUI server says what it has through ``/object_info``: the node classes, and for
every loader input (``ckpt_name``, ``lora_name``…) the files it can choose from. A job
needs the node classes in its graph and the files its loader inputs name. Comparing
the two before dispatch is SwarmUI's ``BackendMatcherFor`` rule: never send a job to a
server that would only fail validation. Files are compared by name across folders, so
a RunPod endpoint's hand-kept list (plain file names) compares the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

# Inputs whose value is a model file name, whatever node carries them (custom loaders too).
MODEL_INPUTS = frozenset({
    "ckpt_name", "unet_name", "clip_name", "clip_name1", "clip_name2", "clip_name3", "clip_name4", "vae_name",
    "lora_name", "control_net_name", "model_name", "upscale_model", "style_model_name", "clip_vision",
    "gligen_name", "hypernetwork_name",
})


@dataclass(frozen=True, slots=True)
class Capabilities:
    """``nodes`` None means unknown (RunPod): the user's model list is trusted and nodes are assumed present."""

    models: frozenset[str] = frozenset()
    nodes: frozenset[str] | None = frozenset()

    def missing(self, models: Iterable[str], nodes: Iterable[str]) -> tuple[str, ...]:
        """What of ``models`` and ``nodes`` this server lacks, models first, sorted."""
        lack = sorted(m for m in models if m not in self.models)
        if self.nodes is not None:
            lack += sorted(n for n in nodes if n not in self.nodes)
        return tuple(lack)


def _choices(spec: Any) -> tuple[str, ...]:
    # Legacy combos are [[choices], {opts}]; V3 combos are ["COMBO", {"options": [...]}].
    if not isinstance(spec, (list, tuple)) or not spec:
        return ()
    head = spec[0]
    if isinstance(head, (list, tuple)):
        return tuple(str(c) for c in head)
    if head == "COMBO" and len(spec) > 1 and isinstance(spec[1], Mapping):
        opts = spec[1].get("options")
        return tuple(str(c) for c in opts) if isinstance(opts, (list, tuple)) else ()
    return ()


def from_object_info(info: Mapping[str, Any]) -> Capabilities:
    models: set[str] = set()
    nodes: set[str] = set()
    for cls, node in info.items():
        if not isinstance(node, Mapping):
            continue
        nodes.add(str(cls))
        inputs = node.get("input") if isinstance(node.get("input"), Mapping) else {}
        for section in ("required", "optional"):
            for name, spec in (inputs.get(section) or {}).items() if isinstance(inputs.get(section), Mapping) else ():
                if name in MODEL_INPUTS:
                    models.update(_choices(spec))
    return Capabilities(frozenset(models), frozenset(nodes))


def from_model_list(models: Iterable[str]) -> Capabilities:
    return Capabilities(frozenset(str(m) for m in models), None)


@dataclass(frozen=True, slots=True)
class GraphNeeds:
    models: frozenset[str]
    nodes: frozenset[str]
    main_model: str  # the checkpoint or diffusion model: what model affinity keys on


def needs_of_graph(graph: Mapping[str, Any]) -> GraphNeeds:
    """Model files and node classes an API-format graph uses."""
    models: set[str] = set()
    nodes: set[str] = set()
    main = ""
    for node_id in sorted(graph, key=lambda n: (len(str(n)), str(n))):
        node = graph[node_id]
        if not isinstance(node, Mapping) or not node.get("class_type"):
            continue
        nodes.add(str(node["class_type"]))
        inputs = node.get("inputs") if isinstance(node.get("inputs"), Mapping) else {}
        for name, value in inputs.items():
            if name in MODEL_INPUTS and isinstance(value, str) and value:
                models.add(value)
                if not main and name in ("ckpt_name", "unet_name"):
                    main = value
    return GraphNeeds(frozenset(models), frozenset(nodes), main)
