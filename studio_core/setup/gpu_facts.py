"""What the setup needs to know about the card: name, VRAM, driver and the CUDA it supports.

``read()`` is blocking (NVML driver calls); call it through ``asyncio.to_thread``. NVML's
``nvmlSystemGetCudaDriverVersion`` gives the newest CUDA the *driver* supports (e.g. 12040 for
12.4); the PyTorch build is chosen against that, not against an installed CUDA toolkit,
which PyTorch wheels do not use.
"""

from __future__ import annotations

from dataclasses import dataclass

from studio_core import gpu


@dataclass(frozen=True, slots=True)
class GpuFacts:
    name: str
    vram_mib: int
    driver: str
    cuda: tuple[int, int] | None  # None: NVML did not say

    @property
    def vram_gb(self) -> float:
        return self.vram_mib / 1024

    @property
    def cuda_text(self) -> str:
        return f"{self.cuda[0]}.{self.cuda[1]}" if self.cuda else "unknown"


def cuda_from_nvml(value: int) -> tuple[int, int]:
    return value // 1000, (value % 1000) // 10


def read(index: int = 0) -> GpuFacts | None:
    """The card at ``index``; None without a usable NVIDIA driver."""
    info = gpu.probe(index)
    if info is None:
        return None
    cuda: tuple[int, int] | None = None
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            cuda = cuda_from_nvml(int(pynvml.nvmlSystemGetCudaDriverVersion()))
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # an old driver without the call: the plan then says "unknown"
        cuda = None
    return GpuFacts(info.name, int(info.total_mib), info.driver, cuda)
