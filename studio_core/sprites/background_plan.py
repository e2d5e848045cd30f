"""Planning a transparent background: which method fits a service, and the request it sends.

Kept apart from :mod:`studio_core.sprites.background` (the pixel work) so that choosing a
method never imports numpy: the Generate tab plans at start-up, and numpy alone costs
more than the whole window (benchmarks/bench_startup.py).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Callable, Collection, Mapping

from studio_core.models import GenerationRequest


class BackgroundMethod(enum.StrEnum):
    provider = "provider"  # the service returns transparent images itself
    comfy_node = "comfy_node"  # a removal node on the ComfyUI server
    in_app = "in_app"  # key colour in the prompt, removed here


@dataclass(frozen=True, slots=True)
class BackgroundPlan:
    """How to get a transparent background for one service.

    ``options`` are request options to add (``GenerationRequest.with_options(**dict(options))``);
    ``node`` is the ComfyUI class name to append after VAE decode; ``prompt_suffix`` and
    ``negative_suffix`` go into the prompt for the in-app key colour.
    """

    method: BackgroundMethod
    node: str = ""
    options: tuple[tuple[str, Any], ...] = ()
    prompt_suffix: str = ""
    negative_suffix: str = ""

    @property
    def label(self) -> str:
        if self.method is BackgroundMethod.provider:
            return "The service makes the background transparent"
        if self.method is BackgroundMethod.comfy_node:
            return f"ComfyUI removes the background ({self.node})"
        return "Plain background in the prompt, removed by the app"


# Services whose API returns alpha itself (providers.md §6 / Titan notes), and how to ask.
NATIVE_TRANSPARENCY: dict[str, tuple[tuple[str, Any], ...]] = {
    "openai": (("background", "transparent"),),
    "azure": (("background", "transparent"),),
    "bedrock": (("background", "transparent"),),  # Titan v2 BACKGROUND_REMOVAL task after generation
}

# Node class names of common removal packs, best first. Matched exactly, then by substring.
REMOVAL_NODES = (
    "Image Remove Background (rembg)",
    "BRIA_RMBG_Zho",
    "BRIA_RMBG",
    "BiRefNet",
    "InspyrenetRembg",
    "RemBG",
    "Remove Image Background (abg)",
    "easy imageRemBg",
    "LayerMask: RemBgUltra",
)
_REMOVAL_HINTS = ("rembg", "rmbg", "removebackground", "remove background", "birefnet", "inspyrenet", "bgremov")

KEY_COLOURS = {"green": (0, 255, 0), "magenta": (255, 0, 255), "blue": (0, 0, 255)}
KEY_PROMPT = "isolated on a plain flat solid {name} background, no shadow, no floor, no scenery"
KEY_NEGATIVE = "gradient background, scenery, cast shadow, floor, {name} clothing"


# Request option naming the method a request was planned with (set by apply_background_plan);
# "in_app" asks whoever saves the images to key the background out afterwards.
METHOD_OPTION = "background_method"


def find_removal_node(object_info: Mapping[str, Any] | None,
                      usable: Callable[[str], bool] | None = None) -> str:
    """The best removal node class on the server; ``usable(name)`` may veto one (e.g. a
    node the graph builder can't wire), and the next candidate is tried."""
    if not object_info:
        return ""
    ok = usable or (lambda _name: True)
    for name in REMOVAL_NODES:
        if name in object_info and ok(name):
            return name
    for name in sorted(object_info):
        low = name.lower().replace("_", " ")
        if any(h in low or h in low.replace(" ", "") for h in _REMOVAL_HINTS) and ok(name):
            return name
    return ""


def choose_background_method(
    service: str,
    *,
    capabilities: Collection[str] = (),
    object_info: Mapping[str, Any] | None = None,
    key_colour: str = "green",
    node_usable: Callable[[str], bool] | None = None,
) -> BackgroundPlan:
    """Best way to get alpha for ``service``: provider-native > ComfyUI node > in-app key.

    ``capabilities`` may contain ``"transparent_background"`` for services that declare it
    themselves; ``object_info`` is the ComfyUI server's ``/object_info`` (or None);
    ``node_usable`` vetoes removal nodes that can't be used (see :func:`find_removal_node`).
    """
    if "transparent_background" in capabilities or service in NATIVE_TRANSPARENCY:
        return BackgroundPlan(BackgroundMethod.provider,
                              options=NATIVE_TRANSPARENCY.get(service, (("background", "transparent"),)))
    if service == "comfyui":
        node = find_removal_node(object_info, node_usable)
        if node:
            return BackgroundPlan(BackgroundMethod.comfy_node, node=node, options=(("background_node", node),))
    return BackgroundPlan(BackgroundMethod.in_app,
                          prompt_suffix=KEY_PROMPT.format(name=key_colour),
                          negative_suffix=KEY_NEGATIVE.format(name=key_colour))


def apply_background_plan(request: GenerationRequest, plan: BackgroundPlan) -> GenerationRequest:
    """The request to send: the plan's options and ``METHOD_OPTION``, plus the key-colour
    words for ``in_app`` (after generation, run :func:`remove_background` on the result;
    :mod:`studio_core.sprites.auto_transparency` does that for saved images)."""
    out = request.with_options(**dict(plan.options), **{METHOD_OPTION: plan.method.value})
    if plan.prompt_suffix:
        out = out.replace(prompt=", ".join(p for p in (out.prompt.strip(), plan.prompt_suffix) if p),
                          negative_prompt=", ".join(p for p in (out.negative_prompt.strip(), plan.negative_suffix) if p))
    return out
