"""Transparent backgrounds: pick the best available way, or remove a key colour in the app.

Order of preference (:func:`choose_background_method`): the service's own transparent
output, then a background-removal node installed on the ComfyUI server, then the in-app
key colour: the prompt asks for a plain background of one colour and
:func:`remove_background` keys it out. The key fill starts at the image border, so pixels
of the background colour inside the subject (a green gem on a green screen) survive.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Callable, Collection, Mapping

import numpy as np
from PIL import Image

from studio_core.models import GenerationRequest
from studio_core.sprites._np import connected_to, dilate, rgba_array, to_image
from studio_core.sprites.errors import NoBackgroundFound


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


# ---------------------------------------------------------------------------------------
# In-app key colour removal


@dataclass(frozen=True, slots=True)
class BorderColour:
    rgb: tuple[int, int, int]
    coverage: float  # share of border pixels close to it, 0..1


def _border(arr: np.ndarray, width: int = 2) -> np.ndarray:
    h, w = arr.shape[:2]
    width = max(1, min(width, h // 2, w // 2))
    parts = [arr[:width].reshape(-1, arr.shape[2]), arr[-width:].reshape(-1, arr.shape[2]),
             arr[width:-width, :width].reshape(-1, arr.shape[2]), arr[width:-width, -width:].reshape(-1, arr.shape[2])]
    return np.concatenate(parts)


def detect_border_colour(img: Image.Image, *, tolerance: float = 48) -> BorderColour:
    """The dominant colour around the image edge and how much of the edge it covers."""
    px = _border(rgba_array(img)).astype(np.int32)
    opaque = px[px[:, 3] >= 16, :3]
    if len(opaque) == 0:
        return BorderColour((0, 0, 0), 0.0)
    bins = (opaque[:, 0] >> 4) << 8 | (opaque[:, 1] >> 4) << 4 | (opaque[:, 2] >> 4)
    mode = np.bincount(bins).argmax()
    key = np.median(opaque[bins == mode], axis=0)
    dist = np.sqrt(((opaque - key) ** 2).sum(axis=1))
    close = opaque[dist <= tolerance]
    key = np.median(close, axis=0) if len(close) else key
    coverage = float((np.sqrt(((opaque - key) ** 2).sum(axis=1)) <= tolerance).sum()) / len(px)
    return BorderColour(tuple(int(round(v)) for v in key), coverage)


def remove_background(
    img: Image.Image,
    *,
    tolerance: float = 48,
    softness: float = 48,
    despill: bool = True,
    key: tuple[int, int, int] | None = None,
    min_coverage: float = 0.6,
) -> Image.Image:
    """Key out the plain background that touches the border; return a new RGBA image.

    ``tolerance`` is the RGB distance (0–441) still counted as background; pixels just
    inside the subject within ``softness`` beyond it get partial alpha and, with
    ``despill``, have the key colour un-mixed from them (no green fringe).
    Raises :class:`NoBackgroundFound` when the edge is not mostly one colour, or is
    already transparent.
    """
    arr = rgba_array(img)
    h, w = arr.shape[:2]
    border_alpha = _border(arr)[:, 3]
    if (border_alpha < 16).mean() >= 0.6:
        raise NoBackgroundFound("border already transparent",
                                user_message="This image already has a transparent background.")
    if key is None:
        found = detect_border_colour(img, tolerance=tolerance)
        if found.coverage < min_coverage:
            raise NoBackgroundFound(f"border colour {found.rgb} covers {found.coverage:.0%} of the edge")
        key = found.rgb
    # Squared integer distances per channel plane: no full-size float or (H, W, 3) temporaries.
    dist2 = np.zeros((h, w), dtype=np.int32)
    for c in range(3):
        d = arr[..., c].astype(np.int32) - int(key[c])
        dist2 += d * d
    candidate = (dist2 <= int(tolerance * tolerance)) | (arr[..., 3] < 16)
    seeds = np.zeros((h, w), dtype=bool)
    seeds[0, :] = seeds[-1, :] = True
    seeds[:, 0] = seeds[:, -1] = True
    bg = connected_to(candidate, seeds)
    if not bg.any():
        raise NoBackgroundFound("no key-coloured pixel touches the edge")

    out = arr.copy()
    out[bg] = 0  # clean transparent pixels: no key colour bleeds back when a tool resamples
    band = dilate(bg) & ~bg
    soft = np.clip((np.sqrt(dist2[band].astype(np.float32)) - tolerance) / max(softness, 1e-3), 0.0, 1.0)
    out[band, 3] = np.round(arr[band, 3] * soft).astype(np.uint8)
    if despill and band.any():
        keyv = np.array(key, dtype=np.float32)
        rgb = arr[band, :3].astype(np.float32)
        a = np.maximum(soft, 1e-3)[:, None]
        unmixed = (rgb - (1.0 - a) * keyv) / a
        out[band, :3] = np.clip(np.where(soft[:, None] > 0, unmixed, rgb), 0, 255).astype(np.uint8)
    return to_image(out)
