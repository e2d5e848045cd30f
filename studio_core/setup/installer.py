"""Download, unpack (or git-clone), build the environment, place the models, then rename into place.

Everything is put together in a hidden staging folder beside the target
(``.<name>.setup-staging``, same disk, so the final rename is atomic). The install folder
appears only once it is complete, with ``studio-install.json`` in it; a folder without that
manifest was never finished. What each failure leaves:

- cancel, full disk: the staging folder is removed;
- a broken download: the ``.part`` files stay, and the next install resumes them;
- a wrong sum: that file is deleted, nothing is installed;
- a git clone that is not the pinned commit, an unsafe archive: the unpacked tree is removed.

ComfyUI comes from the plan's source (``plan.Source``): a release zip, the Windows portable
``.7z`` (which brings its own Python and PyTorch, so there is no pip step and ComfyUI sits in
``ComfyUI/`` inside the install folder) or a pinned git commit. The manifest records which,
so repair and the first start know the layout.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

import httpx

from studio_core.setup import archive, archive7z, download, gitsource
from studio_core.setup.catalog import Catalog, ComfyRelease, FileSpec
from studio_core.setup.errors import (AlreadyInstalled, DiskFull, EnvironmentFailed, FolderInUse, NotEnoughSpace,
                                      SetupError)
from studio_core.setup.plan import Plan, Source, human_size
from studio_core.setup.progress import STALL_S, RateMeter, Transfer
from studio_core.setup.pyenv import TORCH_CHECK_TIMEOUT_S, PythonEnv, torch_check, venv_python

log = logging.getLogger(__name__)

MANIFEST = "studio-install.json"
MANIFEST_VERSION = 1
TICK_S = 1.0  # how often a download's line is refreshed when no bytes come to do it


@dataclass(frozen=True, slots=True)
class StepStarted:
    step: str  # "check" | "download" | "unpack" | "python" | "models" | "finish" | "verify"
    text: str


@dataclass(frozen=True, slots=True)
class DownloadProgress:
    name: str
    file: Transfer
    overall: Transfer


@dataclass(frozen=True, slots=True)
class UnpackProgress:
    name: str
    done: int  # bytes written of the unpacked files
    total: int


@dataclass(frozen=True, slots=True)
class LogLine:
    text: str


SetupEvent = StepStarted | DownloadProgress | UnpackProgress | LogLine


@dataclass(frozen=True, slots=True)
class RepairReport:
    checked: int
    fixed: tuple[str, ...]  # relative paths put back; "venv" when the environment was rebuilt
    torch: str = ""  # the version the environment imported at the end


def staging_for(folder: Path) -> Path:
    return folder.parent / f".{folder.name}.setup-staging"


def read_manifest(folder: str | Path) -> dict | None:
    """The finished install's manifest; None when ``folder`` holds no finished install."""
    try:
        data = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("manifest") == MANIFEST_VERSION else None


def comfy_root(folder: str | Path) -> Path:
    """ComfyUI's own folder in an install (``ComfyUI/`` in the portable layout). Blocking."""
    manifest = read_manifest(folder) or {}
    return Path(folder) / str(manifest.get("comfy_dir") or "")


def install_python(folder: Path, manifest: dict) -> Path:
    """The interpreter ComfyUI runs with: the portable build's own, or the install's venv."""
    if manifest.get("source") == "portable":
        return folder / "python_embeded" / "python.exe"
    return venv_python(folder)


def _existing_ancestor(path: Path) -> Path:
    p = path
    while not p.exists() and p.parent != p:
        p = p.parent
    return p


def free_bytes(folder: Path, disk_usage: Callable = shutil.disk_usage) -> int:
    """Free space where ``folder`` will be (its nearest existing parent). Blocking."""
    return int(disk_usage(_existing_ancestor(Path(folder))).free)


def _rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


class Downloads:
    """Fetches files into ``<staging>/downloads/*.part`` with per-file and overall progress."""

    def __init__(self, staging: Path, space_at: Path, *, on_event: Callable[[SetupEvent], None],
                 client: httpx.AsyncClient | None, disk_usage: Callable, retry_delay: float,
                 tick_s: float = TICK_S, stall_s: float = STALL_S):
        self.staging, self.space_at, self.on_event = staging, space_at, on_event
        self._client, self._disk_usage, self._retry_delay = client, disk_usage, retry_delay
        self._tick, self._stall = tick_s, stall_s

    def part(self, spec: FileSpec) -> Path:
        return self.staging / "downloads" / (spec.name + ".part")

    def staged_bytes(self, specs) -> int:
        """Blocking: what earlier attempts already left in the part files."""
        return sum(self.part(s).stat().st_size for s in specs if self.part(s).exists())

    async def check_space(self, still_needed: int, *, during: bool) -> None:
        free = await asyncio.to_thread(free_bytes, self.space_at, self._disk_usage)
        if free >= still_needed:
            return
        text = (f"The setup needs about {human_size(still_needed)} more in {self.space_at.parent}, but only "
                f"{human_size(free)} is free.")
        if during:
            raise DiskFull(f"{free} < {still_needed}", user_message=text + " The partial setup was removed; free "
                                                                          "some space or choose another disk.")
        raise NotEnoughSpace(f"{free} < {still_needed}", user_message=text + " Nothing was downloaded. Free some "
                                                                            "space or choose a folder on another disk.")

    async def fetch_all(self, specs) -> None:
        specs = list(specs)
        total = sum(s.size_bytes for s in specs)
        have = {s.name: (self.part(s).stat().st_size if self.part(s).exists() else 0) for s in specs}
        overall = RateMeter(stall_s=self._stall)
        client = self._client or httpx.AsyncClient(headers={"User-Agent": "CloudAIArtStudio-setup"})
        try:
            for i, spec in enumerate(specs):
                still = sum(max(0, s.size_bytes - have[s.name]) for s in specs[i:])
                await self.check_space(still, during=True)
                self.on_event(StepStarted("download", f"Downloading {spec.name}…"))
                meter = RateMeter(stall_s=self._stall)

                def report(spec: FileSpec = spec, meter: RateMeter = meter) -> None:
                    self.on_event(DownloadProgress(spec.name, meter.transfer(have[spec.name], spec.size_bytes),
                                                   overall.transfer(sum(have.values()), total)))

                def on_bytes(n: int, spec: FileSpec = spec, meter: RateMeter = meter) -> None:
                    have[spec.name] += n
                    if n > 0:
                        meter.add(n)
                        overall.add(n)
                    report()

                # Progress events otherwise come only with bytes: without this timer a stalled
                # connection would leave the last speed and time left on screen until it timed out.
                ticker = asyncio.ensure_future(self._tick_while(report))
                try:
                    await download.fetch(client, spec, self.part(spec), on_bytes=on_bytes,
                                         retry_delay=self._retry_delay)
                finally:
                    ticker.cancel()
        finally:
            if self._client is None:
                await client.aclose()

    async def _tick_while(self, report: Callable[[], None]) -> None:
        while True:
            await asyncio.sleep(self._tick)
            try:
                report()
            except Exception:
                log.exception("setup progress listener failed")


async def unpack_7z(part: Path, dest: Path, name: str, emit: Callable[[SetupEvent], None]) -> dict[str, str]:
    """Unpack a portable .7z in a thread with progress events; a cancel stops it before the caller cleans up."""
    loop = asyncio.get_running_loop()
    stop = threading.Event()

    def on_progress(done: int, total: int) -> None:  # a worker thread: hop onto the loop
        loop.call_soon_threadsafe(emit, UnpackProgress(name, done, total))

    job = asyncio.ensure_future(asyncio.to_thread(archive7z.unpack, part, dest, on_progress=on_progress, stop=stop))
    try:
        return await asyncio.shield(job)
    except asyncio.CancelledError:
        # The thread can't be cancelled; it stops at its next write, and only then may the
        # staging folder it writes into be removed.
        stop.set()
        await asyncio.wait([job])
        if not job.cancelled():
            job.exception()
        raise


class Installer:
    """Runs one plan. Use from the asyncio loop; cancel the task to stop (nothing is left)."""

    def __init__(self, plan: Plan, catalog: Catalog, *, env: PythonEnv | None = None,
                 on_event: Callable[[SetupEvent], None] = lambda e: None,
                 client: httpx.AsyncClient | None = None, disk_usage: Callable = shutil.disk_usage,
                 retry_delay: float = 0.5, tick_s: float = TICK_S, stall_s: float = STALL_S):
        self.plan = plan
        self.catalog = catalog
        self.folder = Path(plan.folder)
        self.staging = staging_for(self.folder)
        self.env = env or PythonEnv(versions=catalog.python_versions)
        self.on_event = on_event
        self.downloads = Downloads(self.staging, self.folder, on_event=self._emit, client=client,
                                   disk_usage=disk_usage, retry_delay=retry_delay, tick_s=tick_s, stall_s=stall_s)

    def _emit(self, event: SetupEvent) -> None:
        try:
            self.on_event(event)
        except Exception:
            log.exception("setup event listener failed")

    async def _check_folder(self) -> None:
        folder = self.folder
        if await asyncio.to_thread(read_manifest, folder) is not None:
            raise AlreadyInstalled(str(folder), user_message=(
                f"ComfyUI is already installed in {folder}. Choose Repair to check every file and fetch what is "
                "wrong, or choose another folder."))
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            raise FolderInUse(str(folder), user_message=(
                f"{folder} already holds other files, so nothing was installed there. Choose a new or empty folder."))

    async def install(self) -> Path:
        """Install the plan into its folder; returns the folder (ComfyUI's root)."""
        for spec in self.plan.downloads:
            download.refuse_unpinned(spec)
        self._emit(StepStarted("check", f"Checking {self.folder} and the free disk space…"))
        await self._check_folder()
        staged = await asyncio.to_thread(self.downloads.staged_bytes, self.plan.downloads)
        await self.downloads.check_space(self.plan.disk_needed - staged, during=False)
        part = self.downloads.part
        source = self.source
        comfy = self.staging / "comfyui"
        try:
            await self.downloads.fetch_all(self.plan.downloads)
            await asyncio.to_thread(_rmtree, comfy)
            try:
                hashes = await self._put_down_comfyui(source, comfy)
            except SetupError:
                await asyncio.shield(asyncio.to_thread(_rmtree, comfy))  # the downloads stay for a retry
                raise
            if source.brings_python:
                self._emit(LogLine("The portable build brings its own Python and PyTorch (python_embeded): "
                                   "no pip step."))
            else:
                self._emit(StepStarted("python", f"Creating the Python environment ({self.plan.torch.label})…"))
                await self.env.build(comfy, self.plan.torch, lambda line: self._emit(LogLine(line)))
            self._emit(StepStarted("models", f"Placing {self.plan.model.title}…"))
            files = dict(hashes)
            for spec in self.plan.downloads:
                if spec is source.archive:
                    continue
                rel = PurePosixPath(source.comfy_dir, spec.dest).as_posix()
                target = comfy / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                await asyncio.to_thread(os.replace, part(spec), target)
                files[rel] = spec.sha256 or ""
            self._emit(StepStarted("finish", f"Moving the finished setup into {self.folder}…"))
            manifest = {"manifest": MANIFEST_VERSION, "comfyui": self.plan.release.version,
                        "torch": "portable" if source.brings_python else self.plan.torch.id,
                        "model": self.plan.model.id, "catalog_as_of": self.catalog.as_of,
                        "installed_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "source": source.kind,
                        "comfy_dir": source.comfy_dir, "files": files}
            if source.kind == "portable":
                manifest["build"] = source.build
            if source.git is not None and source.kind == "git":
                manifest.update(git_url=source.git.url, tag=source.git.tag, commit=source.git.commit)
            # The manifest is written last, inside staging: its presence is what "installed" means.
            await asyncio.to_thread((comfy / MANIFEST).write_text, json.dumps(manifest, indent=1), "utf-8")
            await asyncio.to_thread(self._move_into_place, comfy)
            await asyncio.to_thread(_rmtree, self.staging)
            return self.folder
        except (asyncio.CancelledError, DiskFull):
            await asyncio.shield(asyncio.to_thread(_rmtree, self.staging))
            raise
        except OSError as exc:
            if exc.errno == errno.ENOSPC:  # outside a download: unpacking, pip
                await asyncio.shield(asyncio.to_thread(_rmtree, self.staging))
                raise DiskFull(str(exc), user_message="The disk filled up during the setup; the partial setup was "
                                                      "removed. Free some space and try again.") from None
            raise SetupError(str(exc), user_message=f"The setup could not write its files: {exc}") from None

    @property
    def source(self) -> Source:
        return self.plan.source or Source("zip", archive=self.plan.release.archive)

    async def _put_down_comfyui(self, source: Source, comfy: Path) -> dict[str, str]:
        """ComfyUI's files into ``comfy``, checked; returns {relative path: sha256} for the manifest."""
        version = self.plan.release.version
        if source.kind == "git":
            pin = source.git
            assert pin is not None
            self._emit(StepStarted("unpack", f"Fetching ComfyUI {pin.tag} with git and checking it against commit "
                                             f"{pin.commit[:7]}…"))
            await gitsource.clone_verified(pin, comfy, lambda line: self._emit(LogLine(line)))
            self._emit(LogLine(f"Verified by git: HEAD is {pin.commit}, git fsck passed."))
            return await asyncio.to_thread(archive.hash_tree, comfy)
        assert source.archive is not None
        part = self.downloads.part(source.archive)
        if source.kind == "portable":
            self._emit(StepStarted("unpack", f"Unpacking ComfyUI {version} (Windows portable, with its own Python "
                                             "and PyTorch)…"))
            return await self._unpack_7z(part, comfy, source.archive.name)
        self._emit(StepStarted("unpack", f"Unpacking ComfyUI {version}…"))
        return await asyncio.to_thread(archive.unpack, part, comfy)

    async def _unpack_7z(self, part: Path, dest: Path, name: str) -> dict[str, str]:
        return await unpack_7z(part, dest, name, self._emit)

    def _move_into_place(self, comfy: Path) -> None:
        if self.folder.is_dir() and not any(self.folder.iterdir()):
            self.folder.rmdir()  # an empty folder the user picked: Windows can't rename onto it
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        os.replace(comfy, self.folder)


# -- repair and update ---------------------------------------------------------------------------

def _specs_by_dest(catalog: Catalog) -> dict[str, FileSpec]:
    out: dict[str, FileSpec] = {}
    for m in catalog.models:
        for spec in (m.file, *m.pose):
            out[spec.dest] = spec
    return out


async def repair(folder: str | Path, catalog: Catalog, *, env: PythonEnv | None = None,
                 on_event: Callable[[SetupEvent], None] = lambda e: None,
                 client: httpx.AsyncClient | None = None, retry_delay: float = 0.5,
                 torch_timeout: float = TORCH_CHECK_TIMEOUT_S) -> RepairReport:
    """Re-check every file of a finished install against its sum, and that torch imports; fix what is wrong.

    ComfyUI's own files come back from where the install came from: the release zip or the
    portable .7z (downloaded again, checked against its sum) or the pinned git commit.
    """
    folder = Path(folder)
    manifest = await asyncio.to_thread(read_manifest, folder)
    if manifest is None:
        raise SetupError(str(folder), user_message=f"{folder} holds no finished setup by this app, so there is "
                                                   "nothing to repair. Install into it instead.")
    kind = str(manifest.get("source") or "zip")
    release = catalog.release(str(manifest.get("comfyui")))
    files: dict[str, str] = dict(manifest.get("files") or {})
    on_event(StepStarted("verify", f"Checking {len(files)} files against their checksums…"))
    bad: list[str] = []
    for rel, sha in files.items():
        if await asyncio.to_thread(archive.sha256_of, folder / rel) != sha:
            bad.append(rel)
    on_event(StepStarted("verify", "Checking that PyTorch imports in ComfyUI's Python…"))
    python = install_python(folder, manifest)
    torch_version, why = await torch_check(python, torch_timeout)
    if not bad and torch_version:
        return RepairReport(len(files), (), torch_version)
    comfy_dir = str(manifest.get("comfy_dir") or "")
    by_dest = {PurePosixPath(comfy_dir, dest).as_posix(): spec for dest, spec in _specs_by_dest(catalog).items()}
    work = folder.parent / f".{folder.name}.repair-staging"
    fixer = Downloads(work, folder, on_event=on_event, client=client, disk_usage=shutil.disk_usage,
                      retry_delay=retry_delay)
    model_specs = [by_dest[rel] for rel in bad if rel in by_dest]
    archive_files = [rel for rel in bad if rel not in by_dest]
    source_archive: FileSpec | None = None
    if archive_files and kind != "git":
        if release is not None:
            source_archive = release.portable_build(str(manifest.get("build"))) if kind == "portable" else release.archive
        if source_archive is None:
            raise SetupError("release unknown", user_message=f"ComfyUI {manifest.get('comfyui')} is no longer in the "
                                                             "app's catalog, so its files can't be fetched again.")
        download.refuse_unpinned(source_archive)
    await fixer.fetch_all(([source_archive] if source_archive else []) + model_specs)
    on_event(StepStarted("models", f"Putting back {len(bad)} file(s)…"))
    if archive_files and kind == "git":
        await gitsource.restore(folder, str(manifest.get("commit")), archive_files, lambda t: on_event(LogLine(t)))
    elif archive_files and kind == "portable":
        assert source_archive is not None
        await asyncio.to_thread(archive7z.unpack, fixer.part(source_archive), folder, only=set(archive_files))
    else:
        for rel in archive_files:
            await asyncio.to_thread(archive.extract_one, fixer.part(source_archive), rel, folder)  # type: ignore[arg-type]
    for spec in model_specs:
        target = folder / comfy_dir / spec.dest
        target.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(os.replace, fixer.part(spec), target)
    if not torch_version and kind == "portable":
        torch_version, why = await torch_check(python, torch_timeout)  # the files put back may have fixed it
        if not torch_version:
            raise EnvironmentFailed(why, user_message=(
                "Every file of the portable build matches its checksum, but PyTorch in its python_embeded still "
                f"does not import. {why} Update the graphics driver, or install into a new folder."))
    elif not torch_version:
        torch = next((t for t in catalog.torch_builds if t.id == manifest.get("torch")), catalog.torch_builds[-1])
        on_event(LogLine(why))
        on_event(StepStarted("python", "Rebuilding the Python environment…"))
        await asyncio.to_thread(_rmtree, folder / "venv")
        await (env or PythonEnv(versions=catalog.python_versions)).build(folder, torch, lambda t: on_event(LogLine(t)))
        torch_version, why = await torch_check(venv_python(folder), torch_timeout)
        if not torch_version:
            raise EnvironmentFailed(why, user_message=f"The Python environment was rebuilt, but PyTorch still does "
                                                      f"not import. {why}")
        bad.append("venv")
    await asyncio.to_thread(_rmtree, work)
    return RepairReport(len(files), tuple(bad), torch_version)


def update_offer(folder: str | Path, catalog: Catalog) -> ComfyRelease | None:
    """The next pinned ComfyUI release this install can be updated to in place; None if current. Blocking.

    A portable install is offered only a release with its own portable build, a git install
    only one with a pinned commit (Catalog.next_for).
    """
    manifest = read_manifest(folder)
    if not manifest:
        return None
    return catalog.next_for(str(manifest.get("comfyui")), str(manifest.get("source") or "zip"),
                            str(manifest.get("build") or "nvidia"))
