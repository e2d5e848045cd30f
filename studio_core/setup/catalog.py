"""The pinned sources of a local setup (``resources/local_setup.json``) as plain data."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from studio_core.resources import resource_path

CATALOG_FILE = "local_setup.json"


@dataclass(frozen=True, slots=True)
class FileSpec:
    name: str
    url: str
    size_bytes: int
    sha256: str | None
    dest: str = ""  # relative to the install folder; "" for an archive
    licence: str = ""
    source: str = ""
    size_exact: bool = True
    sha256_from: str | None = None
    sum_by_user: bool = False  # the sum was pasted by the user (entered_sums), not shipped with the app

    @property
    def pinned(self) -> bool:
        return bool(self.sha256)

    @property
    def sum_source(self) -> str:
        """Where the sum this file is checked against came from, in words for the plan."""
        if not self.sha256:
            return "no checksum"
        return "entered by you" if self.sum_by_user else "pinned in the app"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FileSpec:
        sha = d.get("sha256")
        return cls(name=str(d["name"]), url=str(d["url"]), size_bytes=int(d.get("size_bytes") or 0),
                   sha256=str(sha).lower() if sha else None, dest=str(d.get("dest", "")),
                   licence=str(d.get("licence", "")), source=str(d.get("source", "")),
                   size_exact=bool(d.get("size_exact", True)), sha256_from=d.get("sha256_from"))


@dataclass(frozen=True, slots=True)
class GitPin:
    """A release as a git commit: git itself checks every object against the commit id."""

    url: str
    tag: str
    commit: str  # 40 hex digits; what the tag must resolve to
    size_bytes: int  # about: the shallow clone plus its checkout, for the disk plan
    licence: str = ""
    source: str = ""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GitPin:
        commit = str(d["commit"]).lower()
        if len(commit) != 40 or any(c not in "0123456789abcdef" for c in commit):
            raise ValueError(f"git commit {commit!r} is not a full 40-digit commit id")
        return cls(str(d["url"]), str(d["tag"]), commit, int(d.get("size_bytes") or 0),
                   str(d.get("licence", "")), str(d.get("source", "")))


# The Windows portable builds by the GPU they drive; "nvidia" also runs on the processor (--cpu).
PORTABLE_BUILDS = ("nvidia", "amd", "intel")


@dataclass(frozen=True, slots=True)
class ComfyRelease:
    version: str
    archive: FileSpec | None  # GitHub's source zip: nobody publishes its sum, so a user's pasted one is needed
    changes: str = ""
    git: GitPin | None = None
    portable: tuple[tuple[str, FileSpec], ...] = ()  # (build, Windows portable .7z), see PORTABLE_BUILDS

    def portable_build(self, build: str) -> FileSpec | None:
        return dict(self.portable).get(build)

    @classmethod
    def from_dict(cls, r: dict[str, Any]) -> ComfyRelease:
        portable = r.get("windows_portable") or {}
        unknown = set(portable) - set(PORTABLE_BUILDS)
        if unknown:
            raise ValueError(f"unknown portable builds {sorted(unknown)}")
        return cls(str(r["version"]), FileSpec.from_dict(r["archive"]) if r.get("archive") else None,
                   str(r.get("changes", "")), GitPin.from_dict(r["git"]) if r.get("git") else None,
                   tuple((b, FileSpec.from_dict(portable[b])) for b in PORTABLE_BUILDS if b in portable))


@dataclass(frozen=True, slots=True)
class TorchBuild:
    id: str
    min_cuda: tuple[int, int] | None  # None: the CPU build
    torch: str
    torchvision: str
    index_url: str
    installed_bytes: int
    label: str

    @property
    def requirements(self) -> tuple[str, str]:
        return (f"torch=={self.torch}", f"torchvision=={self.torchvision}")


@dataclass(frozen=True, slots=True)
class ModelChoice:
    id: str
    title: str
    family: str
    min_vram_gb: float
    file: FileSpec
    pose: tuple[FileSpec, ...] = ()
    pose_note: str = ""


@dataclass(frozen=True, slots=True)
class Catalog:
    as_of: str
    releases: tuple[ComfyRelease, ...]  # oldest first; the last is the one a new setup gets
    torch_builds: tuple[TorchBuild, ...]
    models: tuple[ModelChoice, ...]
    requirements_bytes: int
    cpu_speed_note: str
    python_versions: tuple[str, ...] = ("3.12", "3.11", "3.10")

    @property
    def latest(self) -> ComfyRelease:
        return self.releases[-1]

    def release(self, version: str) -> ComfyRelease | None:
        return next((r for r in self.releases if r.version == version), None)

    def next_release(self, version: str) -> ComfyRelease | None:
        """The pinned release after ``version``; None when it is the newest (or unknown)."""
        versions = [r.version for r in self.releases]
        if version not in versions:
            return None
        i = versions.index(version)
        return self.releases[i + 1] if i + 1 < len(self.releases) else None

    def next_for(self, version: str, kind: str = "zip", build: str = "nvidia") -> ComfyRelease | None:
        """The next pinned release an install from source ``kind`` can move to; None when there is none.

        A zip install gets the very next release (update says in words when it has no archive);
        a portable or git install skips releases pinned without its own source, since only that
        source keeps its layout (python_embeded, or the .git folder) right.
        """
        versions = [r.version for r in self.releases]
        if version not in versions:
            return None
        later = self.releases[versions.index(version) + 1:]
        if kind == "zip":
            return later[0] if later else None
        if kind == "portable":
            return next((r for r in later if r.portable_build(build) is not None), None)
        if kind == "git":
            return next((r for r in later if r.git is not None), None)
        return None

    def model(self, model_id: str) -> ModelChoice | None:
        return next((m for m in self.models if m.id == model_id), None)

    def with_user_sums(self, sums: Mapping[str, str]) -> Catalog:
        """This catalog with the user's sums (by URL) filling the gaps; a pinned sum is never replaced."""
        def fill(spec: FileSpec) -> FileSpec:
            sha = sums.get(spec.url)
            if spec.pinned or not sha:
                return spec
            return dataclasses.replace(spec, sha256=sha, sha256_from="entered by you", sum_by_user=True)

        return dataclasses.replace(
            self,
            releases=tuple(dataclasses.replace(r, archive=fill(r.archive) if r.archive else None)
                           for r in self.releases),
            models=tuple(dataclasses.replace(m, file=fill(m.file), pose=tuple(fill(p) for p in m.pose))
                         for m in self.models))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Catalog:
        def cuda(text: str | None) -> tuple[int, int] | None:
            if not text:
                return None
            major, _, minor = str(text).partition(".")
            return int(major), int(minor or 0)

        return cls(
            as_of=str(data.get("as_of", "")),
            releases=tuple(ComfyRelease.from_dict(r) for r in data["comfyui"]),
            torch_builds=tuple(TorchBuild(str(t["id"]), cuda(t.get("min_cuda")), str(t["torch"]), str(t["torchvision"]),
                                          str(t["index_url"]), int(t.get("installed_bytes") or 0),
                                          str(t.get("label", t["id"]))) for t in data["torch"]),
            models=tuple(ModelChoice(str(m["id"]), str(m["title"]), str(m.get("family", "")),
                                     float(m.get("min_vram_gb") or 0), FileSpec.from_dict(m["file"]),
                                     tuple(FileSpec.from_dict(p) for p in m.get("pose") or ()),
                                     str(m.get("pose_note", ""))) for m in data["models"]),
            requirements_bytes=int(data.get("requirements_bytes") or 0),
            cpu_speed_note=str(data.get("cpu_speed_note", "")),
            python_versions=tuple(data.get("python", {}).get("versions") or ("3.12", "3.11", "3.10")),
        )


def load(path: str | Path | None = None) -> Catalog:
    """The shipped catalog, or one at ``path`` (tests point it at a loopback mirror). Blocking."""
    p = Path(path) if path else resource_path(CATALOG_FILE)
    return Catalog.from_dict(json.loads(p.read_text(encoding="utf-8")))
