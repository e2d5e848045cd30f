"""The built-in graph for a RunPod endpoint, which cannot be asked what it has.

worker-comfyui answers no ``/object_info``, so the graph builder works from the core node
definitions of a recorded ComfyUI 0.3.64 (``resources/comfy_core_nodes.json``: only the
classes the builder names, every file list empty) with the endpoint's file lists taken
from the model list the user keeps for it: a LoRA or ControlNet must be on that list, as
the checkpoint must. Input images travel inline as ``input.images`` under the
content-hash names the graph's LoadImage nodes load (worker-comfyui uploads each one to
ComfyUI's input folder under its ``name`` before it queues the workflow).
"""

from __future__ import annotations

import asyncio
import functools
import json
from typing import Any, Iterable, Mapping

from studio_core.errors import GenerationFailed
from studio_core.inputs import ImageInputs
from studio_core.models import GenerationRequest
from studio_core.providers.comfy import input_nodes, workflow

# Inputs whose choices are files on the endpoint (every other choice list is the node's own).
FILE_INPUTS = ("ckpt_name", "unet_name", "lora_name", "control_net_name", "vae_name", "clip_name1", "clip_name2")


@functools.lru_cache(maxsize=1)
def _core_nodes() -> str:
    from studio_core.resources import resource_path

    return json.dumps(json.loads(resource_path("comfy_core_nodes.json").read_text(encoding="utf-8"))["nodes"])


def endpoint_info(models: Iterable[str]) -> dict[str, Any]:
    """An object_info for an endpoint holding ``models`` (names compared across folders, as
    the pool's capability check does)."""
    files = sorted({str(m) for m in models if m})
    info = json.loads(_core_nodes())
    for node in info.values():
        for section in (node.get("input") or {}).values():
            for name, spec in (section or {}).items():
                if name in FILE_INPUTS and isinstance(spec, list) and spec and isinstance(spec[0], list):
                    spec[0] = list(files)
    return info


def build(request: GenerationRequest, models: Iterable[str], inputs: ImageInputs | None) -> dict[str, Any]:
    """The API-format graph ComfyProvider would post, for an endpoint holding ``models``."""
    return workflow.build(request, endpoint_info(models), inputs)


async def inline_images(graph: Mapping[str, Any], store: Any) -> tuple[tuple[str, bytes], ...]:
    """``(name, bytes)`` of every stored input image ``graph`` loads, read off the loop."""
    names = input_nodes.images_of(dict(graph))
    if not names:
        return ()
    if store is None:
        raise GenerationFailed("graph loads input images but the RunPod provider has no input store",
                               user_message="The input images of this request could not be found.")
    digests = [n[len(input_nodes.UPLOAD_PREFIX):-len(".png")] for n in names]
    datas = await asyncio.gather(*(asyncio.to_thread(store.read, d) for d in digests))
    return tuple(zip(names, datas))


def with_model(request: GenerationRequest, models: Iterable[str]) -> GenerationRequest:
    """``request`` with a model: its own, else the endpoint's first listed one."""
    if request.model:
        return request
    first = next(iter(models), "")
    return request.replace(model=first or workflow.DEFAULT_CHECKPOINT)
