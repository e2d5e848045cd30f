"""A custom workflow read from disk, and the mapping helpers the picker and dialog share (no Qt)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from studio_core.providers.comfy import custom_workflow
from studio_core.providers.comfy.custom_workflow import FIELDS, Slot, WorkflowMap

ROLE_LABELS = {"prompt": "Prompt", "negative": "Negative prompt", "seed": "Seed",
               "width": "Width", "height": "Height", "steps": "Steps"}
# Which literal kinds can sensibly take each field (candidates() reports type names).
ROLE_KINDS = {"prompt": ("str",), "negative": ("str",), "seed": ("int",),
              "width": ("int",), "height": ("int",), "steps": ("int",)}


@dataclass(frozen=True)
class LoadedWorkflow:
    path: str
    text: str
    graph: dict[str, Any]
    guess: WorkflowMap
    candidates: tuple[tuple[str, str, str, str], ...]

    @property
    def name(self) -> str:
        return Path(self.path).name

    def has_slot(self, slot: Slot | None) -> bool:
        if slot is None:
            return False
        node = self.graph.get(slot[0])
        return isinstance(node, Mapping) and slot[1] in (node.get("inputs") or {})

    def class_of(self, node_id: str) -> str:
        return str(self.graph.get(node_id, {}).get("class_type", ""))


def read_workflow(path: str) -> LoadedWorkflow:
    """Read, check and analyse a workflow file. Blocking: run it with ``asyncio.to_thread``.

    Raises WorkflowError (its user_message says how to export the API format)."""
    text = custom_workflow.load_file(path)
    graph = custom_workflow.parse(text)
    return LoadedWorkflow(str(path), text, graph, custom_workflow.find_inputs(graph),
                          tuple(custom_workflow.candidates(graph)))


def slot_text(slot: Slot | None) -> str | None:
    return f"{slot[0]}.{slot[1]}" if slot else None


def map_to_setting(mapping: WorkflowMap) -> dict[str, str | None]:
    """Every field, ``None`` where the user chose "(not used)": a missing key would mean "guess"."""
    return {name: slot_text(getattr(mapping, name)) for name in FIELDS}


def map_from_setting(saved: Any, wf: LoadedWorkflow) -> WorkflowMap:
    """The saved mapping applied to ``wf``; entries that no longer fit the file fall back to the guess."""
    if not isinstance(saved, Mapping):
        return wf.guess
    parsed = WorkflowMap.from_value(saved)
    slots: dict[str, Slot | None] = {}
    for name in FIELDS:
        if name in saved and saved[name] is None:
            slots[name] = None
            continue
        slot = getattr(parsed, name)
        slots[name] = slot if wf.has_slot(slot) else getattr(wf.guess, name)
    return WorkflowMap(**slots)


def describe(wf: LoadedWorkflow, mapping: WorkflowMap) -> str:
    """One line: how many nodes and where each field goes."""
    parts = [f"{len(wf.graph)} nodes"]
    w, h = mapping.width, mapping.height
    for name in FIELDS:
        slot = getattr(mapping, name)
        if name == "height" and w and h and w[0] == h[0]:
            continue
        if name == "width" and w and h and w[0] == h[0]:
            parts.append(f"size → node {w[0]} {w[1]}/{h[1]}")
            continue
        if slot:
            parts.append(f"{ROLE_LABELS[name].lower()} → node {slot[0]} {slot[1]}")
    unused = [ROLE_LABELS[n].lower() for n in FIELDS if getattr(mapping, n) is None]
    if unused:
        parts.append("not used: " + ", ".join(unused))
    return "Custom workflow: " + ", ".join(parts)
