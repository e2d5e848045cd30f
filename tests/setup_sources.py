"""Test sources for the two verifiable ways to get ComfyUI: a Windows-portable-shaped ``.7z`` and a git repo.

``portable_7z`` builds, with py7zr, the layout of ComfyUI's Windows portable release: one top
folder holding ``python_embeded/python.exe`` and ``ComfyUI/main.py``. The ``python.exe`` is a
POSIX shell launcher for this test run's own interpreter with the archive's
``python_embeded/Lib/site-packages`` (a stub ``torch``) on its path, so the managed server and
repair's torch check really run "the portable build's Python". ``with_traversal`` rewrites one
member's name in the archive header to ``../`` (py7zr refuses to write such a name) and fixes
the header CRCs, as a crafted archive would. ``git_repo`` makes a bare repo with a tag.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

from tests.setup_fakes import BROKEN_MAIN, SERVER_MAIN

TOP = "ComfyUI_windows_portable"
PORTABLE_TORCH = "2.14.1+portable"
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.invalid", "GIT_CONFIG_NOSYSTEM": "1"}

LAUNCHER = '''#!/bin/sh
here="$(cd "$(dirname "$0")" && pwd)"
PYTHONPATH="$here/Lib/site-packages" exec "{python}" "$@"
'''


def portable_tree(root: Path, version: str = "0.0.9-portable", *, filler: bytes = b"", broken: bool = False) -> Path:
    """The portable layout under ``root/TOP`` on disk (files with their modes, for py7zr to record)."""
    top = root / TOP
    files = {
        "python_embeded/python.exe": LAUNCHER.format(python=getattr(sys, "_base_executable", None) or sys.executable),
        "python_embeded/Lib/site-packages/torch/__init__.py": f"__version__ = {PORTABLE_TORCH!r}\n",
        "ComfyUI/main.py": BROKEN_MAIN if broken else SERVER_MAIN.format(version=version),
        "ComfyUI/models/configs/v1-inference.yaml": f"# config as of {version}\n",
        "ComfyUI/custom_nodes/websocket_image_save.py": f"# example node {version}\n",
        "ComfyUI/nodes.py": "# nodes\n" * 50,
        "ComfyUI/comfy/__init__.py": "",
        "ComfyUI/models/checkpoints/put_checkpoints_here": "",
        "ComfyUI/output/_output_images_will_be_put_here": "",
        "run_nvidia_gpu.bat": ".\\python_embeded\\python.exe -s ComfyUI\\main.py --windows-standalone-build\n",
        "README_VERY_IMPORTANT.txt": "test portable build\n",
    }
    for rel, text in files.items():
        p = top / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    (top / "python_embeded/python.exe").chmod(0o755)
    if filler:
        (top / "python_embeded/Lib/site-packages/torch/lib.bin").write_bytes(filler)
    return top


def portable_7z(work: Path, *, filler: bytes = b"", extra: dict[str, bytes] | None = None,
                version: str = "0.0.9-portable", broken: bool = False) -> bytes:
    import py7zr

    src = work / f"portable-src-{version}{'-broken' if broken else ''}"
    top = portable_tree(src, version, filler=filler, broken=broken)
    out = src.with_suffix(".7z")
    with py7zr.SevenZipFile(out, "w") as z:
        z.set_encoded_header_mode(False)  # names stay readable in the header (with_traversal edits them)
        for path in sorted(top.rglob("*")):
            if path.is_file():
                z.write(path, f"{TOP}/{path.relative_to(top).as_posix()}")
        for name, data in (extra or {}).items():
            z.writestr(data, name)
    return out.read_bytes()


def with_traversal(data: bytes, safe_name: str, evil_name: str) -> bytes:
    """``data`` with member ``safe_name`` renamed to ``evil_name`` (same length) and the CRCs fixed."""
    assert len(safe_name) == len(evil_name)
    old, new = safe_name.encode("utf-16-le"), evil_name.encode("utf-16-le")
    assert data.count(old) == 1, "the header must hold the name once, unencoded"
    out = bytearray(data.replace(old, new))
    next_offset, next_size = struct.unpack_from("<QQ", out, 12)
    header = bytes(out[32 + next_offset:32 + next_offset + next_size])
    struct.pack_into("<I", out, 28, zlib.crc32(header))
    struct.pack_into("<I", out, 8, zlib.crc32(bytes(out[12:32])))
    return bytes(out)


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}).stdout.strip()


def git_repo(work: Path, tag: str, version: str = "0.0.9-git") -> tuple[Path, str]:
    """A bare repo at ``work/comfy.git`` with a ComfyUI-shaped tree tagged ``tag``; returns (repo, commit)."""
    src = work / "git-src"
    src.mkdir(parents=True)
    git("init", "-q", "-b", "master", cwd=src)
    (src / "main.py").write_text(SERVER_MAIN.format(version=version))
    (src / "nodes.py").write_text("# nodes\n" * 50)
    (src / "comfy").mkdir()
    (src / "comfy/__init__.py").write_text("")
    (src / "requirements.txt").write_text("torch\n")
    (src / "models/checkpoints").mkdir(parents=True)
    (src / "models/checkpoints/put_checkpoints_here").write_text("")
    git("add", "-A", cwd=src)
    git("commit", "-q", "-m", "release", cwd=src)
    git("tag", tag, cwd=src)
    commit = git("rev-parse", "HEAD", cwd=src)
    bare = work / "comfy.git"
    git("clone", "-q", "--bare", str(src), str(bare), cwd=work)
    return bare, commit


def move_tag(work: Path, bare: Path, tag: str) -> str:
    """Point ``tag`` in ``bare`` at a new commit (what a force-pushed tag upstream looks like); returns it."""
    src = work / "git-src"
    (src / "nodes.py").write_text("# something else\n")
    git("commit", "-q", "-am", "not the release", cwd=src)
    git("tag", "-f", tag, cwd=src)
    git("push", "-q", "--force", str(bare), f"refs/tags/{tag}", cwd=src)
    return git("rev-parse", "HEAD", cwd=src)


def git_release(work: Path, bare: Path, tag: str, version: str, *, requirements: str | None = None) -> str:
    """The next release in the repo ``git_repo`` made: main.py answers ``version``, tagged ``tag`` and pushed."""
    src = work / "git-src"
    (src / "main.py").write_text(SERVER_MAIN.format(version=version))
    (src / "nodes.py").write_text(f"# nodes of {version}\n")
    if requirements is not None:
        (src / "requirements.txt").write_text(requirements)
    git("commit", "-q", "-am", f"release {version}", cwd=src)
    git("tag", tag, cwd=src)
    git("push", "-q", str(bare), f"refs/tags/{tag}", cwd=src)
    return git("rev-parse", "HEAD", cwd=src)
