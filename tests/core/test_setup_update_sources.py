"""Updating a portable (.7z) or git install in place to the next pinned release.

The git install is cloned from a bare repo made in the test (file:// URL) with two tags; the
portable one from two portable-shaped .7z files on the loopback mirror (tests/setup_sources.py).
Both new releases are real HTTP servers started by ManagedServer from the install itself, so
"the new one answers /system_stats" is what proves an update; the broken one exits at once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
from collections import namedtuple

import httpx
import pytest

from studio_core.comfy_server import ManagedServer, inspect_folder
from studio_core.setup import catalog as catalog_mod, installer as inst, update as upd
from studio_core.setup.catalog import Catalog
from studio_core.setup.errors import GitVerifyFailed, UpdateFailed, UpdateRolledBack
from studio_core.setup.gpu_facts import GpuFacts
from studio_core.setup.plan import make_plan
from tests.conftest import run_async
from tests.setup_fakes import FakeEnv
from tests.setup_mirror import SetupMirror, catalog_dict, fake_safetensors
from tests.setup_sources import git, git_release, git_repo, move_tag, portable_7z

Usage = namedtuple("Usage", "total used free")
PLENTY = lambda _p: Usage(10**13, 0, 10**12)  # noqa: E731
MODEL = fake_safetensors(200_000, seed=31)
POSE = fake_safetensors(20_000, seed=32)
OUTPUT_PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
SIX_GB = GpuFacts("NVIDIA GeForce RTX 3050", 6144, "552.22", (12, 4))
posix_only = pytest.mark.skipif(os.name == "nt", reason="the python_embeded stand-in is a POSIX shell launcher")
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


@pytest.fixture
def mirror():
    with SetupMirror() as m:
        yield m


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir())


def snapshot(folder) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*")
            if p.is_file() and not {"venv", ".git"} & set(p.relative_to(folder).parts)}


def first_only(cat: Catalog) -> Catalog:
    """The catalog as an older app had it: only the first release."""
    return dataclasses.replace(cat, releases=cat.releases[:1])


def managed(folder, tmp_path) -> ManagedServer:
    return ManagedServer(lambda: inspect_folder(folder), log_dir=tmp_path / "logs", max_restarts=0,
                         start_timeout=60)


# -- which version is offered ------------------------------------------------------------------------

def test_portable_and_git_installs_skip_releases_without_their_own_source():
    data = {"as_of": "x", "torch": [], "models": [], "comfyui": [
        {"version": "1", "git": {"url": "u", "tag": "v1", "commit": "a" * 40},
         "windows_portable": {"nvidia": {"name": "p1.7z", "url": "u", "sha256": "1" * 64}}},
        {"version": "2", "archive": {"name": "z.zip", "url": "u"}},
        {"version": "3", "git": {"url": "u", "tag": "v3", "commit": "b" * 40},
         "windows_portable": {"amd": {"name": "p3.7z", "url": "u", "sha256": "3" * 64}}}]}
    cat = Catalog.from_dict(data)
    assert cat.next_for("1", "zip").version == "2"
    assert cat.next_for("1", "git").version == "3"
    assert cat.next_for("1", "portable", "amd").version == "3"
    assert cat.next_for("1", "portable", "nvidia") is None  # release 3 has no nvidia build
    assert cat.next_for("3", "git") is None


def test_the_shipped_catalog_offers_no_newer_portable_or_git_version_and_says_so(tmp_path):
    shipped = catalog_mod.load()
    latest = shipped.latest.version
    for source in ("portable", "git"):
        assert upd.offer_for({"comfyui": latest, "source": source, "build": "nvidia"}, shipped) is None
    folder = tmp_path / "ComfyUI"
    folder.mkdir()
    (folder / inst.MANIFEST).write_text(f'{{"manifest": 1, "comfyui": "{latest}", "source": "portable", '
                                        '"build": "nvidia", "comfy_dir": "ComfyUI", "files": {}}')

    async def never() -> None:
        raise AssertionError("not started")

    with pytest.raises(UpdateFailed) as err:
        run_async(upd.update(folder, shipped, prove=never))
    assert "no newer pinned Windows portable build" in err.value.user_message


# -- git ---------------------------------------------------------------------------------------------

def git_catalog(mirror, pins: list[tuple[str, str]], url: str) -> Catalog:
    data = catalog_dict(mirror, archive=b"PK\x05\x06" + bytes(18), model=MODEL, pose=POSE)
    for entry, (tag, commit) in zip(data["comfyui"], pins):
        entry["git"] = {"url": url, "tag": tag, "commit": commit, "size_bytes": 100_000, "licence": "GPL-3.0",
                        "source": url}
    return Catalog.from_dict(data)


def git_install_v1(mirror, tmp_path):
    """v1 installed by git from a catalog that knew only v1; then v2 is tagged and a catalog offers it."""
    bare, c1 = git_repo(tmp_path, "v1", version="git-1")
    url = bare.as_uri()
    folder = tmp_path / "disk" / "ComfyUI"
    cat1 = first_only(git_catalog(mirror, [("v1", c1)], url))
    env = FakeEnv()
    run_async(inst.Installer(make_plan(None, 10**12, cat1, folder, platform="linux", git_found=True), cat1,
                             env=env, disk_usage=PLENTY).install())
    (folder / "output").mkdir(exist_ok=True)
    (folder / "output/studio_00001_.png").write_bytes(OUTPUT_PNG)
    (folder / "custom_nodes/my_pixel_nodes").mkdir(parents=True)
    (folder / "custom_nodes/my_pixel_nodes/__init__.py").write_text("NODE_CLASS_MAPPINGS = {}\n")
    (folder / "extra_model_paths.yaml").write_text("a1111:\n  base_path: D:/sd\n")
    return bare, url, c1, folder, env


@needs_git
def test_git_update_to_the_next_tag_keeps_models_and_images_and_starts_the_new_commit(mirror, tmp_path):
    bare, url, c1, folder, env = git_install_v1(mirror, tmp_path)
    c2 = git_release(tmp_path, bare, "v2", "git-2", requirements="torch\nav\n")
    cat = git_catalog(mirror, [("v1", c1), ("v2", c2)], url)
    offer = upd.offer(folder, cat)
    assert offer.kind == "git" and offer.git.commit == c2 and inst.update_offer(folder, cat).version == "0.0.2-test"
    assert "verified by git" in offer.what_changes() and c2[:12] in offer.what_changes()
    server, lines = managed(folder, tmp_path), []

    async def go():
        try:
            report = await upd.update(folder, cat, prove=server.start, env=env, disk_usage=PLENTY,
                                      on_event=lambda e: lines.append(getattr(e, "text", "")))
            async with httpx.AsyncClient() as client:
                answered = (await client.get(server.url + "/system_stats")).json()["system"]["comfyui_version"]
            return report, answered
        finally:
            await server.stop()

    report, answered = run_async(go())
    assert answered == "git-2"
    assert git("rev-parse", "HEAD", cwd=folder) == c2  # the working tree is the new, verified commit
    assert any("git fsck passed" in ln for ln in lines)
    assert (folder / "models/checkpoints/tiny.safetensors").read_bytes() == MODEL
    assert (folder / "output/studio_00001_.png").read_bytes() == OUTPUT_PNG
    assert (folder / "custom_nodes/my_pixel_nodes/__init__.py").exists()
    assert (folder / "extra_model_paths.yaml").exists()
    assert report.requirements_changed and env.requirement_runs == 1 and env.calls == 1  # venv carried
    manifest = inst.read_manifest(folder)
    assert manifest["commit"] == c2 and manifest["tag"] == "v2" and manifest["comfyui"] == "0.0.2-test"
    assert manifest["files"]["models/checkpoints/tiny.safetensors"] == hashlib.sha256(MODEL).hexdigest()
    assert leftovers(folder) == ["ComfyUI"]
    assert upd.offer(folder, cat) is None


@needs_git
def test_git_update_to_a_moved_tag_is_refused_and_nothing_changes(mirror, tmp_path):
    bare, url, c1, folder, env = git_install_v1(mirror, tmp_path)
    c2 = git_release(tmp_path, bare, "v2", "git-2")
    cat = git_catalog(mirror, [("v1", c1), ("v2", c2)], url)
    moved = move_tag(tmp_path, bare, "v2")  # upstream force-pushed v2 after the app pinned it
    before = snapshot(folder)

    async def never() -> None:
        raise AssertionError("an unverified commit must not be started")

    with pytest.raises(GitVerifyFailed) as err:
        run_async(upd.update(folder, cat, prove=never, env=env, disk_usage=PLENTY))
    assert moved[:12] in err.value.user_message and c2[:12] in err.value.user_message
    assert snapshot(folder) == before and git("rev-parse", "HEAD", cwd=folder) == c1
    assert inst.read_manifest(folder)["commit"] == c1 and env.requirement_runs == 0
    assert leftovers(folder) == ["ComfyUI"]


# -- Windows portable ----------------------------------------------------------------------------------

def portable_catalog(mirror, v1: bytes, v2: bytes) -> Catalog:
    data = catalog_dict(mirror, archive=b"PK\x05\x06" + bytes(18), model=MODEL, pose=POSE)
    for entry, (n, blob) in zip(data["comfyui"], ((1, v1), (2, v2))):
        entry["windows_portable"] = {"nvidia": {
            "name": f"ComfyUI_windows_portable_nvidia_{n}.7z", "url": mirror.add(f"/rel/{n}/portable.7z", blob),
            "size_bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest(), "licence": "GPL-3.0",
            "sha256_from": "test mirror", "source": mirror.url("/rel/")}}
    return Catalog.from_dict(data)


def portable_install_v1(mirror, tmp_path, *, broken_v2: bool = False):
    v1 = portable_7z(tmp_path, version="portable-1")
    v2 = portable_7z(tmp_path, version="portable-2", broken=broken_v2)
    cat = portable_catalog(mirror, v1, v2)
    cat1 = first_only(cat)
    folder = tmp_path / "disk" / "ComfyUI"
    run_async(inst.Installer(make_plan(SIX_GB, 10**12, cat1, folder, platform="win32"), cat1, env=FakeEnv(),
                             disk_usage=PLENTY).install())
    comfy = folder / "ComfyUI"
    (comfy / "output/studio_00001_.png").write_bytes(OUTPUT_PNG)
    (comfy / "custom_nodes/my_pixel_nodes").mkdir(parents=True)
    (comfy / "custom_nodes/my_pixel_nodes/__init__.py").write_text("NODE_CLASS_MAPPINGS = {}\n")
    (comfy / "models/configs/v1-inference.yaml").write_text("# my tuned config\n")
    (comfy / "user/default").mkdir(parents=True)
    (comfy / "user/default/comfy.settings.json").write_text('{"Comfy.Theme": "dark"}')
    (comfy / "extra_model_paths.yaml").write_text("a1111:\n  base_path: D:/sd\n")
    (folder / "run_my_way.bat").write_text("rem mine\n")
    return cat, folder


@posix_only
def test_portable_update_swaps_in_the_new_build_and_keeps_the_users_files(mirror, tmp_path):
    cat, folder = portable_install_v1(mirror, tmp_path)
    offer = upd.offer(folder, cat)
    assert offer.kind == "portable" and offer.asset.name == "ComfyUI_windows_portable_nvidia_2.7z"
    text = offer.what_changes()
    assert "0.0.1-test → 0.0.2-test" in text and "pinned in the app (test mirror)" in text and "python_embeded" in text
    server, events = managed(folder, tmp_path), []

    async def go():
        try:
            report = await upd.update(folder, cat, prove=server.start, on_event=events.append, disk_usage=PLENTY)
            async with httpx.AsyncClient() as client:
                answered = (await client.get(server.url + "/system_stats")).json()["system"]["comfyui_version"]
            return report, answered
        finally:
            await server.stop()

    report, answered = run_async(go())
    assert answered == "portable-2"
    comfy = folder / "ComfyUI"
    assert (comfy / "models/checkpoints/tiny.safetensors").read_bytes() == MODEL
    assert (comfy / "models/controlnet/pose.safetensors").read_bytes() == POSE
    assert (comfy / "output/studio_00001_.png").read_bytes() == OUTPUT_PNG
    assert (comfy / "custom_nodes/my_pixel_nodes/__init__.py").exists()
    assert (comfy / "user/default/comfy.settings.json").read_text() == '{"Comfy.Theme": "dark"}'
    assert (comfy / "extra_model_paths.yaml").exists() and (folder / "run_my_way.bat").read_text() == "rem mine\n"
    assert (comfy / "custom_nodes/websocket_image_save.py").read_text() == "# example node portable-2\n"
    assert (comfy / "models/configs/v1-inference.yaml").read_text() == "# my tuned config\n"
    assert report.kept_edited == ("ComfyUI/models/configs/v1-inference.yaml",)
    assert not report.requirements_changed  # python_embeded came with the new archive: no pip
    assert any(isinstance(e, inst.UnpackProgress) for e in events)
    manifest = inst.read_manifest(folder)
    assert manifest["comfyui"] == "0.0.2-test" and manifest["source"] == "portable" and manifest["build"] == "nvidia"
    assert leftovers(folder) == ["ComfyUI"]
    assert run_async(inst.repair(folder, cat)).fixed == ()  # the new manifest matches what is on disk


@posix_only
def test_a_portable_update_whose_server_does_not_start_is_rolled_back(mirror, tmp_path):
    cat, folder = portable_install_v1(mirror, tmp_path, broken_v2=True)
    before = snapshot(folder)
    server = managed(folder, tmp_path)
    with pytest.raises(UpdateRolledBack) as err:
        run_async(upd.update(folder, cat, prove=server.start, disk_usage=PLENTY))
    text = err.value.user_message
    assert "0.0.2-test did not start" in text and "0.0.1-test was put back" in text
    assert "comfy_new_dependency" in text
    assert snapshot(folder) == before  # every file as it was, python_embeded, the model and the picture included
    assert inst.read_manifest(folder)["comfyui"] == "0.0.1-test"
    assert leftovers(folder) == ["ComfyUI"]
