"""What a local setup would install on this computer: a pure function of the facts.

``make_plan(gpu, free_bytes, catalog, folder, platform=..., git_found=...)`` decides where
ComfyUI comes from, the PyTorch build from the CUDA version the driver supports, the model
from the card's VRAM, and adds up the disk space. It does no I/O (the caller passes the
platform and whether git is on PATH), so every card and platform is tested directly.

Where ComfyUI comes from, in order of preference:

- Windows: the portable release ``.7z`` for the GPU (its own ``python_embeded`` with PyTorch,
  so no pip step), checked against a pinned SHA-256;
- elsewhere: the release's git commit, cloned and checked by git itself against the pinned
  commit id (needs git on PATH), then PyTorch through pip;
- otherwise GitHub's source zip, which has no published sum: refused until the user pastes one.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from studio_core.setup.catalog import Catalog, ComfyRelease, FileSpec, GitPin, ModelChoice, TorchBuild
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
    sum_from: str = ""  # who published the pinned sum, when not this project


@dataclass(frozen=True, slots=True)
class Source:
    """Where this plan's ComfyUI comes from."""

    kind: str  # "portable" (Windows .7z) | "git" (pinned commit) | "zip" (source archive)
    archive: FileSpec | None = None  # what is downloaded and unpacked ("portable", "zip")
    git: GitPin | None = None
    build: str = ""  # the portable build: "nvidia" | "amd" | "intel"

    @property
    def brings_python(self) -> bool:
        """The portable build ships its Python and PyTorch: no venv, no pip."""
        return self.kind == "portable"

    @property
    def comfy_dir(self) -> str:
        """ComfyUI's own folder inside the install folder (the portable build nests it)."""
        return "ComfyUI" if self.kind == "portable" else ""


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
    source: Source | None = None
    platform: str = "linux"

    @property
    def cpu_only(self) -> bool:
        if self.source is not None and self.source.build in ("amd", "intel"):
            return False
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
    sum_source = f.sum_source
    if f.pinned and not f.sum_by_user and f.sha256_from:
        sum_source = "pinned in the app (third-party list)"  # where exactly: sum_from, shown on hover
    return Component(kind, title, f.size_bytes, f.licence, f.source, f.pinned, size, sum_source,
                     f.sha256_from or "")


PORTABLE_WORDS = {"nvidia": "NVIDIA", "amd": "AMD Radeon", "intel": "Intel Arc"}


def pick_source(release: ComfyRelease, gpu: GpuFacts | None, *, platform: str, git_found: bool,
                windows_build: str | None = None) -> tuple[Source, list[str]]:
    """Where ComfyUI comes from on this platform, and what to say about it."""
    notes: list[str] = []
    if platform == "win32" and release.portable:
        # NVML sees only NVIDIA cards; an AMD or Intel card is the user's word (windows_build).
        build = windows_build if windows_build and release.portable_build(windows_build) else "nvidia"
        spec = release.portable_build(build) or release.portable[0][1]
        if build == "nvidia" and gpu is None:
            notes.append("No NVIDIA GPU was found, so the NVIDIA portable build is installed and started with "
                         "--cpu: it runs on the processor. If this computer has an AMD Radeon or Intel Arc card, "
                         "choose it as the graphics card above to install the build that uses it.")
        elif build != "nvidia":
            notes.append(f"The {PORTABLE_WORDS[build]} portable build uses that card through its own PyTorch; "
                         "the app cannot read its memory, so the smallest model is planned.")
        return Source("portable", archive=spec, build=build), notes
    if release.git is not None:
        if git_found:
            return Source("git", git=release.git), notes
        if release.archive is None:
            return Source("git", git=release.git), [
                "git was not found on this computer; it is needed to fetch ComfyUI " + release.git.tag + "."]
        notes.append(f"git was not found on this computer, so ComfyUI cannot be fetched by its verified git "
                     f"commit. Install git (and run the setup again), or use the source archive "
                     f"{release.archive.name} with its SHA-256 pasted below.")
    if release.archive is None:
        raise ValueError(f"ComfyUI {release.version} has no source this platform can use")
    return Source("zip", archive=release.archive), notes


def _source_component(release: ComfyRelease, source: Source) -> Component:
    if source.kind == "git":
        pin = source.git
        assert pin is not None
        return Component("comfyui", f"ComfyUI {release.version} (git)", pin.size_bytes, pin.licence,
                         pin.source or pin.url, True, f"about {human_size(pin.size_bytes)}",
                         f"verified by git against commit {pin.commit[:7]}…")
    assert source.archive is not None
    title = (f"ComfyUI {release.version} (portable, {PORTABLE_WORDS.get(source.build, source.build)})"
             if source.kind == "portable" else f"ComfyUI {release.version}")
    return _file_component("comfyui", title, source.archive)


def make_plan(gpu: GpuFacts | None, free_bytes: int, catalog: Catalog, folder: str | Path,
              *, model_id: str | None = None, platform: str = sys.platform, git_found: bool = True,
              windows_build: str | None = None) -> Plan:
    """What to install in ``folder``; ``model_id`` overrides the choice for the card.

    ``platform`` is ``sys.platform``'s value for the computer planned for; ``git_found``
    whether git is on its PATH; ``windows_build`` the portable build the user chose.
    """
    release = catalog.latest
    source, source_notes = pick_source(release, gpu, platform=platform, git_found=git_found,
                                       windows_build=windows_build)
    torch, torch_note = pick_torch(catalog, gpu)
    cpu_only = torch.min_cuda is None and not (source.kind == "portable" and source.build != "nvidia")
    model = (catalog.model(model_id) if model_id else None) or pick_model(
        catalog, gpu, cpu_only=cpu_only or source.build in ("amd", "intel"))
    downloads = tuple(f for f in (source.archive, model.file, *model.pose) if f is not None)
    if source.brings_python:
        python = Component("python", "Python + PyTorch (in the portable build's python_embeded)", 0,
                           "BSD-3-Clause (PyTorch)", source.archive.source if source.archive else "", True,
                           "included", "inside the checked archive")
        python_bytes = 0
    else:
        python_bytes = torch.installed_bytes + catalog.requirements_bytes
        python = Component("python", f"Python environment with {torch.label}", python_bytes,
                           "BSD-3-Clause (PyTorch)", torch.index_url, True, f"about {human_size(python_bytes)}",
                           "checked by pip against the index")
    components = [
        _source_component(release, source),
        python,
        _file_component("model", model.title, model.file),
        *(_file_component("pose", f"Pose ControlNet for the Frames panel ({p.name})", p) for p in model.pose),
    ]
    # An archive is unpacked beside itself before it is deleted: count it twice. A portable
    # .7z unpacks to about 2.5 times its size (PyTorch and the CUDA libraries compress well).
    unpacked = 0
    if source.archive is not None:
        unpacked = int(source.archive.size_bytes * (2.5 if source.kind == "portable" else 1))
    fetched = source.git.size_bytes if source.git is not None and source.kind == "git" else 0
    needed = sum(f.size_bytes for f in downloads) + unpacked + fetched + python_bytes + MARGIN_BYTES
    lowvram = gpu is not None and not cpu_only and gpu.vram_gb < 6.5 + VRAM_SLACK_GB
    notes: list[str] = list(source_notes)
    if cpu_only:
        # The portable no-GPU note already said "no NVIDIA GPU": only the expected speed is added.
        portable_said_it = source.kind == "portable" and gpu is None
        notes.append(catalog.cpu_speed_note.split(". ", 1)[-1] if portable_said_it else catalog.cpu_speed_note)
        if gpu is not None and gpu.vram_gb < MIN_GPU_GB:
            notes.append(f"The {gpu.name} has {gpu.vram_gb:.1f} GB of VRAM, less than the {MIN_GPU_GB:g} GB "
                         "the smallest model needs, so the processor is used.")
    if torch_note and not source.brings_python:
        notes.append(torch_note)
    elif source.brings_python and gpu is not None and torch.min_cuda is None and gpu.vram_gb >= MIN_GPU_GB:
        notes.append(f"The NVIDIA driver {gpu.driver} supports CUDA {gpu.cuda_text}, which may be too old for the "
                     "PyTorch inside the portable build; if ComfyUI does not start, update the NVIDIA driver.")
    if lowvram:
        notes.append("ComfyUI will start with --lowvram so the model fits beside your desktop.")
    if model.pose_note:
        notes.append(model.pose_note)
    problems = [f"{f.name} has no pinned checksum in this version of the app (catalog as of {catalog.as_of}), "
                "so it will not be downloaded or run. Paste the SHA-256 shown on its release page below, or "
                "update the app." for f in downloads if not f.pinned]
    if source.kind == "git" and not git_found:
        problems.append("git is not installed (or not on PATH), and ComfyUI is fetched with git here. Install git "
                        "from your package manager or git-scm.com, then open this setup again.")
    if free_bytes < needed:
        problems.append(f"Not enough free space in {folder}: the setup needs about {human_size(needed)}, "
                        f"{human_size(free_bytes)} is free. Free some space or choose a folder on another disk.")
    device = describe_gpu(gpu)
    if source.build in ("amd", "intel"):
        device = (f"No NVIDIA GPU found; the {PORTABLE_WORDS[source.build]} portable build will use your "
                  f"{PORTABLE_WORDS[source.build]} card.")
    return Plan(gpu, device, release, torch, model, Path(folder), tuple(downloads), tuple(components),
                needed, free_bytes, lowvram, tuple(notes), tuple(problems), source, platform)
