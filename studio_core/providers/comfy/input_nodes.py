"""Graph pieces for image inputs: LoRA chain, ControlNet, init/inpaint latent, references.

Pure, like the builder that calls them (``workflow.build(..., inputs=...)``): each takes
the graph being built and the server's object_info, adds core nodes only, and returns the
links the next stage uses. Nodes are chosen by class name, never by display title, and an
input is set only when this server's node has it (``ControlNetApplyAdvanced.vae`` and
``InpaintModelConditioning.noise_mask`` exist on 0.3.64, not on the 2024 server).
Images are named on the server by their content hash (``input_filename``); the provider
uploads them before it posts the graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from studio_core.errors import MissingModels, ModelNotFound
from studio_core.inputs import ControlImage, ImageInputs, LoraSpec, ReferenceImage
from studio_core.providers.comfy import object_info as oi

if TYPE_CHECKING:
    from studio_core.providers.comfy.workflow import ComfyWorkflow, Link

UPLOAD_PREFIX = "studio-"
IPADAPTER_PACK = "ComfyUI_IPAdapter_plus"
IPADAPTER_LOADER = "IPAdapterUnifiedLoader"
IPADAPTER_APPLY = ("IPAdapterAdvanced", "IPAdapter")
KONTEXT_NODES = ("ReferenceLatent", "FluxKontextImageScale", "FluxGuidance")
CONTROL_KEYWORDS = {"pose": ("openpose", "pose"), "depth": ("depth",), "lineart": ("lineart", "line_art"),
                    "canny": ("canny",)}
KONTEXT_GUIDANCE = 2.5  # the value ComfyUI's Kontext template uses


def input_filename(digest: str) -> str:
    """The name an input image has on every ComfyUI server: its content, so one upload serves all jobs."""
    return f"{UPLOAD_PREFIX}{digest}.png"


def images_of(graph: dict[str, Any]) -> tuple[str, ...]:
    """The uploaded input files a graph loads (what must be on the server before it is posted)."""
    names = []
    for node in graph.values():
        if node.get("class_type") in ("LoadImage", "LoadImageMask"):
            name = node.get("inputs", {}).get("image")
            if isinstance(name, str) and name.startswith(UPLOAD_PREFIX) and name not in names:
                names.append(name)
    return tuple(names)


def _missing(kind: str, name: str, available: tuple[str, ...]) -> MissingModels:
    listed = ", ".join(available[:6]) + (" …" if len(available) > 6 else "") if available else "none"
    return MissingModels((name,), user_message=(
        f"The {kind} {name} is not on this ComfyUI server (it has: {listed}). Add the file to ComfyUI's "
        f"models folder, or leave the {kind} out."))


class _Images:
    """One LoadImage per stored image per graph, however many roles it plays."""

    def __init__(self, w: ComfyWorkflow):
        self.w = w
        self._loaded: dict[str, str] = {}

    def load(self, digest: str) -> Link:
        if digest not in self._loaded:
            self._loaded[digest] = self.w.add("LoadImage", image=input_filename(digest))
        return self.w.out(self._loaded[digest], 0)

    def mask(self, digest: str) -> Link:
        # A greyscale PNG: its red channel is the grey value (white = redraw).
        return self.w.out(self.w.add("LoadImageMask", image=input_filename(digest), channel="red"), 0)


# ---- LoRA ---------------------------------------------------------------------------------


def apply_loras(w: ComfyWorkflow, info: oi.ObjectInfo, loras: tuple[LoraSpec, ...], model: Link,
                clip: Link) -> tuple[Link, Link]:
    available = oi.choices(info, "LoraLoader", "lora_name")
    for lora in loras:
        if lora.name not in available:
            raise _missing("LoRA", lora.name, available)
    for lora in loras:
        node = w.add("LoraLoader", model=model, clip=clip, lora_name=lora.name,
                     strength_model=lora.strength_model, strength_clip=lora.strength_clip)
        model, clip = w.out(node, 0), w.out(node, 1)
    return model, clip


# ---- ControlNet ---------------------------------------------------------------------------


def controlnet_for(info: oi.ObjectInfo, control: ControlImage) -> str:
    """The ControlNet file for ``control``: the one it names, else the first of its type."""
    available = oi.choices(info, "ControlNetLoader", "control_net_name")
    if control.model:
        if control.model not in available:
            raise _missing("ControlNet", control.model, available)
        return control.model
    for kw in CONTROL_KEYWORDS[control.type]:
        for name in available:
            if kw in name.lower():
                return name
    raise ModelNotFound(f"no {control.type} ControlNet among {available}", user_message=(
        f"This ComfyUI server has no {control.type} ControlNet (none of its ControlNet files has "
        f"'{CONTROL_KEYWORDS[control.type][0]}' in its name). Add one, e.g. control_v11p_sd15_openpose for "
        f"poses, or remove the {control.type} image."))


def apply_controls(w: ComfyWorkflow, info: oi.ObjectInfo, images: _Images, controls: tuple[ControlImage, ...],
                   positive: Link, negative: Link, vae: Link) -> tuple[Link, Link]:
    names = [controlnet_for(info, c) for c in controls]
    takes_vae = "vae" in oi.node_inputs(info, "ControlNetApplyAdvanced")
    for control, name in zip(controls, names):
        net = w.add("ControlNetLoader", control_net_name=name)
        extra = {"vae": vae} if takes_vae else {}
        node = w.add("ControlNetApplyAdvanced", positive=positive, negative=negative, control_net=w.out(net),
                     image=images.load(control.image), strength=control.strength,
                     start_percent=control.start, end_percent=control.end, **extra)
        positive, negative = w.out(node, 0), w.out(node, 1)
    return positive, negative


# ---- references ---------------------------------------------------------------------------


def reference_method(info: oi.ObjectInfo, family: str, model: str) -> str:
    """"kontext" (FLUX Kontext model and its nodes) or "ipadapter" (the node pack); else a
    ModelNotFound that names what would give reference images on this server."""
    if family == "flux" and "kontext" in model.lower() and all(oi.has_node(info, c) for c in KONTEXT_NODES):
        return "kontext"
    if oi.has_node(info, IPADAPTER_LOADER) and any(oi.has_node(info, c) for c in IPADAPTER_APPLY):
        return "ipadapter"
    raise ModelNotFound("no reference-image method on this server", user_message=(
        f"Reference images need the {IPADAPTER_PACK} node pack on this ComfyUI server (or a FLUX Kontext model "
        "on a ComfyUI from mid-2025 on). Install the pack with ComfyUI-Manager, or remove the reference images."))


def apply_references_kontext(w: ComfyWorkflow, info: oi.ObjectInfo, images: _Images,
                             refs: tuple[ReferenceImage, ...], positive: Link, vae: Link) -> Link:
    for ref in refs:
        scaled = w.add("FluxKontextImageScale", image=images.load(ref.image))
        latent = w.add("VAEEncode", pixels=w.out(scaled), vae=vae)
        positive = w.out(w.add("ReferenceLatent", conditioning=positive, latent=w.out(latent)))
    return w.out(w.add("FluxGuidance", conditioning=positive, guidance=KONTEXT_GUIDANCE))


def apply_references_ipadapter(w: ComfyWorkflow, info: oi.ObjectInfo, images: _Images,
                               refs: tuple[ReferenceImage, ...], model: Link) -> Link:
    """The pack's nodes wired from their object_info: links by type, other inputs by default."""
    from studio_core.providers.comfy.workflow import _widget_value

    apply_cls = next(c for c in IPADAPTER_APPLY if oi.has_node(info, c))
    loader_widgets = _defaults(info, IPADAPTER_LOADER, _widget_value)
    loader = w.add(IPADAPTER_LOADER, model=model, **loader_widgets)
    model = w.out(loader, 0)
    for ref in refs:
        inputs = _defaults(info, apply_cls, _widget_value)
        for name, spec in oi.node_inputs(info, apply_cls).items():
            if spec.type == "MODEL":
                inputs[name] = model
            elif spec.type == "IPADAPTER":
                inputs[name] = w.out(loader, 1)
            elif spec.type == "IMAGE" and spec.required:
                inputs[name] = images.load(ref.image)
        if "weight" in inputs:
            inputs["weight"] = ref.weight
        if ref.kind == "style" and "weight_type" in inputs:
            choices = oi.choices(info, apply_cls, "weight_type")
            inputs["weight_type"] = next((c for c in choices if "style" in c), inputs["weight_type"])
        node = w.add(apply_cls)
        w.nodes[node]["inputs"].update(inputs)
        model = w.out(node, 0)
    return model


def _defaults(info: oi.ObjectInfo, cls: str, widget_value) -> dict[str, Any]:
    out = {}
    for name, spec in oi.node_inputs(info, cls).items():
        if spec.required and spec.type in ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"):
            ok, value = widget_value(spec)
            if ok:
                out[name] = value
    return out


# ---- latent from an init image (img2img, inpainting) ---------------------------------------


@dataclass(frozen=True, slots=True)
class StartLatent:
    latent: Link
    positive: Link
    negative: Link
    denoise: float


def init_latent(w: ComfyWorkflow, info: oi.ObjectInfo, images: _Images, inputs: ImageInputs, *, width: int,
                height: int, batch: int, vae: Link, positive: Link, negative: Link, model_name: str) -> StartLatent:
    """img2img (LoadImage → ImageScale → VAEEncode, denoise < 1) or inpainting.

    Inpainting picks, by what the server has: InpaintModelConditioning (core since early
    2024; also feeds an inpainting model its masked image), else VAEEncodeForInpaint for an
    inpainting checkpoint (denoise 1), else VAEEncode + SetLatentNoiseMask. The init image
    and mask are scaled to the target size so the request's size is what comes out.
    """
    assert inputs.init is not None
    pixels = w.out(w.add("ImageScale", image=images.load(inputs.init.image), upscale_method="bicubic",
                         width=width, height=height, crop="center"))
    denoise = inputs.init.denoise
    if inputs.mask is None:
        latent = w.out(w.add("VAEEncode", pixels=pixels, vae=vae))
    else:
        as_image = w.add("MaskToImage", mask=images.mask(inputs.mask.image))
        scaled = w.add("ImageScale", image=w.out(as_image), upscale_method="bilinear", width=width, height=height,
                       crop="center")
        mask = w.out(w.add("ImageToMask", image=w.out(scaled), channel="red"))
        if oi.has_node(info, "InpaintModelConditioning"):
            if inputs.mask.grow and oi.has_node(info, "GrowMask"):
                mask = w.out(w.add("GrowMask", mask=mask, expand=inputs.mask.grow, tapered_corners=True))
            extra = {"noise_mask": True} if "noise_mask" in oi.node_inputs(info, "InpaintModelConditioning") else {}
            node = w.add("InpaintModelConditioning", positive=positive, negative=negative, vae=vae, pixels=pixels,
                         mask=mask, **extra)
            positive, negative, latent = w.out(node, 0), w.out(node, 1), w.out(node, 2)
        elif "inpaint" in model_name.lower():
            # The inpainting model fills the greyed area from nothing: denoise must be 1.
            latent = w.out(w.add("VAEEncodeForInpaint", pixels=pixels, vae=vae, mask=mask,
                                 grow_mask_by=inputs.mask.grow))
            denoise = 1.0
        else:
            encoded = w.add("VAEEncode", pixels=pixels, vae=vae)
            latent = w.out(w.add("SetLatentNoiseMask", samples=w.out(encoded), mask=mask))
    if batch > 1:
        latent = w.out(w.add("RepeatLatentBatch", samples=latent, amount=batch))
    return StartLatent(latent, positive, negative, denoise)
