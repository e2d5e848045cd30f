"""Model families, recognised from a checkpoint's file name.

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

import re
from dataclasses import dataclass

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
