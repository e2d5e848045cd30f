"""Download, unpack, build the environment, place the models, then rename into place.

Everything is put together in a hidden staging folder beside the target
(``.<name>.setup-staging``, same disk, so the final rename is atomic). The install folder
appears only once it is complete, with ``studio-install.json`` in it; a folder without that
manifest was never finished. What each failure leaves:

- cancel, full disk: the staging folder is removed;
- a broken download: the ``.part`` files stay, and the next install resumes them;
- a wrong sum: that file is deleted, nothing is installed.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import httpx

from studio_core.setup import archive, download
from studio_core.setup.catalog import Catalog, ComfyRelease, FileSpec
from studio_core.setup.errors import (AlreadyInstalled, DiskFull, EnvironmentFailed, FolderInUse, NotEnoughSpace,
                                      SetupError)
from studio_core.setup.plan import Plan, human_size
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
class LogLine:
    text: str


SetupEvent = StepStarted | DownloadProgress | LogLine


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
        try:
            await self.downloads.fetch_all(self.plan.downloads)
            comfy = self.staging / "comfyui"
            self._emit(StepStarted("unpack", f"Unpacking ComfyUI {self.plan.release.version}…"))
            await asyncio.to_thread(_rmtree, comfy)
            hashes = await asyncio.to_thread(archive.unpack, part(self.plan.release.archive), comfy)
            self._emit(StepStarted("python", f"Creating the Python environment ({self.plan.torch.label})…"))
            await self.env.build(comfy, self.plan.torch, lambda line: self._emit(LogLine(line)))
            self._emit(StepStarted("models", f"Placing {self.plan.model.title}…"))
            files = dict(hashes)
            for spec in self.plan.downloads[1:]:
                target = comfy / spec.dest
                target.parent.mkdir(parents=True, exist_ok=True)
                await asyncio.to_thread(os.replace, part(spec), target)
                files[spec.dest] = spec.sha256 or ""
            self._emit(StepStarted("finish", f"Moving the finished setup into {self.folder}…"))
            manifest = {"manifest": MANIFEST_VERSION, "comfyui": self.plan.release.version,
                        "torch": self.plan.torch.id, "model": self.plan.model.id, "catalog_as_of": self.catalog.as_of,
                        "installed_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "files": files}
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
    """Re-check every file of a finished install against its sum, and that torch imports; fix what is wrong."""
    folder = Path(folder)
    manifest = await asyncio.to_thread(read_manifest, folder)
    if manifest is None:
        raise SetupError(str(folder), user_message=f"{folder} holds no finished setup by this app, so there is "
                                                   "nothing to repair. Install into it instead.")
    release = catalog.release(str(manifest.get("comfyui")))
    files: dict[str, str] = dict(manifest.get("files") or {})
    on_event(StepStarted("verify", f"Checking {len(files)} files against their checksums…"))
    bad: list[str] = []
    for rel, sha in files.items():
        if await asyncio.to_thread(archive.sha256_of, folder / rel) != sha:
            bad.append(rel)
    on_event(StepStarted("verify", "Checking that PyTorch imports in ComfyUI's Python…"))
    torch_version, why = await torch_check(venv_python(folder), torch_timeout)
    if not bad and torch_version:
        return RepairReport(len(files), (), torch_version)
    by_dest = _specs_by_dest(catalog)
    work = folder.parent / f".{folder.name}.repair-staging"
    fixer = Downloads(work, folder, on_event=on_event, client=client, disk_usage=shutil.disk_usage,
                      retry_delay=retry_delay)
    model_specs = [by_dest[rel] for rel in bad if rel in by_dest]
    archive_files = [rel for rel in bad if rel not in by_dest]
    if archive_files and release is None:
        raise SetupError("release unknown", user_message=f"ComfyUI {manifest.get('comfyui')} is no longer in the "
                                                         "app's catalog, so its files can't be fetched again.")
    need = ([release.archive] if archive_files and release else []) + model_specs
    await fixer.fetch_all(need)
    on_event(StepStarted("models", f"Putting back {len(bad)} file(s)…"))
    for rel in archive_files:
        await asyncio.to_thread(archive.extract_one, fixer.part(release.archive), rel, folder)  # type: ignore[union-attr]
    for spec in model_specs:
        (folder / spec.dest).parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(os.replace, fixer.part(spec), folder / spec.dest)
    if not torch_version:
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
    """The next pinned ComfyUI release for a finished install (with what changes); None if current. Blocking."""
    manifest = read_manifest(folder)
    return catalog.next_release(str(manifest.get("comfyui"))) if manifest else None
