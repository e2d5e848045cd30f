from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from studio_core import gpu

RAW = Path(__file__).resolve().parents[1] / "data" / "comfy_GET_system_stats.txt"  # recorded from ComfyUI 0.3.64


class FakeNvml:
    """pynvml's surface as probe() uses it; records calls to check init/shutdown pairing."""

    class NVMLError(Exception):
        pass

    class NVMLError_LibraryNotFound(NVMLError):
        pass

    NVML_TEMPERATURE_GPU = 0

    def __init__(self, *, init_error=None, util_error=False):
        self.calls: list[str] = []
        self.init_error = init_error
        self.util_error = util_error

    def nvmlInit(self):
        self.calls.append("init")
        if self.init_error:
            raise self.init_error

    def nvmlShutdown(self):
        self.calls.append("shutdown")

    def nvmlDeviceGetCount(self):
        return 1

    def nvmlDeviceGetHandleByIndex(self, i):
        return object()

    def nvmlDeviceGetMemoryInfo(self, h):
        return SimpleNamespace(total=6144 * 2**20, used=2150 * 2**20, free=3994 * 2**20)

    def nvmlDeviceGetName(self, h):
        return b"NVIDIA GeForce RTX 3050"

    def nvmlSystemGetDriverVersion(self):
        return "560.94"

    def nvmlDeviceGetUtilizationRates(self, h):
        if self.util_error:
            raise self.NVMLError("not supported")
        return SimpleNamespace(gpu=87)

    def nvmlDeviceGetTemperature(self, h, sensor):
        return 64


def test_probe_without_driver_returns_none():
    # This machine has no NVIDIA driver: the real pynvml raises NVMLError_LibraryNotFound.
    assert gpu.probe() is None


def test_probe_reads_everything(monkeypatch):
    fake = FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    info = gpu.probe()
    assert info is not None
    assert info.name == "NVIDIA GeForce RTX 3050" and info.driver == "560.94"
    assert info.total_mib == 6144 and info.used_mib == 2150 and info.free_mib == 3994
    assert info.utilisation_pct == 87 and info.temperature_c == 64
    assert fake.calls == ["init", "shutdown"]
    assert "RTX 3050" in gpu.describe(info) and "87%" in gpu.describe(info)


def test_failed_init_never_shuts_down(monkeypatch):
    fake = FakeNvml(init_error=FakeNvml.NVMLError_LibraryNotFound("NVML Shared Library Not Found"))
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    assert gpu.probe() is None
    assert fake.calls == ["init"]


@pytest.mark.parametrize("read", [gpu.probe, gpu.device_count])
def test_every_reader_pairs_init_with_shutdown_even_when_the_driver_fails_midway(monkeypatch, read):
    fake = FakeNvml()

    def broken(*args):
        raise FakeNvml.NVMLError("GPU is lost")

    fake.nvmlDeviceGetCount = broken
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    assert read() is None
    assert fake.calls == ["init", "shutdown"]
    fake = FakeNvml(init_error=FakeNvml.NVMLError_LibraryNotFound("NVML Shared Library Not Found"))
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    assert read() is None and fake.calls == ["init"]


def test_unsupported_utilisation_is_none(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(util_error=True))
    info = gpu.probe()
    assert info is not None and info.utilisation_pct is None


def test_cli_says_no_driver_plainly():
    out = subprocess.run([sys.executable, "-m", "studio_core.gpu"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "no NVIDIA driver found" in out.stdout


def test_system_stats_cpu_and_cuda():
    body = RAW.read_text().split("\n\n", 1)[1] if RAW.exists() else json.dumps(
        {"devices": [{"name": "cpu", "type": "cpu", "vram_total": 1, "vram_free": 1}]})
    assert gpu.from_system_stats(json.loads(body)) is None  # CPU-only server
    cuda = {"devices": [{"name": "cuda:0 NVIDIA GeForce RTX 3050 : cudaMallocAsync", "type": "cuda", "index": 0,
                         "vram_total": 6442450944, "vram_free": 4294967296}]}
    info = gpu.from_system_stats(cuda)
    assert info.name == "NVIDIA GeForce RTX 3050" and info.total_mib == 6144 and info.used_mib == 2048
    assert info.source == "system_stats"
    assert gpu.from_system_stats({"nonsense": 1}) is None


@pytest.mark.parametrize("raw", [None, [], {"devices": "x"}, {"devices": [{"type": "cuda", "vram_total": "big"}]}])
def test_system_stats_garbage(raw):
    assert gpu.from_system_stats(raw) is None


@pytest.mark.parametrize("args", [["abc"], ["-1"], ["1.5"], ["0", "1"]])
def test_cli_bad_argument_is_a_usage_message_not_a_traceback(args):
    out = subprocess.run([sys.executable, "-m", "studio_core.gpu", *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "usage: python -m studio_core.gpu" in out.stderr and "Traceback" not in out.stderr


def test_cli_names_a_gpu_that_is_not_there(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml())  # one GPU
    assert gpu.main(["3"]) == 1
    assert "there is no GPU 3 (found 1" in capsys.readouterr().out
    assert gpu.main(["0"]) == 0
    assert "RTX 3050" in capsys.readouterr().out


def test_cli_without_driver_still_says_no_driver_for_any_index(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(init_error=FakeNvml.NVMLError_LibraryNotFound("not found")))
    assert gpu.main(["3"]) == 1
    assert "no NVIDIA driver found" in capsys.readouterr().out

