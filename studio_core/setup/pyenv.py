"""The Python environment ComfyUI runs in: a venv with the PyTorch build the plan chose.

``pip install torch==X torchvision==Y --index-url <the build's index>`` (pip checks each
wheel against the sha256 the index lists), then ComfyUI's own ``requirements.txt``.

Test-only hook: ``base_site_packages`` writes a ``.pth`` into the new venv that adds an
existing environment's site-packages. The test suite points it at the CPU test server's
venv (``~/.cache/studio-test/comfy-venv``), so the same pip commands run for real but find
torch already satisfied instead of unpacking 5 GB of wheels on every test run. The app
never sets it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from studio_core.setup.catalog import TorchBuild
from studio_core.setup.errors import EnvironmentFailed

log = logging.getLogger(__name__)

VENV = "venv"
# A cold import of torch reads a few hundred MB from disk; on a slow disk that takes a while.
TORCH_CHECK_TIMEOUT_S = 180.0
TORCH_CHECK = "import torch, sys; print(torch.__version__)"


def venv_python(folder: Path) -> Path:
    return folder / VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def find_python(versions: tuple[str, ...]) -> list[str] | None:
    """A command that runs a base Python the venv can be made from; None when there is none."""
    if not getattr(sys, "frozen", False) and sys.version_info >= (3, 10):
        base = getattr(sys, "_base_executable", None) or sys.executable
        return [base]
    for v in versions:
        exe = shutil.which(f"python{v}")
        if exe:
            return [exe]
    if os.name == "nt" and shutil.which("py"):  # pragma: no cover - Windows launcher
        return ["py", f"-{versions[0]}"]
    return None


@dataclass
class PythonEnv:
    python: list[str] | None = None
    base_site_packages: Path | None = None  # test-only, see the module docstring
    versions: tuple[str, ...] = ("3.12", "3.11", "3.10")

    async def build(self, comfy_dir: Path, torch: TorchBuild, on_line: Callable[[str], None]) -> Path:
        py = self.python or find_python(self.versions)
        if not py:
            raise EnvironmentFailed("no base python", user_message=(
                "No Python was found to create ComfyUI's environment. Install Python "
                f"{self.versions[0]} from python.org (tick 'Add to PATH') and run the setup again."))
        await _run([*py, "-m", "venv", str(comfy_dir / VENV)], comfy_dir, on_line, "creating the venv")
        vpy = str(venv_python(comfy_dir))
        if self.base_site_packages is not None:
            purelib = await _capture([vpy, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
            Path(purelib.strip(), "_studio_base_env.pth").write_text(str(self.base_site_packages) + "\n")
        pip = [vpy, "-m", "pip", "install", "--disable-pip-version-check", "--no-input"]
        await _run([*pip, *torch.requirements, "--index-url", torch.index_url], comfy_dir, on_line,
                   f"installing {torch.label}")
        await self.install_requirements(comfy_dir, on_line)
        return Path(vpy)

    async def install_requirements(self, comfy_dir: Path, on_line: Callable[[str], None]) -> None:
        """ComfyUI's ``requirements.txt`` into the existing venv (also after an update changed it)."""
        req = comfy_dir / "requirements.txt"
        if req.exists():
            pip = [str(venv_python(comfy_dir)), "-m", "pip", "install", "--disable-pip-version-check", "--no-input"]
            await _run([*pip, "-r", str(req)], comfy_dir, on_line, "installing ComfyUI's requirements")


async def torch_check(python: Path, timeout: float = TORCH_CHECK_TIMEOUT_S) -> tuple[str | None, str]:
    """(torch's version, "") when ``python`` imports torch; (None, why in plain words) when not.

    Files can all match their sums and the environment still be broken (a half-finished pip,
    an antivirus quarantining a DLL), so repair asks the interpreter itself.
    """
    if not python.exists():
        return None, f"ComfyUI's Python ({python}) is missing."
    try:
        proc = await asyncio.create_subprocess_exec(str(python), "-c", TORCH_CHECK, stdin=subprocess.DEVNULL,
                                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except OSError as exc:
        return None, f"ComfyUI's Python ({python}) could not be run: {exc.strerror or exc}."
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        return None, f"Importing PyTorch in ComfyUI's Python did not finish within {timeout:.0f} s."
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    text = out.decode(errors="replace").strip()
    lines = text.splitlines()
    if proc.returncode == 0 and lines:
        return lines[-1].strip(), ""
    tail = "\n".join(lines[-4:]) or "(no output)"
    return None, f"PyTorch does not import in ComfyUI's Python (exit code {proc.returncode}):\n{tail}"


async def _capture(argv: list[str]) -> str:
    proc = await asyncio.create_subprocess_exec(*argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, _ = await proc.communicate()
    if proc.returncode:
        raise EnvironmentFailed(f"{argv}: {out.decode(errors='replace')}")
    return out.decode()


async def _run(argv: list[str], cwd: Path, on_line: Callable[[str], None], what: str) -> None:
    on_line(f"$ {' '.join(argv)}")
    env = dict(os.environ, PYTHONUNBUFFERED="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    proc = await asyncio.create_subprocess_exec(*argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                                stderr=subprocess.STDOUT, env=env)
    tail: list[str] = []
    try:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            tail = (tail + [line])[-12:]
            on_line(line)
        rc = await proc.wait()
    except BaseException:  # cancelled: pip must not go on writing into a folder about to be removed
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    if rc:
        text = "\n".join(tail)
        raise EnvironmentFailed(f"{what}: exit {rc}\n{text}", user_message=(
            f"The Python environment for ComfyUI could not be made ({what} failed with exit code {rc}). "
            f"Last lines:\n{text}"))
