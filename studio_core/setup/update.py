"""Update a finished install to the next pinned ComfyUI release without losing the user's things.

The same steps for each source an install came from (its manifest's ``source``):

1. The new release is put down in ``.<name>.update-staging/comfyui`` beside the install, on
   the same disk: a release zip or the Windows portable ``.7z`` is downloaded (resumable,
   checked against its sum) and unpacked; a git install gets a shallow clone of the next
   pinned tag, which must resolve to the pinned commit and pass ``git fsck``. The old
   working tree is never checked out in place: the user's models, custom nodes and images
   then never pass through git at all, and the old tree stays whole for a rollback.
2. The user's ``models/ custom_nodes/ user/ output/ input/`` (inside ``ComfyUI/`` for the
   portable layout), the venv and anything else the old release did not ship
   (``extra_model_paths.yaml``) are *moved* into the new tree: renames, so gigabytes of
   models cost nothing. Release files inside those folders (model configs, the example
   custom node) take the new release's version only where the user's copy is the old
   release's unchanged one; a file the user edited is left as it is. The portable build's
   ``python_embeded`` comes from the new archive (it matches the new release).
3. The old install is renamed to ``.<name>.update-backup`` and the new tree into its place.
4. The new server must start and answer ``/system_stats`` (the caller's ``prove``). Only
   then is the backup deleted; otherwise everything is put back as it was.

Every rename is written to a journal (``update.json`` in the staging folder) *before* it
is made, so a crash or power cut in the middle is undone by :func:`recover` the next time
(the wizard calls it before it reads the install). Renames only: the old install is never
half-overwritten. The server must be stopped first (Windows can't rename open files).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Awaitable, Callable

import httpx

from studio_core.errors import StudioError
from studio_core.setup import archive, download, gitsource
from studio_core.setup.catalog import Catalog, ComfyRelease, FileSpec, GitPin
from studio_core.setup.errors import DiskFull, SetupError, UpdateFailed, UpdateRolledBack
from studio_core.setup.installer import (MANIFEST, Downloads, LogLine, SetupEvent, StepStarted, _specs_by_dest,
                                         read_manifest, unpack_7z)
from studio_core.setup.plan import GIB, human_size
from studio_core.setup.pyenv import VENV, PythonEnv

log = logging.getLogger(__name__)

KEEP = ("models", "custom_nodes", "user", "output", "input")
JOURNAL = "update.json"
# Besides the archive and its unpacked copy: pip may add packages when the requirements change.
MARGIN_BYTES = 1 * GIB


def staging_for(folder: Path) -> Path:
    return folder.parent / f".{folder.name}.update-staging"


def backup_for(folder: Path) -> Path:
    return folder.parent / f".{folder.name}.update-backup"


@dataclass(frozen=True, slots=True)
class UpdateReport:
    from_version: str
    to_version: str
    carried: tuple[str, ...]  # what moved from the old install into the new one
    kept_edited: tuple[str, ...]  # release files the user had changed, left as they were
    requirements_changed: bool


class Journal:
    """The renames of one update, saved before each is made, so they can be undone in reverse.

    Paths are stored against three roots (``old``, ``new``, ``aside``) rather than as absolute
    paths, because the swap renames ``old`` and ``new`` themselves.
    """

    def __init__(self, folder: Path, data: dict[str, Any] | None = None):
        self.folder = folder
        self.staging = staging_for(folder)
        self.path = self.staging / JOURNAL
        self.data: dict[str, Any] = data or {"phase": "moving", "moves": []}

    @classmethod
    def load(cls, folder: Path) -> Journal | None:
        try:
            data = json.loads((staging_for(folder) / JOURNAL).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return cls(folder, data) if isinstance(data, dict) and isinstance(data.get("moves"), list) else None

    def root(self, name: str) -> Path:
        swapped = self.data["phase"] in ("swapped", "done")
        if name == "old":
            return backup_for(self.folder) if swapped else self.folder
        if name == "new":
            return self.folder if swapped else self.staging / "comfyui"
        return self.staging / "aside"

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def set_phase(self, phase: str) -> None:
        self.data["phase"] = phase
        self.save()

    def move(self, src_root: str, src: str, dst_root: str, dst: str) -> None:
        self.data["moves"].append([src_root, src, dst_root, dst])
        self.save()
        target = self.root(dst_root) / dst
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.root(src_root) / src, target)

    def swap(self) -> None:
        self.set_phase("swapping")
        os.replace(self.folder, backup_for(self.folder))
        os.replace(self.staging / "comfyui", self.folder)
        self.set_phase("swapped")

    def undo(self) -> None:
        """Put the old install back where it was, with everything that was moved out of it."""
        backup, new = backup_for(self.folder), self.staging / "comfyui"
        if backup.exists():
            if self.folder.exists():
                shutil.rmtree(new, ignore_errors=True)
                os.replace(self.folder, new)
            os.replace(backup, self.folder)
        self.data["phase"] = "moving"
        for src_root, src, dst_root, dst in reversed(self.data["moves"]):
            a, b = self.root(src_root) / src, self.root(dst_root) / dst
            if os.path.lexists(b) and not os.path.lexists(a):
                a.parent.mkdir(parents=True, exist_ok=True)
                os.replace(b, a)
        self.data["moves"] = []
        self.save()


def _clean_work(folder: Path) -> None:
    """Remove what an update assembled; the downloads stay for a resume."""
    staging = staging_for(folder)
    for name in ("comfyui", "aside", JOURNAL):
        p = staging / name
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


def recover(folder: str | Path) -> str | None:
    """Finish or undo an update a crash interrupted; returns what was done in words, None if nothing. Blocking."""
    folder = Path(folder)
    journal = Journal.load(folder)
    if journal is None:
        return None
    if journal.data["phase"] == "done":  # the new one had answered; only the clean-up was left
        shutil.rmtree(backup_for(folder), ignore_errors=True)
        shutil.rmtree(staging_for(folder), ignore_errors=True)
        return None
    journal.undo()
    _clean_work(folder)
    return (f"An update of ComfyUI in {folder} was interrupted before the new version had started, so the "
            "previous version was put back as it was.")


def _top_names(files: dict[str, str], level: str = "") -> set[str]:
    pre = f"{level}/" if level else ""
    return {rel[len(pre):].split("/", 1)[0] for rel in files if rel.startswith(pre)}


def _extras(old: Path, old_files: dict[str, str], new_files: dict[str, str], comfy_dir: str) -> list[str]:
    """What the user added beside ComfyUI (in the install folder, and in ``ComfyUI/`` of the portable layout)."""
    out: list[str] = []
    for level in ("", comfy_dir) if comfy_dir else ("",):
        base = old / level if level else old
        if not base.is_dir():
            continue
        shipped = _top_names(old_files, level) | _top_names(new_files, level)
        # .git: a git install's history belongs to its commit; the new clone brings its own.
        skip = {MANIFEST, VENV, "__pycache__", ".git", comfy_dir} | (set(KEEP) if level == comfy_dir else set())
        pre = f"{level}/" if level else ""
        out += sorted(pre + p.name for p in base.iterdir() if p.name not in shipped and p.name not in skip)
    return out


def _assemble(journal: Journal, old_files: dict[str, str], new_files: dict[str, str],
              model_dests: set[str], comfy_dir: str = "") -> tuple[dict[str, str], list[str], list[str]]:
    """Move the user's things from the old install into the new tree. Blocking.

    ``comfy_dir``: where ComfyUI's own folders lie in the install ("ComfyUI" in the portable
    layout). Returns the new manifest's files, what was carried and the edited release files kept.
    """
    old, new = journal.root("old"), journal.root("new")
    pre = f"{comfy_dir}/" if comfy_dir else ""

    def kept_folder(rel: str) -> str | None:
        """The user folder (``ComfyUI/models``) a release file lies in; None outside them."""
        if not rel.startswith(pre):
            return None
        top = rel[len(pre):].split("/", 1)[0]
        return pre + top if top in KEEP else None

    files = {rel: sha for rel, sha in new_files.items() if kept_folder(rel) is None}
    files.update({rel: sha for rel, sha in old_files.items() if rel in model_dests})
    carried: list[str] = []
    edited: list[str] = []
    for name in (*(pre + k for k in KEEP), VENV, *_extras(old, old_files, new_files, comfy_dir)):
        if not os.path.lexists(old / name):
            continue
        if os.path.lexists(new / name):
            journal.move("new", name, "aside", name)
        journal.move("old", name, "new", name)
        carried.append(name)
    for rel, sha in sorted(new_files.items()):
        top = kept_folder(rel)
        if top is None:
            continue
        if top not in carried:  # the old install had no such folder: the release's stays as unpacked
            files[rel] = sha
            continue
        if (new / top).is_symlink():  # the user's folder lives elsewhere (another disk): not ours to write into
            continue
        mine = new / rel
        if not mine.exists():
            journal.move("aside", rel, "new", rel)
            files[rel] = sha
            continue
        current = archive.sha256_of(mine)
        if current == sha:
            files[rel] = sha
        elif current == old_files.get(rel):  # the old release's file, untouched: the new one replaces it
            journal.move("new", rel, "aside", f"replaced/{rel}")
            journal.move("aside", rel, "new", rel)
            files[rel] = sha
        else:
            edited.append(rel)  # the user's now; repair must not "fix" it back
    return files, carried, edited


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


@dataclass(frozen=True, slots=True)
class UpdateOffer:
    """What an update of one install would fetch: the release and its source for this install's kind."""

    current: str
    release: ComfyRelease
    kind: str  # "zip" | "portable" | "git", as the install was made
    asset: FileSpec | None  # the zip or .7z downloaded; None for git
    git: GitPin | None = None

    @property
    def pinned(self) -> bool:
        return self.git is not None or (self.asset is not None and self.asset.pinned)

    @property
    def space_needed(self) -> int:
        """Free space the update needs beside the install: the download, what it unpacks to, pip's margin."""
        if self.asset is None:
            return (self.git.size_bytes if self.git else 0) + MARGIN_BYTES
        unpacked = 2.5 if self.kind == "portable" else 1  # the plan's ratio for the portable build
        return int(self.asset.size_bytes * (1 + unpacked)) + MARGIN_BYTES

    def what_changes(self) -> str:
        """One paragraph for the wizard: versions, what is fetched, its size and where its sum came from."""
        changes = self.release.changes.strip().rstrip(".")
        head = f"ComfyUI {self.current} → {self.release.version}." + (f" {changes}." if changes else "")
        if self.git is not None:
            fetched = (f"Fetched with git: tag {self.git.tag}, which must be commit {self.git.commit[:12]} "
                       f"(about {human_size(self.git.size_bytes)}); verified by git against that commit.")
        elif self.asset is not None:
            size = human_size(self.asset.size_bytes) if self.asset.size_exact else \
                f"about {human_size(self.asset.size_bytes)}"
            where = self.asset.sum_source + (f" ({self.asset.sha256_from})" if self.asset.sha256_from else "")
            fetched = f"Downloads {self.asset.name}, {size}; checksum {where}."
        else:
            fetched = "This release has no source for this install in the app's catalog."
        kept = ("Your models, custom nodes, images and settings are moved across"
                + ("; python_embeded comes new from the archive (packages you added to it are not carried)"
                   if self.kind == "portable" else "") + ".")
        return (f"{head} {fetched} {kept} Needs about {human_size(self.space_needed)} free beside the install. "
                "If the new version does not start, this one is put back.")


def offer_for(manifest: dict, catalog: Catalog) -> UpdateOffer | None:
    """The update a finished install's manifest can take; None when it has the newest pinned version."""
    current = str(manifest.get("comfyui"))
    kind = str(manifest.get("source") or "zip")
    build = str(manifest.get("build") or "nvidia")
    release = catalog.next_for(current, kind, build)
    if release is None:
        return None
    if kind == "git":
        return UpdateOffer(current, release, kind, None, release.git)
    return UpdateOffer(current, release, kind, release.portable_build(build) if kind == "portable" else release.archive)


def offer(folder: str | Path, catalog: Catalog) -> UpdateOffer | None:
    """:func:`offer_for` the install in ``folder``; None when it holds none or is current. Blocking."""
    manifest = read_manifest(folder)
    return offer_for(manifest, catalog) if manifest else None


_KIND_WORDS = {"zip": "release archive", "portable": "Windows portable build", "git": "git checkout"}


async def update(folder: str | Path, catalog: Catalog, *, prove: Callable[[], Awaitable[object]],
                 env: PythonEnv | None = None, on_event: Callable[[SetupEvent], None] = lambda e: None,
                 client: httpx.AsyncClient | None = None, disk_usage: Callable = shutil.disk_usage,
                 retry_delay: float = 0.5, git: str = "git") -> UpdateReport:
    """Update the install in ``folder`` to the next pinned release; ``prove`` starts it and must succeed.

    The server must not be running from ``folder``. On any failure after the swap (``prove``
    raising, pip failing, a cancel) the old install is put back and UpdateRolledBack raised.
    """
    folder = Path(folder)
    await asyncio.to_thread(recover, folder)
    manifest = await asyncio.to_thread(read_manifest, folder)
    if manifest is None:
        raise UpdateFailed(str(folder), user_message=f"{folder} holds no finished setup by this app, so there is "
                                                     "nothing to update.")
    current = str(manifest.get("comfyui"))
    kind = str(manifest.get("source") or "zip")
    if kind not in _KIND_WORDS:
        raise UpdateFailed(kind, user_message=f"ComfyUI {current} in {folder} came from a source this version of "
                                              f"the app does not know ({kind}), so it is not updated in place.")
    comfy_dir = str(manifest.get("comfy_dir") or "")
    upd = offer_for(manifest, catalog)
    if upd is None:
        raise UpdateFailed(current, user_message=(
            f"ComfyUI {current} ({_KIND_WORDS[kind]}) is the newest pinned version this app knows; there is no "
            f"newer pinned {_KIND_WORDS[kind]} to update to."))
    release = upd.release
    if kind != "git" and upd.asset is None:
        raise UpdateFailed(release.version, user_message=(
            f"ComfyUI {release.version} has no release archive in the app's catalog, so it can't be updated to "
            "in place. Install it into a new folder."))
    if upd.asset is not None:
        download.refuse_unpinned(upd.asset)
    staging = staging_for(folder)
    fetcher = Downloads(staging, folder, on_event=on_event, client=client, disk_usage=disk_usage,
                        retry_delay=retry_delay)
    on_event(StepStarted("check", f"Checking the free disk space for ComfyUI {release.version}…"))
    assets = [upd.asset] if upd.asset is not None else []
    staged = await asyncio.to_thread(fetcher.staged_bytes, assets)
    await fetcher.check_space(upd.space_needed - staged, during=False)
    try:
        await fetcher.fetch_all(assets)
    except (asyncio.CancelledError, DiskFull):
        await asyncio.shield(asyncio.to_thread(shutil.rmtree, staging, True))
        raise
    new_root = staging / "comfyui"
    await asyncio.to_thread(_clean_work, folder)
    # git writes nothing into staging before the clone: the journal (saved on undo) needs its folder.
    await asyncio.to_thread(staging.mkdir, parents=True, exist_ok=True)
    journal = Journal(folder)
    try:
        new_files = await _put_down(upd, fetcher, new_root, on_event, git)
        await asyncio.to_thread(journal.save)
        old_req = await asyncio.to_thread(_read_text, folder / comfy_dir / "requirements.txt")
        new_req = await asyncio.to_thread(_read_text, new_root / comfy_dir / "requirements.txt")
        on_event(StepStarted("models", "Moving your models, custom nodes, images and settings across…"))
        model_dests = {PurePosixPath(comfy_dir, dest).as_posix() for dest in _specs_by_dest(catalog)}
        files, carried, edited = await asyncio.to_thread(
            _assemble, journal, dict(manifest.get("files") or {}), new_files, model_dests, comfy_dir)
        for rel in edited:
            on_event(LogLine(f"Kept your edited {rel} (the new release has its own version of it)."))
        new_manifest = {**manifest, "comfyui": release.version, "files": files, "updated_from": current,
                        "updated_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
        if upd.git is not None:
            new_manifest.update(git_url=upd.git.url, tag=upd.git.tag, commit=upd.git.commit)
        await asyncio.to_thread((new_root / MANIFEST).write_text, json.dumps(new_manifest, indent=1), "utf-8")
    except BaseException as exc:
        await asyncio.shield(asyncio.to_thread(_undo_and_clean, journal, folder))
        if isinstance(exc, OSError):
            raise UpdateFailed(str(exc), user_message=f"The update could not put its files together ({exc}); "
                                                      f"ComfyUI {current} was left as it was.") from None
        raise
    on_event(StepStarted("finish", f"Swapping in ComfyUI {release.version} (the old one is kept until it starts)…"))
    # The portable build's python_embeded is the new release's own: no pip step there.
    requirements_changed = old_req != new_req and kind != "portable"
    try:
        await asyncio.to_thread(journal.swap)
        if requirements_changed:
            on_event(StepStarted("python", "ComfyUI's requirements changed: updating the Python environment…"))
            await (env or PythonEnv(versions=catalog.python_versions)).install_requirements(
                folder, lambda line: on_event(LogLine(line)))
        on_event(StepStarted("start", f"Starting ComfyUI {release.version} to check it answers…"))
        await prove()
    except BaseException as exc:
        on_event(StepStarted("rollback", f"Putting ComfyUI {current} back…"))
        await asyncio.shield(asyncio.to_thread(_undo_and_clean, journal, folder))
        if isinstance(exc, (StudioError, OSError)):
            why = exc.user_message if isinstance(exc, StudioError) else str(exc)
            raise UpdateRolledBack(f"{release.version}: {why}", user_message=(
                f"ComfyUI {release.version} did not start, so ComfyUI {current} was put back as it was, with your "
                f"models, custom nodes and images. What went wrong: {why}")) from None
        raise
    await asyncio.to_thread(journal.set_phase, "done")
    await asyncio.to_thread(shutil.rmtree, backup_for(folder), True)
    await asyncio.to_thread(shutil.rmtree, staging, True)
    return UpdateReport(current, release.version, tuple(carried), tuple(edited), requirements_changed)


async def _put_down(upd: UpdateOffer, fetcher: Downloads, new_root: Path, on_event: Callable[[SetupEvent], None],
                    git: str) -> dict[str, str]:
    """The new release's files into ``new_root``, checked; returns {relative path: sha256}."""
    version = upd.release.version
    if upd.git is not None:
        pin = upd.git
        on_event(StepStarted("unpack", f"Fetching ComfyUI {pin.tag} with git and checking it against commit "
                                       f"{pin.commit[:7]}…"))
        await gitsource.clone_verified(pin, new_root, lambda line: on_event(LogLine(line)), git=git)
        on_event(LogLine(f"Verified by git: HEAD is {pin.commit}, git fsck passed."))
        return await asyncio.to_thread(archive.hash_tree, new_root)
    assert upd.asset is not None
    part = fetcher.part(upd.asset)
    if upd.kind == "portable":
        on_event(StepStarted("unpack", f"Unpacking ComfyUI {version} (Windows portable)…"))
        return await unpack_7z(part, new_root, upd.asset.name, on_event)
    on_event(StepStarted("unpack", f"Unpacking ComfyUI {version}…"))
    return await asyncio.to_thread(archive.unpack, part, new_root)


def _undo_and_clean(journal: Journal, folder: Path) -> None:
    try:
        journal.undo()
    except OSError:
        log.exception("undoing the update of %s failed; the journal stays for the next try", folder)
        raise SetupError("undo failed", user_message=(
            f"The update could not be undone completely. Nothing was deleted: the previous ComfyUI is in "
            f"{backup_for(folder)} and the rest in {staging_for(folder)}. Close every program using the "
            "folder and open the setup again; it finishes putting things back.")) from None
    shutil.rmtree(staging_for(folder), ignore_errors=True)
