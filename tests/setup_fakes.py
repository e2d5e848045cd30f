"""Stand-ins for the slow parts of a local setup: the pip step and the ComfyUI release.

``FakeEnv`` builds a real venv (copied from one made once per test session with
``--without-pip``) holding a stub ``torch`` package, so the repair's torch check and
``ManagedServer`` really run its interpreter; pip is what it leaves out (the real one is in
test_setup_real_install.py). ``release_zip`` makes a release-style archive whose
``main.py`` is a small HTTP server answering ``/system_stats`` with its version, or one that
exits at once (``broken=True``), so an update can really be started and fail to start.
"""

from __future__ import annotations

import atexit
import io
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile
from pathlib import Path

from studio_core.setup.pyenv import VENV, venv_python

_template: Path | None = None
_lock = threading.Lock()

FAKE_TORCH_VERSION = "2.14.1+fake"


def _site_packages(venv: Path) -> Path:
    if sys.platform == "win32":
        return venv / "Lib" / "site-packages"
    return venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


def template_venv() -> Path:
    """A venv without pip, made once per session and copied for each test (far cheaper than ``-m venv``)."""
    global _template
    with _lock:
        if _template is None or not _template.exists():
            home = Path(tempfile.mkdtemp(prefix="studio-fake-venv-"))
            atexit.register(shutil.rmtree, home, True)
            target = home / "venv"
            base = getattr(sys, "_base_executable", None) or sys.executable
            subprocess.run([base, "-m", "venv", "--without-pip", str(target)], check=True)
            assert _site_packages(target).is_dir()
            _template = target
        return _template


class FakeEnv:
    """Stands in for the venv + pip step: a real interpreter, a stub torch, no downloads."""

    def __init__(self):
        self.calls = 0
        self.requirement_runs = 0

    async def build(self, comfy_dir: Path, torch, on_line) -> Path:
        self.calls += 1
        shutil.copytree(template_venv(), comfy_dir / VENV, symlinks=True)
        pkg = _site_packages(comfy_dir / VENV) / "torch"
        pkg.mkdir()
        (pkg / "__init__.py").write_text(f"__version__ = {FAKE_TORCH_VERSION!r}\n")
        on_line(f"pip install {' '.join(torch.requirements)} --index-url {torch.index_url}")
        return venv_python(comfy_dir)

    async def install_requirements(self, comfy_dir: Path, on_line) -> None:
        self.requirement_runs += 1
        on_line(f"pip install -r {comfy_dir / 'requirements.txt'}")


def torch_dir(folder: Path) -> Path:
    return _site_packages(folder / VENV) / "torch"


SERVER_MAIN = '''
import argparse, json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = {version!r}
p = argparse.ArgumentParser()
p.add_argument("--listen", default="127.0.0.1")
p.add_argument("--port", type=int, default=8188)
args, _ = p.parse_known_args()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        if self.path != "/system_stats":
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = json.dumps({{"system": {{"comfyui_version": VERSION}}, "devices": [{{"name": "cpu", "type": "cpu"}}]}})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())


print("Starting server", flush=True)
ThreadingHTTPServer((args.listen, args.port), Handler).serve_forever()
'''

BROKEN_MAIN = '''
import sys
print("ModuleNotFoundError: No module named 'comfy_new_dependency'", flush=True)
sys.exit(1)
'''


def release_zip(version: str, *, broken: bool = False, example_node: str | None = None,
                requirements: str = "torch\nPillow\n") -> bytes:
    """A GitHub-style release zip (one top folder) of a ComfyUI-shaped tree."""
    buf = io.BytesIO()
    top = f"ComfyUI-{version}"
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{top}/main.py", BROKEN_MAIN if broken else SERVER_MAIN.format(version=version))
        zf.writestr(f"{top}/nodes.py", f"# nodes of {version}\n")
        zf.writestr(f"{top}/comfy/__init__.py", "")
        zf.writestr(f"{top}/comfy/version.py", f"VERSION = {version!r}\n")
        zf.writestr(f"{top}/requirements.txt", requirements)
        zf.writestr(f"{top}/models/checkpoints/put_checkpoints_here", "")
        zf.writestr(f"{top}/models/configs/v1-inference.yaml", f"# config as of {version}\n")
        zf.writestr(f"{top}/custom_nodes/websocket_image_save.py", example_node or f"# example node {version}\n")
        zf.writestr(f"{top}/output/_output_images_will_be_put_here", "")
        zf.writestr(f"{top}/input/example.png", b"not really a png")
    return buf.getvalue()
