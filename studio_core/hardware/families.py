"""Model families: what a checkpoint is, decided in one place (:func:`resolve_family`).

The evidence, strongest first: the checkpoint's own metadata (ComfyUI's
``/view_metadata/checkpoints``: ``modelspec.architecture``, ``ss_base_model_version``),
the tensor names in its safetensors header when the file is on this computer, the folder
it lives in (``diffusion_models/`` and ``unet/`` hold FLUX-style denoisers), then the file
name. An SDXL fine-tune called ``my_model_v3`` is SDXL by its tensors, not SD 1.5 by its name.

Parameter counts and file sizes (the sources the estimator relies on):

- SD 1.5: UNet 860 M parameters, CLIP ViT-L/14 text encoder 123 M, VAE 83.7 M
  (Rombach et al. 2022; runwayml/stable-diffusion-v1-5 model card).
  ``v1-5-pruned-emaonly-fp16.safetensors`` is 2.13 GB.
- SD 2.x: UNet 865 M, OpenCLIP ViT-H text encoder 354 M (stabilityai/stable-diffusion-2-1
  model card); native 768 px (512 px for the -base and Turbo variants).
- SDXL: UNet 2.6 B (2,567 M), text encoders CLIP ViT-L + OpenCLIP ViT-bigG 817 M total
  (Podell et al. 2023, "SDXL", table 1); ``sd_xl_base_1.0.safetensors`` is 6.94 GB, the
  seed's "6.9GB". Pony, Illustrious, NoobAI, Juggernaut XL, RealVis XL… are SDXL fine-tunes.
- SD3 Medium: MMDiT 2 B, CLIP-L + CLIP-G + T5-XXL 4.7 B (stabilityai/stable-diffusion-3-medium
  model card). SD 3.5 Large: 8.1 B.
- FLUX.1 [dev]/[schnell]: 12 B transformer, T5-XXL + CLIP-L (black-forest-labs model cards);
  ``flux1-schnell.safetensors`` is 23.8 GB in bf16, 11.9 GB as fp8.

Weights below are MiB at 2 bytes per parameter (fp16/bf16); fp8 halves the denoiser.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

_M = 2 / 1.048576  # MiB per million parameters at 2 bytes each


@dataclass(frozen=True, slots=True)
class ModelFamily:
    id: str
    label: str
    native: tuple[int, int]
    denoiser_mparams: float  # UNet / DiT, millions of parameters
    text_encoder_mparams: float
    vae_mparams: float = 83.7
    latent_channels: int = 4
    # Activation MiB per latent pixel per batch item (see estimator.py for the formula).
    activation_k: float = 0.02
    uses_cfg: bool = True
    default_steps: int | None = None
    default_cfg: float | None = None

    @property
    def denoiser_mib(self) -> float:
        return self.denoiser_mparams * _M

    @property
    def text_encoder_mib(self) -> float:
        return self.text_encoder_mparams * _M

    @property
    def vae_mib(self) -> float:
        return self.vae_mparams * _M

    @property
    def weights_mib(self) -> float:
        """The whole checkpoint at fp16: denoiser + text encoders + VAE."""
        return self.denoiser_mib + self.text_encoder_mib + self.vae_mib


SD15 = ModelFamily("sd15", "SD 1.5", (512, 512), 860, 123)
SD2 = ModelFamily("sd2", "SD 2.x", (768, 768), 865, 354)
SD2_512 = ModelFamily("sd2", "SD 2.x", (512, 512), 865, 354)
SDXL = ModelFamily("sdxl", "SDXL", (1024, 1024), 2567, 817)
SDXL_TURBO = ModelFamily("sdxl", "SDXL Turbo", (512, 512), 2567, 817, default_steps=4, default_cfg=1.0)
# SD3 text encoders: CLIP-L + CLIP-G as in ``sd3_medium_incl_clips``; T5 is optional there.
SD3 = ModelFamily("sd3", "SD3", (1024, 1024), 2028, 123 + 695, latent_channels=16, activation_k=0.012)
SD35L = ModelFamily("sd3", "SD 3.5 Large", (1024, 1024), 8100, 123 + 695, latent_channels=16, activation_k=0.012)
FLUX = ModelFamily("flux", "FLUX.1", (1024, 1024), 11900, 4762 + 123, latent_channels=16, activation_k=0.028,
                   uses_cfg=False)
FLUX_SCHNELL = ModelFamily("flux", "FLUX.1 schnell", (1024, 1024), 11900, 4762 + 123, latent_channels=16,
                           activation_k=0.028, uses_cfg=False, default_steps=4, default_cfg=1.0)
# An unknown checkpoint is most likely an SDXL-class fine-tune today; estimating it as one
# errs on the safe side for SD 1.5 files.
UNKNOWN = ModelFamily("unknown", "Unknown (estimated as SDXL)", (1024, 1024), 2567, 817)

# Ordered: the first pattern that matches the lower-cased name wins.
_RULES: tuple[tuple[str, ModelFamily], ...] = (
    (r"flux.*schnell|schnell", FLUX_SCHNELL),
    (r"flux", FLUX),
    (r"sd3\.5|sd35|3\.5.?large|sd3_5", SD35L),
    (r"sd3|stable.?diffusion.?3", SD3),
    (r"sdxl.?turbo|sd_xl_turbo", SDXL_TURBO),
    (r"xl|pony|illustrious|noob|animagine|juggernaut|realvis|dreamshaper.?xl|playground|ssd-?1b", SDXL),
    (r"sd.?turbo|2-1_512|2_1_512|v2-1_512|512-base", SD2_512),
    (r"v2-|sd2|sd_2|2\.1|2-1|768-v", SD2),
    (r"v1-5|v1-4|sd15|sd_1\.5|sd1\.5|1\.5|1-5|dreamshaper|realistic.?vision|deliberate|anything|counterfeit|"
     r"revanimated|pixel", SD15),
)


def detect_family(name: str) -> ModelFamily:
    """Guess the family of ``name`` (a checkpoint file or a path) from its name alone."""
    base = re.split(r"[\\/]", name.lower())[-1]
    for pattern, family in _RULES:
        if re.search(pattern, base):
            return family
    return UNKNOWN


FAMILIES: tuple[ModelFamily, ...] = (SD15, SD2, SDXL, SD3, FLUX)

_BY_ID = {f.id: f for f in FAMILIES}


def family_for(name: str, hint: str = "") -> ModelFamily:
    """The family from the name, else from ``hint`` (what the server or the provider says,
    e.g. ``ModelInfo.family`` "flux" for a file in models/diffusion_models)."""
    fam = detect_family(name)
    if fam is UNKNOWN and hint in _BY_ID:
        return _BY_ID[hint]
    return fam


def family_by_id(family_id: str) -> ModelFamily | None:
    return _BY_ID.get(family_id)


# ---- evidence other than the name ------------------------------------------------------

# modelspec.architecture (Stability's ModelSpec: "stable-diffusion-xl-v1-base",
# "stable-diffusion-v1", "stable-diffusion-v2-768-v", "stable-diffusion-v3-medium",
# "flux-1-dev") and kohya's ss_base_model_version ("sdxl_base_v1-0", "sd_v1", "sd_v2_768_v",
# "sd3", "flux1"). Checked in order: "xl" before "v1", "turbo" before plain "xl".
_META_RULES: tuple[tuple[str, ModelFamily], ...] = (
    (r"flux.*schnell", FLUX_SCHNELL),
    (r"flux", FLUX),
    (r"3[.\-_]?5.*large|sd3[.\-_]?5", SD35L),
    (r"stable-diffusion-v?3|^sd3|sd_v3", SD3),
    (r"xl.*turbo|turbo.*xl", SDXL_TURBO),
    (r"xl", SDXL),
    (r"v2.*512|2-1-512|sd_v2_512", SD2_512),
    (r"stable-diffusion-v2|^sd_v2|sd2", SD2),
    (r"stable-diffusion-v1|^sd_v1|sd1", SD15),
)


def family_from_metadata(meta: Mapping[str, Any] | None) -> ModelFamily | None:
    """The family a checkpoint's ``__metadata__`` declares, or None when it says nothing useful."""
    if not isinstance(meta, Mapping):
        return None
    for key in ("modelspec.architecture", "ss_base_model_version"):
        value = meta.get(key)
        if not isinstance(value, str) or not value.strip():
            continue
        text = value.strip().lower()
        # modelspec allows "<arch>/<adapter>" (e.g. ".../lora"); the base architecture is first.
        text = text.split("/", 1)[0]
        for pattern, family in _META_RULES:
            if re.search(pattern, text):
                return family
    return None


def family_from_tensors(names: Iterable[str]) -> ModelFamily | None:
    """The family from the tensor names of a checkpoint (single-file or bare denoiser).

    SDXL's UNet has ``label_emb`` (its size conditioning) and its second text encoder sits at
    ``conditioner.embedders.1``; SD 1.5 and 2.x keep theirs at ``cond_stage_model`` (2.x as
    OpenCLIP, ``cond_stage_model.model.``); SD3's MMDiT has ``joint_blocks``; FLUX has
    ``double_blocks`` and ``single_blocks``."""
    has_label_emb = has_sd_unet = has_clip_l = has_openclip = False
    for n in names:
        if "double_blocks." in n or "single_blocks." in n:
            return FLUX
        if "joint_blocks." in n:
            return SD3
        if "conditioner.embedders.1." in n or "diffusion_model.label_emb." in n or n.startswith("label_emb."):
            has_label_emb = True
        elif "diffusion_model.input_blocks." in n or n.startswith("input_blocks."):
            has_sd_unet = True
        elif n.startswith("cond_stage_model.transformer."):
            has_clip_l = True
        elif n.startswith("cond_stage_model.model."):
            has_openclip = True
    if has_label_emb:
        return SDXL
    if has_openclip:
        return SD2
    if has_sd_unet or has_clip_l:
        return SD15
    return None


MAX_HEADER_BYTES = 100 * 1024 * 1024  # the biggest real headers are a few MB; a bigger length is a broken file


def read_safetensors_header(path: Path) -> dict[str, Any] | None:
    """The JSON header of a .safetensors file (8-byte little-endian length, then JSON),
    without reading the weights; None for any file that is not one. Blocking: call in a thread."""
    p = Path(path)
    if p.suffix.lower() != ".safetensors":
        return None
    try:
        with open(p, "rb") as fh:
            raw = fh.read(8)
            if len(raw) != 8:
                return None
            (length,) = struct.unpack("<Q", raw)
            if not 2 <= length <= MAX_HEADER_BYTES:
                return None
            data = fh.read(length)
    except OSError:
        return None
    if len(data) != length:
        return None
    try:
        header = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return header if isinstance(header, dict) else None


# ComfyUI's folders for bare denoisers; what is there loads through UNETLoader, which the
# app uses for FLUX (separate text encoders and VAE).
UNET_FOLDERS = ("diffusion_models", "unet")


def family_from_folder(folder: str) -> ModelFamily | None:
    return FLUX if folder.strip("/\\").lower() in UNET_FOLDERS else None


@dataclass(frozen=True, slots=True)
class FamilyGuess:
    """A family and where it came from: "metadata", "tensors", "folder", "name", "user" or "" (unknown)."""

    family: ModelFamily
    source: str

    @property
    def known(self) -> bool:
        return self.family is not UNKNOWN


SOURCE_WORDS = {"metadata": "from the file's metadata", "tensors": "from the file's contents",
                "folder": "from its folder", "name": "from its name", "user": "as you said", "": "unknown"}


def resolve_family(name: str, *, metadata: Mapping[str, Any] | None = None, header: Mapping[str, Any] | None = None,
                   folder: str = "", remembered: str = "") -> FamilyGuess:
    """The one decision on a model's family. ``metadata``: the ``__metadata__`` the server
    gave; ``header``: the whole safetensors header read from this computer's copy (its
    ``__metadata__`` counts as metadata too); ``folder``: the ComfyUI models folder the file
    is listed under; ``remembered``: the family id the user chose for this server earlier.
    Returns UNKNOWN with source "" when nothing decides (the GUI then asks once)."""
    metas = [metadata, header.get("__metadata__") if isinstance(header, Mapping) else None]
    for meta in metas:
        fam = family_from_metadata(meta)
        if fam is not None:
            return FamilyGuess(fam, "metadata")
    if isinstance(header, Mapping):
        fam = family_from_tensors(k for k in header if k != "__metadata__")
        if fam is not None:
            return FamilyGuess(fam, "tensors")
    fam = family_from_folder(folder)
    if fam is not None:
        return FamilyGuess(fam, "folder")
    fam = detect_family(name)
    if fam is not UNKNOWN:
        return FamilyGuess(fam, "name")
    chosen = _BY_ID.get(remembered)
    if chosen is not None:
        return FamilyGuess(chosen, "user")
    return FamilyGuess(UNKNOWN, "")


def family_id_from_name(name: str) -> str:
    """The id the name alone gives ("" when the name says nothing); for ``ModelInfo.family``."""
    fam = detect_family(name)
    return "" if fam is UNKNOWN else fam.id
