"""Unpack a release zip (blocking; run in a thread) and hash what it put down.

GitHub's release archives hold one top folder (``ComfyUI-0.3.43/``); it is stripped so the
install folder itself holds ``main.py``. Names that would land outside the target (``..``,
absolute paths) are refused rather than skipped: a crafted archive is not a ComfyUI.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import zipfile
from pathlib import Path, PurePosixPath

from studio_core.setup.errors import BadArchive

CHUNK = 1024 * 1024


def _common_top(names: list[str]) -> str:
    tops = {PurePosixPath(n).parts[0] for n in names if n.strip("/")}
    if len(tops) == 1:
        top = tops.pop()
        if any(len(PurePosixPath(n).parts) > 1 for n in names):
            return top
    return ""


def unpack(archive: Path, dest: Path) -> dict[str, str]:
    """Extract ``archive`` into ``dest``; returns {relative posix path: sha256} of every file."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BadArchive(str(exc), user_message=f"{archive.name} is not a readable zip archive ({exc}).") from None
    hashes: dict[str, str] = {}
    with zf:
        names = zf.namelist()
        top = _common_top(names)
        root = dest.resolve()
        for info in zf.infolist():
            rel = PurePosixPath(info.filename)
            if top:
                rel = PurePosixPath(*rel.parts[1:]) if len(rel.parts) > 1 else PurePosixPath()
            if not rel.parts:
                continue
            target = (dest / Path(*rel.parts)).resolve()
            if rel.is_absolute() or ".." in rel.parts or not target.is_relative_to(root):
                raise BadArchive(f"unsafe name {info.filename!r}",
                                 user_message=f"{archive.name} holds a file that would land outside the install "
                                              f"folder ({info.filename}); it was not unpacked.")
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            h = hashlib.sha256()
            with zf.open(info) as src, open(target, "wb") as out:
                while block := src.read(CHUNK):
                    out.write(block)
                    h.update(block)
            mode = (info.external_attr >> 16) & 0o777
            if mode & 0o100:
                target.chmod(target.stat().st_mode | 0o111)
            hashes[rel.as_posix()] = h.hexdigest()
    return hashes


def extract_one(archive: Path, rel: str, dest: Path) -> None:
    """Put back one file of the archive (repair), with the same top folder stripped."""
    with zipfile.ZipFile(archive) as zf:
        top = _common_top(zf.namelist())
        name = f"{top}/{rel}" if top else rel
        target = dest / Path(*PurePosixPath(rel).parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        with zf.open(name) as src, open(target, "wb") as out:
            shutil.copyfileobj(src, out, CHUNK)


def sha256_of(path: Path) -> str | None:
    """The file's sum; None when it is missing or unreadable."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while block := f.read(CHUNK):
                h.update(block)
    except OSError:
        return None
    return h.hexdigest()


def hash_tree(root: Path, skip: tuple[str, ...] = (".git",)) -> dict[str, str]:
    """{relative posix path: sha256} of every file under ``root`` (a git checkout), ``skip`` folders left out."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in skip]
        for name in filenames:
            path = Path(dirpath, name)
            if path.is_symlink():
                continue
            sha = sha256_of(path)
            if sha is not None:
                out[path.relative_to(root).as_posix()] = sha
    return out
