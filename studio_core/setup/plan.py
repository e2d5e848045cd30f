"""What a local setup would install on this computer: a pure function of the facts.

``make_plan(gpu, free_bytes, catalog, folder)`` decides the PyTorch build from the CUDA
version the driver supports, the model from the card's VRAM, and adds up the disk space.
It does no I/O, so every card size is tested directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from studio_core.setup.catalog import Catalog, ComfyRelease, FileSpec, ModelChoice, TorchBuild
from studio_core.setup.gpu_facts import GpuFacts

GIB = 1024 ** 3
# Below this a card can't hold even the small model with --lowvram; the processor is used.
MIN_GPU_GB = 3.5
# NVML reports a little under the box size (an "8 GB" card may say 7.9 GiB).
VRAM_SLACK_GB = 0.5
# Room for ComfyUI's own caches, pip's temporary files and the first outputs.
MARGIN_BYTES = 1 * GIB


@dataclass(frozen=True, slots=True)
class Component:
    kind: str  # "comfyui" | "python" | "model" | "pose"
    title: str
    size_bytes: int
    licence: str = ""
    source: str = ""
    pinned: bool = True
    detail: str = ""
    sum_source: str = "pinned in the app"  # or "entered by you", "no checksum", "checked by pip"


@dataclass(frozen=True, slots=True)
class Plan:
    gpu: GpuFacts | None
    device: str  # the card (or the processor) in one sentence
    release: ComfyRelease
    torch: TorchBuild
    model: ModelChoice
    folder: Path
    downloads: tuple[FileSpec, ...]  # what the installer fetches, the archive first
    components: tuple[Component, ...]
    disk_needed: int
    disk_free: int
    lowvram: bool
    notes: tuple[str, ...] = ()
    problems: tuple[str, ...] = field(default=())  # any of these stops the install

    @property
    def cpu_only(self) -> bool:
        return self.torch.min_cuda is None

    @property
    def can_install(self) -> bool:
        return not self.problems


def human_size(n: int) -> str:
    for unit, size in (("GB", GIB), ("MB", 1024 ** 2), ("KB", 1024)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def pick_torch(catalog: Catalog, gpu: GpuFacts | None) -> tuple[TorchBuild, str]:
    """The build for this driver and a note ("" when nothing needs saying)."""
    cpu = next(t for t in catalog.torch_builds if t.min_cuda is None)
    cuda_builds = sorted((t for t in catalog.torch_builds if t.min_cuda is not None),
                         key=lambda t: t.min_cuda or (0, 0), reverse=True)
    if gpu is None or gpu.vram_gb < MIN_GPU_GB or not cuda_builds:
        return cpu, ""
    if gpu.cuda is None:
        # Unknown: the oldest CUDA build runs on the widest range of drivers.
        return cuda_builds[-1], (f"The driver did not say which CUDA version it supports; the most compatible "
                                 f"build ({cuda_builds[-1].label}) is used.")
    for build in cuda_builds:
        if build.min_cuda and gpu.cuda >= build.min_cuda:
            return build, ""
    oldest = cuda_builds[-1]
    assert oldest.min_cuda is not None
    return cpu, (f"The NVIDIA driver {gpu.driver} supports CUDA {gpu.cuda_text}, older than the CUDA "
                 f"{oldest.min_cuda[0]}.{oldest.min_cuda[1]} PyTorch needs, so ComfyUI would run on the processor. "
                 "Update the NVIDIA driver and run the setup again to use the GPU.")


def pick_model(catalog: Catalog, gpu: GpuFacts | None, *, cpu_only: bool) -> ModelChoice:
    """The biggest model class the card holds; the smallest on the processor."""
    by_need = sorted(catalog.models, key=lambda m: m.min_vram_gb)
    if cpu_only or gpu is None:
        return by_need[0]
    fits = [m for m in by_need if m.min_vram_gb <= gpu.vram_gb + VRAM_SLACK_GB]
    return fits[-1] if fits else by_need[0]


def describe_gpu(gpu: GpuFacts | None) -> str:
    if gpu is None:
        return "No NVIDIA GPU found (or no NVIDIA driver): ComfyUI will run on the processor."
    return (f"{gpu.name}, {gpu.vram_gb:.0f} GB VRAM, driver {gpu.driver or 'unknown'}, "
            f"supports CUDA {gpu.cuda_text}.")


def _file_component(kind: str, title: str, f: FileSpec) -> Component:
    size = human_size(f.size_bytes) if f.size_exact else f"about {human_size(f.size_bytes)}"
    return Component(kind, title, f.size_bytes, f.licence, f.source, f.pinned, size, f.sum_source)


def make_plan(gpu: GpuFacts | None, free_bytes: int, catalog: Catalog, folder: str | Path,
              *, model_id: str | None = None) -> Plan:
    """What to install in ``folder``; ``model_id`` overrides the choice for the card."""
    torch, torch_note = pick_torch(catalog, gpu)
    cpu_only = torch.min_cuda is None
    model = (catalog.model(model_id) if model_id else None) or pick_model(catalog, gpu, cpu_only=cpu_only)
    release = catalog.latest
    downloads = (release.archive, model.file, *model.pose)
    components = [
        _file_component("comfyui", f"ComfyUI {release.version}", release.archive),
        Component("python", f"Python environment with {torch.label}", torch.installed_bytes + catalog.requirements_bytes,
                  "BSD-3-Clause (PyTorch)", torch.index_url, True,
                  f"about {human_size(torch.installed_bytes + catalog.requirements_bytes)}",
                  "checked by pip against the index"),
        _file_component("model", model.title, model.file),
        *(_file_component("pose", f"Pose ControlNet for the Frames panel ({p.name})", p) for p in model.pose),
    ]
    # The archive is unpacked beside itself before it is deleted: count it twice.
    needed = (sum(f.size_bytes for f in downloads) + release.archive.size_bytes + torch.installed_bytes
              + catalog.requirements_bytes + MARGIN_BYTES)
    lowvram = gpu is not None and not cpu_only and gpu.vram_gb < 6.5 + VRAM_SLACK_GB
    notes: list[str] = []
    if cpu_only:
        notes.append(catalog.cpu_speed_note)
        if gpu is not None and gpu.vram_gb < MIN_GPU_GB:
            notes.append(f"The {gpu.name} has {gpu.vram_gb:.1f} GB of VRAM, less than the {MIN_GPU_GB:g} GB "
                         "the smallest model needs, so the processor is used.")
    if torch_note:
        notes.append(torch_note)
    if lowvram:
        notes.append("ComfyUI will start with --lowvram so the model fits beside your desktop.")
    if model.pose_note:
        notes.append(model.pose_note)
    problems = [f"{f.name} has no pinned checksum in this version of the app (catalog as of {catalog.as_of}), "
                "so it will not be downloaded or run. Paste the SHA-256 shown on its release page below, or "
                "update the app." for f in downloads if not f.pinned]
    if free_bytes < needed:
        problems.append(f"Not enough free space in {folder}: the setup needs about {human_size(needed)}, "
                        f"{human_size(free_bytes)} is free. Free some space or choose a folder on another disk.")
    return Plan(gpu, describe_gpu(gpu), release, torch, model, Path(folder), tuple(downloads), tuple(components),
                needed, free_bytes, lowvram, tuple(notes), tuple(problems))
