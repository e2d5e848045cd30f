from __future__ import annotations

import pytest

from studio_core.hardware.estimator import OVERHEAD_MIB, Precision, estimate_vram
from studio_core.hardware.families import FLUX, SD15, SD3, SDXL, UNKNOWN, detect_family
from studio_core.hardware.profiles import RTX_3050, profile_for_total


def test_seed_rtx_3050_profile_is_pinned():
    assert RTX_3050.total_mib == 6144  # the seed's maxVRAM
    assert RTX_3050.safe_mib == 5120  # the seed's safeVRAM ("1GB buffer")
    assert RTX_3050.max_batch == 1  # the seed's maxBatchSize
    assert "--lowvram" in RTX_3050.server_flags() and "--preview-method" in RTX_3050.server_flags()


@pytest.mark.parametrize("gb,name,batch,lowvram", [(4, "4 GB", 1, True), (6, "6 GB", 1, True), (8, "8 GB", 2, False),
                                                   (12, "12 GB", 4, False), (16, "16 GB", 4, False),
                                                   (24, "24 GB+", 8, False), (80, "24 GB+", 8, False)])
def test_profiles_by_total(gb, name, batch, lowvram):
    p = profile_for_total(gb * 1024)
    assert p.name == name and p.max_batch == batch and p.lowvram is lowvram
    assert 0 < p.safe_mib < p.total_mib


def test_nvml_reported_totals_land_in_the_right_tier():
    # NVML reports a little less than the marketing size (e.g. 5.8 GiB on a "6 GB" card).
    assert profile_for_total(5937).name == "6 GB"
    assert profile_for_total(8188).name == "8 GB"
    assert profile_for_total(24564).name == "24 GB+"


@pytest.mark.parametrize("name,family", [
    ("sd_xl_base_1.0.safetensors", "sdxl"), ("ponyDiffusionV6XL.safetensors", "sdxl"),
    ("illustriousXL_v01.safetensors", "sdxl"), ("noobaiXLNAIXL_vPred10.safetensors", "sdxl"),
    ("v1-5-pruned-emaonly.safetensors", "sd15"), ("dreamshaper_8.safetensors", "sd15"),
    ("v2-1_768-ema-pruned.safetensors", "sd2"), ("sd3_medium_incl_clips.safetensors", "sd3"),
    ("sd3.5_large.safetensors", "sd3"), ("flux1-schnell-fp8.safetensors", "flux"), ("flux1-dev.safetensors", "flux"),
    ("subfolder/mystery_model.ckpt", "unknown"),
])
def test_detect_family(name, family):
    assert detect_family(name).id == family


def test_native_resolutions_and_weights():
    assert SD15.native == (512, 512) and SDXL.native == (1024, 1024) and FLUX.native == (1024, 1024)
    # SDXL checkpoint ≈ 6.9 GB (the seed's figure; 6.94 GB on disk).
    assert 6.3 < SDXL.weights_mib / 1024 < 6.7
    assert 1.9 < SD15.weights_mib / 1024 < 2.1
    assert 22 < FLUX.denoiser_mib / 1024 < 23
    assert detect_family("unknown.safetensors") is UNKNOWN


def test_estimate_grows_with_pixels_and_batch():
    small = estimate_vram(SDXL, width=512, height=512)
    big = estimate_vram(SDXL, width=1024, height=1024)
    batch = estimate_vram(SDXL, width=1024, height=1024, batch=4)
    assert small.peak_mib < big.peak_mib < batch.peak_mib
    # Sampling activations scale linearly with batch (CFG doubles it: 2 × batch × latent px).
    assert batch.sampling_mib - big.sampling_mib == pytest.approx(3 * (big.sampling_mib - big.weights_mib - OVERHEAD_MIB))


def test_fp8_halves_the_denoiser_weights():
    a = estimate_vram(SDXL, width=1024, height=1024, precision="fp16")
    b = estimate_vram(SDXL, width=1024, height=1024, precision=Precision.fp8)
    assert b.weights_mib == pytest.approx(a.weights_mib / 2)


def test_tiled_vae_caps_decode_memory():
    full = estimate_vram(SDXL, width=1024, height=1024, precision="fp8")
    tiled = estimate_vram(SDXL, width=1024, height=1024, precision="fp8", tiled_vae=True)
    assert full.dominant == "VAE decode"
    assert tiled.decode_mib < full.decode_mib / 2
    assert tiled.peak_mib < full.peak_mib
    # ComfyUI's own formula: 2178 × 128 × 128 × 64 × 2 bytes for a 1024² SDXL latent.
    assert full.decode_mib - OVERHEAD_MIB - SDXL.vae_mib == pytest.approx(2178 * 128 * 128 * 64 * 2 / 2**20)
    # Batch does not multiply decode memory: ComfyUI decodes a batch in slices that fit.
    assert estimate_vram(SDXL, width=1024, height=1024, batch=3).decode_mib == full.decode_mib


def test_seed_card_figures():
    """What the seed's 6 GB card can do, per the estimate (budget 5120 MiB)."""
    budget = RTX_3050.safe_mib
    assert estimate_vram(SD15, width=512, height=512).peak_mib < budget * 0.6
    assert estimate_vram(SDXL, width=1024, height=1024).peak_mib > budget  # fp16 SDXL: weights alone ~4.8 GiB
    assert estimate_vram(SDXL, width=1024, height=1024, precision="fp8", tiled_vae=True).peak_mib < budget
    assert estimate_vram(FLUX, width=1024, height=1024, precision="fp8").peak_mib > budget


def test_flux_has_no_cfg_batch_doubling_and_sd3_uses_16_channels():
    assert FLUX.uses_cfg is False and SD3.latent_channels == 16


def test_server_hint_fills_in_an_unknown_name():
    from studio_core.hardware.families import family_for

    assert family_for("my_model.safetensors", "flux").id == "flux"
    assert family_for("sd_xl_base_1.0.safetensors", "flux").id == "sdxl"  # the name wins when it is clear
    assert family_for("x.safetensors", "nonsense") is UNKNOWN
