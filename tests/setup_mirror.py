"""A loopback download mirror for the local-setup tests: files, HTTP Range, broken connections.

``SetupMirror`` serves bytes by path from a thread (``http.server``), answers ``Range:
bytes=N-`` with 206, can cut a response after N body bytes once (``drop_after``), and logs
every request (path, Range header, status, body bytes sent). ``comfy_archive()`` zips the
CPU test server's ComfyUI (tools/comfy_test_server.py) once into the test cache, under one
top folder as GitHub's release archives have. Qt-free: core and GUI tests share it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import random
import sys
import threading
import zipfile
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def server_tool():
    spec = importlib.util.spec_from_file_location("comfy_test_server", ROOT / "tools" / "comfy_test_server.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("comfy_test_server", mod)
    spec.loader.exec_module(mod)
    return mod


TOOL = server_tool()
# Resolved at import: the autouse isolation fixture later points XDG_CACHE_HOME at a temp folder.
CACHE = TOOL.cache_root()
_SKIP_TOP = {"output", "temp", "user", "input"}


def comfy_archive() -> Path:
    """A release-style zip of the test server's ComfyUI (built once; installs the server if needed)."""
    with_env = os.environ.get("STUDIO_TEST_CACHE")
    os.environ["STUDIO_TEST_CACHE"] = str(CACHE)
    try:
        src = TOOL.install()
    finally:
        if with_env is None:
            os.environ.pop("STUDIO_TEST_CACHE", None)
        else:
            os.environ["STUDIO_TEST_CACHE"] = with_env
    out = CACHE / "setup-mirror" / "ComfyUI-test.zip"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(src.rglob("*")):
            rel = path.relative_to(src)
            if "__pycache__" in rel.parts or (rel.parts[0] in _SKIP_TOP and len(rel.parts) > 1) or path.is_dir():
                continue
            if rel.name == "extra_model_paths.yaml" or path.stat().st_size > 8 * 1024 * 1024:
                continue  # the test server's own model files are no part of a release
            zf.write(path, f"ComfyUI-test/{rel.as_posix()}")
        for top in sorted(_SKIP_TOP):
            zf.writestr(f"ComfyUI-test/{top}/", "")
    tmp.replace(out)
    return out


def server_site_packages() -> Path:
    venv = CACHE / "comfy-venv"
    return next((venv / "lib").glob("python3*/site-packages"))


def fake_safetensors(size: int = 300_000, seed: int = 7) -> bytes:
    """A tiny .safetensors file: a JSON header and one F32 tensor of random weights."""
    import json
    import struct

    rng = random.Random(seed)
    n = size // 4
    header = json.dumps({"w": {"dtype": "F32", "shape": [n], "data_offsets": [0, n * 4]}}).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + b"".join(struct.pack("<f", rng.uniform(-1, 1)) for _ in range(n))


@dataclass
class Hit:
    path: str
    range: str | None
    status: int
    sent: int


class SetupMirror:
    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.drop_after: dict[str, int] = {}  # path -> body bytes to send once before hanging up
        self.ignore_range = False
        self.offline = False  # hang up on every request without an answer (the cable pulled)
        self.offline_after_drop = False
        self.hold_after: dict[str, int] = {}  # path -> body bytes to send, then wait for `release`
        self.release = threading.Event()
        self.hits: list[Hit] = []
        self._server: ThreadingHTTPServer | None = None

    def add(self, path: str, data: bytes) -> str:
        self.files[path] = data
        return self.url(path)

    def url(self, path: str) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def sent(self, path: str) -> int:
        return sum(h.sent for h in self.hits if h.path == path)

    def __enter__(self) -> SetupMirror:
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                if mirror.offline:
                    mirror.hits.append(Hit(self.path, self.headers.get("Range"), 0, 0))
                    self.close_connection = True
                    return
                data = mirror.files.get(self.path)
                rng = self.headers.get("Range")
                if data is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    mirror.hits.append(Hit(self.path, rng, 404, 0))
                    return
                start = 0
                if rng and not mirror.ignore_range and rng.startswith("bytes="):
                    start = int(rng[6:].split("-")[0])
                if start >= len(data) and start:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    mirror.hits.append(Hit(self.path, rng, 416, 0))
                    return
                body = data[start:]
                status = 206 if start else 200
                self.send_response(status)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                held = mirror.hold_after.pop(self.path, None)
                if held is not None:  # a slow server: part of the file, then nothing until released
                    self.wfile.write(body[:held])
                    self.wfile.flush()
                    mirror.release.wait(30)
                    body = body[held:]
                cut = mirror.drop_after.pop(self.path, None)
                if cut is not None:
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    mirror.hits.append(Hit(self.path, rng, status, cut))
                    mirror.offline = mirror.offline_after_drop
                    self.close_connection = True
                    return
                self.wfile.write(body)
                mirror.hits.append(Hit(self.path, rng, status, len(body)))

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        assert self._server is not None
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


def catalog_dict(mirror: SetupMirror, *, archive: bytes, model: bytes, pose: bytes,
                 model_sha: str | None = None, torch_index: str = "file:///opt/pypi-more/simple",
                 archive2: bytes | None = None) -> dict:
    """A catalog with the same schema as resources/local_setup.json, every URL on the mirror.

    ``archive2`` is the second (newer) release; by default the same bytes again.
    """
    def entry(name: str, path: str, data: bytes, dest: str = "", sha: str | None = None) -> dict:
        return {"name": name, "url": mirror.add(path, data), "size_bytes": len(data),
                "sha256": sha or hashlib.sha256(data).hexdigest(), "dest": dest, "licence": "test",
                "source": mirror.url("/")}

    return {
        "as_of": "2026-09-01",
        "comfyui": [{"version": "0.0.1-test", "archive": entry("ComfyUI-test.zip", "/comfy/ComfyUI-test.zip", archive)},
                    {"version": "0.0.2-test", "archive": entry("ComfyUI-test2.zip", "/comfy/ComfyUI-test2.zip",
                                                               archive if archive2 is None else archive2),
                     "changes": "the same files again"}],
        "torch": [{"id": "cpu", "min_cuda": None, "torch": "2.14.1", "torchvision": "0.29.1",
                   "index_url": torch_index, "installed_bytes": 1000, "label": "PyTorch 2.14.1 (local index)"}],
        "requirements_bytes": 1000,
        "cpu_speed_note": "test: runs on the processor",
        "python": {"versions": ["3.11"]},
        "models": [{"id": "tiny", "title": "Tiny random model", "family": "sd15", "min_vram_gb": 0,
                    "file": entry("tiny.safetensors", "/models/tiny.safetensors", model,
                                  "models/checkpoints/tiny.safetensors", model_sha),
                    "pose": [entry("pose.safetensors", "/models/pose.safetensors", pose,
                                   "models/controlnet/pose.safetensors")]}],
    }
