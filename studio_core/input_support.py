"""Whether the chosen service and model take a request's image inputs, said before Generate.

ComfyUI: the built-in graph is built for the request against the server's object_info (the
same pure builder the provider uses), so a missing LoRA, ControlNet or reference node pack
is named exactly as the job would name it, without sending anything. Cloud: the catalog's
per-model input support (``catalog.inputs_problem``), which names a model that does take them.
Pure and fast (dictionary lookups); "" means nothing known stands in the way.
"""

from __future__ import annotations

from typing import Any, Mapping

from studio_core.errors import StudioError
from studio_core.inputs import ImageInputs
from studio_core.models import GenerationRequest


def has_inputs(inputs: ImageInputs) -> bool:
    return not inputs.empty or inputs.mask is not None


def comfy_inputs_problem(request: GenerationRequest, object_info: Mapping[str, Any]) -> str:
    from studio_core.providers.comfy import workflow

    try:
        workflow.build(request, object_info, request.inputs)
    except StudioError as exc:
        try:
            workflow.build(request.replace(inputs=ImageInputs()), object_info, ImageInputs())
        except StudioError:
            return ""  # the request fails without its inputs too: the settings panel says why
        return exc.user_message
    return ""


def inputs_problem(request: GenerationRequest, *, object_info: Mapping[str, Any] | None = None,
                   catalog: Any = None) -> str:
    """Why ``request``'s image inputs cannot go to its service and model; "" when they can or
    it is not known (an unanswered server, a catalog not loaded: the job itself will say)."""
    if not has_inputs(request.inputs):
        return ""
    if request.service == "comfyui":
        if request.workflow is not None:
            return ("A custom ComfyUI workflow is sent as it is, without the image inputs. Switch back to the "
                    "built-in graph to use them, or remove them.")
        return comfy_inputs_problem(request, object_info) if object_info else ""
    if catalog is None or request.service not in getattr(catalog, "providers", {}):
        return ""
    from studio_core.providers.cloud.catalog import inputs_problem as cloud_problem

    return cloud_problem(request.service, request.model, request.inputs, cat=catalog)
