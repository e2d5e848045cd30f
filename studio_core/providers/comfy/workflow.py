"""Pure text-to-image graph builder: request + the server's object_info → API-format graph.

No I/O: the same inputs always give the same graph, so it is tested offline against a
recorded object_info. The caller resolves the seed (``request.seed`` must not be None
for a reproducible graph; None becomes 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from studio_core.errors import GenerationFailed, ModelNotFound
from studio_core.inputs import ImageInputs
from studio_core.models import GenerationRequest
from studio_core.providers.comfy import input_nodes, object_info as oi

DEFAULT_CHECKPOINT = "sd_xl_base_1.0.safetensors"
SAVE_PREFIX = "studio"
MAX_SEED = 2**64 - 1

# Native sizes; the request's size wins, these only fill in when it is 0.
NATIVE = {"sd15": 512, "sd2": 768, "sdxl": 1024, "flux": 1024, "sd3": 1024}
Link = list  # [node_id, output_index]


class ComfyWorkflow:
    """Accumulates nodes with string ids "1", "2", … (krita's ComfyWorkflow idea)."""

    def __init__(self) -> None:
        self.nodes: dict[str, dict[str, Any]] = {}

    def add(self, class_type: str, *, title: str = "", **inputs: Any) -> str:
        node_id = str(len(self.nodes) + 1)
        node: dict[str, Any] = {"class_type": class_type, "inputs": inputs}
        if title:
            node["_meta"] = {"title": title}
        self.nodes[node_id] = node
        return node_id

    @staticmethod
    def out(node_id: str, index: int = 0) -> Link:
        return [node_id, index]

    def to_dict(self) -> dict[str, Any]:
        return {k: {"class_type": v["class_type"], "inputs": dict(v["inputs"]), **({"_meta": v["_meta"]} if "_meta" in v else {})}
                for k, v in self.nodes.items()}


def model_family(request: GenerationRequest, info: oi.ObjectInfo) -> str:
    forced = request.option("family")
    if forced in NATIVE:
        return str(forced)
    from studio_core.hardware.families import resolve_family

    name = request.model or DEFAULT_CHECKPOINT
    folder = "diffusion_models" if name in oi.diffusion_models(info) and name not in oi.checkpoints(info) else ""
    guess = resolve_family(name, folder=folder)
    return guess.family.id if guess.known else "sdxl"


def _snap(value: int, *, step: int, lo: int, hi: int) -> int:
    value = max(lo, min(hi, int(value)))
    return max(lo, value - value % step)


def _pick(options: tuple[str, ...], keywords: tuple[str, ...], default: str) -> str:
    for kw in keywords:
        for o in options:
            if kw in o.lower():
                return o
    return default


def _range(info: oi.ObjectInfo, cls: str, name: str, default_step: int) -> tuple[int, int, int]:
    spec = oi.node_inputs(info, cls).get(name)
    o = spec.options if spec else {}
    return int(o.get("step", default_step) or default_step), int(o.get("min", 16)), int(o.get("max", 16384))


def _choice(value: str, options: tuple[str, ...], fallback: str) -> str:
    if not options or value in options:
        return value
    return fallback if fallback in options else options[0]


def build(request: GenerationRequest, info: oi.ObjectInfo, inputs: ImageInputs | None = None) -> dict[str, Any]:
    """The API-format graph for ``request`` (and its image ``inputs``: LoRAs, ControlNets,
    references, init image and mask; see input_nodes). Raises ModelNotFound when the server
    lacks the nodes a family needs (e.g. FLUX on a 2024 server), MissingModels when it lacks
    a LoRA or ControlNet the inputs name."""
    inputs = inputs or ImageInputs()
    family = model_family(request, info)
    model = request.model or DEFAULT_CHECKPOINT
    seed = int(request.seed or 0) % (MAX_SEED + 1)
    steps = max(1, int(request.steps))
    batch = max(1, int(request.batch))
    sampler = _choice(request.sampler, oi.samplers(info), "euler")
    scheduler = _choice(request.scheduler, oi.schedulers(info), "normal")
    w = ComfyWorkflow()
    images = input_nodes._Images(w)
    ref_method = input_nodes.reference_method(info, family, model) if inputs.references else ""

    # A FLUX file in models/diffusion_models needs separate text encoders and VAE; one in
    # models/checkpoints (the fp8 all-in-one) loads like any checkpoint.
    use_unet = family == "flux" and model not in oi.checkpoints(info) and (
        model in oi.diffusion_models(info) or request.option("loader") == "unet")
    if use_unet:
        for cls in ("UNETLoader", "DualCLIPLoader", "VAELoader", "EmptySD3LatentImage", "ConditioningZeroOut"):
            if not oi.has_node(info, cls):
                raise ModelNotFound(f"node {cls} missing", user_message=(
                    "This ComfyUI is too old for FLUX models (it lacks the node "
                    f"{cls}). Update ComfyUI or pick an SD 1.5 / SDXL checkpoint."))
        clips = oi.choices(info, "DualCLIPLoader", "clip_name1")
        loader = w.add("UNETLoader", unet_name=model, weight_dtype="default")
        clip = w.add("DualCLIPLoader", clip_name1=_pick(clips, ("t5xxl", "t5"), "t5xxl_fp8_e4m3fn.safetensors"),
                     clip_name2=_pick(clips, ("clip_l",), "clip_l.safetensors"), type="flux")
        vae = w.add("VAELoader", vae_name=_pick(oi.choices(info, "VAELoader", "vae_name"), ("ae.", "flux"), "ae.safetensors"))
        model_out, clip_out, vae_out = w.out(loader), w.out(clip), w.out(vae)
    else:
        ckpt = w.add("CheckpointLoaderSimple", ckpt_name=model)
        model_out, clip_out, vae_out = w.out(ckpt, 0), w.out(ckpt, 1), w.out(ckpt, 2)
    if inputs.active_loras:
        model_out, clip_out = input_nodes.apply_loras(w, info, inputs.active_loras, model_out, clip_out)
    if ref_method == "ipadapter":
        model_out = input_nodes.apply_references_ipadapter(w, info, images, inputs.references, model_out)

    positive = w.add("CLIPTextEncode", text=request.prompt, clip=clip_out, title="Prompt")
    if family == "flux":
        # FLUX-schnell is guidance-distilled: CFG 1 and a zeroed negative (ComfyUI's own template).
        negative = w.add("ConditioningZeroOut", conditioning=w.out(positive)) if oi.has_node(info, "ConditioningZeroOut") \
            else w.add("CLIPTextEncode", text="", clip=clip_out, title="Negative prompt")
        cfg = 1.0
        latent_cls = "EmptySD3LatentImage" if oi.has_node(info, "EmptySD3LatentImage") else "EmptyLatentImage"
        scheduler = "simple" if "simple" in (oi.schedulers(info) or ("simple",)) and request.scheduler == "normal" else scheduler
    else:
        negative = w.add("CLIPTextEncode", text=request.negative_prompt, clip=clip_out, title="Negative prompt")
        cfg = float(request.cfg)
        latent_cls = "EmptyLatentImage"
    native = NATIVE.get(family, 1024)
    step_w, lo_w, hi_w = _range(info, latent_cls, "width", 8)
    step_h, lo_h, hi_h = _range(info, latent_cls, "height", 8)
    width = _snap(request.width or native, step=step_w, lo=lo_w, hi=hi_w)
    height = _snap(request.height or native, step=step_h, lo=lo_h, hi=hi_h)
    pos, neg = w.out(positive), w.out(negative)
    if inputs.controls:
        pos, neg = input_nodes.apply_controls(w, info, images, inputs.controls, pos, neg, vae_out)
    if ref_method == "kontext":
        pos = input_nodes.apply_references_kontext(w, info, images, inputs.references, pos, vae_out)
    denoise = 1.0
    if inputs.init is not None:
        start = input_nodes.init_latent(w, info, images, inputs, width=width, height=height, batch=batch, vae=vae_out,
                                        positive=pos, negative=neg, model_name=model)
        latent_out, pos, neg, denoise = start.latent, start.positive, start.negative, start.denoise
    else:
        latent_out = w.out(w.add(latent_cls, width=width, height=height, batch_size=batch))
    sample = w.add("KSampler", model=model_out, seed=seed, steps=steps, cfg=cfg, sampler_name=sampler,
                   scheduler=scheduler, positive=pos, negative=neg, latent_image=latent_out, denoise=denoise)
    image = _decode(w, request, info, w.out(sample), vae_out)
    node = request.background.node
    if node:
        image = append_image_node(w, info, node, image)
    w.add("SaveImage", images=image, filename_prefix=SAVE_PREFIX)
    return w.to_dict()


def _decode(w: ComfyWorkflow, request: GenerationRequest, info: oi.ObjectInfo, samples: Link, vae: Link) -> Link:
    """VAEDecodeTiled when the VRAM planner's ``tiled_vae`` option is set, then an ImageScale
    to ``upscale_to`` ("WxH") when it had the image made smaller to fit (studio_core.hardware.planner)."""
    if request.option("tiled_vae") and oi.has_node(info, "VAEDecodeTiled"):
        # 2024 servers take tile_size only; 0.3.x also requires overlap/temporal_*: use their defaults.
        extra = {n: s.options.get("default") for n, s in oi.node_inputs(info, "VAEDecodeTiled").items()
                 if s.required and s.type == "INT" and "default" in s.options}
        image = w.out(w.add("VAEDecodeTiled", samples=samples, vae=vae, **extra))
    else:
        image = w.out(w.add("VAEDecode", samples=samples, vae=vae))
    up = str(request.option("upscale_to") or "")
    if "x" in up and oi.has_node(info, "ImageScale"):
        try:
            tw, th = (int(v) for v in up.split("x", 1))
        except ValueError:
            return image
        image = w.out(w.add("ImageScale", image=image, upscale_method="lanczos", width=tw, height=th, crop="disabled"))
    return image


# ---------------------------------------------------------------------------------------
# An extra IMAGE → IMAGE node after the decode (a background-removal pack's node), wired
# from its object_info spec: which input takes the image, which output gives it back, and
# what its other required inputs get (defaults, or a loader node for a model link).

_IMAGE_INPUT_NAMES = ("image", "images", "input_image", "pixels", "img")
_WIDGET_TYPES = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"})


def _outputs(info: oi.ObjectInfo, class_type: str) -> tuple[str, ...]:
    node = info.get(class_type)
    outs = node.get("output") if isinstance(node, Mapping) else None
    return tuple(str(o) for o in outs) if isinstance(outs, (list, tuple)) else ()


def _widget_value(spec: oi.InputSpec) -> tuple[bool, Any]:
    """The value a widget input gets when nobody chose one: its default, else a safe pick."""
    o = spec.options
    if spec.type == "COMBO":
        if spec.choices:
            default = o.get("default")
            return True, default if default in spec.choices else spec.choices[0]
        return ("default" in o), o.get("default")
    if "default" in o:
        return True, o["default"]
    if spec.type in ("INT", "FLOAT"):
        value = o.get("min", 0)
        return True, float(value) if spec.type == "FLOAT" else int(value)
    if spec.type == "BOOLEAN":
        return True, False
    if spec.type == "STRING":
        return True, ""
    return False, None


def _widget_inputs(info: oi.ObjectInfo, class_type: str, *, skip: str = "") -> dict[str, Any] | None:
    """Values for every required widget input of ``class_type``; None when one has none or a
    required input other than ``skip`` is a link."""
    values: dict[str, Any] = {}
    for name, spec in oi.node_inputs(info, class_type).items():
        if name == skip or not spec.required:
            continue
        if spec.type not in _WIDGET_TYPES:
            return None
        ok, value = _widget_value(spec)
        if not ok:
            return None
        values[name] = value
    return values


def _loader_for(info: oi.ObjectInfo, link_type: str) -> tuple[str, int, dict[str, Any]] | None:
    """A node that makes a ``link_type`` (a model loader) from widget inputs alone."""
    for cls in sorted(info):
        outs = _outputs(info, cls)
        if link_type in outs:
            values = _widget_inputs(info, cls)
            if values is not None:
                return cls, outs.index(link_type), values
    return None


@dataclass(frozen=True, slots=True)
class NodeWiring:
    node: str
    image_input: str
    image_output: int
    widgets: tuple[tuple[str, Any], ...]
    loaders: tuple[tuple[str, str, int, tuple[tuple[str, Any], ...]], ...]  # (input, class, output, widgets)


def image_node_wiring(info: oi.ObjectInfo, node: str) -> NodeWiring | None:
    """How to put ``node`` between the decode and SaveImage, or None when it can't be
    wired automatically (no IMAGE input/output, or a link input nothing here can make)."""
    inputs = oi.node_inputs(info, node)
    outs = _outputs(info, node)
    if not inputs or "IMAGE" not in outs:
        return None
    image_inputs = [n for n, s in inputs.items() if s.type == "IMAGE" and s.required]
    if not image_inputs:
        return None
    image_input = next((n for n in _IMAGE_INPUT_NAMES if n in image_inputs), image_inputs[0])
    widgets: dict[str, Any] = {}
    loaders = []
    for name, spec in inputs.items():
        if name == image_input or not spec.required:
            continue
        if spec.type in _WIDGET_TYPES:
            ok, value = _widget_value(spec)
            if not ok:
                return None
            widgets[name] = value
            continue
        loader = _loader_for(info, spec.type)
        if loader is None:
            return None
        loaders.append((name, loader[0], loader[1], tuple(loader[2].items())))
    return NodeWiring(node, image_input, outs.index("IMAGE"), tuple(widgets.items()), tuple(loaders))


def append_image_node(w: ComfyWorkflow, info: oi.ObjectInfo, node: str, image: Link) -> Link:
    """Add ``node`` (IMAGE in, IMAGE out) after ``image`` and return its IMAGE output.
    Raises GenerationFailed when the server lacks the node or it can't be wired."""
    wiring = image_node_wiring(info, node)
    if wiring is None:
        raise GenerationFailed(f"node {node!r} missing or not wirable", user_message=(
            f"The ComfyUI node {node} (background removal) is not on the server any more, or the studio "
            "can't connect it. Turn off Transparent background, or check the node pack in ComfyUI."))
    links: dict[str, Any] = {}
    for name, cls, index, values in wiring.loaders:
        links[name] = w.out(w.add(cls, **dict(values)), index)
    out = w.add(node, title="Remove background")
    # Set directly: a pack's input may be called "title" or "class_type".
    w.nodes[out]["inputs"].update({wiring.image_input: image, **dict(wiring.widgets), **links})
    return w.out(out, wiring.image_output)


def progress_total(graph: Mapping[str, Any]) -> int:
    """Sampler steps in ``graph`` (what the progress bar counts), or 0 if it has no sampler."""
    total = 0
    for node in graph.values():
        if not isinstance(node, Mapping):
            continue
        steps = (node.get("inputs") or {}).get("steps")
        if "sampler" in str(node.get("class_type", "")).lower() and isinstance(steps, int):
            total += steps
    return total
