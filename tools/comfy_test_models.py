"""Model files with RANDOM weights for the ComfyUI test server, so the tests really sample.

Nothing can be downloaded here, but ComfyUI's own model classes can build an SD 1.5-shaped
checkpoint with random weights: the images are noise, everything around them (loading,
sampling, progress, previews, LoRA patching, ControlNet) is the server's real code path.

Two halves in one file:

* ``ensure(...)`` runs in the caller's interpreter (no torch needed): it makes the files once
  into ``$STUDIO_TEST_CACHE/test-models`` by running this file with the test server's venv,
  and writes the ``extra_model_paths`` YAML that ``comfy_test_server.start(models=True)`` hands
  to the server. The files sit outside the server's own ``models/`` so tests that expect a
  server without weights keep seeing none.
* ``make(...)`` runs inside that venv (cwd = the ComfyUI folder): it builds the networks,
  fills them with seeded random values and saves ``.safetensors``.

Size: ComfyUI recognises SD 1.5 by the UNet's ``model_channels`` (320) and ``context_dim``
(768) only; depth and levels are read from the weights. So the UNet here has two levels and
one block per level (~4 % of SD 1.5's UNet), while the text encoder (CLIP ViT-L/14 text
model) and VAE, whose shapes ComfyUI fixes in code, are full size. Stored as fp16.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

CHECKPOINT = "studio-test-sd15-random.safetensors"
LORA = "studio-test-lora-random.safetensors"
CONTROLNET = "studio-test-controlnet-pose-random.safetensors"
STAMP_VERSION = "1"
SEED = 1234

# The smallest UNet ComfyUI still detects as SD 1.5 (supported_models.SD15.unet_config).
UNET_CONFIG = {
    "image_size": 32, "in_channels": 4, "out_channels": 4, "model_channels": 320,
    "num_res_blocks": [1, 1], "channel_mult": [1, 2], "transformer_depth": [1, 1],
    "transformer_depth_output": [1, 1, 1, 1], "transformer_depth_middle": 1,
    "context_dim": 768, "use_linear_in_transformer": False, "num_heads": 8, "num_head_channels": -1,
    "use_spatial_transformer": True, "legacy": False, "adm_in_channels": None,
    "use_temporal_resblock": False, "use_temporal_attention": False, "use_checkpoint": False,
}
VAE_CONFIG = {"double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
              "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0}
LORA_RANK = 4


def models_dir(cache_root: Path) -> Path:
    return Path(cache_root) / "test-models"


def yaml_path(cache_root: Path) -> Path:
    return models_dir(cache_root) / "extra_model_paths.yaml"


def is_made(cache_root: Path) -> bool:
    folder = models_dir(cache_root)
    try:
        stamp = json.loads((folder / "made.json").read_text())
    except (OSError, ValueError):
        return False
    files = (folder / "checkpoints" / CHECKPOINT, folder / "loras" / LORA, folder / "controlnet" / CONTROLNET)
    return stamp.get("version") == STAMP_VERSION and all(f.is_file() for f in files)


def ensure(cache_root: Path, venv_python: Path, server_dir: Path) -> Path:
    """Make the random-weight models once; returns the extra_model_paths YAML for the server."""
    folder = models_dir(cache_root)
    if not is_made(cache_root):
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        subprocess.run([str(venv_python), str(Path(__file__).resolve()), "make", str(folder)],
                       cwd=server_dir, check=True)
        (folder / "made.json").write_text(json.dumps({"version": STAMP_VERSION,
                                                      "seconds": round(time.monotonic() - t0, 1)}))
    yaml = yaml_path(cache_root)
    # ComfyUI's own extra-paths format; absolute base_path so the server's cwd does not matter.
    yaml.write_text(f"studio_test:\n    base_path: {folder}\n    checkpoints: checkpoints\n"
                    f"    loras: loras\n    controlnet: controlnet\n")
    return yaml


# ---- inside the server's venv ------------------------------------------------------------


def _randomize(state: dict, gen) -> dict:
    """Seeded values a network can run on: 1-D scales 1, biases 0, weights ~N(0, 1/fan_in).

    ComfyUI's layers skip their own init (disable_weight_init), so the tensors start as
    uninitialised memory; every one is overwritten here.
    """
    import torch

    out = {}
    for name, t in state.items():
        if not t.is_floating_point():
            out[name] = t.clone()
        elif name.endswith("bias"):
            out[name] = torch.zeros_like(t)
        elif t.dim() <= 1:
            out[name] = torch.ones_like(t)
        else:
            fan_in = max(1, t[0].numel())
            out[name] = torch.randn(t.shape, generator=gen) * (fan_in ** -0.5)
        if out[name].is_floating_point():
            out[name] = out[name].to(torch.float16).contiguous()
    return out


def make(folder: Path) -> None:
    import torch

    with torch.no_grad():  # ComfyUI builds its models the same way (some init in place)
        _make(folder)


def _make(folder: Path) -> None:
    sys.path.insert(0, os.getcwd())  # the ComfyUI folder: its "comfy" package
    import torch
    from safetensors.torch import save_file

    import comfy.cli_args

    comfy.cli_args.args.cpu = True  # read when model_management is imported: no CUDA probing here
    import comfy.cldm.cldm
    import comfy.model_detection
    import comfy.ops
    import comfy.sd1_clip
    import comfy.supported_models
    from comfy.ldm.models.autoencoder import AutoencoderKL
    from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel

    gen = torch.Generator().manual_seed(SEED)
    ops = comfy.ops.disable_weight_init
    unet = UNetModel(**UNET_CONFIG, operations=ops, dtype=torch.float32, device="cpu")
    unet_sd = _randomize(unet.state_dict(), gen)
    clip = comfy.sd1_clip.SD1ClipModel(device="cpu", dtype=torch.float32)
    clip_sd = _randomize(clip.state_dict(), gen)
    vae = AutoencoderKL(ddconfig=VAE_CONFIG, embed_dim=4)
    vae_sd = _randomize(vae.state_dict(), gen)

    ckpt = {f"model.diffusion_model.{k}": v for k, v in unet_sd.items()}
    # The checkpoint layout SD 1.5 files use: cond_stage_model.* (ComfyUI renames it clip_l.*).
    ckpt.update({"cond_stage_model." + k[len("clip_l."):]: v for k, v in clip_sd.items() if k.startswith("clip_l.")})
    ckpt.update({f"first_stage_model.{k}": v for k, v in vae_sd.items()})
    config = comfy.model_detection.model_config_from_unet(ckpt, "model.diffusion_model.")
    if not isinstance(config, comfy.supported_models.SD15):
        raise SystemExit(f"the random checkpoint is detected as {type(config).__name__}, not SD15")

    # A LoRA on every attention projection of the UNet and the text encoder, in the kohya
    # key layout ComfyUI maps (lora_unet_* / lora_te_*): small, and it really patches.
    lora = {}
    for name, t in unet_sd.items():
        if ".attn" in name and name.endswith(".weight") and t.dim() == 2:
            lora_key = "lora_unet_" + name[: -len(".weight")].replace(".", "_")
            lora.update(_lora_pair(lora_key, t.shape, gen))
    for name, t in clip_sd.items():
        if "self_attn" in name and name.endswith("proj.weight") and t.dim() == 2 and ".layers." in name:
            layer = name.split(".layers.")[1].split(".")[0]
            proj = name.split(".self_attn.")[1][: -len(".weight")]
            lora.update(_lora_pair(f"lora_te_text_model_encoder_layers_{layer}_self_attn_{proj}", t.shape, gen))

    cn_config = {k: v for k, v in UNET_CONFIG.items() if k != "out_channels"}
    control = comfy.cldm.cldm.ControlNet(**cn_config, hint_channels=3, operations=ops, dtype=torch.float32, device="cpu")
    control_sd = _randomize(control.state_dict(), gen)
    if not isinstance(comfy.model_detection.model_config_from_unet(control_sd, "", True), comfy.supported_models.SD15):
        raise SystemExit("the random ControlNet is not detected as SD15")

    meta = {"studio_test": "random weights, made by tools/comfy_test_models.py"}
    for sub, name, sd in (("checkpoints", CHECKPOINT, ckpt), ("loras", LORA, lora), ("controlnet", CONTROLNET, control_sd)):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        tmp = folder / sub / (name + ".tmp")
        save_file(sd, str(tmp), metadata=meta)
        tmp.replace(folder / sub / name)  # never a half-written model under the real name
        print(f"{sub}/{name}: {sum(v.numel() for v in sd.values()) / 1e6:.1f} M values, "
              f"{(folder / sub / name).stat().st_size / 1e6:.0f} MB", flush=True)


def _lora_pair(key: str, shape, gen) -> dict:
    import torch

    out_f, in_f = shape
    return {f"{key}.lora_up.weight": (torch.randn((out_f, LORA_RANK), generator=gen) * 0.05).half(),
            f"{key}.lora_down.weight": (torch.randn((LORA_RANK, in_f), generator=gen) * in_f ** -0.5).half(),
            f"{key}.alpha": torch.tensor(float(LORA_RANK)).half()}


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "make":
        make(Path(sys.argv[2]))
    else:
        raise SystemExit("usage: (test server venv python) comfy_test_models.py make FOLDER")
