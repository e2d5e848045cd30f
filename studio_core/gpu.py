"""Read the local NVIDIA GPU through NVML (nvidia-ml-py): VRAM, utilisation, temperature.

``probe()`` blocks for a few milliseconds (a driver call); call it through
``asyncio.to_thread``. It returns ``None`` when there is no usable NVIDIA driver: NVML
raises ``NVMLError_LibraryNotFound`` without one, and other ``NVMLError`` subclasses
(DriverNotLoaded, NoPermission…) when it is installed but unusable, so the base class is
caught. ``nvmlShutdown`` is called only after a successful ``nvmlInit``: otherwise it
raises ``NVMLError_Uninitialized``.

Run ``python -m studio_core.gpu [INDEX]`` to print what it reads (compare with ``nvidia-smi``).
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from typing import Any, Iterator

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class VramInfo:
    name: str
    driver: str
    total_mib: float
    used_mib: float
    free_mib: float
    utilisation_pct: int | None = None
    temperature_c: int | None = None
    index: int = 0
    source: str = "nvml"  # or "system_stats"

    @property
    def used_fraction(self) -> float:
        return self.used_mib / self.total_mib if self.total_mib else 0.0


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@contextlib.contextmanager
def _nvml() -> Iterator[Any]:
    """pynvml, initialised for the block, or None when there is no usable driver.

    Shut down only after a successful init (otherwise NVML raises Uninitialized); an
    ``NVMLError`` inside the block is the caller's to turn into "can't be read"."""
    try:
        import pynvml
    except ImportError:
        yield None
        return
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        yield None
        return
    try:
        yield pynvml
    finally:
        with contextlib.suppress(pynvml.NVMLError):
            pynvml.nvmlShutdown()


def probe(index: int = 0) -> VramInfo | None:
    """The GPU at ``index``, or None when NVML can't be used (no driver, no such GPU)."""
    with _nvml() as nvml:
        if nvml is None:
            return None
        try:
            if index >= nvml.nvmlDeviceGetCount():
                return None
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            mem = nvml.nvmlDeviceGetMemoryInfo(handle)
            name = _text(nvml.nvmlDeviceGetName(handle))
            driver = _text(nvml.nvmlSystemGetDriverVersion())
            util: int | None
            temp: int | None
            try:
                util = int(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
            except nvml.NVMLError:  # not supported on some laptop GPUs
                util = None
            try:
                temp = int(nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU))
            except nvml.NVMLError:
                temp = None
            return VramInfo(name=name, driver=driver, total_mib=mem.total / MIB, used_mib=mem.used / MIB,
                            free_mib=mem.free / MIB, utilisation_pct=util, temperature_c=temp, index=index)
        except nvml.NVMLError:
            return None


def device_count() -> int | None:
    """How many NVIDIA GPUs NVML sees; None when there is no usable driver (blocking, like probe)."""
    with _nvml() as nvml:
        if nvml is None:
            return None
        try:
            return int(nvml.nvmlDeviceGetCount())
        except nvml.NVMLError:
            return None


def from_system_stats(stats: dict) -> VramInfo | None:
    """The first CUDA-like device of a ComfyUI ``/system_stats`` reply; None for a CPU-only server."""
    devices = stats.get("devices") if isinstance(stats, dict) else None
    if not isinstance(devices, list):
        return None
    for dev in devices:
        if not isinstance(dev, dict) or dev.get("type") == "cpu":
            continue
        total = dev.get("vram_total") or 0
        free = dev.get("vram_free") or 0
        if not isinstance(total, (int, float)) or not isinstance(free, (int, float)) or total <= 0:
            continue
        name = str(dev.get("name", "GPU"))
        # ComfyUI names CUDA devices "cuda:0 NVIDIA GeForce RTX 3050 : cudaMallocAsync".
        if name.startswith("cuda:"):
            name = name.split(" ", 1)[-1].rsplit(" : ", 1)[0]
        return VramInfo(name=name, driver="", total_mib=total / MIB, used_mib=(total - free) / MIB,
                        free_mib=free / MIB, index=int(dev.get("index") or 0), source="system_stats")
    return None


def describe(info: VramInfo | None) -> str:
    if info is None:
        return "no NVIDIA driver found (NVML is not available): VRAM can't be read on this computer"
    parts = [f"GPU {info.index}: {info.name}"]
    if info.driver:
        parts.append(f"driver {info.driver}")
    parts.append(f"VRAM {info.used_mib:.0f} / {info.total_mib:.0f} MiB used ({info.free_mib:.0f} MiB free)")
    if info.utilisation_pct is not None:
        parts.append(f"utilisation {info.utilisation_pct}%")
    if info.temperature_c is not None:
        parts.append(f"temperature {info.temperature_c} °C")
    return ", ".join(parts)


USAGE = "usage: python -m studio_core.gpu [INDEX]\n  INDEX: which NVIDIA GPU to read, 0 (the default) for the first"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) > 1 or (argv and not argv[0].isdigit()):
        if argv and argv[0] in ("-h", "--help"):
            print(USAGE)
            return 0
        print(f"{USAGE}\nnot a GPU number: {' '.join(argv)!r}", file=sys.stderr)
        return 2
    index = int(argv[0]) if argv else 0
    info = probe(index)
    if info is None:
        count = device_count()
        # No driver and "no such GPU" both make probe() return None; only the count tells them apart.
        if count is not None and index >= count:
            print(f"there is no GPU {index} (found {count}; numbers start at 0)")
            return 1
    print(describe(info))
    if info is not None:
        from studio_core.hardware.profiles import profile_for_total

        prof = profile_for_total(int(info.total_mib))
        print(f"profile: {prof.name}, safe budget {prof.safe_mib} MiB, max batch {prof.max_batch}, "
              f"server flags: {' '.join(prof.server_flags())}")
    return 0 if info is not None else 1


if __name__ == "__main__":
    raise SystemExit(main())
